"""``UsageStore``: bring a date range up to date in a local store, then read it back.

This module joins the fetcher and the store: the planner fetches only what
the store lacks (:meth:`FetchPlan.incremental`), hands every finished stream
to the store's journal, and the journal's batches are merged into the dataset.
One locked run's work (sync, records for reports, manifest) is a
:class:`~prismatic_usage.store_run.StoreRun`. The store itself
(``prismatic_usage/store/``) knows no network; the planner knows no files.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .client import resolve_days
from .config import DEFAULT_FINAL_AFTER_HOURS, Connection, FetchOptions
from .progress import ProgressArg
from .records import UsageRecords
from .store.dataset import StoreInfo, UsageDataset
from .store.files import StoreLock
from .store.manifest import close_stale_manifests
from .store_run import MAX_FINAL_AFTER_HOURS, StoreRun, check_final_after, sync_days
from .store_sink import SyncResult
from .sync import run_sync

__all__ = [
    "DEFAULT_FINAL_AFTER_HOURS",
    "MAX_FINAL_AFTER_HOURS",
    "StoreRun",
    "SyncResult",
    "UsageStore",
    "check_final_after",
]


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
        plan = self._dataset.fetch_plan(sync_days(first, last, tz))
        return max(len(windows) for windows in plan.org_windows.values())

    def info(self) -> StoreInfo:
        """What the store holds (what ``python -m prismatic_usage store info`` prints)."""
        return self._dataset.info()
