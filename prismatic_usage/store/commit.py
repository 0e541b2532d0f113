"""Merging staged batches into the dataset: replace, record restatements, mark complete.

A commit is idempotent, so a run killed halfway through one is finished by the
next run merging the same batches again. Its steps, in this order:

1. the restatements (values that differ from what the store held) are computed
   from the untouched dataset and written as one ``changes/`` file, unless a
   crashed earlier attempt already wrote it;
2. customers and instances are merged (first and last seen);
3. every affected day partition is rewritten: the rows in a fetched scope (the
   whole day for an org-wide fetch, one entity's rows otherwise) are replaced by
   what was fetched, every other row is kept;
4. the final days of every fetched scope are marked complete;
5. the batches are deleted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..records import one_row_per_key
from .files import read_parquet, write_parquet_atomically
from .journal import Batch, discard
from .layout import (
    CHANGE_SCHEMA,
    COMPLETE_SCHEMA,
    CUSTOMER_SCHEMA,
    INSTANCE_SCHEMA,
    USAGE_TABLES,
    Layout,
    UsageTable,
)

__all__ = ["CommitResult", "TableCounts", "commit"]

_ALL = None  # a scope that covers every entity of a day (an org-wide fetch)


@dataclass
class TableCounts:
    """Rows of one table a commit added, replaced with other values, kept equal, removed."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    removed: int = 0

    def add(self, other: TableCounts) -> None:
        self.added += other.added
        self.replaced += other.replaced
        self.unchanged += other.unchanged
        self.removed += other.removed


@dataclass
class CommitResult:
    """What one or more commits did to the store."""

    counts: dict[str, TableCounts] = field(default_factory=lambda: defaultdict(TableCounts))
    changes: int = 0
    changed_days: set[tuple[str, dt.date]] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)

    def add(self, other: CommitResult) -> None:
        for name, counts in other.counts.items():
            self.counts[name].add(counts)
        self.changes += other.changes
        self.changed_days |= other.changed_days
        self.files.extend(other.files)


def commit(layout: Layout, batches: Sequence[Batch], *, now: dt.datetime) -> CommitResult:
    """Merge ``batches`` (oldest first) into the dataset at ``layout``; see the module doc."""
    result = CommitResult()
    if not batches:
        return result
    customers = _merged_entities(
        layout.customers, CUSTOMER_SCHEMA, "customer_id", batches, result.counts["customers"]
    )
    instances = _merged_entities(
        layout.instances, INSTANCE_SCHEMA, "instance_id", batches, result.counts["instances"]
    )
    known = {
        "snapshots": customers.column("customer_id"),
        "metrics": instances.column("instance_id"),
    }
    merges = {
        kind: _DayMerges(layout, table, batches, known[kind])
        for kind, table in USAGE_TABLES.items()
    }
    run_id = batches[-1].run_id
    changes_path = layout.changes / f"{batches[0].name}.parquet"
    changes = [m.changes(run_id, now) for m in merges.values()]
    change_table = pa.concat_tables(changes)
    if change_table.num_rows and not changes_path.exists():
        write_parquet_atomically(changes_path, change_table)
        result.files.append(changes_path)
    result.changes = change_table.num_rows
    for table, key in ((customers, layout.customers), (instances, layout.instances)):
        write_parquet_atomically(key, table)
        result.files.append(key)
    for kind, merge in merges.items():
        result.counts[USAGE_TABLES[kind].name] = merge.counts
        result.files.extend(merge.write())
        result.changed_days |= merge.changed_days
    _mark_complete(layout, batches)
    result.files.append(layout.complete)
    discard(batches)
    return result


