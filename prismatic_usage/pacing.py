"""A shared pace for every request of one fetch: concurrency, rate, and 429 pauses.

All requests of a run pass through one :class:`RequestGate`. It bounds how many
are in flight, spaces their starts at most ``rate`` per second (no bursts: a
server that counts requests per window never sees more than the rate), and
when the server answers 429 it pauses every task until ``Retry-After`` has
passed and halves the rate; the rate creeps back up after a run of successes
(additive increase, multiplicative decrease).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

__all__ = ["RequestGate"]

_MIN_RATE = 0.5
_RECOVERY_SUCCESSES = 20


class RequestGate:
    """Admits requests under a concurrency bound and a paced rate."""

    def __init__(self, *, concurrency: int, rate: float | None) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._configured_rate = rate
        self.rate = rate
        self._next_start = 0.0
        self._paused_until = 0.0
        self._successes = 0
        self._lock = asyncio.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    async def wait_turn(self) -> None:
        """Wait until the pace and any 429 pause allow the next request to start."""
        async with self._lock:
            while True:
                now = time.monotonic()
                start = max(now, self._next_start, self._paused_until)
                if start <= now:
                    break
                await asyncio.sleep(start - now)
            if self.rate is not None:
                self._next_start = max(now, self._next_start) + 1.0 / self.rate

    @contextlib.asynccontextmanager
    async def slot(self, *, turn_taken: bool = False) -> AsyncIterator[None]:
        """Hold one request slot: waits for concurrency, then (unless already
        taken with :meth:`wait_turn`) for the pace and any 429 pause."""
        async with self._semaphore:
            if not turn_taken:
                await self.wait_turn()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    def throttled(self, retry_after: float, *, slow_down: bool = True) -> None:
        """The server said wait (429, or 503 with Retry-After): pause everyone, slow down."""
        self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        if not slow_down:
            return
        self._successes = 0
        if self.rate is not None:
            self.rate = max(_MIN_RATE, self.rate / 2)

    def succeeded(self) -> None:
        """A request went through: after enough of them, speed back up."""
        if self.rate is None or self._configured_rate is None:
            return
        self._successes += 1
        if self._successes >= _RECOVERY_SUCCESSES and self.rate < self._configured_rate:
            self.rate = min(self._configured_rate, self.rate + self._configured_rate / 10)
            self._successes = 0
