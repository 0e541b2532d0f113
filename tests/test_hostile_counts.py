"""A server's word is bounded: a huge ``totalCount`` is refused or paged lazily, never trusted.

A small hostile GraphQL-over-HTTP server on 127.0.0.1 answers every page of
every packed request with whatever count it is told to claim (and as many
nodes as that count promises), through the real gql transport and session.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prismatic_usage.client import Collector
from prismatic_usage.config import Connection, FetchOptions
from prismatic_usage.pacing import RequestGate
from prismatic_usage.pages import MAX_TOTAL_COUNT
from prismatic_usage.plan import FetchPlan
from prismatic_usage.planner import Planner
from prismatic_usage.session import ApiSession

DAY = dt.date(2025, 3, 1)


def _cursor(position: int) -> str:
    return base64.b64encode(f"arrayconnection:{position}".encode()).decode("ascii")


def _page(total: int, offset: int, first: int) -> dict[str, Any]:
    count = max(0, min(first, total - offset))
    nodes = [
        {
            "id": f"N{offset + i}",
            "name": f"n{offset + i}",
            "externalId": None,
            "customer": {"id": "C"},
            "integration": {"name": "I"},
        }
        for i in range(count)
    ]
    return {
        "totalCount": total,
        "pageInfo": {
            "hasNextPage": offset + count < total,
            "startCursor": _cursor(offset) if count else None,
            "endCursor": _cursor(offset + count - 1) if count else None,
        },
        "nodes": nodes,
    }


class HostileServer:
    """Answers every page of every request claiming ``total`` records."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.requests = 0
        self.largest_request = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                variables = body.get("variables") or {}
                slots = sorted(int(name[1:]) for name in variables if name[0] == "f")
                owner.requests += 1
                owner.largest_request = max(owner.largest_request, len(slots))
                data = {
                    f"u{slot}": _page(owner.total, variables[f"o{slot}"], variables[f"f{slot}"])
                    for slot in slots
                }
                raw = json.dumps({"data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def absurd_server() -> Iterator[HostileServer]:
    with HostileServer(10**12) as server:
        yield server


def test_a_count_beyond_the_sanity_limit_is_refused_in_one_line(
    absurd_server: HostileServer, tmp_path: Path
) -> None:
    # A subprocess with a timeout: the old planner enqueued every page at once and never ended.
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prismatic_usage",
            "--url",
            absurd_server.url,
            "--start-date",
            DAY.isoformat(),
            "--end-date",
            DAY.isoformat(),
            "--quiet",
        ],
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": "t0ken-t0ken", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - began < 30
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert f"totalCount 1,000,000,000,000 is beyond the {MAX_TOTAL_COUNT:,}" in lines[-1]
    assert "(offset 0): totalCount" in lines[-1]  # names the query
    assert absurd_server.requests <= 2
    assert list(tmp_path.iterdir()) == []


def test_a_huge_count_under_the_limit_is_paged_lazily_and_stays_interruptible() -> None:
    """Pages are planned a window ahead: pending units stay few, and a cancel lands at once."""
    options = FetchOptions(requests_per_second=None, concurrency=2, pack=2)
    total = MAX_TOTAL_COUNT // 50  # 200,000 pages of 100 per list
    with HostileServer(total) as server:

        async def run() -> tuple[int, float]:
            connection = Connection(base_url=server.url, token="t0ken-t0ken")
            gate = RequestGate(concurrency=options.concurrency, rate=None)
            async with ApiSession(connection, options, gate) as session:
                planner = Planner(
                    session,
                    gate,
                    options,
                    plan=FetchPlan.whole(DAY, DAY, "UTC"),
                    sink=Collector(),
                    progress=None,
                )
                task = asyncio.create_task(planner.run(lists_only=True))
                peak = 0
                while server.requests < 40 and not task.done():
                    peak = max(peak, planner.pending_units)
                    await asyncio.sleep(0.005)
                peak = max(peak, planner.pending_units)
                began = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return peak, time.monotonic() - began

        peak, cancel_seconds = asyncio.run(asyncio.wait_for(run(), timeout=60))
    assert server.requests >= 40  # it kept fetching pages of both lists
    # Two streams, each at most concurrency x pack x 2 pages ahead.
    assert peak <= 2 * options.concurrency * options.pack * 2
    assert cancel_seconds < 2
    assert server.largest_request <= options.pack
