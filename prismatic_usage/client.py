"""The fetcher: raw usage records for a date range (async core, sync wrapper).

The planning and sending live in :mod:`prismatic_usage.planner`; this module
resolves the arguments, runs a :class:`~prismatic_usage.planner.Planner` inside
one API session and turns what it gathered into :class:`UsageRecords`: duplicate
nodes dropped (and counted), system customers' and instances' records removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import zoneinfo
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .config import (
    Connection,
    FetchOptions,
    resolve_connection,
    resolve_zone,
    validate_date_range,
)
from .errors import ConfigurationError, PaginationError
from .pacing import RequestGate
from .planner import FetchProgress, Planner, ProgressCallback
from .progress import ProgressArg, progress_reporter
from .records import FetchStats, UsageRecords
from .session import ApiSession, SessionCounters
from .sync import run_sync

__all__ = [
    "FetchEstimate",
    "FetchProgress",
    "estimate_fetch",
    "estimate_fetch_async",
    "fetch_usage",
    "fetch_usage_async",
    "snapshot_time_bounds",
]

log = logging.getLogger(__name__)


def snapshot_time_bounds(start: dt.date, end: dt.date, tz: str) -> tuple[str, str]:
    """Inclusive ``snapshotTime`` bounds covering whole days ``start``..``end`` in ``tz``.

    The upper bound is the last microsecond of ``end`` (the original script used
    ``end 00:00``, dropping almost the whole last day). Both are sent as UTC.
    """
    zone = zoneinfo.ZoneInfo(tz)
    low = dt.datetime.combine(start, dt.time(0), tzinfo=zone)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    high -= dt.timedelta(microseconds=1)
    return (
        low.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        high.astimezone(dt.UTC).isoformat(timespec="microseconds"),
    )


def _complete(planner: Planner, kind: str, what: str) -> tuple[pa.Table, int]:
    """The records of one kind without duplicates, proven complete against totalCount.

    Every page is checked to hold exactly the nodes its totalCount promises, so
    a node seen twice means another was pushed out of view (positional pages
    shifted while the fetch ran): the duplicate is dropped, and the missing
    record is an error, never a silently short report.
    """
    table, dropped = _dedupe(planner.builders[kind].finish(), what)
    expected = planner.expected_rows(kind)
    if table.num_rows < expected:
        raise PaginationError(
            f"the API counted {expected} {what} but {table.num_rows} distinct ones arrived "
            f"({dropped} came twice): pages shifted while the fetch ran; run it again"
        )
    return table, dropped


def _dedupe(table: pa.Table, what: str) -> tuple[pa.Table, int]:
    """Drop rows whose node ID was already seen (positional pages can shift)."""
    if table.num_rows == pc.count_distinct(table.column("id")).as_py():
        return table, 0
    indices = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    first = indices.group_by("id", use_threads=False).aggregate([("_row", "min")])
    keep = pc.sort_indices(first.column("_row_min"))
    rows = pc.take(first.column("_row_min"), keep)
    deduped = table.take(rows)
    dropped = table.num_rows - deduped.num_rows
    log.warning("dropped %d duplicate %s (the same node ID on two pages)", dropped, what)
    return deduped, dropped


def _only_known(table: pa.Table, column: str, known: pa.Array) -> pa.Table:
    return table.filter(pc.is_in(table.column(column), value_set=known))


def _coerce_date(value: dt.date | str, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{name} {value!r} is not a date; use the ISO form YYYY-MM-DD, e.g. 2025-02-13"
        ) from None


async def fetch_usage_async(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    progress: ProgressArg = True,
) -> UsageRecords:
    """Fetch customers, instances, hourly snapshots and daily metrics for a date range.

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``). Snapshots are
        those from ``start 00:00`` to the last microsecond of ``end`` in ``tz``;
        daily metrics those whose ``snapshotDate`` lies in the range.
    url, token
        Stack URL and API token; default to ``PRISMATIC_URL`` (else
        ``https://app.prismatic.io``) and ``PRISMATIC_API_KEY`` (else
        ``PRISM_ACCESS_TOKEN``). Ignored when ``connection`` is given.
    tz
        IANA zone whose midnights bound the days (the frames must use the same).
    options
        Tuning knobs (:class:`FetchOptions`): concurrency, pace, page size, packing.
    progress
        ``True`` (default) shows a tqdm bar when stderr is a terminal or in
        Jupyter; ``False`` shows none; a callable receives a
        :class:`FetchProgress` after every request instead.

    Returns
    -------
    UsageRecords
        Non-system customers and instances, their snapshots and daily metrics,
        and the fetch statistics.

    Raises
    ------
    AuthenticationError, ConfigurationError, QueryError, PaginationError,
    MalformedResponseError, RetriesExhaustedError
    """
    request = _FetchRequest.resolve(start, end, url, token, connection, tz, options)
    began = time.monotonic()
    with progress_reporter(progress) as report_progress:
        planner, counters, max_in_flight = await _run_planner(
            request, report_progress, lists_only=False
        )
    records = _records(request, planner, counters, max_in_flight, time.monotonic() - began)
    log.info("fetched %s to %s: %s", request.start, request.end, records.stats.summary())
    return records


@dataclass(frozen=True)
class _FetchRequest:
    """The checked arguments of one fetch."""

    start: dt.date
    end: dt.date
    tz: str
    connection: Connection
    options: FetchOptions

    @classmethod
    def resolve(
        cls,
        start: dt.date | str,
        end: dt.date | str,
        url: str | None,
        token: str | None,
        connection: Connection | None,
        tz: str,
        options: FetchOptions | None,
    ) -> _FetchRequest:
        start_day = _coerce_date(start, "start date")
        end_day = _coerce_date(end, "end date")
        validate_date_range(start_day, end_day)
        resolve_zone(tz)
        return cls(
            start=start_day,
            end=end_day,
            tz=tz,
            connection=connection or resolve_connection(url, token),
            options=options or FetchOptions(),
        )


async def _run_planner(
    request: _FetchRequest,
    progress: ProgressCallback | None,
    *,
    lists_only: bool,
) -> tuple[Planner, SessionCounters, int]:
    opts = request.options
    gate = RequestGate(concurrency=opts.concurrency, rate=opts.requests_per_second)
    async with ApiSession(request.connection, opts, gate) as session:
        planner = Planner(
            session,
            gate,
            opts,
            time_bounds=snapshot_time_bounds(request.start, request.end, request.tz),
            date_bounds=(request.start.isoformat(), request.end.isoformat()),
            progress=progress,
        )
        try:
            await planner.run(lists_only=lists_only)
        except BaseExceptionGroup as group:
            error = _first_error(group)
            raise error from error.__cause__
        if not lists_only:
            planner.check_complete()
    return planner, session.counters, gate.max_in_flight


def _records(
    request: _FetchRequest,
    planner: Planner,
    counters: SessionCounters,
    max_in_flight: int,
    seconds: float,
) -> UsageRecords:
    """What the planner gathered, without duplicates and without system records."""
    customers, dup_c = _complete(planner, "customers", "customers")
    instances, dup_i = _complete(planner, "instances", "instances")
    snapshots, dup_s = _complete(planner, "snapshots", "snapshots")
    metrics, dup_m = _complete(planner, "metrics", "daily metrics")
    # Org-wide streams include system customers' and instances' records.
    snapshots = _only_known(snapshots, "customer_id", customers.column("id").combine_chunks())
    metrics = _only_known(metrics, "instance_id", instances.column("id").combine_chunks())
    stats = FetchStats(
        requests=counters.requests,
        page_units=planner.units_sent,
        retries=counters.retries,
        throttled=counters.throttled,
        splits=planner.splits,
        pack=planner.pack,
        duplicates_dropped=dup_c + dup_i + dup_s + dup_m,
        rows=customers.num_rows + instances.num_rows + snapshots.num_rows + metrics.num_rows,
        seconds=seconds,
        org_wide_snapshots=bool(planner.org_wide["snapshots"]),
        org_wide_metrics=bool(planner.org_wide["metrics"]),
        max_in_flight=max_in_flight,
    )
    return UsageRecords(
        start=request.start,
        end=request.end,
        tz=request.tz,
        customers=customers,
        instances=instances,
        snapshots=snapshots,
        daily_metrics=metrics,
        stats=stats,
    )


@dataclass(frozen=True)
class FetchEstimate:
    """What fetching a range would cost, judged from the customer and instance lists.

    Snapshots are assumed hourly (24 a customer a day) and daily metrics one per
    instance a day, so the page counts are upper estimates for sparse data. With
    ``org_wide`` on, the daily-metrics probe is assumed refused, as current
    Prismatic does, and metrics are counted per instance.
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
    ) -> FetchEstimate:
        """The estimate for these counts; pure arithmetic, no network."""
        days = (end - start).days + 1
        page, pack = options.page_size, options.pack
        if options.org_wide:
            snapshot_pages = max(1, math.ceil(customers * 24 * days / page))
            metric_pages = instances * math.ceil(days / page)
            # Both probes travel alone; the snapshot probe is also a data page.
            requests = 2 + math.ceil((snapshot_pages - 1 + metric_pages) / pack)
        else:
            snapshot_pages = customers * math.ceil(24 * days / page)
            metric_pages = instances * math.ceil(days / page)
            requests = math.ceil((snapshot_pages + metric_pages) / pack)
        rate = options.requests_per_second
        return cls(
            start=start,
            end=end,
            customers=customers,
            instances=instances,
            snapshot_pages=snapshot_pages,
            metric_pages=metric_pages,
            requests=requests,
            seconds=requests / rate if rate else None,
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
) -> FetchEstimate:
    """List customers and instances only, and estimate the cost of :func:`fetch_usage`."""
    request = _FetchRequest.resolve(start, end, url, token, connection, tz, options)
    planner, counters, max_in_flight = await _run_planner(request, None, lists_only=True)
    records = _records(request, planner, counters, max_in_flight, 0.0)
    return FetchEstimate.from_counts(
        request.start,
        request.end,
        customers=records.customers.num_rows,
        instances=records.instances.num_rows,
        options=request.options,
        list_requests=counters.requests,
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
) -> FetchEstimate:
    """Synchronous :func:`estimate_fetch_async` (also inside Jupyter)."""
    return run_sync(
        estimate_fetch_async(
            start, end, url=url, token=token, connection=connection, tz=tz, options=options
        )
    )


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error inside a TaskGroup's exception group."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def fetch_usage(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    progress: ProgressArg = True,
) -> UsageRecords:
    """Synchronous :func:`fetch_usage_async`; also works inside Jupyter's running loop."""
    return run_sync(
        fetch_usage_async(
            start,
            end,
            url=url,
            token=token,
            connection=connection,
            tz=tz,
            options=options,
            progress=progress,
        )
    )
