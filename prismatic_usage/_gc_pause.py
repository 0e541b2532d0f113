"""One counted pause of the cyclic garbage collector, shared by every thread of the process.

Parsing a large JSON answer or a GraphQL document builds ~10^5 fresh objects with
no cycles, and the collector's passes over them while they are built are pure
overhead (about half of a 10,000-node answer's parse on a large heap). The pause
is counted under one lock, so threads parsing at once turn the collector on
again only when the last one is done, and only if it was on when the first one
began: a host that turned it off keeps it off. (A host that toggles the
collector from another thread *during* a pause races with it, as with any
library that pauses it.)
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_lock = threading.Lock()
_pausers = 0


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """The cyclic garbage collector off inside (if ``pause``), as it was again after.

    Parameters
    ----------
    pause
        False leaves the collector alone (a caller that decides at run time).
    """
    global _pausers
    if not pause:
        yield
        return
    with _lock:
        if _pausers == 0 and not gc.isenabled():
            pause = False  # the host turned it off: leave it so
        else:
            _pausers += 1
            gc.disable()
    try:
        yield
    finally:
        if pause:
            with _lock:
                _pausers -= 1
                if _pausers == 0:
                    gc.enable()
