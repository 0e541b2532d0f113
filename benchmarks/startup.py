"""Start-up benchmark: how soon ``python -m prismatic_usage`` sends, and how soon it sends at pace.

A small org pays fixed costs before and around its first request (imports,
requests in series before the workers fan out). This script measures them from
the outside, the way a user meets them:

* **import**: ``python -X importtime -c 'import prismatic_usage'`` (the package's
  own cumulative import time) and the wall time of ``python -m prismatic_usage --help``;
* **a real CLI run** against the sandbox started as a separate process (100 ms
  added to every request, a strict 20 requests/s window), through a TCP relay in
  this process that timestamps every request's first byte and its answer's first
  byte. From the process start (just before it is spawned) it prints the time to
  the first request, the time to *full pace* (the first request from which the
  next five leave at the pace, at most 1.5 intervals apart: the gate, not the
  program, is what waits), the total, and the total against the floor
  ``requests / rate``; beside them the time after the last answer (building the
  frames and writing the files) and *pace alone*, the least the client's pace
  allows for that many requests: ``(requests - 1) / (0.95 * rate) + latency``.
  ``--max-nodes N`` starts the sandbox refusing answers over N nodes.

``--before REF`` runs the same measurements on another commit (a temporary
``git worktree``, removed at the end), side by side, alternating runs::

    python benchmarks/startup.py                  # this checkout, ~1 min
    python benchmarks/startup.py --before main    # before/after, ~2 min
    python benchmarks/startup.py --smoke          # seconds; for CI, no goal checked

Exits 1 if a goal is missed (not with ``--smoke``): ``import prismatic_usage``
under ``--goal-import`` seconds and the first request within ``--goal-first``
seconds of the process start, both the best of the runs (on a shared machine
noise only ever adds time; the median is printed beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from prismatic_usage.pacing import PACE_MARGIN

REPO = Path(__file__).resolve().parent.parent
START = dt.date(2025, 1, 1)
STEADY_RUN = 5  # full pace: this many gaps in a row at most 1.5 intervals


@dataclass
class Exchange:
    """One HTTP request seen by the relay: when its first byte came, when its answer began."""

    sent: float
    answered: float | None = None
    body: bytearray = field(default_factory=bytearray)

    def label(self) -> str:
        """The root fields the request asked for, counted (``customers, instanceDaily... x10``)."""
        fields = re.findall(rb"u\d+: (\w+)\(", bytes(self.body))
        counts: dict[str, int] = {}
        for name in fields:
            counts[name.decode()] = counts.get(name.decode(), 0) + 1
        return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())


@dataclass
class Relay:
    """A TCP relay in front of the sandbox that timestamps each request (HTTP/1.1, no pipelining)."""

    target_port: int
    exchanges: list[Exchange] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Serve on a free port of 127.0.0.1 from a thread of its own."""
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def reset(self) -> list[Exchange]:
        """The exchanges so far (then forgotten)."""
        seen, self.exchanges = self.exchanges, []
        return seen

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        current: list[Exchange | None] = [None]

        async def upstream() -> None:
            while data := await reader.read(65536):
                if current[0] is None:  # the first byte of a new request
                    current[0] = Exchange(time.monotonic())
                    self.exchanges.append(current[0])
                if len(current[0].body) < 65536:
                    current[0].body.extend(data)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                exchange = current[0]
                if exchange is not None:  # the answer began: the connection is free again
                    exchange.answered = time.monotonic()
                    current[0] = None
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


@contextmanager
def sandbox(args: argparse.Namespace) -> Iterator[tuple[int, str]]:
    """The sandbox as a process of its own: (port, token)."""
    command = [
        sys.executable, "-m", "prismatic_usage", "sandbox", "--port", "0",
        "--customers", str(args.customers), "--days", str(args.days),
        "--start-date", START.isoformat(), "--latency", str(args.latency),
        "--rate-limit", str(args.rate),
        *(["--max-nodes", str(args.max_nodes)] if args.max_nodes else []),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("url: ", 1)[1].strip()
        token = proc.stdout.readline().split("token: ", 1)[1].strip()
        yield int(url.rsplit(":", 1)[1].strip("/")), token
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Run:
    """One CLI run, in seconds from the process start."""

    first: float
    full_pace: float
    last_answer: float
    total: float
    requests: int
    max_in_flight: int
    timeline: list[str]


def full_pace(sent: list[float], rate: float) -> float:
    """When the pace became the bottleneck: the first send followed by STEADY_RUN paced gaps."""
    interval = 1.5 / (0.95 * rate)
    for i in range(len(sent) - STEADY_RUN):
        if all(sent[j + 1] - sent[j] <= interval for j in range(i, i + STEADY_RUN)):
            return sent[i]
    return float("nan")


def max_in_flight(exchanges: list[Exchange]) -> int:
    """The most requests sent and not yet answered at once."""
    events = [(e.sent, 1) for e in exchanges]
    events += [(e.answered, -1) for e in exchanges if e.answered is not None]
    most = now = 0
    for _, step in sorted(events):
        now += step
        most = max(most, now)
    return most


def cli_run(tree: Path, relay: Relay, token: str, args: argparse.Namespace) -> Run:
    """Run the CLI of ``tree`` once through the relay and time it."""
    last = START + dt.timedelta(days=args.days - 1)
    env = {**os.environ, "PRISMATIC_API_KEY": token, "PYTHONPATH": str(tree)}
    env.pop("PRISMATIC_URL", None)
    relay.reset()
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "prismatic_usage", "--url", f"http://127.0.0.1:{relay.port}",
            "--start-date", START.isoformat(), "--end-date", last.isoformat(),
            "--rate", str(args.rate), "--output-dir", out, "-q",
        ]  # fmt: skip
        began = time.monotonic()
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        ended = time.monotonic()
    if done.returncode != 0:
        raise SystemExit(f"the CLI in {tree} failed ({done.returncode}): {done.stderr.strip()}")
    exchanges = sorted(relay.reset(), key=lambda e: e.sent)
    sent = [e.sent for e in exchanges]
    timeline = [
        f"{e.sent - began:7.3f} -> {(e.answered or ended) - began:7.3f}  {e.label()}"
        for e in exchanges
    ]
    return Run(
        first=sent[0] - began,
        full_pace=full_pace(sent, args.rate) - began,
        last_answer=max(e.answered or ended for e in exchanges) - began,
        total=ended - began,
        requests=len(sent),
        max_in_flight=max_in_flight(exchanges),
        timeline=timeline,
    )


