"""Scale table: the command-line tool against a sandbox, from 50 to 3,000 customers.

Every cell (customers x days) starts ``python -m prismatic_usage sandbox`` in its own
process (100 ms latency, a strict limit of 20 requests/s), runs the CLI
``python -m prismatic_usage --start-date .. --end-date .. --output-dir TMP`` against it
as a child process, and prints side by side:

  requests  what the CLI's closing line reports (every HTTP attempt, 429s included);
  seconds   wall time of the CLI process (interpreter start and writing the CSVs included);
  floor s   requests / the server's rate: no run at that rate can be faster;
  s/floor   seconds / floor;
  peak MB   the CLI process's peak RSS (``ru_maxrss`` from ``os.wait4``);
  cpu s     the CLI process's user + system CPU seconds (the same rusage): on a shared,
            loaded machine, seconds far above the floor with cpu s well below it mean
            the client waited for the CPU or the sandbox, not for its own work;
  429s      answers HTTP 429 (the CLI runs with ``-v``, which logs every retry): each
            pauses every worker for its Retry-After and halves the client's pace;

then the same with the sandbox refusing answers over 1,000 nodes (``--max-nodes``),
or ``n/a`` where this checkout's sandbox has no such flag. The cap is a command-line
setting of the sandbox, so each cell starts one sandbox per setting. The CSVs of every
run of a cell must be identical (exit 1 otherwise).

    python benchmarks/scale.py                     # default cells (all but the largest)
    python benchmarks/scale.py --large             # also 1,000 x 92 and 3,000 x 7/31/92
    python benchmarks/scale.py --cells 200x31,1000x31 --repeats 3
    python benchmarks/scale.py --smoke             # one tiny cell, seconds; no goals

Generating the org is slow: ~8 s for 1,000 customers x 31 days and several minutes
(and several GB in the sandbox process) for 3,000 customers x 92 days, twice per cell
when the cap is available; that time is not in the table. With ``--repeats N`` the
seconds column shows min/median, requests and peak MB the largest of the N runs, and
s/floor uses the median. Goals (checked for the cells run, skipped under ``--smoke``;
exit 1 on a miss): at 1,000 x 31 at most 308 requests without a cap (a third of the
925 sent before the adaptive node budget) and at most 925 with it; s/floor <= 1.10 in
every cell from 200 customers up; peak RSS under 1.5 GB at 3,000 x 92. Each s/floor
goal line also prints the least s/floor the client's pace allows at that many requests
(``pace_bound``): the goal is out of reach wherever that plus start-up passes 1.10.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _sandbox_process import SandboxSpec, sandbox_accepts, start_sandbox

from prismatic_usage.pacing import PACE_MARGIN

CAP_FLAG = "--max-nodes"
START = dt.date(2024, 12, 1)
SETTLE = 1.1  # seconds between runs against one sandbox, so its 1-second window empties
REQUESTS = re.compile(r"\bin ([\d,]+) requests\b")
THROTTLED = re.compile(r"^INFO .*\bretrying\b.*: HTTP 429\b", re.MULTILINE)


@dataclass(frozen=True, order=True)
class Cell:
    """One org size: ordinary customers x days of usage."""

    customers: int
    days: int

    @classmethod
    def parse(cls, text: str) -> Cell:
        customers, _, days = text.strip().lower().partition("x")
        return cls(int(customers.replace(",", "").replace("_", "")), int(days))

    def __str__(self) -> str:
        return f"{self.customers:,} x {self.days}"


DEFAULT_CELLS = [Cell(c, d) for c in (50, 200, 1000) for d in (7, 31, 92) if (c, d) != (1000, 92)]
LARGE_CELLS = [Cell(1000, 92), Cell(3000, 7), Cell(3000, 31), Cell(3000, 92)]


@dataclass(frozen=True)
class Run:
    """One CLI run: requests, wall and CPU seconds, peak RSS, a digest of the files written."""

    requests: int
    seconds: float
    cpu_seconds: float
    peak_mb: float
    throttled: int
    digest: str


@dataclass(frozen=True)
class Column:
    """The runs of one cell against one sandbox setting."""

    runs: list[Run]
    rate: float

    @property
    def requests(self) -> int:
        return max(r.requests for r in self.runs)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def floor(self) -> float:
        return self.requests / self.rate

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor if self.requests else float("nan")

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def throttled(self) -> int:
        return sum(r.throttled for r in self.runs)

    def seconds_text(self) -> str:
        if len(self.runs) == 1:
            return f"{self.seconds:.2f}"
        return f"{min(r.seconds for r in self.runs):.2f}/{self.seconds:.2f}"


class CliFailed(RuntimeError):
    """The CLI exited with a status other than 0."""


def digest_of(directory: Path) -> str:
    """A SHA-256 over every file's name and bytes in ``directory`` (sorted by name)."""
    h = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_cli(url: str, token: str, cell: Cell) -> Run:
    """Run the CLI for ``cell``'s days against ``url``; its own peak RSS from ``os.wait4``."""
    end = START + dt.timedelta(days=cell.days - 1)
    env = {k: v for k, v in os.environ.items() if k != "PRISMATIC_URL"}
    env["PRISMATIC_API_KEY"] = token  # through the environment: never on a command line
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryFile("w+") as stdout:
        command = [
            sys.executable, "-m", "prismatic_usage", "--url", url, "--output-dir", out,
            "--start-date", START.isoformat(), "--end-date", end.isoformat(), "--verbose",
        ]  # fmt: skip
        began = time.perf_counter()
        proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        text = stdout.read()
        match = REQUESTS.search(text)
        if proc.returncode != 0 or match is None:
            tail = "\n".join(text.splitlines()[-5:])
            raise CliFailed(f"the CLI exited {proc.returncode} on {cell}:\n{tail}")
        requests = int(match.group(1).replace(",", ""))
        cpu = usage.ru_utime + usage.ru_stime
        throttled = len(THROTTLED.findall(text))
        peak_mb = usage.ru_maxrss / 1024
        return Run(requests, seconds, cpu, peak_mb, throttled, digest_of(Path(out)))


