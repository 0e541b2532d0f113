"""Benchmark the frame pipelines on synthetic raw records.

Run ``python benchmarks/frames.py`` (default: 1,000 customers x 90 days of
hourly snapshots, ~2.16 M records, and 3,000 instances x 90 days of daily
metrics) or ``python benchmarks/frames.py --smoke`` for a seconds-long check.

Records are generated directly as Arrow tables with the schemas in
``prismatic_usage.records`` (no HTTP), so the timings cover only raw records ->
finished DataFrame. The naive baseline mimics the original script: for every
customer and day, filter that customer's snapshots to the day and average them
in Python. It is timed on a subset of customers and extrapolated per record.
Targets: >= 1 M snapshot records/s and peak RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prismatic_usage.frames import customer_instance_frame, instance_compute_frame
from prismatic_usage.records import (
    CUSTOMER_SCHEMA,
    DAILY_METRIC_SCHEMA,
    INSTANCE_SCHEMA,
    SNAPSHOT_SCHEMA,
    UsageRecords,
)

START = dt.date(2025, 1, 1)
MICROS_PER_HOUR = 3_600 * 1_000_000
EPOCH = dt.date(1970, 1, 1)


def _labels(prefix: str, numbers: np.ndarray[Any, Any]) -> pa.Array:
    """Strings ``prefix + number`` for an integer array, built in Arrow."""
    digits = pa.array(numbers.astype(np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, digits, "")


def _repeat(dictionary: pa.Array, indices: np.ndarray[Any, Any]) -> pa.Array:
    """``dictionary[indices]`` as a plain string array (fast, via a dictionary array)."""
    encoded = pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), dictionary)
    return encoded.cast(pa.string())


def make_records(customers: int, days: int, instances: int, seed: int = 0) -> UsageRecords:
    """Synthetic records: hourly snapshots per customer and daily metrics per instance."""
    rng = np.random.default_rng(seed)
    customer_ids = _labels("Customer:", np.arange(customers))
    names = _labels("Customer ", rng.integers(0, max(customers // 2, 1), customers))
    customer_table = pa.table(
        {"id": customer_ids, "name": names, "external_id": _labels("ext-", np.arange(customers))},
        schema=CUSTOMER_SCHEMA,
    )

    hours = days * 24
    owner = np.repeat(np.arange(customers), hours)
    start_micros = (START - EPOCH).days * 24 * MICROS_PER_HOUR
    jitter = rng.integers(0, 60_000_000, owner.size)
    micros = start_micros + np.tile(np.arange(hours), customers) * MICROS_PER_HOUR + jitter
    deployed = rng.integers(0, 50, owner.size)
    snapshots = pa.table(
        {
            "id": _labels("Snapshot:", np.arange(owner.size)),
            "customer_id": _repeat(customer_ids, owner),
            "snapshot_time": pa.array(micros).cast(SNAPSHOT_SCHEMA.field("snapshot_time").type),
            "deployed_instance_count": pa.array(deployed),
            "deployed_unique_integration_count": pa.array(deployed // 2),
        },
        schema=SNAPSHOT_SCHEMA,
    )

    instance_ids = _labels("Instance:", np.arange(instances))
    instance_table = pa.table(
        {
            "id": instance_ids,
            "name": _labels("Integration ", rng.integers(0, 40, instances)),
            "customer_id": _repeat(customer_ids, rng.integers(0, customers, instances)),
            "integration_name": _labels("Integration ", rng.integers(0, 40, instances)),
        },
        schema=INSTANCE_SCHEMA,
    )
    rows = instances * days
    first_day = (START - EPOCH).days
    metric_days = first_day + np.tile(np.arange(days), instances)
    metrics = pa.table(
        {
            "id": _labels("Metric:", np.arange(rows)),
            "instance_id": _repeat(instance_ids, np.repeat(np.arange(instances), days)),
            "snapshot_date": pa.array(metric_days.astype(np.int32)).cast(pa.date32()),
            "successful_execution_count": pa.array(rng.integers(0, 1_500, rows)),
            "failed_execution_count": pa.array(rng.integers(0, 10, rows)),
            "step_count": pa.array(rng.integers(0, 6_000, rows)),
            "spend_mb_secs": pa.array(rng.integers(0, 1_000_000, rows)),
        },
        schema=DAILY_METRIC_SCHEMA,
    )
    return UsageRecords(
        start=START,
        end=START + dt.timedelta(days=days - 1),
        tz="UTC",
        customers=customer_table,
        instances=instance_table,
        snapshots=snapshots,
        daily_metrics=metrics,
    )


def naive_inputs(records: UsageRecords, customer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The subset's snapshots as Python dicts grouped by customer (not timed)."""
    mask = pc.is_in(records.snapshots.column("customer_id"), pa.array(customer_ids))
    per_customer: dict[str, list[dict[str, Any]]] = {cid: [] for cid in customer_ids}
    for snapshot in records.snapshots.filter(mask).to_pylist():
        per_customer[snapshot["customer_id"]].append(snapshot)
    return per_customer


