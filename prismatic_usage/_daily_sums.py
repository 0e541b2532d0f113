"""Daily sums of hourly snapshots per owner and day, slice by slice (pure).

The customer frame averages each customer's hourly snapshots per local day. At
millions of snapshots the per-row NumPy arrays (owner code, day, two counts,
masks: ~50 bytes a row) would cost several hundred MB at once, so the snapshots
are summed one slice of :data:`SLICE_ROWS` rows at a time and the per-slice
sums (one row per owner and day) are added up at the end: exact integers, the
same rows in the same order as one pass over everything.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._calendar import local_days
from ._distinct_values import per_distinct_value

__all__ = [
    "SLICE_ROWS",
    "daily_sums",
    "in_range",
    "int64_values",
    "owner_codes",
    "row_slices",
    "snapshot_daily_sums",
]

#: Rows handled at once by the slice-wise passes over a record table.
SLICE_ROWS = 1 << 20

_EPOCH = dt.date(1970, 1, 1)
_SUMS = ["instances", "integrations", "snapshots"]

IntArray = np.ndarray[Any, np.dtype[np.int64]]


def row_slices(table: pa.Table, rows: int = SLICE_ROWS) -> Iterator[pa.Table]:
    """``table`` in zero-copy slices of at most ``rows`` rows (one empty slice if empty).

    Parameters
    ----------
    table
        Any Arrow table.
    rows
        The most rows a slice holds.
    """
    yield table.slice(0, rows)
    for at in range(rows, table.num_rows, rows):
        yield table.slice(at, rows)


def snapshot_daily_sums(
    snapshots: pa.Table,
    ranked_ids: pa.ChunkedArray | pa.Array,
    zone: zoneinfo.ZoneInfo,
    start: dt.date,
    end: dt.date,
    *,
    slice_rows: int = SLICE_ROWS,
) -> pd.DataFrame:
    """Per customer rank and local day in ``start`` .. ``end``: summed counts and snapshots.

    Parameters
    ----------
    snapshots
        Hourly snapshots (the records' schema); those of customers not in
        ``ranked_ids`` and outside the days are left out.
    ranked_ids
        Customer IDs in report order: a snapshot's code is its customer's position.
    zone
        The zone whose calendar days bucket the snapshots.
    start, end
        The inclusive range of days.
    slice_rows
        Snapshots summed at once (the result does not depend on it).

    Returns
    -------
    pandas.DataFrame
        Columns ``code``, ``day`` (days since 1970-01-01), ``instances``,
        ``integrations`` and ``snapshots``, ordered by code then day.
    """
    if isinstance(ranked_ids, pa.ChunkedArray):
        ranked_ids = ranked_ids.combine_chunks()
    parts = []
    for part in row_slices(snapshots, slice_rows):
        codes = owner_codes(part.column("customer_id"), ranked_ids)
        days = local_days(part.column("snapshot_time"), zone)
        keep = (codes >= 0) & in_range(days, start, end)
        parts.append(
            daily_sums(
                codes[keep],
                days[keep],
                instances=int64_values(part.column("deployed_instance_count"))[keep],
                integrations=int64_values(part.column("deployed_unique_integration_count"))[keep],
            )
        )
    return parts[0] if len(parts) == 1 else _added_up(parts)


def _added_up(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-slice sums (each ordered by code then day) added up per (code, day), exactly."""
    stacked = pd.concat(parts, ignore_index=True)
    total = stacked.groupby(["code", "day"], sort=True)[_SUMS].sum()
    largest = int(np.abs(stacked[_SUMS].to_numpy()).max()) if len(stacked) else 0
    if largest > 2**62 // max(1, len(stacked)):
        # As in daily_sums: only hand-built records get here; a float sum exposes a wrap.
        approx = stacked.astype(dict.fromkeys(_SUMS, float))
        approx = approx.groupby(["code", "day"], sort=True)[_SUMS].sum()
        if np.any(np.abs(approx.to_numpy() - total.to_numpy().astype(np.float64)) > 2.0**62):
            raise OverflowError("a day's sum of deployed instances or integrations overflows int64")
    return total.reset_index()


def owner_codes(
    keys: pa.ChunkedArray | pa.Array, ranked_ids: pa.ChunkedArray | pa.Array
) -> IntArray:
    """Each key's row number in ``ranked_ids`` (its rank), or -1 if it is not there.

    Parameters
    ----------
    keys
        Owner IDs, e.g. each snapshot's ``customer_id`` (plain or dictionary-encoded).
    ranked_ids
        The owners' IDs in rank order.
    """
    if isinstance(ranked_ids, pa.ChunkedArray):
        ranked_ids = ranked_ids.combine_chunks()
    positions = per_distinct_value(keys, partial(pc.index_in, value_set=ranked_ids))
    return int64_values(pc.fill_null(positions, -1))


def in_range(days: IntArray, start: dt.date, end: dt.date) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Whether each day lies within ``start`` .. ``end``, both inclusive.

    Parameters
    ----------
    days
        Days since 1970-01-01.
    start, end
        The first and last day of the range.
    """
    first, last = (start - _EPOCH).days, (end - _EPOCH).days
    return (days >= first) & (days <= last)


def daily_sums(
    codes: IntArray, days: IntArray, *, instances: IntArray, integrations: IntArray
) -> pd.DataFrame:
    """Exact int64 sums and snapshot counts per (code, day), ordered by code then day.

    Parameters
    ----------
    codes, days
        Each snapshot's owner rank and day (days since 1970-01-01).
    instances, integrations
        Each snapshot's counts.
    """
    dense = _dense_daily_sums(codes, days, instances=instances, integrations=integrations)
    if dense is not None:
        return dense
    snapshots = pd.DataFrame(
        {"code": codes, "day": days, "instances": instances, "integrations": integrations}
    )
    grouped = snapshots.groupby(["code", "day"], sort=True)
    daily = grouped[["instances", "integrations"]].sum()
    largest = max((int(np.abs(v).max()) for v in (instances, integrations) if v.size), default=0)
    if largest > 2**62 // max(1, codes.size):
        # Counts from the API are 32-bit (records refuse more), so only records built
        # by hand get here: a float sum, off by far less than 2**62, exposes a wrap.
        approx = (
            snapshots.astype({"instances": float, "integrations": float})
            .groupby(["code", "day"], sort=True)[["instances", "integrations"]]
            .sum()
        )
        if np.any(np.abs(approx.to_numpy() - daily.to_numpy().astype(np.float64)) > 2.0**62):
            raise OverflowError("a day's sum of deployed instances or integrations overflows int64")
    daily["snapshots"] = grouped.size()
    return daily.reset_index()


def _dense_daily_sums(
    codes: IntArray, days: IntArray, *, instances: IntArray, integrations: IntArray
) -> pd.DataFrame | None:
    """:func:`_daily_sums` by counting into one bin per (code, day), or ``None``.

    ``np.bincount`` adds in float64, which is exact while every partial sum is an
    integer below 2**53: guaranteed when ``rows * max|value| <= 2**53`` (always
    for API counts, which are 32-bit). Used only then, and when the bins (codes x
    days spanned) number at most a few per row; otherwise ``None``.
    """
    if not codes.size:
        return None
    first = int(days.min())
    offsets = days - first
    span = int(offsets.max()) + 1
    bins = (int(codes.max()) + 1) * span
    largest = max(int(np.abs(values).max()) for values in (instances, integrations))
    if bins > 4 * codes.size + 1_000_000 or largest * codes.size > 2**53:
        return None
    key = codes * span + offsets
    counts = np.bincount(key, minlength=bins)
    present = np.flatnonzero(counts)
    columns = {
        "code": present // span,
        "day": present % span + first,
        **{
            name: np.bincount(key, weights=values, minlength=bins)[present].astype(np.int64)
            for name, values in (("instances", instances), ("integrations", integrations))
        },
        "snapshots": counts[present].astype(np.int64),
    }
    return pd.DataFrame(columns)


def int64_values(values: pa.ChunkedArray | pa.Array) -> IntArray:
    """An Arrow integer column (no nulls) as a NumPy int64 array.

    Parameters
    ----------
    values
        Arrow integers without nulls.
    """
    return np.asarray(values.to_numpy(), dtype=np.int64)
