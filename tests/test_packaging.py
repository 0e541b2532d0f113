"""Packaging: one version, honest floors that CI installs, extras that stay small."""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import re
import tomllib
from pathlib import Path

import prismatic_usage

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
_REQUIREMENT = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]*\])?>=(?P<floor>[^,;\s]+)")


def _floors(requirements: list[str]) -> dict[str, str]:
    floors = {}
    for requirement in requirements:
        match = _REQUIREMENT.fullmatch(requirement)
        assert match, f"{requirement!r} needs a >= floor"
        floors[match["name"].lower()] = match["floor"]
    return floors


def test_the_installed_version_is_the_one_in_the_package() -> None:
    assert importlib.metadata.version("prismatic-usage") == prismatic_usage.__version__
    assert "version" in PYPROJECT["project"]["dynamic"]


def test_the_lowest_versions_ci_installs_are_the_declared_floors() -> None:
    lines = (ROOT / ".ci" / "lowest-constraints.txt").read_text(encoding="utf-8").splitlines()
    pinned = dict(
        line.split("==") for line in (raw.strip() for raw in lines) if line and line[0] != "#"
    )
    assert pinned == _floors(PYPROJECT["project"]["dependencies"])


def test_every_imported_third_party_package_is_declared() -> None:
    declared = set(_floors(PYPROJECT["project"]["dependencies"]))
    imported: set[str] = set()
    for path in (ROOT / "prismatic_usage").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    distribution = {"graphql": "graphql-core", "yaml": "pyyaml"}
    optional = {"matplotlib", "IPython", "ipywidgets"}  # the plot / notebook extras
    stdlib = set(__import__("sys").stdlib_module_names) | {"prismatic_usage", "__future__"}
    third_party = {distribution.get(name, name).lower() for name in imported - stdlib - optional}
    assert third_party <= declared, third_party - declared


def test_plotting_alone_does_not_pull_jupyter() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras) >= {"plot", "notebook", "test", "dev"}
    assert not any("jupyter" in requirement for requirement in extras["plot"])
    assert any("jupyterlab" in requirement for requirement in extras["notebook"])


def test_the_licence_is_an_spdx_string_with_its_file() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert (ROOT / "CHANGELOG.md").is_file()


def test_the_package_logger_is_silent_unless_the_application_configures_logging() -> None:
    handlers = logging.getLogger("prismatic_usage").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)
