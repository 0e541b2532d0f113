"""The command, end to end: a real subprocess against a real sandbox, files read back."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prismatic_usage.sandbox import OrgData, Sandbox, default_org, generate_org

START, END = dt.date(2024, 12, 2), dt.date(2024, 12, 4)
CUSTOMER_HEADER = "Customer ID,Customer Name,Date,Deployed Instances,Unique Integrations"
COMPUTE_HEADER = (
    "Customer ID,Customer Name,Instance ID,Instance Name,Date,Successful Executions,"
    "Failed Executions,Step Count,Execution Mb-Seconds"
)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRISM")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "prismatic_usage", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def expected_customer_rows(data: OrgData, start: dt.date, end: dt.date) -> list[list[str]]:
    """The daily customer CSV computed by hand: mean of each UTC day's snapshots."""
    customers = {c.id: c for c in data.customers if not c.is_system}
    days: dict[tuple[str, dt.date], list[tuple[int, int]]] = defaultdict(list)
    for s in data.snapshots:
        day = s.snapshot_time.astimezone(dt.UTC).date()
        if s.customer_id in customers and start <= day <= end:
            days[(s.customer_id, day)].append(
                (s.deployed_instance_count, s.deployed_unique_integration_count)
            )
    rows = []
    for (cid, day), values in days.items():
        mean_i = sum(v[0] for v in values) / len(values)
        mean_u = sum(v[1] for v in values) / len(values)
        rows.append((customers[cid].name, cid, day, mean_i, mean_u))
    rows.sort()
    return [[cid, name, day.isoformat(), repr(i), repr(u)] for name, cid, day, i, u in rows]


def expected_compute_rows(data: OrgData, start: dt.date, end: dt.date) -> list[list[str]]:
    customers = {c.id: c for c in data.customers if not c.is_system}
    instances = {i.id: i for i in data.instances if not i.is_system}
    rows = []
    for m in data.daily_metrics:
        inst = instances.get(m.instance_id)
        if inst is None or inst.customer_id not in customers or not start <= m.snapshot_date <= end:
            continue
        cust = customers[inst.customer_id]
        rows.append(
            (
                cust.name,
                cust.id,
                inst.name,
                inst.id,
                m.snapshot_date,
                m.successful_execution_count,
                m.failed_execution_count,
                m.step_count,
                m.spend_mb_secs,
            )
        )
    rows.sort()
    return [
        [cid, cname, iid, iname, day.isoformat(), str(ok), str(bad), str(steps), str(mbs)]
        for cname, cid, iname, iid, day, ok, bad, steps, mbs in rows
    ]


def read_csv(path: Path) -> tuple[str, list[list[str]]]:
    text = path.read_text(encoding="utf-8")
    header = text.split("\n", 1)[0]
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return header, rows[1:]


def test_demo_writes_both_reports_matching_a_hand_computation(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--start-date", START.isoformat(), "--end-date", END.isoformat(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "requests" in result.stdout
    # The demo serves what every sandbox serves by default (the README's range).
    data = default_org()
    header, rows = read_csv(tmp_path / "customer-instance-data.csv")
    assert header == CUSTOMER_HEADER
    assert rows == expected_customer_rows(data, START, END)
    header, rows = read_csv(tmp_path / "instance-compute-data.csv")
    assert header == COMPUTE_HEADER
    assert rows == expected_compute_rows(data, START, END)


def test_against_a_sandbox_url_with_a_token_from_the_environment(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    data = generate_org(edge_cases=True, seed=21, customers=9, start=dt.date(2024, 12, 1), days=6)
    sb = make_sandbox(data=data)
    out = tmp_path / "new" / "reports"
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
        "--quiet",
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": sb.token},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert read_csv(out / "customer-instance-data.csv")[1] == expected_customer_rows(
        data, START, END
    )
    assert read_csv(out / "instance-compute-data.csv")[1] == expected_compute_rows(data, START, END)
    schema = pq.read_schema(out / "instance-compute-data.parquet")
    assert str(schema.field("Date").type) == "date32[day]"
    assert str(schema.field("Execution Mb-Seconds").type) == "int64"
    assert str(schema.field("Customer Name").type) in ("string", "large_string")
    schema = pq.read_schema(out / "customer-instance-data.parquet")
    assert str(schema.field("Deployed Instances").type) == "double"
    assert sorted(p.name for p in out.iterdir()) == [
        "customer-instance-data.csv",
        "customer-instance-data.parquet",
        "instance-compute-data.csv",
        "instance-compute-data.parquet",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start-date", "2025-13-01", "--end-date", "2025-01-02"], "not a valid date"),
        (["--start-date", "12/01/2024", "--end-date", "2025-01-02"], "YYYY-MM-DD"),
        (["--start-date", "2025-02-30", "--end-date", "2025-03-02"], "not a valid date"),
        (["--start-date", "2025-01-03", "--end-date", "2025-01-02"], "after end date"),
        (["--start-date", "2020-01-01", "--end-date", "2025-01-02"], "--yes"),
        (["--start-date", "2025-01-01", "--end-date", "2025-01-02", "--tz", "Mars/X"], "IANA"),
        (["--start-date", "2025-01-01", "--end-date", "2025-01-02", "--tz", "Europe"], "IANA"),
        (["--start-date", "2025-01-01", "--end-date", "2025-01-02", "--timeout", "inf"], "finite"),
        (
            [
                "--start-date",
                "2025-01-01",
                "--end-date",
                "2025-01-02",
                "--url",
                "https://user:pw@app.prismatic.io",
            ],
            "user or password",
        ),
        (
            [
                "--start-date",
                "2025-01-01",
                "--end-date",
                "2025-01-02",
                "--price-gb-second",
                "1." + "0" * 45,
            ],
            "significant digits",
        ),
        (
            ["--start-date", "2025-01-01", "--end-date", "2025-01-02", "--page-size", "500"],
            "page size",
        ),
    ],
)
def test_bad_input_is_a_one_line_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*args, cwd=tmp_path, env={"PRISMATIC_API_KEY": "unused"})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_refused_token_fails_cleanly_without_leaking_it(tmp_path: Path, sandbox: Sandbox) -> None:
    secret = "definitely-not-the-token-8d1c"
    result = run_cli(
        "--url",
        sandbox.url,
        "--start-date",
        START.isoformat(),
        "--end-date",
        END.isoformat(),
        cwd=tmp_path,
        env={"PRISMATIC_API_KEY": secret},
    )
    assert result.returncode == 3
    assert "refused the token" in result.stderr and "prism me:token" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_token_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_cli("--start-date", "2025-01-01", "--end-date", "2025-01-02", cwd=tmp_path)
    assert result.returncode == 3
    assert "PRISMATIC_API_KEY" in result.stderr and "prism" in result.stderr


