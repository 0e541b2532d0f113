"""Raw records: what the fetcher returns and the pipelines consume.

Records are kept as Arrow tables with one declared schema per kind. At a million
hourly snapshots a list of dicts costs ~1 KB a record in CPython; Arrow columns
cost ~60 bytes, build in chunks while pages arrive, and hand pandas typed columns
without a per-record Python loop. Integers are int64 end to end (BigInt values
above 2**53 stay exact); timestamps are parsed once, at ingest, to UTC microseconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import MalformedResponseError

log = logging.getLogger(__name__)

__all__ = [
    "CUSTOMER_SCHEMA",
    "DAILY_METRIC_SCHEMA",
    "INSTANCE_SCHEMA",
    "ORG_DAILY_SCHEMA",
    "ORG_HOURLY_SCHEMA",
    "SNAPSHOT_SCHEMA",
    "FetchStats",
    "OrgTotals",
    "TableBuilder",
    "UsageRecords",
    "one_row_per_key",
]

UTC_MICROS = pa.timestamp("us", tz="UTC")

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
        pa.field("customer_id", pa.string(), nullable=False),
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

_INT64_MAX = 2**63 - 1
#: GraphQL's ``Int`` is a signed 32-bit integer; these fields are ``Int!`` in the schema.
GRAPHQL_INT_MAX = 2**31 - 1
_GRAPHQL_INT_FIELDS = frozenset({"deployed_instance_count", "deployed_unique_integration_count"})
# Text shown to people, not used as a key: repaired rather than refused when invalid.
_DISPLAY_TEXT_FIELDS = frozenset({"name", "external_id", "integration_name"})
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _exact_int(value: Any, *, field_name: str) -> int:
    """A BigInt/Int value as an exact Python int.

    Accepts JSON integers, decimal integer strings (BigInt may be sent as text)
    and whole floats below 2**53 (still exact); anything else names the field.
    """
    if isinstance(value, bool):
        raise MalformedResponseError(f"field {field_name!r}: expected an integer, got {value!r}")
    if isinstance(value, int):
        result = value
    elif (isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip())) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 2**53
    ):
        result = int(value)
    else:
        raise MalformedResponseError(f"field {field_name!r}: expected an integer, got {value!r}")
    if not -_INT64_MAX - 1 <= result <= _INT64_MAX:
        raise MalformedResponseError(f"field {field_name!r}: {result} does not fit in int64")
    return result


class TableBuilder:
    """Accumulates rows for one record kind and turns them into an Arrow table.

    Pages arrive as columns of plain JSON values (timestamps and dates still
    strings) and are converted to the declared schema in chunks, so memory stays
    close to the Arrow size even for millions of rows.
    """

    CHUNK_ROWS = 65_536

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._names: list[str] = list(schema.names)
        self._columns: dict[str, list[Any]] = {name: [] for name in self._names}
        self._pending = 0
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append_columns(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Add equally long columns, one per schema field."""
        lengths = {len(columns[name]) for name in self._names}
        if len(lengths) != 1:
            raise ValueError(f"columns of unequal length: {sorted(lengths)}")
        (count,) = lengths
        for name in self._names:
            self._columns[name].extend(columns[name])
        self._pending += count
        self._rows += count
        if self._pending >= self.CHUNK_ROWS:
            self._flush()

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one row given as a mapping of field name to value."""
        self.append_columns({name: [row.get(name)] for name in self._names})

    def _flush(self) -> None:
        if not self._pending:
            return
        arrays = [_to_arrow(self._columns[f.name], f) for f in self.schema]
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self._columns = {name: [] for name in self._names}
        self._pending = 0

    def finish(self) -> pa.Table:
        """The accumulated rows as one table with the declared schema."""
        self._flush()
        if not self._batches:
            return self.schema.empty_table()
        return pa.Table.from_batches(self._batches, schema=self.schema)


def _to_arrow(values: Sequence[Any], f: pa.Field) -> pa.Array:
    """Convert one column of JSON values to the field's type, naming the field on failure."""
    try:
        if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
            if not all(type(v) is str for v in values):
                bad = next(v for v in values if type(v) is not str)
                raise MalformedResponseError(
                    f"field {f.name!r}: expected an ISO string, got {bad!r}"
                )
            array = pc.cast(pa.array(values, type=pa.string()), f.type)
        elif pa.types.is_integer(f.type):
            if not all(type(v) is int for v in values):
                # BigInt may arrive as numeric strings; never let a float through.
                values = [_exact_int(v, field_name=f.name) for v in values]
            array = pa.array(values, type=f.type)
            _check_count_range(array, f.name)
        else:
            if not all(v is None or type(v) is str for v in values):
                bad = next(v for v in values if not (v is None or type(v) is str))
                raise MalformedResponseError(f"field {f.name!r}: expected a string, got {bad!r}")
            try:
                array = pa.array(values, type=f.type)
            except UnicodeEncodeError:
                array = pa.array(_valid_text(values, f.name), type=f.type)
    except UnicodeEncodeError:
        raise MalformedResponseError(
            f"field {f.name!r}: a value holds an invalid character (a lone surrogate); "
            "report this to Prismatic"
        ) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise MalformedResponseError(f"field {f.name!r}: {exc}") from exc
    if not f.nullable and array.null_count:
        raise MalformedResponseError(f"field {f.name!r}: missing value in a non-null field")
    return array


def _check_count_range(array: pa.Array, name: str) -> None:
    """Every integer field here is a count (or MB-seconds): refuse negatives and, for
    the schema's ``Int!`` fields, values beyond GraphQL's 32-bit ``Int`` range."""
    if not len(array):
        return
    low, high = pc.min_max(array).values()
    if low.as_py() is not None and low.as_py() < 0:
        raise MalformedResponseError(
            f"field {name!r}: {low.as_py()} is negative, which a count cannot be; "
            "report this to Prismatic"
        )
    if name in _GRAPHQL_INT_FIELDS and high.as_py() is not None and high.as_py() > GRAPHQL_INT_MAX:
        raise MalformedResponseError(
            f"field {name!r}: {high.as_py()} is outside GraphQL's Int range "
            f"(at most {GRAPHQL_INT_MAX}); report this to Prismatic"
        )


def _valid_text(values: Sequence[str | None], name: str) -> list[str | None]:
    """``values`` with lone surrogates (invalid in UTF-8) replaced by U+FFFD.

    A JSON string may carry ``\\ud800`` alone, which no UTF-8 file can hold. A
    name or external ID is display text, so it is repaired with a warning; an ID
    is a key, and a repaired key could merge two records, so it is refused (the
    caller turns the ``UnicodeEncodeError`` into a ``MalformedResponseError``).
    """
    if name not in _DISPLAY_TEXT_FIELDS:
        raise UnicodeEncodeError("utf-8", "", 0, 1, "surrogates not allowed")
    repaired = [
        None if v is None else v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        for v in values
    ]
    changed = sum(a != b for a, b in zip(values, repaired, strict=True))
    log.warning("field %r: replaced invalid characters in %d value(s) with U+FFFD", name, changed)
    return repaired


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
        daily metrics (schemas in :mod:`prismatic_usage.records`).
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
