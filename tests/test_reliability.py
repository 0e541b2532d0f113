"""Faults survived (same records as a clean run) and faults reported (one clear error)."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prismatic_usage import (
    APIError,
    AuthenticationError,
    FetchOptions,
    FetchProgress,
    MalformedResponseError,
    PaginationError,
    QueryError,
    RetriesExhaustedError,
    UsageRecords,
    fetch_usage,
)
from prismatic_usage.config import Connection
from prismatic_usage.records import DAILY_METRIC_SCHEMA, TableBuilder
from prismatic_usage.sandbox import Customer, FaultPlan, OrgData, Sandbox, generate_org
from prismatic_usage.session import parse_retry_after

from .expected import actual_records, expected_records
from .test_cli import run_cli

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 3)
QUICK = FetchOptions(requests_per_second=None, max_attempts=8)
PAGE_INFO = {"hasNextPage": False, "startCursor": None, "endCursor": None}


@pytest.fixture(scope="module")
def small_org() -> OrgData:
    return generate_org(edge_cases=True, seed=17, customers=8, start=START, days=3)


def fetch(sb: Sandbox, options: FetchOptions = QUICK) -> UsageRecords:
    return fetch_usage(START, END, url=sb.url, token=sb.token, options=options)


# -- survived ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        FaultPlan(every_nth={3: 429}),
        FaultPlan(every_nth={3: 429}, retry_after_http_date=True),
        FaultPlan(every_nth={4: 502, 7: 429}),
        FaultPlan(every_nth={2: 503}),
        FaultPlan(drop_connection_every_nth=4),
        FaultPlan(rate_limit=10, rate_limit_burst=2),
    ],
    ids=["429", "429-http-date", "502+429", "503", "reset", "rate-limit"],
)
def test_transient_faults_are_survived_with_identical_records(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData, plan: FaultPlan
) -> None:
    sb = make_sandbox(data=small_org, faults=plan)
    records = fetch_usage(START, END, url=sb.url, token=sb.token, options=QUICK)
    assert actual_records(records) == expected_records(small_org, START, END)
    assert records.stats.retries > 0


def test_a_429_pauses_for_retry_after_and_lowers_the_pace(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org)
    sb.queue_response(429, {"errors": [{"message": "Too Many Requests"}]}, {"Retry-After": "1"})
    began = time.monotonic()
    records = fetch_usage(
        START, END, url=sb.url, token=sb.token, options=FetchOptions(requests_per_second=50)
    )
    assert time.monotonic() - began >= 1.0  # waited as told
    assert records.stats.throttled == 1
    assert actual_records(records) == expected_records(small_org, START, END)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_timed_out_request_is_retried(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(slow_every_nth=3, slow_seconds=2.0))
    options = FetchOptions(requests_per_second=None, timeout=0.5, pack=1, max_attempts=4)
    records = fetch_usage(START, END, url=sb.url, token=sb.token, options=options)
    assert actual_records(records) == expected_records(small_org, START, END)
    assert records.stats.retries >= 1


def test_an_expired_token_is_refreshed_once_and_the_run_continues(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(expire_token_at=3))
    connection = Connection(base_url=sb.url, token=sb.token, refresh_token=sb.refresh_token)
    old_token = sb.token
    records = fetch_usage(START, END, connection=connection, options=QUICK)
    assert actual_records(records) == expected_records(small_org, START, END)
    assert sb.token != old_token  # the sandbox issued a new one through /auth/refresh
    assert sb.stats.by_status.get(401, 0) >= 1


def test_without_a_refresh_token_an_expired_token_is_reported(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(expire_token_at=2))
    with pytest.raises(AuthenticationError, match="prism me:token") as caught:
        fetch(sb)
    assert sb.token not in str(caught.value)


# -- reported -----------------------------------------------------------------------------


def test_403_is_an_authentication_error(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org)
    sb.queue_response(403, {"errors": [{"message": "Forbidden"}]})
    with pytest.raises(AuthenticationError, match="HTTP 403") as caught:
        fetch(sb, FetchOptions(requests_per_second=None, concurrency=1))
    assert caught.value.status == 403


def test_a_graphql_error_names_the_query_and_the_instance(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    victim = next(i for i in small_org.instances if not i.is_system)
    sb = make_sandbox(data=small_org, faults=FaultPlan(denied_ids=frozenset({victim.id})))
    with pytest.raises(QueryError) as caught:
        fetch(sb)
    message = str(caught.value)
    assert "permission" in message
    assert "daily metrics" in message and victim.id in message
    assert caught.value.errors and caught.value.errors[0]["message"].startswith("You do not")
    # The error came back inside a packed answer and was pinned on that one alias:
    # the pack was not split or retried because of it.
    (failed,) = [
        r for r in sb.stats.request_log if any("permission" in m for m in r.error_messages)
    ]
    assert len(failed.root_fields) > 1
    asked = [c.fingerprint() for r in sb.stats.request_log for c in r.root_fields]
    assert len(asked) == len(set(asked))


def test_exhausted_retries_say_what_how_often_and_the_last_status(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(every_nth={1: 503}))
    options = FetchOptions(requests_per_second=None, max_attempts=3, concurrency=1)
    with pytest.raises(RetriesExhaustedError, match="after 3 attempts") as caught:
        fetch(sb, options)
    assert caught.value.attempts == 3 and caught.value.last_status == 503
    assert "HTTP 503" in str(caught.value)


def test_retry_time_budget_is_bounded(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(every_nth={1: 502}))
    options = FetchOptions(requests_per_second=None, max_attempts=100, max_retry_seconds=1.5)
    began = time.monotonic()
    with pytest.raises(RetriesExhaustedError):
        fetch(sb, options)
    assert time.monotonic() - began < 10


@pytest.mark.parametrize("delta", [5, -3])
def test_a_lying_total_count_is_detected(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData, delta: int
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(lie_total_count=delta))
    with pytest.raises(PaginationError, match="totalCount"):
        fetch(sb)


def test_a_stuck_cursor_cannot_loop_or_duplicate(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    # Pages are planned by offset from totalCount, so a server whose cursor never
    # advances cannot trap the fetch; its contradicting hasNextPage is reported.
    sb = make_sandbox(data=small_org, faults=FaultPlan(stuck_cursor=True))
    began = time.monotonic()
    with pytest.raises(PaginationError, match="hasNextPage"):
        fetch(sb)
    assert time.monotonic() - began < 10


def test_a_duplicate_node_makes_the_stream_be_read_again_from_the_start(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData, caplog: pytest.LogCaptureFixture
) -> None:
    customers = [c for c in small_org.customers if not c.is_system]
    sb = make_sandbox(data=small_org)

    def node(customer: Customer) -> dict[str, object]:
        return {"id": customer.id, "name": customer.name, "externalId": customer.external_id}

    # What shifting positional pages look like: the second customer is pushed out
    # of view and the first is served twice, while every page holds as many
    # nodes as totalCount promises.
    shifted = [node(customers[0]), node(customers[0]), *map(node, customers[2:])]
    payload = {
        "data": {"u0": {"totalCount": len(customers), "pageInfo": PAGE_INFO, "nodes": shifted}}
    }
    sb.queue_response(200, payload)
    options = FetchOptions(requests_per_second=None, concurrency=1, pack=1, org_wide=False)
    with caplog.at_level(logging.WARNING, logger="prismatic_usage"):
        records = fetch(sb, options)
    # The displaced customer is not lost and the doubled one is not kept twice.
    assert actual_records(records) == expected_records(small_org, START, END)
    assert "(1 came twice)" in caplog.text and "restart 1 of 2" in caplog.text


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "text"),
    [
        (
            200,
            "<html><body>Maintenance</body></html>",
            "text/html",
            MalformedResponseError,
            "not GraphQL JSON",
        ),
        (
            200,
            {
                "data": {
                    "u0": {
                        "totalCount": 1,
                        "nodes": [{"id": "c1"}],
                        "pageInfo": PAGE_INFO,
                    }
                }
            },
            None,
            MalformedResponseError,
            "'name'",
        ),
        (
            200,
            {"data": {"u0": {"totalCount": "many", "nodes": [], "pageInfo": PAGE_INFO}}},
            None,
            MalformedResponseError,
            "totalCount",
        ),
        (
            200,
            {"data": {"u0": {"totalCount": 1, "pageInfo": PAGE_INFO}}},
            None,
            MalformedResponseError,
            "'nodes'",
        ),
        (418, "<html>teapot</html>", "text/html", APIError, "HTTP 418"),
    ],
    ids=["html-200", "missing-field", "wrong-type", "missing-nodes", "odd-status"],
)
def test_malformed_answers_name_the_problem(
    make_sandbox: Callable[..., Sandbox],
    small_org: OrgData,
    status: int,
    body: object,
    content_type: str | None,
    error: type[Exception],
    text: str,
) -> None:
    sb = make_sandbox(data=small_org)
    sb.queue_response(status, body, content_type=content_type)
    options = FetchOptions(requests_per_second=None, concurrency=1, pack=1, org_wide=False)
    with pytest.raises(error, match=text):
        fetch(sb, options)


def test_wrong_value_types_name_the_field() -> None:
    builder = TableBuilder(DAILY_METRIC_SCHEMA)
    row = {
        "id": "m1", "instance_id": "i1", "snapshot_date": "2025-03-01",
        "successful_execution_count": 1, "failed_execution_count": "12x", "step_count": 1,
        "spend_mb_secs": str(2**53 + 1),
    }  # fmt: skip
    with pytest.raises(MalformedResponseError, match="failed_execution_count"):
        builder.append(row)
        builder.finish()
    builder = TableBuilder(DAILY_METRIC_SCHEMA)
    builder.append({**row, "failed_execution_count": 0})
    assert builder.finish().column("spend_mb_secs").to_pylist() == [2**53 + 1]
    builder = TableBuilder(DAILY_METRIC_SCHEMA)
    with pytest.raises(MalformedResponseError, match="snapshot_date"):
        builder.append({**row, "failed_execution_count": 0, "snapshot_date": "2025-02-30"})
        builder.finish()


# -- the command ---------------------------------------------------------------------------


def test_faulty_run_writes_the_same_bytes_as_a_clean_run(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    outputs = []
    for plan in (FaultPlan(), FaultPlan(every_nth={4: 502, 7: 429})):
        sb = make_sandbox(data=small_org, faults=plan)
        out = tmp_path / str(len(outputs))
        result = run_cli(
            "--url",
            sb.url,
            "--start-date",
            START.isoformat(),
            "--end-date",
            END.isoformat(),
            "--output-dir",
            str(out),
            "--format",
            "both",
            "--rate",
            "100",
            cwd=tmp_path,
            env={"PRISMATIC_API_KEY": sb.token},
        )
        assert result.returncode == 0, result.stderr
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 4


def test_the_token_never_appears_in_any_output(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    # Every 3rd request fails once: the run (4 requests since packing by nodes) retries.
    sb = make_sandbox(data=small_org, faults=FaultPlan(every_nth={3: 502}))
    token = sb.token
    good = run_cli(
        "--url",
        sb.url,
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        "--verbose",
        "--output-dir",
        str(tmp_path / "ok"),
        "--format",
        "both",
        "--rate",
        "100",
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": token},
    )
    assert good.returncode == 0, good.stderr
    assert "retrying" in good.stderr  # --verbose shows retries
    bad = run_cli(
        "--url",
        sb.url,
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        "--verbose",
        "--output-dir",
        str(tmp_path / "bad"),
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": token + "-wrong"},
    )
    assert bad.returncode == 3
    everything = good.stdout + good.stderr + bad.stdout + bad.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            everything += path.read_bytes().decode("utf-8", "replace")
    assert token not in everything


def test_unreachable_host_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    began = time.monotonic()
    result = run_cli(
        "--url",
        "http://127.0.0.1:9",
        "--start-date",
        "2025-01-01",
        "--end-date",
        "2025-01-02",
        "--max-attempts",
        "2",
        "--timeout",
        "2",
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": "x"},
    )
    assert result.returncode == 4
    assert "cannot reach 127.0.0.1:9: connection refused; check --url" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - began < 30


def test_unwritable_output_fails_before_any_request(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(
        "--url",
        sb.url,
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        "--output-dir",
        str(blocker / "reports"),
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": sb.token},
    )
    assert result.returncode == 5
    assert "cannot write to" in result.stderr
    assert sb.stats.requests == 0


def test_an_end_date_of_today_warns_that_the_day_is_partial(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    result = run_cli(
        "--demo",
        "--start-date",
        today.isoformat(),
        "--end-date",
        today.isoformat(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "partial" in result.stderr


def test_excel_safe_neutralises_formula_like_names(tmp_path: Path, sandbox: Sandbox) -> None:
    # The edge-case org (conftest) has formula-like names; the --demo org has none.
    result = run_cli(
        "--url",
        sandbox.url,
        "--start-date",
        "2024-12-01",
        "--end-date",
        "2024-12-01",
        "--excel-safe",
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": sandbox.token},
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "customer-instance-data.csv").read_text(encoding="utf-8")
    names = [line.split(",")[1] for line in text.splitlines()[1:] if line.count(",") >= 4]
    assert any(name.startswith("'") for name in names)
    assert not any(name[:1] in "=+-@" for name in names)


def test_ctrl_c_exits_promptly_and_writes_nothing(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(latency=2.0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prismatic_usage",
            "--url",
            sb.url,
            "--start-date",
            START.isoformat(),
            "--end-date",
            END.isoformat(),
        ],
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": sb.token, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - began < 15  # a hang detector: the full fetch takes minutes
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_starts_refusing_packs_mid_run_is_split_down_not_looped(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    data = generate_org(edge_cases=True, seed=23, customers=20, start=START, days=3)
    sb = make_sandbox(data=data)
    options = FetchOptions(requests_per_second=None, page_size=20)

    def tighten(event: FetchProgress) -> None:
        if event.requests == 4:  # packs of several units have succeeded by now
            sb.update_faults(max_root_fields=1)

    records = fetch_usage(START, END, url=sb.url, token=sb.token, options=options, progress=tighten)
    assert actual_records(records) == expected_records(data, START, END)
    assert records.stats.pack == 1
    # Each split halves the pack (10 -> 5 -> 2 -> 1): at most a few refusals per
    # request in flight, not a loop.
    assert 1 <= records.stats.splits <= 3 * options.concurrency


def test_a_token_that_expires_twice_is_refreshed_twice(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org, faults=FaultPlan(expire_token_at=2))
    connection = Connection(base_url=sb.url, token=sb.token, refresh_token=sb.refresh_token)

    def expire_again(event: FetchProgress) -> None:
        if event.requests == 6:
            sb.expire_token()

    options = FetchOptions(requests_per_second=None, concurrency=1, pack=2)
    records = fetch_usage(START, END, connection=connection, options=options, progress=expire_again)
    assert actual_records(records) == expected_records(small_org, START, END)
    assert sb.stats.by_status.get(401, 0) == 2


def test_a_503_with_retry_after_waits_as_told(
    make_sandbox: Callable[..., Sandbox], small_org: OrgData
) -> None:
    sb = make_sandbox(data=small_org)
    sb.queue_response(503, "<html>busy</html>", {"Retry-After": "1"}, content_type="text/html")
    began = time.monotonic()
    records = fetch(sb)
    assert time.monotonic() - began >= 1.0
    assert records.stats.retries == 1 and records.stats.throttled == 0


@pytest.mark.parametrize("text", ["+-5", "²", "1e3", "12 3", ""])
def test_integer_text_that_is_not_an_integer_names_the_field(text: str) -> None:
    builder = TableBuilder(DAILY_METRIC_SCHEMA)
    row = {
        "id": "m1", "instance_id": "i1", "snapshot_date": "2025-03-01",
        "successful_execution_count": 1, "failed_execution_count": 0, "step_count": text,
        "spend_mb_secs": 0,
    }  # fmt: skip
    with pytest.raises(MalformedResponseError, match="step_count"):
        builder.append(row)
        builder.finish()
