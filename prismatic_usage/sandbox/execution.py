"""GraphQL execution of one request, in the server thread or in worker processes.

:func:`execute_job` runs a validated document and encodes the answer; the server
thread calls it directly (``workers=0``). With ``workers >= 1``, :class:`WorkerPool`
runs the same function in processes forked before the server thread starts: they
inherit the org's data (nothing is pickled but the :class:`Job` and the answer),
parse each query text once, and leave everything stateful -- auth, faults, rate
limits, the request log -- to the server process, so counters and limits stay global.

Caveat: ``fork`` copies only the forking thread. The pool is therefore created and
warmed (every worker forked) in :meth:`WorkerPool.start`, which ``Sandbox.start``
calls before its server thread exists; forking from a process whose *other* threads
hold locks (another sandbox, a client's threads) may deadlock a worker, and Python
3.12+ warns about it. Use workers from a process of their own, like the
``prismatic-usage sandbox --workers N`` command. A worker that dies breaks the
pool: later requests answer HTTP 500 until the sandbox restarts.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import signal
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema, execute_sync, parse

from .._gc_pause import collector_paused
from .data import Customer, Instance, OrgData
from .fastpath import RecordListExecutor
from .resolvers import ResolveContext

__all__ = ["Answer", "Job", "WorkerPool", "dumps", "execute_job", "http_result", "run_in_worker"]

_DOCUMENT_CACHE_SIZE = 256


def dumps(body: Any) -> str:
    """Compact JSON, non-ASCII kept as is (the bytes differ from spaced JSON, the values not).

    Without the encoder's check for circular references (~13% of the encoding of a
    large answer): an answer is a tree that graphql-core or a handler just built.
    """
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), check_circular=False)


@dataclass(frozen=True, slots=True)
class Job:
    """One request's GraphQL operation and the switches and faults its resolvers read."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    require_instance_for_daily_metrics: bool = True
    refuse_org_wide_snapshots: bool = False
    stuck_cursor: bool = False
    lie_total_count: int = 0
    denied_ids: frozenset[str] = frozenset()
    extra_customers: tuple[Customer, ...] = ()
    extra_instances: tuple[Instance, ...] = ()
    tie_order: str | None = None
    refused_integration_ids: frozenset[str] = frozenset()

    def context(self, data: OrgData) -> ResolveContext:
        return ResolveContext(
            data=data,
            require_instance_for_daily_metrics=self.require_instance_for_daily_metrics,
            refuse_org_wide_snapshots=self.refuse_org_wide_snapshots,
            stuck_cursor=self.stuck_cursor,
            lie_total_count=self.lie_total_count,
            denied_ids=self.denied_ids,
            extra_customers=self.extra_customers,
            extra_instances=self.extra_instances,
            tie_order=self.tie_order,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """HTTP status, the JSON body (UTF-8) and the GraphQL error messages, for the log."""

    status: int
    body: bytes
    messages: tuple[str, ...]


def execute_job(schema: GraphQLSchema, data: OrgData, document: DocumentNode, job: Job) -> Answer:
    """Execute ``job`` (whose query text ``document`` is, validated) and encode the answer."""
    result = execute_sync(
        schema,
        document,
        context_value=job.context(data),
        variable_values=job.variables,
        operation_name=job.operation_name,
        executor_class=RecordListExecutor,
    )
    status, payload = http_result(result)
    if job.refused_integration_ids:
        _refuse_integrations(payload, job.refused_integration_ids)
    messages = tuple(str(e.get("message")) for e in payload.get("errors") or ())
    return Answer(status, dumps(payload).encode(), messages)


_NO_INTEGRATION = "You do not have permission to view this integration."


def _refuse_integrations(payload: dict[str, Any], instance_ids: frozenset[str]) -> None:
    """Null the ``integration`` of these instances' nodes, each with an error pointing at it.

    Done on the answer, not in a resolver: the schema's ``integration`` is
    non-null, and graphql-core would null the whole connection instead.
    """
    data = payload.get("data")
    errors: list[dict[str, Any]] = payload.setdefault("errors", [])
    for alias, value in (data or {}).items():
        nodes = value.get("nodes") if isinstance(value, dict) else None
        for i, node in enumerate(nodes or ()):
            if isinstance(node, dict) and node.get("id") in instance_ids and "integration" in node:
                node["integration"] = None
                errors.append(
                    {"message": _NO_INTEGRATION, "path": [alias, "nodes", i, "integration"]}
                )
    if not errors:
        del payload["errors"]


def http_result(result: ExecutionResult) -> tuple[int, dict[str, Any]]:
    """graphene-django's mapping: errors without a path (request errors) are HTTP 400."""
    errors: list[GraphQLError] = list(result.errors or ())
    if errors and any(not e.path for e in errors):
        return 400, {"errors": [e.formatted for e in errors]}
    return 200, dict(result.formatted)


# Worker processes ---------------------------------------------------------------------


@dataclass
class _Worker:
    """What a worker process holds: inherited through fork, never pickled."""

    schema: GraphQLSchema
    data: OrgData
    documents: OrderedDict[str, DocumentNode]


_worker: _Worker | None = None


def _init_worker(schema: GraphQLSchema, data: OrgData) -> None:
    global _worker
    # Ctrl-C reaches the whole process group; the server process decides when workers end.
    # SIGTERM gets its default back (the command's handler only sets an event).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker = _Worker(schema, data, OrderedDict())
    gc.freeze()  # a worker only serves: its inherited org data stays out of the collector


def _ready() -> bool:
    return _worker is not None


def run_in_worker(job: Job) -> Answer:
    """Execute ``job`` in a worker process (what the pool runs).

    The collector is off while a job runs: a large answer is a tree of ~10^6 young
    objects (dicts, strings), nearly all freed by reference counting once encoded, and
    the collector's passes over them while it is built cost about a third of the work
    (3.3 of 11.6 CPU s replaying the requests of a 1,000 x 31 fetch). It collects
    between jobs instead, so cyclic garbage (an error's traceback) waits one job.
    """
    worker = _worker
    assert worker is not None, "not a sandbox worker process"
    with collector_paused():
        document = worker.documents.get(job.query)
        if document is None:
            # The server process validated this text already; parsing again is enough.
            document = worker.documents[job.query] = parse(job.query)
            if len(worker.documents) > _DOCUMENT_CACHE_SIZE:
                worker.documents.popitem(last=False)
        else:
            worker.documents.move_to_end(job.query)
        return execute_job(worker.schema, worker.data, document, job)


class WorkerPool:
    """``size`` forked processes executing jobs for one sandbox."""

    def __init__(self, size: int, schema: GraphQLSchema, data: OrgData) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self._schema = schema
        self._data = data
        self._executor: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Fork every worker now and wait until each is initialised.

        Call it before starting any thread (see the module's caveat).
        """
        if self._executor is not None:
            return
        executor = ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(self._schema, self._data),
        )
        # With fork, the first submit forks all workers at once, before any pool thread.
        warmups = [executor.submit(_ready) for _ in range(self.size)]
        try:
            if not all(f.result() for f in warmups):
                raise RuntimeError("a sandbox worker did not initialise")
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        self._executor = executor

    @property
    def executor(self) -> ProcessPoolExecutor:
        """The running pool (for ``loop.run_in_executor``); RuntimeError before start."""
        if self._executor is None:
            raise RuntimeError("the worker pool is not started")
        return self._executor

    def stop(self) -> None:
        """Let the workers finish their jobs and exit (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
