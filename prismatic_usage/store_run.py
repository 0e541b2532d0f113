"""One locked run on a usage store: its syncs, its outputs, its manifest (:class:`StoreRun`).

:class:`~prismatic_usage.usage_store.UsageStore` opens a run under the store's
lock; the run syncs (fetches what the store lacks through the planner, into the
journal, then merges), reads records back for reports, and writes its manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .client import FetchRequest, fetch_stats, run_planner
from .config import DEFAULT_FINAL_AFTER_HOURS, Connection, FetchOptions
from .errors import ConfigurationError
from .plan import utc_days_covering
from .progress import ProgressArg, progress_reporter
from .records import FetchStats, UsageRecords
from .store.commit import CommitResult
from .store.dataset import UsageDataset
from .store.files import sha256_of
from .store.journal import Journal
from .store.layout import FORMAT_VERSION
from .store.manifest import manifest_totals, write_json
from .store_sink import StoreSink, SyncResult
from .sync import run_sync

__all__ = ["MAX_FINAL_AFTER_HOURS", "StoreRun", "check_final_after", "sync_days"]

log = logging.getLogger(__name__)


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
        plan = self.dataset.fetch_plan(sync_days(request.start, request.end, request.tz))
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


def sync_days(start: dt.date, end: dt.date, tz: str) -> dict[str, tuple[dt.date, dt.date]]:
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
