"""Days, the requested range and calendar periods for :mod:`prismatic_usage.billing`.

Days are integers: days since 1970-01-01 (as Parquet's ``date32`` stores them). A range is
an inclusive ``(first, last)`` pair of such days; a period is the calendar month,
the ISO week or the whole range, clipped to the range.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ._calendar import hours_in_days
from .columns import date_array
from .errors import ConfigurationError

DateLike = dt.date | str | None
IntArray = np.ndarray[Any, np.dtype[np.int64]]

EPOCH = dt.date(1970, 1, 1)


def days(dates: pd.Series[Any]) -> IntArray:
    """A DATE column (midnights of any ``datetime64`` unit, or ``date32``) as days since
    1970-01-01."""
    if dates.dtype.kind != "M":  # date32[pyarrow]
        return np.asarray(pa.array(dates.array).cast(pa.int32()).to_numpy(), dtype=np.int64)
    return np.asarray(dates.to_numpy(dtype="datetime64[D]").astype(np.int64), dtype=np.int64)


def day(value: DateLike, name: str) -> int | None:
    """A ``start``/``end`` argument as days since 1970-01-01, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not an ISO date (YYYY-MM-DD)") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ConfigurationError(f"{name}={value!r}: give a datetime.date or an ISO date string")
    return (value - EPOCH).days


def day_range(
    data_days: Sequence[IntArray], start: DateLike, end: DateLike
) -> tuple[int, int] | None:
    """The inclusive day range to report, or None when it is empty.

    Missing bounds default to the data's first and last day; only an explicit
    ``start`` after an explicit ``end`` is an error.
    """
    first, last = day(start, "start"), day(end, "end")
    if first is not None and last is not None and first > last:
        raise ConfigurationError(f"start {start} is after end {end}")
    present = [d for d in data_days if d.size]
    if not present and (first is None or last is None):
        return None
    first = min(int(d.min()) for d in present) if first is None else first
    last = max(int(d.max()) for d in present) if last is None else last
    return (first, last) if first <= last else None


def rows_in_range(
    frame: pd.DataFrame, start: DateLike, end: DateLike
) -> tuple[pd.DataFrame, IntArray, tuple[int, int]] | None:
    """The rows inside the requested range, their days and the range; None if no rows."""
    frame_days = days(frame["Date"])
    bounds = day_range([frame_days], start, end)
    if bounds is None:
        return None
    keep = (frame_days >= bounds[0]) & (frame_days <= bounds[1])
    return (frame[keep], frame_days[keep], bounds) if keep.any() else None


def month_bounds(days: IntArray) -> tuple[IntArray, IntArray]:
    """First and last day of each day's calendar month."""
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    first = months.astype("datetime64[D]").astype(np.int64)
    last = (months + 1).astype("datetime64[D]").astype(np.int64) - 1
    return first, last


def month_lengths(days: IntArray) -> IntArray:
    """The number of days in each day's calendar month."""
    first, last = month_bounds(days)
    return last - first + 1


def periods(days: IntArray, period: str, bounds: tuple[int, int]) -> tuple[IntArray, IntArray]:
    """Each day's period as (first day, last day), clipped to the inclusive range."""
    if period == "month":
        first, last = month_bounds(days)
    elif period == "week":
        first = days - (days + 3) % 7  # 1970-01-01 was a Thursday (ISO weekday index 3)
        last = first + 6
    else:
        first, last = np.full_like(days, bounds[0]), np.full_like(days, bounds[1])
    return np.maximum(first, bounds[0]), np.minimum(last, bounds[1])


def period_columns(first: IntArray, last: IntArray) -> dict[str, Any]:
    """``Period Start`` and ``Period End`` as DATE arrays."""
    return {"Period Start": date_array(first), "Period End": date_array(last)}


def hour_columns(
    first: IntArray, last: IntArray, snapshots: IntArray, zone: zoneinfo.ZoneInfo
) -> dict[str, Any]:
    """``Snapshots``, ``Expected Snapshots`` (every hour of the period in ``zone``) and their ratio.

    A period's expected snapshots are the hours of all its days, with or without
    data: 24 a day, 23 and 25 on the days daylight saving time changes.
    """
    if not len(first):
        expected = np.zeros(0, dtype=np.int64)
    else:
        low, high = int(first.min()), int(last.max())
        hours = hours_in_days(np.arange(low, high + 1, dtype=np.int64), zone)
        cumulative = np.concatenate([[0], np.cumsum(hours)])
        expected = cumulative[last - low + 1] - cumulative[first - low]
    return {
        "Snapshots": snapshots,
        "Expected Snapshots": expected,
        "Snapshot Coverage": snapshots / np.maximum(expected, 1),
    }


def coverage_columns(first: IntArray, last: IntArray, with_data: IntArray) -> dict[str, Any]:
    """``Days With Data``, ``Days In Period`` and ``Coverage``, their ratio."""
    in_period = last - first + 1
    return {
        "Days With Data": with_data,
        "Days In Period": in_period,
        "Coverage": with_data / in_period,
    }
