"""Progress: a callback or a bar where someone watches, nothing in pipes and logs."""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Callable

import pytest

from prismatic_usage import FetchOptions, FetchProgress, fetch_usage
from prismatic_usage.progress import MIN_BAR, bar_format, progress_reporter
from prismatic_usage.sandbox import FaultPlan, Sandbox, generate_org
from prismatic_usage.units import PHASES

from .test_client import _sandbox_range


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_callback_sees_the_start_every_request_and_the_end(sandbox: Sandbox) -> None:
    events: list[FetchProgress] = []
    start, end = _sandbox_range(sandbox)
    records = fetch_usage(
        start,
        end,
        url=sandbox.url,
        token=sandbox.token,
        options=FetchOptions(requests_per_second=None),
        progress=events.append,
    )
    # One report before the first request (so a bar shows at once), then one per request.
    first = events[0]
    assert (first.requests, first.pages_done, first.phase) == (0, 0, "listing customers")
    assert first.pages_total >= 2  # the first page of each list, at least
    assert len(events) == records.stats.requests + 1
    assert [e.requests for e in events] == sorted(e.requests for e in events)
    assert [e.pages_done for e in events] == sorted(e.pages_done for e in events)
    assert all(e.pages_done <= e.pages_total for e in events)
    # Phases only move forward: the lists, then usage.
    order = [PHASES.index(e.phase) for e in events]
    assert order == sorted(order) and order[-1] == PHASES.index("fetching usage")
    assert events[-1].entities_done == events[-1].entities_total > 0
    # Every page counted (a refused org-wide probe brings no page, so is none).
    assert events[-1].pages_done == events[-1].pages_total
    assert 0 < events[-1].pages_done <= records.stats.page_units
    # Rows received; org-wide streams also bring system records, dropped at the end.
    assert events[-1].rows >= records.row_count


def test_pages_add_up_when_a_list_is_read_again(make_sandbox: Callable[..., Sandbox]) -> None:
    # A customer created after the lists' first pages: the list is read again
    # from the start, so its pages count again, and the total still ends complete.
    data = generate_org(seed=17, customers=8, start=dt.date(2025, 3, 1), days=3)
    sb = make_sandbox(data=data, faults=FaultPlan(insert_customer_after=3, fault_seed=5))
    events: list[FetchProgress] = []
    fetch_usage(
        dt.date(2025, 3, 1),
        dt.date(2025, 3, 3),
        url=sb.url,
        token=sb.token,
        options=FetchOptions(requests_per_second=None, concurrency=1, page_size=3),
        progress=events.append,
    )
    assert events[-1].pages_done == events[-1].pages_total > 0


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_bar_keeps_its_width_on_narrow_terminals(width: int) -> None:
    event = FetchProgress(
        entities_done=1, entities_total=9, requests=99, rows=1_234_567,
        pages_done=1_234, pages_total=12_345, phase="fetching usage",
    )  # fmt: skip
    line = bar_format(event, width, elapsed=3725.0)
    assert line.count("{bar}") == 1 and "1,234/12,345 pages" in line
    assert width - len(line.replace("{bar}", "")) >= MIN_BAR
    if width >= 100:
        assert "1,234,567 records" in line and "1:02:05" in line


def test_no_bar_when_nobody_watches_or_when_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_reporter(True) as callback:
        assert callback is None
    monkeypatch.setattr(sys, "stderr", _Terminal())
    with progress_reporter(False) as callback:
        assert callback is None


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_reporter(True) as callback:
        assert callback is not None
        callback(
            FetchProgress(
                entities_done=3, entities_total=7, requests=5, rows=420,
                pages_done=7, pages_total=7, phase="fetching usage",
            )
        )  # fmt: skip
    shown = terminal.getvalue()
    assert "listing customers" in shown  # drawn at once, before any report
    assert "7/7 pages, 420 records" in shown and "100%" in shown
