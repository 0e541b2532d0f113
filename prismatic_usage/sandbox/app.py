"""The sandbox's aiohttp application: ``POST /api`` and ``POST /auth/refresh``.

``/api`` handles a request in this order, so each fault can be tested alone:
count it -> latency -> dropped connection -> queued canned response -> ``every_nth``
status -> rate limit (429) -> bearer token (401) -> JSON body (400) -> parse and
validate (400, as graphene-django answers errors that have no path) -> query-cost
limits (GraphQL error, 200) -> cost model (waits in proportion to the nodes
requested) -> execute (200, ``data`` and path-carrying ``errors``), in
the server thread or, with workers, in a worker process (``execution.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .execution import Answer, Job, dumps, execute_job, run_in_worker
from .faults import FaultPlan, inserted_customer, inserted_instance, retry_after_seconds
from .operation import limit_error, nodes_requested, root_fields
from .relay import MAX_LIMIT
from .state import SandboxState
from .stats import RequestRecord

__all__ = ["STATE", "build_app"]

STATE = web.AppKey("sandbox_state", SandboxState)
_UNAUTHORIZED = {"errors": [{"message": "Unauthorized"}]}
_TOO_MANY = {"errors": [{"message": "Too Many Requests"}]}
_HTML = (
    "<html><head><title>{code} {reason}</title></head><body><h1>{code} {reason}</h1></body></html>"
)


def build_app(state: SandboxState) -> web.Application:
    """An application serving ``state`` (add it to an ``AppRunner``)."""
    app = web.Application(middlewares=[_observe])
    app[STATE] = state
    app.router.add_post("/api", handle_api)
    app.router.add_post("/auth/refresh", handle_refresh)
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request, its status and how many run at once."""
    stats = request.app[STATE].stats
    stats.enter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        transport = request.transport
        stats.leave(0 if transport is None or transport.is_closing() else status)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def _html(status: int) -> web.Response:
    reason = web.Response(status=status).reason
    return web.Response(
        status=status, text=_HTML.format(code=status, reason=reason), content_type="text/html"
    )


def _retry_after(plan: FaultPlan, wait: float) -> str:
    seconds = retry_after_seconds(wait)
    if plan.retry_after_http_date:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        return email.utils.format_datetime(when, usegmt=True)
    return str(seconds)


def _status_fault(plan: FaultPlan, status: int) -> web.Response:
    """The answer of an ``every_nth`` fault: JSON for 401/429 (as the API does), else HTML."""
    if status == 429:
        return _json(_TOO_MANY, 429, {"Retry-After": _retry_after(plan, 1.0)})
    if status == 401:
        return _json(_UNAUTHORIZED, 401)
    return _html(status)


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def handle_api(request: web.Request) -> web.StreamResponse:
    """``POST /api``: faults, auth, then GraphQL."""
    state = request.app[STATE]
    plan = state.faults  # one plan for the whole request, even if swapped meanwhile
    seq = state.next_api_seq()
    # The limit counts arrivals (as a gateway would), not answers after the latency.
    wait = state.rate_limit_wait(plan)
    limited = _json(_TOO_MANY, 429, {"Retry-After": _retry_after(plan, wait)}) if wait > 0 else None
    delay = plan.latency + plan.slow(seq)
    if delay > 0:
        await asyncio.sleep(delay)
    if plan.expire_token_at == seq:
        state.expire_tokens()
    if plan.drops(seq):
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)  # never sent: the socket is gone
    canned = state.pop_canned()
    if canned is not None:
        return web.Response(
            status=canned.status,
            body=canned.body,
            headers=dict(canned.headers),
            content_type=canned.content_type,
        )
    forced = plan.status_for(seq)
    if forced is not None:
        return _status_fault(plan, forced)
    if limited is not None:
        return limited
    token = _bearer(request)
    if token is None or not state.token_valid(token):
        return _json(_UNAUTHORIZED, 401)
    return await _graphql(request, state, plan, seq)


