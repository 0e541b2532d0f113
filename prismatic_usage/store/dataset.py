"""The store directory as a dataset: open or create it, read records, report what it holds.

Knows no network: it reads and writes files under one directory (see
:mod:`.layout` for the contract) and turns them back into
:class:`~prismatic_usage.records.UsageRecords` for the frames.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._distinct_values import with_one_dictionary
from ..errors import StoreError
from ..plan import FetchPlan, local_window, utc_days_covering
from ..records import (
    CUSTOMER_SCHEMA as RECORD_CUSTOMERS,
)
from ..records import (
    DAILY_METRIC_SCHEMA as RECORD_METRICS,
)
from ..records import (
    INSTANCE_SCHEMA as RECORD_INSTANCES,
)
from ..records import (
    OWNER_ID,
    UsageRecords,
)
from ..records import (
    SNAPSHOT_SCHEMA as RECORD_SNAPSHOTS,
)
from .commit import CommitResult, commit
from .files import atomic_write, read_parquet, remove_temporaries
from .journal import staged_batches
from .layout import (
    COMPLETE_SCHEMA,
    CUSTOMER_SCHEMA,
    FORMAT_NAME,
    FORMAT_VERSION,
    INSTANCE_SCHEMA,
    USAGE_TABLES,
    Layout,
    UsageTable,
)

__all__ = ["StoreInfo", "UsageDataset"]

_EPOCH = dt.date(1970, 1, 1)


class UsageDataset:
    """One store directory (created on first use if it is new or empty)."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.layout = Layout(root)
        marker = self.layout.marker
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} is a file, not a store directory; choose a directory")
        if marker.is_file():
            self._check_marker()
        elif root.is_dir() and any(not _is_temporary(p) for p in root.iterdir()):
            raise StoreError(
                f"{root} is not a usage store (it has no store.json) and is not empty; "
                "choose a new or empty directory for --store"
            )
        elif not create:
            raise StoreError(f"{root} is not a usage store; create one with --store {root}")
        else:
            payload = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION}).encode()
            try:
                atomic_write(marker, lambda fh: fh.write(payload))
            except OSError as exc:
                raise StoreError(f"cannot create a store in {root}: {exc.strerror or exc}") from exc

    def _check_marker(self) -> None:
        try:
            marker = json.loads(self.layout.marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.layout.marker} is unreadable: {exc}") from exc
        if marker.get("format") != FORMAT_NAME or marker.get("version") != FORMAT_VERSION:
            raise StoreError(
                f"{self.layout.root} holds store format {marker.get('version')!r}; this version "
                f"reads format {FORMAT_VERSION}: use the matching prismatic-usage version"
            )

    # -- recovery and completeness ------------------------------------------------

    def recover(self, *, now: dt.datetime) -> CommitResult:
        """Finish what a killed run left: delete temporaries, merge its staged batches.

        Call only while holding the store's lock.
        """
        remove_temporaries(self.layout.root)
        return commit(self.layout, staged_batches(self.layout.staging), now=now)

    def fetch_plan(self, days: Mapping[str, tuple[dt.date, dt.date]]) -> FetchPlan:
        """What a sync must fetch of these days, given what the store holds (no network).

        Parameters
        ----------
        days
            Per fetcher kind (``snapshots``, ``metrics``), the inclusive UTC days wanted.
        """
        org_done, entity_done = self.completed()
        known, current = self._entity_ids()
        return FetchPlan.incremental(
            days, org_done=org_done, entity_done=entity_done, current=current, known=known
        )

    def _entity_ids(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """Per fetcher kind: every customer / instance seen, and those the last list named."""
        known: dict[str, frozenset[str]] = {}
        current: dict[str, frozenset[str]] = {}
        for kind, path, schema, column in (
            ("snapshots", self.layout.customers, CUSTOMER_SCHEMA, "customer_id"),
            ("metrics", self.layout.instances, INSTANCE_SCHEMA, "instance_id"),
        ):
            table = self._entities(path, schema)
            known[kind] = frozenset(table.column(column).to_pylist())
            if not table.num_rows:
                current[kind] = frozenset()
                continue
            latest = pc.max(table.column("last_seen"))
            newest = table.filter(pc.equal(table.column("last_seen"), latest))
            current[kind] = frozenset(newest.column(column).to_pylist())
        return known, current

    def completed(
        self,
    ) -> tuple[dict[str, set[dt.date]], dict[str, dict[str, frozenset[dt.date]]]]:
        """The final days already fetched: ``(org_done, entity_done)`` per fetcher kind."""
        org_done: dict[str, set[dt.date]] = {kind: set() for kind in USAGE_TABLES}
        per_entity: dict[str, dict[str, set[dt.date]]] = {
            kind: defaultdict(set) for kind in USAGE_TABLES
        }
        if not self.layout.complete.exists():
            return org_done, {}
        marks = read_parquet(self.layout.complete, COMPLETE_SCHEMA).to_pydict()
        kind_of = {table.name: kind for kind, table in USAGE_TABLES.items()}
        for stream, entity, day in zip(
            marks["stream"], marks["entity_id"], marks["day"], strict=True
        ):
            kind = kind_of[stream]
            if entity is None:
                org_done[kind].add(day)
            else:
                per_entity[kind][entity].add(day)
        entity_done = {
            kind: {entity: frozenset(days) for entity, days in by_entity.items()}
            for kind, by_entity in per_entity.items()
        }
        return org_done, entity_done

    # -- reading ------------------------------------------------------------------

    def records(
        self, start: dt.date, end: dt.date, tz: str, *, record_ids: bool = True
    ) -> UsageRecords:
        """The stored records for local days ``start`` .. ``end`` in ``tz``.

        Snapshots are those inside the local days (read from the UTC-day
        partitions that overlap them), daily metrics those whose
        ``snapshotDate`` is in the range; customers and instances are every one
        the store has seen, so usage of a since-deleted instance keeps its name.
        ``record_ids=False`` leaves the usage records' ``id`` column out (the
        store's ``record_id``): no frame uses it, and a year of 1,000 customers'
        snapshots holds ~0.8 GB of them.
        """
        columns = {
            kind: None if record_ids else _without(table.schema, "record_id").names
            for kind, table in USAGE_TABLES.items()
        }
        window = local_window(start, end, tz)
        low = pa.scalar(dt.datetime.fromisoformat(window.time_gte))
        high = pa.scalar(dt.datetime.fromisoformat(window.time_lte))
        snapshots = self._read_days(
            USAGE_TABLES["snapshots"],
            columns["snapshots"],
            *utc_days_covering(start, end, tz),
            keep=lambda day: _owners_once(_within(day, low, high)),
        )
        metrics = self._read_days(USAGE_TABLES["metrics"], columns["metrics"], start, end)
        snapshot_schema, metric_schema = RECORD_SNAPSHOTS, RECORD_METRICS
        if not record_ids:
            snapshot_schema = _without(RECORD_SNAPSHOTS, "id")
            metric_schema = _without(RECORD_METRICS, "id")
        customers = self._entities(self.layout.customers, CUSTOMER_SCHEMA)
        instances = self._entities(self.layout.instances, INSTANCE_SCHEMA)
        return UsageRecords(
            start=start,
            end=end,
            tz=tz,
            customers=_as_records(customers, RECORD_CUSTOMERS, {"customer_id": "id"}),
            instances=_as_records(instances, RECORD_INSTANCES, {"instance_id": "id"}),
            snapshots=_as_records(
                with_one_dictionary(snapshots, "customer_id"), snapshot_schema, {"record_id": "id"}
            ),
            daily_metrics=_as_records(metrics, metric_schema, {"record_id": "id"}),
        )

    def _read_days(
        self,
        usage: UsageTable,
        columns: list[str] | None,
        first: dt.date,
        last: dt.date,
        keep: Callable[[pa.Table], pa.Table] | None = None,
    ) -> pa.Table:
        """The partitions of days ``first`` .. ``last`` (only ``columns``), kept by ``keep``.

        Filtering partition by partition copies at most one day at a time (and
        none when a day is kept whole), never the whole range.
        """
        tables = []
        for day, path in self.layout.partitions(usage):
            if first <= day <= last:
                table = read_parquet(path, usage.schema, columns)
                tables.append(table if keep is None else keep(table))
        if tables:
            return pa.concat_tables(tables)
        empty = usage.schema.empty_table()
        return empty if columns is None else empty.select(columns)

    @staticmethod
    def _entities(path: Path, schema: pa.Schema) -> pa.Table:
        return read_parquet(path, schema) if path.exists() else schema.empty_table()

    # -- what it holds --------------------------------------------------------------

    def info(self) -> StoreInfo:
        """Date ranges, row counts, open days, size and the last runs."""
        layout = self.layout
        tables = {}
        open_days: dict[str, list[dt.date]] = {}
        partitions = {kind: layout.partitions(usage) for kind, usage in USAGE_TABLES.items()}
        # A day is open until it is done org-wide or for everyone the last list named:
        # exactly the days a sync would still fetch org-wide.
        spans = {
            kind: (found[0][0], found[-1][0]) if found else (_EPOCH, _EPOCH)
            for kind, found in partitions.items()
        }
        plan = self.fetch_plan(spans)
        for kind, usage in USAGE_TABLES.items():
            rows = sum(pq.read_metadata(path).num_rows for _, path in partitions[kind])
            days = [day for day, _ in partitions[kind]]
            tables[usage.name] = (days[0] if days else None, days[-1] if days else None, rows)
            wanted = {window.first for window in plan.org_windows[kind]}
            open_days[usage.name] = [day for day in days if day in wanted]
        size = sum(p.stat().st_size for p in layout.root.rglob("*") if p.is_file())
        runs = sorted(layout.runs.glob("*.json")) if layout.runs.is_dir() else []
        last_runs = []
        for path in runs[-5:]:
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            last_runs.append(manifest)
        return StoreInfo(
            root=layout.root,
            tables=tables,
            customers=self._entities(layout.customers, CUSTOMER_SCHEMA).num_rows,
            instances=self._entities(layout.instances, INSTANCE_SCHEMA).num_rows,
            open_days=open_days,
            bytes_on_disk=size,
            last_runs=last_runs,
        )


def _is_temporary(path: Path) -> bool:
    """A hidden temporary file (a killed write leaves one; it makes no folder a non-store)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _within(snapshots: pa.Table, low: pa.Scalar, high: pa.Scalar) -> pa.Table:
    """The snapshots timed ``low`` .. ``high`` (inclusive); the table itself if all are."""
    times = snapshots.column("snapshot_time")
    inside = pc.and_(pc.greater_equal(times, low), pc.less_equal(times, high))
    if pc.all(inside).as_py() is not False:
        return snapshots
    return snapshots.filter(inside)


def _owners_once(snapshots: pa.Table) -> pa.Table:
    """One day's snapshots with ``customer_id`` dictionary-encoded, as fetched records hold it.

    Encoded day by day, so that reading a year never holds every row's ID as text.
    """
    index = snapshots.schema.get_field_index("customer_id")
    owners = pc.dictionary_encode(snapshots.column(index))
    return snapshots.set_column(index, snapshots.schema.field(index).with_type(OWNER_ID), owners)


def _without(schema: pa.Schema, name: str) -> pa.Schema:
    return schema.remove(schema.get_field_index(name))


def _as_records(table: pa.Table, schema: pa.Schema, renames: dict[str, str]) -> pa.Table:
    renamed = table.rename_columns([renames.get(n, n) for n in table.column_names])
    return renamed.select(schema.names).cast(schema)


@dataclass(frozen=True)
class StoreInfo:
    """What ``store info`` prints: per table ``(first day, last day, rows)`` and the rest.

    Attributes
    ----------
    root
        The store's directory.
    tables
        Per table: first day, last day (``None`` when empty) and rows.
    customers, instances
        Customers and instances the store knows.
    open_days
        Per table, the days not yet final (fetched again on the next sync).
    bytes_on_disk
        Size of the store's files.
    last_runs
        The manifests of the last five runs, oldest first.
    """

    root: Path
    tables: dict[str, tuple[dt.date | None, dt.date | None, int]]
    customers: int
    instances: int
    open_days: dict[str, list[dt.date]]
    bytes_on_disk: int
    last_runs: list[dict[str, object]]

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"store {self.root}: {self.bytes_on_disk / 1e6:.1f} MB on disk"]
        for name, (first, last, rows) in self.tables.items():
            span = f"{first} to {last}" if first else "empty"
            opened = self.open_days.get(name, [])
            still = f", {len(opened)} open day(s) from {opened[0]}" if opened else ""
            lines.append(f"  {name}: {rows:,} rows, {span}{still}")
        lines.append(f"  customers: {self.customers:,}, instances: {self.instances:,} (ever seen)")
        for run in self.last_runs:
            lines.append(
                f"  run {run.get('run_id')}: {run.get('outcome')}, "
                f"{run.get('start_date')} to {run.get('end_date')}, "
                f"{run.get('requests')} requests"
            )
        return "\n".join(lines)
