"""The pace against a strict sliding-window server: the schedule's arithmetic, the
sandbox's limiter, a real fetch at the advertised rate drawing no 429; and record
chunks converted off the event loop, so the pace is not held up."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from prismatic_usage import FetchOptions, fetch_usage
from prismatic_usage.errors import MalformedResponseError
from prismatic_usage.pacing import PACE_MARGIN, WINDOW_GUARD, PaceSchedule, RequestGate
from prismatic_usage.records import DAILY_METRIC_SCHEMA, TableBuilder
from prismatic_usage.sandbox import FaultPlan, Sandbox, generate_org
from prismatic_usage.sandbox.faults import SlidingWindow

from .conftest import sandbox_process
from .expected import actual_records, expected_records
from .test_sandbox import COUNT, raw_post

RATES = [0.5, 1.0, 2.5, 5.0, 10.0, 19.5, 20.0, 100.0]


def _run(rate: float, ready: list[float], late: list[float]) -> tuple[PaceSchedule, list[float]]:
    """Simulate the gate with a fake clock: request k is ready at ``ready[k]`` and
    wakes up ``late[k]`` intervals after the time the schedule named."""
    schedule = PaceSchedule(rate)
    starts: list[float] = []
    for k, (at, lateness) in enumerate(zip(ready, late, strict=True)):
        due = schedule.earliest(max(at, starts[-1] if starts else 0.0))
        start = due + lateness * schedule.interval
        assert schedule.earliest(start) == start, k  # a late wake-up may go at once
        schedule.started(start)
        starts.append(start)
    return schedule, starts


@settings(deadline=None)  # no timing assertion on a shared machine
@given(
    rate=st.sampled_from(RATES),
    steps=st.lists(
        st.tuples(
            st.floats(0, 3) | st.just(0.0),  # idle seconds before the request is ready
            st.floats(0, 2) | st.just(0.0),  # lateness of its wake-up, in intervals
        ),
        min_size=1,
        max_size=120,
    ),
)
def test_late_starts_borrow_at_most_half_an_interval_and_no_window_overflows(
    rate: float, steps: list[tuple[float, float]]
) -> None:
    ready, clock = [], 0.0
    for idle, _ in steps:
        clock += idle
        ready.append(clock)
    schedule, starts = _run(rate, ready, [late for _, late in steps])
    interval = 1.0 / (PACE_MARGIN * rate)
    assert schedule.interval == interval
    eps = 1e-9
    # Borrowing is at most half an interval: no two starts closer than that.
    assert all(b - a >= interval / 2 - eps for a, b in itertools.pairwise(starts))
    # The strict window: at most N starts in any N / rate seconds (N = floor(rate), at
    # least 1: the sandbox's window; for a whole rate, `rate` starts in any second),
    # with the guard to spare: start k + N comes at least that long after start k.
    count = max(1, math.floor(rate))
    for a, b in zip(starts, starts[count:], strict=False):
        assert b - a >= count / rate + WINDOW_GUARD - eps


@settings(deadline=None)
@given(
    rate=st.sampled_from([r for r in RATES if r >= 20]),  # below, the window may bind
    late=st.lists(st.floats(0, 0.5), min_size=2, max_size=200),
)
@example(rate=20.0, late=[0.3] * 22)  # a window of N whole intervals pushed this off the grid
def test_lateness_up_to_half_an_interval_keeps_the_average_on_the_grid(
    rate: float, late: list[float]
) -> None:
    # Every request ready at once, every wake-up late by up to half an interval:
    # the starts stay on the grid (the old rule added each lateness to every later
    # start: a span of sum(interval + lateness)).
    schedule, starts = _run(rate, [0.0] * len(late), late)
    grid = (len(starts) - 1) * schedule.interval
    assert starts[-1] - starts[0] <= grid + 0.5 * schedule.interval + 1e-9


def test_429s_of_requests_sent_at_the_old_pace_halve_it_once() -> None:
    """Eight requests in flight all drawing 429 are one overload, not eight halvings."""
    now = [0.0]
    gate = RequestGate(concurrency=8, rate=20.0, clock=lambda: now[0])
    now[0] = 1.0
    gate.throttled(1.0, started=0.6)  # the first 429 back: halve
    assert gate.rate == 10.0
    for started in (0.65, 0.7, 0.95):  # sent before it came back: pause only
        now[0] += 0.01
        gate.throttled(1.0, started=started)
    assert gate.rate == 10.0
    now[0] = 2.5
    gate.throttled(1.0, started=2.2)  # sent at the halved pace and still refused
    assert gate.rate == 5.0
    gate.throttled(1.0)  # no start given: counted as a new overload
    assert gate.rate == 2.5
    gate.throttled(1.0, started=0.0, slow_down=False)  # a 503: pauses only
    assert gate.rate == 2.5


def test_the_first_starts_are_not_a_burst() -> None:
    schedule, starts = _run(20.0, [0.0] * 5, [0.0] * 5)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == [schedule.interval] * 4 and schedule.interval > 1 / 20


def test_the_sliding_window_refuses_the_extra_request_in_any_window() -> None:
    now = [0.0]
    window = SlidingWindow(20, 20, clock=lambda: now[0])
    for k in range(20):  # 20 starts spread over 0.95 s pass
        now[0] = k * 0.05
        assert window.take() == 0.0
    now[0] = 0.999  # a 21st within one second of the first: refused, however spread
    assert window.take() > 0
    now[0] = 1.0  # the first start has left the window
    assert window.take() == 0.0
    now[0] = 1.02  # still 20 in (0.02, 1.02]
    assert math.isclose(window.take(), 0.03)
    now[0] = 100.0  # idle for long: nothing is saved up beyond the window's count
    assert [window.take() == 0.0 for _ in range(21)] == [True] * 20 + [False]


def test_the_sandbox_refuses_the_extra_request_in_a_sliding_second(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(faults=FaultPlan(rate_limit=5))

    async def post_all() -> list[int]:
        statuses = []
        for _ in range(2):  # a token bucket would have refilled one token in between
            statuses += [(await raw_post(sb.api_url, COUNT, sb.token))[0] for _ in range(3)]
            await asyncio.sleep(0.3)
        return statuses

    statuses = asyncio.run(post_all())
    assert statuses == [200] * 5 + [429]
    assert sb.stats.by_status == {200: 5, 429: 1}


def test_a_fetch_at_the_advertised_rate_draws_no_429() -> None:
    # The server runs in its own process: in this one, the client's work would hold up
    # the sandbox thread's loop and bunch arrivals it stamps late (not the client's pace).
    start = dt.date(2025, 3, 1)
    end = start + dt.timedelta(days=2)
    flags = ["--seed", "3", "--customers", "20", "--start-date", start.isoformat()]
    flags += ["--days", "3", "--latency", "0.05", "--rate-limit", "20"]
    options = FetchOptions(requests_per_second=20, pack=1, page_size=10, max_attempts=8)
    with sandbox_process(*flags) as (url, token):
        records = fetch_usage(start, end, url=url, token=token, options=options)
    assert records.stats.requests >= 150
    assert records.stats.throttled == 0
    data = generate_org(seed=3, customers=20, start=start, days=3)
    assert actual_records(records) == expected_records(data, start, end)


# -- chunks converted off the event loop -------------------------------------------------


def _metric_rows(count: int) -> list[dict[str, object]]:
    return [
        dict(
            id=f"m{k}",
            instance_id=f"i{k % 7}",
            snapshot_date=f"2025-03-{1 + k % 28:02d}",
            successful_execution_count=k,
            failed_execution_count=str(k % 5),  # BigInt as text, as the API may send it
            step_count=2 * k,
            spend_mb_secs=3 * k,
        )
        for k in range(count)
    ]


def test_chunks_converted_in_a_thread_give_the_same_table_in_order() -> None:
    rows = _metric_rows(1000)
    inline = TableBuilder(DAILY_METRIC_SCHEMA)
    inline.CHUNK_ROWS = 64
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = TableBuilder(DAILY_METRIC_SCHEMA, pool)
        threaded.CHUNK_ROWS = 64
        for builder in (inline, threaded):
            for k in range(0, len(rows), 10):
                builder.append_columns(
                    {name: [r[name] for r in rows[k : k + 10]] for name in rows[0]}
                )
        table = threaded.finish()
    assert table.equals(inline.finish())
    assert table.column("id").to_pylist() == [f"m{k}" for k in range(1000)]
    broken = TableBuilder(DAILY_METRIC_SCHEMA, ThreadPoolExecutor(max_workers=1))
    broken.CHUNK_ROWS = 2
    for row in [*_metric_rows(3), {**_metric_rows(1)[0], "step_count": "x"}]:
        broken.append(row)
    with pytest.raises(MalformedResponseError, match="step_count"):
        broken.finish()  # a chunk's error surfaces when the stream is finished


def test_a_fetch_converts_full_chunks_off_the_event_loop(
    make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    convert = TableBuilder._convert

    def spy(self: TableBuilder, columns: dict[str, list[object]]) -> object:
        threads.append(threading.current_thread().name)
        return convert(self, columns)

    monkeypatch.setattr(TableBuilder, "_convert", spy)
    monkeypatch.setattr(TableBuilder, "CHUNK_ROWS", 50)
    start = dt.date(2025, 3, 1)
    end = start + dt.timedelta(days=2)
    data = generate_org(seed=5, customers=10, start=start, days=3)
    sb = make_sandbox(data=data)
    records = fetch_usage(
        start, end, url=sb.url, token=sb.token, options=FetchOptions(requests_per_second=None)
    )
    assert actual_records(records) == expected_records(data, start, end)
    assert any(name.startswith("prismatic-arrow") for name in threads)  # full chunks
    assert threading.main_thread().name in threads  # the last, partial chunk of a stream
