"""Shared fixtures: a clean environment and sandboxes (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import settings

from prismatic_usage.sandbox import OrgData, Sandbox, generate_org

# CI machines are shared and noisy: a Hypothesis deadline there is a timing assertion.
# `.ci/run` selects this profile; locally, `HYPOTHESIS_PROFILE=ci` does the same.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The generated org most tests use: 12 customers (+2 system) over 5 days from 2024-12-01.
SANDBOX_SEED = 7
SANDBOX_CUSTOMERS = 12
SANDBOX_DAYS = 5


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may see the developer's real Prismatic credentials or settings."""
    for name in list(os.environ):
        if name.startswith(("PRISMATIC_", "PRISM_")):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _sigint_as_usual() -> Iterator[None]:
    """Python's usual SIGINT handling, whatever the test process inherited.

    A non-interactive shell starts background jobs with SIGINT ignored; an ignored
    signal stays ignored in every child, so a CLI subprocess would not see the
    Ctrl-C a test sends it, and an ignored signal is not deferred either.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def org() -> OrgData:
    """The standard generated org (read-only: shared by every sandbox of the session)."""
    return generate_org(
        edge_cases=True, seed=SANDBOX_SEED, customers=SANDBOX_CUSTOMERS, days=SANDBOX_DAYS
    )


@pytest.fixture(scope="session")
def sandbox(org: OrgData) -> Iterator[Sandbox]:
    """One sandbox for the whole run; do not change its faults (use ``make_sandbox``)."""
    with Sandbox(org) as sb:
        yield sb


@pytest.fixture
def make_sandbox(org: OrgData) -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with custom options (``data`` defaults to ``org``); stopped at teardown."""
    started: list[Sandbox] = []

    def factory(data: OrgData | None = None, **kwargs: Any) -> Sandbox:
        sb = Sandbox(org if data is None else data, **kwargs)
        started.append(sb)
        return sb.start()

    yield factory
    for sb in started:
        sb.stop()


@contextmanager
def sandbox_process(*args: str) -> Iterator[tuple[str, str]]:
    """``(url, token)`` of a ``prismatic-usage sandbox`` command run in its own process.

    For tests whose server must not share the test process's GIL and event-loop
    delays with the client (a strict rate window stamps arrivals late when the
    client's work holds it up). ``args`` are the command's flags.
    """
    command = [sys.executable, "-m", "prismatic_usage", "sandbox", "--port", "0", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split("url: ", 1)[1].strip()
            token = proc.stdout.readline().split("token: ", 1)[1].strip()
            yield url, token
        finally:
            proc.terminate()
            proc.wait(timeout=10)