def naive_daily_means(
    per_customer: dict[str, list[dict[str, Any]]], start: dt.date, end: dt.date
) -> list[tuple[Any, ...]]:
    """The original script's approach: per day and customer, filter and average."""
    rows = []
    day = start
    while day <= end:
        lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        hi = lo + dt.timedelta(days=1)
        for cid, snapshots in per_customer.items():
            today = [s for s in snapshots if lo <= s["snapshot_time"] < hi]
            if today:
                mean = sum(s["deployed_instance_count"] for s in today) / len(today)
                rows.append((cid, day, mean))
        day += dt.timedelta(days=1)
    return rows


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``run()``, in seconds."""
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        timings.append(time.perf_counter() - began)
    return min(timings)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--instances", type=int, default=3_000)
    parser.add_argument("--naive-customers", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.customers, args.days, args.instances = 20, 3, 30
        args.naive_customers, args.repeats = 5, 1

    began = time.perf_counter()
    records = make_records(args.customers, args.days, args.instances)
    n_snapshots = records.snapshots.num_rows
    n_metrics = records.daily_metrics.num_rows
    print(
        f"generated {n_snapshots:,} snapshots, {n_metrics:,} daily metrics "
        f"in {time.perf_counter() - began:.2f} s"
    )

    daily_s = best_of(args.repeats, lambda: customer_instance_frame(records))
    daily_rate = n_snapshots / daily_s
    print(f"customer_instance_frame: {daily_s:.3f} s, {daily_rate / 1e6:.2f} M snapshots/s")
    chicago_s = best_of(
        args.repeats, lambda: customer_instance_frame(records, tz="America/Chicago")
    )
    print(f"  tz=America/Chicago:    {chicago_s:.3f} s, {n_snapshots / chicago_s / 1e6:.2f} M/s")
    compute_s = best_of(args.repeats, lambda: instance_compute_frame(records))
    print(
        f"instance_compute_frame:  {compute_s:.3f} s, {n_metrics / compute_s / 1e6:.2f} M metrics/s"
    )

    peak = peak_rss_mb()
    print(f"peak RSS (generation + pipelines): {peak:,.0f} MB")

    subset = records.customers.column("id").to_pylist()[: args.naive_customers]
    per_customer = naive_inputs(records, subset)
    subset_records = sum(map(len, per_customer.values()))
    naive_s = best_of(1, lambda: naive_daily_means(per_customer, records.start, records.end))
    naive_rate = subset_records / naive_s
    print(
        f"naive per-day loop on {len(subset)} customers ({subset_records:,} snapshots): "
        f"{naive_s:.2f} s, {naive_rate:,.0f} snapshots/s -> "
        f"~{n_snapshots / naive_rate:,.0f} s extrapolated; vectorised is "
        f"{daily_rate / naive_rate:,.0f}x faster"
    )
    if args.smoke:
        print("smoke run: sizes too small to judge the targets")
        return 0
    ok = daily_rate >= 1e6 and peak < 1_536
    print("targets (>= 1 M snapshots/s, < 1.5 GB):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
