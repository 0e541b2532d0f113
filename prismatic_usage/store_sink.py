"""Between the fetcher and the store: the sink that journals finished streams, and the result.

The planner hands every finished stream to a :class:`StoreSink`, which batches
them into the store's crash journal and merges the journal into the dataset
when asked; :class:`SyncResult` is what a sync reports back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa

from .errors import StoreError
from .planner import StreamResult
from .records import FetchStats, OrgTotals
from .store.commit import CommitResult, TableCounts
from .store.dataset import UsageDataset
from .store.journal import Journal
from .units import SCHEMAS

__all__ = ["StoreSink", "SyncResult"]

#: Staged rows merged into the dataset mid-run beyond this many (bounds memory: a
#: merge holds its rows a few times over, ~180 bytes a snapshot each time).
_COMMIT_ROWS = 500_000


@dataclass(frozen=True)
class SyncResult:
    """What one sync fetched and how it changed the store.

    Attributes
    ----------
    run_id
        The run's identifier (also in the store's run log).
    start, end, tz
        The range synced (inclusive days in ``tz``).
    fetched_days
        Per stream (``snapshots``, ``metrics``), the days fetched.
    stats
        What the fetch cost (:class:`FetchStats`).
    counts
        Per table, rows added, replaced with other values, kept equal and removed.
    changes, changed_days
        Values restated by a re-fetch (see the store's ``changes/``), and on how many days.
    org_totals
        Prismatic's org totals for the range, when asked for (never stored).
    """

    run_id: str
    start: dt.date
    end: dt.date
    tz: str
    fetched_days: dict[str, tuple[dt.date, ...]]
    stats: FetchStats
    counts: dict[str, TableCounts]
    changes: int
    changed_days: int
    #: Prismatic's org totals for the range, when asked for (never stored).
    org_totals: OrgTotals | None = None

    def summary(self) -> str:
        """One line: requests, rows added and restated values."""
        added = sum(
            c.added for name, c in self.counts.items() if name not in ("customers", "instances")
        )
        line = (
            f"store: {self.stats.requests} requests, {added:,} rows added, "
            f"{sum(len(d) for d in self.fetched_days.values())} stream-days fetched"
        )
        if self.changes:
            line += f"; restated {self.changes:,} values on {self.changed_days} days (see changes/)"
        return line


class StoreSink:
    """Receives finished streams from the planner and journals them, one batch per answer.

    Every answered request's finished streams become one durable batch
    (:meth:`answered`, about a millisecond), so a kill loses no finished
    stream. Usage streams are held until both entity lists are complete, so a
    batch never holds usage whose owners are not yet known to the store.
    """

    def __init__(self, journal: Journal, dataset: UsageDataset, now: dt.datetime) -> None:
        self._journal = journal
        self._dataset = dataset
        self._now = now
        self._lists: set[str] = set()
        self._committed_rows = 0
        self._org: dict[str, list[pa.Table]] = {"org_daily": [], "org_hourly": []}
        self.fetched_days: dict[str, set[dt.date]] = {"snapshots": set(), "metrics": set()}
        self.result = CommitResult()

    @property
    def lists_done(self) -> bool:
        return self._lists == {"customers", "instances"}

    def __call__(self, result: StreamResult) -> None:
        if result.kind in ("org_daily", "org_hourly"):
            self._org[result.kind].append(result.table)  # reconciliation only: not stored
            return
        self._journal.add(result)
        if result.kind in ("customers", "instances"):
            self._lists.add(result.kind)
        elif result.window is not None:
            self.fetched_days[result.kind].update(result.window.days())

    def answered(self) -> None:
        """After every answered request: journal what it finished; merge beyond a size."""
        if not self.lists_done or not self._journal.has_pending:
            return
        uncommitted = self._journal.rows_staged + self._journal.pending_rows - self._committed_rows
        self.flush(commit=uncommitted >= _COMMIT_ROWS)

    def org_totals(self, refused: str | None) -> OrgTotals:
        """The org totals that arrived (empty, with the reason, if the API refused them)."""
        if refused is not None:
            return OrgTotals(refused=refused)
        daily, hourly = (
            pa.concat_tables(tables) if tables else SCHEMAS[kind].empty_table()
            for kind, tables in self._org.items()
        )
        return OrgTotals(daily=daily, hourly=hourly)

    def flush(self, *, commit: bool) -> None:
        """Journal what is pending; with ``commit``, merge every batch into the dataset.

        Raises
        ------
        StoreError
            The store cannot be written (no space, no permission).
        """
        if not self.lists_done:
            return
        root = self._dataset.layout.root
        try:
            self._journal.flush()
            if commit:
                self.result.add(self._dataset.recover(now=self._now))
                self._committed_rows = self._journal.rows_staged
        except OSError as exc:
            raise StoreError(
                f"cannot write to the store {root}: {exc.strerror or exc}; "
                "check its free space and permissions (what was merged is kept)"
            ) from exc
