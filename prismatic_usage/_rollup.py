"""Roll-up machinery for :mod:`prismatic_usage.billing`: input checks, groups, sums.

Rows are sorted into (entity, period) groups, each a contiguous run of one row
order, so every measure is a reduction over runs: exact int64 sums, correctly
rounded float sums, maxima and counts.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._periods import IntArray, periods
from .columns import FrameSpec, check_column, spec_for_columns
from .errors import ConfigurationError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

EXTERNAL_ID = "Customer External ID"
IDENTIFIERS = (
    "Customer ID",
    "Customer Name",
    EXTERNAL_ID,
    "Instance ID",
    "Instance Name",
    "Integration Name",
)
COUNTS = ("Successful Executions", "Failed Executions", "Step Count", "Execution Mb-Seconds")


def is_extended_daily(frame: pd.DataFrame, report: FrameSpec) -> bool:
    """Whether ``frame`` is the extended variant of the daily ``report``.

    Raises :class:`ConfigurationError` unless ``frame`` has the columns of either
    variant with their declared dtypes, and values in every non-nullable column.
    """
    spec = spec_for_columns(frame.columns)
    if spec is None or spec.stem != report.stem:
        raise ConfigurationError(
            f"frame has columns {list(map(str, frame.columns))}, expected those of "
            f"{report.stem} ({report.select(extended=False).names}, optionally extended)"
        )
    for column in spec.columns:
        check_column(frame[column.name], column)
        if not column.nullable and frame[column.name].isna().any():
            raise ConfigurationError(f"column {column.name!r} has missing values")
    return EXTERNAL_ID in spec.names


@dataclass(frozen=True)
class Groups:
    """Rows sorted into (entity, period) groups, each a contiguous run of ``order``."""

    order: IntArray  # row positions, sorted by entity rank, period and day
    starts: IntArray  # where each group's run begins in ``order``
    first_rows: IntArray  # per group, the row its identifiers come from
    period_start: IntArray
    period_end: IntArray
    rows: IntArray
    distinct_days: IntArray


def group(
    frame: pd.DataFrame,
    days: IntArray,
    *,
    keys: list[str],
    ranking: list[str],
    period: str,
    bounds: tuple[int, int],
) -> Groups:
    """Group rows by ``keys`` and period; groups ordered by ``ranking`` of the entity, then period."""
    entity = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy(np.int64)
    entity_first = np.unique(entity, return_index=True)[1]  # entity codes are 0..k-1
    heads = frame.iloc[entity_first][ranking].reset_index(drop=True)
    rank = np.empty(len(heads), dtype=np.int64)
    rank[heads.sort_values(ranking, kind="stable").index.to_numpy()] = np.arange(len(heads))
    first, last = periods(days, period, bounds)
    order = np.lexsort((days, first, rank[entity]))
    ranks, starts_of_period, sorted_days = rank[entity][order], first[order], days[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ranks[1:] != ranks[:-1]) | (starts_of_period[1:] != starts_of_period[:-1])
    starts = np.flatnonzero(new)
    new_day = new.copy()
    new_day[1:] |= sorted_days[1:] != sorted_days[:-1]
    return Groups(
        order=order,
        starts=starts,
        first_rows=entity_first[entity[order[starts]]],
        period_start=first[order[starts]],
        period_end=last[order[starts]],
        rows=np.diff(np.append(starts, len(order))),
        distinct_days=np.add.reduceat(new_day.astype(np.int64), starts),
    )


def carried(frame: pd.DataFrame, groups: Groups, spec: FrameSpec) -> dict[str, Any]:
    """The identifier columns ``spec`` has, taken from each group's entity's first row."""
    return {
        name: frame[name].array.take(groups.first_rows)
        for name in IDENTIFIERS
        if name in spec.names
    }


def fsums(values: FloatArray, starts: IntArray) -> FloatArray:
    """Correctly rounded sum (:func:`math.fsum`) of each run of ``values``."""
    items = values.tolist()
    edges = [*starts.tolist(), len(items)]
    return np.array([math.fsum(items[i:j]) for i, j in itertools.pairwise(edges)])


def int_sums(values: IntArray, starts: IntArray, name: str) -> IntArray:
    """Exact int64 sum of each run of ``values``; :class:`OverflowError` if one wraps.

    NumPy wraps silently; a wrap is off by a multiple of 2**64, which a float64
    sum (relative error ~1e-16 times the run length) tells apart.
    """
    sums: IntArray = np.add.reduceat(values, starts)
    approx = np.add.reduceat(values.astype(np.float64), starts)
    if np.any(np.abs(approx - sums.astype(np.float64)) > 2.0**62):
        raise OverflowError(f"a sum of {name!r} does not fit in int64")
    return sums
