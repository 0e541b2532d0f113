"""Billing views: period roll-ups of the two daily frames and a priced summary.

Pure functions over the frames of :mod:`prismatic_usage.frames`; no network, no
files. Every roll-up number is the sum, mean, maximum or count of the daily rows
of its group, so an invoice line can be traced back to the days it came from.

Periods
-------
``"month"``
    Calendar month.
``"week"``
    ISO week, Monday to Sunday.
``"range"``
    The whole requested range as one period.

Periods are derived from each row's ``Date``, which the daily frames already
hold as a calendar day in the zone they were built with, so day, week and month
edges follow that zone. The requested range is ``start`` .. ``end``, both
inclusive, defaulting to the earliest and latest ``Date`` in the input; rows
outside it are dropped. ``Period Start`` and ``Period End`` are the calendar
period clipped to the range, and ``Days In Period`` counts the days between
them: a range that starts on 15 January gives a January row of 17 days. A
period with few days of data is shown, not hidden: ``Days With Data`` and
``Coverage`` (= Days With Data / Days In Period) sit next to the averages.

Arithmetic
----------
Integer sums (executions, steps, MB-seconds) are exact ``int64``; a sum that
would not fit raises :class:`OverflowError`. Float sums of daily values use
:func:`math.fsum`, the correctly rounded sum, so a result does not depend on row
order; averages divide that sum by the day count once. Units: ``1 GB = 1024
MB``, so ``Execution GB-Seconds = Execution Mb-Seconds / 1024`` (the API's
``spendMbSecs`` is MB x seconds of memory).

Amounts use :class:`decimal.Decimal` throughout; see :func:`billing_summary`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .columns import (
    BILLING_SUMMARY,
    CUSTOMER_COMPUTE_ROLLUP,
    CUSTOMER_INSTANCE,
    CUSTOMER_PERIOD_ROLLUP,
    INSTANCE_COMPUTE,
    INSTANCE_COMPUTE_ROLLUP,
    FrameSpec,
    date_array,
    spec_for_columns,
)
from .errors import ConfigurationError

__all__ = [
    "PERIODS",
    "Prices",
    "billing_summary",
    "compute_rollup",
    "customer_period_rollup",
]

PERIODS: tuple[str, ...] = ("month", "week", "range")
"""The period names the roll-ups accept."""

MB_PER_GB = 1024
"""GB-seconds = MB-seconds / 1024 (binary gigabytes, as memory is sized)."""

DateLike = dt.date | str | None
PriceLike = Decimal | int | str

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]

_EPOCH = dt.date(1970, 1, 1)
_EXTERNAL_ID = "Customer External ID"
_IDENTIFIERS = (
    "Customer ID",
    "Customer Name",
    _EXTERNAL_ID,
    "Instance ID",
    "Instance Name",
    "Integration Name",
)
_COUNTS = ("Successful Executions", "Failed Executions", "Step Count", "Execution Mb-Seconds")
_MAX_PRICE_DIGITS = 40
_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(10) ** 16  # decimal128(18, 2) holds 16 digits before the point
# Products of an int64 (19 digits), /1024 (10 more) and a price (<= 40 digits) fit
# in 100 digits, so with Inexact trapped any rounding before the final one is an error.
_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])
_ROUND = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])


# -- prices -----------------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class Prices:
    """Unit prices for :func:`billing_summary`; give any subset.

    Values are kept as :class:`decimal.Decimal`. Pass a ``Decimal``, an ``int``
    or a decimal string (``"0.000016"``); floats are refused because ``0.1``
    as a float is not 0.1, and money must be exact.

    Parameters
    ----------
    instance_month : Decimal, int or str, optional
        Price of one instance deployed for one whole calendar month.
    gb_second : Decimal, int or str, optional
        Price of one GB-second of compute (1 GB = 1024 MB).
    per_1k_executions : Decimal, int or str, optional
        Price of 1,000 executions, successful or failed.

    Raises
    ------
    ConfigurationError
        If a price is a float, bool or other type, not a finite number,
        negative, or has more than 40 significant digits.

    Examples
    --------
    >>> Prices(instance_month="25", gb_second="0.0000166667").instance_month
    Decimal('25')
    """

    instance_month: Decimal | None
    gb_second: Decimal | None
    per_1k_executions: Decimal | None

    def __init__(
        self,
        *,
        instance_month: PriceLike | None = None,
        gb_second: PriceLike | None = None,
        per_1k_executions: PriceLike | None = None,
    ) -> None:
        object.__setattr__(self, "instance_month", _price("instance_month", instance_month))
        object.__setattr__(self, "gb_second", _price("gb_second", gb_second))
        object.__setattr__(
            self, "per_1k_executions", _price("per_1k_executions", per_1k_executions)
        )


def _price(name: str, value: object) -> Decimal | None:
    """One validated price, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ConfigurationError(
            f"price {name}={value!r}: give a Decimal, an int or a decimal string such as "
            "'0.25' (floats are not exact)"
        )
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ConfigurationError(f"price {name}={value!r} is not a decimal number") from None
    if not price.is_finite() or price < 0:
        raise ConfigurationError(f"price {name}={value!r} must be a finite number >= 0")
    if len(price.as_tuple().digits) > _MAX_PRICE_DIGITS:
        raise ConfigurationError(
            f"price {name}={value!r} has more than {_MAX_PRICE_DIGITS} significant digits"
        )
    return price.copy_abs() if price.is_zero() else price  # no "-0.00" amounts


