"""What a fetch would cost, judged from the customer and instance lists (``--dry-run``).

Lists customers and instances only (a few requests), then estimates the pages
and requests of :func:`prismatic_usage.fetch_usage` by arithmetic.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from .client import Collector, FetchRequest, collected_records, run_planner
from .config import DEFAULT_PACK, Connection, FetchOptions
from .pacing import PACE_MARGIN
from .packing import MAX_ROOT_FIELDS
from .plan import FetchPlan
from .sync import run_sync

__all__ = ["FetchEstimate", "estimate_fetch", "estimate_fetch_async"]


@dataclass(frozen=True)
class FetchEstimate:
    """What fetching a range would cost, judged from the customer and instance lists.

    Snapshots are assumed hourly (24 a customer a day) and daily metrics one per
    instance a day, so the page counts are upper estimates for sparse data. With
    ``org_wide`` on, the daily-metrics probe is assumed refused, as current
    Prismatic does, and metrics are counted per instance.

    Attributes
    ----------
    start, end
        The range estimated (inclusive days).
    customers, instances
        Non-system customers and instances listed.
    snapshot_pages, metric_pages
        Pages of hourly snapshots and of daily metrics to fetch (upper estimates).
    requests
        HTTP requests the fetch would make (pages packed per request, at the
        starting node budget: an upper estimate when the budget adapts, as it
        grows when the server answers fast).
    seconds
        Estimated duration at the options' pace (95% of the rate, see
        :mod:`prismatic_usage.pacing`); ``None`` when unpaced.
    list_requests
        Requests already spent listing customers and instances.
    """

    start: dt.date
    end: dt.date
    customers: int
    instances: int
    snapshot_pages: int
    metric_pages: int
    requests: int
    seconds: float | None
    list_requests: int

    @classmethod
    def from_counts(
        cls,
        start: dt.date,
        end: dt.date,
        *,
        customers: int,
        instances: int,
        options: FetchOptions,
        list_requests: int = 0,
        days: int | None = None,
    ) -> FetchEstimate:
        """The estimate for these counts; pure arithmetic, no network.

        Parameters
        ----------
        start, end
            The range (inclusive days).
        customers, instances
            How many non-system customers and instances there are.
        options
            The fetch options (page size, packing, pace, ``org_wide``).
        list_requests
            Requests already spent listing (added to the estimate's record).
        days
            Overrides the number of days to fetch (a store lacks only some).
        """
        days = (end - start).days + 1 if days is None else days
        if days == 0:
            return cls(start, end, customers, instances, 0, 0, 0, 0.0, list_requests)
        page = options.page_size
        fields = 1 if options.pack == 1 else MAX_ROOT_FIELDS

        # The starting budget: an adaptive one that grows makes fewer requests.
        budget = (options.pack or DEFAULT_PACK) * page

        def packed(units: int, nodes: int) -> int:
            # A request carries up to ``budget`` nodes in up to ``fields`` root fields.
            return max(math.ceil(nodes / budget), math.ceil(units / fields)) if units else 0

        metric_pages = instances * math.ceil(days / page)
        metric_nodes = instances * days  # one row per instance and day
        if options.org_wide:
            snapshot_pages = max(1, math.ceil(customers * 24 * days / page))
            # Both probes travel alone; the snapshot probe is also a data page.
            requests = 2 + packed(
                snapshot_pages - 1 + metric_pages, (snapshot_pages - 1) * page + metric_nodes
            )
        else:
            snapshot_pages = customers * math.ceil(24 * days / page)
            snapshot_nodes = customers * 24 * days
            requests = packed(snapshot_pages + metric_pages, snapshot_nodes + metric_nodes)
        rate = options.requests_per_second
        return cls(
            start=start,
            end=end,
            customers=customers,
            instances=instances,
            snapshot_pages=snapshot_pages,
            metric_pages=metric_pages,
            requests=requests,
            # Starts are paced at PACE_MARGIN of the rate (pacing.py).
            seconds=requests / (rate * PACE_MARGIN) if rate else None,
            list_requests=list_requests,
        )

    def summary(self) -> str:
        """A few lines for the CLI's ``--dry-run``."""
        pace = f"~{self.seconds:.0f} s at the configured rate" if self.seconds else "unpaced"
        return (
            f"{self.start} to {self.end}: {self.customers} customers, {self.instances} instances\n"
            f"would fetch ~{self.snapshot_pages} snapshot pages and ~{self.metric_pages} "
            f"daily-metric pages in ~{self.requests} requests ({pace})"
        )


async def estimate_fetch_async(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    days: int | None = None,
) -> FetchEstimate:
    """List customers and instances only, and estimate the cost of :func:`fetch_usage`.

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``) in ``tz``.
    url, token, connection
        Where to fetch from, as for :func:`fetch_usage`.
    tz
        IANA zone whose midnights bound the days.
    options
        Fetch tuning (:class:`FetchOptions`); page size and packing change the estimate.
    days
        How many of the range's days to count (default: all), e.g. those a
        usage store lacks (``UsageStore.missing_days``).

    Returns
    -------
    FetchEstimate
    """
    request = FetchRequest.resolve(start, end, url, token, connection, tz, options)
    collector = Collector()
    plan = FetchPlan.whole(request.start, request.end, request.tz)
    planner, counters, max_in_flight = await run_planner(
        request, plan, collector, None, lists_only=True
    )
    records = collected_records(request, collector, planner, counters, max_in_flight, 0.0)
    return FetchEstimate.from_counts(
        request.start,
        request.end,
        customers=records.customers.num_rows,
        instances=records.instances.num_rows,
        options=request.options,
        list_requests=counters.requests,
        days=days,
    )


def estimate_fetch(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    days: int | None = None,
) -> FetchEstimate:
    """List customers and instances only, and estimate the cost of :func:`fetch_usage`.

    The synchronous form of :func:`estimate_fetch_async` (also inside Jupyter).

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``) in ``tz``.
    url, token, connection
        Where to fetch from, as for :func:`fetch_usage`.
    tz
        IANA zone whose midnights bound the days.
    options
        Fetch tuning (:class:`FetchOptions`); page size and packing change the estimate.
    days
        How many of the range's days to count (default: all), e.g. those a
        usage store lacks (``UsageStore.missing_days``).

    Returns
    -------
    FetchEstimate
    """
    return run_sync(
        estimate_fetch_async(
            start,
            end,
            url=url,
            token=token,
            connection=connection,
            tz=tz,
            options=options,
            days=days,
        )
    )
