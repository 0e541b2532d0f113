"""The report frames' columns, declared once.

Each report has one ordered declaration, header -> column type, and everything
else is derived from it: the order and dtypes of the DataFrame the pipelines
build, the empty frame returned for empty input, the CSV header, the Parquet
schema and the file stem. Columns flagged ``extended`` appear only in the
``extended=True`` variant, at their declared position. Columns flagged
``optional`` appear one by one, each only when the pipeline is asked for it
(the billing summary's amount columns, one per price given), again at their
declared position.

Column types
------------
TEXT
    IDs and names: pandas' default string dtype (``"str"``, pyarrow-backed,
    missing values are NaN); Arrow/Parquet ``string``.
DATE
    A calendar day: ``date32[pyarrow]`` (``pd.ArrowDtype(pa.date32())``). It is
    a date, not a midnight timestamp, so it carries no time of day or zone that
    could be misread; it is exactly Parquet's ``date32`` (no cast on write, and
    ``pd.read_parquet`` restores the same dtype); it formats as ISO
    ``2025-02-12``; ``min()``/``max()`` return :class:`datetime.date`, sorting
    and ``==``/``<`` against :class:`datetime.date` work, and ``.dt.year`` etc.
    are available. ``datetime64[s]`` was rejected because it would need a cast
    to ``date32`` for Parquet and reads back as a timestamp; object columns of
    ``datetime.date`` because they are slow and untyped.
COUNT
    ``int64``: exact up to 2**63 - 1 (BigInt values above 2**53 stay exact).
AVERAGE
    ``float64``: daily means and other fractional quantities (instance-days,
    coverage, GB-seconds).
MONEY
    ``decimal128(18, 2)[pyarrow]`` (``pd.ArrowDtype(pa.decimal128(18, 2))``):
    exact amounts in cents; elements are :class:`decimal.Decimal`, so sums stay
    exact. Parquet ``decimal128(18, 2)`` with no cast; CSV text with exactly two
    decimal places (``12.30``). Amounts up to 10**16 - 0.01 fit. Note that
    ``pd.read_parquet`` gives such a column back as ``object`` holding the same
    exact ``Decimal`` values (pyarrow's pandas metadata maps decimals to
    ``object``); pass ``dtype_backend="pyarrow"`` to get the Arrow dtype.
FLAG
    ``bool``: yes/no facts such as ``Final``; Parquet ``bool``, CSV ``true``/``false``.
EXACT
    ``object`` holding Python ``int`` (exact at any size) or ``float`` values: the
    reconciliation mixes exact integer totals with mean deployed instances. Written
    as their exact text (``int``) or shortest round-trip text (``float``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "AVERAGE",
    "BILLING_SUMMARY",
    "COUNT",
    "CUSTOMER_COMPUTE_ROLLUP",
    "CUSTOMER_INSTANCE",
    "CUSTOMER_PERIOD_ROLLUP",
    "DATE",
    "EXACT",
    "FLAG",
    "HOUR_COLUMNS",
    "INSTANCE_COMPUTE",
    "INSTANCE_COMPUTE_ROLLUP",
    "MONEY",
    "RECONCILIATION",
    "REPORTS",
    "TEXT",
    "Column",
    "ColumnType",
    "FrameSpec",
    "date_array",
    "spec_for_columns",
]


@dataclass(frozen=True)
class ColumnType:
    """A column's pandas dtype and the Arrow/Parquet type it is written as."""

    pandas: Any
    arrow: pa.DataType
    text: bool = False


TEXT = ColumnType(pd.StringDtype("pyarrow", na_value=np.nan), pa.string(), text=True)
DATE = ColumnType(pd.ArrowDtype(pa.date32()), pa.date32())
COUNT = ColumnType(np.dtype("int64"), pa.int64())
AVERAGE = ColumnType(np.dtype("float64"), pa.float64())
MONEY = ColumnType(pd.ArrowDtype(pa.decimal128(18, 2)), pa.decimal128(18, 2))
FLAG = ColumnType(np.dtype("bool"), pa.bool_())
EXACT = ColumnType(np.dtype("object"), pa.large_string())


@dataclass(frozen=True)
class Column:
    """One report column: its exact header and its type."""

    name: str
    type: ColumnType
    nullable: bool = False
    extended: bool = False
    optional: bool = False


