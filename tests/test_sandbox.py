"""The sandbox, end to end: real HTTP, the real gql AIOHTTPTransport, no monkeypatching.

Every expected value is computed straight from ``sb.data`` (plain Python over the
records), never through the sandbox's own resolvers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import gc
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from graphql import execute_sync, parse, validate

from prismatic_usage import queries
from prismatic_usage._gc_pause import collector_paused
from prismatic_usage.sandbox import (
    Customer,
    DailyMetric,
    FaultPlan,
    Instance,
    Integration,
    OrgData,
    Sandbox,
    Snapshot,
    demo_org,
    generate_org,
    global_id,
)
from prismatic_usage.sandbox.fastpath import RecordListExecutor
from prismatic_usage.sandbox.resolvers import ResolveContext
from prismatic_usage.sandbox.schema import _serialize_datetime, sandbox_schema

UTC = dt.UTC
BIG = 2**53
UNAUTHORIZED = {"errors": [{"message": "Unauthorized"}]}
TOO_MANY = {"errors": [{"message": "Too Many Requests"}]}


# Helpers ---------------------------------------------------------------------------------


@asynccontextmanager
async def session(sb: Sandbox, token: str | None = None) -> AsyncIterator[AsyncClientSession]:
    """A gql session on the sandbox, through the real aiohttp transport."""
    transport = AIOHTTPTransport(
        url=sb.api_url, headers={"Authorization": f"Bearer {token or sb.token}"}
    )
    async with Client(transport=transport, execute_timeout=20) as s:
        yield s


async def query(
    sb: Sandbox, text: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    async with session(sb, token) as s:
        return await s.execute(GraphQLRequest(text, variable_values=variables))


async def raw_post(
    url: str, body: Any, token: str | None = None, *, raw: bytes | None = None
) -> tuple[int, dict[str, str], str]:
    """Status, headers and body text of one POST, to check the HTTP layer exactly."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


def snapshots_of(data: OrgData, customer_id: str) -> list[Snapshot]:
    return sorted(
        (s for s in data.snapshots if s.customer_id == customer_id),
        key=lambda s: (s.snapshot_time, s.id),
    )


def busiest_customer(data: OrgData) -> Customer:
    return next(c for c in data.customers if not c.is_system)


def _id(kind: str, n: int) -> str:
    return global_id(kind, uuid.UUID(int=n))


