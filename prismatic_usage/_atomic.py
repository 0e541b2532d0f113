"""Atomic files and all-or-nothing sets of files, safe against exceptions and signals.

One file: :func:`write_temp` writes a hidden sibling (``.<name>.<random>.tmp``),
flushed and fsynced, which the caller then moves over the target with
:func:`os.replace` (the report exporter and the store both do so).

A set of files (the reports of one run): :func:`replace_all` moves every
temporary file onto its target so that the set ends up wholly old or wholly new
whatever happens: an ``OSError``, any other exception, ``KeyboardInterrupt``,
``SystemExit`` or a signal. Previous targets are kept as hard-linked (or,
where hard links are not possible, copied) backups ``.<name>.<pid>.bak`` until
every move succeeded; on any ``BaseException`` the backups are moved back and
targets that did not exist before are removed, and no ``.bak`` is left behind.

SIGINT and SIGTERM are deferred during the moves (and a rollback): a handler
that only records them is installed for that short time, then the previous
handlers are put back and the recorded signals are raised again, so they take
effect once the set is wholly old or wholly new. Deferral needs the main thread
(only it may install handlers); elsewhere the moves run without it and a
``BaseException`` still rolls back. :func:`completed_commits` counts the sets
moved into place, so that the command line can tell whether a signal that
ended a run landed before or after its reports were written.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

__all__ = [
    "completed_commits",
    "deferred_signals",
    "fsync_dir",
    "remove",
    "replace_all",
    "temp_name",
    "write_temp",
]

DEFERRED = (signal.SIGINT, signal.SIGTERM)
"""The signals :func:`deferred_signals` holds back."""

_completed = 0


def completed_commits() -> int:
    """How many sets :func:`replace_all` has moved into place in this process."""
    return _completed


def temp_name(target: Path) -> Path:
    """A new hidden temporary name next to ``target`` (``.<name>.<random>.tmp``)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")


def write_temp(temp: Path, target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``temp`` (the future ``target``) through ``write(fh)``, flushed and fsynced.

    The file is created exclusively (``x``), so permissions follow the umask
    like any new file, and it is removed again if anything goes wrong (any
    ``BaseException``). An ``OSError`` without a file name is given ``target``'s,
    which is what the user knows.
    """
    try:
        with open(temp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(target)
        raise


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def deferred_signals(signals: Sequence[int] = DEFERRED) -> Iterator[None]:
    """Hold ``signals`` back while the block runs; deliver them when it ends.

    In the main thread, each signal with a Python-level handler (not ignored)
    gets a handler that only records it; on leaving, the previous handlers are
    restored and each recorded signal is raised again with
    :func:`signal.raise_signal`, so it has exactly the effect it would have had
    (``KeyboardInterrupt``, the command line's ``Terminated``, or the default
    action). In any other thread handlers cannot be changed, so nothing is
    deferred there.
    """
    caught: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous: dict[int, Callable[[int, FrameType | None], Any] | int] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            handler = signal.getsignal(signum)
            if handler is not None and handler != signal.SIG_IGN:
                previous[signum] = handler
                signal.signal(signum, record)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def replace_all(moves: Sequence[tuple[Path, Path]]) -> None:
    """Move every ``(temp, target)`` into place: all of them, or none.

    On any exception or signal the previous targets are restored and new ones
    removed; backups are always removed. Signals are deferred during the moves
    (see :func:`deferred_signals`). Backups are made before, with signals
    live: an interruption there replaced nothing yet.
    """
    global _completed
    planned = [
        (target.with_name(f".{target.name}.{os.getpid()}.bak"), target) for _, target in moves
    ]
    backups: list[tuple[Path, Path]] = []
    try:
        for backup, target in planned:
            if target.exists():
                _back_up(target, backup)
                backups.append((backup, target))
        with deferred_signals():
            try:
                for temp, target in moves:
                    os.replace(temp, target)
                for directory in dict.fromkeys(target.parent for _, target in moves):
                    fsync_dir(directory)
            except BaseException:
                _roll_back(moves, backups)
                raise
            finally:
                remove(backup for backup, _ in planned)
            _completed += 1
    finally:
        remove(backup for backup, _ in planned)  # an interruption while backing up


def remove(paths: Iterable[Path]) -> None:
    """Delete ``paths`` that exist, with SIGINT/SIGTERM deferred so that all go."""
    with deferred_signals():
        for path in paths:
            path.unlink(missing_ok=True)


def _back_up(target: Path, backup: Path) -> None:
    """Keep ``target``'s current content as ``backup``: a hard link, else a copy."""
    backup.unlink(missing_ok=True)
    try:
        os.link(target, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(target, backup)


def _roll_back(moves: Sequence[tuple[Path, Path]], backups: list[tuple[Path, Path]]) -> None:
    """Put every backed-up target back and remove the targets that are new.

    A move happened when its temporary file is gone: that holds even when the
    interruption came after :func:`os.replace` did its work but before it returned.
    """
    restored = {target for _, target in backups}
    for backup, target in backups:
        os.replace(backup, target)
    for temp, target in moves:
        if target not in restored and not temp.exists():
            target.unlink(missing_ok=True)
