"""Progress for long fetches: a tqdm bar in terminals and notebooks, or a callback.

The fetcher reports a :class:`~prismatic_usage.client.FetchProgress` after every
request; this module turns ``progress=True`` into a bar that shows what a user
understands: the phase (``listing customers``, ``listing instances``, ``fetching
usage``), pages fetched against pages known to be needed, and records received.
The bar appears only where a person is watching (stderr is a terminal, or a
Jupyter kernel), never in logs or pipes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .units import PHASES, FetchProgress

__all__ = ["MIN_BAR", "ProgressArg", "bar_format", "progress_reporter"]

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


#: Bar characters kept at any terminal width from 60 columns up: the fields
#: beside the bar are dropped first, least useful first.
MIN_BAR = 20
#: Seconds between two redraws (a fetch can answer hundreds of requests a second).
MIN_INTERVAL = 0.1
_PHASE_WIDTH = max(len(phase) for phase in PHASES)


def format_interval(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` from an hour on (as tqdm writes times)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def bar_format(event: FetchProgress, width: int, elapsed: float) -> str:
    """The bar's line for ``event`` at ``width`` columns, as a tqdm ``bar_format``.

    The line reads ``fetching usage  45%|█████…| 540/1,200 pages, 98,312 records
    [00:03<00:04]``: the phase, pages done of pages known to be needed, records
    received, elapsed and remaining time. Where the terminal is too narrow to
    keep :data:`MIN_BAR` bar characters, the remaining time goes first (it is the
    least reliable: the total grows while usage streams are planned), then the
    elapsed time, then the records, then the phase's padding (which otherwise
    keeps the bar in place when the phase changes); the pages always stay. The
    remaining time
    is shown only once usage is fetched, at the average rate so far.

    Parameters
    ----------
    event
        The latest progress report.
    width
        The terminal's columns.
    elapsed
        Seconds since the fetch started.
    """
    total = max(event.pages_total, event.pages_done, 1)
    percent = 100 * event.pages_done // total
    left = f"{event.phase:<{_PHASE_WIDTH}} {percent:3d}%|"
    pages = f"| {event.pages_done:,}/{total:,} pages"
    records = f", {event.rows:,} records"
    spent = format_interval(elapsed)
    fields = [f"{pages}{records} [{spent}]", f"{pages}{records}", pages]
    if event.phase == PHASES[-1] and 0 < event.pages_done < total:
        left_s = elapsed * (total - event.pages_done) / event.pages_done
        fields.insert(0, f"{pages}{records} [{spent}<{format_interval(left_s)}]")
    right = next((f for f in fields if width - len(left) - len(f) >= MIN_BAR), None)
    if right is None:  # narrower still: the phase keeps no padding
        left, right = f"{event.phase} {percent}%|", pages
    return (left + "{bar}" + right.replace("{", "{{").replace("}", "}}")).replace(
        "{{bar}}", "{bar}"
    )


def _terminal_width() -> int:
    """stderr's columns now (a terminal may be resized mid-run); 100 where unknown."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 100
    except (AttributeError, OSError, ValueError):
        return 100


@contextlib.contextmanager
def progress_reporter(progress: ProgressArg) -> Iterator[Callable[[Any], None] | None]:
    """A callback for the fetcher: the caller's own, a tqdm bar, or None.

    The bar counts pages fetched against pages known to be needed, with the
    phase (listing customers, listing instances, fetching usage) and records
    received (see :func:`bar_format` for the line and :class:`FetchProgress`
    for how the total grows). It is drawn as soon as the fetch starts (before
    the first answer) and redrawn at most every :data:`MIN_INTERVAL` seconds,
    and it is fitted to the terminal's width on every redraw. A fetch that
    finishes leaves its last line (every page counted); one that fails clears
    it, so its error is the one line left.

    Parameters
    ----------
    progress
        ``True``: a bar when someone is watching (stderr is a terminal, or a
        Jupyter kernel with ipywidgets); ``False``/``None``: none; a callable:
        itself, called with every :class:`FetchProgress`.
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
    started = time.monotonic()
    bar = bar_class(
        total=1,
        bar_format=PHASES[0],
        leave=True,
        file=sys.stderr,
        delay=0,
        mininterval=MIN_INTERVAL,
    )
    last_drawn = -MIN_INTERVAL

    def update(event: FetchProgress) -> None:
        nonlocal last_drawn
        now = time.monotonic()
        finished = event.pages_done >= event.pages_total
        if now - last_drawn < MIN_INTERVAL and not finished:
            return
        last_drawn = now
        width = _terminal_width()
        bar.total = max(event.pages_total, event.pages_done, 1)
        bar.n = event.pages_done
        bar.ncols = width
        bar.bar_format = bar_format(event, width, now - started)
        bar.refresh()

    try:
        yield update
    except BaseException:
        bar.leave = False  # the error is the one line left
        raise
    finally:
        bar.close()
