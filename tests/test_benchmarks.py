"""The benchmark scripts run (tiny sizes, no timing checked: timings live in benchmarks/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("fetch.py", "(c) library, defaults"),
        ("frames.py", "snapshots/s"),
        ("store.py", "identical to a fetch without a store"),
        ("memory.py", "(t) 10 x 3, store"),
    ],
)
def test_benchmark_smoke_run(script: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert expected in result.stdout
    assert "records differ" not in result.stdout


def test_scale_smoke_run_shows_the_capped_half_only_where_the_sandbox_has_a_cap() -> None:
    """scale.py runs before and after the sandbox gains ``--max-nodes``: n/a without it."""
    sandbox_help = subprocess.run(
        [sys.executable, "-m", "prismatic_usage", "sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    has_cap = "--max-nodes" in sandbox_help.split()
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scale.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the one smoke cell, 3 customers x 2 days: a request count, then the capped half
    line = re.search(r"^ *3 x 2 +[1-9]\d* .*\| (.*)$", result.stdout, re.MULTILINE)
    assert line is not None, result.stdout
    capped = line.group(1).split()
    if has_cap:
        assert capped[0].isdigit(), result.stdout
    else:
        assert capped == ["n/a"] * 7, result.stdout
    assert "FAILED" not in result.stdout
    assert "goals:" not in result.stdout  # no goals under --smoke
