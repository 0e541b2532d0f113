"""pandas, imported in a background thread while the first requests are in flight.

pyarrow imports pandas the first time it converts a Python list to an array
(``pa.array`` asks whether the list is a pandas object), which a fetch does
as soon as its first stream is answered: about 0.4 s of imports on the event
loop, in the middle of the first second, while the first answers wait to be
read and the next requests to be sent. Every report needs pandas afterwards
anyway. So a fetch starts importing it in a thread of its own as it starts
sending (:func:`start`): the import overlaps the first round trips instead
of following them. pyarrow's import of pandas is behind a lock, and Python's
per-module import locks make whoever needs the module meanwhile wait for
this thread to finish it.

The thread is not a daemon: a process that ends early waits for the import
to finish (a fraction of a second) rather than tearing it down half-way.
"""

from __future__ import annotations

import importlib
import sys
import threading

__all__ = ["MODULES", "start"]

#: What the thread imports: pandas, and pyarrow's side of it (as ``pa.array`` would).
MODULES = ("pandas", "pyarrow.pandas_compat")

_lock = threading.Lock()
_started = False


def start() -> None:
    """Start importing :data:`MODULES` in a background thread (once a process; no-op if loaded)."""
    global _started
    with _lock:
        if _started or all(name in sys.modules for name in MODULES):
            return
        _started = True
    threading.Thread(target=_import, name="prismatic-usage-import", daemon=False).start()


def _import() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            return
