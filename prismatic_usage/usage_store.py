"""``UsageStore``: bring a date range up to date in a local store, then read it back.

This module joins the fetcher and the store: the planner fetches only what
the store lacks (:meth:`FetchPlan.incremental`), hands every finished stream
to the store's journal, and the journal's batches are merged into the dataset.
The store itself (``prismatic_usage/store/``) knows no network; the planner
knows no files.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .client import FetchRequest, fetch_stats, resolve_days, run_planner
from .config import DEFAULT_FINAL_AFTER_HOURS, Connection, FetchOptions
from .errors import ConfigurationError
from .plan import utc_days_covering
from .progress import ProgressArg, progress_reporter
from .records import FetchStats, UsageRecords
from .store.commit import CommitResult
from .store.dataset import StoreInfo, UsageDataset
from .store.files import StoreLock, sha256_of
from .store.journal import Journal
from .store.layout import FORMAT_VERSION
from .store.manifest import close_stale_manifests, manifest_totals, write_json
from .store_sink import StoreSink, SyncResult
from .sync import run_sync

__all__ = [
    "DEFAULT_FINAL_AFTER_HOURS",
    "MAX_FINAL_AFTER_HOURS",
    "StoreRun",
    "SyncResult",
    "UsageStore",
    "check_final_after",
]

log = logging.getLogger(__name__)


class UsageStore:
    """A local, incremental store of raw usage records (see README, "Usage store").

    Parameters
    ----------
    path
        The store directory; created (with ``store.json``) if new or empty.

    Examples
    --------
    >>> store = UsageStore("usage-store")  # doctest: +SKIP
    >>> store.sync("2025-01-01", "2025-01-31", url=..., token=...)  # doctest: +SKIP
    >>> report = fetch_report("2025-01-01", "2025-01-31", store=store)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._dataset = UsageDataset(self.path)

    def __repr__(self) -> str:
        return f"UsageStore({str(self.path)!r})"

    @contextmanager
    def run(self) -> Iterator[StoreRun]:
        """Hold the store for one run: lock, manifest (``runs/<id>.json``) and outcome."""
        lock = StoreLock(self.path)
        lock.acquire()
        try:
            run = StoreRun(self._dataset)
            close_stale_manifests(self._dataset.layout.runs, by=run.run_id)
            run.write_manifest("running")
            try:
                yield run
            except KeyboardInterrupt:
                run.write_manifest("interrupted")
                raise
            except BaseException as exc:
                run.write_manifest("interrupted" if isinstance(exc, SystemExit) else "failed")
                raise
            run.write_manifest("ok")
        finally:
            lock.release()

    def sync(
        self,
        start: dt.date | str,
        end: dt.date | str,
        *,
        url: str | None = None,
        token: str | None = None,
        connection: Connection | None = None,
        tz: str = "UTC",
        options: FetchOptions | None = None,
        final_after: float = DEFAULT_FINAL_AFTER_HOURS,
        progress: ProgressArg = True,
        org_totals: bool = False,
    ) -> SyncResult:
        """Fetch what the store lacks for local days ``start`` .. ``end`` and merge it.

        Parameters
        ----------
        start, end
            Inclusive calendar days in ``tz`` (``date`` or ``"YYYY-MM-DD"``).
        url, token, connection
            Where to fetch from, as for :func:`prismatic_usage.fetch_usage`.
        tz
            IANA zone of the days; the store itself keeps whole UTC days.
        options
            Fetch tuning (:class:`FetchOptions`).
        final_after
            Hours after its end from which a day is final: never fetched again.
            Days not yet final are fetched on every sync and their rows replaced
            (differences are recorded in ``changes/``).
        progress
            As for :func:`prismatic_usage.fetch_usage`.
        org_totals
            Also fetch Prismatic's org totals for the range (not stored; in
            ``SyncResult.org_totals``), to reconcile a report against.

        Raises
        ------
        StoreLockedError
            Another run holds the store.
        """
        return run_sync(
            self.sync_async(
                start,
                end,
                url=url,
                token=token,
                connection=connection,
                tz=tz,
                options=options,
                final_after=final_after,
                progress=progress,
                org_totals=org_totals,
            )
        )

    async def sync_async(
        self,
        start: dt.date | str,
        end: dt.date | str,
        *,
        url: str | None = None,
        token: str | None = None,
        connection: Connection | None = None,
        tz: str = "UTC",
        options: FetchOptions | None = None,
        final_after: float = DEFAULT_FINAL_AFTER_HOURS,
        progress: ProgressArg = True,
        org_totals: bool = False,
    ) -> SyncResult:
        """The ``await``-able :meth:`sync`.

        Parameters
        ----------
        start, end
            Inclusive calendar days in ``tz`` (``date`` or ``"YYYY-MM-DD"``).
        url, token, connection
            Where to fetch from, as for :func:`prismatic_usage.fetch_usage`.
        tz
            IANA zone of the days; the store itself keeps whole UTC days.
        options
            Fetch tuning (:class:`FetchOptions`).
        final_after
            Hours after its end from which a day is final: never fetched again.
        progress
            As for :func:`prismatic_usage.fetch_usage`.
        org_totals
            Also fetch Prismatic's org totals for the range (not stored; in
            ``SyncResult.org_totals``).

        Returns
        -------
        SyncResult
            What was fetched and how the store changed.
        """
        with self.run() as run:
            return await run.sync_async(
                start,
                end,
                url=url,
                token=token,
                connection=connection,
                tz=tz,
                options=options,
                final_after=final_after,
                progress=progress,
                org_totals=org_totals,
            )

    def records(self, start: dt.date | str, end: dt.date | str, *, tz: str = "UTC") -> UsageRecords:
        """The stored records for local days ``start`` .. ``end`` in ``tz`` (no network).

        Parameters
        ----------
        start, end
            Inclusive calendar days in ``tz``.
        tz
            IANA zone whose midnights bound the days.
        """
        first, last = resolve_days(start, end, tz)
        return self._dataset.records(first, last, tz)

    def missing_days(self, start: dt.date | str, end: dt.date | str, *, tz: str = "UTC") -> int:
        """How many days of ``start`` .. ``end`` a sync would fetch usage for (no network).

        The larger of the snapshot and daily-metric counts: days not final yet
        and days not complete for every customer / instance of the last list.
        Customers and instances new to the next list are not known here.

        Parameters
        ----------
        start, end
            Inclusive calendar days in ``tz``.
        tz
            IANA zone whose midnights bound the days.
        """
        first, last = resolve_days(start, end, tz)
        plan = self._dataset.fetch_plan(_sync_days(first, last, tz))
        return max(len(windows) for windows in plan.org_windows.values())

    def info(self) -> StoreInfo:
        """What the store holds (what ``python -m prismatic_usage store info`` prints)."""
        return self._dataset.info()


