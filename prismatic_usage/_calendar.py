"""Local calendar days as numbers: how many hours each has, and whether it is final (pure).

Days are integers (days since 1970-01-01) in an IANA zone. A day's length is
the time between its local midnight and the next one: 24 hours, or 23 and 25
on the days daylight saving time starts and ends. A day is *final* once it
ended at least ``final_after`` hours before ``as_of`` (the run's start): the
API will not add to it any more.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["day_and_hour", "day_span", "final_days", "hours_in_days", "local_days"]

_EPOCH = dt.date(1970, 1, 1)

IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


def _midnight_utc(day: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    local = dt.datetime.combine(_EPOCH + dt.timedelta(days=int(day)), dt.time(0), tzinfo=zone)
    return local.astimezone(dt.UTC)


def _per_unique_day(days: IntArray, compute: Any) -> np.ndarray[Any, Any]:
    unique, inverse = np.unique(np.asarray(days, dtype=np.int64), return_inverse=True)
    values = np.array([compute(int(day)) for day in unique])
    return values[inverse] if len(unique) else np.array([], dtype=values.dtype)


def day_span(start: dt.date, end: dt.date) -> IntArray:
    """Every day from ``start`` to ``end`` (inclusive), as days since 1970-01-01."""
    return np.arange((start - _EPOCH).days, (end - _EPOCH).days + 1, dtype=np.int64)


def hours_in_days(days: IntArray, zone: zoneinfo.ZoneInfo) -> IntArray:
    """The length of each local day in hours (23, 24 or 25; other values in odd zones).

    Parameters
    ----------
    days
        Days since 1970-01-01, as local calendar days in ``zone``.
    zone
        The zone whose midnights bound the days.
    """

    def hours(day: int) -> int:
        seconds = (_midnight_utc(day + 1, zone) - _midnight_utc(day, zone)).total_seconds()
        return round(seconds / 3600)

    return np.asarray(_per_unique_day(days, hours), dtype=np.int64)


def final_days(
    days: IntArray, zone: zoneinfo.ZoneInfo, *, as_of: dt.datetime, final_after: float
) -> BoolArray:
    """Whether each local day ended at least ``final_after`` hours before ``as_of``.

    Parameters
    ----------
    days
        Days since 1970-01-01, as local calendar days in ``zone``.
    zone
        The zone whose midnights bound the days.
    as_of
        The moment the data was fetched (timezone-aware).
    final_after
        Hours after its end from which a day no longer changes.
    """
    limit = as_of - dt.timedelta(hours=final_after)
    return np.asarray(
        _per_unique_day(days, lambda day: _midnight_utc(day + 1, zone) <= limit), dtype=np.bool_
    )


_UTC_KEYS = frozenset({"UTC", "Etc/UTC"})
_MICROS_PER_DAY = 86_400 * 1_000_000


def local_days(times: pa.ChunkedArray | pa.Array, zone: zoneinfo.ZoneInfo) -> IntArray:
    """Calendar day (days since 1970-01-01) of each UTC timestamp, as seen in ``zone``.

    Parameters
    ----------
    times
        Arrow timestamps (``timestamp[us, UTC]``).
    zone
        The zone whose calendar the days are in.
    """
    micros = np.asarray(times.cast(pa.int64()).to_numpy(), dtype=np.int64)
    if zone.key not in _UTC_KEYS:
        # The day is the local wall-clock date, so convert to local time first:
        # tz_convert applies the offset in force at each instant (DST-correct),
        # and dropping the zone afterwards keeps the wall-clock reading.
        utc = pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC")
        micros = np.asarray(utc.tz_convert(zone).tz_localize(None).asi8, dtype=np.int64)
    result: IntArray = micros // _MICROS_PER_DAY
    return result


def day_and_hour(
    times: pa.ChunkedArray | pa.Array, zone: zoneinfo.ZoneInfo
) -> tuple[IntArray, IntArray]:
    """Each timestamp's local day and its hour within that day (0 .. 22, 23 or 24).

    The hour counts elapsed hours since the local midnight, so the repeated
    hour of a day that falls back is told apart and a half-hour zone's hours
    stay within their day.

    Parameters
    ----------
    times
        Arrow timestamps (``timestamp[us, UTC]``).
    zone
        The zone whose days and midnights are meant.
    """
    days = local_days(times, zone)
    micros = np.asarray(times.cast(pa.int64()).to_numpy(), dtype=np.int64)

    def midnight(day: int) -> int:
        return int(_midnight_utc(day, zone).timestamp()) * 1_000_000

    midnights = np.asarray(_per_unique_day(days, midnight), dtype=np.int64)
    return days, (micros - midnights) // 3_600_000_000
