"""A shared pace for every request of one fetch: concurrency, rate, and 429 pauses.

All requests of a run pass through one :class:`RequestGate`. It bounds how many
are in flight, spaces their starts on a grid a little under ``rate`` per second,
and when the server answers 429 it pauses every task until ``Retry-After`` has
passed and halves the rate; the rate creeps back up after a run of successes
(additive increase, multiplicative decrease).

The schedule itself is the pure :class:`PaceSchedule` (no clock of its own, no
asyncio), so its arithmetic can be checked with a fake clock:

* **Margin.** Starts are spaced ``1 / (PACE_MARGIN * rate)`` apart
  (``PACE_MARGIN`` = 0.95: 19 a second for 20), never at the advertised rate
  itself, so delivery jitter between the client and a server that counts
  starts in a strict sliding window does not push a window over the limit.
* **On the grid.** A start that comes late (a late wake-up, the event loop busy)
  *borrows* up to half an interval: the next slot stays on the grid when the
  lateness is at most half an interval, otherwise it is half an interval after
  the late start. So lateness no longer pushes every later start back, and the
  average gap stays the grid's.
* **Strict window.** Borrowing may bring two starts half an interval apart, so
  the schedule also keeps the times of the last ``N = max(1, floor(rate))``
  starts and never lets an ``N + 1``-th into ``N / rate`` seconds plus
  ``WINDOW_GUARD`` (25 ms): at most ``N`` starts in any ``N / rate`` seconds (for a
  whole rate, at most ``rate`` in any second). At 20 requests/s and more the grid
  with borrowing already implies it (any 21 starts span at least 19.5 intervals
  of 1/19 s at 20/s: 1.026 s), so it never delays there; at lower rates it is
  what keeps borrowing within the window. (A window of ``N`` whole grid intervals
  was tried: it turns every late start into a delay of the start ``N`` places
  later, so a busy event loop's lateness adds up instead of being borrowed back,
  1-2 % over a long fetch.)
* **Counted when sent.** A request admitted at its slot may leave later (a new
  connection, the event loop busy), bunching up with the next one at the server.
  The gate learns when each request's headers went out (:meth:`RequestGate.request_sent`,
  from an aiohttp trace) and the strict window counts that later time, so the
  next starts keep the window from there.
* **One slow-down per overload.** The requests already in flight when the first
  429 comes back were sent at the old pace, and their 429s tell nothing new: only
  a 429 for a request that started after the last slow-down halves the rate
  again (every 429 still pauses everyone for its Retry-After).
* **No burst.** The first start is the grid's origin; the next one is a whole
  interval later (nothing is saved up while idle beyond half an interval).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

__all__ = ["PACE_MARGIN", "WINDOW_GUARD", "PaceSchedule", "RequestGate", "sent_trace"]

#: Starts are paced at this fraction of the configured requests per second.
PACE_MARGIN = 0.95
#: Seconds added to the strict window the schedule keeps (slack for delivery jitter).
WINDOW_GUARD = 0.025

#: The start time of the request the current task was admitted for (see request_sent).
_TURN: contextvars.ContextVar[float | None] = contextvars.ContextVar("turn", default=None)

_MIN_RATE = 0.5
_RECOVERY_SUCCESSES = 20


class PaceSchedule:
    """Where the next request may start, for a rate (pure arithmetic, no clock).

    Parameters
    ----------
    rate
        The configured requests per second (the server's advertised limit); the
        grid's interval is ``1 / (PACE_MARGIN * rate)``. Changed through :attr:`rate`
        when the gate slows down or recovers.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next: float | None = None  # the next grid slot; None before the first start
        # Start times, oldest first; the rate only drops below the configured one,
        # so this many suffice.
        self._keep = max(1, math.floor(rate)) + 1
        self._recent: list[float] = []

    @property
    def interval(self) -> float:
        """Seconds between two grid slots at the current rate (margin included)."""
        return 1.0 / (PACE_MARGIN * self.rate)

    @property
    def window(self) -> tuple[int, float]:
        """The strict window kept: at most ``count`` starts in any ``seconds``."""
        count = max(1, math.floor(self.rate))
        return count, count / self.rate + WINDOW_GUARD

    def earliest(self, now: float) -> float:
        """The earliest time at or after ``now`` that the next request may start.

        Parameters
        ----------
        now
            The current time (any monotonic clock, in seconds).
        """
        start = now if self._next is None else max(now, self._next)
        count, seconds = self.window
        if len(self._recent) >= count:
            start = max(start, self._recent[-count] + seconds)
        return start

    def started(self, at: float) -> None:
        """Record a start at ``at`` (at or after :meth:`earliest`) and move the grid on.

        Parameters
        ----------
        at
            The time the request started.
        """
        interval = self.interval
        if self._next is None:
            self._next = at + interval
        else:
            # Borrow the lateness, up to half an interval, from the next gap.
            self._next = max(self._next + interval, at + interval / 2)
        self._recent.append(at)
        del self._recent[: -self._keep]

    def sent(self, started: float, at: float) -> None:
        """The request that started at ``started`` actually left at ``at``: count that.

        Parameters
        ----------
        started
            The time given to :meth:`started` for it.
        at
            When it left (later moves its place in the strict window later).
        """
        if at <= started or started not in self._recent:
            return
        self._recent.remove(started)
        bisect.insort(self._recent, at)


class RequestGate:
    """Admits requests under a concurrency bound and a paced rate.

    Parameters
    ----------
    concurrency
        Requests in flight at most.
    rate
        Requests per second the server allows (see :class:`PaceSchedule` for the
        margin kept under it); None sends unpaced.
    clock
        The monotonic clock (seconds); tests may pass a fake one.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._configured_rate = rate
        self._schedule = PaceSchedule(rate) if rate is not None else None
        self._clock = clock
        self._paused_until = 0.0
        self._slowed_at = -math.inf
        self._successes = 0
        self._lock = asyncio.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def now(self) -> float:
        """The gate's clock now (what :meth:`throttled`'s ``started`` is measured on)."""
        return self._clock()

    @property
    def rate(self) -> float | None:
        """The current rate in requests per second (halved after a 429); None: unpaced."""
        return self._schedule.rate if self._schedule is not None else None

    async def wait_turn(self) -> None:
        """Wait until the pace and any 429 pause allow the next request to start."""
        async with self._lock:
            while True:
                now = self._clock()
                start = max(now, self._paused_until)
                if self._schedule is not None:
                    start = self._schedule.earliest(start)
                if start <= now:
                    break
                await asyncio.sleep(start - now)
            if self._schedule is not None:
                self._schedule.started(now)
                _TURN.set(now)

    def request_sent(self) -> None:
        """The current task's request has gone out now (its headers are sent).

        Called from an aiohttp trace in the task that took the turn; later
        calls for the same turn, and calls without one, change nothing.
        """
        turn = _TURN.get()
        if turn is None or self._schedule is None:
            return
        _TURN.set(None)
        self._schedule.sent(turn, self._clock())

    @contextlib.asynccontextmanager
    async def slot(self, *, turn_taken: bool = False) -> AsyncIterator[None]:
        """Hold one request slot: waits for concurrency, then (unless already
        taken with :meth:`wait_turn`) for the pace and any 429 pause.

        Parameters
        ----------
        turn_taken
            The caller already waited with :meth:`wait_turn` for this request.
        """
        async with self._semaphore:
            if not turn_taken:
                await self.wait_turn()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    def throttled(
        self, retry_after: float, *, slow_down: bool = True, started: float | None = None
    ) -> None:
        """The server said wait (429, or 503 with Retry-After): pause everyone, slow down.

        Parameters
        ----------
        retry_after
            Seconds every request waits from now.
        slow_down
            Also halve the rate (a 429; a busy server's 503 does not).
        started
            When the refused request started (this gate's clock). One that started
            before the last slow-down was sent at the old pace: its 429 pauses but
            does not halve again. None: treat it as sent after.
        """
        now = self._clock()
        self._paused_until = max(self._paused_until, now + retry_after)
        if not slow_down:
            return
        self._successes = 0
        if started is not None and started < self._slowed_at:
            return
        self._slowed_at = now
        if self._schedule is not None:
            self._schedule.rate = max(_MIN_RATE, self._schedule.rate / 2)

    def succeeded(self) -> None:
        """A request went through: after enough of them, speed back up."""
        schedule, configured = self._schedule, self._configured_rate
        if schedule is None or configured is None:
            return
        self._successes += 1
        if self._successes >= _RECOVERY_SUCCESSES and schedule.rate < configured:
            schedule.rate = min(configured, schedule.rate + configured / 10)
            self._successes = 0


def sent_trace(gate: RequestGate) -> aiohttp.TraceConfig:
    """An aiohttp trace telling ``gate`` when each request's headers have gone out.

    Parameters
    ----------
    gate
        The gate whose strict window should count the real send times.
    """

    async def headers_sent(*_: Any) -> None:
        gate.request_sent()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    return trace