def measure(args: argparse.Namespace, cell: Cell, cap: int | None) -> Column:
    """Start one sandbox for ``cell`` (node cap ``cap`` or none) and run the CLI on it."""
    extra = (CAP_FLAG, str(cap)) if cap else ()
    spec = SandboxSpec(
        cell.customers, cell.days, START, args.latency, args.rate, args.sandbox_workers,
        extra=extra,
    )  # fmt: skip
    began = time.perf_counter()
    with start_sandbox(spec) as (url, token):
        ready = time.perf_counter() - began
        setting = f"cap {cap:,} nodes" if cap else "no cap"
        print(f"  {cell}, {setting}: sandbox ready in {ready:.1f} s", file=sys.stderr, flush=True)
        runs = []
        for i in range(args.repeats):
            if i:
                time.sleep(SETTLE)
            runs.append(run_cli(url, token, cell))
    return Column(runs, args.rate)


LEFT = 67  # characters of a row's uncapped half


def header(cap_label: str) -> str:
    """The table's two header lines: what each half is, then the columns."""
    columns = (
        f"{'requests':>8} {'seconds':>11} {'floor s':>7} {'s/floor':>7} {'peak MB':>7} cpu s 429s"
    )
    return f"{'no cap':>{LEFT}} | {cap_label}\n{'cell':>11} {columns} | {columns}"


def half(column: Column | None) -> str:
    """requests, seconds, floor, s/floor, peak MB, CPU s, 429s of one column (n/a if not run)."""
    if column is None:
        return f"{'n/a':>8} {'n/a':>11} {'n/a':>7} {'n/a':>7} {'n/a':>7} {'n/a':>5} {'n/a':>4}"
    return (
        f"{column.requests:8,} {column.seconds_text():>11} {column.floor:7.2f} "
        f"{column.ratio:6.2f}x {column.peak_mb:7,.0f} {column.cpu_seconds:5.1f} "
        f"{column.throttled:4d}"
    )


def row(cell: Cell, free: Column, capped: Column | None) -> str:
    """One cell's line: the uncapped and the capped runs side by side."""
    return f"{cell!s:>11} {half(free)} | {half(capped)}"