@dataclass(frozen=True)
class FrameSpec:
    """An ordered column declaration for one report.

    ``stem`` names the output files (``<stem>.csv``, ``<stem>.parquet``).
    """

    stem: str
    columns: tuple[Column, ...]

    def select(self, *, extended: bool, optional: Collection[str] = ()) -> FrameSpec:
        """A variant: basic (no extended columns) or extended, plus the named optional columns.

        Raises ``ValueError`` if ``optional`` names a column that is not declared optional.
        """
        unknown = set(optional) - {c.name for c in self.columns if c.optional}
        if unknown:
            raise ValueError(f"not optional columns of {self.stem}: {sorted(unknown)}")
        kept = tuple(
            c
            for c in self.columns
            if (extended or not c.extended) and (not c.optional or c.name in optional)
        )
        return self if kept == self.columns else FrameSpec(self.stem, kept)

    @property
    def names(self) -> list[str]:
        """The headers, in order."""
        return [c.name for c in self.columns]

    @property
    def dtypes(self) -> dict[str, Any]:
        """Header -> pandas dtype, in order."""
        return {c.name: c.type.pandas for c in self.columns}

    @property
    def text_columns(self) -> list[str]:
        """Headers of the text columns."""
        return [c.name for c in self.columns if c.type.text]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Parquet schema: header -> Arrow type, nullability as declared."""
        return pa.schema(
            [pa.field(c.name, c.type.arrow, nullable=c.nullable) for c in self.columns]
        )

    def empty(self) -> pd.DataFrame:
        """A frame with no rows but every declared column and dtype."""
        return self.build({c.name: pd.array([], dtype=c.type.pandas) for c in self.columns})

    def build(self, data: Mapping[str, Any]) -> pd.DataFrame:
        """A frame from one array per declared column, cast to the declared dtypes.

        Raises ``KeyError`` if a declared column is missing and ``ValueError`` if
        there are undeclared ones, so a pipeline cannot drift from its declaration.
        """
        extra = set(data) - set(self.names)
        if extra:
            raise ValueError(f"undeclared columns for {self.stem}: {sorted(extra)}")
        columns = {
            c.name: pd.Series(data[c.name], dtype=c.type.pandas, copy=False) for c in self.columns
        }
        return pd.DataFrame(columns).reset_index(drop=True)


CUSTOMER_INSTANCE = FrameSpec(
    "customer-instance-data",
    (
        Column("Customer ID", TEXT),
        Column("Customer Name", TEXT),
        Column("Customer External ID", TEXT, nullable=True, extended=True),
        Column("Date", DATE),
        Column("Deployed Instances", AVERAGE),
        Column("Unique Integrations", AVERAGE),
        Column("Snapshots", COUNT, extended=True),
        Column("Expected Snapshots", COUNT, extended=True),
        Column("Coverage", AVERAGE, extended=True),
        Column("Final", FLAG, extended=True),
    ),
)

INSTANCE_COMPUTE = FrameSpec(
    "instance-compute-data",
    (
        Column("Customer ID", TEXT),
        Column("Customer Name", TEXT),
        Column("Customer External ID", TEXT, nullable=True, extended=True),
        Column("Instance ID", TEXT),
        Column("Instance Name", TEXT),
        Column("Integration Name", TEXT, nullable=True, extended=True),
        Column("Date", DATE),
        Column("Successful Executions", COUNT),
        Column("Failed Executions", COUNT),
        Column("Step Count", COUNT),
        Column("Execution Mb-Seconds", COUNT),
        Column("Final", FLAG, extended=True),
    ),
)

_PERIOD = (Column("Period Start", DATE), Column("Period End", DATE))
_CUSTOMER_PERIOD_MEASURES = (
    Column("Average Deployed Instances", AVERAGE),
    Column("Average Unique Integrations", AVERAGE),
    Column("Peak Deployed Instances", AVERAGE),
    Column("Instance-Days", AVERAGE),
    Column("Instance-Months", AVERAGE),
    Column("Days With Data", COUNT),
    Column("Days In Period", COUNT),
    Column("Coverage", AVERAGE),
    # From an extended customer frame: coverage counted in hourly snapshots.
    Column("Snapshots", COUNT, optional=True),
    Column("Expected Snapshots", COUNT, optional=True),
    Column("Snapshot Coverage", AVERAGE, optional=True),
)
#: The billing roll-ups' optional hour-coverage columns.
HOUR_COLUMNS = ("Snapshots", "Expected Snapshots", "Snapshot Coverage")
_MEANS = frozenset(
    {"Average Deployed Instances", "Average Unique Integrations", "Peak Deployed Instances"}
)
_COMPUTE_MEASURES = (
    Column("Successful Executions", COUNT),
    Column("Failed Executions", COUNT),
    Column("Step Count", COUNT),
    Column("Execution Mb-Seconds", COUNT),
    Column("Execution GB-Seconds", AVERAGE),
)
_CUSTOMER = (
    Column("Customer ID", TEXT),
    Column("Customer Name", TEXT),
    Column("Customer External ID", TEXT, nullable=True, extended=True),
)

CUSTOMER_PERIOD_ROLLUP = FrameSpec(
    "customer-period-rollup", (*_CUSTOMER, *_PERIOD, *_CUSTOMER_PERIOD_MEASURES)
)
"""Per customer and period, from the customer-instance frame; see ``billing``."""

INSTANCE_COMPUTE_ROLLUP = FrameSpec(
    "compute-rollup",
    (
        *_CUSTOMER,
        Column("Instance ID", TEXT),
        Column("Instance Name", TEXT),
        Column("Integration Name", TEXT, nullable=True, extended=True),
        *_PERIOD,
        Column("Days With Data", COUNT),
        *_COMPUTE_MEASURES,
    ),
)
"""Per instance and period, from the instance-compute frame; see ``billing``."""

CUSTOMER_COMPUTE_ROLLUP = FrameSpec(
    "customer-compute-rollup",
    (*_CUSTOMER, *_PERIOD, Column("Days With Data", COUNT), *_COMPUTE_MEASURES),
)
"""Per customer and period, from the instance-compute frame; see ``billing``."""

BILLING_SUMMARY = FrameSpec(
    "billing-summary",
    (
        *_CUSTOMER,
        *_PERIOD,
        # Whether the period's last day is final (given the run's start): it will not change.
        Column("Final", FLAG, optional=True),
        # A customer with compute but no instance data in a period has no averages (NaN).
        *(replace(c, nullable=c.name in _MEANS) for c in _CUSTOMER_PERIOD_MEASURES),
        *_COMPUTE_MEASURES,
        Column("Instance Amount", MONEY, optional=True),
        Column("Compute Amount", MONEY, optional=True),
        Column("Execution Amount", MONEY, optional=True),
        Column("Total Amount", MONEY, optional=True),
    ),
)
"""Per customer and period, both roll-ups joined, amounts for the prices given."""

RECONCILIATION = FrameSpec(
    "reconciliation",
    (
        Column("Date", DATE),
        Column("Metric", TEXT),
        Column("Org Total", EXACT, nullable=True),
        Column("Report Total", EXACT),
        Column("Difference", EXACT, nullable=True),
    ),
)
"""Per date and metric: Prismatic's org total against the report's sum; see ``reconcile``."""

REPORTS: tuple[FrameSpec, ...] = (
    CUSTOMER_INSTANCE,
    INSTANCE_COMPUTE,
    CUSTOMER_PERIOD_ROLLUP,
    INSTANCE_COMPUTE_ROLLUP,
    CUSTOMER_COMPUTE_ROLLUP,
    BILLING_SUMMARY,
    RECONCILIATION,
)


def spec_for_columns(columns: Any) -> FrameSpec | None:
    """The report variant whose column set equals ``columns``, or None."""
    wanted = set(map(str, columns))
    if len(wanted) != len(list(columns)):
        return None
    for report in REPORTS:
        optional = [c.name for c in report.columns if c.optional and c.name in wanted]
        for extended in (False, True):
            spec = report.select(extended=extended, optional=optional)
            if set(spec.names) == wanted:
                return spec
    return None


def date_array(days: np.ndarray[Any, Any]) -> pd.api.extensions.ExtensionArray:
    """A DATE array from integer days since 1970-01-01."""
    arrow = pa.array(np.asarray(days, dtype=np.int32), type=pa.int32()).cast(pa.date32())
    return pd.arrays.ArrowExtensionArray(arrow)
