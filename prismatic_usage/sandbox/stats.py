"""What a sandbox saw: counters and a request log for tests and benchmarks.

The recorder is updated on the server's loop and read from any thread; every read
returns an immutable :class:`SandboxStats` snapshot taken under a lock.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestRecord", "RootFieldCall", "SandboxStats", "StatsRecorder"]


@dataclass(frozen=True)
class RootFieldCall:
    """One top-level field of a served operation, arguments with variables substituted."""

    alias: str | None
    field_name: str
    arguments: Mapping[str, Any]

    @property
    def key(self) -> str:
        """The response key (the alias if there is one)."""
        return self.alias or self.field_name

    def fingerprint(self) -> str:
        """``field_name`` and arguments as canonical JSON: equal for the same page asked twice."""
        return json.dumps([self.field_name, self.arguments], sort_keys=True, default=str)


@dataclass(frozen=True)
class RequestRecord:
    """One served ``/api`` request (one that reached GraphQL execution)."""

    seq: int
    status: int
    operation_name: str | None
    root_fields: tuple[RootFieldCall, ...]
    error_messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class SandboxStats:
    """A snapshot of a sandbox's counters.

    Attributes
    ----------
    requests
        HTTP requests received on any path (refreshes, faulted and dropped ones included).
    by_status
        Responses per HTTP status; dropped connections count under status 0.
    served
        ``/api`` requests that were executed as GraphQL (faulted ones are not).
    in_flight, max_in_flight
        Requests being handled now / at most at the same time since the last reset.
    request_log
        One :class:`RequestRecord` per served request, oldest first.
    """

    requests: int = 0
    by_status: Mapping[int, int] = field(default_factory=dict)
    served: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    request_log: tuple[RequestRecord, ...] = ()

    def calls(self, field_name: str | None = None) -> list[RootFieldCall]:
        """All root-field calls in the log, optionally only those of ``field_name``."""
        return [
            c
            for r in self.request_log
            for c in r.root_fields
            if field_name is None or c.field_name == field_name
        ]


class StatsRecorder:
    """Thread-safe mutable counters behind :class:`SandboxStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter and clear the log (requests in flight stay counted as such)."""
        with self._lock:
            self._requests = 0
            self._by_status: Counter[int] = Counter()
            self._log: list[RequestRecord] = []
            self._in_flight = getattr(self, "_in_flight", 0)
            self._max_in_flight = self._in_flight

    def enter(self) -> None:
        """A request arrived."""
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self, status: int) -> None:
        """A request was answered with ``status`` (0: connection dropped)."""
        with self._lock:
            self._in_flight -= 1
            self._by_status[status] += 1

    def served(self, record: RequestRecord) -> None:
        """A request was executed as GraphQL."""
        with self._lock:
            self._log.append(record)

    def snapshot(self) -> SandboxStats:
        """The counters as they are now."""
        with self._lock:
            return SandboxStats(
                requests=self._requests,
                by_status=dict(self._by_status),
                served=len(self._log),
                in_flight=self._in_flight,
                max_in_flight=self._max_in_flight,
                request_log=tuple(self._log),
            )