def _merged_entities(
    path: Path, schema: pa.Schema, id_column: str, batches: Sequence[Batch], counts: TableCounts
) -> pa.Table:
    """The entity table after every list in ``batches``: names as last seen, first/last seen."""
    kind = "customers" if id_column == "customer_id" else "instances"
    table = read_parquet(path, schema) if path.exists() else schema.empty_table()
    for batch in batches:
        listed = batch.tables.get(kind)
        if listed is None:
            continue
        seen = pa.scalar(batch.listed_at, type=schema.field("first_seen").type)
        listed = listed.rename_columns([id_column if n == "id" else n for n in listed.column_names])
        earlier = table.filter(
            pc.is_in(table.column(id_column), value_set=listed.column(id_column))
        )
        first_seen = dict(
            zip(
                earlier.column(id_column).to_pylist(),
                earlier.column("first_seen").to_pylist(),
                strict=True,
            )
        )
        firsts = [
            min(first_seen.get(i, batch.listed_at), batch.listed_at)
            for i in listed.column(id_column).to_pylist()
        ]
        columns = {
            name: listed.column(name) for name in schema.names if name in listed.column_names
        }
        columns["first_seen"] = pa.array(firsts, schema.field("first_seen").type)
        columns["last_seen"] = pa.array(
            [seen.as_py()] * listed.num_rows, schema.field("last_seen").type
        )
        fresh = pa.table(columns, schema=schema)
        attributes = [n for n in schema.names if n not in ("first_seen", "last_seen")]
        before = {row[id_column]: row for row in earlier.select(attributes).to_pylist()}
        for row in fresh.select(attributes).to_pylist():
            old = before.get(row[id_column])
            if old is None:
                counts.added += 1
            elif old == row:
                counts.unchanged += 1
            else:
                counts.replaced += 1
        kept = table.filter(
            pc.invert(pc.is_in(table.column(id_column), value_set=listed.column(id_column)))
        )
        table = pa.concat_tables([kept, fresh]).sort_by(id_column)
    return table


def _to_store(table: pa.Table, usage: UsageTable) -> pa.Table:
    """A fetched table (fetcher column names) in the store's schema."""
    renamed = table.rename_columns(["record_id" if n == "id" else n for n in table.column_names])
    return renamed.select(usage.schema.names).cast(usage.schema)


