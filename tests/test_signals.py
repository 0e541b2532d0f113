"""Signals against the real command line: one line, the documented exit code, no partial set.

Each test runs ``python -m prismatic_usage --demo`` in a subprocess and sends
it a real signal at a precise moment. To reach that moment without timing
races, the test writes a ``sitecustomize.py`` (test code, loaded by the child
through ``PYTHONPATH``) that wraps one OS call of the child: either the child
raises the signal on itself right there (``signal.raise_signal``, delivered
before the call returns), or it writes a marker file and waits until the
parent, which waits for that marker, sends the signal. Product code has no
test hook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ARGS = ("--demo", "--start-date", "2024-12-01", "--end-date", "2024-12-02", "--format", "both")
REPORTS = sorted(
    f"{stem}.{fmt}"
    for stem in ("customer-instance-data", "instance-compute-data")
    for fmt in ("csv", "parquet")
)
SIGNALS = [
    pytest.param(signal.SIGINT, 130, "interrupted", id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, "terminated", id="SIGTERM"),
]

PARK = """
import os, sys, time
MARKER = {marker!r}

def park():
    '''Tell the parent we are at the moment, then wait for its signal.'''
    with open(MARKER, "w"):
        pass
    while True:
        time.sleep(0.05)
"""


def start(tmp_path: Path, site: str, *args: str) -> subprocess.Popen[str]:
    """``python -m prismatic_usage ARGS`` with ``site`` as its sitecustomize."""
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(site))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRISM")}
    environment["PYTHONPATH"] = str(folder)
    return subprocess.Popen(
        [sys.executable, "-m", "prismatic_usage", *args],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signal_at_marker(process: subprocess.Popen[str], marker: Path, sent: int) -> str:
    """Wait until the child has written ``marker``, send ``sent``; the child's stderr."""
    deadline = time.monotonic() + 120  # a hang detector only: the marker comes in seconds
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(sent)
    return process.communicate(timeout=120)[1]


def old_reports(out: Path) -> None:
    """A previous run's report set, each file with recognisable content."""
    out.mkdir()
    for name in REPORTS:
        (out / name).write_text(f"old {name}\n")


def assert_old_reports(out: Path) -> None:
    assert sorted(os.listdir(out)) == REPORTS  # no .tmp, no .bak
    for name in REPORTS:
        assert (out / name).read_text() == f"old {name}\n"


@pytest.mark.parametrize(("sent", "code", "word"), SIGNALS)
def test_a_signal_between_the_moves_takes_effect_after_the_whole_set(
    tmp_path: Path, sent: int, code: int, word: str
) -> None:
    clean = start(tmp_path, "", *ARGS, "-q", "--output-dir", "clean")
    assert clean.communicate(timeout=120)[1] == "" and clean.returncode == 0
    old_reports(tmp_path / "out")
    site = f"""
    import os, signal
    real_replace = os.replace

    def replace(src, dst, **kwargs):
        real_replace(src, dst, **kwargs)
        if str(src).endswith(".tmp") and str(dst).endswith("customer-instance-data.csv"):
            signal.raise_signal({int(sent)})  # between the first move and the next

    os.replace = replace
    """
    process = start(tmp_path, site, *ARGS, "-q", "--output-dir", "out")
    _, stderr = process.communicate(timeout=120)
    assert stderr == (
        f"prismatic-usage: {word} after the reports were written; "
        "they are complete, but the run did not finish\n"
    )
    assert process.returncode == code
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == REPORTS
    for name in REPORTS:  # the whole new set, byte for byte what a clean run writes
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


@pytest.mark.parametrize(("sent", "code", "word"), SIGNALS)
@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(
            """
            real_fsync = os.fsync

            def fsync(fd):
                real_fsync(fd)
                if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
                    park()  # the first report is in its temporary file

            os.fsync = fsync
            """,
            id="temporary-file-written",
        ),
        pytest.param(
            """
            real_link = os.link

            def link(src, dst, **kwargs):
                real_link(src, dst, **kwargs)
                park()  # the first previous report has its backup

            os.link = link
            """,
            id="backup-made",
        ),
    ],
)
def test_a_signal_while_writing_leaves_the_previous_reports_and_no_debris(
    tmp_path: Path, moment: str, sent: int, code: int, word: str
) -> None:
    old_reports(tmp_path / "out")
    marker = tmp_path / "at-the-moment"
    site = PARK.format(marker=str(marker)) + textwrap.dedent(moment)
    process = start(tmp_path, site, *ARGS, "-q", "--output-dir", "out")
    stderr = signal_at_marker(process, marker, sent)
    assert stderr == f"prismatic-usage: {word}; no report written\n"
    assert process.returncode == code
    assert_old_reports(tmp_path / "out")


@pytest.mark.parametrize(("sent", "code", "word"), SIGNALS)
def test_a_signal_during_start_up_is_one_line(
    tmp_path: Path, sent: int, code: int, word: str
) -> None:
    marker = tmp_path / "importing"
    site = PARK.format(marker=str(marker)) + textwrap.dedent(
        """
        class ParkOnPandas:
            '''Park when the CLI module is imported: the package is still loading.'''

            def find_spec(self, name, path=None, target=None):
                if name == "prismatic_usage.cli":
                    park()
                return None

        sys.meta_path.insert(0, ParkOnPandas())
        """
    )
    process = start(tmp_path, site, *ARGS, "--output-dir", "out")
    stderr = signal_at_marker(process, marker, sent)
    assert stderr == f"prismatic-usage: {word}; no report written\n"
    assert process.returncode == code
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("sent", "code", "word"), SIGNALS)
def test_a_signal_inside_a_request_task_is_one_line(
    tmp_path: Path, sent: int, code: int, word: str
) -> None:
    """The signal lands while a fetch task (not the event loop's wait) runs Python code.

    SIGTERM raised there used to end the run with 143 but also print asyncio's "Task
    exception was never retrieved" and a traceback (a loaded machine delivered it so).
    """
    site = f"""
    import signal, socket, threading
    real_send = socket.socket.send
    fired = []

    def send(self, *args, **kwargs):
        sent = real_send(self, *args, **kwargs)
        if not fired and threading.current_thread() is threading.main_thread():
            fired.append(True)
            signal.raise_signal({int(sent)})  # in the task writing the first request
        return sent

    socket.socket.send = send
    """
    process = start(tmp_path, site, *ARGS, "--output-dir", "out")
    _, stderr = process.communicate(timeout=120)
    assert stderr == f"prismatic-usage: {word}; no report written\n"
    assert process.returncode == code
    assert not (tmp_path / "out").exists()
