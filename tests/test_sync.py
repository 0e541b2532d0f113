"""The sync wrapper: works inside a running loop, and an interrupt cancels the work."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any, NoReturn

import pytest

from prismatic_usage.sync import run_sync


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_plain_call_and_call_inside_a_running_loop() -> None:
    assert run_sync(_answer()) == 42

    async def inside() -> int:
        return run_sync(_answer())

    assert asyncio.run(inside()) == 42


def test_an_interrupt_cancels_the_coroutine_in_the_worker_thread() -> None:
    script = textwrap.dedent(
        """
        import asyncio, signal, threading, sys
        from prismatic_usage.sync import run_sync

        state = {}

        async def slow():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise

        async def notebook_cell():
            threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,)).start()
            try:
                run_sync(slow())
            except KeyboardInterrupt:
                print("interrupted", state.get("cancelled"))

        # Like ipykernel (and unlike asyncio.run), keep Python's own SIGINT handler.
        asyncio.new_event_loop().run_until_complete(notebook_cell())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=25, check=False
    )
    assert result.stdout.strip() == "interrupted True", result.stderr


def test_errors_of_the_coroutine_come_through_inside_a_loop() -> None:
    async def times_out() -> None:
        raise TimeoutError("the coroutine's own timeout")

    async def inside() -> None:
        run_sync(times_out())

    try:
        asyncio.run(inside())
    except TimeoutError as exc:
        assert "own timeout" in str(exc)
    else:
        raise AssertionError("the coroutine's TimeoutError was swallowed")


class _Ended(Exception):
    """What the test's handler ends the program with."""


def _end() -> NoReturn:
    raise _Ended


def test_a_handler_interrupting_the_main_run_cancels_it_then_ends_after_the_loop() -> None:
    import signal

    from prismatic_usage.sync import interrupt_main_run

    assert not interrupt_main_run(_end)  # nothing runs: the handler must act itself
    answers: list[bool] = []

    def handler(*_: object) -> None:  # a repeat while it unwinds changes nothing
        answers.append(interrupt_main_run(_end) and interrupt_main_run(_end))

    previous = signal.signal(signal.SIGUSR1, handler)
    unwound: list[str] = []

    async def work(finish_anyway: bool) -> str:
        try:
            await asyncio.sleep(0)
            signal.raise_signal(signal.SIGUSR1)  # the handler runs inside this task's step
            await asyncio.sleep(30)
            return "not interrupted"
        except asyncio.CancelledError:
            unwound.append("cancelled")
            if finish_anyway:
                return "finished despite the cancel"
            raise
        finally:
            unwound.append("finally")

    try:
        for finish_anyway in (False, True):
            unwound.clear()
            try:
                run_sync(work(finish_anyway))
            except _Ended as exc:
                assert exc.__context__ is None or isinstance(
                    exc.__context__, asyncio.CancelledError
                )
            else:
                raise AssertionError("the interruption's ending was not raised")
            assert unwound == ["cancelled", "finally"]  # the coroutine unwound first
        assert answers == [True, True]
        assert run_sync(_answer()) == 42  # the next run is not interrupted
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_an_interruption_before_the_coroutine_began_means_it_never_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc
    import warnings

    from prismatic_usage import sync

    real_run = asyncio.run

    def interrupted_first(main: Any) -> Any:  # the signal lands before the task's first step
        assert sync.interrupt_main_run(_end)
        return real_run(main)

    monkeypatch.setattr(sync.asyncio, "run", interrupted_first)
    began: list[bool] = []

    async def work() -> None:
        began.append(True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(_Ended):
            run_sync(work())
        gc.collect()
    assert began == []
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_only_coroutines_are_run_on_any_thread() -> None:
    class Awaitable:
        def __await__(self) -> Any:
            yield from ()
            return 5

    with pytest.raises(ValueError, match="a coroutine was expected"):
        run_sync(Awaitable())  # type: ignore[arg-type]
