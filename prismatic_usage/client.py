"""The fetcher: raw usage records for a date range, from a plan of packed page units.

The work is a queue of *page units* (stream, customer/instance, offset). Worker
tasks, as many as the concurrency allows, wait for their turn at the shared
:class:`~prismatic_usage.pacing.RequestGate`, then take up to K ready units and
send them as one packed operation (see :mod:`prismatic_usage.queries`). The
first page of every stream tells its ``totalCount``; its remaining pages are
planned by ``offset`` straight away and join the queue, so nothing waits on a
cursor chain. Packing adapts: a request refused as a whole is split (K halves
for the rest of the run); an error inside one alias belongs to that unit alone.

The hourly snapshots and daily metrics are first asked for org-wide (one
stream each); if the server refuses that (current Prismatic answers
``Missing required argument 'instance'`` for daily metrics), the stream falls
back to one query per customer / instance once the lists are known.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
import time
import zoneinfo
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import queries
from .config import (
    Connection,
    FetchOptions,
    resolve_connection,
    validate_date_range,
    validate_timezone,
)
from .errors import MalformedResponseError, PaginationError, QueryError
from .pacing import RequestGate
from .progress import ProgressArg, progress_reporter
from .queries import Stream
from .records import (
    CUSTOMER_SCHEMA,
    DAILY_METRIC_SCHEMA,
    INSTANCE_SCHEMA,
    SNAPSHOT_SCHEMA,
    FetchStats,
    TableBuilder,
    UsageRecords,
)
from .session import Answer, ApiSession, RequestTooLarge
from .sync import run_sync

__all__ = ["FetchProgress", "fetch_usage", "fetch_usage_async", "snapshot_time_bounds"]

log = logging.getLogger(__name__)

_MAX_REQUEUES = 3


@dataclass(frozen=True)
class FetchProgress:
    """A progress report, sent after every request (rows as received, system records included)."""

    entities_done: int
    entities_total: int
    requests: int
    rows: int


ProgressCallback = Callable[[FetchProgress], None]


@dataclass(frozen=True)
class PageUnit:
    """One page of one stream: what a single alias in a packed request fetches."""

    stream: Stream
    entity: str | None
    offset: int
    first: int

    @property
    def is_probe(self) -> bool:
        """The first page of an org-wide stream, which the server may refuse.

        Probes travel alone: a refused non-null root field nulls the whole
        answer, and its siblings would have to be fetched again.
        """
        return self.stream.name in _PROBED and self.offset == 0

    def describe(self) -> str:
        scope = f" of {self.stream.entity_arg} {self.entity}" if self.entity else ""
        return f"{self.stream.name}{scope} (offset {self.offset})"


_PROBED = frozenset({queries.SNAPSHOTS_ORG_WIDE.name, queries.METRICS_ORG_WIDE.name})


@dataclass(frozen=True)
class _Claim:
    """What a worker reserved before waiting for its turn."""

    probe: bool
    count: int
    limit: int
    trial: bool


@dataclass
class _StreamState:
    """Paging state of one (stream, entity): the one place that decides when it is done."""

    total: int | None = None
    planned_until: int = 0
    outstanding: int = 0
    received: int = 0

    @property
    def done(self) -> bool:
        return self.total is not None and self.outstanding == 0


def snapshot_time_bounds(start: dt.date, end: dt.date, tz: str) -> tuple[str, str]:
    """Inclusive ``snapshotTime`` bounds covering whole days ``start``..``end`` in ``tz``.

    The upper bound is the last microsecond of ``end`` (the original script used
    ``end 00:00``, dropping almost the whole last day). Both are sent as UTC.
    """
    zone = zoneinfo.ZoneInfo(tz)
    low = dt.datetime.combine(start, dt.time(0), tzinfo=zone)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    high -= dt.timedelta(microseconds=1)
    return (
        low.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        high.astimezone(dt.UTC).isoformat(timespec="microseconds"),
    )


def _cursor_offset(cursor: object) -> int | None:
    """The position in a graphene ``arrayconnection:N`` cursor; None if opaque."""
    if not isinstance(cursor, str):
        return None
    try:
        text = base64.b64decode(cursor, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "arrayconnection" or not number.isdigit():
        return None
    return int(number)


def _field(node: Mapping[str, Any], *path: str, where: str) -> Any:
    """``node[path[0]][path[1]]...``, or an error naming the missing field."""
    value: Any = node
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            raise MalformedResponseError(f"{where}: field {'.'.join(path)!r} is missing")
        value = value[name]
    return value


# How each stream's nodes become record columns: (record column, node field path).
_COLUMNS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    queries.CUSTOMERS.name: (
        ("id", ("id",)),
        ("name", ("name",)),
        ("external_id", ("externalId",)),
    ),
    queries.INSTANCES.name: (
        ("id", ("id",)),
        ("name", ("name",)),
        ("customer_id", ("customer", "id")),
        ("integration_name", ("integration", "name")),
    ),
    queries.SNAPSHOTS.name: (
        ("id", ("id",)),
        ("snapshot_time", ("snapshotTime",)),
        ("deployed_instance_count", ("deployedInstanceCount",)),
        ("deployed_unique_integration_count", ("deployedUniqueIntegrationCount",)),
    ),
    queries.METRICS.name: (
        ("id", ("id",)),
        ("snapshot_date", ("snapshotDate",)),
        ("successful_execution_count", ("successfulExecutionCount",)),
        ("failed_execution_count", ("failedExecutionCount",)),
        ("step_count", ("stepCount",)),
        ("spend_mb_secs", ("spendMbSecs",)),
    ),
}
_COLUMNS[queries.SNAPSHOTS_ORG_WIDE.name] = (
    *_COLUMNS[queries.SNAPSHOTS.name],
    ("customer_id", ("customer", "id")),
)
_COLUMNS[queries.METRICS_ORG_WIDE.name] = (
    *_COLUMNS[queries.METRICS.name],
    ("instance_id", ("instance", "id")),
)
# Per-entity streams take the owner's ID from the unit, not from the node.
_ENTITY_COLUMN = {queries.SNAPSHOTS.name: "customer_id", queries.METRICS.name: "instance_id"}


def _node_columns(unit: PageUnit, nodes: Sequence[Any]) -> dict[str, list[Any]]:
    """Turn one page of nodes into record columns, naming any missing field."""
    where = unit.describe()
    columns: dict[str, list[Any]] = {}
    for column, path in _COLUMNS[unit.stream.name]:
        try:
            if len(path) == 1:
                (key,) = path
                columns[column] = [node[key] for node in nodes]
            else:
                outer, inner = path
                columns[column] = [
                    None if node[outer] is None else node[outer][inner] for node in nodes
                ]
        except (KeyError, TypeError):
            for node in nodes:
                if not isinstance(node, Mapping):
                    raise MalformedResponseError(f"{where}: a node is not an object") from None
                _field(node, *path, where=where)
            raise
    entity_column = _ENTITY_COLUMN.get(unit.stream.name)
    if entity_column:
        columns[entity_column] = [unit.entity] * len(nodes)
    return columns


class _Fetch:
    """The state of one fetch: the unit queue, the streams' paging state, the records."""

    def __init__(
        self,
        session: ApiSession,
        gate: RequestGate,
        options: FetchOptions,
        *,
        time_bounds: tuple[str, str],
        date_bounds: tuple[str, str],
        progress: Callable[[FetchProgress], None] | None,
    ) -> None:
        self._session = session
        self._gate = gate
        self._options = options
        self._range_variables = {
            "timeGte": time_bounds[0],
            "timeLte": time_bounds[1],
            "dateGte": date_bounds[0],
            "dateLte": date_bounds[1],
        }
        self._progress = progress
        self.pack = options.pack
        self._proven_pack = 1
        self._trial_in_flight = False
        self._claimed = 0
        self.splits = 0
        self.units_sent = 0
        self._ready: deque[PageUnit] = deque()
        self._probes: deque[PageUnit] = deque()
        self._claimed_probes = 0
        self._requeues: dict[PageUnit, int] = {}
        self._states: dict[tuple[str, str | None], _StreamState] = {}
        self._busy = 0
        self._wake = asyncio.Condition()
        self.builders = {
            "customers": TableBuilder(CUSTOMER_SCHEMA),
            "instances": TableBuilder(INSTANCE_SCHEMA),
            "snapshots": TableBuilder(SNAPSHOT_SCHEMA),
            "metrics": TableBuilder(DAILY_METRIC_SCHEMA),
        }
        # Whether each metrics stream runs org-wide (True), per entity (False),
        # or per entity once its list is complete (None: waiting for the list).
        self.org_wide = {"snapshots": options.org_wide, "metrics": options.org_wide}
        self._waiting_for_list: dict[str, Stream] = {}
        self._list_entity_ids: dict[str, list[str]] = {
            queries.CUSTOMERS.name: [],
            queries.INSTANCES.name: [],
        }
        self._entities_total = 0
        self._entities_done = 0

    # -- planning ---------------------------------------------------------------

    def start(self) -> None:
        self._plan_first_page(queries.CUSTOMERS, None)
        self._plan_first_page(queries.INSTANCES, None)
        for kind, org_stream, entity_stream in (
            ("snapshots", queries.SNAPSHOTS_ORG_WIDE, queries.SNAPSHOTS),
            ("metrics", queries.METRICS_ORG_WIDE, queries.METRICS),
        ):
            if self.org_wide[kind]:
                self._plan_first_page(org_stream, None)
            else:
                self._waiting_for_list[kind] = entity_stream

    def _plan_first_page(self, stream: Stream, entity: str | None) -> None:
        state = self._states.setdefault((stream.name, entity), _StreamState())
        state.outstanding += 1
        state.planned_until = self._options.page_size
        self._entities_total += 1
        self._enqueue(PageUnit(stream, entity, 0, self._options.page_size))

    def _plan_pages_until(self, unit: PageUnit, state: _StreamState, total: int) -> None:
        size = self._options.page_size
        for offset in range(state.planned_until, total, size):
            state.outstanding += 1
            self._enqueue(PageUnit(unit.stream, unit.entity, offset, size))
        state.planned_until = max(state.planned_until, total)

    # -- the workers ------------------------------------------------------------

    async def run(self) -> None:
        self.start()
        async with asyncio.TaskGroup() as group:
            for _ in range(self._options.concurrency):
                group.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            async with self._wake:
                await self._wake.wait_for(self._may_claim)
                if self._finished():
                    self._wake.notify_all()
                    return
                claim = self._claim()
                self._busy += 1
            try:
                # Take the units only once the pace lets this request start, so
                # that everything that became ready meanwhile rides along.
                await self._gate.wait_turn()
                batch = self._take_batch(claim)
                if batch:
                    await self._send(batch, trial=claim.trial)
            finally:
                async with self._wake:
                    self._busy -= 1
                    if claim.trial:
                        self._trial_in_flight = False
                    self._wake.notify_all()

    def _finished(self) -> bool:
        return not self._ready and not self._probes and self._busy == 0

    def _may_claim(self) -> bool:
        if self._finished() or len(self._probes) > self._claimed_probes:
            return True
        return len(self._ready) > self._claimed and not self._trial_in_flight

    def _claim(self) -> _Claim:
        """Reserve work for one request: a probe, or up to a pack of ready units.

        Packs no larger than one that already succeeded go freely; a larger one
        is a trial, sent while the others wait, so that a server with a lower
        limit refuses one request rather than one per worker. Probes never wait.
        """
        if len(self._probes) > self._claimed_probes:
            self._claimed_probes += 1
            return _Claim(probe=True, count=1, limit=1, trial=False)
        unclaimed = len(self._ready) - self._claimed
        trial = unclaimed > self._proven_pack and self.pack > self._proven_pack
        limit = self.pack if trial else self._proven_pack
        count = min(limit, unclaimed)
        self._trial_in_flight = trial
        self._claimed += count
        return _Claim(probe=False, count=count, limit=limit, trial=trial)

    def _take_batch(self, claim: _Claim) -> list[PageUnit]:
        """The units for a claim: its probe, or up to ``limit`` unreserved ready units."""
        if claim.probe:
            self._claimed_probes -= 1
            return [self._probes.popleft()] if self._probes else []
        self._claimed -= claim.count
        size = min(claim.limit, self.pack, len(self._ready) - self._claimed)
        return [self._ready.popleft() for _ in range(max(0, size))]

    def _enqueue(self, unit: PageUnit) -> None:
        """Queue a unit; pages that unlock more planning jump the queue.

        List pages (the per-entity streams wait for the whole list) and first
        pages (they reveal a stream's totalCount) go to the front, so planning
        never stalls behind hundreds of ordinary pages.
        """
        if unit.is_probe:
            self._probes.append(unit)
        elif unit.offset == 0 or unit.stream in (queries.CUSTOMERS, queries.INSTANCES):
            self._ready.appendleft(unit)
        else:
            self._ready.append(unit)

    async def _send(self, batch: list[PageUnit], *, trial: bool = False) -> None:
        order = {stream.name: i for i, stream in enumerate(queries.STREAMS)}
        batch.sort(key=lambda unit: order[unit.stream.name])
        document = queries.packed_document(tuple(unit.stream for unit in batch))
        variables: dict[str, Any] = {}
        for slot, unit in enumerate(batch):
            variables[f"f{slot}"] = unit.first
            variables[f"o{slot}"] = unit.offset
            if unit.stream.entity_arg:
                variables[f"e{slot}"] = unit.entity
            for _, name in unit.stream.range_args:
                variables[name] = self._range_variables[name]
        request = document.with_variables(variables)
        what = batch[0].describe() if len(batch) == 1 else f"{len(batch)} packed pages"
        self.units_sent += len(batch)
        try:
            answer = await self._session.send(
                request, what=what, splittable=len(batch) > 1, turn_taken=True
            )
            if self._absorb(batch, answer) and trial:
                self._proven_pack = max(self._proven_pack, len(batch))
        except RequestTooLarge as exc:
            self._split(batch, str(exc))
        self._report_progress()

    def _split(self, batch: list[PageUnit], reason: str) -> None:
        """Put a refused pack back, and pack fewer units per request from now on."""
        self.splits += 1
        self.pack = max(1, self._proven_pack, min(self.pack, len(batch) // 2))
        log.info(
            "server refused %d packed pages (%s); packing %d from now on",
            len(batch),
            reason,
            self.pack,
        )
        self._ready.extendleft(reversed(batch))

    # -- absorbing answers --------------------------------------------------------

    def _absorb(self, batch: list[PageUnit], answer: Answer) -> bool:
        """File each unit's page, error or retry; False if the pack was refused whole."""
        aliases = {queries.alias(slot): unit for slot, unit in enumerate(batch)}
        unit_errors: dict[str, list[Mapping[str, Any]]] = {}
        whole_errors: list[Mapping[str, Any]] = []
        for error in answer.errors:
            path = error.get("path") if isinstance(error, Mapping) else None
            key = path[0] if isinstance(path, list) and path else None
            if key in aliases:
                unit_errors.setdefault(str(key), []).append(error)
            else:
                whole_errors.append(error if isinstance(error, Mapping) else {"message": error})
        if whole_errors and len(batch) > 1:
            self._split(batch, _messages(whole_errors))
            return False
        if whole_errors:
            # A lone unit owns every error of its request, with or without a path.
            unit_errors.setdefault(queries.alias(0), []).extend(whole_errors)
        data = answer.data or {}
        for name, unit in aliases.items():
            if name in unit_errors:
                self._unit_failed(unit, unit_errors[name])
            elif data.get(name) is None:
                # Nulled because a sibling's non-null field failed: not fetched yet.
                self._requeue(unit)
            else:
                self._page_arrived(unit, data[name])
        return True

    def _requeue(self, unit: PageUnit) -> None:
        count = self._requeues.get(unit, 0) + 1
        if count > _MAX_REQUEUES:
            raise MalformedResponseError(f"{unit.describe()}: the API keeps answering null")
        self._requeues[unit] = count
        self._enqueue(unit)

    def _unit_failed(self, unit: PageUnit, errors: list[Mapping[str, Any]]) -> None:
        message = _messages(errors)
        kind = {
            queries.SNAPSHOTS_ORG_WIDE.name: "snapshots",
            queries.METRICS_ORG_WIDE.name: "metrics",
        }.get(unit.stream.name)
        if kind is not None and unit.offset == 0:
            # The org-wide probe was refused: fall back to one stream per entity.
            log.info("org-wide %s refused (%s); querying per entity", unit.stream.name, message)
            state = self._states[(unit.stream.name, None)]
            state.outstanding = 0
            state.total = 0
            self._entities_done += 1
            self.org_wide[kind] = False
            entity_stream = queries.SNAPSHOTS if kind == "snapshots" else queries.METRICS
            self._waiting_for_list[kind] = entity_stream
            self._plan_waiting_streams()
            return
        raise QueryError(
            f"the API refused {unit.describe()}: {message}",
            errors=errors,
            context=unit.describe(),
        )

    def _page_arrived(self, unit: PageUnit, connection: Any) -> None:
        where = unit.describe()
        if not isinstance(connection, Mapping):
            raise MalformedResponseError(f"{where}: the connection is not an object")
        total = _field(connection, "totalCount", where=where)
        nodes = _field(connection, "nodes", where=where)
        if type(total) is not int or total < 0:
            raise MalformedResponseError(f"{where}: field 'totalCount' is not a count: {total!r}")
        if not isinstance(nodes, list):
            raise MalformedResponseError(f"{where}: field 'nodes' is not a list")
        state = self._states[(unit.stream.name, unit.entity)]
        if state.total is not None and total < state.total:
            raise PaginationError(
                f"{where}: totalCount fell from {state.total} to {total} during the fetch "
                "(records deleted mid-run?); run again"
            )
        expected = max(0, min(unit.first, total - unit.offset))
        if len(nodes) != expected:
            raise PaginationError(
                f"{where}: the page holds {len(nodes)} nodes but totalCount {total} "
                f"promises {expected}; the server's paging is inconsistent"
            )
        has_next = _field(connection, "pageInfo", "hasNextPage", where=where)
        if has_next is not (unit.offset + len(nodes) < total):
            raise PaginationError(
                f"{where}: hasNextPage is {has_next} but totalCount {total} says "
                f"{'more' if unit.offset + len(nodes) < total else 'no more'} pages follow; "
                "the server's paging is inconsistent"
            )
        start_cursor = _field(connection, "pageInfo", "startCursor", where=where) if nodes else None
        position = _cursor_offset(start_cursor)
        if position is not None and position != unit.offset:
            raise PaginationError(
                f"{where}: the server answered from position {position}, not {unit.offset}; "
                "it does not honour 'offset'"
            )
        state.total = total
        state.outstanding -= 1
        state.received += len(nodes)
        self._plan_pages_until(unit, state, total)
        builder = self.builders[_BUILDER[unit.stream.name]]
        columns = _node_columns(unit, nodes)
        builder.append_columns(columns)
        if unit.stream.name in self._list_entity_ids:
            self._list_entity_ids[unit.stream.name].extend(columns["id"])
        if state.done:
            self._entities_done += 1
            if unit.stream in (queries.CUSTOMERS, queries.INSTANCES):
                self._plan_waiting_streams()

    def _list_ids(self, kind: str) -> list[str] | None:
        """IDs from a finished customers/instances list; None while it is unfinished."""
        stream = queries.CUSTOMERS if kind == "snapshots" else queries.INSTANCES
        state = self._states.get((stream.name, None))
        if state is None or not state.done:
            return None
        return list(dict.fromkeys(self._list_entity_ids[stream.name]))

    def _plan_waiting_streams(self) -> None:
        for kind, stream in list(self._waiting_for_list.items()):
            ids = self._list_ids(kind)
            if ids is None:
                continue
            del self._waiting_for_list[kind]
            for entity in ids:
                self._plan_first_page(stream, entity)

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(
                FetchProgress(
                    entities_done=self._entities_done,
                    entities_total=self._entities_total,
                    requests=self._session.counters.requests,
                    rows=sum(len(b) for b in self.builders.values()),
                )
            )

    def check_complete(self) -> None:
        """Every planned stream finished; anything else is a bug worth a loud error."""
        unfinished = [key for key, state in self._states.items() if not state.done]
        if unfinished or self._waiting_for_list:
            raise PaginationError(f"fetch ended with unfinished streams: {unfinished[:3]}")


_BUILDER = {
    queries.CUSTOMERS.name: "customers",
    queries.INSTANCES.name: "instances",
    queries.SNAPSHOTS.name: "snapshots",
    queries.SNAPSHOTS_ORG_WIDE.name: "snapshots",
    queries.METRICS.name: "metrics",
    queries.METRICS_ORG_WIDE.name: "metrics",
}


def _messages(errors: Sequence[Mapping[str, Any]]) -> str:
    texts = [str(error.get("message", error)) for error in errors]
    return "; ".join(dict.fromkeys(texts)) or "unknown error"


def _dedupe(table: pa.Table, what: str) -> tuple[pa.Table, int]:
    """Drop rows whose node ID was already seen (positional pages can shift)."""
    if table.num_rows == pc.count_distinct(table.column("id")).as_py():
        return table, 0
    indices = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    first = indices.group_by("id", use_threads=False).aggregate([("_row", "min")])
    keep = pc.sort_indices(first.column("_row_min"))
    rows = pc.take(first.column("_row_min"), keep)
    deduped = table.take(rows)
    dropped = table.num_rows - deduped.num_rows
    log.warning("dropped %d duplicate %s (the same node ID on two pages)", dropped, what)
    return deduped, dropped


def _only_known(table: pa.Table, column: str, known: pa.Array) -> pa.Table:
    return table.filter(pc.is_in(table.column(column), value_set=known))


def _coerce_date(value: dt.date | str, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        from .errors import ConfigurationError

        raise ConfigurationError(
            f"{name} {value!r} is not a date; use the ISO form YYYY-MM-DD, e.g. 2025-02-13"
        ) from None


async def fetch_usage_async(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    progress: ProgressArg = True,
) -> UsageRecords:
    """Fetch customers, instances, hourly snapshots and daily metrics for a date range.

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``). Snapshots are
        those from ``start 00:00`` to the last microsecond of ``end`` in ``tz``;
        daily metrics those whose ``snapshotDate`` lies in the range.
    url, token
        Stack URL and API token; default to ``PRISMATIC_URL`` (else
        ``https://app.prismatic.io``) and ``PRISMATIC_API_KEY`` (else
        ``PRISM_ACCESS_TOKEN``). Ignored when ``connection`` is given.
    tz
        IANA zone whose midnights bound the days (the frames must use the same).
    options
        Tuning knobs (:class:`FetchOptions`): concurrency, pace, page size, packing.
    progress
        ``True`` (default) shows a tqdm bar when stderr is a terminal or in
        Jupyter; ``False`` shows none; a callable receives a
        :class:`FetchProgress` after every request instead.

    Returns
    -------
    UsageRecords
        Non-system customers and instances, their snapshots and daily metrics,
        and the fetch statistics.

    Raises
    ------
    AuthenticationError, ConfigurationError, QueryError, PaginationError,
    MalformedResponseError, RetriesExhaustedError
    """
    start_day = _coerce_date(start, "start date")
    end_day = _coerce_date(end, "end date")
    validate_date_range(start_day, end_day)
    validate_timezone(tz)
    conn = connection or resolve_connection(url, token)
    opts = options or FetchOptions()
    began = time.monotonic()
    gate = RequestGate(concurrency=opts.concurrency, rate=opts.requests_per_second)
    with progress_reporter(progress) as report_progress:
        records = await _fetch_records(
            conn, opts, gate, start_day, end_day, tz, report_progress, began
        )
    log.info("fetched %s to %s: %s", start_day, end_day, records.stats.summary())
    return records


async def _fetch_records(
    conn: Connection,
    opts: FetchOptions,
    gate: RequestGate,
    start_day: dt.date,
    end_day: dt.date,
    tz: str,
    progress: Callable[[FetchProgress], None] | None,
    began: float,
) -> UsageRecords:
    async with ApiSession(conn, opts, gate) as session:
        fetch = _Fetch(
            session,
            gate,
            opts,
            time_bounds=snapshot_time_bounds(start_day, end_day, tz),
            date_bounds=(start_day.isoformat(), end_day.isoformat()),
            progress=progress,
        )
        try:
            await fetch.run()
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        fetch.check_complete()
    customers, dup_c = _dedupe(fetch.builders["customers"].finish(), "customers")
    instances, dup_i = _dedupe(fetch.builders["instances"].finish(), "instances")
    snapshots, dup_s = _dedupe(fetch.builders["snapshots"].finish(), "snapshots")
    metrics, dup_m = _dedupe(fetch.builders["metrics"].finish(), "daily metrics")
    # Org-wide streams include system customers' and instances' records.
    snapshots = _only_known(snapshots, "customer_id", customers.column("id").combine_chunks())
    metrics = _only_known(metrics, "instance_id", instances.column("id").combine_chunks())
    counters = session.counters
    stats = FetchStats(
        requests=counters.requests,
        page_units=fetch.units_sent,
        retries=counters.retries,
        throttled=counters.throttled,
        splits=fetch.splits,
        pack=fetch.pack,
        duplicates_dropped=dup_c + dup_i + dup_s + dup_m,
        rows=customers.num_rows + instances.num_rows + snapshots.num_rows + metrics.num_rows,
        seconds=time.monotonic() - began,
        org_wide_snapshots=bool(fetch.org_wide["snapshots"]),
        org_wide_metrics=bool(fetch.org_wide["metrics"]),
        max_in_flight=gate.max_in_flight,
    )
    return UsageRecords(
        start=start_day,
        end=end_day,
        tz=tz,
        customers=customers,
        instances=instances,
        snapshots=snapshots,
        daily_metrics=metrics,
        stats=stats,
    )


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error inside a TaskGroup's exception group."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def fetch_usage(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    progress: ProgressArg = True,
) -> UsageRecords:
    """Synchronous :func:`fetch_usage_async`; also works inside Jupyter's running loop."""
    return run_sync(
        fetch_usage_async(
            start,
            end,
            url=url,
            token=token,
            connection=connection,
            tz=tz,
            options=options,
            progress=progress,
        )
    )
