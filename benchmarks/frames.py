"""Benchmark the frame pipelines on synthetic raw records, side by side with DuckDB.

Run ``python benchmarks/frames.py`` (default: 1,000 customers x 90 days of
hourly snapshots, ~2.16 M records, and 3,000 instances x 90 days of daily
metrics), ``--rows 8000000`` for ~8 M snapshots and ~8 M daily metrics, or
``--smoke`` for a seconds-long check.

Records are generated directly as Arrow tables with the schemas in
``prismatic_usage.records`` (no HTTP) and IDs as long as real ones (base64 of
``Customer:<uuid>``, 60 characters), so the timings cover only raw records ->
finished DataFrame. The same pipelines run as SQL in DuckDB (``--threads 2``)
on the same Arrow tables, and their rows are compared with the library's. The
naive baseline mimics the original script: for every customer and day, filter
that customer's snapshots to the day and average them in Python, timed on a
subset of customers and extrapolated per record.

Goals (exit 1 if one is missed): >= 1 M snapshot records/s; each pipeline
within 1.5x of DuckDB's time and adding at most 1.5x DuckDB's peak RSS (+100 MB);
rows identical to DuckDB's.
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
import pandas as pd
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


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_BASE64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
)


def node_ids(type_name: str, count: int, rng: np.random.Generator) -> pa.Array:
    """Prismatic-like node IDs: base64 of ``"<type_name>:<random uuid>"``, built in NumPy.

    ``Customer:`` IDs come out 60 characters long, as real ones do; short
    numbered IDs would understate the tables' memory about threefold. Built in
    chunks so that generating does not outgrow the pipelines being measured.
    """
    chunk = 1 << 17
    if count > chunk:
        parts = [node_ids(type_name, min(chunk, count - at), rng) for at in range(0, count, chunk)]
        return pa.chunked_array(parts).combine_chunks()
    digits = _HEX[rng.integers(0, 16, (count, 32), dtype=np.uint8)]
    text = np.empty((count, len(type_name) + 1 + 36), dtype=np.uint8)
    text[:, : len(type_name) + 1] = np.frombuffer(type_name.encode() + b":", dtype=np.uint8)
    uuid = text[:, len(type_name) + 1 :]
    for start, stop, source in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        uuid[:, start:stop] = digits[:, source : source + stop - start]
    uuid[:, [8, 13, 18, 23]] = ord("-")
    width = text.shape[1]
    padded = np.zeros((count, -(-width // 3) * 3), dtype=np.uint8)
    padded[:, :width] = text
    groups = padded.reshape(count, -1, 3).astype(np.uint32)
    bits = (groups[..., 0] << 16) | (groups[..., 1] << 8) | groups[..., 2]
    sextets = np.stack([(bits >> shift) & 63 for shift in (18, 12, 6, 0)], axis=-1)
    encoded = _BASE64[sextets].reshape(count, -1)
    pad = padded.shape[1] - width
    if pad:
        encoded[:, -pad:] = ord("=")
    size = encoded.shape[1]
    offsets = np.arange(count + 1, dtype=np.int32) * size
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets.tobytes()), pa.py_buffer(encoded.tobytes())
    )


def _repeat(dictionary: pa.Array, indices: np.ndarray[Any, Any]) -> pa.Array:
    """``dictionary[indices]`` as a plain string array (fast, via a dictionary array)."""
    encoded = pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), dictionary)
    return encoded.cast(pa.string())


def make_records(customers: int, days: int, instances: int, seed: int = 0) -> UsageRecords:
    """Synthetic records: hourly snapshots per customer and daily metrics per instance."""
    rng = np.random.default_rng(seed)
    customer_ids = node_ids("Customer", customers, rng)
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
            "id": node_ids("InstanceUsageSnapshot", owner.size, rng),
            "customer_id": _repeat(customer_ids, owner),
            "snapshot_time": pa.array(micros).cast(SNAPSHOT_SCHEMA.field("snapshot_time").type),
            "deployed_instance_count": pa.array(deployed),
            "deployed_unique_integration_count": pa.array(deployed // 2),
        },
        schema=SNAPSHOT_SCHEMA,
    )

    instance_ids = node_ids("Instance", instances, rng)
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
            "id": node_ids("InstanceDailyUsageMetric", rows, rng),
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


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory line (``VmRSS``, ``VmHWM``) in MB, if Linux has it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def added_peak_mb(run: Callable[[], object]) -> float:
    """How far ``run()`` raises this process's resident set above where it started, in MB.

    On Linux the peak is reset first (``/proc/self/clear_refs``), so each call is
    measured on its own; elsewhere it is the growth of the lifetime peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    before = _status_mb("VmRSS") or 0.0
    lifetime = peak_rss_mb()
    run()
    peak = _status_mb("VmHWM")
    return (peak if peak is not None else peak_rss_mb() - lifetime + before) - before


