"""Run a coroutine to completion from synchronous code, even inside Jupyter.

``asyncio.run`` and gql's ``client.execute`` both fail when an event loop is
already running in the thread (every notebook cell). Then the coroutine runs on
a fresh loop in one worker thread instead; the caller's loop is never touched
(no ``nest_asyncio``). Interrupting the caller (Ctrl-C, the notebook's stop
button) cancels the coroutine too, so no fetch goes on in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, whether or not this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)

    started = threading.Event()
    running: dict[str, Any] = {}

    async def tracked() -> T:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await coroutine

    with ThreadPoolExecutor(1, thread_name_prefix="prismatic-usage") as executor:
        future = executor.submit(asyncio.run, tracked())
        try:
            # Wake up now and then: a signal delivered to another thread is only
            # acted on when this (main) thread runs Python code again.
            while not future.done():
                wait([future], timeout=0.1)
            return future.result()
        except KeyboardInterrupt:
            if started.wait(timeout=5):
                with contextlib.suppress(RuntimeError):  # the loop may just have closed
                    running["loop"].call_soon_threadsafe(running["task"].cancel)
            raise  # leaving the executor waits until the cancelled fetch has closed
