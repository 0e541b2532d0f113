"""A sandbox in its own process for the benchmarks (shared by fetch.py and scale.py).

``python -m prismatic_usage sandbox`` runs in a child process so that its GraphQL
execution does not share a GIL with the client being measured. The command prints
``url:`` and ``token:`` on stdout once it listens; :func:`start_sandbox` reads
those two lines, yields them and stops the process afterwards. Not a benchmark
itself (the leading underscore keeps it out of the list of scripts).
"""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SANDBOX = [sys.executable, "-m", "prismatic_usage", "sandbox"]


@dataclass(frozen=True)
class SandboxSpec:
    """What the sandbox serves and how it answers.

    Parameters
    ----------
    customers, days, start
        The generated org: ordinary customers, days of usage from ``start``.
    latency
        Seconds added to every request.
    rate_limit
        Requests per second before HTTP 429 (a strict 1-second window); None: no limit.
    workers
        Sandbox processes executing GraphQL (0: its server thread).
    seed
        The data generator's seed (the same seed serves the same org).
    extra
        More command-line arguments, e.g. ``("--max-nodes", "1000")``.
    """

    customers: int
    days: int
    start: dt.date
    latency: float
    rate_limit: float | None
    workers: int = 0
    seed: int = 1
    extra: tuple[str, ...] = ()

    def command(self) -> list[str]:
        """The command line that starts this sandbox on a free port."""
        command = [
            *SANDBOX, "--port", "0", "--seed", str(self.seed),
            "--customers", str(self.customers), "--days", str(self.days),
            "--start-date", self.start.isoformat(), "--latency", str(self.latency),
            "--workers", str(self.workers),
        ]  # fmt: skip
        if self.rate_limit:
            command += ["--rate-limit", str(self.rate_limit)]
        return [*command, *self.extra]


@functools.cache
def sandbox_accepts(flag: str) -> bool:
    """Whether this checkout's sandbox command knows ``flag`` (read from its ``--help``).

    Parameters
    ----------
    flag
        An option such as ``--max-nodes``.
    """
    help_text = subprocess.run(
        [*SANDBOX, "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return flag in help_text.split()


@contextmanager
def start_sandbox(spec: SandboxSpec) -> Iterator[tuple[str, str]]:
    """Start the sandbox ``spec`` describes; yield its base URL and token; stop it after.

    Its stderr goes to a temporary file, shown if the sandbox exits before it
    prints its URL (a wrong flag, a port problem).

    Parameters
    ----------
    spec
        What to serve.
    """
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(spec.command(), stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert proc.stdout is not None
            url_line, token_line = proc.stdout.readline(), proc.stdout.readline()
            if not (url_line.startswith("url: ") and token_line.startswith("token: ")):
                proc.wait(timeout=60)
                errors.seek(0)
                raise RuntimeError(f"the sandbox did not start: {errors.read().strip()}")
            yield url_line.split("url: ", 1)[1].strip(), token_line.split("token: ", 1)[1].strip()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)  # freeing a large org's rows takes a few seconds
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