class _DayMerges:
    """The merge of one usage table: staged rows and scopes per day partition."""

    def __init__(
        self, layout: Layout, usage: UsageTable, batches: Sequence[Batch], known: pa.ChunkedArray
    ) -> None:
        self._layout = layout
        self._usage = usage
        self.counts = TableCounts()
        self.changed_days: set[tuple[str, dt.date]] = set()
        self._scopes: dict[dt.date, set[str] | None] = {}
        for batch in batches:
            for unit in batch.units:
                if unit.kind != usage.kind:
                    continue
                for day in unit.days():
                    scope = self._scopes.get(day, set())
                    if unit.entity is _ALL or scope is _ALL:
                        self._scopes[day] = _ALL
                    else:
                        self._scopes[day] = scope | {unit.entity}
        staged = [_to_store(b.tables[usage.kind], usage) for b in batches if usage.kind in b.tables]
        rows = pa.concat_tables(staged) if staged else usage.schema.empty_table()
        del staged
        known_rows = pc.is_in(rows.column(usage.entity), value_set=known.combine_chunks())
        if pc.all(known_rows).as_py() is False:
            rows = rows.filter(known_rows)
        rows = one_row_per_key(rows, [usage.entity, usage.key], keep="last")  # a later fetch wins
        days = usage.day_of(rows)
        self._old_in_scope: dict[dt.date, pa.Table] = {}
        self._kept: dict[dt.date, pa.Table] = {}
        self._new: dict[dt.date, pa.Table] = {}
        for day, scope in sorted(self._scopes.items()):
            new = rows.filter(pc.equal(days, pa.scalar(day, pa.date32())))
            path = layout.partition(usage, day)
            old = read_parquet(path, usage.schema) if path.exists() else usage.schema.empty_table()
            in_scope = (
                pa.array([True] * old.num_rows, pa.bool_())
                if scope is _ALL
                else pc.is_in(
                    old.column(usage.entity), value_set=pa.array(sorted(scope), pa.string())
                )
            )
            self._old_in_scope[day] = old.filter(in_scope)
            self._new[day] = new
            self._kept[day] = old.filter(pc.invert(in_scope))

    def changes(self, run_id: str, now: dt.datetime) -> pa.Table:
        """Restatements of every affected day, and the row counts."""
        usage = self._usage
        keys = [usage.entity, usage.key]
        pieces = [CHANGE_SCHEMA.empty_table()]
        for day, old in self._old_in_scope.items():
            new = self._new[day]
            if not old.num_rows:
                self.counts.added += new.num_rows
                continue
            joined = old.join(
                new, keys=keys, join_type="full outer", left_suffix="__old", right_suffix="__new"
            )
            old_present = pc.is_valid(joined.column("record_id__old"))
            new_present = pc.is_valid(joined.column("record_id__new"))
            # A row new to an entity the store already held rows of that day for
            # restates it (the day grew); the first rows ever fetched for one do not,
            # whether they came org-wide or per entity.
            restates = pc.or_(
                old_present,
                pc.is_in(joined.column(usage.entity), value_set=old.column(usage.entity).unique()),
            )
            differs = pa.array([False] * joined.num_rows, pa.bool_())
            for name in usage.values:
                a, b = joined.column(f"{name}__old"), joined.column(f"{name}__new")
                field_differs = pc.and_(pc.fill_null(pc.not_equal(a, b), True), restates)
                differs = pc.or_(differs, field_differs)
                changed = joined.filter(field_differs)
                if changed.num_rows:
                    key_text = changed.column(usage.key).cast(pa.string())
                    pieces.append(
                        pa.table(
                            {
                                "table": pa.array([usage.name] * changed.num_rows, pa.string()),
                                "entity_id": changed.column(usage.entity),
                                "key": key_text,
                                "day": pa.array([day] * changed.num_rows, pa.date32()),
                                "field": pa.array([name] * changed.num_rows, pa.string()),
                                "old_value": changed.column(f"{name}__old"),
                                "new_value": changed.column(f"{name}__new"),
                                "run_id": pa.array([run_id] * changed.num_rows, pa.string()),
                                "changed_at": pa.array(
                                    [now] * changed.num_rows, CHANGE_SCHEMA.field("changed_at").type
                                ),
                            },
                            schema=CHANGE_SCHEMA,
                        )
                    )
            both = pc.and_(old_present, new_present)
            self.counts.added += pc.sum(pc.and_(new_present, pc.invert(old_present))).as_py() or 0
            self.counts.removed += pc.sum(pc.and_(old_present, pc.invert(new_present))).as_py() or 0
            self.counts.replaced += pc.sum(pc.and_(both, differs)).as_py() or 0
            self.counts.unchanged += pc.sum(pc.and_(both, pc.invert(differs))).as_py() or 0
            if pc.any(differs).as_py():
                self.changed_days.add((usage.name, day))
        return pa.concat_tables(pieces)

    def write(self) -> list[Path]:
        """Rewrite every affected partition; returns the files written."""
        usage = self._usage
        written = []
        for day, new in self._new.items():
            # Merged one day at a time, so only one day's merge is held twice.
            merged = pa.concat_tables([self._kept[day], new]).sort_by(
                [(usage.entity, "ascending"), (usage.key, "ascending")]
            )
            path = self._layout.partition(usage, day)
            write_parquet_atomically(path, merged)
            written.append(path)
        return written


def _mark_complete(layout: Layout, batches: Sequence[Batch]) -> None:
    """Record the final days of every fetched scope (idempotent)."""
    path = layout.complete
    table = read_parquet(path, COMPLETE_SCHEMA) if path.exists() else COMPLETE_SCHEMA.empty_table()
    streams, entities, days, runs = [], [], [], []
    for batch in batches:
        for unit in batch.units:
            for day in unit.days():
                end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
                if end <= batch.final_before:
                    streams.append(USAGE_TABLES[unit.kind].name)
                    entities.append(unit.entity)
                    days.append(day)
                    runs.append(batch.run_id)
    if not streams:
        if not path.exists():
            write_parquet_atomically(path, table)
        return
    fresh = pa.table(
        {"stream": streams, "entity_id": entities, "day": days, "run_id": runs},
        schema=COMPLETE_SCHEMA,
    )
    combined = one_row_per_key(
        pa.concat_tables([table, fresh]), ["stream", "entity_id", "day"], keep="first"
    )
    write_parquet_atomically(
        path,
        combined.sort_by(
            [("stream", "ascending"), ("day", "ascending"), ("entity_id", "ascending")]
        ),
    )
