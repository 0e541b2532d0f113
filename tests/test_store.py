"""The usage store: incremental, crash-safe, readable by DuckDB and Polars.

Runs go through real sandboxes, and through real subprocesses and signals
where the command line is involved. Expected values come from the sandbox's
own data (``OrgData``) or from a run without a store, never from the store.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest

from prismatic_usage import (
    ConfigurationError,
    StoreError,
    StoreLockedError,
    UsageStore,
    customer_instance_frame,
    fetch_report,
    instance_compute_frame,
)
from prismatic_usage.cli_args import UsageError, resolve_range
from prismatic_usage.config import FetchOptions
from prismatic_usage.records import SNAPSHOT_SCHEMA
from prismatic_usage.sandbox import OrgData, Sandbox, generate_org
from prismatic_usage.store import commit as commit_module
from prismatic_usage.store.files import StoreLock

from .test_cli import run_cli

DATA_START = dt.date(2024, 12, 1)
FAST = FetchOptions(requests_per_second=None)

SNAPSHOT_CONTRACT = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("snapshot_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("deployed_instance_count", pa.int64(), nullable=False),
        pa.field("deployed_unique_integration_count", pa.int64(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
    ]
)
METRIC_CONTRACT = pa.schema(
    [
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("snapshot_date", pa.date32(), nullable=False),
        pa.field("successful_execution_count", pa.int64(), nullable=False),
        pa.field("failed_execution_count", pa.int64(), nullable=False),
        pa.field("step_count", pa.int64(), nullable=False),
        pa.field("spend_mb_secs", pa.int64(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
    ]
)


@pytest.fixture(scope="module")
def small_org() -> OrgData:
    """8 customers (+2 system) with 8 days of data from 2024-12-01 (UTC)."""
    return generate_org(edge_cases=True, seed=11, customers=8, start=DATA_START, days=8)


def day(n: int) -> str:
    """The ISO date ``n`` days after 2024-12-01 (day(0) is 2024-12-01)."""
    return (DATA_START + dt.timedelta(days=n)).isoformat()


def store_cli(
    sb: Sandbox, cwd: Path, *args: str, store: Path | None = None, out: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The command against ``sb``, unpaced, with a store if given."""
    extra = ["--store", str(store)] if store is not None else []
    return run_cli(
        "--url",
        sb.url,
        "--rate",
        "10000",
        "--output-dir",
        str(out or cwd / "out"),
        *extra,
        *args,
        cwd=cwd,
        env={"PRISMATIC_API_KEY": sb.token},
    )


def usage_days(sb: Sandbox) -> set[str]:
    """Every day a usage query served since the last reset asked for."""
    days: set[str] = set()
    for call in sb.stats.calls():
        args = call.arguments
        if call.field_name == "customerTotalUsageMetrics":
            low = dt.datetime.fromisoformat(str(args["snapshotTime_Gte"])).date()
            high = dt.datetime.fromisoformat(str(args["snapshotTime_Lte"])).date()
        elif call.field_name == "instanceDailyUsageMetrics":
            low = dt.date.fromisoformat(str(args["snapshotDate_Gte"]))
            high = dt.date.fromisoformat(str(args["snapshotDate_Lte"]))
        else:
            continue
        days.update((low + dt.timedelta(days=i)).isoformat() for i in range((high - low).days + 1))
    return days


