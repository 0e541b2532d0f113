"""The fetcher against the sandbox, over real HTTP through gql's aiohttp transport."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from prismatic_usage.client import fetch_usage, fetch_usage_async, snapshot_time_bounds
from prismatic_usage.config import FetchOptions
from prismatic_usage.sandbox import OrgData, Sandbox, generate_org
from prismatic_usage.sandbox.data import (
    Customer,
    DailyMetric,
    Instance,
    Integration,
    Snapshot,
    global_id,
)

from .expected import actual_records, expected_records

UTC = dt.UTC
START, END = dt.date(2025, 1, 10), dt.date(2025, 1, 12)
BIG = 2**53 + 1
FAST = FetchOptions(requests_per_second=None)


def _id(kind: str, n: int) -> str:
    return global_id(kind, uuid.UUID(int=n))


def hand_made_org() -> OrgData:
    """Three customers (two named alike, one system) with snapshots on both edges of the range."""
    acme1, acme2, system = _id("Customer", 1), _id("Customer", 2), _id("Customer", 3)
    integ = Integration(id=_id("Integration", 1), name="Salesforce")
    customers = [
        Customer(id=acme1, name="Acme", external_id="ext-1"),
        Customer(id=acme2, name="Acme", external_id=None),
        Customer(id=system, name="System", is_system=True),
    ]
    i1, i2, i3 = _id("Instance", 1), _id("Instance", 2), _id("Instance", 3)
    instances = [
        Instance(id=i1, name="HubSpot", customer_id=acme1, integration_id=integ.id),
        Instance(id=i2, name="HubSpot", customer_id=acme2, integration_id=integ.id),
        Instance(
            id=i3, name="Internal", customer_id=system, integration_id=integ.id, is_system=True
        ),
    ]
    times = [
        dt.datetime(2025, 1, 9, 23, 59, 59, 999999, UTC),  # out: before the range
        dt.datetime(2025, 1, 10, 0, 0, 0, tzinfo=UTC),  # in: first instant
        dt.datetime(2025, 1, 11, 12, 30, 1, 529783, UTC),
        dt.datetime(2025, 1, 12, 23, 59, 59, 999999, UTC),  # in: last instant
        dt.datetime(2025, 1, 13, 0, 0, 0, tzinfo=UTC),  # out: after the range
    ]
    snapshots = [
        Snapshot(
            id=_id("CustomerTotalUsageMetrics", 100 * c + n),
            customer_id=cid,
            snapshot_time=t,
            deployed_instance_count=n + c,
            deployed_unique_integration_count=1,
        )
        for c, cid in enumerate((acme1, acme2, system))
        for n, t in enumerate(times)
    ]
    days = [dt.date(2025, 1, d) for d in (9, 10, 11, 12, 13)]
    metrics = [
        DailyMetric(
            id=_id("InstanceDailyUsageMetrics", 100 * k + n),
            instance_id=iid,
            snapshot_date=day,
            successful_execution_count=BIG if n == 2 else n,
            failed_execution_count=k,
            step_count=4 * n,
            spend_mb_secs=BIG + n,
        )
        for k, iid in enumerate((i1, i2, i3))
        for n, day in enumerate(days)
    ]
    return OrgData(
        customers=customers,
        integrations=[integ],
        instances=instances,
        snapshots=snapshots,
        daily_metrics=metrics,
    )


def test_hand_made_range_edges_names_and_bigints(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(data=hand_made_org())
    records = fetch_usage(START, END, url=sb.url, token=sb.token, options=FAST)
    got = actual_records(records)
    assert got == expected_records(sb.data, START, END)
    # Independent of expected_records: what the hand-made org was built to contain.
    assert sorted(name for _, name, _ in got["customers"]) == ["Acme", "Acme"]
    assert len(got["snapshots"]) == 2 * 3  # three in-range instants per non-system customer
    times = {row[2] for row in got["snapshots"]}
    assert dt.datetime(2025, 1, 12, 23, 59, 59, 999999, UTC) in times
    assert dt.datetime(2025, 1, 10, 0, 0, tzinfo=UTC) in times
    assert max(row[3] for row in got["daily_metrics"]) == BIG
    assert {row[2] for row in got["daily_metrics"]} == {START, dt.date(2025, 1, 11), END}
    assert records.daily_metrics.column("spend_mb_secs").type == "int64"


@pytest.mark.parametrize("org_wide", [True, False])
def test_snapshot_owner_ids_share_one_sorted_dictionary_of_known_customers(
    make_sandbox: Callable[..., Sandbox], org_wide: bool
) -> None:
    # Per-customer streams (org_wide=False) convert apart: one dictionary each, before
    # the fetch gives them one; org-wide ones also carry system customers' IDs.
    data = generate_org(seed=4, customers=6, start=START, days=3)
    sb = make_sandbox(data=data)
    options = dataclasses.replace(FAST, org_wide=org_wide)
    records = fetch_usage(START, END, url=sb.url, token=sb.token, options=options)
    owners = records.snapshots.column("customer_id")
    assert pa.types.is_dictionary(owners.type) and owners.num_chunks >= 1
    with_usage = sorted(
        {s.customer_id for s in data.snapshots} - {c.id for c in data.customers if c.is_system}
    )
    for chunk in owners.chunks:  # one sorted dictionary: exactly the customers with snapshots
        assert chunk.dictionary.to_pylist() == with_usage
    # So Arrow groups and joins on it, and pandas sorts it, as it would the text.
    counts = records.snapshots.group_by("customer_id").aggregate([("id", "count")])
    assert sorted(counts.column("customer_id").to_pylist()) == with_usage
    joined = records.snapshots.join(records.customers, keys="customer_id", right_keys="id")
    assert joined.num_rows == records.snapshots.num_rows
    frame = records.snapshots.to_pandas()
    assert frame["customer_id"].sort_values().tolist() == sorted(owners.to_pylist())


def test_time_bounds_cover_whole_days_in_the_zone() -> None:
    assert snapshot_time_bounds(START, END, "UTC") == (
        "2025-01-10T00:00:00.000000+00:00",
        "2025-01-12T23:59:59.999999+00:00",
    )
    # Berlin is UTC+1 in January: its days start at 23:00 UTC the day before.
    assert snapshot_time_bounds(START, END, "Europe/Berlin") == (
        "2025-01-09T23:00:00.000000+00:00",
        "2025-01-12T22:59:59.999999+00:00",
    )


def test_timezone_moves_the_fetched_window(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(data=hand_made_org())
    records = fetch_usage(
        START, END, url=sb.url, token=sb.token, tz="America/Chicago", options=FAST
    )
    assert actual_records(records) == expected_records(sb.data, START, END, "America/Chicago")
    times = set(records.snapshots.column("snapshot_time").to_pylist())
    # 2025-01-13 00:00 UTC is 18:00 on the 12th in Chicago: inside the range now.
    assert dt.datetime(2025, 1, 13, tzinfo=UTC) in times


def _requests_by_shape(sb: Sandbox) -> list[list[str]]:
    return [[field.field_name for field in entry.root_fields] for entry in sb.stats.request_log]


def test_fifty_customers_exact_and_no_page_fetched_twice(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    start = dt.date(2024, 12, 1)
    data = generate_org(edge_cases=True, seed=7, customers=50, start=start, days=31)
    sb = make_sandbox(data=data)
    end = start + dt.timedelta(days=30)
    records = fetch_usage(start, end, url=sb.url, token=sb.token, options=FAST)
    assert actual_records(records) == expected_records(data, start, end)
    pages: Counter[tuple[Any, ...]] = Counter()
    for entry in sb.stats.request_log:
        for field in entry.root_fields:
            args = field.arguments
            pages[
                (field.field_name, args.get("customer"), args.get("instance"), args.get("offset"))
            ] += 1
    assert max(pages.values()) == 1, [k for k, v in pages.items() if v > 1][:3]
    # Pages the data needs at 100 nodes a page, plus one refused org-wide metrics probe.
    expected = expected_records(data, start, end)
    needed = -(-len(expected["customers"]) // 100) + -(-len(expected["instances"]) // 100)
    org_snapshots = sum(1 for s in data.snapshots if start <= s.snapshot_time.date() <= end)
    needed += -(-org_snapshots // 100)
    needed += sum(
        max(
            1,
            -(
                -sum(
                    1
                    for m in data.daily_metrics
                    if m.instance_id == i[0] and start <= m.snapshot_date <= end
                )
                // 100
            ),
        )
        for i in expected["instances"]
    )
    assert sum(pages.values()) == needed + 1
    assert records.stats.org_wide_snapshots and not records.stats.org_wide_metrics


@pytest.mark.parametrize("pack", [1, 3, 10])
@pytest.mark.parametrize("page_size", [7, 100])
def test_packing_and_page_sizes_give_identical_records(
    sandbox: Sandbox, pack: int, page_size: int
) -> None:
    start, end = _sandbox_range(sandbox)
    options = FetchOptions(requests_per_second=None, pack=pack, page_size=page_size)
    records = fetch_usage(start, end, url=sandbox.url, token=sandbox.token, options=options)
    assert actual_records(records) == expected_records(sandbox.data, start, end)
    assert records.stats.pack <= pack


def _sandbox_range(sb: Sandbox) -> tuple[dt.date, dt.date]:
    days = sorted({m.snapshot_date for m in sb.data.daily_metrics})
    return days[1], days[-2]


@pytest.mark.parametrize("org_wide", [True, False])
@pytest.mark.parametrize("refuse_snapshots", [True, False])
@pytest.mark.parametrize("require_instance", [True, False])
def test_org_wide_and_per_entity_fallbacks(
    make_sandbox: Callable[..., Sandbox],
    org_wide: bool,
    refuse_snapshots: bool,
    require_instance: bool,
) -> None:
    data = generate_org(edge_cases=True, seed=3, customers=8, start=dt.date(2025, 3, 1), days=4)
    sb = make_sandbox(
        data=data,
        refuse_org_wide_snapshots=refuse_snapshots,
        require_instance_for_daily_metrics=require_instance,
    )
    start, end = dt.date(2025, 3, 1), dt.date(2025, 3, 4)
    options = FetchOptions(requests_per_second=None, org_wide=org_wide)
    records = fetch_usage(start, end, url=sb.url, token=sb.token, options=options)
    assert actual_records(records) == expected_records(data, start, end)
    assert records.stats.org_wide_snapshots == (org_wide and not refuse_snapshots)
    assert records.stats.org_wide_metrics == (org_wide and not require_instance)
    org_wide_calls = [
        field
        for entry in sb.stats.request_log
        for field in entry.root_fields
        if field.field_name in ("customerTotalUsageMetrics", "instanceDailyUsageMetrics")
        and not (field.arguments.get("customer") or field.arguments.get("instance"))
    ]
    # One probe per stream when org-wide is on (refused or not), none when off.
    probes = [c for c in org_wide_calls if c.arguments.get("offset") == 0]
    assert len(probes) == (2 if org_wide else 0)


def test_concurrency_bound_is_respected(make_sandbox: Callable[..., Sandbox]) -> None:
    from prismatic_usage.sandbox import FaultPlan

    data = generate_org(edge_cases=True, seed=5, customers=20, start=dt.date(2025, 3, 1), days=3)
    sb = make_sandbox(data=data, faults=FaultPlan(latency=0.05))
    options = FetchOptions(requests_per_second=None, concurrency=3, pack=1)
    records = fetch_usage(
        dt.date(2025, 3, 1), dt.date(2025, 3, 3), url=sb.url, token=sb.token, options=options
    )
    assert sb.stats.max_in_flight == 3
    assert records.stats.max_in_flight == 3


async def test_async_api_and_sync_api_inside_a_running_loop(sandbox: Sandbox) -> None:
    start, end = _sandbox_range(sandbox)
    # The sync API, called from a coroutine (as in a notebook cell), must not fail.
    in_loop = fetch_usage(start, end, url=sandbox.url, token=sandbox.token, options=FAST)
    awaited = await fetch_usage_async(
        start, end, url=sandbox.url, token=sandbox.token, options=FAST
    )
    assert actual_records(in_loop) == actual_records(awaited)
    assert asyncio.get_running_loop().is_running()


def test_packed_documents_split_under_a_root_field_limit(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    from prismatic_usage.sandbox import FaultPlan

    data = generate_org(edge_cases=True, seed=11, customers=10, start=dt.date(2025, 3, 1), days=3)
    start, end = dt.date(2025, 3, 1), dt.date(2025, 3, 3)
    plain = make_sandbox(data=data)
    reference = fetch_usage(
        start,
        end,
        url=plain.url,
        token=plain.token,
        options=FetchOptions(requests_per_second=None, pack=1),
    )
    limited = make_sandbox(data=data, faults=FaultPlan(max_root_fields=3))
    records = fetch_usage(
        start,
        end,
        url=limited.url,
        token=limited.token,
        options=FetchOptions(requests_per_second=None, pack=10),
    )
    assert actual_records(records) == actual_records(reference)
    assert records.stats.pack <= 3 and records.stats.splits >= 1
    # Bounded cost: a few refused requests, never more than the unpacked run.
    assert records.stats.requests <= reference.stats.requests
    # Worked by hand: full pages blame the nodes first (1,000 -> 500 -> 250 nodes: two
    # refusals, then 2 pages pass), then packs of 3-node units blame the fields, halfway
    # back to the 2 answered each time (20 -> 11 -> 6 -> 4 -> 3: at most four more).
    assert records.stats.splits <= 6


def test_estimate_arithmetic_by_hand() -> None:
    from prismatic_usage import FetchEstimate

    day = dt.date(2025, 1, 1)
    # 10 customers x 24 snapshots over 1 day = 240 snapshots = 3 org-wide pages;
    # 5 instances x 1 page; probes alone (2 requests), then 2 + 5 pages in 1 pack of 10.
    estimate = FetchEstimate.from_counts(
        day, day, customers=10, instances=5, options=FetchOptions(requests_per_second=2.0)
    )
    assert (estimate.snapshot_pages, estimate.metric_pages, estimate.requests) == (3, 5, 3)
    assert estimate.seconds == pytest.approx(3 / (2.0 * 0.95))  # paced at 95% of 2 req/s
    per_entity = FetchEstimate.from_counts(
        day, day, customers=10, instances=5, options=FetchOptions(org_wide=False, pack=1)
    )
    assert (per_entity.snapshot_pages, per_entity.requests) == (10, 15)


def test_estimate_is_close_to_the_real_cost(make_sandbox: Callable[..., Sandbox]) -> None:
    from prismatic_usage import estimate_fetch

    start = dt.date(2024, 12, 1)
    end = start + dt.timedelta(days=9)
    sb = make_sandbox(
        data=generate_org(edge_cases=True, seed=9, customers=30, start=start, days=10)
    )
    estimate = estimate_fetch(start, end, url=sb.url, token=sb.token, options=FAST)
    assert {c.field_name for c in sb.stats.calls()} == {"customers", "instances"}
    records = fetch_usage(start, end, url=sb.url, token=sb.token, options=FAST)
    assert estimate.customers == records.customers.num_rows
    assert estimate.instances == records.instances.num_rows
    # Hourly snapshots have gaps and system customers add org-wide pages: within 20 %.
    assert abs(estimate.requests - records.stats.requests) <= 0.2 * records.stats.requests + 1


def test_collector_keeps_known_owners_rows_in_order_across_batches() -> None:
    import pyarrow as pa

    from prismatic_usage.client import Collector
    from prismatic_usage.records import SNAPSHOT_SCHEMA
    from prismatic_usage.units import StreamResult

    def stream(rows: list[tuple[str, str]], batch_rows: int) -> StreamResult:
        table = pa.Table.from_pylist(
            [
                {"id": i, "customer_id": c, "snapshot_time": dt.datetime(2025, 1, 10, tzinfo=UTC),
                 "deployed_instance_count": 1, "deployed_unique_integration_count": 1}
                for i, c in rows
            ],
            SNAPSHOT_SCHEMA,
        )  # fmt: skip
        table = pa.Table.from_batches(table.to_batches(max_chunksize=batch_rows))
        return StreamResult("snapshots", org_wide=True, entity=None, window=None, table=table)

    collector = Collector()
    collector(stream([("s1", "a"), ("s2", "sys"), ("s3", "b"), ("s4", "sys"), ("s5", "a")], 2))
    collector(stream([("s6", "sys"), ("s1", "a"), ("s7", "b")], 1))  # s1 came twice
    table = collector.known_table("snapshots", "customer_id", pa.chunked_array([["a"], ["b"]]))
    assert table.schema == SNAPSHOT_SCHEMA
    assert table.column("id").to_pylist() == ["s1", "s3", "s5", "s7"]
    assert collector.known_table("snapshots", "customer_id", pa.array(["a"])).num_rows == 0


@pytest.mark.parametrize("filter_rows", [1, 2, 3, 5, 1000])
def test_collector_filters_runs_of_tiny_batches_like_one_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch, filter_rows: int
) -> None:
    """Per-instance streams leave thousands of tiny batches; runs of them are filtered at once."""
    import pyarrow as pa

    from prismatic_usage import collector as collecting
    from prismatic_usage.records import DAILY_METRIC_SCHEMA
    from prismatic_usage.units import StreamResult

    monkeypatch.setattr(collecting, "FILTER_ROWS", filter_rows)
    owners = ["i1", "sys", "i2", "i2", "sys", "i3", "i1", "sys", "i3"]
    rows = [
        {"id": f"m{k}", "instance_id": owner, "snapshot_date": dt.date(2025, 1, 1 + k),
         "successful_execution_count": k, "failed_execution_count": 0, "step_count": 0,
         "spend_mb_secs": 0}
        for k, owner in enumerate(owners)
    ]  # fmt: skip
    collector = collecting.Collector()
    for start, stop in [(0, 1), (1, 3), (3, 4), (4, 8), (8, 9)]:  # streams of 1-4 rows
        table = pa.Table.from_pylist(rows[start:stop], DAILY_METRIC_SCHEMA)
        table = pa.Table.from_batches(table.to_batches(max_chunksize=1))
        collector(StreamResult("metrics", org_wide=False, entity=None, window=None, table=table))
    kept = collector.known_table("metrics", "instance_id", pa.array(["i1", "i2", "i3"]))
    assert kept.schema == DAILY_METRIC_SCHEMA
    assert kept.column("id").to_pylist() == [f"m{k}" for k in (0, 2, 3, 5, 6, 8)]
    assert all(batch.num_rows <= max(filter_rows, 1) for batch in kept.to_batches())
