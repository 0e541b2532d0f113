"""The README says what the code does: its example runs, its references match the code."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from prismatic_usage.cli import build_parser
from prismatic_usage.columns import BILLING_SUMMARY, CUSTOMER_INSTANCE, INSTANCE_COMPUTE

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block, in order, in one namespace (later ones build on the first)."""
    blocks = _blocks("python")
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for example in blocks:
        exec(compile(example, "README.md", "exec"), namespace)
    report = namespace["report"]
    assert len(report.customer_instances) > 0  # type: ignore[attr-defined]
    again = namespace["again"]
    day = dt.date(2024, 12, 16)
    assert again.fetched_days == {"snapshots": (day,), "metrics": (day,)}  # type: ignore[attr-defined]
    stored = namespace["stored"]
    assert stored.customer_instances["Date"].max() == pd.Timestamp(day)  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", [CUSTOMER_INSTANCE, INSTANCE_COMPUTE, BILLING_SUMMARY])
def test_every_declared_column_is_documented(spec: object) -> None:
    for column in spec.columns:  # type: ignore[attr-defined]
        assert f"`{column.name}`" in README, f"README does not document {column.name!r}"


def test_every_documented_option_exists() -> None:
    options = {opt for action in build_parser()._actions for opt in action.option_strings}
    section = README.split("## Command line", 1)[1].split("## Billing summary", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    documented = set(re.findall(r"`(--[a-z0-9-]+)", table))
    documented |= set(re.findall(r"`(-[a-z])/", table))
    assert documented, "no options found in the README's CLI table"
    missing = documented - options
    assert not missing, f"README documents options the CLI lacks: {sorted(missing)}"


def test_quick_start_commands_match_ci() -> None:
    commands = [line for block in _blocks("bash") for line in block.splitlines()]
    assert any("pip install -e '.[test]' && python -m pytest -q" in c for c in commands)
    assert any("python -m prismatic_usage --demo" in c for c in commands)
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    # CI installs the dev extra: the README's test extra plus the linters.
    assert "pip install --quiet -e '.[dev]'" in ci and "python -m pytest -q" in ci
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dev = ["prismatic-usage[test]"' in pyproject
