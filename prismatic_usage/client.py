"""The fetcher: raw usage records for a date range (async core, sync wrapper).

The planning and sending live in :mod:`prismatic_usage.planner`; this module
resolves the arguments, runs a :class:`~prismatic_usage.planner.Planner` inside
one API session and turns what it gathered into :class:`UsageRecords`: duplicate
nodes dropped (and counted), system customers' and instances' records removed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ._distinct_values import with_one_dictionary
from .collector import Collector as Collector  # re-exported: estimate.py, tests
from .config import (
    Connection,
    FetchOptions,
    resolve_connection,
    resolve_zone,
    validate_date_range,
)
from .errors import ConfigurationError
from .pacing import RequestGate
from .plan import FetchPlan, local_window
from .planner import FetchProgress, Planner, ProgressCallback, StreamSink
from .progress import ProgressArg, progress_reporter
from .records import (
    FetchStats,
    UsageRecords,
)
from .session import ApiSession, SessionCounters
from .sync import run_sync
from .table_builder import ChunkConverter

__all__ = [
    "FetchProgress",
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
    window = local_window(start, end, tz)
    return window.time_gte, window.time_lte


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
    org_totals: bool = False,
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
    connection
        A resolved :class:`Connection` (from :func:`resolve_connection`), instead
        of ``url`` and ``token``.
    tz
        IANA zone whose midnights bound the days (the frames must use the same).
    options
        Tuning knobs (:class:`FetchOptions`): concurrency, pace, page size, packing.
    progress
        ``True`` (default) shows a tqdm bar when stderr is a terminal or in
        Jupyter (pages fetched of pages known, the phase, records: see
        :func:`prismatic_usage.progress.progress_reporter`); ``False`` shows
        none; a callable receives a :class:`FetchProgress` once before the
        first request and after every request instead.
    org_totals
        Also fetch Prismatic's own org-wide totals for the range
        (``records.org_totals``), to reconcile the reports against
        (:func:`prismatic_usage.reconcile`). A token that may not read them
        is no error: ``records.org_totals.refused`` says why.

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
    request = FetchRequest.resolve(start, end, url, token, connection, tz, options)
    began = time.monotonic()
    began_at = dt.datetime.now(dt.UTC)
    collector = Collector()
    with progress_reporter(progress) as report_progress:
        plan = FetchPlan.whole(request.start, request.end, request.tz)
        if org_totals:
            plan = plan.with_org_totals(request.start, request.end, request.tz)
        planner, counters, max_in_flight = await run_planner(
            request, plan, collector, report_progress
        )
    records = dataclasses.replace(
        collected_records(
            request, collector, planner, counters, max_in_flight, time.monotonic() - began
        ),
        fetched_at=began_at,
        org_totals=collector.org_totals(planner.org_totals_refused) if org_totals else None,
    )
    log.info("fetched %s to %s: %s", request.start, request.end, records.stats.summary())
    return records


def resolve_days(start: dt.date | str, end: dt.date | str, tz: str) -> tuple[dt.date, dt.date]:
    """Checked inclusive days (``date`` or ISO text) and zone; ConfigurationError if not."""
    start_day = _coerce_date(start, "start date")
    end_day = _coerce_date(end, "end date")
    validate_date_range(start_day, end_day)
    resolve_zone(tz)
    return start_day, end_day


@dataclass(frozen=True)
class FetchRequest:
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
    ) -> FetchRequest:
        start_day, end_day = resolve_days(start, end, tz)
        return cls(
            start=start_day,
            end=end_day,
            tz=tz,
            connection=connection or resolve_connection(url, token),
            options=options or FetchOptions(),
        )


async def run_planner(
    request: FetchRequest,
    plan: FetchPlan,
    sink: StreamSink,
    progress: ProgressCallback | None,
    *,
    lists_only: bool = False,
    on_answer: Callable[[], None] | None = None,
) -> tuple[Planner, SessionCounters, int]:
    """Run one fetch of ``plan`` in one API session; every finished stream goes to ``sink``.

    ``on_answer`` is called after every answered request (the store journals there).
    Full chunks of records are converted to Arrow in one worker thread (started
    only when a stream first fills a chunk), so the event loop, and with it the
    pace, is not held up for the ~0.1 s a chunk takes; the streams' builders
    share one bound on the rows they hold unconverted (:class:`ChunkConverter`).
    """
    opts = request.options
    gate = RequestGate(concurrency=opts.concurrency, rate=opts.requests_per_second)
    arrow = ChunkConverter(ThreadPoolExecutor(max_workers=1, thread_name_prefix="prismatic-arrow"))
    try:
        async with ApiSession(request.connection, opts, gate) as session:
            planner = Planner(
                session,
                gate,
                opts,
                plan=plan,
                sink=sink,
                progress=progress,
                on_answer=on_answer,
                executor=arrow,
            )
            try:
                await planner.run(lists_only=lists_only)
            except BaseExceptionGroup as group:
                error = _first_error(group)
                raise error from error.__cause__
            if not lists_only:
                planner.check_complete()
    finally:
        # Every finished stream has waited for its chunks; what is left belongs to
        # streams a failed run abandons.
        arrow.shutdown(wait=False, cancel_futures=True)
    return planner, session.counters, gate.max_in_flight


def collected_records(
    request: FetchRequest,
    collector: Collector,
    planner: Planner,
    counters: SessionCounters,
    max_in_flight: int,
    seconds: float,
) -> UsageRecords:
    """What the planner gathered, without system records."""
    customers = collector.table("customers")
    instances = collector.table("instances")
    # Org-wide streams include system customers' and instances' records.
    snapshots = collector.known_table("snapshots", "customer_id", customers.column("id"))
    snapshots = with_one_dictionary(snapshots, "customer_id")  # groups, joins, sorts as text
    metrics = collector.known_table("metrics", "instance_id", instances.column("id"))
    stats = fetch_stats(
        planner,
        counters,
        max_in_flight,
        seconds,
        rows=customers.num_rows + instances.num_rows + snapshots.num_rows + metrics.num_rows,
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


def fetch_stats(
    planner: Planner, counters: SessionCounters, max_in_flight: int, seconds: float, *, rows: int
) -> FetchStats:
    """The statistics of one finished planner run."""
    return FetchStats(
        requests=counters.requests,
        page_units=planner.units_sent,
        retries=counters.retries,
        throttled=counters.throttled,
        splits=planner.splits,
        pack=planner.pack,
        duplicates_dropped=planner.duplicates_dropped,
        rows=rows,
        seconds=seconds,
        org_wide_snapshots=bool(planner.org_wide["snapshots"]),
        org_wide_metrics=bool(planner.org_wide["metrics"]),
        max_in_flight=max_in_flight,
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
    org_totals: bool = False,
) -> UsageRecords:
    """Fetch customers, instances, hourly snapshots and daily metrics for a date range.

    The synchronous form of :func:`fetch_usage_async`; it also works inside
    Jupyter's running event loop (no ``nest_asyncio``).

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``) in ``tz``. Snapshots are
        those from ``start 00:00`` to the last microsecond of ``end`` in ``tz``;
        daily metrics those whose ``snapshotDate`` lies in the range.
    url, token
        Stack URL and API token; default to ``PRISMATIC_URL`` (else
        ``https://app.prismatic.io``) and ``PRISMATIC_API_KEY`` (else
        ``PRISM_ACCESS_TOKEN``). Ignored when ``connection`` is given.
    connection
        A resolved :class:`Connection` (from :func:`resolve_connection`), instead
        of ``url`` and ``token``.
    tz
        IANA zone whose midnights bound the days, e.g. ``"Europe/Berlin"``.
    options
        Tuning knobs (:class:`FetchOptions`): concurrency, pace, page size, packing.
    progress
        ``True`` (default) shows a tqdm bar when stderr is a terminal or in
        Jupyter; ``False`` shows none; a callable receives a
        :class:`FetchProgress` after every request instead.
    org_totals
        Also fetch Prismatic's own org-wide totals for the range
        (``records.org_totals``), to check the reports against
        (:func:`prismatic_usage.reconcile`).

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
            org_totals=org_totals,
        )
    )
