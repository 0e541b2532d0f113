"""The node budget of a request: additive increase, multiplicative decrease (AIMD).

How many nodes (the summed ``first`` of its page units) one request may ask
for. Like the pace does for 429s, the budget adapts to the server:

* **Grow** by :data:`GROWTH_PAGES` page of nodes after every answer that came
  back whole and fast, if that request carried at least half the budget (an
  answer to a small request says nothing about a larger one). From the default
  1,000 nodes a fetch reaches the ceiling after 90 such answers.
* **Halve** below the request's size on a refused request (a GraphQL error for
  the whole operation, HTTP 400/413, a timeout, an answer over the size cap)
  and on a *slow* answer (see :func:`slow_threshold`) of a request that
  carried at least half the budget (a small request that is slow shows a busy
  server or machine, not a budget too large: measured, a one-off 2.7 s stall
  of a 494-node request halved a 1,100-node budget). Halving *below the
  request's size*, not the current budget, means that several answers of
  requests that were in flight together shrink it once, not once each.
* **Bounds**: never under one page (:data:`FLOOR_PAGES`), never over the
  ceiling (100 root fields of full pages: 10,000 nodes), and after a refusal
  never again as large as the smallest refused request: the limit is put
  halfway between the largest request that succeeded and the refused one, at
  least one page below the refused one but never under the largest answered,
  so a server with a hard cap is found in a few refusals and never hit again.

A *fixed* budget (the user set ``pack``) never grows and ignores slow answers;
it still shrinks on refusals, so a request is never sent again as it was
refused. Pure arithmetic, no I/O, no clock.
"""

from __future__ import annotations

import math

__all__ = [
    "FLOOR_PAGES",
    "GROWTH_PAGES",
    "SLOW_FACTOR",
    "SLOW_SECONDS",
    "NodeBudget",
    "slow_threshold",
]

#: The smallest budget, in pages: one full page always travels.
FLOOR_PAGES = 1
#: Pages of nodes added after each whole, fast answer that used at least half the budget.
GROWTH_PAGES = 1
#: An answer is slow only if it also took this many times the fastest answer so far
#: (what the size adds over the server's plain latency).
SLOW_FACTOR = 2.0
#: An answer is never slow before this long, whatever the pace: on a busy machine
#: (measured: a shared 2-core one) 1,000-node answers took 1-1.4 s from load alone,
#: and halving on them only made more requests.
SLOW_SECONDS = 2.0


def slow_threshold(concurrency: int, rate: float | None) -> float:
    """Seconds after which an answer is slow, before the latency guard.

    The larger of :data:`SLOW_SECONDS` (2 s) and ``concurrency / rate``: with
    ``concurrency`` requests in flight and starts paced at ``rate`` a second, an
    answer that takes longer than that holds back the next start, so the
    answers, not the pace, set the speed (0.4 s at the defaults, so 2 s
    applies). Thresholds of 0.4 s and 1 s were measured to halve the budget on
    answers slowed by a busy machine rather than by their size. The guard
    (:data:`SLOW_FACTOR` times the fastest answer, see
    :meth:`NodeBudget.is_slow`) keeps a server whose plain latency is already
    over it from shrinking the budget to nothing.

    Parameters
    ----------
    concurrency
        Requests in flight at once.
    rate
        Paced starts per second; None when unpaced.
    """
    return max(SLOW_SECONDS, concurrency / rate) if rate else SLOW_SECONDS


class NodeBudget:
    """The node budget of one fetch.

    Parameters
    ----------
    start_nodes
        The budget of the first requests.
    page_size
        Nodes in a full page: the floor and the growth step.
    ceiling_nodes
        The budget never grows over this.
    fixed
        Never grow, ignore slow answers (refusals still shrink it).
    slow_seconds
        Answers slower than this (and than the latency guard) halve the budget.
    """

    def __init__(
        self,
        start_nodes: int,
        page_size: int,
        *,
        ceiling_nodes: int,
        fixed: bool,
        slow_seconds: float,
    ) -> None:
        self.floor = FLOOR_PAGES * page_size
        self.step = GROWTH_PAGES * page_size
        self.nodes = max(self.floor, start_nodes)
        self.fixed = fixed
        self.slow_seconds = slow_seconds
        #: The budget never grows over this (lowered by refusals).
        self.limit = max(self.nodes, ceiling_nodes)
        #: The largest request answered whole, in nodes.
        self.largest_answered = 0
        #: The fastest answer so far, in seconds (the server's plain latency).
        self.fastest: float | None = None
        #: Whole answers that were slow.
        self.slow_answers = 0
        #: The largest the budget has been.
        self.peak = self.nodes

    def is_slow(self, seconds: float) -> bool:
        """Whether an answer that took ``seconds`` is slow (call before :meth:`answered`).

        Parameters
        ----------
        seconds
            How long the request took, from send to parsed answer.
        """
        guard = SLOW_FACTOR * self.fastest if self.fastest is not None else 0.0
        return seconds > max(self.slow_seconds, guard)

    def answered(self, nodes: int, seconds: float) -> None:
        """A request of ``nodes`` came back whole after ``seconds``: grow, or halve if slow.

        Parameters
        ----------
        nodes
            The request's summed ``first``.
        seconds
            How long it took.
        """
        slow = self.is_slow(seconds)
        self.fastest = seconds if self.fastest is None else min(self.fastest, seconds)
        self.largest_answered = max(self.largest_answered, nodes)
        if self.fixed or 2 * nodes < self.nodes:
            return  # a request under half the budget says nothing about the budget
        if slow:
            self.slow_answers += 1
            self.nodes = max(self.floor, min(self.nodes, nodes // 2))
        else:
            self.nodes = min(self.limit, self.nodes + self.step)
            self.peak = max(self.peak, self.nodes)

    def refused(self, nodes: int) -> None:
        """A request of ``nodes`` was refused as a whole: halve below it, and never reach it again.

        Parameters
        ----------
        nodes
            The refused request's summed ``first``.
        """
        below = max(self.step, math.ceil((nodes - self.largest_answered) / 2))
        target = nodes - below
        if self.largest_answered < nodes:
            target = max(target, self.largest_answered)  # never under what was answered
        self.limit = max(self.floor, min(self.limit, target))
        self.nodes = max(self.floor, min(self.nodes, nodes // 2, self.limit))
