"""Which pages of every stream are planned: first pages, a bounded window ahead, restarts.

The first page of a stream tells its ``totalCount``; its remaining pages are
planned by ``offset``, but only a bounded window ahead of what has arrived
(enough to keep every worker's packs full), so a server that claims a huge
count costs a few more units per answer, never memory or a blocked loop.

Prismatic is live while a run reads it: a customer created mid-run shifts
positional pages, and rows that tie on the only sort field may come back in
another order on the next request. A stream whose pages contradict each other
is read again from the start (:meth:`Paging.restart`, at most
:data:`MAX_RESTARTS` times); pages of an earlier reading are ignored when they
arrive. Pure bookkeeping over the unit queue: no I/O.

It also counts pages for progress (:attr:`Paging.pages_done` of
:attr:`Paging.pages_total`): a planned stream counts one page until its first
page's ``totalCount`` tells how many follow; a stream that ends early (refused,
abandoned) drops the pages it will not fetch, and one read again from the
start keeps the pages that arrived (they were fetched) and counts its new
first page.
"""

from __future__ import annotations

import math

from . import queries
from .config import FetchOptions
from .packing import largest_pack
from .plan import Window
from .queries import Stream
from .unit_queue import UnitQueue
from .units import PHASES, PageUnit, StreamKey, StreamState

__all__ = ["MAX_RESTARTS", "Paging"]

#: How often one stream is read again from the start before the planner gives
#: up on it (an org-wide stream then falls back to one stream per entity). Two
#: restarts outlast a customer created mid-run; a run that needs more is
#: reading an org that changes faster than it can be read.
MAX_RESTARTS = 2

#: Pages planned ahead per stream, in full packs of every worker.
_AHEAD_PACKS = 2

# The most rows a per-entity stream holds a day: one daily-metrics row per
# instance; hourly snapshots (25 on a DST day, one more if one lands on each
# midnight). Only an estimate for packing: a longer page is simply paged on.
_ROWS_PER_DAY = {queries.METRICS.name: 1, queries.SNAPSHOTS.name: 26}


class Paging:
    """The paging state of every stream of one fetch, and the pages planned for it.

    Parameters
    ----------
    queue
        Where planned units go.
    options
        Page size, concurrency and pack decide the window planned ahead.
    alone
        Streams whose every page travels alone (a refusal would null a packed answer).
    """

    def __init__(
        self, queue: UnitQueue, options: FetchOptions, *, alone: frozenset[Stream]
    ) -> None:
        self.states: dict[StreamKey, StreamState] = {}
        self._queue = queue
        self._page_size = options.page_size
        self._alone = alone
        #: Pages of one stream planned but not yet arrived, at most.
        pack = largest_pack(options.pack)
        self.ahead = max(2, options.concurrency * pack * _AHEAD_PACKS)
        #: Restarts so far, over all streams.
        self.restarts = 0
        # Pages that arrived, and pages known to be needed, per stream (all readings).
        self._arrived: dict[StreamKey, int] = {}
        self._needed: dict[StreamKey, int] = {}
        #: Pages that arrived (of every reading of a stream), for progress.
        self.pages_done = 0
        #: Pages known to be needed: those that arrived, and those still to come.
        self.pages_total = 0

    def phase(self) -> str:
        """What the fetch is doing, for progress: one of :data:`~prismatic_usage.units.PHASES`.

        The customers, then the instances, are being listed until each list is
        complete (per-entity usage waits for them); then usage is fetched.
        """
        for stream in (queries.CUSTOMERS, queries.INSTANCES):
            state = self.states.get((stream.name, None, None))
            if state is None or not state.done:
                return f"listing {stream.name}"
        return PHASES[-1]

    def _expect(self, key: StreamKey, more: int) -> None:
        """Count ``more`` pages to come for ``key``, on top of those that arrived."""
        needed = self._arrived.setdefault(key, 0) + more
        self.pages_total += needed - self._needed.get(key, 0)
        self._needed[key] = needed

    def state(self, unit: PageUnit) -> StreamState:
        """The paging state of ``unit``'s stream."""
        return self.states[unit.key]

    def is_current(self, unit: PageUnit) -> bool:
        """Whether ``unit`` belongs to its stream's current reading (else it is ignored)."""
        state = self.states.get(unit.key)
        return state is not None and state.attempt == unit.attempt

    def first_page(
        self, stream: Stream, entity: str | None, window: Window | None, *, probe: bool = False
    ) -> StreamState:
        """Plan the first page of a stream (again, after a restart); returns its state."""
        state = self.states.setdefault((stream.name, entity, window), StreamState())
        first = self._page_size
        bound = _ROWS_PER_DAY.get(stream.name)
        if bound is not None and window is not None:
            # A per-entity window's size is bounded: ask for what it can hold.
            first = min(first, bound * len(window.days()))
        state.outstanding += 1
        state.planned_until = first
        self._expect((stream.name, entity, window), 1)
        self._queue.enqueue(PageUnit(stream, entity, 0, first, window, probe, state.attempt))
        return state

    def arrived(self, unit: PageUnit, total: int) -> StreamState:
        """Count an arrived page of the current reading and plan the window ahead."""
        state = self.states[unit.key]
        state.total = total
        state.outstanding -= 1
        self._arrived[unit.key] += 1
        self.pages_done += 1
        if unit.offset == 0:  # the first page: now the stream's pages are known
            self._expect(unit.key, math.ceil(max(0, total - unit.first) / self._page_size))
        size = self._page_size
        alone = unit.stream in self._alone
        while state.planned_until < total and state.outstanding < self.ahead:
            offset = state.planned_until
            state.outstanding += 1
            self._queue.enqueue(
                PageUnit(unit.stream, unit.entity, offset, size, unit.window, alone, state.attempt)
            )
            state.planned_until = offset + size
        return state

    def restarts_left(self, unit: PageUnit) -> int:
        """How many more times ``unit``'s stream may be read from the start."""
        return MAX_RESTARTS - self.states[unit.key].attempt

    def restart(self, unit: PageUnit, *, probe: bool) -> None:
        """Read ``unit``'s stream again from the start, dropping its queued pages."""
        key = unit.key
        old = self.states[key]
        self._queue.drop(lambda queued: queued.key == key)
        self.states[key] = StreamState(attempt=old.attempt + 1)
        self.restarts += 1
        self.first_page(unit.stream, unit.entity, unit.window, probe=probe)

    def abandon(self, unit: PageUnit) -> None:
        """End ``unit``'s stream without records: other streams fetch what it held."""
        key = unit.key
        self._queue.drop(lambda queued: queued.key == key)
        state = self.states[key]
        state.attempt += 1  # its pages still in flight are ignored when they arrive
        self.end(key)

    def end(self, key: StreamKey) -> None:
        """End a stream without (more) records: refused, or replaced by other streams."""
        self.states[key].end_empty()
        self._expect(key, 0)
