"""Fetch benchmark: the original script's request pattern vs prismatic_usage, side by side.

Starts the sandbox in its own process (so its GraphQL execution does not share a
GIL with the client) with injected latency, and times in one run:

  (a) baseline  - the original TypeScript script's pattern in Python: list customers,
                  one cursor-paginated snapshot query per customer, list instances,
                  one paginated metrics query per instance, strictly sequential,
                  server-default page size;
  (b) K=1       - the library with packing off (one root field per request);
  (c) defaults  - the library at its default settings.

twice: once without a server rate limit, once with the sandbox limiting to
--rate-limit requests/s (HTTP 429 + Retry-After beyond it). Every run's records
are compared with the baseline's; any difference fails the benchmark.

    python benchmarks/fetch.py                # the two tables (run times: README.md)
    python benchmarks/fetch.py --smoke        # seconds; for CI, no targets checked
    python benchmarks/fetch.py --pack-sweep   # requests and seconds for K = 1..50

``--repeats N`` runs every row N times (default 1 for the tables, 3 for the sweep)
and prints the minimum and the median seconds; speed-ups, bounds and targets use
the median, and every sample's records are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from _sandbox_process import SandboxSpec, start_sandbox
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport

from prismatic_usage import FetchOptions, UsageRecords, fetch_usage
from prismatic_usage.config import DEFAULT_CONCURRENCY, DEFAULT_PACK, DEFAULT_REQUESTS_PER_SECOND

Rows = dict[str, set[tuple[Any, ...]]]

SETTLE = 1.1  # seconds between runs against a rate-limited sandbox: its window empties

CUSTOMERS = gql("""
query getCustomers($after: String) {
  customers(after: $after, isSystem: false, orderBy: {field: NAME, direction: ASC}) {
    nodes { id name externalId } pageInfo { hasNextPage endCursor } } }""")
INSTANCES = gql("""
query getInstances($after: String) {
  instances(after: $after, isSystem: false,
            sortBy: [{field: CUSTOMER, direction: ASC}, {field: CREATED_AT, direction: ASC}]) {
    nodes { id name customer { id } integration { name } } pageInfo { hasNextPage endCursor } } }""")
SNAPSHOTS = gql("""
query getCustomerInstanceCount($customer: ID!, $start: DateTime!, $end: DateTime!,
                               $after: String) {
  customerTotalUsageMetrics(customer: $customer, sortBy: {direction: ASC, field: SNAPSHOT_TIME},
      snapshotTime_Gte: $start, snapshotTime_Lte: $end, after: $after) {
    nodes { id snapshotTime deployedInstanceCount deployedUniqueIntegrationCount }
    pageInfo { hasNextPage endCursor } } }""")
METRICS = gql("""
query getInstanceUsage($instance: ID!, $start: Date!, $end: Date!, $after: String) {
  instanceDailyUsageMetrics(instance: $instance, snapshotDate_Gte: $start,
      snapshotDate_Lte: $end, after: $after, sortBy: {direction: ASC, field: SNAPSHOT_DATE}) {
    nodes { id snapshotDate successfulExecutionCount failedExecutionCount stepCount spendMbSecs }
    pageInfo { hasNextPage endCursor } } }""")


@dataclass
class Result:
    name: str
    requests: int
    rows: int
    samples: list[float]
    records: Rows
    concurrency: int | None = None
    rate: float | None = None
    pack: int | None = None
    splits: int = 0
    throttled: int = 0
    differing: int = 0  # later samples whose records differ from the first sample's

    @property
    def seconds(self) -> float:
        """The median sample: what speed-ups, bounds and targets use."""
        return statistics.median(self.samples)

    @property
    def label(self) -> str:
        if self.pack is None:
            return self.name
        return f"{self.name} [pack {self.pack}, {self.splits} splits, {self.throttled} x 429]"


def repeated(args: argparse.Namespace, sample: Callable[[], Result]) -> Result:
    """Take ``args.repeats`` samples of ``sample()`` into one Result (429s and splits summed).

    Each sample first waits ``args.settle`` seconds: against a rate-limited sandbox the
    previous run's requests would otherwise still fill its 1-second window.
    """
    time.sleep(args.settle)
    first = sample()
    for _ in range(args.repeats - 1):
        time.sleep(args.settle)
        again = sample()
        first.samples += again.samples
        first.requests = max(first.requests, again.requests)
        first.splits += again.splits
        first.throttled += again.throttled
        first.differing += again.records != first.records
    return first


def spec(args: argparse.Namespace, *, rate_limit: float | None) -> SandboxSpec:
    return SandboxSpec(
        args.customers, args.days, args.start, args.latency, rate_limit, args.sandbox_workers
    )


@contextmanager
def sandbox_process(
    args: argparse.Namespace, *, rate_limit: float | None
) -> Iterator[tuple[str, str]]:
    """The sandbox for ``args``' org: its URL and token (other scripts import this one)."""
    with start_sandbox(spec(args, rate_limit=rate_limit)) as (url, token):
        yield url, token