@dataclass
class StoreRun:
    """One locked run on a store: its syncs, its outputs, its manifest."""

    dataset: UsageDataset
    run_id: str = field(
        default_factory=lambda: (
            dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{secrets.token_hex(3)}"
        )
    )
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    syncs: list[dict[str, object]] = field(default_factory=list)
    files: dict[Path, None] = field(default_factory=dict)

    def sync(
        self,
        start: dt.date | str,
        end: dt.date | str,
        *,
        url: str | None = None,
        token: str | None = None,
        connection: Connection | None = None,
        tz: str = "UTC",
        options: FetchOptions | None = None,
        final_after: float = DEFAULT_FINAL_AFTER_HOURS,
        progress: ProgressArg = True,
        org_totals: bool = False,
    ) -> SyncResult:
        """See :meth:`UsageStore.sync`."""
        return run_sync(
            self.sync_async(
                start,
                end,
                url=url,
                token=token,
                connection=connection,
                tz=tz,
                options=options,
                final_after=final_after,
                progress=progress,
                org_totals=org_totals,
            )
        )

    async def sync_async(
        self,
        start: dt.date | str,
        end: dt.date | str,
        *,
        url: str | None = None,
        token: str | None = None,
        connection: Connection | None = None,
        tz: str = "UTC",
        options: FetchOptions | None = None,
        final_after: float = DEFAULT_FINAL_AFTER_HOURS,
        progress: ProgressArg = True,
        org_totals: bool = False,
    ) -> SyncResult:
        """See :meth:`UsageStore.sync`."""
        request = FetchRequest.resolve(start, end, url, token, connection, tz, options)
        check_final_after(final_after)
        self.syncs.append(_request_manifest(request, final_after))
        self.write_manifest("running")
        return await self._sync(request, final_after, progress, org_totals)

    async def _sync(
        self, request: FetchRequest, final_after: float, progress: ProgressArg, org_totals: bool
    ) -> SyncResult:
        began = time.monotonic()
        recovered = self.dataset.recover(now=self.started)
        plan = self.dataset.fetch_plan(_sync_days(request.start, request.end, request.tz))
        if org_totals:
            plan = plan.with_org_totals(request.start, request.end, request.tz)
        journal = Journal(
            self.dataset.layout.staging,
            self.run_id,
            folder=f"{self.run_id}.{len(self.syncs)}",
            listed_at=self.started,
            final_before=self.started - dt.timedelta(hours=final_after),
        )
        sink = StoreSink(journal, self.dataset, self.started)
        sink.result.add(recovered)
        try:
            with progress_reporter(progress) as report_progress:
                planner, counters, max_in_flight = await run_planner(
                    request, plan, sink, report_progress, on_answer=sink.answered
                )
        except BaseException:
            try:  # keep every finished stream: the next run resumes from them
                sink.flush(commit=True)
            except Exception:  # the fetch's own error is the one to report
                log.warning("could not merge the finished streams", exc_info=True)
            self._note(sink.result, None)
            raise
        sink.flush(commit=True)
        stats = fetch_stats(
            planner, counters, max_in_flight, time.monotonic() - began, rows=planner.rows_received
        )
        self._note(sink.result, stats)
        return SyncResult(
            run_id=self.run_id,
            start=request.start,
            end=request.end,
            tz=request.tz,
            fetched_days={kind: tuple(sorted(days)) for kind, days in sink.fetched_days.items()},
            stats=stats,
            counts=dict(sink.result.counts),
            changes=sink.result.changes,
            changed_days=len({day for _, day in sink.result.changed_days}),
            org_totals=sink.org_totals(planner.org_totals_refused) if org_totals else None,
        )

    def _note(self, result: CommitResult, stats: FetchStats | None) -> None:
        """Record the current sync's outcome in the manifest (it is the last in ``syncs``)."""
        for path in result.files:
            self.files[path] = None
        current = self.syncs[-1]
        current["rows"] = {name: asdict(c) for name, c in result.counts.items()}
        current["changes"] = result.changes
        if stats is not None:
            current.update(requests=stats.requests, retries=stats.retries)

    def records(
        self, start: dt.date, end: dt.date, tz: str, *, record_ids: bool = True
    ) -> UsageRecords:
        """The stored records for local days ``start`` .. ``end`` in ``tz``, as of this run.

        ``record_ids=False`` leaves out the usage records' IDs (see ``UsageDataset.records``).
        """
        return self.dataset.records(start, end, tz, record_ids=record_ids).with_fetched_at(
            self.started
        )

    def add_outputs(self, paths: Sequence[Path]) -> None:
        """Files this run wrote outside the store (reports), listed in its manifest."""
        for path in paths:
            self.files[Path(path)] = None

    def write_manifest(self, outcome: str) -> None:
        """Write ``runs/<run id>.json`` with the outcome so far (never a credential)."""
        from . import __version__

        files = []
        for path in self.files:
            if path.is_file():
                files.append({"path": str(path), "sha256": sha256_of(path)})
        document = {
            "run_id": self.run_id,
            "tool": "prismatic-usage",
            "tool_version": __version__,
            "store_format_version": FORMAT_VERSION,
            **manifest_totals(self.syncs),
            "syncs": self.syncs,
            "started": self.started.isoformat(),
            "ended": dt.datetime.now(dt.UTC).isoformat() if outcome != "running" else None,
            "outcome": outcome,
            "files": files,
        }
        write_json(self.dataset.layout.runs / f"{self.run_id}.json", document)


