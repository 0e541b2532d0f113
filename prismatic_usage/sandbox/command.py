"""``prismatic-usage sandbox``: run a sandbox in the foreground until interrupted.

Prints ``url: http://127.0.0.1:PORT`` and ``token: TOKEN`` on stdout as soon as it
listens (a script can read those two lines), then serves until SIGINT or SIGTERM.
By default it serves what every sandbox serves (:mod:`prismatic_usage.sandbox.window`):
seed 0, 50 customers, usage from 2024-12-01 to 2025-02-13 (the README's range)
and one UTC day either side; ``--start-date``/``--days`` choose other days.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import signal
import sys
import threading
from types import FrameType
from typing import Any

from ..cli_args import OneLineParser
from .faults import FaultPlan
from .generator import generate_org
from .server import Sandbox
from .window import LAST_DAY, UTC_DAYS, UTC_START

__all__ = ["run"]

DEFAULT_PORT = 8080


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _number(kind: type[int] | type[float], low: float, high: float = float("inf")) -> Any:
    """An argparse type: a ``kind`` number within ``low`` .. ``high``."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
        if not low <= value <= high:
            bounds = f"between {low:g} and {high:g}" if high != float("inf") else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bounds}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="prismatic-usage sandbox",
        description="Serve a local Prismatic GraphQL API with generated usage data.",
    )
    parser.add_argument(
        "--port", type=_number(int, 0, 65535), default=DEFAULT_PORT, help="0 picks a free port"
    )
    parser.add_argument("--token", help="access token to accept (default: random)")
    parser.add_argument("--seed", type=int, default=0, help="data generator seed")
    parser.add_argument("--customers", type=_number(int, 0), default=50, help="ordinary customers")
    parser.add_argument(
        "--start-date",
        type=_date,
        default=UTC_START,
        help=f"first UTC day of data (default: {UTC_START}, the day before the README's range)",
    )
    parser.add_argument(
        "--days",
        type=_number(int, 1),
        default=UTC_DAYS,
        help=f"days of data (default: {UTC_DAYS}, through the day after {LAST_DAY})",
    )
    parser.add_argument(
        "--latency", type=_number(float, 0, 60), default=0.0, help="seconds added per request"
    )
    parser.add_argument(
        "--rate-limit",
        type=_number(float, 0.01),
        help="requests per second before HTTP 429 (a strict sliding window of 1 s)",
    )
    parser.add_argument(
        "--max-nodes",
        type=_number(int, 1),
        help="most nodes (summed first/last of connection fields) a request may ask for; "
        "more is a GraphQL error (default: no limit)",
    )
    parser.add_argument(
        "--ms-per-1000-nodes",
        type=_number(float, 0, 60_000),
        default=0.0,
        help="cost model: milliseconds a request waits per 1,000 nodes it asks for (default: 0)",
    )
    parser.add_argument(
        "--workers",
        type=_number(int, 0, 64),
        default=0,
        help="processes executing GraphQL (0: the server thread; N >= 1 forks N workers)",
    )
    parser.add_argument(
        "--allow-org-wide-instance-metrics",
        action="store_true",
        help="answer instanceDailyUsageMetrics without an instance argument",
    )
    return parser


def run(argv: list[str] | None = None) -> int:
    """Run the sandbox command; returns the exit status (0 after SIGINT/SIGTERM)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    start = args.start_date
    data = generate_org(seed=args.seed, customers=args.customers, start=start, days=args.days)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    sandbox = Sandbox(
        data,
        token=args.token,
        port=args.port,
        faults=FaultPlan(
            latency=args.latency,
            rate_limit=args.rate_limit,
            max_nodes_per_response=args.max_nodes,
            seconds_per_1000_nodes=args.ms_per_1000_nodes / 1000,
        ),
        require_instance_for_daily_metrics=not args.allow_org_wide_instance_metrics,
        workers=args.workers,
    )
    try:
        with sandbox:
            # This process only serves: keep the org's millions of rows (built and warmed
            # by now) out of the collector, whose full passes over them stalled answers for
            # seconds. Not in Sandbox.start: a host process's own objects are not ours to freeze.
            gc.freeze()
            print(f"url: {sandbox.url}", flush=True)
            print(f"token: {sandbox.token}", flush=True)
            last = start + dt.timedelta(days=args.days - 1)
            customers = sum(not customer.is_system for customer in data.customers)
            print(
                f"serving {customers} customers and {len(data.instances)} instances with "
                f"usage from {start} to {last} (UTC); Ctrl-C stops",
                file=sys.stderr,
            )
            while not stop.wait(0.5):
                pass
    except OSError as exc:
        reason = " ".join(str(exc.strerror or exc).split())
        print(
            f"prismatic-usage sandbox: error: cannot listen on port {args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
