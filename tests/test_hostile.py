"""A hostile server gets no secret, no unbounded memory and no traceback out of us."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prismatic_usage import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    FetchOptions,
    MalformedResponseError,
    QueryError,
    fetch_usage,
)
from prismatic_usage.config import Connection
from prismatic_usage.sandbox import OrgData, Sandbox, generate_org

from .expected import actual_records, expected_records
from .hostile import HostileServer, Received, Reply, relayed, replace_values
from .test_cli import run_cli

START, END = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
QUICK = FetchOptions(requests_per_second=None, max_attempts=2, timeout=10)
TOKEN = "tok-0123456789abcdef"
REFRESH_TOKEN = "refresh-fedcba9876543210"


def _cli(tmp_path: Path, *args: str, token: str = TOKEN) -> tuple[int, str]:
    out = tmp_path / "out"
    result = run_cli(
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        "--output-dir",
        str(out),
        "--max-attempts",
        "2",
        *args,
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": token, "PRISMATIC_REFRESH_TOKEN": REFRESH_TOKEN},
    )
    return result.returncode, result.stdout + result.stderr


# -- secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_a_refresh_redirected_to_another_origin_sends_it_nothing(status: int) -> None:
    with HostileServer(lambda request: Reply(200)) as elsewhere:

        def respond(request: Received) -> Reply:
            if request.path == "/auth/refresh":
                return Reply(status, {"Location": f"{elsewhere.url}/steal"})
            return Reply.json({"errors": [{"message": "expired"}]}, status=401)

        with HostileServer(respond) as stack, pytest.raises(AuthenticationError):
            fetch_usage(
                START,
                END,
                connection=Connection(base_url=stack.url, token=TOKEN, refresh_token=REFRESH_TOKEN),
                options=QUICK,
            )
        assert any(r.path == "/auth/refresh" for r in stack.received)
    assert elsewhere.received == []


def test_an_api_request_redirected_elsewhere_is_an_error_and_sends_nothing_there() -> None:
    with HostileServer(lambda request: Reply(200)) as elsewhere:
        target = f"{elsewhere.url}/api?leak=1"
        with (
            HostileServer(lambda request: Reply(308, {"Location": target})) as stack,
            pytest.raises(
                APIError, match=r"redirect to http://127\.0\.0\.1:\d+ \(not followed\)"
            ) as caught,
        ):
            fetch_usage(START, END, url=stack.url, token=TOKEN, options=QUICK)
    assert elsewhere.received == []
    assert "leak" not in str(caught.value)


def test_server_text_is_one_line_escaped_capped_and_without_tokens(tmp_path: Path) -> None:
    echoed = f"denied\nAuthorization: Bearer {TOKEN}\x1b[2J\x1b[31m refresh={REFRESH_TOKEN} " + (
        "x" * 5000
    )

    def respond(request: Received) -> Reply:
        return Reply.json({"data": None, "errors": [{"message": echoed}]})

    with HostileServer(respond) as stack:
        with pytest.raises(QueryError) as caught:
            fetch_usage(
                START,
                END,
                connection=Connection(base_url=stack.url, token=TOKEN, refresh_token=REFRESH_TOKEN),
                options=QUICK,
            )
        code, output = _cli(tmp_path, "--url", stack.url)
    message = str(caught.value)
    assert TOKEN not in message and REFRESH_TOKEN not in message
    assert "\n" not in message and "\x1b" not in message
    assert "Bearer ***" in message and "\\n" in message and "\\x1b[2J" in message
    assert len(message) < 600
    assert code == 4
    assert output.count("\n") == 1 and output.endswith("\n")
    assert TOKEN not in output and REFRESH_TOKEN not in output and "\x1b" not in output


@pytest.mark.parametrize(
    "url",
    [
        "https://app.prismatic.io/?access_token=s3cr3t-value",
        "https://app.prismatic.io/#s3cr3t-value",
        "ftp://user:s3cr3t-value@app.prismatic.io",
        "https://user:s3cr3t-value@app.prismatic.io",
        "http://[::1",
        "http://127.0.0.1:99999",
        "http://app prismatic.io",
        "http://s3cr3t-value:x@[::1",
    ],
)
def test_a_bad_url_is_a_usage_error_that_never_echoes_it(tmp_path: Path, url: str) -> None:
    code, output = _cli(tmp_path, "--url", url)
    assert code == 2, output
    assert output.count("\n") == 1 and "Traceback" not in output
    assert "s3cr3t" not in output
    assert not (tmp_path / "out").exists()


# -- bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--concurrency", "100000"),
        ("--rate", "1e-300"),
        ("--rate", "1e300"),
        ("--pack", "1000000"),
        ("--timeout", "1e9"),
        ("--max-attempts", "1000000"),
        ("--max-response-mb", "0.001"),
    ],
)
def test_tuning_values_outside_sane_bounds_are_usage_errors(
    tmp_path: Path, option: str, value: str
) -> None:
    code, output = _cli(tmp_path, "--demo", option, value)
    assert code == 2, output
    assert output.count("\n") == 1 and "must be between" in output
    assert not (tmp_path / "out").exists()


def _endless(chunk: bytes) -> Iterator[bytes]:
    yield b'{"data": {"x": "'
    yield from itertools.repeat(chunk)


def test_an_endless_answer_is_cut_at_the_cap_and_reported() -> None:
    options = FetchOptions(requests_per_second=None, max_attempts=1, max_response_bytes=2**20)

    def respond(request: Received) -> Reply:
        return Reply(200, {"Content-Type": "application/json"}, _endless(b"a" * 65536))

    with (
        HostileServer(respond) as stack,
        pytest.raises(MalformedResponseError, match="larger than the 1048576 byte cap"),
    ):
        fetch_usage(START, END, url=stack.url, token=TOKEN, options=options)


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    # The body is tiny but claims 2 MiB: only the Content-Length check can refuse it
    # (reading it would end in a short-body connection error instead).
    options = FetchOptions(requests_per_second=None, max_attempts=1, max_response_bytes=2**20)
    claimed = {"Content-Type": "application/json", "Content-Length": str(2 * 2**20)}

    with (
        HostileServer(lambda request: Reply(200, claimed, iter([b'{"data": {}}']))) as stack,
        pytest.raises(MalformedResponseError, match="byte cap"),
    ):
        fetch_usage(START, END, url=stack.url, token=TOKEN, options=options)


def test_packs_over_the_cap_are_split_and_the_records_are_whole(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    data: OrgData = generate_org(edge_cases=True, seed=3, customers=30, start=START, days=2)
    sb = make_sandbox(data=data)
    small_cap = FetchOptions(requests_per_second=None, max_response_bytes=64 * 2**10)
    records = fetch_usage(START, END, url=sb.url, token=sb.token, options=small_cap)
    assert actual_records(records) == expected_records(data, START, END)
    roomy = fetch_usage(START, END, url=sb.url, token=sb.token, options=QUICK)
    assert records.stats.requests > roomy.stats.requests  # the split packs cost requests


def test_python_refuses_out_of_bounds_options_in_one_line() -> None:
    with pytest.raises(ConfigurationError, match="concurrency must be between 1 and 64"):
        FetchOptions(concurrency=100_000)
    with pytest.raises(ConfigurationError, match="requests per second must be between"):
        FetchOptions(requests_per_second=float("nan"))


# -- malformed answers ------------------------------------------------------------------


def test_data_null_without_errors_is_one_line_not_an_assertion(tmp_path: Path) -> None:
    with HostileServer(lambda request: Reply.json({"data": None})) as stack:
        with pytest.raises(MalformedResponseError, match="neither data nor errors"):
            fetch_usage(START, END, url=stack.url, token=TOKEN, options=QUICK)
        code, output = _cli(tmp_path, "--url", stack.url)
    assert code == 4, output
    assert output.count("\n") == 1 and "AssertionError" not in output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- data validity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("deployedInstanceCount", 2**62, "outside GraphQL's Int range"),
        ("deployedUniqueIntegrationCount", 2**31, "outside GraphQL's Int range"),
        ("deployedInstanceCount", -1, "is negative"),
        ("spendMbSecs", "-5", "is negative"),
        ("stepCount", -(2**40), "is negative"),
    ],
)
def test_counts_outside_their_type_are_refused_not_wrapped(
    tmp_path: Path,
    make_sandbox: Callable[..., Sandbox],
    key: str,
    value: object,
    problem: str,
) -> None:
    data = generate_org(edge_cases=True, seed=5, customers=3, start=START, days=2)
    sb = make_sandbox(data=data)
    with HostileServer(relayed(sb.url, lambda p: replace_values(p, key, lambda _: value))) as relay:
        with pytest.raises(MalformedResponseError, match=problem):
            fetch_usage(START, END, url=relay.url, token=sb.token, options=QUICK)
        code, output = _cli(tmp_path, "--url", relay.url, token=sb.token)
    assert code == 4, output
    assert output.count("\n") == 1 and problem in output


def test_a_lone_surrogate_in_a_name_is_repaired_with_a_warning(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], caplog: pytest.LogCaptureFixture
) -> None:
    data = generate_org(edge_cases=True, seed=5, customers=3, start=START, days=2)
    sb = make_sandbox(data=data)
    broken = relayed(sb.url, lambda p: replace_values(p, "name", lambda n: n + "\ud800"))
    with HostileServer(broken) as relay:
        records = fetch_usage(START, END, url=relay.url, token=sb.token, options=QUICK)
        code, output = _cli(tmp_path, "--url", relay.url, "--format", "both", token=sb.token)
    names = records.customers.column("name").to_pylist()
    assert names and all(name.endswith("\ufffd") for name in names)
    assert "replaced invalid characters" in caplog.text
    assert code == 0, output
    text = (tmp_path / "out" / "customer-instance-data.csv").read_text(encoding="utf-8")
    assert "\ufffd" in text


def test_a_lone_surrogate_in_an_id_is_refused(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    data = generate_org(edge_cases=True, seed=5, customers=3, start=START, days=2)
    sb = make_sandbox(data=data)
    broken = relayed(sb.url, lambda p: replace_values(p, "id", lambda n: n + "\udfff"))
    with (
        HostileServer(broken) as relay,
        pytest.raises(MalformedResponseError, match="invalid character"),
    ):
        fetch_usage(START, END, url=relay.url, token=sb.token, options=QUICK)


@pytest.mark.parametrize(
    "dates",
    [
        ("--start-date", "9999-12-30", "--end-date", "9999-12-31"),
        ("--start-date", "0001-01-01", "--end-date", "0001-01-02"),
        ("--start-date", "2025-01-01", "--end-date", "9999-12-31", "--yes"),
        ("--last-days", "9999999"),
        ("--month", "0001-01"),
    ],
)
def test_dates_beyond_any_usage_are_usage_errors(tmp_path: Path, dates: tuple[str, ...]) -> None:
    result = run_cli("--demo", *dates, "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_python_api_refuses_such_dates_too() -> None:
    with pytest.raises(ConfigurationError, match="check the year"):
        fetch_usage(dt.date(1, 1, 1), dt.date(1, 1, 2), url="http://127.0.0.1:9", token=TOKEN)


def test_frame_sums_of_hand_built_records_are_overflow_checked() -> None:
    import pyarrow as pa

    from prismatic_usage import UsageRecords, customer_instance_frame
    from prismatic_usage.records import CUSTOMER_SCHEMA, SNAPSHOT_SCHEMA

    moment = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    snapshots = pa.table(
        {
            "id": ["s1", "s2"],
            "customer_id": ["c1", "c1"],
            "snapshot_time": [moment, moment + dt.timedelta(hours=1)],
            "deployed_instance_count": [2**62, 2**62],  # the sum wraps in int64
            "deployed_unique_integration_count": [1, 1],
        },
        schema=SNAPSHOT_SCHEMA,
    )
    records = UsageRecords(
        start=START,
        end=END,
        tz="UTC",
        customers=pa.table({"id": ["c1"], "name": ["A"], "external_id": [None]}, CUSTOMER_SCHEMA),
        snapshots=snapshots,
    )
    with pytest.raises(OverflowError, match="overflows int64"):
        customer_instance_frame(records)


# -- secrets by other routes ----------------------------------------------------------


def test_an_endless_refresh_answer_is_cut_and_the_refresh_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def respond(request: Received) -> Reply:
        if request.path == "/auth/refresh":
            return Reply(200, {"Content-Type": "application/json"}, _endless(b"A" * 65536))
        return Reply.json({"errors": [{"message": "expired"}]}, status=401)

    options = FetchOptions(requests_per_second=None, max_attempts=2, timeout=20)
    connection = Connection(base_url="", token=TOKEN, refresh_token=REFRESH_TOKEN)
    with HostileServer(respond) as stack, pytest.raises(AuthenticationError):
        fetch_usage(
            START,
            END,
            connection=dataclasses.replace(connection, base_url=stack.url),
            options=options,
        )
    assert "token refresh failed: BodyTooLarge" in caplog.text


def test_a_refreshed_token_is_redacted_from_every_error() -> None:
    fresh = "fresh-token-abcdef123456"
    answers = iter(["401", "refresh"])

    def respond(request: Received) -> Reply:
        step = next(answers, "leak")
        if step == "401":
            return Reply.json({"errors": [{"message": "expired"}]}, status=401)
        if step == "refresh":
            return Reply.json({"access_token": fresh})
        return Reply.json({"data": {"x": {"totalCount": f"\x1b[31m{fresh}\nINJECTED"}}})

    with HostileServer(respond) as stack, pytest.raises(APIError) as caught:
        fetch_usage(
            START,
            END,
            connection=Connection(base_url=stack.url, token=TOKEN, refresh_token=REFRESH_TOKEN),
            options=QUICK,
        )
    message = str(caught.value)
    assert fresh not in message and "\x1b" not in message and "\n" not in message


def test_a_token_echoed_in_a_value_never_reaches_an_exception_message() -> None:
    echoed = {"data": {"x": {"totalCount": f"\x1b[31mBearer {TOKEN}\nINJECTED LINE"}}}
    with (
        HostileServer(lambda request: Reply.json(echoed)) as stack,
        pytest.raises(APIError) as caught,
    ):
        fetch_usage(START, END, url=stack.url, token=TOKEN, options=QUICK)
    message = str(caught.value)
    assert TOKEN not in message and "\x1b" not in message and "\n" not in message


def test_verbose_tracebacks_carry_no_token_and_no_raw_escape_codes(tmp_path: Path) -> None:
    page = f"<html>\x1b[31mRED Authorization: Bearer {TOKEN}\nline2</html>".encode()
    with HostileServer(lambda request: Reply(200, {"Content-Type": "text/html"}, page)) as stack:
        code, output = _cli(tmp_path, "--url", stack.url, "--verbose")
    assert code == 4, output
    assert "Traceback" in output  # --verbose shows it, made safe
    assert TOKEN not in output and REFRESH_TOKEN not in output and "\x1b" not in output


def test_a_lone_surrogate_in_a_timestamp_is_refused_in_one_line(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    data = generate_org(edge_cases=True, seed=5, customers=3, start=START, days=2)
    sb = make_sandbox(data=data)
    broken = relayed(sb.url, lambda p: replace_values(p, "snapshotTime", lambda v: v + "\ud800"))
    with (
        HostileServer(broken) as relay,
        pytest.raises(MalformedResponseError, match="invalid character"),
    ):
        fetch_usage(START, END, url=relay.url, token=sb.token, options=QUICK)


@pytest.mark.parametrize(
    "body",
    [b'{"errors": 5}', b'{"errors": "oops"}', b"123", b'"text"', b'{"data": [1, 2]}'],
)
def test_answers_of_the_wrong_shape_are_malformed_not_retried(body: bytes) -> None:
    reply = Reply(200, {"Content-Type": "application/json"}, body)
    with HostileServer(lambda request: reply) as stack:
        with pytest.raises(MalformedResponseError):
            fetch_usage(START, END, url=stack.url, token=TOKEN, options=QUICK)
        bodies = [request.body for request in stack.received]
        assert len(set(bodies)) == len(bodies)  # nothing transient about it: no retry


def test_internationalised_hosts_are_accepted() -> None:
    from prismatic_usage.config import normalize_base_url

    assert normalize_base_url("bücher.example") == "https://bücher.example"
    assert normalize_base_url("https://[::1]:8443/api") == "https://[::1]:8443"
    assert normalize_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    for bad in ("https://x.com;secret", "http://a..b", "http://x.com/\x1b[31m"):
        with pytest.raises(ConfigurationError) as caught:
            normalize_base_url(bad)
        assert "secret" not in str(caught.value) and "\x1b" not in str(caught.value)


def test_one_line_escapes_unicode_line_separators() -> None:
    from prismatic_usage._safe_text import one_line

    assert len(one_line("a\u2028b\u2029c\u200fd").splitlines()) == 1


@pytest.mark.parametrize(
    "options",
    [
        {"concurrency": 2.5},
        {"page_size": 50.5},
        {"requests_per_second": "5"},
        {"timeout": None},
        {"pack": True},
    ],
)
def test_options_of_the_wrong_type_are_configuration_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        FetchOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("price", ["1e999999", "1e-99999", "1" + "0" * 5000])
def test_absurd_prices_are_usage_errors_in_one_short_line(tmp_path: Path, price: str) -> None:
    code, output = _cli(tmp_path, "--demo", "--price-instance-month", price)
    assert code == 2, output
    assert output.count("\n") == 1 and len(output) < 400
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_url_that_is_no_graphql_api_is_one_line_whatever_request_met_it(
    tmp_path: Path, status: int
) -> None:
    outputs = []
    with HostileServer(lambda request: Reply(status, {}, b"<html>nope</html>")) as stack:
        for _ in range(2):
            before = len(stack.received)
            outputs.append(_cli(tmp_path, "--url", stack.url)[1])
            # Which requests were in flight when the first answer ended the run varies;
            # none of them was sent twice: nothing is retried.
            bodies = [request.body for request in stack.received[before:]]
            assert len(bodies) == len(set(bodies)) >= 1
    expected = (
        f"prismatic-usage: error: {stack.url} does not answer like a Prismatic API (HTTP {status}"
    )
    assert all(output.startswith(expected) and output.count("\n") == 1 for output in outputs)
    assert outputs[0] == outputs[1]
