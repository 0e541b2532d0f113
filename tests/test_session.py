"""Error mapping and pacing, the parts of a request's life that need no server."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import gql.transport.exceptions as gql_errors
import pytest

from prismatic_usage._responses import json_object
from prismatic_usage.pacing import RequestGate
from prismatic_usage.session import HANDLED_TRANSPORT_ERRORS


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_gql_transport_error_is_translated() -> None:
    known = {
        cls
        for cls in _subclasses(gql_errors.TransportError)
        if cls.__module__ == gql_errors.__name__
    }
    assert known, "gql's transport errors were not found"
    unmapped = known - set(HANDLED_TRANSPORT_ERRORS)
    assert not unmapped, (
        f"map these gql errors in session.py: {sorted(c.__name__ for c in unmapped)}"
    )


def test_the_gate_spaces_request_starts_at_the_rate() -> None:
    async def starts() -> list[float]:
        gate = RequestGate(concurrency=4, rate=20.0)
        times: list[float] = []

        async def one() -> None:
            async with gate.slot():
                times.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(6)))
        return times

    times = sorted(asyncio.run(starts()))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.05 * 0.9  # never faster than 20 a second


def test_a_429_pauses_everyone_and_halves_the_rate_then_recovers() -> None:
    async def scenario() -> tuple[float, float | None, float | None]:
        gate = RequestGate(concurrency=2, rate=10.0)
        gate.throttled(0.3)
        began = time.monotonic()
        async with gate.slot():
            waited = time.monotonic() - began
        halved = gate.rate
        for _ in range(200):
            gate.succeeded()
        return waited, halved, gate.rate

    waited, halved, recovered = asyncio.run(scenario())
    assert waited >= 0.29
    assert halved == 5.0
    assert recovered == 10.0


def test_answers_parse_with_the_collector_paused_and_restored() -> None:
    """json_object pauses the collector only while it parses, and keeps a host's 'off'."""
    body = {"data": {"u0": {"nodes": [{"id": str(i)} for i in range(3)]}}}
    assert json_object(json.dumps(body)) == body and gc.isenabled()
    with pytest.raises(ValueError):
        json_object("[1, 2]")  # not an object
    with pytest.raises(ValueError):
        json_object("{")  # not JSON
    assert gc.isenabled()
    gc.disable()
    try:
        assert json_object("{}") == {} and not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_pauses_turn_the_collector_on_once_when_the_last_ends() -> None:
    """Another thread's pause (a sandbox parsing, a second fetch) and a parse share one count."""
    from prismatic_usage._gc_pause import collector_paused

    with collector_paused():
        assert json_object("{}") == {}
        assert not gc.isenabled()  # the outer pause is still on
    assert gc.isenabled()
    # Threads parsing at once, switching as often as the interpreter allows: a save and
    # restore that is not counted leaves the collector off for good in some order.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                list(pool.map(json_object, ['{"a": [1, 2, 3]}'] * 2000))
                assert gc.isenabled()
    finally:
        sys.setswitchinterval(interval)
