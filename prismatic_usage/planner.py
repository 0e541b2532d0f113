"""The plan of page units and the workers that send them, packed, under one pace.

The work is a queue of *page units* (stream, customer/instance, window, offset;
:mod:`prismatic_usage.unit_queue`). Worker tasks, as many as the concurrency
allows, claim a request's worth of units, wait for their turn at the shared
:class:`~prismatic_usage.pacing.RequestGate`, then send them as one packed
operation (see :mod:`prismatic_usage.queries`). The first page of every stream
tells its ``totalCount``; its remaining pages are planned by ``offset`` straight
away, so nothing waits on a cursor chain. Packing adapts
(:mod:`prismatic_usage.packing`); an error inside one alias belongs to that
unit alone. Every finished stream goes to the sink, checked complete.

What to fetch comes from a :class:`~prismatic_usage.plan.FetchPlan`: hourly
snapshots and daily metrics are first asked for org-wide (the first window is
a probe); if the server refuses that (current Prismatic answers ``Missing
required argument 'instance'`` for daily metrics), the stream falls back to one
query per customer / instance once the lists are known. Org totals, when
wanted, travel alone and a refusal only disables the reconciliation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from . import queries
from .config import FetchOptions
from .errors import MalformedResponseError, PaginationError, QueryError
from .pacing import RequestGate
from .packing import Packing
from .pages import KIND_OF_STREAM, checked_page, messages, node_columns, without_duplicates
from .plan import FetchPlan, Window
from .queries import Stream
from .records import TableBuilder
from .session import Answer, ApiSession, RequestTooLarge
from .unit_queue import UnitQueue
from .units import (
    SCHEMAS,
    FetchProgress,
    PageUnit,
    ProgressCallback,
    StreamKey,
    StreamResult,
    StreamSink,
    StreamState,
)

__all__ = ["FetchProgress", "PageUnit", "Planner", "ProgressCallback", "StreamResult", "StreamSink"]

log = logging.getLogger(__name__)

# Slots are filled in this order, so one document serves every pack of the same mix.
_STREAM_ORDER = {stream.name: i for i, stream in enumerate(queries.STREAMS)}
_ORG_STREAMS = {"snapshots": queries.SNAPSHOTS_ORG_WIDE, "metrics": queries.METRICS_ORG_WIDE}
_ENTITY_STREAMS = {"snapshots": queries.SNAPSHOTS, "metrics": queries.METRICS}
_LIST_OF_KIND = {"snapshots": queries.CUSTOMERS.name, "metrics": queries.INSTANCES.name}
_ORG_TOTALS = (queries.ORG_DAILY, queries.ORG_HOURLY)
_ORG_TOTAL_NAMES = frozenset(stream.name for stream in _ORG_TOTALS)
# The most rows a per-entity stream holds a day: one daily-metrics row per
# instance; hourly snapshots (25 on a DST day, one more if one lands on each
# midnight). Only an estimate for packing: a longer page is simply paged on.
_ROWS_PER_DAY = {queries.METRICS.name: 1, queries.SNAPSHOTS.name: 26}

_MAX_REQUEUES = 3


class Planner:
    """The state of one fetch: the unit queue, the streams' paging state, the records."""

    def __init__(
        self,
        session: ApiSession,
        gate: RequestGate,
        options: FetchOptions,
        *,
        plan: FetchPlan,
        sink: StreamSink,
        progress: ProgressCallback | None,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._gate = gate
        self._options = options
        self._plan = plan
        self._sink = sink
        self._progress = progress
        # Called after every absorbed answer: a store makes the streams it finished durable.
        self._on_answer = on_answer
        self._packing = Packing(options.pack, options.page_size)
        self._queue = UnitQueue(self._packing)
        self.splits = 0
        self.units_sent = 0
        self.duplicates_dropped = 0
        self.rows_received = 0
        #: The API's message if it refused the org totals (reconciliation only).
        self.org_totals_refused: str | None = None
        self._requeues: dict[PageUnit, int] = {}
        self._states: dict[StreamKey, StreamState] = {}
        self._busy = 0
        self._wake = asyncio.Condition()
        # Whether each usage kind runs org-wide; a refused probe turns it off.
        # Org-wide windows after the first wait for the probe's answer; entity
        # streams wait in _waiting_for_list (with the days org-wide covered)
        # until their entity list is done.
        self.org_wide = {
            kind: options.org_wide and bool(plan.org_windows[kind]) for kind in _ORG_STREAMS
        }
        self._org_rest: dict[str, tuple[Window, ...]] = {}
        self._waiting_for_list: dict[str, frozenset[dt.date]] = {}
        self._list_entity_ids: dict[str, list[str]] = {
            queries.CUSTOMERS.name: [],
            queries.INSTANCES.name: [],
        }
        self._entities_total = 0
        self._entities_done = 0

    # -- planning ---------------------------------------------------------------

    def start(self, *, lists_only: bool) -> None:
        self._plan_first_page(queries.CUSTOMERS, None, None)
        self._plan_first_page(queries.INSTANCES, None, None)
        if lists_only:
            return
        if self._plan.org_totals is not None:
            # Org totals travel alone: a refused non-null root field nulls the answer.
            for stream in (queries.ORG_DAILY, queries.ORG_HOURLY):
                self._plan_first_page(stream, None, self._plan.org_totals, probe=True)
        for kind, org_stream in _ORG_STREAMS.items():
            if self.org_wide[kind]:
                probe, *rest = self._plan.org_windows[kind]
                self._org_rest[kind] = tuple(rest)
                self._plan_first_page(org_stream, None, probe, probe=True)
            else:
                self._waiting_for_list[kind] = frozenset()

    def _plan_first_page(
        self, stream: Stream, entity: str | None, window: Window | None, *, probe: bool = False
    ) -> None:
        state = self._states.setdefault((stream.name, entity, window), StreamState())
        first = self._options.page_size
        bound = _ROWS_PER_DAY.get(stream.name)
        if bound is not None and window is not None:
            # A per-entity window's size is bounded: ask for what it can hold.
            first = min(first, bound * len(window.days()))
        state.outstanding += 1
        state.planned_until = first
        self._entities_total += 1
        self._queue.enqueue(PageUnit(stream, entity, 0, first, window, probe))

    def _plan_pages_until(self, unit: PageUnit, state: StreamState, total: int) -> None:
        size = self._options.page_size
        # Every org-total page travels alone: a refusal would null a packed answer.
        alone = unit.stream in _ORG_TOTALS
        for offset in range(state.planned_until, total, size):
            state.outstanding += 1
            self._queue.enqueue(
                PageUnit(unit.stream, unit.entity, offset, size, unit.window, alone)
            )
            state.planned_until = offset + size

    def _org_probe_answered(self, kind: str, *, accepted: bool) -> None:
        """Plan what follows the org-wide probe of ``kind``: more windows, or the fallback."""
        rest = self._org_rest.pop(kind, ())
        if not accepted:
            self.org_wide[kind] = False
            self._waiting_for_list[kind] = frozenset()
        else:
            covered = set(self._plan.org_windows[kind][0].days())
            for window in rest:
                self._plan_first_page(_ORG_STREAMS[kind], None, window)
                covered.update(window.days())
            self._waiting_for_list[kind] = frozenset(covered)
        self._plan_waiting_streams()

    # -- the workers ------------------------------------------------------------

    async def run(self, *, lists_only: bool = False) -> None:
        """Fetch everything (or only the customer and instance lists)."""
        self.start(lists_only=lists_only)
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
                claim = self._queue.claim()
                self._busy += 1
            try:
                # Take the units only once the pace lets this request start, so
                # that everything that became ready meanwhile rides along.
                await self._gate.wait_turn()
                batch = self._queue.take(claim)
                if batch:
                    await self._send(batch, trial=claim.trial)
            finally:
                async with self._wake:
                    self._busy -= 1
                    if claim.trial:
                        self._queue.trial_in_flight = False
                    self._wake.notify_all()

    def _finished(self) -> bool:
        return self._queue.empty and self._busy == 0

    def _may_claim(self) -> bool:
        return self._finished() or self._queue.may_claim()

    @property
    def pack(self) -> int:
        """The current node budget of a request, in pages."""
        return self._packing.pack

    async def _send(self, batch: list[PageUnit], *, trial: bool = False) -> None:
        batch.sort(key=lambda unit: _STREAM_ORDER[unit.stream.name])
        document = queries.packed_document(tuple(unit.stream for unit in batch))
        variables: dict[str, Any] = {}
        for slot, unit in enumerate(batch):
            variables[f"f{slot}"] = unit.first
            variables[f"o{slot}"] = unit.offset
            if unit.stream.entity_arg:
                variables[f"e{slot}"] = unit.entity
            if unit.window is not None:
                window_variables = unit.window.variables()
                for _, name in unit.stream.range_args:
                    variables[f"{name}{slot}"] = window_variables[name]
        request = document.with_variables(variables)
        what = batch[0].describe() if len(batch) == 1 else f"{len(batch)} packed pages"
        self.units_sent += len(batch)
        try:
            answer = await self._session.send(
                request, what=what, splittable=len(batch) > 1, turn_taken=True
            )
            if self._absorb(batch, answer) and trial:
                self._packing.succeeded(batch)
        except RequestTooLarge as exc:
            self._split(batch, str(exc))
        if self._on_answer is not None:
            self._on_answer()
        self._report_progress()

    def _split(self, batch: list[PageUnit], reason: str) -> None:
        """Put a refused pack back, and pack fewer units per request from now on."""
        self.splits += 1
        self._packing.refused(batch)
        log.info(
            "server refused %d packed pages (%s); at most %d pages' nodes in %d fields from now on",
            len(batch),
            reason,
            self.pack,
            self._packing.max_fields,
        )
        self._queue.put_back(batch)

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
            self._split(batch, messages(whole_errors))
            return False
        if whole_errors:
            # A lone unit owns every error of its request, with or without a path.
            unit_errors.setdefault(queries.alias(0), []).extend(whole_errors)
        data = answer.data or {}
        # Errors first: one that ends the run must not leave siblings requeued.
        for name, errors in unit_errors.items():
            self._unit_failed(aliases[name], errors)
        for name, unit in aliases.items():
            if name in unit_errors:
                continue
            if data.get(name) is None:
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
        self._queue.enqueue(unit)

    def _unit_failed(self, unit: PageUnit, errors: list[Mapping[str, Any]]) -> None:
        message = messages(errors)
        if unit.stream in _ORG_TOTALS:
            # Org totals only check the report: a refusal (no permission) never fails it.
            log.info("the API refused %s (%s); no reconciliation", unit.stream.name, message)
            self.org_totals_refused = message
            # Pages of the org totals still queued are never sent; their streams (this
            # unit's among them, still outstanding) end here.
            self._queue.drop_probes(lambda queued: queued.stream in _ORG_TOTALS)
            for key, state in self._states.items():
                if key[0] in _ORG_TOTAL_NAMES and state.outstanding:
                    state.outstanding = 0
                    state.total = state.total or 0
                    state.builder = None
                    self._entities_done += 1
            return
        if unit.is_probe:
            # The org-wide probe was refused: fall back to one stream per entity.
            kind = KIND_OF_STREAM[unit.stream.name]
            log.info("org-wide %s refused (%s); querying per entity", unit.stream.name, message)
            state = self._states[unit.key]
            state.outstanding = 0
            state.total = 0
            self._entities_done += 1
            self._org_probe_answered(kind, accepted=False)
            return
        raise QueryError(
            f"the API refused {unit.describe()}: {message}",
            errors=errors,
            context=unit.describe(),
        )

    def _page_arrived(self, unit: PageUnit, connection: Any) -> None:
        if unit.stream in _ORG_TOTALS and self.org_totals_refused is not None:
            return  # another page of the org totals was refused: none of them is used
        where = unit.describe()
        total, nodes = checked_page(connection, where=where, offset=unit.offset, first=unit.first)
        state = self._states[unit.key]
        # Answers may be processed out of order: keep the largest count seen. If
        # records vanished mid-run, the stream's completeness check reports it.
        state.total = max(total, state.total or 0)
        state.outstanding -= 1
        self._plan_pages_until(unit, state, total)
        kind = KIND_OF_STREAM[unit.stream.name]
        if state.builder is None:
            state.builder = TableBuilder(SCHEMAS[kind])
        columns = node_columns(unit.stream.name, unit.entity, nodes, where=where)
        state.builder.append_columns(columns)
        self.rows_received += len(nodes)
        if unit.stream.name in self._list_entity_ids:
            self._list_entity_ids[unit.stream.name].extend(columns["id"])
        if unit.is_probe and unit.stream in _ORG_STREAMS.values():
            self._org_probe_answered(kind, accepted=True)
        if state.done:
            self._entities_done += 1
            self._stream_finished(unit, kind, state)
            if unit.stream in (queries.CUSTOMERS, queries.INSTANCES):
                self._plan_waiting_streams()

    def _stream_finished(self, unit: PageUnit, kind: str, state: StreamState) -> None:
        """Prove a finished stream complete and hand its records to the sink.

        Every page was checked to hold exactly what totalCount promised, so a
        node seen twice means another was pushed out of view (positional pages
        shifted while the fetch ran): the duplicate is dropped, and the missing
        record is an error, never a silently short report.
        """
        what = unit.stream.name if unit.entity is None else unit.describe()
        builder = state.builder or TableBuilder(SCHEMAS[kind])
        state.builder = None
        table, dropped = without_duplicates(builder.finish(), what)
        self.duplicates_dropped += dropped
        expected = state.total or 0
        if table.num_rows < expected:
            raise PaginationError(
                f"the API counted {expected} {what} but {table.num_rows} distinct ones arrived "
                f"({dropped} came twice): pages shifted while the fetch ran; run it again"
            )
        self._sink(
            StreamResult(
                kind=kind,
                org_wide=unit.stream in _ORG_STREAMS.values(),
                entity=unit.entity,
                window=unit.window,
                table=table,
            )
        )

    def _list_ids(self, kind: str) -> list[str] | None:
        """IDs from a finished customers/instances list; None while it is unfinished."""
        state = self._states.get((_LIST_OF_KIND[kind], None, None))
        if state is None or not state.done:
            return None
        return list(dict.fromkeys(self._list_entity_ids[_LIST_OF_KIND[kind]]))

    def _plan_waiting_streams(self) -> None:
        for kind, covered in list(self._waiting_for_list.items()):
            ids = self._list_ids(kind)
            if ids is None:
                continue
            del self._waiting_for_list[kind]
            for entity in ids:
                for window in self._plan.entity_windows(kind, entity, covered=covered):
                    self._plan_first_page(_ENTITY_STREAMS[kind], entity, window)

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(
                FetchProgress(
                    entities_done=self._entities_done,
                    entities_total=self._entities_total,
                    requests=self._session.counters.requests,
                    rows=self.rows_received,
                )
            )

    def check_complete(self) -> None:
        """Every planned stream finished; anything else is a bug worth a loud error."""
        unfinished = [key for key, state in self._states.items() if not state.done]
        if unfinished or self._waiting_for_list or self._org_rest:
            raise PaginationError(f"fetch ended with unfinished streams: {unfinished[:3]}")
