"""A running sandbox's mutable state, shared by its HTTP handlers and its owner.

The owner (``Sandbox``) changes it from the caller's thread; handlers read it on the
server's loop. Each mutable piece is either swapped whole (the fault plan, the
switches) or guarded by a lock (tokens, canned responses, the rate limiter).
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, validate

from .._gc_pause import collector_paused
from .data import OrgData
from .execution import WorkerPool
from .faults import CannedResponse, FaultPlan, SlidingWindow
from .stats import StatsRecorder

__all__ = ["SandboxState", "Switches"]

_DOCUMENT_CACHE_SIZE = 256


@dataclass(frozen=True)
class Switches:
    """Behaviours of the live API that callers must cope with."""

    require_instance_for_daily_metrics: bool = True
    refuse_org_wide_snapshots: bool = False


class SandboxState:
    """Data, credentials, faults, counters and caches of one sandbox."""

    def __init__(
        self,
        data: OrgData,
        schema: GraphQLSchema,
        *,
        token: str,
        refresh_token: str,
        faults: FaultPlan,
        switches: Switches,
        pool: WorkerPool | None = None,
    ) -> None:
        self.data = data
        #: Worker processes that execute GraphQL; None executes in the server thread.
        self.pool = pool
        self.schema = schema
        self.faults = faults
        self.switches = switches
        self.refresh_token = refresh_token
        self.stats = StatsRecorder()
        self._lock = threading.Lock()
        self._tokens = {token}
        self._current_token = token
        self._canned: deque[CannedResponse] = deque()
        self._api_seq = 0
        self._limiter: SlidingWindow | None = None
        self._documents: OrderedDict[str, tuple[DocumentNode | None, list[GraphQLError]]] = (
            OrderedDict()
        )

    # Credentials -------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The newest access token (changes when ``/auth/refresh`` issues one)."""
        return self._current_token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working."""
        with self._lock:
            self._tokens.clear()

    def issue_token(self) -> str:
        """A fresh access token (what ``/auth/refresh`` returns)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
            self._current_token = token
        return token

    # Request sequencing and faults ---------------------------------------------------------

    def next_api_seq(self) -> int:
        """The 1-based number of this ``/api`` request (drives ``every_nth`` faults)."""
        with self._lock:
            self._api_seq += 1
            return self._api_seq

    def reset_seq(self) -> None:
        with self._lock:
            self._api_seq = 0

    def queue(self, response: CannedResponse) -> None:
        with self._lock:
            self._canned.append(response)

    def pop_canned(self) -> CannedResponse | None:
        with self._lock:
            return self._canned.popleft() if self._canned else None

    def rate_limit_wait(self, plan: FaultPlan) -> float:
        """0.0 when the request may pass the plan's rate limit, else seconds to wait."""
        if plan.rate_limit is None:
            return 0.0
        count = plan.rate_limit_burst
        if count is None:
            count = math.floor(plan.rate_limit)
        count = max(1, count)
        with self._lock:
            limiter = self._limiter
            if limiter is None or limiter.rate != plan.rate_limit or limiter.count != count:
                limiter = self._limiter = SlidingWindow(plan.rate_limit, count)
        return limiter.take()

    # Documents --------------------------------------------------------------------------

    def cached_document(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]] | None:
        """The parsed and validated ``query`` if an earlier request already made it, else None."""
        with self._lock:
            cached = self._documents.get(query)
            if cached is not None:
                self._documents.move_to_end(query)
            return cached

    def document(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        """Parse and validate ``query`` once; later requests reuse the result.

        With worker processes the collector pauses meanwhile (a sandbox with workers
        is meant to be a process of its own, though parsing runs in the process that
        started it): a 100-field pack's AST and validation state are ~10^5 objects,
        and collecting while they are built made parsing and validating take ~1.8 x
        as long. A sandbox without workers (``workers=0``) leaves its host's
        collector alone. The pause is counted process-wide (:mod:`.._gc_pause`).
        """
        cached = self.cached_document(query)
        if cached is not None:
            return cached
        with collector_paused(self.pool is not None):
            try:
                document: DocumentNode | None = parse(query)
            except GraphQLError as exc:
                result: tuple[DocumentNode | None, list[GraphQLError]] = (None, [exc])
            else:
                assert document is not None
                result = (document, validate(self.schema, document))
        with self._lock:
            self._documents[query] = result
            if len(self._documents) > _DOCUMENT_CACHE_SIZE:
                self._documents.popitem(last=False)
        return result