CUSTOMER_SQL = """
SELECT c.id AS "Customer ID", c.name AS "Customer Name", s.day AS "Date",
       avg(s.deployed_instance_count) AS "Deployed Instances",
       avg(s.deployed_unique_integration_count) AS "Unique Integrations"
FROM (SELECT customer_id, CAST(snapshot_time AS DATE) AS day,
             deployed_instance_count, deployed_unique_integration_count
      FROM snapshots) AS s
JOIN customers AS c ON s.customer_id = c.id
WHERE s.day BETWEEN $start AND $end
GROUP BY c.id, c.name, s.day
ORDER BY c.name, c.id, s.day
"""
COMPUTE_SQL = """
SELECT i.customer_id AS "Customer ID", c.name AS "Customer Name", i.id AS "Instance ID",
       i.name AS "Instance Name", m.snapshot_date AS "Date",
       m.successful_execution_count AS "Successful Executions",
       m.failed_execution_count AS "Failed Executions", m.step_count AS "Step Count",
       m.spend_mb_secs AS "Execution Mb-Seconds"
FROM metrics AS m
JOIN instances AS i ON m.instance_id = i.id
JOIN customers AS c ON i.customer_id = c.id
WHERE m.snapshot_date BETWEEN $start AND $end
ORDER BY c.name, c.id, i.name, i.id, m.snapshot_date, m.successful_execution_count,
         m.failed_execution_count, m.step_count, m.spend_mb_secs
"""


def duckdb_runner(records: UsageRecords, threads: int) -> Callable[[str], pd.DataFrame]:
    """A function running SQL over ``records``' Arrow tables in DuckDB, returning pandas.

    The SQL is the same pipeline as the library's (UTC days; the generated IDs are
    unique, so no first-per-ID step is needed). The result is fetched as Arrow,
    DuckDB's fastest output, and wrapped in pandas without copying (``.df()``
    would build a Python object per string and take several times longer).
    """
    import duckdb

    con = duckdb.connect(config={"threads": threads})  # no ICU: TIMESTAMPTZ -> DATE is UTC
    con.register("customers", records.customers)
    con.register("instances", records.instances)
    con.register("snapshots", records.snapshots)
    con.register("metrics", records.daily_metrics)
    bounds = {"start": records.start, "end": records.end}

    def run(sql: str) -> pd.DataFrame:
        return con.sql(sql, params=bounds).to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)

    return run


def same_rows(ours: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    """Whether DuckDB's rows match the library's (same order and values; dtypes aside)."""
    if ours.shape[0] != theirs.shape[0]:
        return False
    for column in theirs.columns:
        left = pa.chunked_array([pa.array(ours[column])])
        right = pa.chunked_array([pa.array(theirs[column])]).cast(left.type)
        if pa.types.is_floating(left.type):
            if not np.allclose(left.to_numpy(), right.to_numpy(), rtol=1e-12, atol=0):
                return False
        elif not left.equals(right):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--instances", type=int, default=3_000)
    parser.add_argument(
        "--rows", type=int, help="snapshots and metrics each (sets --customers and --instances)"
    )
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--naive-customers", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat")
    args = parser.parse_args(argv)
    if args.rows:
        args.customers = max(1, args.rows // (args.days * 24))
        args.instances = max(1, args.rows // args.days)
    if args.smoke:
        args.customers, args.days, args.instances = 20, 3, 30
        args.naive_customers, args.repeats = 5, 1

    began = time.perf_counter()
    records = make_records(args.customers, args.days, args.instances)
    n_snapshots = records.snapshots.num_rows
    n_metrics = records.daily_metrics.num_rows
    generated_mb = peak_rss_mb()
    print(
        f"generated {n_snapshots:,} snapshots, {n_metrics:,} daily metrics "
        f"in {time.perf_counter() - began:.2f} s (peak RSS {generated_mb:,.0f} MB)"
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
    print(f"peak RSS after generating and timing: {peak_rss_mb():,.0f} MB")

    sql = duckdb_runner(records, args.threads)
    print(f"same Arrow tables in DuckDB ({args.threads} threads), result as pandas:")
    print(
        f"{'pipeline':<24}{'library s':>10}{'DuckDB s':>10}{'ratio':>8}{'lib +MB':>9}{'DuckDB +MB':>11}  rows"
    )
    ratios = {}
    memory = {}
    identical = True
    for name, ours_s, build, query in (
        ("customer_instance_frame", daily_s, customer_instance_frame, CUSTOMER_SQL),
        ("instance_compute_frame", compute_s, instance_compute_frame, COMPUTE_SQL),
    ):
        theirs_s = best_of(args.repeats, lambda query=query: sql(query))
        ours_mb = added_peak_mb(lambda build=build: build(records))
        theirs_mb = added_peak_mb(lambda query=query: sql(query))
        same = same_rows(build(records), sql(query))
        identical = identical and same
        ratios[name] = ours_s / theirs_s
        memory[name] = (ours_mb, theirs_mb)
        print(
            f"{name:<24}{ours_s:>10.3f}{theirs_s:>10.3f}{ratios[name]:>7.2f}x"
            f"{ours_mb:>9,.0f}{theirs_mb:>11,.0f}  {'identical' if same else 'FAILED: rows differ'}"
        )

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
        print("smoke run: sizes too small to judge the goals")
        return 0 if identical else 1
    goals = [
        (">= 1 M snapshots/s", daily_rate >= 1e6),
        *((f"{name} within 1.5x of DuckDB's time", ratio <= 1.5) for name, ratio in ratios.items()),
        *(
            (f"{name} adds at most 1.5x DuckDB's peak RSS (+100 MB)", ours <= 1.5 * theirs + 100)
            for name, (ours, theirs) in memory.items()
        ),
        ("rows identical to DuckDB's", identical),
    ]
    print("goals:")
    for text, met in goals:
        print(f"  {'ok  ' if met else 'MISS'} {text}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
