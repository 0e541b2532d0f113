"""How many page units one request carries: a node budget that adapts, and a root-field cap.

A unit asks for ``first`` nodes: a full page for org-wide and list streams,
fewer for a per-entity window whose size is bounded in advance (an instance
has one daily-metrics row a day, a customer at most ~25 hourly snapshots).
A request takes units, in queue order, while their nodes fit the node budget
(:mod:`prismatic_usage.budget`: it grows after fast whole answers and halves
on refusals and slow answers) and their count the root-field cap, so a
request that could carry 1,000 nodes is not stopped at K units of 1 node.

A request larger than any that succeeded is a *trial*: at most one is in
flight at a time, and meanwhile the other workers send full requests no larger
than what succeeded. So a server with a lower limit refuses one request, not
one per worker, and growing the budget step by step never makes the others
wait. Only a *leap* (a trial twice what succeeded or more: the first packs) holds
the others back, as nothing is known of the sizes between. A refused request halves both limits below
its size, so a unit is split back at most a few times before it travels
alone. Pure bookkeeping: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from .budget import NodeBudget, slow_threshold
from .config import DEFAULT_PACK, FetchOptions
from .units import PageUnit

__all__ = ["MAX_ROOT_FIELDS", "Packing", "largest_pack"]

#: The most root fields (page units) one request carries, whatever their size.
MAX_ROOT_FIELDS = 100


def largest_pack(pack: int | None) -> int:
    """The most full pages one request can ever carry with this ``pack`` option.

    Parameters
    ----------
    pack
        ``FetchOptions.pack``: a fixed budget in pages, or None (adaptive, up
        to :data:`MAX_ROOT_FIELDS` pages).
    """
    return pack if pack is not None else MAX_ROOT_FIELDS


class Packing:
    """The adaptive limits of one fetch.

    Parameters
    ----------
    pack
        A fixed node budget in pages (``pack * page_size`` nodes; 1 also means
        one root field per request), or None: start at ``DEFAULT_PACK`` pages
        and adapt.
    page_size
        Nodes in a full page.
    slow_seconds
        Answers slower than this halve an adaptive budget
        (:func:`~prismatic_usage.budget.slow_threshold`).
    """

    def __init__(self, pack: int | None, page_size: int, *, slow_seconds: float) -> None:
        self._page_size = page_size
        start = (pack if pack is not None else DEFAULT_PACK) * page_size
        self.budget = NodeBudget(
            start,
            page_size,
            ceiling_nodes=MAX_ROOT_FIELDS * page_size,
            fixed=pack is not None,
            slow_seconds=slow_seconds,
        )
        self.max_fields = 1 if pack == 1 else MAX_ROOT_FIELDS
        self.proven_nodes = page_size
        self.proven_fields = 1

    @classmethod
    def for_options(cls, options: FetchOptions) -> Packing:
        """The packing of a fetch with these options.

        Parameters
        ----------
        options
            Its ``pack``, ``page_size``, ``concurrency`` and pace are used.
        """
        slow = slow_threshold(options.concurrency, options.requests_per_second)
        return cls(options.pack, options.page_size, slow_seconds=slow)

    @property
    def budget_nodes(self) -> int:
        """The node budget of the next request."""
        return self.budget.nodes

    @property
    def pack(self) -> int:
        """The node budget in pages (what ``FetchStats.pack`` reports)."""
        return max(1, self.budget.nodes // self._page_size)

    def fit(self, units: Iterable[PageUnit], available: int, *, trial: bool) -> tuple[int, int]:
        """``(units, nodes)`` of the request that the leading ``units`` make.

        Parameters
        ----------
        units
            The ready units in queue order.
        available
            How many of them are not reserved by other requests.
        trial
            Fill up to the current limits; otherwise only up to what succeeded.
        """
        budget = self.budget.nodes
        nodes_cap = budget if trial else min(budget, self.proven_nodes)
        fields_cap = self.max_fields if trial else min(self.max_fields, self.proven_fields)
        count = nodes = 0
        for unit in units:
            if count >= min(available, fields_cap) or (count and nodes + unit.first > nodes_cap):
                break
            count += 1
            nodes += unit.first
        return count, nodes

    def is_trial(self, count: int, nodes: int) -> bool:
        """Whether a request of this size is larger than any that succeeded.

        Parameters
        ----------
        count, nodes
            The request's units and summed ``first``.
        """
        return count > self.proven_fields or nodes > self.proven_nodes

    def is_leap(self, count: int, nodes: int) -> bool:
        """Whether a trial is a leap: twice what succeeded or more, in units or in nodes.

        Parameters
        ----------
        count, nodes
            The trial's units and summed ``first``.
        """
        return count >= 2 * self.proven_fields or nodes >= 2 * self.proven_nodes

    def answered(self, batch: list[PageUnit], seconds: float) -> None:
        """A request of this size came back whole after ``seconds``: it is proven.

        Parameters
        ----------
        batch
            Its units.
        seconds
            How long it took; a fast answer grows an adaptive budget, a slow one halves it.
        """
        nodes = sum(unit.first for unit in batch)
        self.proven_fields = max(self.proven_fields, len(batch))
        self.proven_nodes = max(self.proven_nodes, nodes)
        self.budget.answered(nodes, seconds)

    def refused(self, batch: list[PageUnit]) -> None:
        """A request of this size was refused as a whole: lower the limit it broke.

        More nodes than ever succeeded: the node budget is blamed and halves
        below the request (:meth:`NodeBudget.refused`); the root-field cap is
        left alone, since it never grows again and a cap cut for a node limit
        would cost a request per few small units for the rest of the run
        (measured: 930 requests instead of 791; a reviewer saw 3-field, 9-node
        requests against a 250-node cap). Proven nodes in more fields than
        ever succeeded: the root-field cap is blamed and goes halfway back to
        what succeeded. A size that succeeded before (the server changed, or
        refuses for time or load): both halve. Each branch lowers a limit
        strictly below the refused request, so a request is never sent again
        as it was refused and splitting never loops.

        Parameters
        ----------
        batch
            The refused request's units.
        """
        fields, nodes = len(batch), sum(unit.first for unit in batch)
        if nodes > self.budget.largest_answered:
            self.budget.refused(nodes)
        elif fields > self.proven_fields:
            halfway = fields - max(1, (fields - self.proven_fields + 1) // 2)
            self.max_fields = max(1, min(self.max_fields, halfway))
        else:
            self.max_fields = max(1, min(self.max_fields, fields // 2))
            self.budget.refused(nodes)
        self.proven_fields = min(self.proven_fields, self.max_fields)
        self.proven_nodes = min(self.proven_nodes, self.budget.nodes)