def test_help_reads_well(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for text in ("--start-date", "--demo", "--format", "examples:", "exit codes"):
        assert text in result.stdout


def test_summary_writes_priced_billing_lines_that_add_up(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--start-date", "2024-12-30", "--end-date", "2025-01-02", "--summary",
        "--price-instance-month", "30", "--price-1k-executions", "0.50", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (tmp_path / "billing-summary.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with (tmp_path / "instance-compute-data.csv").open(newline="", encoding="utf-8") as handle:
        compute = list(csv.DictReader(handle))
    assert {(r["Period Start"], r["Period End"]) for r in rows} == {
        ("2024-12-30", "2024-12-31"),
        ("2025-01-01", "2025-01-02"),
    }
    cent = Decimal("0.01")
    for row in rows:
        instance = (Decimal(row["Instance-Months"]) * 30).quantize(cent, ROUND_HALF_UP)
        executions = int(row["Successful Executions"]) + int(row["Failed Executions"])
        per_execution = (Decimal(executions) / 1000 * Decimal("0.50")).quantize(cent, ROUND_HALF_UP)
        assert Decimal(row["Instance Amount"]) == instance
        assert Decimal(row["Execution Amount"]) == per_execution
        assert Decimal(row["Total Amount"]) == instance + per_execution
        # The period's executions are the sum of the daily compute rows it covers.
        daily = sum(
            int(c["Successful Executions"])
            for c in compute
            if c["Customer ID"] == row["Customer ID"]
            and row["Period Start"] <= c["Date"] <= row["Period End"]
        )
        assert int(row["Successful Executions"]) == daily
    assert "Compute Amount" not in rows[0]  # no GB-second price given


def test_dry_run_lists_and_estimates_without_fetching_metrics(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    data = generate_org(edge_cases=True, seed=4, customers=7, start=START, days=3)
    sb = make_sandbox(data=data)
    result = run_cli(
        "--url", sb.url, "--start-date", START.isoformat(), "--end-date", END.isoformat(),
        "--dry-run", cwd=tmp_path, env={"PRISMATIC_API_KEY": sb.token},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    customers = sum(1 for c in data.customers if not c.is_system)
    instances = sum(1 for i in data.instances if not i.is_system)
    assert f"{customers} customers, {instances} instances" in result.stdout
    assert "requests" in result.stdout
    assert {call.field_name for call in sb.stats.calls()} == {"customers", "instances"}
    assert list(tmp_path.iterdir()) == []


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "prismatic-usage"
    assert script.exists(), "pip install -e . should install the prismatic-usage script"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and "--start-date" in result.stdout


def test_extended_columns_and_a_time_zone(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--start-date", "2024-12-02", "--end-date", "2024-12-03",
        "--columns", "extended", "--timezone", "Europe/Berlin", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, rows = read_csv(tmp_path / "customer-instance-data.csv")
    assert header == (
        "Customer ID,Customer Name,Date,Deployed Instances,Unique Integrations,"
        "Customer External ID,Snapshots,Expected Snapshots,Coverage,Final"
    )
    # Berlin days are UTC 23:00 to 23:00, and every hour of the two days was fetched:
    # a full day has 24 hourly snapshots (fewer only where the data has gaps).
    assert {row[2] for row in rows} == {"2024-12-02", "2024-12-03"}
    assert max(int(row[6]) for row in rows) == 24
    # ... of 24 expected (no DST change in December), and December 2024 is long final.
    assert {row[7] for row in rows} == {"24"} and {row[9] for row in rows} == {"true"}
    assert all(float(row[8]) == int(row[6]) / 24 for row in rows)
    header, _ = read_csv(tmp_path / "instance-compute-data.csv")
    assert "Integration Name" in header and "Customer External ID" in header


def test_an_impossible_amount_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--start-date", "2024-12-02", "--end-date", "2024-12-02",
        "--price-gb-second", "1E+15", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "billing summary" in result.stderr and "--price" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_token_leaves_no_output_directory(tmp_path: Path) -> None:
    result = run_cli(
        "--start-date", "2025-01-01", "--end-date", "2025-01-02", "--output-dir", "reports",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3 and "PRISMATIC_API_KEY" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("sandbox", "--port", "99999"), "argument --port: '99999' must be between 0 and 65535"),
        (("sandbox", "--latency", "-1"), "argument --latency"),
        (("--demo", "--start-date", "2024-12-01"), "--start-date and --end-date go together"),
        (("store",), "the following arguments are required"),
    ],
)
def test_every_usage_error_is_one_line_with_a_help_hint(
    tmp_path: Path, command: tuple[str, ...], expected: str
) -> None:
    result = run_cli(*command, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr
    assert result.stderr.rstrip().endswith("--help") and "Traceback" not in result.stderr
