"""A live org: records created mid-run and reordered ties are read again, never reported wrong.

Expected reports come from the sandbox serving the org as it ends up, without
the fault (or from ``tests/expected.py``), never from the code under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from prismatic_usage import FetchOptions, PaginationError, UsageRecords, fetch_usage
from prismatic_usage.client import FetchRequest, run_planner
from prismatic_usage.plan import FetchPlan
from prismatic_usage.sandbox import FaultPlan, OrgData, Sandbox, generate_org
from prismatic_usage.sandbox.faults import inserted_customer, inserted_instance
from prismatic_usage.units import StreamResult

from .expected import actual_records, expected_records
from .test_cli import run_cli

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 3)
SEED = 5
# One request at a time, so "after request n" lands at the same place in every run:
# request 1 is the org-wide snapshots probe, 2 the metrics probe (refused), 3 the
# first pages of both lists; small pages make the customer list span three pages.
SERIAL = FetchOptions(requests_per_second=None, concurrency=1, page_size=3)
LISTS_READ_AFTER = 3


@pytest.fixture(scope="module")
def small_org() -> OrgData:
    return generate_org(edge_cases=True, seed=17, customers=8, start=START, days=3)


def with_records(data: OrgData, *, customers: int = 0, instances: int = 0) -> OrgData:
    """The org as it ends up once the sandbox's insertion faults have happened."""
    return OrgData(
        customers=[*(inserted_customer(SEED, n) for n in range(1, customers + 1)), *data.customers],
        integrations=list(data.integrations),
        instances=[
            *(inserted_instance(data, SEED, n) for n in range(1, instances + 1)),
            *data.instances,
        ],
        snapshots=list(data.snapshots),
        daily_metrics=list(data.daily_metrics),
    )


def tied(data: OrgData) -> OrgData:
    """The org with every snapshot at its whole hour: customers' snapshots tie on time."""
    return dataclasses.replace(
        data,
        snapshots=[
            dataclasses.replace(
                s, snapshot_time=s.snapshot_time.replace(minute=0, second=0, microsecond=0)
            )
            for s in data.snapshots
        ],
    )


def fetch(sb: Sandbox, options: FetchOptions = SERIAL) -> UsageRecords:
    return fetch_usage(START, END, url=sb.url, token=sb.token, options=options, progress=False)


