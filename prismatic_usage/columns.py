"""The report frames' columns, declared once.

Each report has one ordered declaration, header -> column type, and everything
else is derived from it: the order and dtypes of the DataFrame the pipelines
build, the empty frame returned for empty input, the CSV header, the Parquet
schema and the file stem. Columns flagged ``extended`` appear only in the
``extended=True`` variant, always after every other column, so a schema only
grows when a run asks for more. Columns flagged ``optional`` appear one by one,
each only when the pipeline is asked for it (the billing summary's amount
columns, one per price given), at their declared position.

Names
-----
Every column has two names: its header (``Execution Mb-Seconds``, the original
script's) and an identifier-safe snake-case name (``execution_mb_seconds``) for
warehouse engines, chosen with ``column_names="snake"`` (:func:`snake_name`,
:func:`with_column_names`). A frame with either set of names is accepted as input.

Column types and the declaration machinery are in :mod:`prismatic_usage._frame_spec`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from ._frame_spec import (
    AVERAGE,
    COLUMN_NAMES,
    COUNT,
    DATE,
    EXACT,
    FLAG,
    MONEY,
    TEXT,
    Column,
    ColumnType,
    FrameSpec,
    check_column,
    check_column_names,
    date_array,
    snake_name,
)

__all__ = [
    "AVERAGE",
    "BILLING_SUMMARY",
    "COLUMN_NAMES",
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
    "check_column",
    "check_column_names",
    "date_array",
    "naming_of",
    "snake_name",
    "spec_for_columns",
    "with_column_names",
    "with_original_names",
]


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
    keys=("Customer ID", "Date"),
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
    keys=("Instance ID", "Date"),
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
    "customer-period-rollup",
    (*_CUSTOMER, *_PERIOD, *_CUSTOMER_PERIOD_MEASURES),
    keys=("Customer ID", "Period Start"),
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
    keys=("Customer ID", "Instance ID", "Period Start"),
)
"""Per instance and period, from the instance-compute frame; see ``billing``."""

CUSTOMER_COMPUTE_ROLLUP = FrameSpec(
    "customer-compute-rollup",
    (*_CUSTOMER, *_PERIOD, Column("Days With Data", COUNT), *_COMPUTE_MEASURES),
    keys=("Customer ID", "Period Start"),
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
    keys=("Customer ID", "Period Start"),
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
    keys=("Date", "Metric"),
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
    """The report variant whose column set equals ``columns`` (either naming), or None."""
    wanted = set(map(str, columns))
    if len(wanted) != len(list(columns)):
        return None
    for original in REPORTS:
        for report in (original, original.named("snake")):
            optional = [c.name for c in report.columns if c.optional and c.name in wanted]
            for extended in (False, True):
                spec = report.select(extended=extended, optional=optional)
                if set(spec.names) == wanted:
                    return spec
    return None


def naming_of(frame: pd.DataFrame, column_names: str | None = None) -> str:
    """``column_names`` if given (checked), else the naming ``frame``'s columns use.

    Parameters
    ----------
    frame
        A report frame given to a pipeline.
    column_names
        The caller's explicit choice, or None to follow ``frame``.
    """
    if column_names is not None:
        check_column_names(column_names)
        return column_names
    spec = spec_for_columns(frame.columns)
    return spec.naming if spec is not None else "original"


_ORIGINAL_OF_SNAKE = {
    snake_name(column.name): column.name for report in REPORTS for column in report.columns
}


def with_original_names(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every snake-case report column renamed to its header, column by
    column (so a selection of a report's columns works too).

    Parameters
    ----------
    frame
        Any frame; columns that are no report's snake-case name keep their names.
    """
    if not any(name in _ORIGINAL_OF_SNAKE for name in frame.columns):
        return frame
    return frame.rename(columns=lambda name: _ORIGINAL_OF_SNAKE.get(name, name))


def with_column_names(frame: pd.DataFrame, column_names: str) -> pd.DataFrame:
    """``frame`` (a report frame with either naming) with ``column_names`` names.

    Parameters
    ----------
    frame
        A report frame: its columns are those of a declared report, with
        original headers or snake-case names.
    column_names
        ``"original"`` for the report headers, ``"snake"`` for identifier-safe names.

    Returns the frame itself when it already has those names. Frames that are
    no declared report are returned unchanged (the caller validates them).
    """
    check_column_names(column_names)
    spec = spec_for_columns(frame.columns)
    if spec is None or spec.naming == column_names:
        return frame
    renamed = spec.named(column_names)
    return frame.rename(columns=dict(zip(spec.names, renamed.names, strict=True)))
