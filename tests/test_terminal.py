"""What a person at a terminal sees: the progress bar at 80 columns, closing lines, warnings.

The bar is tested by running the real command in a pseudo-terminal of a set
width and reading what it drew, against a sandbox with latency (so the bar is
redrawn between answers, as on the real API).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prismatic_usage.progress import MIN_BAR
from prismatic_usage.sandbox import FaultPlan, Sandbox, default_org, generate_org, window

from .test_cli import run_cli

START, END = dt.date(2024, 12, 2), dt.date(2024, 12, 4)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_BAR = re.compile(
    r"^(?P<phase>listing customers|listing instances|fetching usage) +(?P<pct>\d+)%"
    r"\|(?P<bar>[^|]*)\| (?P<done>[\d,]+)/(?P<total>[\d,]+) pages"
)


def run_in_terminal(args: list[str], *, columns: int, env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal ``columns`` wide; its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRISM")}
    environment.pop("COLUMNS", None)
    environment.update(env, TERM="xterm")
    process = subprocess.Popen(
        [sys.executable, "-m", "prismatic_usage", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environment,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=10) == 0, output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return _ANSI.sub("", output.decode("utf-8"))


def test_the_bar_is_readable_at_80_columns_from_the_first_moment_to_the_end(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    data = generate_org(seed=3, customers=12, start=START, days=3)
    sb = make_sandbox(data=data, faults=FaultPlan(latency=0.2))
    shown = run_in_terminal(
        ["--url", sb.url, "--start-date", str(START), "--end-date", str(END),
         "--output-dir", str(tmp_path), "--page-size", "10"],
        columns=80,
        env={"PRISMATIC_API_KEY": sb.token},
    )  # fmt: skip
    lines = [line for line in re.split(r"[\r\n]", shown) if line.strip()]
    bars = [m for line in lines if (m := _BAR.match(line))]
    assert len(bars) >= 3, shown
    for match in bars:
        assert len(match.string) <= 80, match.string
        assert len(match["bar"]) >= MIN_BAR, match.string
    # Drawn before the first answer: nothing fetched yet, the customers being listed.
    first = bars[0]
    assert (first["phase"], first["done"], first["pct"]) == ("listing customers", "0", "0")
    assert "fetching usage" in {m["phase"] for m in bars}
    # The last line stays, every page counted.
    last = bars[-1]
    assert last["phase"] == "fetching usage" and last["pct"] == "100"
    assert last["done"] == last["total"]
    assert "records" in last.string
    assert "wrote " in shown and "fetched 12 customers" in shown


def test_demo_refuses_a_url(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--url", "https://app.prismatic.io", "--start-date", "2024-12-01",
        "--end-date", "2024-12-02", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "prismatic-usage: error: --demo serves its own generated data, so it cannot be "
        "combined with --url; drop one of them\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_demo_names_what_it_wrote_and_that_it_is_generated(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--start-date", str(START), "--end-date", str(END), "--format", "both",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = default_org()
    customers = sum(not c.is_system for c in data.customers)
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"wrote customer-instance-data\.csv: [\d,]+ rows \(one per customer, instance and day\)",
        lines[0],
    )
    assert lines[1].startswith("wrote customer-instance-data.parquet: ")
    assert re.fullmatch(
        r"wrote instance-compute-data\.csv: [\d,]+ rows \(one per instance.*", lines[2]
    )
    assert lines[4].startswith(f"fetched {customers} customers and ")
    assert lines[5] == (
        "demo data: generated by the built-in sandbox (2024-12-01 to 2025-02-13), "
        "not a real organisation"
    )
    assert "+" not in result.stdout
    assert "warning" not in result.stderr


def test_a_range_without_usage_says_so_and_which_days_the_demo_covers(tmp_path: Path) -> None:
    result = run_cli(
        "--demo", "--start-date", "2025-06-01", "--end-date", "2025-06-03", "-q", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "prismatic-usage: warning: no usage at all from 2025-06-01 to 2025-06-03; "
        "the demo data covers 2024-12-01 to 2025-02-13\n"
    )
    partly = run_cli(
        "--demo", "--start-date", "2025-02-12", "--end-date", "2025-02-15", "-q", cwd=tmp_path
    )
    assert partly.returncode == 0, partly.stderr
    assert "the demo data covers 2024-12-01 to 2025-02-13 only" in partly.stderr


def test_a_url_without_usage_in_the_range_warns(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=generate_org(seed=3, customers=2, start=START, days=3))
    result = run_cli(
        "--url", sb.url, "--start-date", "2020-01-01", "--end-date", "2020-01-02", "-q",
        cwd=tmp_path, env={"PRISMATIC_API_KEY": sb.token},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "prismatic-usage: warning: no usage at all from 2020-01-01 to 2020-01-02; check the dates\n"
    )


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_an_unknown_host_is_one_line_in_the_users_terms_and_leaves_no_folder(
    tmp_path: Path, concurrency: str
) -> None:
    result = run_cli(
        "--url", "https://app.prismatic.invalid", "--start-date", "2025-01-01",
        "--end-date", "2025-01-02", "--output-dir", "new/reports", "--concurrency", concurrency,
        cwd=tmp_path, env={"PRISMATIC_API_KEY": "x"},
    )  # fmt: skip
    assert result.returncode == 4
    # The same words whichever request met it first: no stream, offset or attempt count.
    assert result.stderr == (
        "prismatic-usage: error: cannot reach app.prismatic.invalid: name not found; check --url\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_keeps_a_folder_that_existed(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    result = run_cli(
        "--url", "http://127.0.0.1:9", "--start-date", "2025-01-01", "--end-date", "2025-01-02",
        "--output-dir", "reports", cwd=tmp_path, env={"PRISMATIC_API_KEY": "x"},
    )  # fmt: skip
    assert result.returncode == 4
    assert "cannot reach 127.0.0.1:9: connection refused; check --url" in result.stderr
    assert (tmp_path / "reports").is_dir()


def test_every_sandbox_serves_the_readmes_range() -> None:
    # Sandbox() and --demo: the same default org.
    days = {s.snapshot_time.astimezone(dt.UTC).date() for s in default_org().snapshots}
    assert min(days) <= window.FIRST_DAY and max(days) >= window.LAST_DAY
    assert (dt.date(2024, 12, 1), dt.date(2025, 2, 13)) == (window.FIRST_DAY, window.LAST_DAY)
    with Sandbox() as sb:
        assert len(sb.data.snapshots) == len(default_org().snapshots)
    # `python -m prismatic_usage sandbox`: the same days by default.
    with subprocess.Popen(
        [sys.executable, "-m", "prismatic_usage", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.readline().startswith("url: ")
            serving = process.stderr.readline()
        finally:
            process.terminate()
            process.communicate(timeout=30)
    assert "2024-11-30 to 2025-02-14 (UTC)" in serving, serving