# -- public roll-ups --------------------------------------------------------------------------


def customer_period_rollup(
    customer_frame: pd.DataFrame,
    *,
    period: str = "month",
    start: DateLike = None,
    end: DateLike = None,
) -> pd.DataFrame:
    """Deployed instances per customer and period, from the daily customer frame.

    For each customer (by ID) and period with at least one daily row:

    - ``Average Deployed Instances`` / ``Average Unique Integrations``: mean of
      the daily values over the days with data;
    - ``Peak Deployed Instances``: the largest daily value;
    - ``Instance-Days``: the sum of the daily values;
    - ``Instance-Months``: the sum of each day's value divided by the length of
      its calendar month, i.e. instance-months as invoiced: one instance on
      every day of a month is 1.0 whether the month has 28 or 31 days, days
      without data count as zero, and the figure is additive (the same days
      split into weeks, months or one range give the same total), so a price
      per instance-month means the same whatever the period or range;
    - ``Days With Data``, ``Days In Period`` and ``Coverage`` (their ratio).

    Parameters
    ----------
    customer_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.customer_instance_frame`, basic or
        extended; at most one row per customer and day.
    period : {"month", "week", "range"}, default "month"
        See the module docstring.
    start, end : datetime.date or ISO str, optional
        The requested range, inclusive; default the frame's first and last Date.

    Returns
    -------
    pandas.DataFrame
        Columns as declared in :data:`prismatic_usage.columns.CUSTOMER_PERIOD_ROLLUP`
        (with ``Customer External ID`` if the input has it); sorted by customer
        name, customer ID and period. Names come from the customer's first row.

    Raises
    ------
    ConfigurationError
        If the period or a date is invalid, ``start`` is after ``end``, or the
        frame is not a customer-instance frame (or has two rows for one day).

    Examples
    --------
    >>> from prismatic_usage.columns import CUSTOMER_INSTANCE
    >>> customer_period_rollup(CUSTOMER_INSTANCE.select(extended=False).empty()).shape
    (0, 12)
    """
    _check_period(period)
    spec = CUSTOMER_PERIOD_ROLLUP.select(
        extended=_EXTERNAL_ID in _checked_daily(customer_frame, CUSTOMER_INSTANCE).names
    )
    selected = _rows_in_range(customer_frame, start, end)
    if selected is None:
        return spec.empty()
    frame, days, bounds = selected
    ranking = ["Customer Name", "Customer ID"]
    groups = _group(
        frame, days, keys=["Customer ID"], ranking=ranking, period=period, bounds=bounds
    )
    if np.any(groups.distinct_days != groups.rows):
        raise ConfigurationError(
            "customer_frame has more than one row for a customer and day; "
            "build it with frames.customer_instance_frame"
        )
    daily = frame["Deployed Instances"].to_numpy(np.float64)[groups.order]
    integrations = frame["Unique Integrations"].to_numpy(np.float64)[groups.order]
    instance_days = _fsums(daily, groups.starts)
    days_in_period = groups.period_end - groups.period_start + 1
    return spec.build(
        {
            **_carried(frame, groups, spec),
            **_period_columns(groups),
            "Average Deployed Instances": instance_days / groups.rows,
            "Average Unique Integrations": _fsums(integrations, groups.starts) / groups.rows,
            "Peak Deployed Instances": np.maximum.reduceat(daily, groups.starts),
            "Instance-Days": instance_days,
            "Instance-Months": _fsums(daily / _month_lengths(days[groups.order]), groups.starts),
            "Days With Data": groups.rows,
            "Days In Period": days_in_period,
            "Coverage": groups.rows / days_in_period,
        }
    )


