"""Declaring a report frame's columns: column types, columns, frame declarations.

The declarations themselves are in :mod:`prismatic_usage.columns`.

Column types
------------
TEXT
    IDs and names: pandas' default string dtype (``"str"``, pyarrow-backed,
    missing values are NaN); Arrow/Parquet ``string``.
DATE
    A calendar day in the report's zone, as ``datetime64[s]`` at midnight (no
    zone: the day is already local). Every pandas idiom understands it:
    ``df[df.Date >= "2024-12-15"]``, comparison with a ``pd.Timestamp``,
    ``set_index("Date").resample("W")``, ``pd.Grouper(freq="W")``,
    ``.dt.to_period("M")``, and a merge with a CSV read back with
    ``parse_dates``. Parquet keeps ``date32`` (a day, no time of day); CSV
    keeps ISO text (``2025-02-12``). (``date32[pyarrow]``, used before 0.2, was
    exact but broke each of those idioms.)
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

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import ConfigurationError

__all__ = [
    "AVERAGE",
    "COLUMN_NAMES",
    "COUNT",
    "DATE",
    "DATE32",
    "EXACT",
    "FLAG",
    "MONEY",
    "TEXT",
    "Column",
    "ColumnType",
    "FrameSpec",
    "check_column",
    "check_column_names",
    "date_array",
    "snake_name",
]

#: Parquet's day type as a pandas dtype; accepted wherever a DATE column is read.
DATE32 = pd.ArrowDtype(pa.date32())


@dataclass(frozen=True)
class ColumnType:
    """A column's pandas dtype and the Arrow/Parquet type it is written as."""

    pandas: Any
    arrow: pa.DataType
    text: bool = False

    def accepts(self, dtype: Any) -> bool:
        """Whether a column of ``dtype`` is this type: any string dtype for text; for
        dates any zone-less ``datetime64`` unit (``read_csv`` gives ``[ns]``) or
        ``date32[pyarrow]`` (``read_parquet(dtype_backend="pyarrow")``); else exact."""
        if self.text:
            return isinstance(dtype, pd.StringDtype)
        if self.arrow == pa.date32():
            return (isinstance(dtype, np.dtype) and dtype.kind == "M") or dtype == DATE32
        return bool(dtype == self.pandas)


TEXT = ColumnType(pd.StringDtype("pyarrow", na_value=np.nan), pa.string(), text=True)
DATE = ColumnType(np.dtype("datetime64[s]"), pa.date32())
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
    #: The original header when ``name`` is the snake-case name ("" when they are the same).
    header: str = ""


@dataclass(frozen=True)
class FrameSpec:
    """An ordered column declaration for one report.

    Columns are kept in three groups, each in declared order: the basic
    columns, then the optional ones (present only when asked for, e.g. a
    price's amount), then the extended ones; so a variant with more columns
    only ever appends to the basic schema.

    Attributes
    ----------
    stem
        Names the output files (``<stem>.csv``, ``<stem>.parquet``).
    columns
        The columns, in order.
    keys
        The natural key: the columns whose values identify a row.
    naming
        ``"original"`` (report headers) or ``"snake"``: which names ``columns`` carry.
    """

    stem: str
    columns: tuple[Column, ...]
    #: The natural key: the columns whose values identify a row (unique together).
    keys: tuple[str, ...] = ()
    naming: str = "original"

    def __post_init__(self) -> None:
        # Basic columns first, then optional ones, then extended ones (each in declared
        # order): asking for more columns only ever appends to the basic schema.
        basic = [c for c in self.columns if not (c.extended or c.optional)]
        optional = [c for c in self.columns if c.optional and not c.extended]
        extended = [c for c in self.columns if c.extended]
        object.__setattr__(self, "columns", tuple(basic + optional + extended))

    def named(self, column_names: str) -> FrameSpec:
        """This declaration with other names.

        Parameters
        ----------
        column_names
            ``"original"`` for the report headers, ``"snake"`` for identifier-safe names.
        """
        check_column_names(column_names)
        if column_names == self.naming:
            return self
        if column_names == "snake":
            columns = tuple(
                replace(c, name=snake_name(c.name), header=c.name) for c in self.columns
            )
            keys = tuple(snake_name(key) for key in self.keys)
        else:
            original = {c.name: c.header for c in self.columns}
            columns = tuple(replace(c, name=c.header, header="") for c in self.columns)
            keys = tuple(original[key] for key in self.keys)
        return FrameSpec(self.stem, columns, keys, column_names)

    def select(self, *, extended: bool, optional: Collection[str] = ()) -> FrameSpec:
        """A variant: basic (no extended columns) or extended, plus the named optional columns.

        Parameters
        ----------
        extended
            Keep the extended columns.
        optional
            The optional columns to keep; ``ValueError`` if one is not declared optional.
        """
        unknown = set(optional) - {c.name for c in self.columns if c.optional}
        if unknown:
            raise ValueError(f"not optional columns of {self.stem}: {sorted(unknown)}")
        kept = tuple(
            c
            for c in self.columns
            if (extended or not c.extended) and (not c.optional or c.name in optional)
        )
        return self if kept == self.columns else FrameSpec(self.stem, kept, self.keys, self.naming)

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

        Parameters
        ----------
        data
            Column name -> values. ``KeyError`` if a declared column is missing
            and ``ValueError`` if there are undeclared ones, so a pipeline cannot
            drift from its declaration.
        """
        extra = set(data) - set(self.names)
        if extra:
            raise ValueError(f"undeclared columns for {self.stem}: {sorted(extra)}")
        columns = {
            c.name: pd.Series(data[c.name], dtype=c.type.pandas, copy=False) for c in self.columns
        }
        return pd.DataFrame(columns).reset_index(drop=True)


COLUMN_NAMES = ("original", "snake")


def check_column_names(column_names: str) -> None:
    """Refuse a ``column_names`` choice other than ``"original"`` or ``"snake"``."""
    if column_names not in COLUMN_NAMES:
        raise ConfigurationError(
            f"column_names={column_names!r}: choose 'original' (the report headers) or 'snake'"
        )


def snake_name(header: str) -> str:
    """The identifier-safe name of a header: ``Execution Mb-Seconds`` -> ``execution_mb_seconds``.

    Parameters
    ----------
    header
        A column header as declared.
    """
    return re.sub(r"[^0-9a-z]+", "_", header.lower()).strip("_")


def check_column(values: pd.Series[Any], column: Column) -> None:
    """Raise :class:`ConfigurationError` unless ``values`` fit ``column``'s type.

    Parameters
    ----------
    values
        One column of a frame given to a writer or a billing function.
    column
        Its declaration. A date column must hold midnights (a day, no time).
    """
    if not column.type.accepts(values.dtype):
        raise ConfigurationError(
            f"column {column.name!r} has dtype {values.dtype}, expected {column.type.pandas}"
        )
    if values.dtype.kind == "M" and (values.dropna() != values.dropna().dt.normalize()).any():
        raise ConfigurationError(f"column {column.name!r} holds a time of day; give days")


def date_array(days: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """A DATE array (midnight, ``datetime64[s]``) from integer days since 1970-01-01."""
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[s]")
