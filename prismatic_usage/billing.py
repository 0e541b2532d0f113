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

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from . import _money, _periods, _rollup
from ._periods import DateLike
from .columns import (
    CUSTOMER_COMPUTE_ROLLUP,
    CUSTOMER_INSTANCE,
    CUSTOMER_PERIOD_ROLLUP,
    HOUR_COLUMNS,
    INSTANCE_COMPUTE,
    INSTANCE_COMPUTE_ROLLUP,
    naming_of,
    with_column_names,
)
from .config import PERIODS, resolve_zone
from .errors import ConfigurationError

__all__ = [
    "PERIODS",
    "Prices",
    "billing_summary",
    "compute_rollup",
    "customer_period_rollup",
]

MB_PER_GB = 1024
"""GB-seconds = MB-seconds / 1024 (binary gigabytes, as memory is sized)."""

PriceLike = Decimal | int | str


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
        given = {
            "instance_month": instance_month,
            "gb_second": gb_second,
            "per_1k_executions": per_1k_executions,
        }
        for name, value in given.items():
            object.__setattr__(self, name, _money.checked_price(name, value))


# -- public roll-ups --------------------------------------------------------------------------


def customer_period_rollup(
    customer_frame: pd.DataFrame,
    *,
    period: str = "month",
    start: DateLike = None,
    end: DateLike = None,
    tz: str = "UTC",
    column_names: str | None = None,
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
    - ``Days With Data``, ``Days In Period`` and ``Coverage`` (their ratio);
    - from an extended frame also ``Snapshots`` (their sum), ``Expected
      Snapshots`` (every hour of every day of the period in ``tz``: 23 and 25
      on daylight-saving days) and ``Snapshot Coverage`` (their ratio).

    Parameters
    ----------
    customer_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.customer_instance_frame`, basic or
        extended; at most one row per customer and day.
    period : {"month", "week", "range"}, default "month"
        ``"month"``: calendar months; ``"week"``: ISO weeks, Monday to Sunday;
        ``"range"``: the whole range as one period. Periods are clipped to the
        range, so a range starting on 15 January gives a January row of 17 days.
    start, end : datetime.date or ISO str, optional
        The requested range, inclusive; default the frame's first and last Date.
    tz : str, default "UTC"
        The zone of the frame's days (the report's), for the expected hours.
    column_names : {"original", "snake"}, optional
        Names of the result's columns: the report headers or snake-case names;
        default the input frame's own naming (either is accepted as input).

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
    naming = naming_of(customer_frame, column_names)
    result = _customer_period_rollup(
        with_column_names(customer_frame, "original"), period=period, start=start, end=end, tz=tz
    )
    return with_column_names(result, naming)


def _customer_period_rollup(
    customer_frame: pd.DataFrame,
    *,
    period: str = "month",
    start: DateLike = None,
    end: DateLike = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """The body of :func:`customer_period_rollup`, on frames with the original headers."""
    _check_period(period)
    zone = resolve_zone(tz)
    hourly = "Snapshots" in customer_frame.columns
    spec = CUSTOMER_PERIOD_ROLLUP.select(
        extended=_rollup.is_extended_daily(customer_frame, CUSTOMER_INSTANCE),
        optional=HOUR_COLUMNS if hourly else (),
    )
    selected = _periods.rows_in_range(customer_frame, start, end)
    if selected is None:
        return spec.empty()
    frame, row_days, bounds = selected
    ranking = ["Customer Name", "Customer ID"]
    groups = _rollup.group(
        frame, row_days, keys=["Customer ID"], ranking=ranking, period=period, bounds=bounds
    )
    if np.any(groups.distinct_days != groups.rows):
        raise ConfigurationError(
            "customer_frame has more than one row for a customer and day; "
            "build it with frames.customer_instance_frame"
        )
    daily = frame["Deployed Instances"].to_numpy(np.float64)[groups.order]
    integrations = frame["Unique Integrations"].to_numpy(np.float64)[groups.order]
    instance_days = _rollup.fsums(daily, groups.starts)
    return spec.build(
        {
            **_rollup.carried(frame, groups, spec),
            **_periods.period_columns(groups.period_start, groups.period_end),
            "Average Deployed Instances": instance_days / groups.rows,
            "Average Unique Integrations": _rollup.fsums(integrations, groups.starts) / groups.rows,
            "Peak Deployed Instances": np.maximum.reduceat(daily, groups.starts),
            "Instance-Days": instance_days,
            "Instance-Months": _rollup.fsums(
                daily / _periods.month_lengths(row_days[groups.order]), groups.starts
            ),
            **_periods.coverage_columns(groups.period_start, groups.period_end, groups.rows),
            **(
                _periods.hour_columns(
                    groups.period_start,
                    groups.period_end,
                    _rollup.int_sums(
                        frame["Snapshots"].to_numpy(np.int64)[groups.order],
                        groups.starts,
                        "Snapshots",
                    ),
                    zone,
                )
                if hourly
                else {}
            ),
        }
    )


def compute_rollup(
    compute_frame: pd.DataFrame,
    *,
    period: str = "month",
    by: str = "instance",
    start: DateLike = None,
    end: DateLike = None,
    column_names: str | None = None,
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
        ``"month"``: calendar months; ``"week"``: ISO weeks, Monday to Sunday;
        ``"range"``: the whole range as one period. Periods are clipped to the
        range, so a range starting on 15 January gives a January row of 17 days.
    by : {"instance", "customer"}, default "instance"
        Group by instance (within its customer) or by customer.
    start, end : datetime.date or ISO str, optional
        The requested range, inclusive; default the frame's first and last Date.
    column_names : {"original", "snake"}, optional
        Names of the result's columns: the report headers or snake-case names;
        default the input frame's own naming (either is accepted as input).

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
    naming = naming_of(compute_frame, column_names)
    result = _compute_rollup(
        with_column_names(compute_frame, "original"), period=period, by=by, start=start, end=end
    )
    return with_column_names(result, naming)


def _compute_rollup(
    compute_frame: pd.DataFrame,
    *,
    period: str = "month",
    by: str = "instance",
    start: DateLike = None,
    end: DateLike = None,
) -> pd.DataFrame:
    """The body of :func:`compute_rollup`, on frames with the original headers."""
    _check_period(period)
    if by not in ("instance", "customer"):
        raise ConfigurationError(f"unknown grouping by={by!r}; choose 'instance' or 'customer'")
    declared = INSTANCE_COMPUTE_ROLLUP if by == "instance" else CUSTOMER_COMPUTE_ROLLUP
    spec = declared.select(extended=_rollup.is_extended_daily(compute_frame, INSTANCE_COMPUTE))
    selected = _periods.rows_in_range(compute_frame, start, end)
    if selected is None:
        return spec.empty()
    frame, row_days, bounds = selected
    keys, ranking = ["Customer ID"], ["Customer Name", "Customer ID"]
    if by == "instance":
        keys, ranking = [*keys, "Instance ID"], [*ranking, "Instance Name", "Instance ID"]
    groups = _rollup.group(
        frame, row_days, keys=keys, ranking=ranking, period=period, bounds=bounds
    )
    sums = {
        name: _rollup.int_sums(frame[name].to_numpy(np.int64)[groups.order], groups.starts, name)
        for name in _rollup.COUNTS
    }
    return spec.build(
        {
            **_rollup.carried(frame, groups, spec),
            **_periods.period_columns(groups.period_start, groups.period_end),
            "Days With Data": groups.distinct_days,
            **sums,
            "Execution GB-Seconds": sums["Execution Mb-Seconds"] / MB_PER_GB,
        }
    )


# -- private helpers --------------------------------------------------------------------------


def _check_period(period: str) -> None:
    """Refuse an unknown period name."""
    if period not in PERIODS:
        raise ConfigurationError(f"unknown period {period!r}; choose from {list(PERIODS)}")


# The summary joins both roll-ups; it lives in its own module (imported last,
# since it builds on everything above) and is part of this module's API.
from ._summary import billing_summary  # noqa: E402
