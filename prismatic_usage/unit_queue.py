"""The queue of ready page units, and how workers claim a request's worth of them.

Three first-in-first-out queues: *probes* (pages that travel alone and never
wait), *urgent* units (list pages and first pages: they unlock more planning)
and the rest. A worker claims work before it waits for its turn at the pace,
then takes the units once it may send, so that everything that became ready
meanwhile rides along. How many units one request carries is the
:class:`~prismatic_usage.packing.Packing`'s decision. No I/O.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator

from . import queries
from .packing import Packing
from .units import Claim, PageUnit

__all__ = ["UnitQueue"]


class UnitQueue:
    """Ready page units and the claims on them.

    Parameters
    ----------
    packing
        Decides how many units (and nodes) one request carries.
    """

    def __init__(self, packing: Packing) -> None:
        self.packing = packing
        self._urgent: deque[PageUnit] = deque()
        self._ready: deque[PageUnit] = deque()
        self._probes: deque[PageUnit] = deque()
        self._claimed = 0
        self._claimed_probes = 0
        self.trial_in_flight = False
        self._trial_leaps = False

    @property
    def pending(self) -> int:
        """Ready units that are not probes."""
        return len(self._urgent) + len(self._ready)

    @property
    def empty(self) -> bool:
        """Nothing queued at all."""
        return not self.pending and not self._probes

    def may_claim(self) -> bool:
        """Whether a worker can claim something now (probes never wait for a trial).

        A trial twice as large as what succeeded or more (the first packs, a
        leap) holds every other request back. While a smaller trial (a growth
        step) is in flight, only a request as large as one that succeeded may
        go (there are more units than it carries): in the paced steady state
        that is every request, so nobody waits; near the end of a fetch, or
        unpaced, a partial request waits for the trial's answer rather than go
        half empty.
        """
        if len(self._probes) > self._claimed_probes:
            return True
        unclaimed = self.pending - self._claimed
        if unclaimed <= 0 or not self.trial_in_flight:
            return unclaimed > 0
        if self._trial_leaps:
            return False  # nothing is known of the sizes between: wait for its answer
        # While a trial is out, others send full requests of a proven size; a
        # partial one waits for the trial (it would be smaller than needed).
        count, _ = self.packing.fit(self._queued(), unclaimed, trial=False)
        return count < unclaimed

    def enqueue(self, unit: PageUnit) -> None:
        """Queue a unit; pages that unlock more planning jump the queue.

        List pages (the per-entity streams wait for the whole list) and first
        pages (they reveal a stream's totalCount) go to the front, so planning
        never stalls behind hundreds of ordinary pages.
        """
        if unit.is_probe:
            self._probes.append(unit)
        elif unit.offset == 0 or unit.stream in (queries.CUSTOMERS, queries.INSTANCES):
            self._urgent.append(unit)
        else:
            self._ready.append(unit)

    def put_back(self, batch: list[PageUnit]) -> None:
        """Return a refused request's units to the front of the queue, in order."""
        self._urgent.extendleft(reversed(batch))

    def drop(self, unwanted: Callable[[PageUnit], bool]) -> None:
        """Forget queued units that are no longer wanted (never sent).

        A claim on a dropped unit simply takes fewer units (or none).
        """
        self._probes = deque(unit for unit in self._probes if not unwanted(unit))
        self._urgent = deque(unit for unit in self._urgent if not unwanted(unit))
        self._ready = deque(unit for unit in self._ready if not unwanted(unit))

    def claim(self) -> Claim:
        """Reserve work for one request: a probe, or the ready units one request can carry.

        Requests no larger than one that already succeeded go freely; a larger
        one is a trial, and only one trial is in flight at a time (meanwhile the
        others carry no more than what succeeded, or wait, see
        :meth:`may_claim`), so that a server with a lower limit refuses one
        request rather than one per worker.
        """
        if len(self._probes) > self._claimed_probes:
            self._claimed_probes += 1
            return Claim(probe=True, count=1, trial=False)
        unclaimed = self.pending - self._claimed
        count, nodes = self.packing.fit(self._queued(), unclaimed, trial=True)
        trial = self.packing.is_trial(count, nodes) and not self.trial_in_flight
        if not trial:
            count, _ = self.packing.fit(self._queued(), unclaimed, trial=False)
        if trial:
            self.trial_in_flight = True
            self._trial_leaps = self.packing.is_leap(count, nodes)
        self._claimed += count
        return Claim(probe=False, count=count, trial=trial)

    def take(self, claim: Claim) -> list[PageUnit]:
        """The units for a claim: its probe, or what one request carries of the unreserved."""
        if claim.probe:
            self._claimed_probes -= 1
            return [self._probes.popleft()] if self._probes else []
        self._claimed -= claim.count
        available = self.pending - self._claimed
        size, _ = self.packing.fit(self._queued(), available, trial=claim.trial)
        return [(self._urgent or self._ready).popleft() for _ in range(max(0, size))]

    def _queued(self) -> Iterator[PageUnit]:
        return itertools.chain(self._urgent, self._ready)
