"""The billing summary: both per-customer roll-ups joined, with coverage, finality and amounts.

Part of :mod:`prismatic_usage.billing` (which re-exports :func:`billing_summary`);
see that module's docstring for periods and the meaning of each measure.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pandas as pd

from . import _join, _money, _periods, _rollup
from ._calendar import final_days
from ._periods import DateLike
from .billing import MB_PER_GB, Prices, _check_period, compute_rollup, customer_period_rollup
from .columns import (
    BILLING_SUMMARY,
    CUSTOMER_INSTANCE,
    HOUR_COLUMNS,
    INSTANCE_COMPUTE,
    naming_of,
    with_column_names,
)
from .config import DEFAULT_FINAL_AFTER_HOURS, resolve_zone
from .errors import ConfigurationError

__all__ = ["billing_summary"]

_UTC = zoneinfo.ZoneInfo("UTC")


def billing_summary(
    customer_frame: pd.DataFrame,
    compute_frame: pd.DataFrame,
    *,
    period: str = "month",
    start: DateLike = None,
    end: DateLike = None,
    prices: Prices | None = None,
    tz: str = "UTC",
    as_of: dt.datetime | None = None,
    final_after: float = DEFAULT_FINAL_AFTER_HOURS,
    column_names: str | None = None,
) -> pd.DataFrame:
    """One row per customer and period: usage, compute and, if priced, amounts.

    The customer roll-up (:func:`customer_period_rollup`) and the per-customer
    compute roll-up (:func:`compute_rollup`, ``by="customer"``) are taken over
    the same range (default: first to last Date over both frames) and joined on
    customer ID and period; a row appears when either has data. Missing sides
    are filled explicitly: with no instance data the averages and peak are NaN
    (there is nothing to average), ``Instance-Days``, ``Instance-Months``,
    ``Days With Data`` and ``Coverage`` are 0; with no compute rows the counts
    and GB-seconds are 0. ``Days With Data`` and ``Coverage`` always describe
    the instance data (the customer frame), the basis of per-instance billing.

    Amount columns appear only for the prices given, each computed per row with
    exact decimal arithmetic and rounded once, to the cent, half-up:

    - ``Instance Amount`` = Instance-Months x ``instance_month``, with
      Instance-Months taken as the decimal the CSV shows (the shortest text
      that reads back as the same float64), so the line can be checked by hand;
    - ``Compute Amount`` = Execution Mb-Seconds / 1024 x ``gb_second``;
    - ``Execution Amount`` = (Successful + Failed Executions) / 1000 x
      ``per_1k_executions``;
    - ``Total Amount`` = the sum of the rounded lines (so it always adds up).

    Parameters
    ----------
    customer_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.customer_instance_frame`.
    compute_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.instance_compute_frame`.
    period : {"month", "week", "range"}, default "month"
        ``"month"``: calendar months; ``"week"``: ISO weeks, Monday to Sunday;
        ``"range"``: the whole range as one period. Periods are clipped to the
        range, so a range starting on 15 January gives a January row of 17 days.
    start, end : datetime.date or ISO str, optional
        The requested range, inclusive.
    prices : Prices, optional
        Unit prices; without them there are no amount columns.
    tz : str, default "UTC"
        The zone of the frames' days; with an extended customer frame the
        summary counts coverage in hours too (``Snapshots``, ``Expected
        Snapshots`` for every hour of the period, ``Snapshot Coverage``).
    as_of : datetime.datetime, optional
        When the data was fetched (``records.fetched_at``); given, a ``Final``
        column says whether each period's last day ended at least
        ``final_after`` hours before it, so the row will not change.
    final_after : float, default 48
        Hours after its end from which a day is final.
    column_names : {"original", "snake"}, optional
        Names of the result's columns: the report headers or snake-case names;
        default the customer frame's own naming (either is accepted as input).

    Returns
    -------
    pandas.DataFrame
        Columns as declared in :data:`prismatic_usage.columns.BILLING_SUMMARY`:
        ``Customer External ID`` if either input has it, amounts as
        ``decimal128(18, 2)[pyarrow]`` (elements are :class:`decimal.Decimal`);
        sorted by customer name, customer ID and period.

    Raises
    ------
    ConfigurationError
        As for the roll-ups, or if ``prices`` is not a :class:`Prices`.
    OverflowError
        If a sum does not fit in int64 or an amount reaches 10**16.

    Examples
    --------
    >>> from prismatic_usage.columns import CUSTOMER_INSTANCE, INSTANCE_COMPUTE
    >>> summary = billing_summary(
    ...     CUSTOMER_INSTANCE.select(extended=False).empty(),
    ...     INSTANCE_COMPUTE.select(extended=False).empty(),
    ...     prices=Prices(per_1k_executions="0.50"),
    ... )
    >>> summary.columns[-2:].tolist()
    ['Execution Amount', 'Total Amount']
    """
    naming = naming_of(customer_frame, column_names)
    result = _billing_summary(
        with_column_names(customer_frame, "original"),
        with_column_names(compute_frame, "original"),
        period=period,
        start=start,
        end=end,
        prices=prices,
        tz=tz,
        as_of=as_of,
        final_after=final_after,
    )
    return with_column_names(result, naming)


def _billing_summary(
    customer_frame: pd.DataFrame,
    compute_frame: pd.DataFrame,
    *,
    period: str = "month",
    start: DateLike = None,
    end: DateLike = None,
    prices: Prices | None = None,
    tz: str = "UTC",
    as_of: dt.datetime | None = None,
    final_after: float = DEFAULT_FINAL_AFTER_HOURS,
) -> pd.DataFrame:
    """The body of :func:`billing_summary`, on frames with the original headers."""
    _check_period(period)
    if prices is not None and not isinstance(prices, Prices):
        raise ConfigurationError(f"prices must be a Prices instance, not {type(prices).__name__}")
    extended = any(
        [  # a list, not a generator: both frames are checked
            _rollup.is_extended_daily(customer_frame, CUSTOMER_INSTANCE),
            _rollup.is_extended_daily(compute_frame, INSTANCE_COMPUTE),
        ]
    )
    lines = _priced_lines(prices)
    zone = resolve_zone(tz)
    hourly = "Snapshots" in customer_frame.columns
    spec = BILLING_SUMMARY.select(
        extended=extended,
        optional=[
            *(["Final"] if as_of is not None else []),
            *(HOUR_COLUMNS if hourly else []),
            *([*lines, "Total Amount"] if lines else []),
        ],
    )
    bounds = _periods.day_range(
        [_periods.days(customer_frame["Date"]), _periods.days(compute_frame["Date"])], start, end
    )
    if bounds is None:
        return spec.empty()
    first, last = (_periods.EPOCH + dt.timedelta(days=day) for day in bounds)
    usage = customer_period_rollup(customer_frame, period=period, start=first, end=last, tz=tz)
    compute = compute_rollup(compute_frame, period=period, by="customer", start=first, end=last)
    if usage.empty and compute.empty:
        return spec.empty()
    data = _join.joined(usage, compute, zone)
    if as_of is not None:
        period_end = _periods.days(pd.Series(data["Period End"]))
        # Final in the report's zone and as a UTC day (the compute rows' snapshotDate).
        data["Final"] = final_days(
            period_end, zone, as_of=as_of, final_after=final_after
        ) & final_days(period_end, _UTC, as_of=as_of, final_after=final_after)
    if lines:
        data.update(_amounts(data, lines))
    frame = spec.build({name: data[name] for name in spec.names})
    return frame.sort_values(["Customer Name", "Customer ID", "Period Start"], ignore_index=True)


def _priced_lines(prices: Prices | None) -> dict[str, Decimal]:
    """The amount columns the given prices produce (without the total), with their prices."""
    if prices is None:
        return {}
    given = {
        "Instance Amount": prices.instance_month,
        "Compute Amount": prices.gb_second,
        "Execution Amount": prices.per_1k_executions,
    }
    return {name: price for name, price in given.items() if price is not None}


def _amounts(data: dict[str, Any], lines: dict[str, Decimal]) -> dict[str, list[Decimal]]:
    """The amount columns priced in ``lines``, and their total, per row."""
    amounts: dict[str, list[Decimal]] = {}
    if "Instance Amount" in lines:
        months = [Decimal(repr(value)) for value in data["Instance-Months"].tolist()]
        price = lines["Instance Amount"]
        amounts["Instance Amount"] = [_money.amount(q, 1, price) for q in months]
    if "Compute Amount" in lines:
        price = lines["Compute Amount"]
        mb_seconds = data["Execution Mb-Seconds"].tolist()
        amounts["Compute Amount"] = [_money.amount(mb, MB_PER_GB, price) for mb in mb_seconds]
    if "Execution Amount" in lines:
        price = lines["Execution Amount"]
        runs = zip(
            data["Successful Executions"].tolist(), data["Failed Executions"].tolist(), strict=True
        )
        amounts["Execution Amount"] = [_money.amount(s + f, 1000, price) for s, f in runs]
    amounts["Total Amount"] = [_money.total(row) for row in zip(*amounts.values(), strict=True)]
    return amounts
