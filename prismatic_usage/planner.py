"""The plan of page units, and what each answered page means for it.

The work is a queue of *page units* (stream, customer/instance, window, offset;
:mod:`prismatic_usage.unit_queue`) that workers send packed under one pace
(:mod:`prismatic_usage.dispatch`). The first page of every stream tells its
``totalCount``; its remaining pages are planned by ``offset``, a
bounded window ahead (:mod:`prismatic_usage.paging`), so nothing waits on a
cursor chain. Packing adapts (:mod:`prismatic_usage.packing`); an error inside
one alias belongs to that unit alone. Every finished stream goes to the sink,
checked complete; only whole finished streams do, so a stream read again from
the start (its pages contradicted each other: the org changed mid-read) has
handed nothing on. An org-wide stream that keeps contradicting itself falls
back to one stream per customer / instance for its window.

What to fetch comes from a :class:`~prismatic_usage.plan.FetchPlan`: hourly
snapshots and daily metrics are first asked for org-wide (the first window is
a probe); if the server refuses that (current Prismatic answers ``Missing
required argument 'instance'`` for daily metrics), the stream falls back to one
query per customer / instance once the lists are known. Org totals, when
wanted, travel alone and a refusal only disables the reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from . import _prewarm, queries
from ._distinct import distinct_count
from .config import FetchOptions
from .dispatch import Dispatcher
from .errors import MalformedResponseError, PaginationError, QueryError
from .fanout import ENTITY_STREAMS, LIST_STREAMS, ORG_STREAMS, FanOut, Planned
from .pacing import RequestGate
from .packing import Packing
from .pages import (
    KIND_OF_STREAM,
    PageContradiction,
    checked_page,
    messages,
    node_columns,
    without_refused_integrations,
)
from .paging import MAX_RESTARTS, Paging
from .plan import FetchPlan, Window
from .queries import Stream
from .records import TableBuilder
from .session import Answer, ApiSession
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

_ORG_TOTALS = (queries.ORG_DAILY, queries.ORG_HOURLY)
_ORG_TOTAL_NAMES = frozenset(stream.name for stream in _ORG_TOTALS)

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
        executor: Executor | None = None,
    ) -> None:
        self._session = session
        self._executor = executor  # where full record chunks become Arrow (TableBuilder)
        self._gate = gate
        self._options = options
        self._plan = plan
        self._sink = sink
        self._progress = progress
        # Called after every absorbed answer: a store makes the streams it finished durable.
        self._on_answer = on_answer
        self._packing = Packing.for_options(options)
        self._queue = UnitQueue(self._packing)
        self.duplicates_dropped = 0
        self.rows_received = 0
        #: The API's message if it refused the org totals (reconciliation only).
        self.org_totals_refused: str | None = None
        self._requeues: dict[PageUnit, int] = {}
        # Every page of the org totals travels alone: a refusal would null a packed answer.
        self._paging = Paging(self._queue, options, alone=frozenset(_ORG_TOTALS))
        self._states: dict[StreamKey, StreamState] = self._paging.states
        self._dispatch = Dispatcher(
            session, gate, options, self._queue, absorb=self._absorb, answered=self._answered
        )
        # Which usage streams run org-wide, and which per entity once their list is done.
        self._fanout = FanOut(plan, org_wide=options.org_wide)
        #: Whether each usage kind runs org-wide; a refused probe turns it off.
        self.org_wide = self._fanout.org_wide
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
        self._plan_streams(self._fanout.start())

    def _plan_streams(self, planned: list[Planned]) -> None:
        for stream, entity, window, probe in planned:
            self._plan_first_page(stream, entity, window, probe=probe)

    def _plan_first_page(
        self, stream: Stream, entity: str | None, window: Window | None, *, probe: bool = False
    ) -> None:
        if (stream.name, entity, window) in self._states:
            return  # already planned (a fallback may name a stream planned otherwise)
        self._entities_total += 1
        self._paging.first_page(stream, entity, window, probe=probe)

    @property
    def pending_units(self) -> int:
        """Page units planned and waiting for a request (bounded: pages are planned lazily)."""
        return self._queue.pending

    @property
    def restarts(self) -> int:
        """How many times a stream was read again from the start."""
        return self._paging.restarts

    def _org_probe_answered(self, kind: str, *, accepted: bool) -> None:
        """Plan what follows the org-wide probe of ``kind``: more windows, or the fallback."""
        self._plan_streams(self._fanout.probe_answered(kind, accepted=accepted))
        self._plan_waiting_streams()

    # -- the workers ------------------------------------------------------------

    async def run(self, *, lists_only: bool = False) -> None:
        """Fetch everything (or only the customer and instance lists)."""
        self.start(lists_only=lists_only)
        self._report_progress()  # the bar shows before the first answer
        _prewarm.start()  # pandas, which the first answer needs (pyarrow): during the round trip
        await self._dispatch.run()

    @property
    def pack(self) -> int:
        """The current node budget of a request, in pages."""
        return self._packing.pack

    @property
    def splits(self) -> int:
        """Packs the server refused as too large (split and sent again)."""
        return self._dispatch.splits

    @property
    def units_sent(self) -> int:
        """Page units sent, counting each unit of a pack."""
        return self._dispatch.units_sent

    def _answered(self) -> None:
        if self._on_answer is not None:
            self._on_answer()
        self._report_progress()

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
            self._dispatch.split(batch, messages(whole_errors))
            return False
        if whole_errors:
            # A lone unit owns every error of its request, with or without a path.
            unit_errors.setdefault(queries.alias(0), []).extend(whole_errors)
        data = answer.data or {}
        for name, errors in list(unit_errors.items()):
            # An instance whose integration alone is refused is kept (and warned about).
            others = without_refused_integrations(aliases[name].stream.name, data.get(name), errors)
            if others:
                unit_errors[name] = others
            else:
                del unit_errors[name]
        # Errors first: one that ends the run must not leave siblings requeued.
        for name, errors in unit_errors.items():
            self._unit_failed(aliases[name], errors)
        for name, unit in aliases.items():
            if name in unit_errors or not self._paging.is_current(unit):
                continue  # failed, or a page of an earlier reading of a restarted stream
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
        if not self._paging.is_current(unit):
            return  # an earlier reading of a restarted stream: nothing of it is used
        message = messages(errors)
        if unit.stream in _ORG_TOTALS:
            # Org totals only check the report: a refusal (no permission) never fails it.
            log.info("the API refused %s (%s); no reconciliation", unit.stream.name, message)
            self.org_totals_refused = message
            # Pages of the org totals still queued are never sent; their streams (this
            # unit's among them, still outstanding) end here.
            self._queue.drop(lambda queued: queued.stream in _ORG_TOTALS)
            for key, state in self._states.items():
                if key[0] in _ORG_TOTAL_NAMES and not state.done:
                    self._paging.end(key)
                    self._entities_done += 1
            return
        if unit.is_probe:
            # The org-wide probe was refused: fall back to one stream per entity.
            kind = KIND_OF_STREAM[unit.stream.name]
            log.info("org-wide %s refused (%s); querying per entity", unit.stream.name, message)
            self._paging.end(unit.key)
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
        try:
            total, nodes = checked_page(
                connection, where=where, offset=unit.offset, first=unit.first
            )
        except PageContradiction as exc:
            self._contradicted(unit, str(exc))
            return
        known = self._states[unit.key].total
        if known is not None and total != known:
            self._contradicted(unit, f"{where}: totalCount changed from {known} to {total}")
            return
        state = self._paging.arrived(unit, total)
        kind = KIND_OF_STREAM[unit.stream.name]
        if state.builder is None:
            state.builder = TableBuilder(SCHEMAS[kind], self._executor)
        columns = node_columns(unit.stream.name, unit.entity, nodes, where=where)
        state.builder.append_columns(columns)
        self.rows_received += len(nodes)
        if unit.stream.name in self._list_entity_ids:
            self._list_entity_ids[unit.stream.name].extend(columns["id"])
        if unit.is_probe and unit.stream in ORG_STREAMS.values():
            self._org_probe_answered(kind, accepted=True)
        if state.done and self._stream_finished(unit, kind, state):
            self._entities_done += 1
            if unit.stream in (queries.CUSTOMERS, queries.INSTANCES):
                self._plan_waiting_streams()

    def _stream_finished(self, unit: PageUnit, kind: str, state: StreamState) -> bool:
        """Prove a finished stream complete and hand its records to the sink.

        Every page was checked to hold exactly what totalCount promised, so a
        node seen twice means another was pushed out of view (positional pages
        shifted, or tied rows were reordered, while the stream was read): the
        stream is read again from the start instead (False), never handed on
        short or twice.
        """
        builder = state.builder or TableBuilder(SCHEMAS[kind], self._executor)
        state.builder = None
        table = builder.finish()
        distinct = distinct_count(table.column("id"))
        twice = table.num_rows - distinct
        expected = state.total or 0
        if twice or distinct < expected:
            self.duplicates_dropped += twice
            self._contradicted(
                unit,
                f"the API counted {expected} but {distinct} distinct ones arrived "
                f"({twice} came twice)",
            )
            return False
        self._sink(
            StreamResult(
                kind=kind,
                org_wide=unit.stream in ORG_STREAMS.values(),
                entity=unit.entity,
                window=unit.window,
                table=table,
            )
        )
        return True

    def _contradicted(self, unit: PageUnit, cause: str) -> None:
        """A stream's pages contradict each other: read it again, fall back, or fail.

        The org changes while a run reads it, and rows that tie on the only sort
        field may come back in another order on the next request. The stream is
        read again from the start (at most MAX_RESTARTS times; nothing of it was
        handed on yet). An org-wide window then falls back to one stream per
        customer / instance (no ties there); any other stream fails.
        """
        what = unit.describe_stream()
        kind = KIND_OF_STREAM[unit.stream.name]
        org_wide = unit.stream in ORG_STREAMS.values()
        left = self._paging.restarts_left(unit)
        if left > 0:
            log.warning(
                "%s: pages contradict each other (%s); the org changed while it was read: "
                "reading it again from the start (restart %d of %d)",
                what,
                cause,
                MAX_RESTARTS - left + 1,
                MAX_RESTARTS,
            )
            if unit.stream.name in self._list_entity_ids:
                self._list_entity_ids[unit.stream.name] = []
            probe = unit.stream in _ORG_TOTALS or (org_wide and self._fanout.probe_pending(kind))
            self._paging.restart(unit, probe=probe)
            return
        if not org_wide:
            raise PaginationError(
                f"{what}: the org changed while it was being read ({MAX_RESTARTS} restarts; "
                f"last: {cause}); run again"
            )
        log.warning(
            "%s: pages still contradict each other after %d restarts (%s); "
            "querying per %s for its days instead",
            what,
            MAX_RESTARTS,
            cause,
            ENTITY_STREAMS[kind].entity_arg,
        )
        self._paging.abandon(unit)
        self._entities_done += 1
        if self._fanout.probe_pending(kind):
            self._org_probe_answered(kind, accepted=False)  # never read: per entity throughout
        elif unit.window is not None:
            self._fanout.fall_back(kind, unit.window)
            self._plan_waiting_streams()

    def _list_ids(self, kind: str) -> list[str] | None:
        """IDs from a finished customers/instances list; None while it is unfinished."""
        state = self._states.get((LIST_STREAMS[kind].name, None, None))
        if state is None or not state.done:
            return None
        return list(dict.fromkeys(self._list_entity_ids[LIST_STREAMS[kind].name]))

    def _plan_waiting_streams(self) -> None:
        self._plan_streams(self._fanout.ready(self._list_ids))

    def _report_progress(self) -> None:
        if self._progress is None:
            return
        self._progress(
            FetchProgress(
                entities_done=self._entities_done,
                entities_total=self._entities_total,
                requests=self._session.counters.requests,
                rows=self.rows_received,
                pages_done=self._paging.pages_done,
                pages_total=self._paging.pages_total,
                phase=self._paging.phase(),
            )
        )

    def check_complete(self) -> None:
        """Every planned stream finished; anything else is a bug worth a loud error."""
        unfinished = [key for key, state in self._states.items() if not state.done]
        if unfinished or self._fanout.unfinished:
            raise PaginationError(f"fetch ended with unfinished streams: {unfinished[:3]}")
