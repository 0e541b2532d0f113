"""Store benchmark: a first run, an identical re-run and a run with one more day, side by side.

Starts the sandbox in its own process with injected latency (like ``fetch.py``),
then runs three syncs into one fresh store at the client's default pace:

  (a) first     - days 1..N into an empty store;
  (b) re-run    - the same days again: every day is final, nothing to fetch;
  (c) +1 day    - days 1..N+1: one new day of usage.

and times building both frames from the store for days 1..N+1. Goals (exit 1 if
one is missed): (b) sends at most 1/20 of (a)'s requests and fetches no usage,
(c) at most 1/15, and the frames build in under 2 s. The frames built from the
store are compared with a fetch without a store; any difference fails.

    python benchmarks/store.py            # 1,000 customers x 31 days (run time: README.md)
    python benchmarks/store.py --smoke    # seconds; for CI, no goals checked
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from _sandbox_process import SandboxSpec, start_sandbox

from prismatic_usage import FetchOptions, UsageStore, build_report, fetch_report


@dataclass
class Row:
    name: str
    requests: int
    usage_days: int
    rows_added: int
    seconds: float


def timed(run: Callable[[], object]) -> tuple[object, float]:
    began = time.perf_counter()
    result = run()
    return result, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=31, help="days in the first run")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=20.0, help="client pace, requests/s")
    parser.add_argument("--pack", type=int, default=None, help="packing (default: library's)")
    parser.add_argument("--sandbox-workers", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no goals checked")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.days, args.latency, args.rate = 10, 3, 0.0, 0.0
    args.start = dt.date(2024, 12, 1)
    first_end = args.start + dt.timedelta(days=args.days - 1)
    last_end = first_end + dt.timedelta(days=1)
    args.days += 2  # the sandbox serves the extra day and one beyond
    options = FetchOptions(
        requests_per_second=args.rate or None, **({"pack": args.pack} if args.pack else {})
    )
    rows: list[Row] = []
    sandbox = SandboxSpec(
        args.customers, args.days, args.start, args.latency, None, args.sandbox_workers
    )
    with start_sandbox(sandbox) as (url, token), tempfile.TemporaryDirectory() as d:
        store = UsageStore(Path(d) / "store")
        for name, end in (("(a) first run", first_end), ("(b) identical re-run", first_end),
                          ("(c) one more day", last_end)):  # fmt: skip
            result, seconds = timed(
                lambda end=end: store.sync(  # type: ignore[misc]
                    args.start, end, url=url, token=token, options=options, progress=False
                )
            )
            rows.append(
                Row(
                    name,
                    result.stats.requests,  # type: ignore[attr-defined]
                    sum(len(v) for v in result.fetched_days.values()),  # type: ignore[attr-defined]
                    sum(
                        c.added
                        for n, c in result.counts.items()  # type: ignore[attr-defined]
                        if n in ("snapshots", "daily_metrics")
                    ),
                    seconds,
                )
            )
        report, frame_seconds = timed(
            lambda: build_report(store.records(args.start, last_end), extended=False)
        )
        fresh = fetch_report(
            args.start, last_end, url=url, token=token, options=options, progress=False
        )
    same = all(
        getattr(report, name).equals(getattr(fresh, name))
        for name in ("customer_instances", "instance_compute")
    )
    table = pd.DataFrame([vars(r) for r in rows]).set_index("name")
    table["vs first"] = table["requests"] / table["requests"].iloc[0]
    print(f"{args.customers} customers, {args.days - 2} + 1 days, latency {args.latency} s, "
          f"pace {args.rate or 'unpaced'} req/s")  # fmt: skip
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"both frames from the store ({args.days - 1} days): {frame_seconds:.2f} s; "
          f"{'identical to' if same else 'FAILED: differ from'} a fetch without a store")  # fmt: skip
    if not same:
        return 1
    if args.smoke:
        return 0
    first, rerun, more = rows
    goals = [
        ("re-run <= 1/20 of the first run's requests", rerun.requests * 20 <= first.requests),
        ("re-run fetches no usage", rerun.usage_days == 0),
        ("one more day <= 1/15 of the first run's requests", more.requests * 15 <= first.requests),
        ("frames from the store < 2 s", frame_seconds < 2.0),
    ]
    print("goals:")
    for text, met in goals:
        print(f"  {'ok  ' if met else 'MISS'} {text}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