def report_bytes(sb: Sandbox, out: Path, *options: str) -> dict[str, bytes]:
    result = run_cli(
        "--url",
        sb.url,
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        "--output-dir",
        str(out),
        "--rate",
        "100",
        "--quiet",
        *options,
        cwd=out.parent,
        env={"PRISMATIC_API_KEY": sb.token},
    )
    assert result.returncode == 0, result.stderr
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_a_customer_created_mid_run_rereads_the_list_and_reports_like_a_clean_run(
    make_sandbox: Callable[..., Sandbox],
    small_org: OrgData,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    fault = FaultPlan(insert_customer_after=LISTS_READ_AFTER, fault_seed=SEED)
    final = with_records(small_org, customers=1)
    with caplog.at_level(logging.WARNING, logger="prismatic_usage"):
        records = fetch(make_sandbox(data=small_org, faults=fault))
    assert actual_records(records) == expected_records(final, START, END)
    assert "customers: pages contradict each other" in caplog.text
    assert "restart 1 of 2" in caplog.text
    cli = ("--concurrency", "1", "--page-size", "3")
    faulty = report_bytes(make_sandbox(data=small_org, faults=fault), tmp_path / "faulty", *cli)
    clean = report_bytes(make_sandbox(data=final), tmp_path / "clean", *cli)
    assert faulty == clean and len(clean) == 2


def test_an_instance_created_mid_run_rereads_the_list_and_reports_like_a_clean_run(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData, caplog: pytest.LogCaptureFixture
) -> None:
    fault = FaultPlan(insert_instance_after=LISTS_READ_AFTER, fault_seed=SEED)
    with caplog.at_level(logging.WARNING, logger="prismatic_usage"):
        records = fetch(make_sandbox(data=small_org, faults=fault))
    final = with_records(small_org, instances=1)
    assert actual_records(records) == expected_records(final, START, END)
    assert "instances: pages contradict each other" in caplog.text


def test_restarted_streams_reach_the_sink_once_and_whole(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    """Only finished streams are handed on: a reread list is never handed on twice or short."""
    fault = FaultPlan(insert_customer_after=LISTS_READ_AFTER, fault_seed=SEED)
    sb = make_sandbox(data=small_org, faults=fault)
    handed: list[StreamResult] = []
    request = FetchRequest.resolve(START, END, sb.url, sb.token, None, "UTC", SERIAL)

    async def run() -> int:
        planner, _, _ = await run_planner(
            request, FetchPlan.whole(START, END, "UTC"), handed.append, None
        )
        return planner.restarts

    assert asyncio.run(run()) >= 1
    keys = [(r.kind, r.entity, r.window) for r in handed]
    assert len(keys) == len(set(keys))
    (customers,) = [r.table for r in handed if r.kind == "customers"]
    listed = {c.id for c in with_records(small_org, customers=1).customers if not c.is_system}
    assert sorted(customers.column("id").to_pylist()) == sorted(listed)


def test_shuffled_tied_snapshot_times_fall_back_to_one_stream_per_customer(
    make_sandbox: Callable[..., Sandbox],
    small_org: OrgData,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    org = tied(small_org)
    fault = FaultPlan(shuffle_ties=True, fault_seed=SEED)
    options = FetchOptions(requests_per_second=None, pack=1, page_size=50)
    with caplog.at_level(logging.WARNING, logger="prismatic_usage"):
        records = fetch(make_sandbox(data=org, faults=fault), options)
    assert actual_records(records) == expected_records(org, START, END)
    assert "snapshots (org-wide): pages still contradict each other after 2 restarts" in (
        caplog.text
    )
    assert "querying per customer" in caplog.text
    cli = ("--pack", "1", "--page-size", "50")
    faulty = report_bytes(make_sandbox(data=org, faults=fault), tmp_path / "faulty", *cli)
    clean = report_bytes(make_sandbox(data=org), tmp_path / "clean", *cli)
    assert faulty == clean


def test_an_org_that_changes_on_every_request_fails_after_two_restarts_in_one_line(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData, tmp_path: Path
) -> None:
    fault = FaultPlan(
        insert_customer_after=LISTS_READ_AFTER, insert_every_request=True, fault_seed=SEED
    )
    sb = make_sandbox(data=small_org, faults=fault)
    with pytest.raises(PaginationError) as caught:
        fetch(sb)
    message = str(caught.value)
    assert message.startswith("customers: the org changed while it was being read (2 restarts;")
    assert message.endswith("run again") and "\n" not in message
    result = run_cli(
        "--url",
        sb.url,
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        "--output-dir",
        str(tmp_path / "out"),
        "--concurrency",
        "1",
        "--page-size",
        "3",
        "--quiet",
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": sb.token},
    )
    assert result.returncode == 4
    *warnings, error = result.stderr.strip().splitlines()
    assert error.startswith("prismatic-usage: error: customers: the org changed while it was")
    assert len(warnings) == 2 and all("restart" in line for line in warnings)
    assert "Traceback" not in result.stderr


def test_an_instance_whose_integration_is_refused_is_kept_without_its_integration_name(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData, caplog: pytest.LogCaptureFixture
) -> None:
    refused = next(i for i in small_org.instances if not i.is_system)
    fault = FaultPlan(refused_integration_ids=frozenset({refused.id}))
    options = FetchOptions(requests_per_second=None)
    with caplog.at_level(logging.WARNING, logger="prismatic_usage"):
        records = fetch(make_sandbox(data=small_org, faults=fault), options)
    expected = expected_records(small_org, START, END)
    expected["instances"] = {
        (id_, name, customer, None if id_ == refused.id else integration)
        for id_, name, customer, integration in expected["instances"]
    }
    assert actual_records(records) == expected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert f"instance {refused.id}: the API refused its integration" in warnings[0]


def test_the_tie_shuffle_is_deterministic_given_a_seed(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    query = (
        '{ customerTotalUsageMetrics(first: 30, snapshotTime_Gte: "2025-03-01T00:00:00Z", '
        "sortBy: [{field: SNAPSHOT_TIME, direction: ASC}]) { nodes { id } } }"
    )

    def answers(seed: int) -> list[bytes]:
        sb = make_sandbox(
            data=tied(small_org), faults=FaultPlan(shuffle_ties=True, fault_seed=seed)
        )
        request = urllib.request.Request(
            sb.api_url,
            data=json.dumps({"query": query}).encode(),
            headers={"Authorization": f"Bearer {sb.token}", "Content-Type": "application/json"},
        )
        replies = []
        for _ in range(3):
            with urllib.request.urlopen(request, timeout=10) as reply:
                replies.append(reply.read())
        return replies

    first, again, other = answers(1), answers(1), answers(2)
    assert first == again  # the same seed, the same orders request by request
    assert len(set(first)) > 1  # a new order on every request
    assert first != other
