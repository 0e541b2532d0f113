"""Memory benchmark: the CLI's peak RSS, per phase, against a sandbox in its own process.

Each case runs ``python -m prismatic_usage`` in a child process, unpaced, and
takes its peak resident set size from ``os.wait4`` (the kernel's count, so
short spikes are included). Inside the child a thread samples RSS every 10 ms
and marks the phases (fetch or sync, collecting the records, reading the store,
building the frames, writing the files, the audit), so the table shows where
the peak is. The sandbox serves from its own process; its memory is not counted.

  (a) 1,000 customers x  31 days, both CSVs, no store
  (b) 3,000 customers x  92 days, both CSVs, no store     goal: peak under 1.5 GB
  (c) 1,000 customers x 365 days through a store (empty)  goal: peak under 2 GB

A goal missed exits 1.

    python benchmarks/memory.py              # all three, ~20 minutes (generating the orgs too)
    python benchmarks/memory.py --case b     # one case
    python benchmarks/memory.py --mimalloc   # Arrow's default pool (the CLI itself uses jemalloc)
    python benchmarks/memory.py --smoke      # seconds; for CI, no goals checked
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fetch import sandbox_process

_PHASES = "memory-phases: "
_START = dt.date(2024, 12, 1)


@dataclass(frozen=True)
class Case:
    name: str
    customers: int
    days: int
    store: bool
    goal_mb: float | None


CASES = {
    "a": Case("(a) 1,000 x 31, CSVs", 1000, 31, False, None),
    "b": Case("(b) 3,000 x 92, CSVs", 3000, 92, False, 1500.0),
    "c": Case("(c) 1,000 x 365, store", 1000, 365, True, 2000.0),
}
SMOKE = {"s": Case("(s) 10 x 3, CSVs", 10, 3, False, None), "t": Case("(t) 10 x 3, store", 10, 3, True, None)}  # fmt: skip


# -- the child: the CLI with phase marks ------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(cli_args: list[str], lean: bool) -> int:
    """Run the CLI in this process, printing the peak RSS of each phase as one JSON line."""
    if lean:
        from prismatic_usage._memory import use_lean_allocator

        use_lean_allocator()
    import prismatic_usage.cli as cli
    import prismatic_usage.client as client
    import prismatic_usage.export as export
    import prismatic_usage.report as report
    import prismatic_usage.usage_store as usage_store

    phase = ["fetch or sync"]
    peaks: dict[str, int] = {}

    def sample() -> None:
        while True:
            peaks[phase[0]] = max(peaks.get(phase[0], 0), _rss_bytes())
            time.sleep(0.01)

    def marked(owner: Any, name: str, during: str, after: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            phase[0] = during
            try:
                return original(*args, **kwargs)
            finally:
                phase[0] = after

        setattr(owner, name, wrapper)

    marked(client, "collected_records", "collect records", "frames")
    marked(usage_store.StoreRun, "records", "read the store", "frames")
    # The CLI imports these where it uses them (lazily), so marking the modules is enough.
    marked(report, "build_report", "frames", "frames")
    marked(export, "write_reports", "write files", "audit")
    if os.path.exists("/proc/self/statm"):
        threading.Thread(target=sample, daemon=True).start()
    code = cli.main(cli_args)
    print(_PHASES + json.dumps(peaks), flush=True)
    return code


# -- the parent: sandboxes, cases, the table ---------------------------------------------------


@dataclass
class Result:
    case: Case
    peak_mb: float
    seconds: float
    phases: dict[str, float]

    @property
    def met(self) -> bool:
        return self.case.goal_mb is None or self.peak_mb < self.case.goal_mb


def run_case(case: Case, args: argparse.Namespace) -> Result:
    """Serve the case's org, run the CLI on it once, measure."""
    sandbox = argparse.Namespace(
        customers=case.customers,
        days=case.days + 2,  # the day before the range and the day after it
        start=_START - dt.timedelta(days=1),
        latency=0.0,
        sandbox_workers=args.sandbox_workers,
    )
    end = _START + dt.timedelta(days=case.days - 1)
    with sandbox_process(sandbox, rate_limit=None) as (url, token), tempfile.TemporaryDirectory() as d:  # fmt: skip
        cli_args = ["--url", url, "--start-date", _START.isoformat(), "--end-date", end.isoformat(),
                    "--rate", "100000", "--output-dir", str(Path(d) / "out"), "-q"]  # fmt: skip
        if case.store:
            cli_args += ["--store", str(Path(d) / "store")]
        began = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                *([] if args.mimalloc else ["--lean"]),
                "--",
                *cli_args,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PRISMATIC_API_KEY": token},
        )
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{case.name}: the CLI exited {proc.returncode}:\n{output}")
    phases = next((json.loads(line[len(_PHASES):]) for line in output.splitlines()
                   if line.startswith(_PHASES)), {})  # fmt: skip
    peak_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Result(case, peak_bytes / 1e6, seconds, {k: v / 1e6 for k, v in phases.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="default: all")
    parser.add_argument("--sandbox-workers", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no goals checked")
    parser.add_argument(
        "--mimalloc",
        action="store_true",
        help="keep Arrow's default pool; by default the child calls use_lean_allocator() "
        "(jemalloc, decay 0) first, as the command line does when it is the process",
    )
    parser.add_argument("--lean", action="store_true", help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        return child([a for a in rest if a != "--"], args.lean)
    cases = list(SMOKE.values()) if args.smoke else [CASES[c] for c in args.case or sorted(CASES)]
    results = [run_case(case, args) for case in cases]
    print(f"{'case':<26} {'peak RSS':>10} {'seconds':>8} {'goal':>9}  peak per phase (MB)")
    for r in results:
        goal = "-" if r.case.goal_mb is None else f"<{r.case.goal_mb:,.0f}"
        verdict = "" if r.case.goal_mb is None else ("  met" if r.met else "  MISSED")
        per_phase = ", ".join(f"{name} {mb:,.0f}" for name, mb in r.phases.items())
        print(f"{r.case.name:<26} {r.peak_mb:>7,.0f} MB {r.seconds:>8.1f} {goal:>9}  "
              f"{per_phase}{verdict}")  # fmt: skip
    return 0 if args.smoke or all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
