"""Raw records: what the fetcher returns and the pipelines consume.

Records are kept as Arrow tables with one declared schema per kind. At a million
hourly snapshots a list of dicts costs ~1 KB a record in CPython; Arrow columns
cost ~60 bytes, build in chunks while pages arrive, and hand pandas typed columns
without a per-record Python loop. Integers are int64 end to end (BigInt values
above 2**53 stay exact); timestamps are parsed once, at ingest, to UTC microseconds.

The snapshots' ``customer_id`` is dictionary-encoded (:data:`OWNER_ID`): a customer
has ~24 snapshots a day, and its 60-character ID held once instead of once a row
saves ~60 bytes a snapshot (0.4 GB for 3,000 customers over 92 days). Fetched and
stored records share one sorted dictionary of the customers with snapshots, so
Arrow groups and joins on it and pandas sorts it (a categorical) as it would the
text; kernels without dictionary support (``sort_by``, ``pc.min``) want
``pc.cast(column, pa.string())`` first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ._json_arrow import GRAPHQL_INT_MAX
from .table_builder import TableBuilder

__all__ = [
    "CUSTOMER_SCHEMA",
    "DAILY_METRIC_SCHEMA",
    "GRAPHQL_INT_MAX",
    "INSTANCE_SCHEMA",
    "ORG_DAILY_SCHEMA",
    "ORG_HOURLY_SCHEMA",
    "OWNER_ID",
    "SNAPSHOT_SCHEMA",
    "FetchStats",
    "OrgTotals",
    "TableBuilder",
    "UsageRecords",
    "one_row_per_key",
]

UTC_MICROS = pa.timestamp("us", tz="UTC")
#: The type of an owner ID repeated on many rows: each distinct ID held once per chunk.
OWNER_ID = pa.dictionary(pa.int32(), pa.string())

CUSTOMER_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("external_id", pa.string()),
    ]
)
INSTANCE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("integration_name", pa.string()),
    ]
)
SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("customer_id", OWNER_ID, nullable=False),
        pa.field("snapshot_time", UTC_MICROS, nullable=False),
        pa.field("deployed_instance_count", pa.int64(), nullable=False),
        pa.field("deployed_unique_integration_count", pa.int64(), nullable=False),
    ]
)
DAILY_METRIC_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("snapshot_date", pa.date32(), nullable=False),
        pa.field("successful_execution_count", pa.int64(), nullable=False),
        pa.field("failed_execution_count", pa.int64(), nullable=False),
        pa.field("step_count", pa.int64(), nullable=False),
        pa.field("spend_mb_secs", pa.int64(), nullable=False),
    ]
)

# The org's daily totals: the daily-metrics fields without the instance.
ORG_DAILY_SCHEMA = DAILY_METRIC_SCHEMA.remove(DAILY_METRIC_SCHEMA.get_field_index("instance_id"))
ORG_HOURLY_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("snapshot_time", UTC_MICROS, nullable=False),
        pa.field("deployed_instance_count", pa.int64(), nullable=False),
    ]
)


def one_row_per_key(table: pa.Table, keys: Sequence[str], *, keep: str = "first") -> pa.Table:
    """``table`` with only the first (or last) row of each key, in table order.

    Parameters
    ----------
    table
        Any Arrow table.
    keys
        The columns that make a row's key (null is a key value like any other).
    keep
        ``"first"`` or ``"last"``: which of a key's rows stays.
    """
    aggregate = {"first": "min", "last": "max"}[keep]
    indexed = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    chosen = indexed.group_by(list(keys), use_threads=False).aggregate([("__row", aggregate)])
    if chosen.num_rows == table.num_rows:
        return table
    rows = chosen.column(f"__row_{aggregate}")
    return table.take(pc.take(rows, pc.sort_indices(rows)))


@dataclass(frozen=True)
class FetchStats:
    """What a fetch cost: how many requests, pages and retries, and how long it took.

    Attributes
    ----------
    requests
        HTTP requests made.
    page_units
        Pages fetched (a packed request carries several).
    retries, throttled
        Requests retried, and of those answered HTTP 429.
    splits
        Packs split after the server refused them or they were too large.
    pack
        Pages packed per request at the end of the fetch.
    duplicates_dropped
        Records the API sent twice (across pages), kept once.
    rows
        Records kept.
    seconds
        Wall-clock duration.
    org_wide_snapshots, org_wide_metrics
        Whether one org-wide query served that stream (else one per entity).
    max_in_flight
        Most requests in flight at once.
    """

    requests: int = 0
    page_units: int = 0
    retries: int = 0
    throttled: int = 0
    splits: int = 0
    pack: int = 1
    duplicates_dropped: int = 0
    rows: int = 0
    seconds: float = 0.0
    org_wide_snapshots: bool = False
    org_wide_metrics: bool = False
    max_in_flight: int = 0

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.requests} requests ({self.page_units} pages, pack {self.pack}, "
            f"{self.retries} retries, {self.splits} splits), {self.rows} rows "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class OrgTotals:
    """Prismatic's own totals for the whole organisation, to check the reports against.

    ``daily`` holds ``orgDailyUsageMetrics`` (executions, steps and MB-seconds
    per ``snapshotDate``), ``hourly`` the hourly ``orgTotalUsageMetrics``
    snapshots (``deployedInstanceCount``). ``refused`` is the API's message
    when the token may not read them (both tables are then empty).

    Attributes
    ----------
    daily
        Arrow table of the org's daily totals.
    hourly
        Arrow table of the org's hourly snapshots.
    refused
        Why the API refused them, or ``None``.
    """

    daily: pa.Table = field(default_factory=ORG_DAILY_SCHEMA.empty_table)
    hourly: pa.Table = field(default_factory=ORG_HOURLY_SCHEMA.empty_table)
    refused: str | None = None


@dataclass(frozen=True)
class UsageRecords:
    """Everything fetched for one date range, as raw typed tables.

    Attributes
    ----------
    start, end
        Inclusive calendar days in ``tz``.
    tz
        IANA zone whose midnights bound the days.
    customers, instances, snapshots, daily_metrics
        Arrow tables of non-system customers, instances, hourly snapshots and
        daily metrics (schemas in :mod:`prismatic_usage.records`; the snapshots'
        ``customer_id`` is dictionary-encoded, and the pipelines take plain text too).
    stats
        What the fetch cost (:class:`FetchStats`).
    fetched_at
        When the fetch (or the store's sync) started; frames judge finality against it.
    org_totals
        The org totals for the range, when asked for (``org_totals=True``).
    """

    start: dt.date
    end: dt.date
    tz: str
    customers: pa.Table = field(default_factory=CUSTOMER_SCHEMA.empty_table)
    instances: pa.Table = field(default_factory=INSTANCE_SCHEMA.empty_table)
    snapshots: pa.Table = field(default_factory=SNAPSHOT_SCHEMA.empty_table)
    daily_metrics: pa.Table = field(default_factory=DAILY_METRIC_SCHEMA.empty_table)
    stats: FetchStats = field(default_factory=FetchStats)
    #: When the fetch (or the store's sync) started; frames judge finality against it.
    fetched_at: dt.datetime | None = None
    #: The org totals for the range, when they were asked for (``org_totals=True``).
    org_totals: OrgTotals | None = None

    def with_fetched_at(self, moment: dt.datetime) -> UsageRecords:
        """The same records, marked as fetched at another moment.

        Parameters
        ----------
        moment
            Timezone-aware time the fetch started.
        """
        return dataclasses.replace(self, fetched_at=moment)

    def with_stats(self, stats: FetchStats) -> UsageRecords:
        """The same records with other fetch statistics.

        Parameters
        ----------
        stats
            The statistics to carry, e.g. of the sync that stored the records.
        """
        return dataclasses.replace(self, stats=stats)

    @property
    def row_count(self) -> int:
        tables = (self.customers, self.instances, self.snapshots, self.daily_metrics)
        return sum(int(table.num_rows) for table in tables)