async def _walk(
    session: Any, query: GraphQLRequest, field: str, variables: dict[str, Any], counter: list[int]
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after: str | None = ""
    while True:
        counter[0] += 1
        page = await session.execute(
            GraphQLRequest(query, variable_values={**variables, "after": after})
        )
        connection = page[field]
        nodes.extend(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


async def _baseline(url: str, token: str, start: dt.date, end: dt.date) -> tuple[Rows, int]:
    """The original script's request pattern (with the end day fully included)."""
    counter = [0]
    transport = AIOHTTPTransport(url=f"{url}/api", headers={"Authorization": f"Bearer {token}"})
    low = f"{start.isoformat()}T00:00:00.000000+00:00"
    high = f"{end.isoformat()}T23:59:59.999999+00:00"
    rows: Rows = {
        "customers": set(),
        "instances": set(),
        "snapshots": set(),
        "daily_metrics": set(),
    }
    async with Client(transport=transport, execute_timeout=120) as session:
        customers = await _walk(session, CUSTOMERS, "customers", {}, counter)
        for c in customers:
            rows["customers"].add((c["id"], c["name"], c["externalId"]))
            for s in await _walk(
                session,
                SNAPSHOTS,
                "customerTotalUsageMetrics",
                {"customer": c["id"], "start": low, "end": high},
                counter,
            ):
                rows["snapshots"].add((
                    s["id"], c["id"], dt.datetime.fromisoformat(s["snapshotTime"]),
                    s["deployedInstanceCount"], s["deployedUniqueIntegrationCount"],
                ))  # fmt: skip
        instances = await _walk(session, INSTANCES, "instances", {}, counter)
        for i in instances:
            rows["instances"].add(
                (i["id"], i["name"], i["customer"]["id"], i["integration"]["name"])
            )
            for m in await _walk(
                session,
                METRICS,
                "instanceDailyUsageMetrics",
                {"instance": i["id"], "start": start.isoformat(), "end": end.isoformat()},
                counter,
            ):
                rows["daily_metrics"].add((
                    m["id"], i["id"], dt.date.fromisoformat(m["snapshotDate"]),
                    int(m["successfulExecutionCount"]), int(m["failedExecutionCount"]),
                    int(m["stepCount"]), int(m["spendMbSecs"]),
                ))  # fmt: skip
    return rows, counter[0]


def library_rows(records: UsageRecords) -> Rows:
    def rows(table: Any) -> set[tuple[Any, ...]]:
        return set(zip(*(table.column(n).to_pylist() for n in table.schema.names), strict=True))

    return {
        "customers": rows(records.customers),
        "instances": rows(records.instances),
        "snapshots": rows(records.snapshots),
        "daily_metrics": rows(records.daily_metrics),
    }


def run_baseline(url: str, token: str, args: argparse.Namespace) -> Result:
    def sample() -> Result:
        began = time.perf_counter()
        rows, requests = asyncio.run(_baseline(url, token, args.start, args.end))
        seconds = time.perf_counter() - began
        rows_count = sum(map(len, rows.values()))
        return Result("(a) original pattern", requests, rows_count, [seconds], rows)

    return repeated(args, sample)


def run_library(
    name: str, url: str, token: str, args: argparse.Namespace, options: FetchOptions
) -> Result:
    def sample() -> Result:
        began = time.perf_counter()
        records = fetch_usage(args.start, args.end, url=url, token=token, options=options)
        seconds = time.perf_counter() - began
        rows = library_rows(records)
        stats = records.stats
        return Result(
            name,
            stats.requests,
            sum(map(len, rows.values())),
            [seconds],
            rows,
            concurrency=options.concurrency,
            rate=options.requests_per_second,
            pack=stats.pack,
            splits=stats.splits,
            throttled=stats.throttled,
        )

    return repeated(args, sample)


def bound(r: Result, latency: float, server_rate: float | None) -> float:
    """The run's lower bound: ceil(requests / concurrency) x latency, or requests / rate."""
    if not r.concurrency:
        return math.nan
    latency_bound = math.ceil(r.requests / r.concurrency) * latency
    rates = [x for x in (r.rate, server_rate) if x]
    return max(latency_bound, r.requests / min(rates) if rates else 0.0)


def print_table(
    title: str, results: list[Result], latency: float, server_rate: float | None
) -> list[str]:
    """Print one scenario side by side; return the failed checks."""
    base = results[0]
    print(f"\n{title}")
    print(
        f"{'run':52} {'requests':>8} {'rows':>8} {'n':>2} {'min s':>8} {'median s':>8} "
        f"{'speed-up':>8} {'bound s':>8} {'vs bound':>8}"
    )
    failures = []
    for r in results:
        lower = bound(r, latency, server_rate)
        print(
            f"{r.label:52} {r.requests:8d} {r.rows:8d} {len(r.samples):2d} {min(r.samples):8.2f} "
            f"{r.seconds:8.2f} {base.seconds / r.seconds:7.1f}x {lower:8.2f} "
            f"{r.seconds / lower:7.2f}x"
        )
        if r.records != base.records or r.differing:
            failures.append(f"{r.name}: records differ from the baseline's")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--rate-limit", type=float, default=20.0, help="server limit, req/s")
    parser.add_argument(
        "--sandbox-workers", type=int, default=0, help="sandbox processes executing GraphQL"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no targets")
    parser.add_argument("--pack-sweep", action="store_true", help="measure K = 1..50")
    parser.add_argument(
        "--repeats", type=int, help="samples of every row (default: 1; 3 with --pack-sweep)"
    )
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.pack_sweep and not args.smoke else 1
    if args.smoke:
        args.customers, args.days, args.latency = 4, 2, 0.01
    args.start = dt.date(2024, 12, 1)
    args.end = args.start + dt.timedelta(days=args.days - 1)
    print(
        f"org: {args.customers} customers x {args.days} days, latency {args.latency * 1000:.0f} ms; "
        f"library defaults: concurrency {DEFAULT_CONCURRENCY}, "
        f"{DEFAULT_REQUESTS_PER_SECOND:g} req/s, pack adaptive from {DEFAULT_PACK} pages"
    )

    if args.pack_sweep:
        return pack_sweep(args)

    failures: list[str] = []
    args.settle = 0.0
    with sandbox_process(args, rate_limit=None) as (url, token):
        baseline = run_baseline(url, token, args)
        k1 = run_library("(b) library, K=1", url, token, args, FetchOptions(pack=1))
        defaults = run_library("(c) library, defaults", url, token, args, FetchOptions())
        unpaced = run_library(
            "(d) library, unpaced", url, token, args, FetchOptions(requests_per_second=None)
        )
        failures += print_table(
            "1. latency only (no server rate limit)",
            [baseline, k1, defaults, unpaced],
            args.latency,
            None,
        )
    args.settle = 0.0 if args.smoke else SETTLE
    with sandbox_process(args, rate_limit=args.rate_limit) as (url, token):
        baseline_rl = run_baseline(url, token, args)
        k1_rl = run_library("(b) library, K=1", url, token, args, FetchOptions(pack=1))
        defaults_rl = run_library("(c) library, defaults", url, token, args, FetchOptions())
        failures += print_table(
            f"2. latency + server limit {args.rate_limit:g} req/s (429 + Retry-After beyond it)",
            [baseline_rl, k1_rl, defaults_rl],
            args.latency,
            args.rate_limit,
        )
    if not args.smoke:
        checks = {
            "1: defaults >= 6x faster than baseline": baseline.seconds / defaults.seconds >= 6,
            "1: defaults within 1.3x of their bound": defaults.seconds <= 1.3 * bound(defaults, args.latency, None),
            "2: defaults >= 10x faster than baseline": baseline_rl.seconds / defaults_rl.seconds >= 10,
            "2: defaults send <= 1/5 of baseline's requests": defaults_rl.requests * 5 <= baseline_rl.requests,
            "2: defaults within 1.3x of requests/rate": defaults_rl.seconds <= 1.3 * defaults_rl.requests / args.rate_limit,
            "2: K=1 within 1.2x of requests/rate": k1_rl.seconds <= 1.2 * k1_rl.requests / args.rate_limit,
        }  # fmt: skip
        print("\ntargets:")
        for text, ok in checks.items():
            print(f"  {'ok  ' if ok else 'MISS'} {text}")
            if not ok:
                failures.append(text)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures and not args.smoke else 0


def pack_sweep(args: argparse.Namespace) -> int:
    """Requests and seconds (min and median of ``--repeats`` samples) for each K."""
    failures = []
    args.settle = 0.0 if args.smoke else SETTLE
    with sandbox_process(args, rate_limit=args.rate_limit) as (url, token):
        print(f"\nK sweep, server limit {args.rate_limit:g} req/s, {args.repeats} samples per K")
        print(f"{'K':>4} {'requests':>8} {'min s':>8} {'median s':>8} {'max s':>8} {'429s':>5}")
        first: Result | None = None
        for pack in (1, 2, 5, 10, 20, 30, 50):
            r = run_library(f"K={pack}", url, token, args, FetchOptions(pack=pack))
            print(
                f"{pack:4d} {r.requests:8d} {min(r.samples):8.2f} {r.seconds:8.2f} "
                f"{max(r.samples):8.2f} {r.throttled:5d}",
                flush=True,
            )
            first = first or r
            if r.differing or r.records != first.records:
                failures.append(f"K={pack}: records differ from K=1's")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
