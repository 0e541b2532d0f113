"""Progress for long fetches: a tqdm bar in terminals and notebooks, or a callback.

The fetcher reports a :class:`~prismatic_usage.client.FetchProgress` after every
request; this module turns ``progress=True`` into a bar that shows streams done
of streams planned, requests and rows. The bar appears only where a person is
watching (stderr is a terminal, or a Jupyter kernel), never in logs or pipes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["ProgressArg", "progress_reporter"]

P = TypeVar("P")
ProgressArg = bool | Callable[[Any], None] | None


def _in_jupyter() -> bool:
    """Whether this code runs in a Jupyter kernel (not merely has ipykernel imported)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _watched() -> bool:
    """Whether someone is likely looking at stderr (a terminal or a notebook)."""
    if _in_jupyter():
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _tqdm_class() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but a stripped install should still fetch
        return None
    if not _in_jupyter():
        return tqdm
    # In Jupyter the bar is a widget; without ipywidgets tqdm.auto warns and a
    # text bar lands in the cell's stderr, so then there is no bar at all.
    if importlib.util.find_spec("ipywidgets") is None:
        return None
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm


@contextlib.contextmanager
def progress_reporter(progress: ProgressArg) -> Iterator[Callable[[Any], None] | None]:
    """A callback for the fetcher: the caller's own, a tqdm bar, or None.

    ``True`` means a bar when someone is watching; ``False``/``None`` means none.
    """
    if callable(progress):
        yield progress
        return
    if not progress or not _watched():
        yield None
        return
    bar_class = _tqdm_class()
    if bar_class is None:
        yield None
        return
    bar = bar_class(total=0, unit="stream", desc="fetching", leave=False, file=sys.stderr)

    def update(event: Any) -> None:
        bar.total = event.entities_total
        bar.n = event.entities_done
        bar.set_postfix(requests=event.requests, rows=event.rows, refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
