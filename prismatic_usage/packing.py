"""How many page units one request carries: a node budget and a root-field cap that adapt.

A unit asks for ``first`` nodes: a full page for org-wide and list streams,
fewer for a per-entity window whose size is bounded in advance (an instance
has one daily-metrics row a day, a customer at most ~25 hourly snapshots).
A request takes units, in queue order, while their nodes fit the budget
(``pack`` pages of ``page_size``) and their count the root-field cap, so a
request that could carry 1,000 nodes is not stopped at K units of 1 node.

Larger requests than any that succeeded are *trials* (the planner sends them
while the other workers wait); a refused request halves both limits below the
refused size, so a unit is split back at most a few times before it travels
alone. Pure bookkeeping: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from .units import PageUnit

__all__ = ["MAX_ROOT_FIELDS", "Packing"]

#: The most root fields (page units) one request carries, whatever their size.
MAX_ROOT_FIELDS = 100


class Packing:
    """The adaptive limits of one fetch.

    Parameters
    ----------
    pack
        The starting node budget, in pages (``pack * page_size`` nodes); 1
        also means one root field per request (no packing).
    page_size
        Nodes in a full page.
    """

    def __init__(self, pack: int, page_size: int) -> None:
        self._page_size = page_size
        self.budget_nodes = pack * page_size
        self.max_fields = MAX_ROOT_FIELDS if pack > 1 else 1
        self.proven_nodes = page_size
        self.proven_fields = 1

    @property
    def pack(self) -> int:
        """The node budget in pages (what ``FetchStats.pack`` reports)."""
        return max(1, self.budget_nodes // self._page_size)

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
        nodes_cap = self.budget_nodes if trial else min(self.budget_nodes, self.proven_nodes)
        fields_cap = self.max_fields if trial else min(self.max_fields, self.proven_fields)
        count = nodes = 0
        for unit in units:
            if count >= min(available, fields_cap) or (count and nodes + unit.first > nodes_cap):
                break
            count += 1
            nodes += unit.first
        return count, nodes

    def is_trial(self, count: int, nodes: int) -> bool:
        """Whether a request of this size is larger than any that succeeded."""
        return count > self.proven_fields or nodes > self.proven_nodes

    def succeeded(self, batch: list[PageUnit]) -> None:
        """A request of this size was answered: it is proven."""
        self.proven_fields = max(self.proven_fields, len(batch))
        self.proven_nodes = max(self.proven_nodes, sum(unit.first for unit in batch))

    def refused(self, batch: list[PageUnit]) -> None:
        """A request of this size was refused as a whole: halve both limits below it.

        Even under a size that once succeeded (servers also refuse for time or
        load): every refusal shrinks the limits, so requests never loop.
        """
        nodes = sum(unit.first for unit in batch)
        self.max_fields = max(1, min(self.max_fields, len(batch) // 2))
        self.budget_nodes = max(self._page_size, min(self.budget_nodes, nodes // 2))
        self.proven_fields = min(self.proven_fields, self.max_fields)
        self.proven_nodes = min(self.proven_nodes, self.budget_nodes)
