"""Run a coroutine to completion from synchronous code, even inside Jupyter.

``asyncio.run`` and gql's ``client.execute`` both fail when an event loop is
already running in the thread (every notebook cell). Then the coroutine runs on
a fresh loop in one worker thread instead; the caller's loop is never touched
(no ``nest_asyncio``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, whether or not this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1, thread_name_prefix="prismatic-usage") as executor:
        return executor.submit(asyncio.run, coroutine).result()
