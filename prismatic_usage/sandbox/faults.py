"""Fault injection: what a sandbox gets wrong on purpose, and when.

A :class:`FaultPlan` is read once per request, so swapping it (``sb.faults = ...``)
or changing one attribute from another thread takes effect on the next request.
Everything is off by default and costs a few attribute reads when off.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .data import EPOCH, Customer, Instance, OrgData, global_id

__all__ = [
    "ORG_TOTALS",
    "CannedResponse",
    "FaultPlan",
    "SlidingWindow",
    "inserted_customer",
    "inserted_instance",
    "retry_after_seconds",
]


#: Put in ``FaultPlan.denied_ids`` to refuse the org totals to the token.
ORG_TOTALS = "organization"


@dataclass
class FaultPlan:
    """Faults to inject into ``/api`` requests (counted from 1, per sandbox).

    Attributes
    ----------
    latency
        Seconds added to every ``/api`` request (``asyncio.sleep``: requests overlap).
    rate_limit
        Requests per second allowed, as a strict sliding window (no burst saved
        up, see :class:`SlidingWindow`): at most ``N`` requests in any ``N /
        rate_limit`` seconds, ``N`` = ``rate_limit_burst``; beyond it: HTTP 429,
        JSON body, ``Retry-After``. Refused requests do not count.
    rate_limit_burst
        ``N``, the window's count; None means ``max(1, floor(rate_limit))``, i.e.
        at most ``rate_limit`` requests in any second (for rates of 1 and more).
    retry_after_http_date
        Send ``Retry-After`` as an HTTP-date instead of whole seconds.
    every_nth
        ``{n: status}``: every n-th request answers ``status`` (e.g. ``{4: 502, 7: 429}``).
        429 comes as JSON with ``Retry-After: 1``, 401 as JSON, anything else as HTML.
    max_root_fields
        More top-level fields than this in one operation gives a GraphQL error (HTTP 200).
    max_nodes_per_response
        The sum over connection root fields of ``first``/``last`` (100 when absent)
        may not exceed this, else a GraphQL error (HTTP 200).
    seconds_per_1000_nodes
        A cost model: a request that passed the limits waits this long per
        1,000 nodes *requested* (the same sum as above) before it is executed,
        so answer time grows with the size of a request. Requested, not
        answered: a real server's query cost is judged from ``first``/``last``
        before it runs, and it makes the delay known before executing.
    drop_connection_every_nth
        Every n-th request gets its connection closed without an answer.
    stuck_cursor
        Connections claim ``hasNextPage: true`` and ``endCursor`` never moves past
        the ``after`` it was given.
    lie_total_count
        Added to every ``totalCount`` (0 = truthful).
    slow_every_nth, slow_seconds
        Every n-th request waits ``slow_seconds`` more (to trip client timeouts).
    expire_token_at
        Request number n finds every token issued so far expired (once).
    denied_ids
        Customer / instance IDs whose usage metrics answer a GraphQL
        "permission denied" error (HTTP 200, with a path); :data:`ORG_TOTALS`
        among them denies the org totals (``orgDailyUsageMetrics``,
        ``orgTotalUsageMetrics``).
    insert_customer_after, insert_instance_after
        The org changes mid-run: requests after number n also list a new
        customer (instance) that sorts first (by name; an instance by its
        customer, then creation), with no usage. See :func:`inserted_customer`
        and :func:`inserted_instance` for the records, to build the org as it
        ends up.
    insert_every_request
        With the above: one more new record after every request past n (the
        org keeps changing faster than a stream can be read).
    shuffle_ties
        Usage rows that tie on the sort key (snapshots of several customers at
        one time, daily rows of several instances on one date) come back in a
        new order on every request (one order per request), as on a database
        sorting by that one field. Per-entity streams have no ties.
    fault_seed
        Makes the inserted records' IDs and the tie orders reproducible.
    refused_integration_ids
        Instance IDs whose ``integration`` the token may not read: the field
        is null in the answer, with a GraphQL error whose path points at it.
    """

    latency: float = 0.0
    rate_limit: float | None = None
    rate_limit_burst: int | None = None
    retry_after_http_date: bool = False
    every_nth: dict[int, int] = field(default_factory=dict)
    max_root_fields: int | None = None
    max_nodes_per_response: int | None = None
    seconds_per_1000_nodes: float = 0.0
    drop_connection_every_nth: int | None = None
    stuck_cursor: bool = False
    lie_total_count: int = 0
    slow_every_nth: int | None = None
    slow_seconds: float = 0.0
    expire_token_at: int | None = None
    denied_ids: frozenset[str] = frozenset()
    insert_customer_after: int | None = None
    insert_instance_after: int | None = None
    insert_every_request: bool = False
    shuffle_ties: bool = False
    fault_seed: int = 0
    refused_integration_ids: frozenset[str] = frozenset()

    def inserted(self, after: int | None, seq: int) -> int:
        """How many new records request number ``seq`` sees of an insertion after ``after``."""
        if after is None or seq <= after:
            return 0
        return seq - after if self.insert_every_request else 1

    def tie_order(self, seq: int) -> str | None:
        """The seed of request ``seq``'s order of tied rows; None when ties keep their order."""
        return f"{self.fault_seed}:{seq}" if self.shuffle_ties else None

    def cost_seconds(self, nodes: int) -> float:
        """Extra seconds a request for ``nodes`` nodes waits under the cost model."""
        return self.seconds_per_1000_nodes * nodes / 1000

    def slow(self, seq: int) -> float:
        """Extra seconds request number ``seq`` waits."""
        n = self.slow_every_nth
        return self.slow_seconds if n and seq % n == 0 else 0.0

    def status_for(self, seq: int) -> int | None:
        """The ``every_nth`` status request number ``seq`` must get, if any."""
        for n, status in list(self.every_nth.items()):
            if n > 0 and seq % n == 0:
                return status
        return None

    def drops(self, seq: int) -> bool:
        """Whether request number ``seq`` loses its connection."""
        n = self.drop_connection_every_nth
        return bool(n) and n is not None and n > 0 and seq % n == 0