SNAPSHOT_PAGE = """
query Page($customer: ID!, $first: Int, $after: String, $offset: Int) {
  customerTotalUsageMetrics(customer: $customer, first: $first, after: $after, offset: $offset) {
    totalCount
    nodes { id snapshotTime }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


# Pagination ------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 7, 100])
async def test_cursor_and_offset_walks_see_every_node_once(
    sandbox: Sandbox, page_size: int
) -> None:
    customer = busiest_customer(sandbox.data)
    expected = [s.id for s in snapshots_of(sandbox.data, customer.id)]
    sandbox.reset_stats()
    by_cursor: list[str] = []
    by_offset: list[str] = []
    async with session(sandbox) as s:
        after: str | None = None
        while True:
            variables = {"customer": customer.id, "first": page_size, "after": after}
            page = (await s.execute(GraphQLRequest(SNAPSHOT_PAGE, variable_values=variables)))[
                "customerTotalUsageMetrics"
            ]
            assert page["totalCount"] == len(expected)
            by_cursor += [n["id"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        while len(by_offset) < len(expected):
            variables = {"customer": customer.id, "first": page_size, "offset": len(by_offset)}
            page = (await s.execute(GraphQLRequest(SNAPSHOT_PAGE, variable_values=variables)))[
                "customerTotalUsageMetrics"
            ]
            assert page["nodes"], "offset walk stalled"
            by_offset += [n["id"] for n in page["nodes"]]
    assert by_cursor == expected
    assert by_offset == expected
    calls = sandbox.stats.calls("customerTotalUsageMetrics")
    assert len(calls) == 2 * -(-len(expected) // page_size)
    fingerprints = [c.fingerprint() for c in calls]
    assert len(set(fingerprints)) == len(fingerprints)  # no page fetched twice


async def test_after_plus_offset_adds_up_like_graphene_django(sandbox: Sandbox) -> None:
    customer = busiest_customer(sandbox.data)
    expected = [s.id for s in snapshots_of(sandbox.data, customer.id)]
    first = await query(sandbox, SNAPSHOT_PAGE, {"customer": customer.id, "first": 5})
    end_cursor = first["customerTotalUsageMetrics"]["pageInfo"]["endCursor"]
    variables = {"customer": customer.id, "first": 3, "after": end_cursor, "offset": 4}
    page = (await query(sandbox, SNAPSHOT_PAGE, variables))["customerTotalUsageMetrics"]
    assert [n["id"] for n in page["nodes"]] == expected[9:12]


async def test_default_page_is_100_and_backwards_paging(sandbox: Sandbox) -> None:
    data = sandbox.data
    result = await query(
        sandbox,
        """{ a: customerTotalUsageMetrics { totalCount nodes { id } pageInfo { hasNextPage } }
             b: customerTotalUsageMetrics(last: 2) {
               nodes { id } pageInfo { hasNextPage hasPreviousPage } } }""",
    )
    ordered = sorted(data.snapshots, key=lambda s: (s.snapshot_time, s.id))
    assert result["a"]["totalCount"] == len(data.snapshots)  # system customers' included
    assert [n["id"] for n in result["a"]["nodes"]] == [s.id for s in ordered[:100]]
    assert result["a"]["pageInfo"]["hasNextPage"] is True
    assert [n["id"] for n in result["b"]["nodes"]] == [s.id for s in ordered[-2:]]
    assert result["b"]["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": True}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            "first: 101",
            "Requesting 101 records on the `customerTotalUsageMetrics` connection exceeds "
            "the `first` limit of 100 records.",
        ),
        ("first: -1", "`first` argument must be positive, got `-1`"),
    ],
)
async def test_bad_page_sizes_are_graphql_errors(
    sandbox: Sandbox, arguments: str, message: str
) -> None:
    with pytest.raises(TransportQueryError) as caught:
        await query(sandbox, f"{{ customerTotalUsageMetrics({arguments}) {{ totalCount }} }}")
    assert caught.value.errors is not None
    assert caught.value.errors[0]["message"] == message
    assert caught.value.errors[0]["path"] == ["customerTotalUsageMetrics"]
    assert caught.value.data is None  # the root field is non-null


# Auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_bad_token_is_401(sandbox: Sandbox, token: str | None) -> None:
    status, _, body = await raw_post(
        sandbox.api_url, {"query": "{ customers { totalCount } }"}, token
    )
    assert status == 401
    assert json.loads(body) == UNAUTHORIZED


async def test_token_expiry_and_refresh(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox()
    old = sb.token
    body = {"query": "{ customers { totalCount } }"}
    assert (await raw_post(sb.api_url, body, old))[0] == 200
    sb.expire_token()
    assert (await raw_post(sb.api_url, body, old))[0] == 401
    refresh_url = f"{sb.url}/auth/refresh"
    status, _, text = await raw_post(refresh_url, {"refresh_token": "nope"})
    assert status == 401
    status, _, text = await raw_post(
        refresh_url, {"refresh_token": sb.refresh_token, "tenant_id": "t"}
    )
    assert status == 200
    new = json.loads(text)["access_token"]
    assert new != old and sb.token == new
    assert (await raw_post(sb.api_url, body, new))[0] == 200
    assert (await raw_post(sb.api_url, body, old))[0] == 401


def test_repr_hides_the_tokens(sandbox: Sandbox) -> None:
    assert sandbox.token not in repr(sandbox)
    assert sandbox.refresh_token not in repr(sandbox)
    assert sandbox.url in repr(sandbox)


async def test_request_errors_are_400(sandbox: Sandbox) -> None:
    status, _, _ = await raw_post(sandbox.api_url, None, sandbox.token, raw=b"not json")
    assert status == 400
    status, _, text = await raw_post(sandbox.api_url, {"query": "{ nope }"}, sandbox.token)
    assert status == 400
    assert "nope" in json.loads(text)["errors"][0]["message"]


# Filters and semantics -------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "want"), [("", {False}), ("(isSystem: null)", {False, True})])
async def test_system_records_hidden_by_default(
    sandbox: Sandbox, flag: str, want: set[bool]
) -> None:
    data = sandbox.data
    result = await query(
        sandbox,
        f"""{{ customers{flag} {{ nodes {{ id }} }}
              instances{flag} {{ nodes {{ id isSystem }} }} }}""",
    )
    assert [n["id"] for n in result["customers"]["nodes"]] == [
        c.id for c in data.customers if c.is_system in want
    ]
    assert [n["id"] for n in result["instances"]["nodes"]] == [
        i.id for i in data.instances if i.is_system in want
    ]


async def test_only_system_records_with_is_system_true(sandbox: Sandbox) -> None:
    result = await query(
        sandbox,
        "{ customers(isSystem: true) { nodes { id } } instances(isSystem: true) { totalCount } }",
    )
    system = [c.id for c in sandbox.data.customers if c.is_system]
    assert system and [n["id"] for n in result["customers"]["nodes"]] == system
    assert result["instances"]["totalCount"] == sum(i.is_system for i in sandbox.data.instances)


async def test_customer_and_instance_filters(sandbox: Sandbox) -> None:
    data = sandbox.data
    customer = next(c for c in data.customers if c.external_id and not c.is_system)
    owned = [i.id for i in data.instances if i.customer_id == customer.id and not i.is_system]
    result = await query(
        sandbox,
        """query($ext: String, $c: ID!, $ids: [ID]) {
             customers(externalId: $ext) { nodes { id } }
             byCustomer: instances(customer: $c) { nodes { id customer { id } } }
             byIds: instances(id_In: $ids, isSystem: null) { nodes { id } }
             one: customer(id: $c) { name }
           }""",
        {"ext": customer.external_id, "c": customer.id, "ids": owned[:1]},
    )
    assert [n["id"] for n in result["customers"]["nodes"]] == [customer.id]
    assert [n["id"] for n in result["byCustomer"]["nodes"]] == owned
    assert [n["id"] for n in result["byIds"]["nodes"]] == owned[:1]
    assert result["one"] == {"name": customer.name}


async def test_org_wide_daily_metrics_refused_unless_switched_on(
    sandbox: Sandbox, make_sandbox: Callable[..., Sandbox]
) -> None:
    text = "{ instanceDailyUsageMetrics(first: 5) { totalCount } }"
    with pytest.raises(TransportQueryError) as caught:
        await query(sandbox, text)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["message"] == "Missing required argument 'instance'"
    open_sb = make_sandbox(require_instance_for_daily_metrics=False)
    result = await query(open_sb, text)
    # System instances' rows are included, as the live API would include them.
    assert result["instanceDailyUsageMetrics"]["totalCount"] == len(open_sb.data.daily_metrics)


async def test_org_wide_snapshots_can_be_refused(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(refuse_org_wide_snapshots=True)
    with pytest.raises(TransportQueryError) as caught:
        await query(sb, "{ customerTotalUsageMetrics { totalCount } }")
    assert caught.value.errors is not None
    assert caught.value.errors[0]["message"] == "Missing required argument 'customer'"


async def test_time_bounds_are_inclusive_to_the_microsecond(sandbox: Sandbox) -> None:
    data = sandbox.data
    customer = busiest_customer(data)
    day = min(s.snapshot_time for s in data.snapshots).date() + dt.timedelta(days=1)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    last = midnight + dt.timedelta(days=1, microseconds=-1)
    times = {s.snapshot_time for s in snapshots_of(data, customer.id)}
    assert midnight in times and last in times  # pinned by the generator
    text = """query($c: ID!, $gte: DateTime, $lte: DateTime) {
      customerTotalUsageMetrics(customer: $c, snapshotTime_Gte: $gte, snapshotTime_Lte: $lte) {
        totalCount nodes { snapshotTime } } }"""
    cases = [
        (midnight.isoformat(), last.isoformat()),
        ("2024-12-01T19:00:00-05:00", last.isoformat()),  # same instant, another offset
        ((midnight + dt.timedelta(microseconds=1)).isoformat(), last.isoformat()),
        (midnight.isoformat(), (last - dt.timedelta(microseconds=1)).isoformat()),
        (midnight.isoformat().replace("+00:00", "Z"), last.isoformat()),
    ]
    for gte, lte in cases:
        low, high = dt.datetime.fromisoformat(gte), dt.datetime.fromisoformat(lte)
        want = sorted(t for t in times if low <= t <= high)
        result = await query(sandbox, text, {"c": customer.id, "gte": gte, "lte": lte})
        got = result["customerTotalUsageMetrics"]
        assert got["totalCount"] == len(want)
        assert [dt.datetime.fromisoformat(n["snapshotTime"]) for n in got["nodes"]] == want
        assert all(n["snapshotTime"].endswith("+00:00") for n in got["nodes"])


async def test_dates_inclusive_and_bigints_exact(sandbox: Sandbox) -> None:
    data = sandbox.data
    big = next(m for m in data.daily_metrics if m.spend_mb_secs > BIG)
    rows = sorted(
        (m for m in data.daily_metrics if m.instance_id == big.instance_id),
        key=lambda m: m.snapshot_date,
    )
    low, high = rows[0].snapshot_date, big.snapshot_date
    want = [m for m in rows if low <= m.snapshot_date <= high]
    text = """query($i: ID!, $gte: Date!, $lte: Date!) {
      instanceDailyUsageMetrics(instance: $i, snapshotDate_Gte: $gte, snapshotDate_Lte: $lte) {
        nodes { snapshotDate spendMbSecs stepCount successfulExecutionCount } } }"""
    variables = {"i": big.instance_id, "gte": low.isoformat(), "lte": high.isoformat()}
    nodes = (await query(sandbox, text, variables))["instanceDailyUsageMetrics"]["nodes"]
    assert [(n["snapshotDate"], n["spendMbSecs"], n["stepCount"]) for n in nodes] == [
        (m.snapshot_date.isoformat(), m.spend_mb_secs, m.step_count) for m in want
    ]
    status, _, body = await raw_post(
        sandbox.api_url, {"query": text, "variables": variables}, sandbox.token
    )
    assert status == 200 and re.search(rf'"spendMbSecs":\s*{big.spend_mb_secs}\b', body)  # a number


async def test_sort_desc_latest_daily_and_org_sums(sandbox: Sandbox) -> None:
    data = sandbox.data
    customer = busiest_customer(data)
    mine = snapshots_of(data, customer.id)
    latest: dict[dt.date, Snapshot] = {}
    for s in mine:
        latest[s.snapshot_time.date()] = s
    sums: dict[dt.date, int] = {}
    for m in data.daily_metrics:
        sums[m.snapshot_date] = sums.get(m.snapshot_date, 0) + m.spend_mb_secs
    result = await query(
        sandbox,
        """query($c: ID!) {
          desc: customerTotalUsageMetrics(customer: $c, first: 3,
                                          sortBy: [{field: SNAPSHOT_TIME, direction: DESC}]) {
            nodes { id } }
          latest: customerTotalUsageMetrics(customer: $c, onlyLatestDailySnapshots: true) {
            nodes { id customer { id name externalId } } }
          org: orgDailyUsageMetrics { nodes { snapshotDate spendMbSecs } } }""",
        {"c": customer.id},
    )
    assert [n["id"] for n in result["desc"]["nodes"]] == [s.id for s in reversed(mine[-3:])]
    assert [n["id"] for n in result["latest"]["nodes"]] == [s.id for s in latest.values()]
    assert result["latest"]["nodes"][0]["customer"] == {
        "id": customer.id,
        "name": customer.name,
        "externalId": customer.external_id,
    }
    assert {n["snapshotDate"]: n["spendMbSecs"] for n in result["org"]["nodes"]} == {
        d.isoformat(): v for d, v in sums.items()
    }


# The example script's queries (shared/prismatic-api.md section 3, items 1-3), unchanged ----

GET_CUSTOMERS = """
query getCustomers($startCursor: String) {
  customers(after: $startCursor, isSystem: false, orderBy: {field: NAME, direction: ASC}) {
    nodes { id externalId name }
    pageInfo { hasNextPage endCursor }
  }
}"""
GET_INSTANCES = """
query getInstances($startCursor: String) {
  instances(
    after: $startCursor
    isSystem: false
    sortBy: [{field: CUSTOMER, direction: ASC}, {field: CREATED_AT, direction: ASC}]
  ) {
    nodes { id name customer { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
GET_CUSTOMER_INSTANCE_COUNT = """
query getCustomerInstanceCount(
  $customerId: ID!, $snapshotStart: DateTime!, $snapshotEnd: DateTime!, $startCursor: String
) {
  customerTotalUsageMetrics(
    customer: $customerId
    sortBy: {direction: ASC, field: SNAPSHOT_TIME}
    snapshotTime_Gte: $snapshotStart
    snapshotTime_Lte: $snapshotEnd
    after: $startCursor
  ) {
    nodes { snapshotTime deployedInstanceCount deployedUniqueIntegrationCount }
    pageInfo { hasNextPage endCursor }
  }
}"""
GET_INSTANCE_USAGE = """
query getInstanceUsage(
  $instanceId: ID!, $snapshotStart: Date!, $snapshotEnd: Date!, $startCursor: String
) {
  instanceDailyUsageMetrics(
    instance: $instanceId
    snapshotDate_Gte: $snapshotStart
    snapshotDate_Lte: $snapshotEnd
    after: $startCursor
    sortBy: {direction: ASC, field: SNAPSHOT_DATE}
  ) {
    nodes { snapshotDate successfulExecutionCount failedExecutionCount stepCount spendMbSecs }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def _walk(
    s: AsyncClientSession, text: str, field: str, variables: dict[str, Any]
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    cursor = ""  # the example scripts start with an empty cursor
    while True:
        variables = {**variables, "startCursor": cursor}
        page = (await s.execute(GraphQLRequest(text, variable_values=variables)))[field]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        cursor = page["pageInfo"]["endCursor"]


async def test_example_script_queries_answered_unchanged(sandbox: Sandbox) -> None:
    data = sandbox.data
    customers = [c for c in data.customers if not c.is_system]
    by_id = {c.id: c for c in data.customers}
    instances = sorted(
        (i for i in data.instances if not i.is_system),
        key=lambda i: ((by_id[i.customer_id].name, i.customer_id), i.created_at),
    )
    customer = busiest_customer(data)
    instance = next(i for i in data.instances if i.customer_id == customer.id)
    start, end = "2024-12-02T00:00:00.000Z", "2024-12-03T23:59:59.999Z"
    low, high = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    async with session(sandbox) as s:
        got_customers = await _walk(s, GET_CUSTOMERS, "customers", {})
        got_instances = await _walk(s, GET_INSTANCES, "instances", {})
        snaps = await _walk(
            s,
            GET_CUSTOMER_INSTANCE_COUNT,
            "customerTotalUsageMetrics",
            {"customerId": customer.id, "snapshotStart": start, "snapshotEnd": end},
        )
        usage = await _walk(
            s,
            GET_INSTANCE_USAGE,
            "instanceDailyUsageMetrics",
            {"instanceId": instance.id, "snapshotStart": "2024-12-02", "snapshotEnd": "2024-12-03"},
        )
    assert got_customers == [
        {"id": c.id, "externalId": c.external_id, "name": c.name}
        for c in sorted(customers, key=lambda c: c.name)
    ]
    assert got_instances == [
        {
            "id": i.id,
            "name": i.name,
            "customer": {"id": i.customer_id, "name": by_id[i.customer_id].name},
        }
        for i in instances
    ]
    want_snaps = [s for s in snapshots_of(data, customer.id) if low <= s.snapshot_time <= high]
    assert len(want_snaps) > 40  # two days of hourly snapshots: more than one default page
    assert snaps == [
        {
            "snapshotTime": s.snapshot_time.isoformat(),
            "deployedInstanceCount": s.deployed_instance_count,
            "deployedUniqueIntegrationCount": s.deployed_unique_integration_count,
        }
        for s in want_snaps
    ]
    want_usage = sorted(
        (
            m
            for m in data.daily_metrics
            if m.instance_id == instance.id
            and dt.date(2024, 12, 2) <= m.snapshot_date <= dt.date(2024, 12, 3)
        ),
        key=lambda m: m.snapshot_date,
    )
    assert [u["snapshotDate"] for u in usage] == [m.snapshot_date.isoformat() for m in want_usage]
    assert [u["spendMbSecs"] for u in usage] == [m.spend_mb_secs for m in want_usage]


# Faults and observability ----------------------------------------------------------------

COUNT = {"query": "{ customers(first: 1) { totalCount } }"}


async def test_latency_overlaps_and_in_flight_is_counted(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(faults=FaultPlan(latency=0.3))
    started = time.monotonic()
    results = await asyncio.gather(*(raw_post(sb.api_url, COUNT, sb.token) for _ in range(5)))
    elapsed = time.monotonic() - started
    assert [r[0] for r in results] == [200] * 5
    assert 0.3 <= elapsed < 1.2  # slowed, yet concurrent
    stats = sb.stats
    assert stats.max_in_flight == 5 and stats.in_flight == 0 and stats.served == 5


async def test_rate_limit_answers_429_with_retry_after(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(faults=FaultPlan(rate_limit=3))
    burst = await asyncio.gather(*(raw_post(sb.api_url, COUNT, sb.token) for _ in range(4)))
    assert sorted(r[0] for r in burst) == [200, 200, 200, 429]  # at most the rate in a second
    _, headers, body = next(r for r in burst if r[0] == 429)
    assert json.loads(body) == TOO_MANY
    assert int(headers["Retry-After"]) >= 1
    assert sb.stats.served == 3 and sb.stats.by_status == {200: 3, 429: 1}
    sb.update_faults(rate_limit=1, retry_after_http_date=True)  # a new limiter of 1
    pair = await asyncio.gather(*(raw_post(sb.api_url, COUNT, sb.token) for _ in range(2)))
    _, headers, _ = next(r for r in pair if r[0] == 429)
    assert email.utils.parsedate_to_datetime(headers["Retry-After"]).tzinfo is not None
    sb.faults = FaultPlan()
    assert (await raw_post(sb.api_url, COUNT, sb.token))[0] == 200


async def test_every_nth_status(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(faults=FaultPlan(every_nth={2: 502, 3: 429}))
    results = [await raw_post(sb.api_url, COUNT, sb.token) for _ in range(6)]
    assert [r[0] for r in results] == [200, 502, 429, 502, 200, 502]
    assert results[1][1]["Content-Type"].startswith("text/html")
    assert results[2][1]["Retry-After"] == "1"
    assert sb.stats.served == 2


async def test_queued_responses_come_first_once_each(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox()
    sb.queue_response(200, "<html><body>Down for maintenance</body></html>")
    sb.queue_response(503, {"errors": [{"message": "busy"}]}, headers={"Retry-After": "2"})
    first, second, third = [await raw_post(sb.api_url, COUNT, "no token needed") for _ in range(3)]
    assert first[0] == 200 and first[1]["Content-Type"].startswith("text/html")
    assert "maintenance" in first[2]
    assert second[0] == 503 and second[1]["Retry-After"] == "2"
    assert json.loads(second[2]) == {"errors": [{"message": "busy"}]}
    assert third[0] == 401  # back to normal handling


async def test_query_cost_limits_are_pathless_graphql_errors(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(faults=FaultPlan(max_root_fields=2, max_nodes_per_response=150))
    three = "{ a: customers(first: 1) { totalCount } b: customers(first: 1) { totalCount } c: instances(first: 1) { totalCount } }"
    with pytest.raises(TransportQueryError) as caught:
        await query(sb, three)
    assert caught.value.errors == [{"message": "Query has too many root fields (3 > 2)"}]
    status, _, _ = await raw_post(sb.api_url, {"query": three}, sb.token)
    assert status == 200
    with pytest.raises(TransportQueryError) as caught:
        await query(sb, "{ a: customers { totalCount } b: instances(first: 60) { totalCount } }")
    assert caught.value.errors == [{"message": "Query requests too many nodes (160 > 150)"}]
    assert [c.key for c in sb.stats.calls()][-2:] == ["a", "b"]


async def test_dropped_connections(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(faults=FaultPlan(drop_connection_every_nth=2))
    assert (await raw_post(sb.api_url, COUNT, sb.token))[0] == 200
    with pytest.raises(aiohttp.ClientError):
        await raw_post(sb.api_url, COUNT, sb.token)
    assert (await raw_post(sb.api_url, COUNT, sb.token))[0] == 200
    assert sb.stats.by_status == {200: 2, 0: 1}


async def test_stuck_cursor_and_lying_total(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(faults=FaultPlan(stuck_cursor=True, lie_total_count=3))
    customer = busiest_customer(sb.data)
    first = (await query(sb, SNAPSHOT_PAGE, {"customer": customer.id, "first": 100}))[
        "customerTotalUsageMetrics"
    ]
    assert first["totalCount"] == len(snapshots_of(sb.data, customer.id)) + 3
    cursor = first["pageInfo"]["endCursor"]
    for _ in range(2):
        page = (await query(sb, SNAPSHOT_PAGE, {"customer": customer.id, "after": cursor}))[
            "customerTotalUsageMetrics"
        ]
        assert page["pageInfo"]["hasNextPage"] is True
        assert page["pageInfo"]["endCursor"] == cursor


# Data ------------------------------------------------------------------------------------


def test_generated_org_is_deterministic_and_awkward() -> None:
    org = generate_org(edge_cases=True, seed=3, customers=50, days=3)
    again = generate_org(edge_cases=True, seed=3, customers=50, days=3)
    assert [s.id for s in org.snapshots] == [s.id for s in again.snapshots]
    assert (
        generate_org(edge_cases=True, seed=4, customers=50, days=3).customers[0].id
        != org.customers[0].id
    )
    names = [c.name for c in org.customers if not c.is_system]
    assert len(names) == 50 and len(set(names)) < len(names)
    assert any("," in n for n in names) and any('"' in n for n in names)
    assert any("\n" in n for n in names) and any(not n.isascii() for n in names)
    assert any(n[0] in "=+-@" for n in names)
    assert any(c.external_id is None for c in org.customers)
    assert sum(c.is_system for c in org.customers) == 2
    ordinary = [i for i in org.instances if not i.is_system]
    assert 60 <= len(ordinary) <= 140 and any(i.is_system for i in org.instances)
    assert {c.id for c in org.customers} >= {s.customer_id for s in org.snapshots}
    assert any(c.is_system for c in org.customers if org.snapshots_of(c.id).rows)
    values = [m.spend_mb_secs for m in org.daily_metrics] + [
        m.step_count for m in org.daily_metrics
    ]
    assert any(v > BIG for v in values) and max(values) < 2**63
    assert any(
        m.successful_execution_count == m.failed_execution_count == 0 for m in org.daily_metrics
    )
    assert any(
        m.successful_execution_count == 0 < m.failed_execution_count for m in org.daily_metrics
    )
    times = [s.snapshot_time for s in org.snapshots]
    assert any(t.microsecond == 0 and t.second for t in times)
    assert any(t.time() == dt.time(23, 59, 59, 999999) for t in times)
    assert len(times) < len(org.customers) * 3 * 24  # some hours are missing
    assert all(t.tzinfo is UTC for t in times)


def test_default_and_demo_orgs_look_like_a_real_customer_base() -> None:
    """What --demo, ``Sandbox()`` and the notebook show: no test-only edge cases."""
    for org in (
        generate_org(seed=3, customers=50, days=3),
        demo_org(dt.date(2024, 12, 1), dt.date(2024, 12, 1)),
    ):
        names = [c.name for c in org.customers if not c.is_system]
        assert len(set(names)) == len(names) >= 50  # distinct
        # Letters, spaces and a "." (as in "Inc."): nothing a spreadsheet or a font trips on.
        assert all(re.fullmatch(r"[A-Z][A-Za-z]+( [A-Za-z.]+)+", n) for n in names), names
        assert all(re.fullmatch(r"[A-Za-z ]+", i.name) for i in org.integrations)
        # At most 1,440 successful (3,000 MB-seconds each) and 300 failed executions a
        # day (500 MB-seconds each), 12 steps each: nothing near 2**53.
        assert max(m.spend_mb_secs for m in org.daily_metrics) <= 1440 * 3000 + 300 * 500
        assert max(m.step_count for m in org.daily_metrics) <= (1440 + 300) * 12
        assert sum(c.is_system for c in org.customers) == 2  # real orgs have them (hidden)
    # The edge cases are one argument away, for tests.
    awkward = generate_org(seed=3, customers=50, days=3, edge_cases=True)
    assert "株式会社サンプル" in {c.name for c in awkward.customers}
    assert max(m.spend_mb_secs for m in awkward.daily_metrics) > BIG


def test_plausible_names_stay_distinct_past_every_combination() -> None:
    names = generate_org(seed=1, customers=800, days=1, max_instances_per_customer=0).customers
    ordinary = [c.name for c in names if not c.is_system]
    assert len(ordinary) == len(set(ordinary)) == 800
    assert sum(n.endswith(" 2") for n in ordinary) == 800 - 720  # 10 x 9 x 8 combinations


def test_hand_made_org_is_checked() -> None:
    integration = Integration(id=_id("Integration", 1), name="I")
    customer = Customer(id=_id("Customer", 1), name="C", external_id=None, is_system=False)
    with pytest.raises(ValueError, match="unknown customer"):
        OrgData(
            customers=[customer],
            integrations=[integration],
            instances=[Instance(_id("Instance", 1), "x", _id("Customer", 9), integration.id)],
        )
    with pytest.raises(ValueError, match="unknown instance"):
        OrgData(
            customers=[customer],
            daily_metrics=[
                DailyMetric(_id("M", 1), _id("Instance", 9), dt.date(2025, 1, 1), 0, 0, 0, 0)
            ],
        )


# The command -----------------------------------------------------------------------------


def test_command_prints_url_and_token_then_serves() -> None:
    args = ["--port", "0", "--customers", "3", "--days", "2", "--token", "t0k"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prismatic_usage", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert proc.stdout is not None
        url_line, token_line = proc.stdout.readline(), proc.stdout.readline()
        assert url_line.startswith("url: http://127.0.0.1:")
        assert token_line == "token: t0k\n"
        status, _, body = asyncio.run(raw_post(f"{url_line[5:].strip()}/api", COUNT, "t0k"))
        assert status == 200 and json.loads(body)["data"]["customers"]["totalCount"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def _packed_org_wide(slots: int = 10) -> tuple[str, dict[str, Any]]:
    """The benchmark's request: ``slots`` aliased org-wide snapshot pages of 100 nodes."""
    text = queries.packed_document((queries.SNAPSHOTS_ORG_WIDE,) * slots).text
    variables: dict[str, Any] = {}
    for i in range(slots):
        variables[f"f{i}"], variables[f"o{i}"] = 100, 100 * i
        variables[f"timeGte{i}"] = "2024-12-01T00:00:00+00:00"
        variables[f"timeLte{i}"] = "2024-12-31T23:59:59+00:00"
    return text, variables


def _command(*extra: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``prismatic-usage sandbox`` with the benchmark's data; (process, /api URL, token)."""
    args = ["--port", "0", "--seed", "1", "--customers", "5", "--days", "3"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prismatic_usage",
            "sandbox",
            *args,
            "--start-date=2024-12-01",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.stdout is not None
    url, token = proc.stdout.readline()[5:].strip(), proc.stdout.readline()[7:].strip()
    return proc, f"{url}/api", token


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_command_with_workers_serves_the_same_answers() -> None:
    text, variables = _packed_org_wide()
    bodies = [
        {"query": text, "variables": variables, "operationName": "UsagePages"},
        {"query": "{ customers(first: 2) { edges { cursor node { name } } } }"},
        {"query": "{ instanceDailyUsageMetrics(first: 1) { totalCount } }"},  # path error
        {"query": "{ nope }"},  # 400
    ]
    answers = []
    for workers in ("0", "2"):
        proc, url, token = _command("--workers", workers)
        try:

            async def post_all(url: str = url, token: str = token) -> list[tuple[int, Any]]:
                replies = await asyncio.gather(*(raw_post(url, b, token) for b in bodies * 2))
                return [(status, json.loads(body)) for status, _, body in replies]

            answers.append(asyncio.run(post_all()))
        finally:
            _stop(proc)
    assert answers[0] == answers[1]
    assert [status for status, _ in answers[1]] == [200, 200, 200, 400] * 2
    snapshots = answers[1][0][1]["data"]
    assert len(snapshots) == 10 and sum(len(s["nodes"]) for s in snapshots.values()) > 100


_WORKER_SCRIPT = """
import json, sys, urllib.error, urllib.request
from prismatic_usage.sandbox import FaultPlan, Sandbox, generate_org
plan = FaultPlan(rate_limit=float(sys.argv[1]), rate_limit_burst=3)
with Sandbox(generate_org(edge_cases=True, seed=1, customers=3, days=2), faults=plan, workers=2) as sb:
    assert sb.workers == 2
    statuses = []
    for i in range(8):
        body = json.dumps({"query": "query Q { customers(first: 1) { totalCount } }"}).encode()
        req = urllib.request.Request(sb.api_url, body, {"Authorization": "Bearer " + sb.token})
        try:
            with urllib.request.urlopen(req) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    stats = sb.stats
    calls = [(r.operation_name, [c.field_name for c in r.root_fields]) for r in stats.request_log]
    print(json.dumps({"statuses": statuses, "requests": stats.requests, "served": stats.served,
                      "by_status": {str(k): v for k, v in stats.by_status.items()}, "calls": calls}))
"""


def test_workers_keep_stats_and_rate_limit_in_the_server_process() -> None:
    # Forking needs a process without other threads: a fresh interpreter, like the command.
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_SCRIPT, "0.01"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["statuses"] == [200] * 3 + [429] * 5  # one limiter for all workers
    assert result["requests"] == 8 and result["by_status"] == {"200": 3, "429": 5}
    assert result["served"] == 3
    assert result["calls"] == [["Q", ["customers"]]] * 3


def _execute_both(
    data: OrgData, text: str, variables: dict[str, Any] | None = None, **switches: Any
) -> tuple[Any, Any]:
    document = parse(text)
    assert not validate(sandbox_schema(), document)
    context = ResolveContext(data=data, **switches)
    fast, plain = (
        execute_sync(
            sandbox_schema(),
            document,
            context_value=context,
            variable_values=variables,
            executor_class=executor,
        )
        for executor in (RecordListExecutor, None)
    )
    return fast.formatted, plain.formatted


def _odd_org() -> OrgData:
    """Records that push the fast path onto graphql-core's own (nulls, an Int overflow)."""
    customer = Customer(_id("Customer", 1), "c", external_id=None, labels=("a", "b"))
    integration = Integration(_id("Integration", 1), "i", category=None)
    instance = Instance(
        _id("Instance", 1),
        "x",
        customer.id,
        integration.id,
        last_executed_at=None,
        instance_type=None,
    )
    when = dt.datetime(2025, 1, 1, 3, tzinfo=UTC)
    return OrgData(
        customers=[customer],
        integrations=[integration],
        instances=[instance],
        snapshots=[
            Snapshot(_id("S", 1), customer.id, when, 1, 1),
            Snapshot(_id("S", 2), customer.id, when + dt.timedelta(hours=1), 2**40, 1),
        ],
    )


@pytest.mark.parametrize(
    "text",
    [
        "{ customers { nodes { id name externalId labels __typename } } }",
        "{ customers { nodes { ... on Customer { id } name } edges { cursor node { id } } } }",
        "{ customers { nodes { a: id b: id name } } }",
        "{ customers { nodes { id id } } }",
        "{ instances { nodes { id lastExecutedAt instanceType designedBy inFailedState"
        " customer { id name externalId } integration { name category } } } }",
        "{ instances { nodes { id integration(compatibility: 3) { name } } } }",
        "{ customerTotalUsageMetrics(last: 2) { nodes { id snapshotTime deployedInstanceCount"
        " customer { id createdAt } } totalCount pageInfo { endCursor } } }",
        "{ customerTotalUsageMetrics(first: 1) { nodes { id @skip(if: true) snapshotTime } } }",
    ],
)
def test_fast_path_answers_like_graphql_core(text: str) -> None:
    fast, plain = _execute_both(_odd_org(), text)
    assert fast == plain
    if "deployedInstanceCount" in text:  # 2**40 is no GraphQL Int: graphql-core's error
        assert fast["errors"][0]["path"] == [
            "customerTotalUsageMetrics",
            "nodes",
            1,
            "deployedInstanceCount",
        ]


def test_fast_path_answers_like_graphql_core_for_every_packed_stream() -> None:
    data = generate_org(edge_cases=True, seed=3, customers=4, start=dt.date(2024, 12, 1), days=3)
    text = queries.packed_document(queries.STREAMS).text
    bounds = {
        "timeGte": "2024-12-01T00:00:00+00:00",
        "timeLte": "2024-12-03T23:59:59+00:00",
        "dateGte": "2024-12-01",
        "dateLte": "2024-12-03",
    }
    variables: dict[str, Any] = {}
    for i, stream in enumerate(queries.STREAMS):
        variables[f"f{i}"], variables[f"o{i}"] = 50, 0
        for _, name in stream.range_args:
            variables[f"{name}{i}"] = bounds[name]
        if stream.entity_arg == "customer":
            variables[f"e{i}"] = data.customers[0].id
        elif stream.entity_arg == "instance":
            variables[f"e{i}"] = data.instances[0].id
    fast, plain = _execute_both(data, text, variables, require_instance_for_daily_metrics=False)
    assert fast == plain and "errors" not in fast
    assert sum(len(v["nodes"]) for v in fast["data"].values()) > 50
    denied = frozenset({data.customers[0].id})
    fast, plain = _execute_both(data, text, variables, denied_ids=denied)
    assert fast == plain and fast["errors"]


class _Name(str):
    """A str subclass: the fast path's reader must not write it as it is (``type is str``)."""


def _edge_value_org(count: Any, name: Any, when: dt.datetime) -> OrgData:
    customer = Customer(_id("Customer", 1), name)
    return OrgData(
        customers=[customer],
        snapshots=[Snapshot(_id("S", 1), customer.id, when, count, 1)],
    )


@pytest.mark.parametrize(
    ("count", "name", "when"),
    [
        (2**31 - 1, "c", dt.datetime(2025, 1, 1, 3, tzinfo=UTC)),
        (-(2**31), _Name("c"), dt.datetime(2025, 1, 1, 3)),  # naive: read as UTC
        (2**31, 5, dt.datetime(2025, 1, 1, 3, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        (True, 1.5, dt.datetime(2025, 1, 1, 3, 4, 5, 6, tzinfo=UTC)),
        (3.0, True, dt.datetime(2025, 1, 1, 3, fold=1, tzinfo=UTC)),
        (3.5, 'ü\n"', dt.datetime(2025, 1, 1, 3, tzinfo=UTC)),
    ],
)
def test_fast_path_coerces_leaves_like_graphql_core(count: Any, name: Any, when: Any) -> None:
    """Ints at and past Int's range, bools, floats, str subclasses, datetimes in any zone."""
    text = (
        "{ customerTotalUsageMetrics { nodes { id snapshotTime deployedInstanceCount"
        " customer { id name } } } customers { nodes { id name } } }"
    )
    fast, plain = _execute_both(_edge_value_org(count, name, when), text)
    assert fast == plain
    assert json.dumps(fast) == json.dumps(plain)  # the same types too (1 and True differ)


def test_datetime_scalar_writes_utc_times_as_graphene_does() -> None:
    """A UTC time's shortcut (``isoformat`` of itself) is what the general route writes."""
    for when in (
        dt.datetime(2025, 1, 1, 3, tzinfo=UTC),
        dt.datetime(2025, 1, 1, 3, 4, 5, 6, tzinfo=UTC),
        dt.datetime(2025, 1, 1, 3, fold=1, tzinfo=UTC),
    ):
        assert _serialize_datetime(when) == when.astimezone(dt.UTC).isoformat()
        assert _serialize_datetime(when) == when.replace(tzinfo=None).isoformat() + "+00:00"


def test_fast_path_reads_a_missing_attribute_as_null_like_graphql_core() -> None:
    """A record without a field's attribute: null where nullable, graphql-core's error if not."""
    full = Customer(_id("Customer", 1), "c", external_id="x")
    fields = {f: getattr(full, f) for f in Customer.__slots__ if f not in ("name", "external_id")}
    bare = types.SimpleNamespace(**{**fields, "id": _id("Customer", 2)})  # no name, external_id
    org = OrgData(customers=[full])
    org.customers.append(bare)  # type: ignore[arg-type]  # a record of another shape
    nullable, non_null = (
        _execute_both(org, "{ customers { nodes { id externalId } } }"),
        _execute_both(org, "{ customers { nodes { id name } } }"),
    )
    assert nullable[0] == nullable[1] and nullable[0]["data"]["customers"]["nodes"][1] == {
        "id": bare.id,
        "externalId": None,
    }
    assert non_null[0] == non_null[1] and non_null[0]["errors"]


def test_collector_pause_restores_the_hosts_setting() -> None:
    """Parsing with workers pauses the collector; overlapping pauses re-enable it once, last."""
    assert gc.isenabled()
    with collector_paused(False):
        assert gc.isenabled()  # an in-process sandbox: the host's collector is left alone
    with collector_paused(True):
        assert not gc.isenabled()
        with collector_paused(True):  # another thread parsing meanwhile
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first is still parsing
    assert gc.isenabled()
    gc.disable()  # a host that turned it off itself keeps it off
    try:
        with collector_paused(True):
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_fast_path_reads_a_non_ascii_attribute_by_its_exact_name() -> None:
    """Python compiles ``item.ﬁ`` as ``item.fi`` (NFKC); getattr, and so graphql-core, does not."""
    from graphql import GraphQLObjectType, build_schema

    from prismatic_usage.sandbox.fastpath import AttributeResolver, RecordListExecutor

    schema = build_schema("schema { query: Q } type Q { rows: [R!]! } type R { a: String }")
    row_type = schema.get_type("R")
    assert isinstance(row_type, GraphQLObjectType) and schema.query_type is not None
    row_type.fields["a"].resolve = AttributeResolver("\ufb01")  # the ligature 'ﬁ'
    record = types.SimpleNamespace(fi="the NFKC name")  # no attribute named 'ﬁ' itself
    schema.query_type.fields["rows"].resolve = lambda *_: [record]
    context = types.SimpleNamespace(data=None)
    fast = execute_sync(
        schema, parse("{ rows { a } }"), context_value=context, executor_class=RecordListExecutor
    )
    assert fast.formatted == {"data": {"rows": [{"a": None}]}}


async def test_a_client_that_hangs_up_mid_body_is_no_server_error(
    make_sandbox: Callable[..., Sandbox], caplog: pytest.LogCaptureFixture
) -> None:
    """A CLI killed while sending (the Ctrl-C tests do it) leaves no traceback in the log."""
    sandbox = make_sandbox()
    host, port = sandbox.url.removeprefix("http://").split(":")
    head = (
        f"POST /api HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {sandbox.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    caplog.set_level(logging.DEBUG)
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(head.encode() + b'{"query": "{')
        deadline = time.monotonic() + 10
        while sandbox.stats.requests == 0:  # the handler is waiting for the rest
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    while sandbox.stats.in_flight:  # until the handler has seen the connection go
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    status, _, _ = await raw_post(sandbox.api_url, COUNT, sandbox.token)
    assert status == 200
