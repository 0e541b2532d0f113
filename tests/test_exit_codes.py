"""Every documented exit code, each produced by a real condition in a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prismatic_usage.sandbox import FaultPlan, OrgData, Sandbox, generate_org

from .test_cli import run_cli

START, END = "2024-12-02", "2024-12-04"


@pytest.fixture(scope="module")
def org() -> OrgData:
    return generate_org(edge_cases=True, seed=31, customers=6, days=6)


def against(
    sb: Sandbox, cwd: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "--url", sb.url, "--start-date", START, "--end-date", END, "--rate", "10000",
        "--output-dir", str(cwd / "out"), *args,
        cwd=cwd, env={"PRISMATIC_API_KEY": token or sb.token},
    )  # fmt: skip


def test_0_ok(tmp_path: Path, org: OrgData, make_sandbox: Callable[..., Sandbox]) -> None:
    assert against(make_sandbox(data=org), tmp_path, "-q").returncode == 0


def test_2_usage_error(tmp_path: Path) -> None:
    result = run_cli("--start-date", "2025-02-30", "--end-date", END, cwd=tmp_path)
    assert result.returncode == 2


def test_3_the_api_refused_the_token(
    tmp_path: Path, org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    result = against(make_sandbox(data=org), tmp_path, token="expired-or-wrong")
    assert result.returncode == 3 and "refused the token" in result.stderr


def test_4_the_api_failed_after_retries(
    tmp_path: Path, org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=org, faults=FaultPlan(every_nth={1: 503}))
    result = against(sb, tmp_path, "--max-attempts", "2")
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_5_an_output_could_not_be_written(
    tmp_path: Path, org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tmp_path / "out").write_text("a file where the folder should be")
    result = against(make_sandbox(data=org), tmp_path)
    assert result.returncode == 5 and "cannot write" in result.stderr


def test_5_a_store_that_cannot_be_used(
    tmp_path: Path, org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "mine.txt").write_text("not a store")
    result = against(make_sandbox(data=org), tmp_path, "--store", str(tmp_path / "store"))
    assert result.returncode == 5 and "not a usage store" in result.stderr


@pytest.mark.parametrize(
    ("sent", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_130_and_143_a_signal_mid_run_writes_nothing(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox], sent: int, code: int, word: str
) -> None:
    sb = make_sandbox(
        data=generate_org(edge_cases=True, seed=3, customers=30, days=6),
        faults=FaultPlan(latency=0.5),
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRISM")}
    environment["PRISMATIC_API_KEY"] = sb.token
    process = subprocess.Popen(
        [sys.executable, "-m", "prismatic_usage", "--url", sb.url, "--start-date", START,
         "--end-date", END, "--output-dir", str(tmp_path / "out"), "--concurrency", "1",
         "--pack", "1"],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while sb.stats.requests == 0:  # fetching has begun
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code
    assert f"{word}; no report written" in stderr and "Traceback" not in stderr
    assert not list((tmp_path / "out").glob("*.csv"))