class SlidingWindow:
    """A strict sliding-window limit: at most ``count`` starts in any ``count / rate`` s.

    Unlike a token bucket nothing is saved up: the ``count + 1``-th request
    within one window is refused however long the limiter was idle before.

    Parameters
    ----------
    rate
        Requests per second (> 0).
    count
        Requests allowed per window (at least 1); the window lasts ``count / rate`` s.
    clock
        The monotonic clock (seconds); tests may pass a fake one.
    """

    def __init__(
        self, rate: float, count: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate_limit must be > 0")
        self.rate = rate
        self.count = max(1, int(count))
        self.seconds = self.count / rate
        self._clock = clock
        self._starts: collections.deque[float] = collections.deque(maxlen=self.count)
        self._lock = threading.Lock()

    def take(self) -> float:
        """Admit a request: 0.0 when granted, else the seconds until one would be."""
        with self._lock:
            now = self._clock()
            if len(self._starts) == self.count:
                wait = self._starts[0] + self.seconds - now
                if wait > 0:
                    return wait
            self._starts.append(now)
            return 0.0


@dataclass(frozen=True)
class CannedResponse:
    """A one-shot response served before normal handling (see ``Sandbox.queue_response``)."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(
        cls,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> CannedResponse:
        """Encode ``body``: dict/list as JSON, str as UTF-8 text (HTML unless told), bytes as is."""
        if isinstance(body, bytes):
            raw, default_type = body, "application/octet-stream"
        elif isinstance(body, str):
            raw, default_type = body.encode(), "text/html"
        else:
            raw, default_type = json.dumps(body).encode(), "application/json"
        return cls(status, raw, content_type or default_type, tuple((headers or {}).items()))


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for ``Retry-After``, rounded up and at least 1."""
    return max(1, math.ceil(wait))


def inserted_customer(seed: int, number: int) -> Customer:
    """The ``number``-th (from 1) customer inserted mid-run; later ones sort first."""
    key = uuid.uuid5(uuid.NAMESPACE_OID, f"inserted-customer:{seed}:{number}")
    return Customer(
        id=global_id("Customer", key),
        name=f"!new customer {10**6 - number:07d}",
        external_id=f"new-{number}",
    )


def inserted_instance(data: OrgData, seed: int, number: int) -> Instance:
    """The ``number``-th (from 1) instance inserted mid-run, of the customer listed first.

    Created before every other instance, so it sorts first (by customer, then creation).
    """
    customer = min((c for c in data.customers if not c.is_system), key=lambda c: (c.name, c.id))
    key = uuid.uuid5(uuid.NAMESPACE_OID, f"inserted-instance:{seed}:{number}")
    created = min((i.created_at for i in data.instances), default=EPOCH)
    created -= dt.timedelta(days=number)
    return Instance(
        id=global_id("Instance", key),
        name=f"!new instance {number}",
        customer_id=customer.id,
        integration_id=data.integrations[0].id,
        created_at=created,
        updated_at=created,
    )