#: The largest --final-after accepted: a millennium, in hours (far from any date overflow).
MAX_FINAL_AFTER_HOURS = 24 * 366 * 1000


def check_final_after(hours: float) -> None:
    """``hours`` must be a finite number from 0 to a millennium; ConfigurationError otherwise."""
    if not (0 <= hours <= MAX_FINAL_AFTER_HOURS):
        raise ConfigurationError(
            f"final-after must be between 0 and {MAX_FINAL_AFTER_HOURS} hours, got {hours}"
        )


def _sync_days(start: dt.date, end: dt.date, tz: str) -> dict[str, tuple[dt.date, dt.date]]:
    """The UTC days a sync of local days ``start`` .. ``end`` in ``tz`` covers, per kind.

    Snapshots: every UTC day the local days overlap; daily metrics: the dates
    themselves (``snapshotDate`` has no zone).
    """
    return {"snapshots": utc_days_covering(start, end, tz), "metrics": (start, end)}


def _request_manifest(request: FetchRequest, final_after: float) -> dict[str, object]:
    host = urllib.parse.urlsplit(request.connection.base_url).hostname or ""
    return {
        "start_date": request.start.isoformat(),
        "end_date": request.end.isoformat(),
        "tz": request.tz,
        "api_host": host,
        "final_after_hours": final_after,
        "options": asdict(request.options),
    }
