"""Serve an aiohttp application from a daemon thread with its own event loop.

The sandbox must never run on its caller's loop: a synchronous client called from
that loop (a notebook cell, an async test) would block the very loop that has to
answer it (shared/notes/gql-pandas.md, section 3).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web

__all__ = ["ThreadedServer"]

#: How long in-flight requests get to finish when the server stops.
SHUTDOWN_TIMEOUT = 0.5


class ThreadedServer:
    """An application on ``host:port`` (0 = any free port) in a background thread.

    ``app_factory`` is called on every start: an aiohttp application binds to the
    loop that first runs it, and each start has a new loop.
    """

    def __init__(self, app_factory: Callable[[], web.Application], host: str, port: int) -> None:
        self._app_factory = app_factory
        self._host = host
        self._port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> int:
        """Start serving; returns once the socket listens, with the bound port.

        Raises
        ------
        OSError
            When the address cannot be bound (e.g. the port is taken).
        """
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, name="prismatic-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            error, self._error = self._error, None
            raise error
        assert self.port is not None
        return self.port

    def stop(self) -> None:
        """Stop serving and wait for the thread to end (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._setup())
            except BaseException as exc:  # reported to start()'s caller
                self._error = exc
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
                return
            finally:
                self._ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            self._cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            self._runner = None

    async def _setup(self) -> None:
        self._runner = web.AppRunner(
            self._app_factory(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    @staticmethod
    def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