def pace_bound(column: Column, latency: float) -> float:
    """The least s/floor the client's pace allows for the column's requests.

    The client starts requests ``1 / (PACE_MARGIN * rate)`` apart (the margin that
    keeps a strict window from refusing, issue 18), and the last answer takes one
    latency: ``(requests - 1) / (PACE_MARGIN * rate) + latency``, against the floor.
    Interpreter start, imports, the requests that must wait for others' answers
    (the lists before per-instance streams) and writing the files come on top.
    """
    if not column.requests:
        return float("nan")
    seconds = (column.requests - 1) / (PACE_MARGIN * column.rate) + latency
    return seconds / column.floor


def goals(
    results: dict[Cell, tuple[Column, Column | None]], cap: int, latency: float
) -> Iterator[tuple[str, bool]]:
    """Each goal that applies to the cells run, with whether it was met."""
    key = Cell(1000, 31)
    if key in results:
        free, capped = results[key]
        yield f"{key}: requests {free.requests} <= 308 without a cap", free.requests <= 308
        if capped is not None:
            text = f"{key}: requests {capped.requests} <= 925 with a {cap:,}-node cap"
            yield text, capped.requests <= 925
    for cell, (free, capped) in sorted(results.items()):
        if cell.customers < 200:
            continue
        for name, column in (("without a cap", free), ("with the cap", capped)):
            if column is not None:
                text = f"{cell}: s/floor {column.ratio:.2f} <= 1.10 {name}"
                yield (
                    f"{text} (the pace alone: {pace_bound(column, latency):.2f})",
                    (column.ratio <= 1.10),
                )
    big = Cell(3000, 92)
    if big in results:
        for name, column in zip(("without a cap", "with the cap"), results[big], strict=True):
            if column is not None:
                text = f"{big}: peak RSS {column.peak_mb:,.0f} MB < 1,536 MB {name}"
                yield text, column.peak_mb < 1536


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", help="comma-separated CUSTOMERSxDAYS, e.g. 200x31,1000x31")
    parser.add_argument("--large", action="store_true", help="add 1000x92 and 3000 x 7/31/92")
    parser.add_argument("--repeats", type=int, default=1, help="CLI runs per cell and setting")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--rate", type=float, default=20.0, help="server limit, requests/s")
    parser.add_argument("--max-nodes", type=int, default=1000, help="the capped column's cap")
    parser.add_argument(
        "--sandbox-workers",
        type=int,
        default=1,
        help="sandbox processes executing GraphQL (0 executes on its event loop, which then "
        "stamps requests arriving meanwhile late and bunched: its strict window answers 429s)",
    )
    parser.add_argument("--smoke", action="store_true", help="one tiny cell, no goals")
    args = parser.parse_args()
    if args.smoke:
        args.cells, args.latency = [Cell(3, 2)], 0.01
    elif args.cells:
        args.cells = sorted({Cell.parse(text) for text in args.cells.split(",")})
    else:
        args.cells = DEFAULT_CELLS + (LARGE_CELLS if args.large else [])
    return args


def main() -> int:
    args = parse_args()
    cap = args.max_nodes if sandbox_accepts(CAP_FLAG) else None
    print(
        f"CLI against the sandbox: latency {args.latency * 1000:.0f} ms, server limit "
        f"{args.rate:g} requests/s, {args.repeats} run(s) per cell and setting; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start"
    )
    cap_label = f"cap {args.max_nodes:,} nodes" if cap else f"cap (sandbox has no {CAP_FLAG})"
    print(header(cap_label), flush=True)
    results: dict[Cell, tuple[Column, Column | None]] = {}
    failures: list[str] = []
    for cell in args.cells:
        try:
            free = measure(args, cell, None)
            capped = measure(args, cell, cap) if cap else None
        except CliFailed as exc:
            failures.append(str(exc))
            print(f"{cell!s:>11} failed (see below)", flush=True)
            continue
        results[cell] = (free, capped)
        print(row(cell, free, capped), flush=True)
        digests = {r.digest for column in (free, capped) if column for r in column.runs}
        if len(digests) > 1:
            failures.append(f"{cell}: the runs wrote different files (records differ)")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if not args.smoke:
        print("goals:")
        for text, met in goals(results, args.max_nodes, args.latency):
            print(f"  {'ok    ' if met else 'MISSED'} {text}")
            if not met:
                failures.append(text)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
