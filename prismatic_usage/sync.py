"""Run a coroutine to completion from synchronous code, even inside Jupyter.

``asyncio.run`` and gql's ``client.execute`` both fail when an event loop is
already running in the thread (every notebook cell). Then the coroutine runs on
a fresh loop in one worker thread instead; the caller's loop is never touched
(no ``nest_asyncio``). Interrupting the caller (Ctrl-C, the notebook's stop
button) cancels the coroutine too, so no fetch goes on in the background.

A signal handler that ends the program (the command line's SIGTERM) calls
:func:`interrupt_main_run` rather than raising where the main thread happens to
be: an exception raised inside a task's step is stored as that task's result,
and asyncio then prints "Task exception was never retrieved" with a traceback.
The coroutine is cancelled instead, as ``asyncio.run`` does for Ctrl-C, and
the handler's own ending runs once the loop has unwound.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Generic, NoReturn, TypeVar

__all__ = ["interrupt_main_run", "run_sync"]

T = TypeVar("T")


class _Run(Generic[T]):
    """One coroutine :func:`run_sync` runs on a loop of its own, and how to cancel it.

    Parameters
    ----------
    coroutine
        What to run; :meth:`main` is what the loop runs.
    """

    def __init__(self, coroutine: Coroutine[Any, Any, T]) -> None:
        self.coroutine = coroutine
        self.task: asyncio.Task[Any] | None = None
        self.began = threading.Event()
        #: Set by :func:`interrupt_main_run`: the run ends with ``then()``.
        self.then: Callable[[], NoReturn] | None = None

    async def main(self) -> T:
        """The coroutine, run by a task this object can cancel from any thread."""
        self.task = asyncio.current_task()
        self.began.set()
        if self.then is not None:  # interrupted before it began
            raise asyncio.CancelledError
        return await self.coroutine

    def cancel(self) -> None:
        """Cancel the task from any thread (a no-op before it began or once its loop closed)."""
        if self.task is not None:
            with contextlib.suppress(RuntimeError):  # the loop may just have closed
                self.task.get_loop().call_soon_threadsafe(self.task.cancel)  # wakes the loop


_main_run: _Run[Any] | None = None


def interrupt_main_run(then: Callable[[], NoReturn]) -> bool:
    """Cancel the coroutine :func:`run_sync` runs on the main thread; ``then()`` once it unwound.

    For a signal handler on the main thread. True when such a run is under way:
    it is cancelled (or, not started yet, never starts), and ``then`` is called
    as soon as ``run_sync`` has closed its loop, whatever the coroutine ended
    with. A repeat while it unwinds changes nothing (the first already ends it;
    raised in place, it could land in a task's step). False when no such run is
    under way: the handler should act at once itself.

    Parameters
    ----------
    then
        What ends the program: a function raising, e.g., ``KeyboardInterrupt``.
    """
    run = _main_run
    if run is None:
        return False
    if run.then is None:
        run.then = then
        run.cancel()
    return True


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, whether or not this thread already runs a loop.

    Parameters
    ----------
    coroutine
        What to run to completion.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_a_loop = False  # not run here: its errors would carry this one as context
    else:
        in_a_loop = True
    if not in_a_loop:
        if threading.current_thread() is threading.main_thread():
            return _run_on_main_thread(coroutine)
        return asyncio.run(coroutine)

    run = _Run(coroutine)
    with ThreadPoolExecutor(1, thread_name_prefix="prismatic-usage") as executor:
        future = executor.submit(asyncio.run, run.main())
        try:
            # Wake up now and then: a signal delivered to another thread is only
            # acted on when this (main) thread runs Python code again.
            while not future.done():
                wait([future], timeout=0.1)
            return future.result()
        except KeyboardInterrupt:
            if run.began.wait(timeout=5):
                run.cancel()
            raise  # leaving the executor waits until the cancelled fetch has closed


def _run_on_main_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)``, interruptible through :func:`interrupt_main_run`."""
    global _main_run
    if not asyncio.iscoroutine(coroutine):  # as asyncio.run (and so the thread path) says
        raise ValueError(f"a coroutine was expected, got {coroutine!r}")
    run = _Run(coroutine)
    wrapper = run.main()
    outer, _main_run = _main_run, run
    try:
        result = asyncio.run(wrapper)
    except BaseException:
        if run.then is None:
            raise
        run.then()  # the interruption's own ending replaces the cancellation
    finally:
        _main_run = outer
        wrapper.close()  # no "never awaited" warning for one that never started
        coroutine.close()
    if run.then is not None:
        run.then()
    return result