def stored(store: Path, table: str) -> pa.Table:
    """Every row of a usage table, read file by file with plain pyarrow."""
    files = sorted((store / table).glob("date=*/data.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# -- incremental runs ----------------------------------------------------------------------


def test_overlapping_runs_fetch_the_overlap_once_and_report_like_a_fresh_run(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    store = tmp_path / "store"
    first = store_cli(sb, tmp_path, "--start-date", day(0), "--end-date", day(4), store=store)
    assert first.returncode == 0, first.stderr
    assert usage_days(sb) == {day(n) for n in range(5)}
    sb.reset_stats()
    second = store_cli(
        sb, tmp_path, "--start-date", day(2), "--end-date", day(6), store=store, out=tmp_path / "a"
    )
    assert second.returncode == 0, second.stderr
    # Only the two new days were asked for; the overlap came from the store.
    assert usage_days(sb) == {day(5), day(6)}
    fresh = store_cli(
        sb, tmp_path, "--start-date", day(2), "--end-date", day(6), out=tmp_path / "b"
    )
    assert fresh.returncode == 0, fresh.stderr
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")


@pytest.mark.parametrize("org_wide", [True, False])
def test_an_identical_rerun_sends_no_usage_request(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox], org_wide: bool
) -> None:
    # org_wide=False: the sandbox refuses org-wide snapshots, so both streams are
    # tracked per customer / instance and must resume from those marks.
    sb = make_sandbox(data=small_org, refuse_org_wide_snapshots=not org_wide)
    store = UsageStore(tmp_path / "store")
    first = store.sync(day(0), day(6), url=sb.url, token=sb.token, options=FAST, progress=False)
    assert first.stats.org_wide_snapshots is org_wide
    sb.reset_stats()
    again = store.sync(day(0), day(6), url=sb.url, token=sb.token, options=FAST, progress=False)
    # Only the two lists: no probe, no usage query of any kind.
    assert {call.field_name for call in sb.stats.calls()} == {"customers", "instances"}
    assert again.stats.requests <= 2
    assert again.fetched_days == {"snapshots": (), "metrics": ()}


def test_reports_from_the_store_equal_a_fresh_run_in_another_zone_with_every_format(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    args = (
        "--start-date",
        day(1),
        "--end-date",
        day(5),
        "--timezone",
        "Europe/Berlin",
        "--columns",
        "extended",
        "--format",
        "both",
        "--summary",
    )
    store = tmp_path / "store"
    assert (
        store_cli(
            sb, tmp_path, "--start-date", day(0), "--end-date", day(3), store=store
        ).returncode
        == 0
    )
    with_store = store_cli(sb, tmp_path, *args, store=store, out=tmp_path / "a")
    assert with_store.returncode == 0, with_store.stderr
    without = store_cli(sb, tmp_path, *args, out=tmp_path / "b")
    assert without.returncode == 0, without.stderr
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert len(files_of(tmp_path / "a")) == 6


def test_fetch_report_with_a_store_equals_one_without(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    kwargs = {"url": sb.url, "token": sb.token, "options": FAST, "progress": False}
    plain = fetch_report(day(1), day(3), **kwargs)  # type: ignore[arg-type]
    stored_report = fetch_report(day(1), day(3), store=tmp_path / "s", **kwargs)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(plain.customer_instances, stored_report.customer_instances)
    pd.testing.assert_frame_equal(plain.instance_compute, stored_report.instance_compute)
    assert stored_report.records.stats.requests > 0


def test_reports_from_the_store_read_no_record_ids_and_equal_those_with_them(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    from prismatic_usage.store.dataset import UsageDataset

    sb = make_sandbox(data=small_org)
    fetch_report(day(1), day(4), url=sb.url, token=sb.token, options=FAST, progress=False,
                 store=tmp_path / "s")  # fmt: skip
    dataset = UsageDataset(tmp_path / "s")
    first, last = DATA_START + dt.timedelta(days=1), DATA_START + dt.timedelta(days=4)
    full = dataset.records(first, last, "America/New_York")
    lean = dataset.records(first, last, "America/New_York", record_ids=False)
    assert full.snapshots.num_rows > 0 and full.daily_metrics.num_rows > 0
    for kind in ("snapshots", "daily_metrics"):
        with_ids, without = getattr(full, kind), getattr(lean, kind)
        assert "id" in with_ids.column_names and "id" not in without.column_names
        assert without.equals(with_ids.drop_columns(["id"]))
    pd.testing.assert_frame_equal(customer_instance_frame(lean), customer_instance_frame(full))
    pd.testing.assert_frame_equal(instance_compute_frame(lean), instance_compute_frame(full))
    # Records read back hold owner IDs as fetched ones do (one sorted dictionary); the
    # store's files hold them as plain strings, which every engine reads as text.
    owners = full.snapshots.column("customer_id")
    assert full.snapshots.schema == SNAPSHOT_SCHEMA
    dictionaries = {tuple(chunk.dictionary.to_pylist()) for chunk in owners.chunks}
    assert dictionaries == {tuple(sorted(set(owners.to_pylist())))}  # one, sorted, all used
    stored = pq.read_table(tmp_path / "s" / "snapshots").column("customer_id")
    assert stored.type == pa.string()
    assert set(owners.to_pylist()) <= set(stored.to_pylist())


# -- restatements and finality --------------------------------------------------------------


def _restated(org: OrgData) -> tuple[OrgData, dict[tuple[str, str], tuple[int, int | None]]]:
    """``org`` with one snapshot changed, one removed and one metric changed; the changes."""
    customers = {c.id for c in org.customers if not c.is_system}
    instances = {i.id for i in org.instances if not i.is_system}
    snaps = [s for s in org.snapshots if s.customer_id in customers]
    changed, removed = snaps[5], snaps[40]
    metric = next(m for m in org.daily_metrics if m.instance_id in instances)
    snapshots = [
        dataclasses.replace(s, deployed_instance_count=s.deployed_instance_count + 5)
        if s is changed
        else s
        for s in org.snapshots
        if s is not removed
    ]
    metrics = [
        dataclasses.replace(m, spend_mb_secs=m.spend_mb_secs + 1000) if m is metric else m
        for m in org.daily_metrics
    ]
    expected = {
        (changed.id, "deployed_instance_count"): (
            changed.deployed_instance_count,
            changed.deployed_instance_count + 5,
        ),
        (removed.id, "deployed_instance_count"): (removed.deployed_instance_count, None),
        (removed.id, "deployed_unique_integration_count"): (
            removed.deployed_unique_integration_count,
            None,
        ),
        (metric.id, "spend_mb_secs"): (metric.spend_mb_secs, metric.spend_mb_secs + 1000),
    }
    days = {changed.snapshot_time.date(), removed.snapshot_time.date(), metric.snapshot_date}
    restated = OrgData(
        customers=org.customers,
        integrations=org.integrations,
        instances=org.instances,
        snapshots=snapshots,
        daily_metrics=metrics,
    )
    return restated, {**expected, ("days", ""): (len(days), None)}


def test_open_days_are_refetched_replaced_and_restatements_recorded(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    store = tmp_path / "store"
    never_final = ("--final-after", "500000")  # every day is still open
    sb = make_sandbox(data=small_org)
    rng = ("--start-date", day(0), "--end-date", day(7))
    assert store_cli(sb, tmp_path, *rng, *never_final, store=store).returncode == 0
    restated, expected = _restated(small_org)
    later = make_sandbox(data=restated)
    result = store_cli(later, tmp_path, *rng, *never_final, store=store)
    assert result.returncode == 0, result.stderr
    days, _ = expected.pop(("days", ""))
    assert f"restated 4 values on {days} days" in result.stdout
    changes = pa.concat_tables(
        [pq.read_table(p) for p in sorted((store / "changes").glob("*.parquet"))]
    ).to_pylist()
    # Changes are keyed by natural key; map the record IDs of the originals to them.
    by_key = {}
    for s in small_org.snapshots:
        by_key[(s.customer_id, s.snapshot_time)] = s.id
    for m in small_org.daily_metrics:
        by_key[(m.instance_id, m.snapshot_date)] = m.id
    seen = {}
    for row in changes:
        key = (
            dt.datetime.fromisoformat(row["key"]).replace(tzinfo=dt.UTC)
            if row["table"] == "snapshots"
            else dt.date.fromisoformat(row["key"])
        )
        record = by_key[(row["entity_id"], key)]
        seen[(record, row["field"])] = (row["old_value"], row["new_value"])
        assert row["run_id"]
    assert seen == expected
    # The store now holds exactly the restated data (one row fewer snapshots).
    ours = {c.id for c in restated.customers if not c.is_system}
    assert stored(store, "snapshots").num_rows == sum(
        1 for s in restated.snapshots if s.customer_id in ours
    )
    # Once final, nothing is fetched again.
    assert store_cli(later, tmp_path, *rng, store=store).returncode == 0
    later.reset_stats()
    assert store_cli(later, tmp_path, *rng, store=store).returncode == 0
    assert usage_days(later) <= {day(0)}  # at most the refused org-wide metrics probe


def test_a_store_keeps_naming_an_instance_deleted_since(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    gone = next(
        i
        for i in small_org.instances
        if not i.is_system and any(m.instance_id == i.id for m in small_org.daily_metrics)
    )
    deleted = OrgData(
        customers=small_org.customers,
        integrations=small_org.integrations,
        instances=[i for i in small_org.instances if i is not gone],
        snapshots=small_org.snapshots,
        daily_metrics=[m for m in small_org.daily_metrics if m.instance_id != gone.id],
    )
    store = UsageStore(tmp_path / "store")
    before = make_sandbox(data=small_org)
    store.sync(day(0), day(3), url=before.url, token=before.token, options=FAST, progress=False)
    after = make_sandbox(data=deleted)
    store.sync(day(0), day(5), url=after.url, token=after.token, options=FAST, progress=False)
    report = fetch_report(
        day(0), day(3), store=store, url=after.url, token=after.token, options=FAST, progress=False
    )
    rows = report.instance_compute[report.instance_compute["Instance ID"] == gone.id]
    expected = sorted(
        m.spend_mb_secs
        for m in small_org.daily_metrics
        if m.instance_id == gone.id and m.snapshot_date <= DATA_START + dt.timedelta(3)
    )
    assert sorted(rows["Execution Mb-Seconds"]) == expected
    assert set(rows["Instance Name"]) == {gone.name}
    instances = pq.read_table(tmp_path / "store" / "instances" / "data.parquet").to_pylist()
    row = next(r for r in instances if r["instance_id"] == gone.id)
    others = [r for r in instances if r["instance_id"] != gone.id]
    assert row["last_seen"] < others[0]["last_seen"]  # not listed by the second run


# -- crash safety --------------------------------------------------------------------------


def _natural_keys_unique(store: Path) -> None:
    for table, keys in (
        ("snapshots", ["customer_id", "snapshot_time"]),
        ("daily_metrics", ["instance_id", "snapshot_date"]),
    ):
        rows = stored(store, table)
        counts = Counter(zip(*(rows.column(k).to_pylist() for k in keys), strict=True))
        assert counts and max(counts.values()) == 1, f"duplicated key in {table}"


def test_sigkill_at_several_points_then_resume_gives_the_uninterrupted_reports(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    data = generate_org(edge_cases=True, seed=5, customers=10, start=DATA_START, days=8)
    from prismatic_usage.sandbox import FaultPlan

    sb = make_sandbox(data=data, refuse_org_wide_snapshots=True, faults=FaultPlan(latency=0.05))
    store = tmp_path / "store"
    args = [
        "--url",
        sb.url,
        "--store",
        str(store),
        "--start-date",
        day(0),
        "--end-date",
        day(7),
        "--output-dir",
        str(tmp_path / "killed"),
        "--concurrency",
        "2",
        "--pack",
        "1",
        "--rate",
        "10000",
        "--quiet",
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRISM")}
    environment["PRISMATIC_API_KEY"] = sb.token
    full = store_cli(
        sb,
        tmp_path,
        "--start-date",
        day(0),
        "--end-date",
        day(7),
        "--concurrency",
        "2",
        "--pack",
        "1",
        out=tmp_path / "fresh",
    )
    assert full.returncode == 0, full.stderr
    full_requests = sb.stats.served
    killed_at_work = 0
    # Kill after a given number of served requests, not after a delay, so that the
    # kills land mid-fetch on fast and slow machines alike (each run resumes the last).
    for served in (22, 18, 14, 10):
        sb.reset_stats()
        process = subprocess.Popen(
            [sys.executable, "-m", "prismatic_usage", *args],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while sb.stats.served < served and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed_at_work += process.returncode == -signal.SIGKILL
    assert killed_at_work >= 2  # the kills landed while requests were being made
    sb.reset_stats()
    resumed = subprocess.run(
        [sys.executable, "-m", "prismatic_usage", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    # Work survived the kills: the last run needed fewer requests than a whole run.
    assert sb.stats.served < full_requests
    assert files_of(tmp_path / "killed") == files_of(tmp_path / "fresh")
    _natural_keys_unique(store)
    assert not list((store / "_staging").glob("*/*"))
    outcomes = [
        json.loads(p.read_text())["outcome"] for p in sorted((store / "runs").glob("*.json"))
    ]
    # Killed runs never finished; the run that merged their journal says so.
    assert outcomes[-1] == "ok" and outcomes.count("interrupted") >= 2
    assert "running" not in outcomes


def test_a_commit_that_fails_halfway_is_finished_by_the_next_run(
    tmp_path: Path,
    small_org: OrgData,
    make_sandbox: Callable[..., Sandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sb = make_sandbox(data=small_org)
    kwargs = {"url": sb.url, "token": sb.token, "options": FAST, "progress": False}
    reference = UsageStore(tmp_path / "reference")
    reference.sync(day(0), day(5), **kwargs)  # type: ignore[arg-type]
    broken = UsageStore(tmp_path / "broken")
    real_write = commit_module.write_parquet_atomically
    writes = []

    def failing_write(path: Path, table: pa.Table) -> None:
        writes.append(path)
        if len(writes) == 6:
            raise OSError(28, "No space left on device", str(path))
        real_write(path, table)

    monkeypatch.setattr(commit_module, "write_parquet_atomically", failing_write)
    with pytest.raises(StoreError, match="No space left on device"):
        broken.sync(day(0), day(5), **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(commit_module, "write_parquet_atomically", real_write)
    assert list((tmp_path / "broken" / "_staging").glob("*/*"))  # the batch waits
    sb.reset_stats()
    broken.sync(day(0), day(5), **kwargs)  # type: ignore[arg-type]
    assert usage_days(sb) <= {day(0)}  # recovered from the journal, not refetched
    for table in ("snapshots", "daily_metrics"):
        assert stored(tmp_path / "broken", table).equals(stored(tmp_path / "reference", table))
    _natural_keys_unique(tmp_path / "broken")


def test_a_second_run_on_a_busy_store_is_refused_in_one_line(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    from prismatic_usage.sandbox import FaultPlan

    sb = make_sandbox(data=small_org, faults=FaultPlan(latency=0.4))
    store = tmp_path / "store"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRISM")}
    environment["PRISMATIC_API_KEY"] = sb.token
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prismatic_usage",
            "--url",
            sb.url,
            "--store",
            str(store),
            "--start-date",
            day(0),
            "--end-date",
            day(3),
            "--output-dir",
            str(tmp_path / "one"),
            "--quiet",
        ],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ((store / ".lock").exists() and (store / ".lock").read_text()):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = store_cli(
        sb,
        tmp_path,
        "--start-date",
        day(0),
        "--end-date",
        day(3),
        store=store,
        out=tmp_path / "two",
    )
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1
    assert "in use by another run" in second.stderr and f"pid {first.pid}" in second.stderr
    assert not (tmp_path / "two" / "customer-instance-data.csv").exists()
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    with pytest.raises(StoreLockedError):
        lock = StoreLock(store)
        lock.acquire()
        try:
            UsageStore(store).sync(day(0), day(1), url=sb.url, token=sb.token, progress=False)
        finally:
            lock.release()


# -- the dataset contract ----------------------------------------------------------------------


def test_the_dataset_has_one_schema_in_every_file_empty_partitions_included(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    store = UsageStore(tmp_path / "store")
    # Two days past the data: their partitions exist, empty, with the same schema.
    store.sync(day(6), day(9), url=sb.url, token=sb.token, options=FAST, progress=False)
    for table, contract in (("snapshots", SNAPSHOT_CONTRACT), ("daily_metrics", METRIC_CONTRACT)):
        files = sorted((tmp_path / "store" / table).glob("date=*/data.parquet"))
        assert [f.parent.name for f in files] == [f"date={day(n)}" for n in range(6, 10)]
        for f in files:
            schema = pq.read_schema(f)
            assert schema.remove_metadata().equals(contract), f
        assert pq.read_metadata(files[-1]).num_rows == 0
    customers = pq.read_schema(tmp_path / "store" / "customers" / "data.parquet")
    assert customers.names == ["customer_id", "name", "external_id", "first_seen", "last_seen"]
    instances = pq.read_schema(tmp_path / "store" / "instances" / "data.parquet")
    assert instances.names == [
        "instance_id",
        "name",
        "customer_id",
        "integration_name",
        "first_seen",
        "last_seen",
    ]


def test_duckdb_and_polars_read_the_store_and_get_the_frames_sums_exactly(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    root = tmp_path / "store"
    report = fetch_report(
        day(0), day(7), store=root, url=sb.url, token=sb.token, options=FAST, progress=False
    )
    frame = report.instance_compute
    big = frame["Execution Mb-Seconds"] > 2**53
    assert big.any()  # the sums below include values a float cannot hold
    expected = {
        cid: int(total)
        for cid, total in frame.groupby("Customer ID")["Execution Mb-Seconds"].sum().items()
    }
    # The README's query: a billing month per customer.
    sql = f"""
        SELECT i.customer_id, sum(m.spend_mb_secs) AS mb_seconds,
               sum(m.successful_execution_count + m.failed_execution_count) AS executions
        FROM read_parquet('{root}/daily_metrics/*/*.parquet', hive_partitioning = true) AS m
        JOIN read_parquet('{root}/instances/data.parquet') AS i USING (instance_id)
        WHERE m.snapshot_date BETWEEN DATE '2024-12-01' AND DATE '2024-12-31'
        GROUP BY i.customer_id
    """
    rows = duckdb.sql(sql).fetchall()
    assert {cid: int(mb) for cid, mb, _ in rows} == expected
    executions = frame["Successful Executions"] + frame["Failed Executions"]
    assert sum(int(e) for _, _, e in rows) == int(executions.sum())
    metrics = pl.scan_parquet(f"{root}/daily_metrics/**/*.parquet", hive_partitioning=True)
    instances = pl.read_parquet(root / "instances" / "data.parquet").lazy()
    by_customer = (
        metrics.join(instances, on="instance_id")
        .group_by("customer_id")
        .agg(pl.col("spend_mb_secs").cast(pl.Int128).sum().alias("mb_seconds"))
        .collect()
    )
    assert {r["customer_id"]: int(r["mb_seconds"]) for r in by_customer.to_dicts()} == expected
    # Top compute instances agree with the frame, too.
    top = duckdb.sql(
        f"SELECT instance_id, sum(spend_mb_secs) AS s FROM "
        f"read_parquet('{root}/daily_metrics/*/*.parquet', hive_partitioning = true) "
        "GROUP BY instance_id ORDER BY s DESC, instance_id LIMIT 3"
    ).fetchall()
    per_instance = frame.groupby("Instance ID")["Execution Mb-Seconds"].sum()
    assert [(i, int(s)) for i, s in top] == [
        (i, int(per_instance[i]))
        for i in sorted(per_instance.index, key=lambda i: (-int(per_instance[i]), i))[:3]
    ]
    # Daily deployed instances: the snapshots' daily mean equals the frame's.
    daily = duckdb.sql(
        f"SELECT customer_id, CAST(snapshot_time AT TIME ZONE 'UTC' AS DATE) AS d, "
        f"avg(deployed_instance_count) AS mean FROM "
        f"read_parquet('{root}/snapshots/*/*.parquet', hive_partitioning = true) GROUP BY ALL"
    ).fetchall()
    ours = report.customer_instances
    lookup = {
        (r["Customer ID"], r["Date"].date()): r["Deployed Instances"]
        for r in ours.to_dict("records")
    }
    assert len(daily) == len(ours)
    for cid, d, mean in daily:
        assert lookup[(cid, d)] == pytest.approx(mean, rel=1e-12)


# -- the command line and the manifest ----------------------------------------------------------


def test_manifest_records_the_run_and_no_file_holds_the_token(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    store = tmp_path / "store"
    result = store_cli(sb, tmp_path, "--start-date", day(0), "--end-date", day(2), store=store)
    assert result.returncode == 0, result.stderr
    (manifest_path,) = (store / "runs").glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["outcome"] == "ok"
    assert manifest["start_date"] == day(0) and manifest["end_date"] == day(2)
    assert manifest["api_host"] == "127.0.0.1" and manifest["tz"] == "UTC"
    assert manifest["requests"] > 0 and manifest["retries"] == 0
    assert manifest["rows"]["snapshots"]["added"] == stored(store, "snapshots").num_rows
    written = {Path(f["path"]).name for f in manifest["files"]}
    assert {"customer-instance-data.csv", "instance-compute-data.csv", "data.parquet"} <= written
    import hashlib

    for entry in manifest["files"]:
        assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    token = sb.token.encode()
    for path in store.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), path
    info = run_cli("store", "info", str(store), cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert f"snapshots: {stored(store, 'snapshots').num_rows:,} rows, {day(0)} to {day(2)}" in (
        info.stdout
    )
    assert "ok, 2024-12-01 to 2024-12-03" in info.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo", "--store", "s", "--last-days", "3"], "cannot feed a --store"),
        (["--last-days", "3", "--month", "previous"], "give the range one way"),
        (["--start-date", "2024-12-01"], "go together"),
        (["--month", "2024-13"], "is not a month"),
    ],
)
def test_range_and_store_mistakes_are_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli(*args, cwd=tmp_path, env={"PRISMATIC_API_KEY": "x"})
    assert result.returncode == 2
    assert message in result.stderr


def test_a_directory_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a usage store"):
        UsageStore(tmp_path)
    result = run_cli("store", "info", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "not a usage store" in result.stderr


@pytest.mark.parametrize(
    ("given", "today", "expected"),
    [
        ({"last_days": 7}, "2025-03-01", ("2025-02-22", "2025-02-28")),
        ({"month": "previous"}, "2025-03-01", ("2025-02-01", "2025-02-28")),
        ({"month": "previous"}, "2025-01-15", ("2024-12-01", "2024-12-31")),
        ({"month": "current"}, "2024-02-29", ("2024-02-01", "2024-02-29")),
        ({"month": "2024-02"}, "2025-01-01", ("2024-02-01", "2024-02-29")),
        (
            {"start_date": dt.date(2025, 1, 2), "end_date": dt.date(2025, 1, 3)},
            "2025-05-05",
            ("2025-01-02", "2025-01-03"),
        ),
    ],
)
def test_scheduling_ranges(given: dict[str, object], today: str, expected: tuple[str, str]) -> None:
    args = argparse.Namespace(start_date=None, end_date=None, last_days=None, month=None)
    vars(args).update(given)
    first, last = resolve_range(args, dt.date.fromisoformat(today))
    assert (first.isoformat(), last.isoformat()) == expected


def test_no_range_at_all_is_a_usage_error() -> None:
    args = argparse.Namespace(start_date=None, end_date=None, last_days=None, month=None)
    with pytest.raises(UsageError):
        resolve_range(args, dt.date(2025, 1, 1))


@pytest.mark.parametrize("org_wide", [True, False])
def test_a_new_customer_and_instance_get_their_history_fetched_once(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox], org_wide: bool
) -> None:
    """A customer (with an instance) the store never saw gets every requested day, once."""
    newcomer = generate_org(
        edge_cases=True, seed=99, customers=1, start=DATA_START, days=8, system_customers=0
    )
    customer = newcomer.customers[0]
    instances = [i for i in newcomer.instances if i.customer_id == customer.id and not i.is_system]
    assert instances and any(m.instance_id == instances[0].id for m in newcomer.daily_metrics)
    grown = OrgData(
        customers=[*small_org.customers, customer],
        integrations=[*small_org.integrations, *newcomer.integrations],
        instances=[*small_org.instances, *newcomer.instances],
        snapshots=[*small_org.snapshots, *newcomer.snapshots],
        daily_metrics=[*small_org.daily_metrics, *newcomer.daily_metrics],
    )
    store = UsageStore(tmp_path / "store")
    before = make_sandbox(data=small_org, refuse_org_wide_snapshots=not org_wide)
    store.sync(day(0), day(5), url=before.url, token=before.token, options=FAST, progress=False)
    after = make_sandbox(data=grown, refuse_org_wide_snapshots=not org_wide)
    kwargs = {"url": after.url, "token": after.token, "options": FAST, "progress": False}
    store.sync(day(0), day(5), **kwargs)  # type: ignore[arg-type]
    asked = {
        str(c.arguments.get("customer") or c.arguments.get("instance"))
        for c in after.stats.calls()
        if c.field_name.endswith("UsageMetrics")
    }
    assert asked - {"None"} == {customer.id, *(i.id for i in instances)}
    rows = stored(tmp_path / "store", "snapshots").to_pylist()
    theirs = sorted(r["record_id"] for r in rows if r["customer_id"] == customer.id)
    assert theirs == sorted(
        s.id for s in newcomer.snapshots if s.snapshot_time.date() <= DATA_START + dt.timedelta(5)
    )
    after.reset_stats()
    store.sync(day(0), day(5), **kwargs)  # type: ignore[arg-type]
    assert usage_days(after) == set()  # once: the third run fetches no usage


def test_commits_during_a_long_run_give_the_same_store(
    tmp_path: Path,
    small_org: OrgData,
    make_sandbox: Callable[..., Sandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Merging every few hundred rows mid-run (memory stays bounded) changes nothing."""
    from prismatic_usage import store_sink

    sb = make_sandbox(data=small_org, refuse_org_wide_snapshots=True)
    kwargs = {"url": sb.url, "token": sb.token, "options": FAST, "progress": False}
    UsageStore(tmp_path / "once").sync(day(0), day(7), **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(store_sink, "_COMMIT_ROWS", 300)
    from prismatic_usage.store.dataset import UsageDataset

    merges = []
    real_recover = UsageDataset.recover

    def counting_recover(self: UsageDataset, *, now: dt.datetime) -> object:
        merges.append(now)
        return real_recover(self, now=now)

    monkeypatch.setattr(UsageDataset, "recover", counting_recover)
    often = UsageStore(tmp_path / "often").sync(day(0), day(7), **kwargs)  # type: ignore[arg-type]
    assert len(merges) >= 3  # the recovery at the start, at least one mid-run, the last
    assert len(list((tmp_path / "often" / "runs").glob("*.json"))) == 1
    assert often.counts["snapshots"].added == stored(tmp_path / "once", "snapshots").num_rows
    for table in ("snapshots", "daily_metrics"):
        assert stored(tmp_path / "often", table).equals(stored(tmp_path / "once", table))
    assert pq.read_table(tmp_path / "often" / "_state" / "complete.parquet").num_rows == (
        pq.read_table(tmp_path / "once" / "_state" / "complete.parquet").num_rows
    )


def test_a_kill_while_merged_batches_are_deleted_loses_nothing(
    tmp_path: Path,
    small_org: OrgData,
    make_sandbox: Callable[..., Sandbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found in review: a batch torn by a kill mid-deletion was merged again as if whole."""
    from prismatic_usage.store import journal

    sb = make_sandbox(data=small_org)
    kwargs = {"url": sb.url, "token": sb.token, "options": FAST, "progress": False}
    UsageStore(tmp_path / "reference").sync(day(0), day(4), **kwargs)  # type: ignore[arg-type]
    real_rmtree = journal.shutil.rmtree

    def killed_midway(path: Path, **_: object) -> None:
        for victim in sorted(Path(path).glob("*.parquet"))[:2]:
            victim.unlink()  # some files are gone ...
        raise KeyboardInterrupt  # ... when the process dies

    monkeypatch.setattr(journal.shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        UsageStore(tmp_path / "torn").sync(day(0), day(4), **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(journal.shutil, "rmtree", real_rmtree)
    sb.reset_stats()
    UsageStore(tmp_path / "torn").sync(day(0), day(4), **kwargs)  # type: ignore[arg-type]
    for table in ("snapshots", "daily_metrics"):
        assert stored(tmp_path / "torn", table).equals(stored(tmp_path / "reference", table))
    assert usage_days(sb) == set()  # everything had been merged before the kill
    assert not list((tmp_path / "torn" / "_staging").glob("*/*"))


def test_two_syncs_in_one_run_keep_both_restatements_and_both_in_the_manifest(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    """Found in review: the second sync's batch names repeated the first's."""
    store = UsageStore(tmp_path / "store")
    open_days = 500_000.0
    first = make_sandbox(data=small_org)
    store.sync(
        day(0),
        day(7),
        url=first.url,
        token=first.token,
        options=FAST,
        final_after=open_days,
        progress=False,
    )
    restated, _ = _restated(small_org)
    later = make_sandbox(data=restated)
    with store.run() as run:
        one = run.sync(
            day(0),
            day(3),
            url=later.url,
            token=later.token,
            options=FAST,
            final_after=open_days,
            progress=False,
        )
        two = run.sync(
            day(4),
            day(7),
            url=later.url,
            token=later.token,
            options=FAST,
            final_after=open_days,
            progress=False,
        )
        run_id = run.run_id
    assert one.changes + two.changes == 4
    recorded = pa.concat_tables(
        [pq.read_table(p) for p in (tmp_path / "store" / "changes").glob("*.parquet")]
    )
    assert recorded.filter(pa.compute.equal(recorded["run_id"], run_id)).num_rows == 4
    manifest = json.loads((tmp_path / "store" / "runs" / f"{run_id}.json").read_text())
    assert [(s["start_date"], s["end_date"]) for s in manifest["syncs"]] == [
        (day(0), day(3)),
        (day(4), day(7)),
    ]
    assert manifest["changes"] == 4
    assert manifest["requests"] == one.stats.requests + two.stats.requests


@pytest.mark.parametrize("org_wide", [True, False])
def test_a_new_customers_first_rows_on_an_open_day_are_no_restatement(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox], org_wide: bool
) -> None:
    """Found in review: org-wide, a new customer's first rows were logged as restatements."""
    newcomer = generate_org(
        edge_cases=True, seed=99, customers=1, start=DATA_START, days=8, system_customers=0
    )
    grown = OrgData(
        customers=[*small_org.customers, *newcomer.customers],
        integrations=[*small_org.integrations, *newcomer.integrations],
        instances=[*small_org.instances, *newcomer.instances],
        snapshots=[*small_org.snapshots, *newcomer.snapshots],
        daily_metrics=[*small_org.daily_metrics, *newcomer.daily_metrics],
    )
    store = UsageStore(tmp_path / "store")
    for data in (small_org, grown):
        sb = make_sandbox(data=data, refuse_org_wide_snapshots=not org_wide)
        result = store.sync(
            day(0),
            day(5),
            url=sb.url,
            token=sb.token,
            options=FAST,
            final_after=500_000,
            progress=False,
        )
        assert result.changes == 0
    assert not list((tmp_path / "store" / "changes").glob("*.parquet"))


def test_final_after_beyond_a_millennium_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(
        "--last-days", "3", "--final-after", "1e12", cwd=tmp_path, env={"PRISMATIC_API_KEY": "x"}
    )
    assert result.returncode == 2 and "more than a millennium" in result.stderr
    with pytest.raises(ConfigurationError):
        UsageStore(tmp_path / "s").sync(
            day(0), day(1), url="http://127.0.0.1:9", token="t", final_after=-1
        )


def test_a_store_whose_creation_was_killed_can_be_used(tmp_path: Path) -> None:
    """Found in review: a leftover temporary marker made the folder 'not a store'."""
    (tmp_path / ".store.json.0a1b2c.tmp").write_text("{")
    UsageStore(tmp_path)
    assert json.loads((tmp_path / "store.json").read_text())["version"] == 1


def test_a_dry_run_with_a_store_estimates_only_the_days_it_lacks(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    store = tmp_path / "store"
    assert store_cli(sb, tmp_path, "--start-date", day(0), "--end-date", day(4),
                     store=store).returncode == 0  # fmt: skip
    sb.reset_stats()
    dry = store_cli(sb, tmp_path, "--start-date", day(0), "--end-date", day(6), "--dry-run",
                    store=store)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "the store holds 5 of the 7 days; 2 to fetch" in dry.stdout
    assert {c.field_name for c in sb.stats.calls()} == {"customers", "instances"}
    full = store_cli(sb, tmp_path, "--start-date", day(0), "--end-date", day(6), "--dry-run")
    fewer = int(dry.stdout.split(" requests")[0].rsplit("~", 1)[1])
    more = int(full.stdout.split(" requests")[0].rsplit("~", 1)[1])
    assert 0 < fewer < more
    done = store_cli(sb, tmp_path, "--start-date", day(0), "--end-date", day(4), "--dry-run",
                     store=store)  # fmt: skip
    assert "the store holds 5 of the 5 days; 0 to fetch" in done.stdout
    assert "in ~0 requests" in done.stdout


def test_store_info_counts_a_day_open_until_it_is_final_for_everyone(
    tmp_path: Path, small_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=small_org)
    store = UsageStore(tmp_path / "store")
    kwargs = {"url": sb.url, "token": sb.token, "options": FAST, "progress": False}
    store.sync(day(0), day(2), final_after=500_000, **kwargs)  # type: ignore[arg-type]
    opened = [DATA_START + dt.timedelta(days=n) for n in range(3)]
    assert store.info().open_days == {"snapshots": opened, "daily_metrics": opened}
    store.sync(day(0), day(1), **kwargs)  # type: ignore[arg-type]  # final now
    assert store.info().open_days == {"snapshots": opened[2:], "daily_metrics": opened[2:]}
    assert store.missing_days(day(0), day(3)) == 2  # the open day and the new one
