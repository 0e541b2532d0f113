"""The benchmark scripts run (tiny sizes, no timing checked: timings live in benchmarks/)."""

from __future__ import annotations

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
