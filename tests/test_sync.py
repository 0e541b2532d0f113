"""The sync wrapper: works inside a running loop, and an interrupt cancels the work."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

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