def compute_rollup(
    compute_frame: pd.DataFrame,
    *,
    period: str = "month",
    by: str = "instance",
    start: DateLike = None,
    end: DateLike = None,
) -> pd.DataFrame:
    """Executions, steps and compute per instance (or customer) and period.

    Each count is the exact sum of the daily rows of the group; ``Execution
    GB-Seconds`` is ``Execution Mb-Seconds / 1024`` (1 GB = 1024 MB) as float64;
    ``Days With Data`` counts the distinct dates with at least one row.

    Parameters
    ----------
    compute_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.instance_compute_frame`, basic or extended.
    period : {"month", "week", "range"}, default "month"
        See the module docstring.
    by : {"instance", "customer"}, default "instance"
        Group by instance (within its customer) or by customer.
    start, end : datetime.date or ISO str, optional
        The requested range, inclusive; default the frame's first and last Date.

    Returns
    -------
    pandas.DataFrame
        Columns as declared in :data:`prismatic_usage.columns.INSTANCE_COMPUTE_ROLLUP`
        (``by="instance"``, file stem ``compute-rollup``) or
        :data:`~prismatic_usage.columns.CUSTOMER_COMPUTE_ROLLUP` (``by="customer"``,
        stem ``customer-compute-rollup``), with the extended columns if the input
        has them; sorted by customer name and ID, instance name and ID, period.

    Raises
    ------
    ConfigurationError
        If ``period``, ``by`` or a date is invalid, ``start`` is after ``end``,
        or the frame is not an instance-compute frame.
    OverflowError
        If a sum does not fit in int64.

    Examples
    --------
    >>> from prismatic_usage.columns import INSTANCE_COMPUTE
    >>> empty = INSTANCE_COMPUTE.select(extended=False).empty()
    >>> compute_rollup(empty, by="customer").columns[-2:].tolist()
    ['Execution Mb-Seconds', 'Execution GB-Seconds']
    """
    _check_period(period)
    if by not in ("instance", "customer"):
        raise ConfigurationError(f"unknown grouping by={by!r}; choose 'instance' or 'customer'")
    declared = INSTANCE_COMPUTE_ROLLUP if by == "instance" else CUSTOMER_COMPUTE_ROLLUP
    spec = declared.select(
        extended=_EXTERNAL_ID in _checked_daily(compute_frame, INSTANCE_COMPUTE).names
    )
    selected = _rows_in_range(compute_frame, start, end)
    if selected is None:
        return spec.empty()
    frame, days, bounds = selected
    keys, ranking = ["Customer ID"], ["Customer Name", "Customer ID"]
    if by == "instance":
        keys, ranking = [*keys, "Instance ID"], [*ranking, "Instance Name", "Instance ID"]
    groups = _group(frame, days, keys=keys, ranking=ranking, period=period, bounds=bounds)
    sums = {
        name: _int_sums(frame[name].to_numpy(np.int64)[groups.order], groups.starts, name)
        for name in _COUNTS
    }
    return spec.build(
        {
            **_carried(frame, groups, spec),
            **_period_columns(groups),
            "Days With Data": groups.distinct_days,
            **sums,
            "Execution GB-Seconds": sums["Execution Mb-Seconds"] / MB_PER_GB,
        }
    )


