"""The crash journal: finished streams staged durably until they are merged.

Every finished stream the fetcher hands over is kept in memory only briefly;
the journal writes them out as one *batch* (``_staging/<run id>/<n>/``): one
Parquet file per record kind plus ``units.json``, which says which days of
which stream (org-wide or one entity) the batch completes. A batch is written
into ``<n>.partial`` and renamed into place, so it exists whole or not at all.
Merging (:mod:`.commit`) reads batches in order and discards them afterwards:
a batch is first renamed to ``<n>.done`` (atomic), then deleted, so a kill
while its files are being deleted never leaves a torn batch that looks whole.
A run killed before the discard leaves whole batches for the next run to merge.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from .files import atomic_write, fsync_dir, make_dirs, write_parquet_atomically

__all__ = ["Batch", "Journal", "Unit", "discard", "staged_batches"]

_KINDS = ("customers", "instances", "snapshots", "metrics")


class DayWindow(Protocol):
    """The days a finished stream covered (``prismatic_usage.plan.Window`` is one)."""

    @property
    def first(self) -> dt.date: ...

    @property
    def last(self) -> dt.date: ...


class FinishedStream(Protocol):
    """What the journal needs of a finished stream (the planner's ``FinishedStream``)."""

    @property
    def kind(self) -> str: ...

    @property
    def org_wide(self) -> bool: ...

    @property
    def entity(self) -> str | None: ...

    @property
    def window(self) -> DayWindow | None: ...

    @property
    def table(self) -> pa.Table: ...


@dataclass(frozen=True)
class Unit:
    """Which days of one stream a batch completes (``entity`` None: org-wide)."""

    kind: str
    entity: str | None
    first: dt.date
    last: dt.date

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Batch:
    """One staged batch, read back from disk."""

    path: Path
    run_id: str
    listed_at: dt.datetime
    final_before: dt.datetime
    units: tuple[Unit, ...]
    tables: dict[str, pa.Table]

    @property
    def name(self) -> str:
        """Unique in the store: the journal folder (one per sync) and the batch number."""
        return f"{self.path.parent.name}-{self.path.name}"


class Journal:
    """Stages one sync's finished streams under ``_staging/<folder>/``.

    ``folder`` is unique per sync (the run ID, and a sync number when one run
    syncs several times), so batch names never repeat within a store.
    """

    def __init__(
        self,
        staging: Path,
        run_id: str,
        *,
        folder: str,
        listed_at: dt.datetime,
        final_before: dt.datetime,
    ) -> None:
        self._dir = staging / folder
        self._run_id = run_id
        self._listed_at = listed_at
        self._final_before = final_before
        self._seq = 0
        self._pending: list[FinishedStream] = []
        self.rows_staged = 0

    @property
    def has_pending(self) -> bool:
        """Whether anything waits to be journaled."""
        return bool(self._pending)

    @property
    def pending_rows(self) -> int:
        return sum(result.table.num_rows for result in self._pending)

    def add(self, result: FinishedStream) -> None:
        """Keep a finished stream until the next :meth:`flush`."""
        self._pending.append(result)

    def flush(self) -> None:
        """Write everything added since the last flush as one durable batch."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self._seq += 1
        final = self._dir / f"{self._seq:06d}"
        partial = self._dir / f"{self._seq:06d}.partial"
        make_dirs(partial)
        units = []
        for kind in _KINDS:
            tables = [r.table for r in pending if r.kind == kind]
            if tables:
                write_parquet_atomically(partial / f"{kind}.parquet", pa.concat_tables(tables))
                self.rows_staged += sum(t.num_rows for t in tables)
        for result in pending:
            if result.window is not None:
                units.append(
                    {
                        "kind": result.kind,
                        "entity": None if result.org_wide else result.entity,
                        "first": result.window.first.isoformat(),
                        "last": result.window.last.isoformat(),
                    }
                )
        manifest = {
            "run_id": self._run_id,
            "kinds": [kind for kind in _KINDS if any(r.kind == kind for r in pending)],
            "listed_at": self._listed_at.isoformat(),
            "final_before": self._final_before.isoformat(),
            "units": units,
        }
        payload = json.dumps(manifest).encode()
        atomic_write(partial / "units.json", lambda fh: fh.write(payload))
        partial.rename(final)
        fsync_dir(self._dir)


def staged_batches(staging: Path) -> list[Batch]:
    """Every complete batch under ``staging``, oldest run and batch first.

    Half-written batches (``*.partial``) are deleted: their streams were never
    acknowledged, so nothing marks them complete and they will be fetched
    again. Discarded ones (``*.done``, already merged) are deleted too.
    """
    if not staging.is_dir():
        return []
    batches = []
    for run_dir in sorted(staging.iterdir()):
        if not run_dir.is_dir():
            continue
        for batch_dir in sorted(run_dir.iterdir()):
            if batch_dir.name.endswith((".partial", ".done")):
                shutil.rmtree(batch_dir, ignore_errors=True)
            elif batch_dir.is_dir():
                batch = _read_batch(batch_dir)
                if batch is None:  # not written by this journal whole: never merge it
                    shutil.rmtree(batch_dir, ignore_errors=True)
                else:
                    batches.append(batch)
    return batches


def _read_batch(path: Path) -> Batch | None:
    """The batch in ``path``; None if a file it names is missing (never a torn merge)."""
    try:
        manifest = json.loads((path / "units.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if any(not (path / f"{kind}.parquet").is_file() for kind in manifest.get("kinds", [])):
        return None
    tables = {
        kind: pq.read_table(path / f"{kind}.parquet")
        for kind in _KINDS
        if (path / f"{kind}.parquet").is_file()
    }
    return Batch(
        path=path,
        run_id=manifest["run_id"],
        listed_at=dt.datetime.fromisoformat(manifest["listed_at"]),
        final_before=dt.datetime.fromisoformat(manifest["final_before"]),
        units=tuple(
            Unit(
                kind=u["kind"],
                entity=u["entity"],
                first=dt.date.fromisoformat(u["first"]),
                last=dt.date.fromisoformat(u["last"]),
            )
            for u in manifest["units"]
        ),
        tables=tables,
    )


def discard(batches: Iterable[Batch]) -> None:
    """Delete merged batches (and their folders once empty).

    Each batch is renamed to ``<n>.done`` first (atomic, made durable), so a
    kill during the deletion leaves a batch that is never read again.
    """
    folders = set()
    for batch in batches:
        done = batch.path.with_name(f"{batch.path.name}.done")
        batch.path.rename(done)
        fsync_dir(done.parent)
        shutil.rmtree(done, ignore_errors=True)
        folders.add(batch.path.parent)
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
