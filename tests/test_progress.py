"""Progress: a callback or a bar where someone watches, nothing in pipes and logs."""

from __future__ import annotations

import io
import sys

import pytest

from prismatic_usage import FetchOptions, FetchProgress, fetch_usage
from prismatic_usage.progress import progress_reporter
from prismatic_usage.sandbox import Sandbox

from .test_client import _sandbox_range


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_callback_sees_every_request_and_the_end(sandbox: Sandbox) -> None:
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
    assert len(events) == records.stats.requests
    assert [e.requests for e in events] == sorted(e.requests for e in events)
    assert events[-1].entities_done == events[-1].entities_total > 0
    # Rows received; org-wide streams also bring system records, dropped at the end.
    assert events[-1].rows >= records.row_count


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
        callback(FetchProgress(entities_done=3, entities_total=7, requests=5, rows=420))
    assert "3/7" in terminal.getvalue() and "rows=420" in terminal.getvalue()
