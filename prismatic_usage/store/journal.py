"""The crash journal: finished streams staged durably until they are merged.

Every finished stream the fetcher hands over is kept in memory only briefly;
the journal writes them out as one *batch* (``_staging/<run id>/<n>/``): one
Parquet file per record kind plus ``units.json``, which says which days of
which stream (org-wide or one entity) the batch completes. A batch is written
into ``<n>.partial`` and renamed into place, so it exists whole or not at all.
Merging (:mod:`.commit`) reads batches in order and deletes them afterwards;
a run killed in between leaves them for the next run to merge.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..planner import StreamResult
from .files import atomic_write, fsync_dir, make_dirs, write_parquet_atomically

__all__ = ["Batch", "Journal", "Unit", "discard", "staged_batches"]

_KINDS = ("customers", "instances", "snapshots", "metrics")


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
        return f"{self.run_id}-{self.path.name}"


class Journal:
    """Stages one run's finished streams under ``_staging/<run id>/``."""

    def __init__(
        self, staging: Path, run_id: str, *, listed_at: dt.datetime, final_before: dt.datetime
    ) -> None:
        self._dir = staging / run_id
        self._run_id = run_id
        self._listed_at = listed_at
        self._final_before = final_before
        self._seq = 0
        self._pending: list[StreamResult] = []
        self.rows_staged = 0

    @property
    def pending_rows(self) -> int:
        return sum(result.table.num_rows for result in self._pending)

    def add(self, result: StreamResult) -> None:
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
    acknowledged and will be fetched again.
    """
    if not staging.is_dir():
        return []
    batches = []
    for run_dir in sorted(staging.iterdir()):
        if not run_dir.is_dir():
            continue
        for batch_dir in sorted(run_dir.iterdir()):
            if batch_dir.name.endswith(".partial"):
                shutil.rmtree(batch_dir, ignore_errors=True)
            elif batch_dir.is_dir():
                batches.append(_read_batch(batch_dir))
    return batches


def _read_batch(path: Path) -> Batch:
    manifest = json.loads((path / "units.json").read_text(encoding="utf-8"))
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
    """Delete merged batches (and their run folders once empty)."""
    folders = set()
    for batch in batches:
        shutil.rmtree(batch.path, ignore_errors=True)
        folders.add(batch.path.parent)
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
