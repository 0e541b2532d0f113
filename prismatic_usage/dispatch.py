"""The workers: claim a request's worth of page units, wait for the pace, send them packed.

Worker tasks, as many as the concurrency allows, claim units from the
:class:`~prismatic_usage.unit_queue.UnitQueue`, wait for their turn at the
shared :class:`~prismatic_usage.pacing.RequestGate`, then send the units as
one packed operation (:mod:`prismatic_usage.queries`). What an answer means is
the planner's business (``absorb``); an answer that came back whole tells the
packing its size and how long it took (the node budget grows or, if slow,
halves), and a pack the server refuses as too large is put back and packing
shrinks (:mod:`prismatic_usage.packing`). The workers end when nothing is
queued and no request is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from . import queries
from .config import FetchOptions
from .pacing import RequestGate
from .packing import Packing
from .session import Answer, ApiSession, RequestTooLarge
from .unit_queue import UnitQueue
from .units import PageUnit

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

# Slots are filled in this order, so one document serves every pack of the same mix.
_STREAM_ORDER = {stream.name: i for i, stream in enumerate(queries.STREAMS)}


class Dispatcher:
    """The worker tasks of one fetch.

    Parameters
    ----------
    absorb
        Files an answer's pages; False if it refused the pack as a whole (the
        pack is then split with :meth:`split` by it).
    answered
        Called after every answered request.
    """

    def __init__(
        self,
        session: ApiSession,
        gate: RequestGate,
        options: FetchOptions,
        queue: UnitQueue,
        *,
        absorb: Callable[[list[PageUnit], Answer], bool],
        answered: Callable[[], None],
    ) -> None:
        self._session = session
        self._gate = gate
        self._concurrency = options.concurrency
        self._queue = queue
        self._packing: Packing = queue.packing
        self._absorb = absorb
        self._answered = answered
        self._busy = 0
        self._wake = asyncio.Condition()
        self.splits = 0
        self.units_sent = 0

    async def run(self) -> None:
        """Send until nothing is queued and nothing is in flight."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
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
                    await self._send(batch)
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

    async def _send(self, batch: list[PageUnit]) -> None:
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
            if self._absorb(batch, answer):
                before = self._packing.budget_nodes
                self._packing.answered(batch, answer.seconds)
                if self._packing.budget_nodes < before:
                    log.info(
                        "answer of %d nodes took %.2f s (slow): at most %d nodes from now on",
                        sum(unit.first for unit in batch),
                        answer.seconds,
                        self._packing.budget_nodes,
                    )
        except RequestTooLarge as exc:
            self.split(batch, str(exc))
        self._answered()

    def split(self, batch: list[PageUnit], reason: str) -> None:
        """Put a refused pack back, and pack fewer units per request from now on."""
        self.splits += 1
        self._packing.refused(batch)
        log.info(
            "server refused %d packed pages (%s); at most %d nodes in %d fields from now on",
            len(batch),
            reason,
            self._packing.budget_nodes,
            self._packing.max_fields,
        )
        self._queue.put_back(batch)