def billing_summary(
    customer_frame: pd.DataFrame,
    compute_frame: pd.DataFrame,
    *,
    period: str = "month",
    start: DateLike = None,
    end: DateLike = None,
    prices: Prices | None = None,
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
        See the module docstring.
    start, end : datetime.date or ISO str, optional
        The requested range, inclusive.
    prices : Prices, optional
        Unit prices; without them there are no amount columns.

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
    _check_period(period)
    if prices is not None and not isinstance(prices, Prices):
        raise ConfigurationError(f"prices must be a Prices instance, not {type(prices).__name__}")
    inputs = [
        _checked_daily(customer_frame, CUSTOMER_INSTANCE),
        _checked_daily(compute_frame, INSTANCE_COMPUTE),
    ]
    extended = any(_EXTERNAL_ID in spec.names for spec in inputs)
    lines = _amount_lines(prices)
    spec = BILLING_SUMMARY.select(
        extended=extended, optional=[*lines, "Total Amount"] if lines else []
    )
    bounds = _range([_days(customer_frame["Date"]), _days(compute_frame["Date"])], start, end)
    if bounds is None:
        return spec.empty()
    first, last = (_EPOCH + dt.timedelta(days=day) for day in bounds)
    usage = customer_period_rollup(customer_frame, period=period, start=first, end=last)
    compute = compute_rollup(compute_frame, period=period, by="customer", start=first, end=last)
    if usage.empty and compute.empty:
        return spec.empty()
    data = _joined(usage, compute)
    if prices is not None:
        data.update(_amounts(data, prices))
    frame = spec.build({name: data[name] for name in spec.names})
    return frame.sort_values(["Customer Name", "Customer ID", "Period Start"], ignore_index=True)


# -- checks and ranges ------------------------------------------------------------------------


def _check_period(period: str) -> None:
    """Refuse an unknown period name."""
    if period not in PERIODS:
        raise ConfigurationError(f"unknown period {period!r}; choose from {list(PERIODS)}")


def _checked_daily(frame: pd.DataFrame, report: FrameSpec) -> FrameSpec:
    """The variant of the daily ``report`` that ``frame`` is, after checking dtypes and nulls."""
    spec = spec_for_columns(frame.columns)
    if spec is None or spec.stem != report.stem:
        raise ConfigurationError(
            f"frame has columns {list(map(str, frame.columns))}, expected those of "
            f"{report.stem} ({report.select(extended=False).names}, optionally extended)"
        )
    for column in spec.columns:
        values = frame[column.name]
        ok = (
            isinstance(values.dtype, pd.StringDtype)
            if column.type.text
            else values.dtype == column.type.pandas
        )
        if not ok:
            raise ConfigurationError(
                f"column {column.name!r} has dtype {values.dtype}, expected {column.type.pandas}"
            )
        if not column.nullable and values.isna().any():
            raise ConfigurationError(f"column {column.name!r} has missing values")
    return spec


def _days(dates: pd.Series[Any]) -> IntArray:
    """A DATE column as days since 1970-01-01."""
    return np.asarray(pa.array(dates.array).cast(pa.int32()).to_numpy(), dtype=np.int64)


def _day(value: DateLike, name: str) -> int | None:
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
    return (value - _EPOCH).days


def _range(days: Sequence[IntArray], start: DateLike, end: DateLike) -> tuple[int, int] | None:
    """The inclusive day range to report, or None when it is empty.

    Missing bounds default to the data's first and last day; only an explicit
    ``start`` after an explicit ``end`` is an error.
    """
    first, last = _day(start, "start"), _day(end, "end")
    if first is not None and last is not None and first > last:
        raise ConfigurationError(f"start {start} is after end {end}")
    present = [d for d in days if d.size]
    if not present and (first is None or last is None):
        return None
    first = min(int(d.min()) for d in present) if first is None else first
    last = max(int(d.max()) for d in present) if last is None else last
    return (first, last) if first <= last else None


def _rows_in_range(
    frame: pd.DataFrame, start: DateLike, end: DateLike
) -> tuple[pd.DataFrame, IntArray, tuple[int, int]] | None:
    """The rows inside the requested range, their days and the range; None if no rows."""
    days = _days(frame["Date"])
    bounds = _range([days], start, end)
    if bounds is None:
        return None
    keep = (days >= bounds[0]) & (days <= bounds[1])
    return (frame[keep], days[keep], bounds) if keep.any() else None


# -- periods and groups -----------------------------------------------------------------------


def _month_bounds(days: IntArray) -> tuple[IntArray, IntArray]:
    """First and last day of each day's calendar month."""
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    first = months.astype("datetime64[D]").astype(np.int64)
    last = (months + 1).astype("datetime64[D]").astype(np.int64) - 1
    return first, last


def _month_lengths(days: IntArray) -> IntArray:
    """The number of days in each day's calendar month."""
    first, last = _month_bounds(days)
    return last - first + 1


def _periods(days: IntArray, period: str, bounds: tuple[int, int]) -> tuple[IntArray, IntArray]:
    """Each day's period as (first day, last day), clipped to the inclusive range."""
    if period == "month":
        first, last = _month_bounds(days)
    elif period == "week":
        first = days - (days + 3) % 7  # 1970-01-01 was a Thursday (ISO weekday index 3)
        last = first + 6
    else:
        first, last = np.full_like(days, bounds[0]), np.full_like(days, bounds[1])
    return np.maximum(first, bounds[0]), np.minimum(last, bounds[1])


@dataclass(frozen=True)
class _Groups:
    """Rows sorted into (entity, period) groups, each a contiguous run of ``order``."""

    order: IntArray  # row positions, sorted by entity rank, period and day
    starts: IntArray  # where each group's run begins in ``order``
    first_rows: IntArray  # per group, the row its identifiers come from
    period_start: IntArray
    period_end: IntArray
    rows: IntArray
    distinct_days: IntArray


def _group(
    frame: pd.DataFrame,
    days: IntArray,
    *,
    keys: list[str],
    ranking: list[str],
    period: str,
    bounds: tuple[int, int],
) -> _Groups:
    """Group rows by ``keys`` and period; groups ordered by ``ranking`` of the entity, then period."""
    entity = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy(np.int64)
    entity_first = np.unique(entity, return_index=True)[1]  # entity codes are 0..k-1
    heads = frame.iloc[entity_first][ranking].reset_index(drop=True)
    rank = np.empty(len(heads), dtype=np.int64)
    rank[heads.sort_values(ranking, kind="stable").index.to_numpy()] = np.arange(len(heads))
    first, last = _periods(days, period, bounds)
    order = np.lexsort((days, first, rank[entity]))
    ranks, periods, sorted_days = rank[entity][order], first[order], days[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ranks[1:] != ranks[:-1]) | (periods[1:] != periods[:-1])
    starts = np.flatnonzero(new)
    new_day = new.copy()
    new_day[1:] |= sorted_days[1:] != sorted_days[:-1]
    return _Groups(
        order=order,
        starts=starts,
        first_rows=entity_first[entity[order[starts]]],
        period_start=first[order[starts]],
        period_end=last[order[starts]],
        rows=np.diff(np.append(starts, len(order))),
        distinct_days=np.add.reduceat(new_day.astype(np.int64), starts),
    )


def _carried(frame: pd.DataFrame, groups: _Groups, spec: FrameSpec) -> dict[str, Any]:
    """The identifier columns ``spec`` has, taken from each group's entity's first row."""
    return {
        name: frame[name].array.take(groups.first_rows)
        for name in _IDENTIFIERS
        if name in spec.names
    }


def _period_columns(groups: _Groups) -> dict[str, Any]:
    """``Period Start`` and ``Period End`` as DATE arrays."""
    return {
        "Period Start": date_array(groups.period_start),
        "Period End": date_array(groups.period_end),
    }


def _fsums(values: FloatArray, starts: IntArray) -> FloatArray:
    """Correctly rounded sum (:func:`math.fsum`) of each run of ``values``."""
    items = values.tolist()
    edges = [*starts.tolist(), len(items)]
    return np.array([math.fsum(items[i:j]) for i, j in itertools.pairwise(edges)])


def _int_sums(values: IntArray, starts: IntArray, name: str) -> IntArray:
    """Exact int64 sum of each run of ``values``; :class:`OverflowError` if one wraps.

    NumPy wraps silently; a wrap is off by a multiple of 2**64, which a float64
    sum (relative error ~1e-16 times the run length) tells apart.
    """
    sums: IntArray = np.add.reduceat(values, starts)
    approx = np.add.reduceat(values.astype(np.float64), starts)
    if np.any(np.abs(approx - sums.astype(np.float64)) > 2.0**62):
        raise OverflowError(f"a sum of {name!r} does not fit in int64")
    return sums


# -- the summary ------------------------------------------------------------------------------


def _joined(usage: pd.DataFrame, compute: pd.DataFrame) -> dict[str, Any]:
    """Both roll-ups outer-joined on (customer ID, period start), missing sides filled."""
    usage_keys = list(zip(usage["Customer ID"], _days(usage["Period Start"]).tolist(), strict=True))
    compute_keys = list(
        zip(compute["Customer ID"], _days(compute["Period Start"]).tolist(), strict=True)
    )
    keys = list(dict.fromkeys([*usage_keys, *compute_keys]))
    u = _positions(keys, usage_keys)
    c = _positions(keys, compute_keys)
    data: dict[str, Any] = {
        name: _coalesce(usage.get(name), u, compute.get(name), c)
        for name in ("Customer ID", "Customer Name", _EXTERNAL_ID)
    }
    period_start = np.array([day for _, day in keys], dtype=np.int64)
    period_end = _take(_days(usage["Period End"]), u, _take(_days(compute["Period End"]), c, 0))
    days_in_period = period_end - period_start + 1
    days_with_data = _take(usage["Days With Data"].to_numpy(np.int64), u, 0)
    data |= {
        "Period Start": date_array(period_start),
        "Period End": date_array(period_end),
        "Days With Data": days_with_data,
        "Days In Period": days_in_period,
        "Coverage": days_with_data / days_in_period,
    }
    for name, fill in [
        ("Average Deployed Instances", np.nan),
        ("Average Unique Integrations", np.nan),
        ("Peak Deployed Instances", np.nan),
        ("Instance-Days", 0.0),
        ("Instance-Months", 0.0),
    ]:
        data[name] = _take(usage[name].to_numpy(np.float64), u, fill)
    for name in _COUNTS:
        data[name] = _take(compute[name].to_numpy(np.int64), c, 0)
    data["Execution GB-Seconds"] = data["Execution Mb-Seconds"] / MB_PER_GB
    return data


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


def _amount_lines(prices: Prices | None) -> list[str]:
    """The amount columns the given prices produce (without the total)."""
    if prices is None:
        return []
    given = {
        "Instance Amount": prices.instance_month,
        "Compute Amount": prices.gb_second,
        "Execution Amount": prices.per_1k_executions,
    }
    return [name for name, price in given.items() if price is not None]


def _amounts(data: dict[str, Any], prices: Prices) -> dict[str, list[Decimal]]:
    """The amount columns for the prices given, and their total, per row."""
    lines: dict[str, list[Decimal]] = {}
    if prices.instance_month is not None:
        months = [Decimal(repr(value)) for value in data["Instance-Months"].tolist()]
        lines["Instance Amount"] = [_amount(q, 1, prices.instance_month) for q in months]
    if prices.gb_second is not None:
        mb_seconds = data["Execution Mb-Seconds"].tolist()
        lines["Compute Amount"] = [_amount(mb, MB_PER_GB, prices.gb_second) for mb in mb_seconds]
    if prices.per_1k_executions is not None:
        runs = zip(
            data["Successful Executions"].tolist(), data["Failed Executions"].tolist(), strict=True
        )
        lines["Execution Amount"] = [
            _amount(s + f, 1000, prices.per_1k_executions) for s, f in runs
        ]
    if lines:
        rows = zip(*lines.values(), strict=True)
        lines["Total Amount"] = [_money(sum(row, Decimal(0))) for row in rows]
    return lines


def _amount(quantity: Decimal | int, per: int, price: Decimal) -> Decimal:
    """``quantity / per * price``, computed exactly, then rounded to the cent half-up."""
    return _money(_EXACT.divide(_EXACT.multiply(Decimal(quantity), price), Decimal(per)))


def _money(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, half-up; :class:`OverflowError` if it does not fit."""
    cents = value.quantize(_CENT, context=_ROUND)
    if abs(cents) >= _MAX_AMOUNT:
        raise OverflowError(f"amount {cents} does not fit the 16-digit amount columns")
    return cents
