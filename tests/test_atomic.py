"""A report set is committed all or nothing, whatever exception or signal lands mid-commit."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from prismatic_usage.cli import Terminated, _raise_terminated
from prismatic_usage.errors import OutputError
from prismatic_usage.export import write_reports

from .test_export import compute_frame, customer_frame

REPORTS = sorted(
    f"{stem}.{fmt}"
    for stem in ("customer-instance-data", "instance-compute-data")
    for fmt in ("csv", "parquet")
)


def write_set(directory: Path) -> list[Path]:
    return write_reports(
        customer_frame(["a"]), compute_frame(["b"]), directory, formats=("csv", "parquet")
    )


def old_reports(directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    for name in REPORTS:
        (directory / name).write_text(f"old {name}\n")


def after_moves(monkeypatch: pytest.MonkeyPatch, count: int, act: Any) -> list[str]:
    """Make ``act()`` happen right after the ``count``-th move of a new report into place."""
    real_replace = os.replace
    moved: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        if str(src).endswith(".tmp"):
            moved.append(Path(dst).name)
            if len(moved) == count:
                act()

    monkeypatch.setattr(os, "replace", replace)
    return moved


def throw(exc: BaseException) -> Any:
    def act() -> None:
        raise exc

    return act


@pytest.mark.parametrize("previous", [True, False], ids=["old-set", "no-old-set"])
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize(
    "exc",
    [KeyboardInterrupt(), Terminated(), SystemExit(1), MemoryError()],
    ids=lambda exc: type(exc).__name__,
)
def test_any_exception_mid_commit_restores_the_previous_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exc: BaseException,
    count: int,
    previous: bool,
) -> None:
    if previous:
        old_reports(tmp_path)
    moved = after_moves(monkeypatch, count, throw(exc))
    with pytest.raises(type(exc)):
        write_set(tmp_path)
    assert len(moved) == count  # the exception did land between two moves
    if previous:
        assert sorted(os.listdir(tmp_path)) == REPORTS  # no .tmp, no .bak
        for name in REPORTS:
            assert (tmp_path / name).read_text() == f"old {name}\n"
    else:
        assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("sent", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_a_real_signal_mid_commit_takes_effect_once_the_whole_new_set_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: int, raised: type[BaseException]
) -> None:
    write_set(tmp_path / "clean")
    old_reports(tmp_path / "out")
    moved = after_moves(monkeypatch, 1, lambda: signal.raise_signal(sent))
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # as the command line does
    try:
        with pytest.raises(raised):
            write_set(tmp_path / "out")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert moved == REPORTS  # every move happened before the signal took effect
    assert sorted(os.listdir(tmp_path / "out")) == REPORTS
    for name in REPORTS:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_the_commit_still_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_reports(tmp_path / "rolled-back")
    after_moves(monkeypatch, 2, throw(KeyboardInterrupt()))
    outcomes: list[BaseException | list[Path]] = []

    def run(directory: Path) -> None:
        try:
            outcomes.append(write_set(directory))
        except BaseException as exc:  # what the thread saw is the result
            outcomes.append(exc)

    thread = threading.Thread(target=run, args=(tmp_path / "rolled-back",))
    thread.start()
    thread.join()
    assert isinstance(outcomes[0], KeyboardInterrupt)
    for name in REPORTS:
        assert (tmp_path / "rolled-back" / name).read_text() == f"old {name}\n"
    assert sorted(os.listdir(tmp_path / "rolled-back")) == REPORTS

    monkeypatch.undo()  # and a commit without trouble works in a thread too
    thread = threading.Thread(target=run, args=(tmp_path / "new",))
    thread.start()
    thread.join()
    assert outcomes[1] == [tmp_path / "new" / name for name in [
        "customer-instance-data.csv", "customer-instance-data.parquet",
        "instance-compute-data.csv", "instance-compute-data.parquet",
    ]]  # fmt: skip
    assert sorted(os.listdir(tmp_path / "new")) == REPORTS


def test_a_rollback_that_fails_says_the_set_is_mixed_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that turns read-only between two moves: the restore fails too."""
    old_reports(tmp_path)
    real_replace = os.replace
    moved: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        source = Path(src)
        if source.name.endswith(".bak") or len(moved) == 1:
            raise OSError(30, "Read-only file system", str(dst))
        real_replace(src, dst)
        moved.append(Path(dst).name)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match="the report set is mixed") as caught:
        write_set(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and moved[0] in message  # the file that is new now
    kept = [p.name for p in tmp_path.iterdir() if p.name.endswith(".bak")]
    assert len(kept) == 1 and moved[0] in kept[0] and kept[0] in message
    assert (tmp_path / kept[0]).read_text() == f"old {moved[0]}\n"  # the only old copy


def test_a_signal_while_the_handlers_are_put_back_leaves_every_handler_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGINT lands just after its own handler is back, before SIGTERM's is."""
    import sys

    from prismatic_usage import _atomic

    sent = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        restoring = frame.f_code is _atomic._restore.__code__ and event == "line"
        if restoring and not sent and len(frame.f_locals.get("pending", ())) == 1:
            sent.append(True)  # SIGINT's handler is back, SIGTERM's not yet
            os.kill(os.getpid(), signal.SIGINT)
        return tracer

    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        sys.settrace(tracer)
        with pytest.raises(KeyboardInterrupt), _atomic.deferred_signals():
            pass
    finally:
        sys.settrace(None)
        handler = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, before)
    assert sent and handler is _raise_terminated
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_command_line_runs_in_a_worker_thread(tmp_path: Path) -> None:
    from prismatic_usage.cli import main

    codes: list[int] = []
    argv = ["--demo", "--start-date", "2025-03-01", "--end-date", "2025-03-01", "--quiet",
            "--output-dir", str(tmp_path)]  # fmt: skip
    worker = threading.Thread(target=lambda: codes.append(main(argv)))
    worker.start()
    worker.join(120)
    assert codes == [0]
    assert (tmp_path / "customer-instance-data.csv").is_file()


def test_reports_left_by_an_earlier_run_are_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_set(tmp_path)  # csv and parquet
    write_reports(customer_frame(["a"]), compute_frame(["b"]), tmp_path)  # csv only
    assert "customer-instance-data.parquet, instance-compute-data.parquet" in caplog.text
    assert "from an earlier run" in caplog.text
