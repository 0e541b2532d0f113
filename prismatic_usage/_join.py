"""Outer join of the two per-customer roll-ups, for :func:`billing.billing_summary`."""

from __future__ import annotations

import zoneinfo
from typing import Any

import numpy as np
import pandas as pd

from ._periods import IntArray, coverage_columns, days, hour_columns, period_columns
from ._rollup import COUNTS, EXTERNAL_ID

# Usage measures and their value when a customer has compute but no usage in a period.
_USAGE_FILLS = (
    ("Average Deployed Instances", np.nan),
    ("Average Unique Integrations", np.nan),
    ("Peak Deployed Instances", np.nan),
    ("Instance-Days", 0.0),
    ("Instance-Months", 0.0),
)


def joined(usage: pd.DataFrame, compute: pd.DataFrame, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """Both roll-ups outer-joined on (customer ID, period start), missing sides filled.

    With hour coverage in ``usage``, a period without usage has 0 snapshots of
    every hour of the period in ``zone`` expected.
    """
    usage_keys = list(zip(usage["Customer ID"], days(usage["Period Start"]).tolist(), strict=True))
    compute_keys = list(
        zip(compute["Customer ID"], days(compute["Period Start"]).tolist(), strict=True)
    )
    keys = list(dict.fromkeys([*usage_keys, *compute_keys]))
    u = _positions(keys, usage_keys)
    c = _positions(keys, compute_keys)
    data: dict[str, Any] = {
        name: _coalesce(usage.get(name), u, compute.get(name), c)
        for name in ("Customer ID", "Customer Name", EXTERNAL_ID)
    }
    if EXTERNAL_ID in data:
        data[EXTERNAL_ID] = _external_ids(data["Customer ID"], data[EXTERNAL_ID], usage, compute)
    period_start = np.array([day for _, day in keys], dtype=np.int64)
    period_end = _take(days(usage["Period End"]), u, _take(days(compute["Period End"]), c, 0))
    days_with_data = _take(usage["Days With Data"].to_numpy(np.int64), u, 0)
    data |= period_columns(period_start, period_end)
    data |= coverage_columns(period_start, period_end, days_with_data)
    if "Snapshots" in usage.columns:
        snapshots = _take(usage["Snapshots"].to_numpy(np.int64), u, 0)
        data |= hour_columns(period_start, period_end, snapshots, zone)
    for name, fill in _USAGE_FILLS:
        data[name] = _take(usage[name].to_numpy(np.float64), u, fill)
    for name in COUNTS:
        data[name] = _take(compute[name].to_numpy(np.int64), c, 0)
    gb_seconds = compute["Execution GB-Seconds"].to_numpy(np.float64)
    data["Execution GB-Seconds"] = _take(gb_seconds, c, 0.0)
    return data


def _external_ids(
    customer_ids: np.ndarray[Any, Any],
    joined_ids: np.ndarray[Any, Any],
    *frames: pd.DataFrame,
) -> np.ndarray[Any, Any]:
    """The external ID of each row's customer, from any row of either frame that has it.

    An external ID belongs to the customer, not to a period: when only one input
    frame is extended, rows that came from the other one still get it.
    """
    known: dict[str, Any] = {}
    for frame in frames:
        if EXTERNAL_ID in frame:
            pairs = zip(frame["Customer ID"], frame[EXTERNAL_ID], strict=True)
            known.update((cid, ext) for cid, ext in pairs if not pd.isna(ext))
    filled = [
        known.get(cid, ext) if pd.isna(ext) else ext
        for cid, ext in zip(customer_ids, joined_ids, strict=True)
    ]
    return np.array(filled, dtype=object)


def _positions(keys: list[tuple[str, int]], side: list[tuple[str, int]]) -> IntArray:
    """Each key's row in ``side``, or -1."""
    row = {key: i for i, key in enumerate(side)}
    return np.array([row.get(key, -1) for key in keys], dtype=np.int64)


def _take(values: np.ndarray[Any, Any], positions: IntArray, fill: Any) -> np.ndarray[Any, Any]:
    """``values[positions]``, with ``fill`` (a scalar or an array) where the position is -1."""
    present = positions >= 0
    result = np.array(np.broadcast_to(fill, positions.shape), dtype=values.dtype)
    result[present] = values[positions[present]]
    return result


def _coalesce(
    first: pd.Series[Any] | None,
    first_pos: IntArray,
    second: pd.Series[Any] | None,
    second_pos: IntArray,
) -> np.ndarray[Any, Any]:
    """A text column from ``first`` where it has the row and a value, else from ``second``."""
    result = np.full(len(first_pos), None, dtype=object)
    for values, positions in [(second, second_pos), (first, first_pos)]:
        if values is None:
            continue
        taken = _take(np.array(values.tolist(), dtype=object), positions, None)
        result = np.where(pd.isna(taken), result, taken)
    return result