async def _read_json(request: web.Request) -> Any:
    """The body as JSON, or None if it is not JSON or the client hung up while sending it.

    A client that is killed mid-request (Ctrl-C, SIGTERM) is routine, not a server
    error: its 400 goes nowhere, and aiohttp logs no traceback for it.
    """
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, ConnectionError):
        return None


def _request_error(message: str) -> web.Response:
    return _json({"errors": [{"message": message}]}, 400)


async def _graphql(
    request: web.Request, state: SandboxState, plan: FaultPlan, seq: int
) -> web.Response:
    body = await _read_json(request)
    if not isinstance(body, dict):
        return _request_error("POST body must be a JSON object")
    query, variables, operation_name = (
        body.get("query"),
        body.get("variables"),
        body.get("operationName"),
    )
    if not isinstance(query, str) or not query.strip():
        return _request_error("Must provide query string.")
    if variables is not None and not isinstance(variables, dict):
        return _request_error("Variables are invalid JSON.")
    if operation_name is not None and not isinstance(operation_name, str):
        return _request_error("operationName must be a string.")
    # A new document shape (a 100-field pack validates in ~0.1 s) is parsed off the loop:
    # on it, requests arriving meanwhile would be stamped late, as one bunch, and the
    # strict rate window would refuse a client that kept to its pace.
    parsed = state.cached_document(query)
    if parsed is None:
        parsed = await asyncio.to_thread(state.document, query)
    document, errors = parsed
    if document is None or errors:
        return _json({"errors": [e.formatted for e in errors]}, 400)
    name, calls = root_fields(document, operation_name, variables)
    problem = limit_error(
        calls, max_root_fields=plan.max_root_fields, max_nodes=plan.max_nodes_per_response
    )
    if problem is not None:
        state.stats.served(RequestRecord(seq, 200, name, calls, (problem,)))
        return _json({"errors": [{"message": problem}]}, 200)
    # No root field answers more than a page, whatever ``first`` it asks for (it is refused).
    cost = plan.cost_seconds(min(nodes_requested(calls), MAX_LIMIT * len(calls)))
    if cost > 0:
        await asyncio.sleep(cost)  # the cost model: larger requests answer later
    switches = state.switches
    job = Job(
        query=query,
        variables=variables,
        operation_name=operation_name,
        require_instance_for_daily_metrics=switches.require_instance_for_daily_metrics,
        refuse_org_wide_snapshots=switches.refuse_org_wide_snapshots,
        stuck_cursor=plan.stuck_cursor,
        lie_total_count=plan.lie_total_count,
        denied_ids=plan.denied_ids,
        extra_customers=tuple(
            inserted_customer(plan.fault_seed, n)
            for n in range(plan.inserted(plan.insert_customer_after, seq), 0, -1)
        ),
        extra_instances=tuple(
            inserted_instance(state.data, plan.fault_seed, n)
            for n in range(plan.inserted(plan.insert_instance_after, seq), 0, -1)
        ),
        tie_order=plan.tie_order(seq),
        refused_integration_ids=plan.refused_integration_ids,
    )
    answer: Answer
    if state.pool is None:
        answer = execute_job(state.schema, state.data, document, job)
    else:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(state.pool.executor, run_in_worker, job)
    state.stats.served(RequestRecord(seq, answer.status, name, calls, answer.messages))
    return web.Response(
        body=answer.body, status=answer.status, content_type="application/json", charset="utf-8"
    )


async def handle_refresh(request: web.Request) -> web.StreamResponse:
    """``POST /auth/refresh``: a valid refresh token buys a new access token."""
    state = request.app[STATE]
    body = await _read_json(request)
    if not isinstance(body, dict):
        return _request_error("POST body must be a JSON object")
    if body.get("refresh_token") != state.refresh_token:
        return _json(_UNAUTHORIZED, 401)
    return _json({"access_token": state.issue_token()})
