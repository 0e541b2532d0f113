"""``Sandbox``: a schema-faithful local Prismatic for tests, demos and benchmarks.

Serves ``prismatic_usage/schema.graphql`` through graphql-core behind aiohttp on
127.0.0.1, from its own thread and event loop, with bearer-token auth, token
refresh, request statistics and injectable faults.
"""

from __future__ import annotations

import dataclasses
import secrets
from types import TracebackType
from typing import Any

from .app import build_app
from .data import OrgData
from .execution import WorkerPool
from .faults import CannedResponse, FaultPlan
from .runner import ThreadedServer
from .schema import sandbox_schema
from .state import SandboxState, Switches
from .stats import SandboxStats
from .window import default_org

__all__ = ["Sandbox"]


class Sandbox:
    """A local Prismatic GraphQL API serving ``data``.

    Parameters
    ----------
    data
        The organisation to serve; default :func:`~prismatic_usage.sandbox.window.default_org`
        (seed 0, 50 customers, usage from 2024-12-01 to 2025-02-13: the README's range,
        served by every sandbox by default).
    token
        The access token to accept (``Authorization: Bearer <token>``); random if None.
    refresh_token
        The refresh token ``POST /auth/refresh`` accepts; random if None.
    host, port
        Where to listen; port 0 picks a free port (read it from :attr:`url`).
    faults
        Faults to inject; changeable later through :attr:`faults`/:meth:`update_faults`.
    require_instance_for_daily_metrics
        Refuse ``instanceDailyUsageMetrics`` without ``instance`` with the live API's
        error ``Missing required argument 'instance'`` (default, as observed in 2026).
    refuse_org_wide_snapshots
        Likewise refuse ``customerTotalUsageMetrics`` without ``customer``.
    workers
        0 (default) executes GraphQL in the server thread. N >= 1 executes it (parse,
        execute, JSON encoding) in N worker processes forked by :meth:`start` before
        the server thread starts; auth, faults, rate limits and the request log stay
        in this process. ``fork`` is only safe while no other thread runs: use it in
        a process of its own (``prismatic-usage sandbox --workers N``), not next to
        other sandboxes or clients; POSIX only.

    Examples
    --------
    >>> from prismatic_usage.sandbox import Sandbox, generate_org
    >>> with Sandbox(generate_org(customers=2, days=1)) as sb:
    ...     sb.api_url.startswith("http://127.0.0.1:") and sb.api_url.endswith("/api")
    True
    """

    def __init__(
        self,
        data: OrgData | None = None,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        require_instance_for_daily_metrics: bool = True,
        refuse_org_wide_snapshots: bool = False,
        workers: int = 0,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        data = data if data is not None else default_org()
        schema = sandbox_schema()
        self._state = SandboxState(
            data,
            schema,
            token=token or secrets.token_urlsafe(32),
            refresh_token=refresh_token or secrets.token_urlsafe(32),
            faults=faults or FaultPlan(),
            switches=Switches(
                require_instance_for_daily_metrics=require_instance_for_daily_metrics,
                refuse_org_wide_snapshots=refuse_org_wide_snapshots,
            ),
            pool=WorkerPool(workers, schema, data) if workers else None,
        )
        self._host = host
        self._server = ThreadedServer(lambda: build_app(self._state), host, port)

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Start serving; returns once listening. Raises ``OSError`` if the port is taken."""
        self._state.data.warm()  # so no request pays for building the org-wide indexes
        pool = self._state.pool
        if pool is not None:
            pool.start()  # forks (inheriting the warm data) before the server thread exists
        try:
            self._server.start()
        except BaseException:
            if pool is not None:
                pool.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); in-flight requests get half a second to finish."""
        self._server.stop()
        if self._state.pool is not None:
            self._state.pool.stop()

    @property
    def workers(self) -> int:
        """How many worker processes execute GraphQL (0: the server thread does)."""
        return 0 if self._state.pool is None else self._state.pool.size

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:  # never shows a token
        where = self.url if self.running else "stopped"
        return f"Sandbox({where}, {self.data!r})"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._server.running

    # Addresses and credentials ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, like ``PRISMATIC_URL`` (no ``/api``). Raises RuntimeError before start."""
        if self._server.port is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self._host}:{self._server.port}"

    @property
    def api_url(self) -> str:
        """The GraphQL endpoint, ``<url>/api``."""
        return f"{self.url}/api"

    @property
    def token(self) -> str:
        """The newest valid access token (a refresh replaces it)."""
        return self._state.token

    @property
    def refresh_token(self) -> str:
        """The refresh token ``POST /auth/refresh`` accepts."""
        return self._state.refresh_token

    def expire_token(self) -> None:
        """Invalidate every access token issued so far: requests get 401 until refreshed."""
        self._state.expire_tokens()

    # Data, switches and faults ------------------------------------------------------------

    @property
    def data(self) -> OrgData:
        """The organisation served (read it to compute expected results)."""
        return self._state.data

    @property
    def require_instance_for_daily_metrics(self) -> bool:
        return self._state.switches.require_instance_for_daily_metrics

    @require_instance_for_daily_metrics.setter
    def require_instance_for_daily_metrics(self, value: bool) -> None:
        self._state.switches = dataclasses.replace(
            self._state.switches, require_instance_for_daily_metrics=value
        )

    @property
    def refuse_org_wide_snapshots(self) -> bool:
        return self._state.switches.refuse_org_wide_snapshots

    @refuse_org_wide_snapshots.setter
    def refuse_org_wide_snapshots(self, value: bool) -> None:
        self._state.switches = dataclasses.replace(
            self._state.switches, refuse_org_wide_snapshots=value
        )

    @property
    def faults(self) -> FaultPlan:
        """The fault plan in force; assign a new one, or change its attributes in place."""
        return self._state.faults

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        self._state.faults = plan

    def update_faults(self, **changes: Any) -> FaultPlan:
        """Swap in a copy of the plan with ``changes`` applied (atomically); returns it."""
        plan = dataclasses.replace(self._state.faults, **changes)
        self._state.faults = plan
        return plan

    def queue_response(
        self,
        status: int,
        body: Any = "",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next ``/api`` request with this, before auth and everything else.

        ``body``: dict/list sent as JSON, str as text (``text/html`` unless
        ``content_type`` says otherwise), bytes as they are. Queued responses are
        used once each, first in first out.
        """
        self._state.queue(CannedResponse.build(status, body, headers, content_type))

    # Observability ------------------------------------------------------------------------

    @property
    def stats(self) -> SandboxStats:
        """A snapshot of the counters and the request log."""
        return self._state.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters, clear the log and restart ``every_nth`` counting at 1."""
        self._state.stats.reset()
        self._state.reset_seq()
