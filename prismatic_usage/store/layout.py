"""The store's on-disk layout and schemas: a contract that other engines read.

::

    DIR/store.json                      format marker and version
    DIR/snapshots/date=YYYY-MM-DD/data.parquet      hourly snapshots of that UTC day
    DIR/daily_metrics/date=YYYY-MM-DD/data.parquet  daily metrics of that snapshotDate
    DIR/customers/data.parquet          every customer ever listed, as last seen
    DIR/instances/data.parquet          every instance ever listed, as last seen
    DIR/changes/<run id>-<n>.parquet    restated values, appended, never rewritten
    DIR/runs/<run id>.json              one manifest per run
    DIR/_state/complete.parquet         which (stream, entity, UTC day) are final and fetched
    DIR/_staging/<run id>/<n>/          finished streams not yet merged (crash journal)
    DIR/.lock                           held by the running sync

Partitions are by UTC day (``date=``), not month: a day is the unit the store
tracks, finalises and re-fetches, so replacing an open day rewrites one small
file and recovering from a crash never rewrites a month. Folders starting with
``_`` or ``.`` are private (Spark and Hive skip them).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

__all__ = [
    "CHANGE_SCHEMA",
    "COMPLETE_SCHEMA",
    "CUSTOMER_SCHEMA",
    "FORMAT_VERSION",
    "INSTANCE_SCHEMA",
    "METRIC_SCHEMA",
    "SNAPSHOT_SCHEMA",
    "USAGE_TABLES",
    "Layout",
]

FORMAT_VERSION = 1
FORMAT_NAME = "prismatic-usage-store"

UTC_MICROS = pa.timestamp("us", tz="UTC")

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("snapshot_time", UTC_MICROS, nullable=False),
        pa.field("deployed_instance_count", pa.int64(), nullable=False),
        pa.field("deployed_unique_integration_count", pa.int64(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
    ]
)
METRIC_SCHEMA = pa.schema(
    [
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("snapshot_date", pa.date32(), nullable=False),
        pa.field("successful_execution_count", pa.int64(), nullable=False),
        pa.field("failed_execution_count", pa.int64(), nullable=False),
        pa.field("step_count", pa.int64(), nullable=False),
        pa.field("spend_mb_secs", pa.int64(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
    ]
)
_SEEN = (
    pa.field("first_seen", UTC_MICROS, nullable=False),
    pa.field("last_seen", UTC_MICROS, nullable=False),
)
CUSTOMER_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("external_id", pa.string()),
        *_SEEN,
    ]
)
INSTANCE_SCHEMA = pa.schema(
    [
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("integration_name", pa.string()),
        *_SEEN,
    ]
)
COMPLETE_SCHEMA = pa.schema(
    [
        pa.field("stream", pa.string(), nullable=False),
        pa.field("entity_id", pa.string()),  # null: fetched org-wide, for everyone
        pa.field("day", pa.date32(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)
CHANGE_SCHEMA = pa.schema(
    [
        pa.field("table", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("old_value", pa.int64()),
        pa.field("new_value", pa.int64()),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("changed_at", UTC_MICROS, nullable=False),
    ]
)


class UsageTable:
    """One partitioned usage table: its folder, schema, natural key and value fields."""

    def __init__(self, *, name: str, kind: str, schema: pa.Schema, entity: str, key: str) -> None:
        self.name = name
        self.kind = kind  # the fetcher's name for the stream
        self.schema = schema
        self.entity = entity
        self.key = key
        self.values = [f for f in schema.names if f not in (entity, key, "record_id")]

    def day_of(self, table: pa.Table) -> pa.Array:
        """The UTC day (the partition) of every row."""
        column = table.column(self.key)
        if pa.types.is_timestamp(column.type):
            return column.cast(pa.timestamp("us")).cast(pa.date32())
        return column


SNAPSHOTS = UsageTable(
    name="snapshots",
    kind="snapshots",
    schema=SNAPSHOT_SCHEMA,
    entity="customer_id",
    key="snapshot_time",
)
DAILY_METRICS = UsageTable(
    name="daily_metrics",
    kind="metrics",
    schema=METRIC_SCHEMA,
    entity="instance_id",
    key="snapshot_date",
)
USAGE_TABLES = {table.kind: table for table in (SNAPSHOTS, DAILY_METRICS)}


class Layout:
    """Paths inside one store directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = root / "store.json"
        self.customers = root / "customers" / "data.parquet"
        self.instances = root / "instances" / "data.parquet"
        self.changes = root / "changes"
        self.runs = root / "runs"
        self.complete = root / "_state" / "complete.parquet"
        self.staging = root / "_staging"

    def partition(self, table: UsageTable, day: dt.date) -> Path:
        """The file holding ``table``'s rows of UTC day ``day``."""
        return self.root / table.name / f"date={day.isoformat()}" / "data.parquet"

    def partitions(self, table: UsageTable) -> list[tuple[dt.date, Path]]:
        """Every partition of ``table`` on disk, oldest day first."""
        folder = self.root / table.name
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            prefix, _, value = child.name.partition("=")
            if prefix == "date" and (child / "data.parquet").is_file():
                found.append((dt.date.fromisoformat(value), child / "data.parquet"))
        return sorted(found)