def import_seconds(tree: Path) -> float:
    """The package's cumulative import time, from ``-X importtime`` (seconds)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import prismatic_usage"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"\|\s*(\d+) \| prismatic_usage$", done.stderr, re.MULTILINE)
    assert match, done.stderr[-500:]
    return int(match.group(1)) / 1e6


def help_seconds(tree: Path) -> float:
    """Wall time of ``python -m prismatic_usage --help``."""
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "prismatic_usage", "--help"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        check=True,
    )
    return time.monotonic() - began


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """A temporary detached worktree of ``ref``."""
    path = Path(tempfile.mkdtemp(prefix="startup-before-"))
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(path), ref], cwd=REPO, check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def summary(values: list[float]) -> str:
    """``min / median`` of a measurement, in seconds."""
    return f"{min(values):6.3f} / {statistics.median(values):6.3f}"


def measure(trees: dict[str, Path], args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Every measurement of every tree, runs alternating between trees."""
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    timelines: dict[str, list[str]] = {}

    def note(name: str, what: str, value: float) -> None:
        figures[name].setdefault(what, []).append(value)

    for _ in range(args.repeat):
        for name, tree in trees.items():
            note(name, "import prismatic_usage", import_seconds(tree))
            note(name, "-m prismatic_usage --help", help_seconds(tree))
    with sandbox(args) as (port, token):
        relay = Relay(port)
        relay.start()
        cli_run(next(iter(trees.values())), relay, token, args)  # warm the sandbox and caches
        for _ in range(args.repeat):
            for name, tree in trees.items():
                run = cli_run(tree, relay, token, args)
                floor = run.requests / args.rate
                note(name, "first request", run.first)
                note(name, "full pace", run.full_pace)
                note(name, "last answer", run.last_answer)
                note(name, "total", run.total)
                note(name, "after the last answer", run.total - run.last_answer)
                paced = (run.requests - 1) / (PACE_MARGIN * args.rate) + args.latency
                note(name, "pace alone (see --help)", paced)
                note(name, "requests", run.requests)
                note(name, "floor (requests / rate)", floor)
                note(name, "total / floor", run.total / floor)
                note(name, "max in flight", run.max_in_flight)
                timelines[name] = run.timeline
    if args.timeline:
        for name, lines in timelines.items():
            print(f"requests of the last run ({name}): sent -> answer began, seconds")
            print("\n".join(lines))
    return figures


def print_table(figures: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    """One line per measurement, one column (min / median) per tree."""
    names = list(figures)
    print(
        f"{args.customers} customers x {args.days} days, {args.latency * 1000:.0f} ms latency, "
        f"{args.rate:g} requests/s, {args.repeat} runs each; seconds from the process start"
    )
    print(f"{'measurement':28}" + "".join(f"{name + ' min / median':>24}" for name in names))
    for what in figures[names[0]]:
        print(f"{what:28}" + "".join(f"{summary(figures[n][what]):>24}" for n in names))


def main() -> int:
    """Measure, print, check the goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--before", metavar="REF", help="also measure this commit (e.g. main)")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--max-nodes", type=int, help="the sandbox refuses answers over this many nodes"
    )
    parser.add_argument("--goal-import", type=float, default=0.1, help="seconds (default 0.1)")
    parser.add_argument("--goal-first", type=float, default=0.8, help="seconds (default 0.8)")
    parser.add_argument("--timeline", action="store_true", help="print each request's times")
    parser.add_argument("--smoke", action="store_true", help="tiny, one run, no goals")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.days, args.repeat = 3, 1, 1
    with nullcontext() if args.before is None else checkout(args.before) as before:
        trees = {"this checkout": REPO} if before is None else {"before": before, "after": REPO}
        figures = measure(trees, args)
    print_table(figures, args)
    if args.smoke:
        return 0
    mine = figures[list(figures)[-1]]
    misses = []
    if min(mine["import prismatic_usage"]) > args.goal_import:
        misses.append(f"import over {args.goal_import} s")
    if min(mine["first request"]) > args.goal_first:
        misses.append(f"first request later than {args.goal_first} s")
    print("goals: " + ("; ".join(misses) + " (MISSED)" if misses else "met"))
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
