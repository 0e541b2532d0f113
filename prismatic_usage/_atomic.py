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

import contextlib
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

from .errors import OutputError

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

    Parameters
    ----------
    temp
        The temporary file to create (from :func:`temp_name`).
    target
        The file ``temp`` will replace; named in errors.
    write
        Writes the content to the open binary file.

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
        with contextlib.suppress(OSError):  # never hide what went wrong behind a clean-up
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

    Parameters
    ----------
    signals
        The signals to hold back (default SIGINT and SIGTERM).

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

    previous: dict[int, _Handler] = {}
    try:
        # Installed inside the try: a signal between two installs (its old handler
        # raising) still gets every installed handler put back.
        if threading.current_thread() is threading.main_thread():
            for signum in signals:
                handler = signal.getsignal(signum)
                if handler is not None and handler != signal.SIG_IGN:
                    previous[signum] = handler
                    signal.signal(signum, record)
        yield
    finally:
        _restore(list(previous.items()))
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


_Handler = Callable[[int, FrameType | None], Any] | int


def _restore(handlers: list[tuple[int, _Handler]]) -> None:
    """Put every ``(signal, handler)`` back, even when a signal delivered to an
    already restored handler raises while the others are still being restored;
    that exception is raised once all are back."""
    pending = list(handlers)
    error: BaseException | None = None
    while pending:
        try:
            for item in list(pending):
                signal.signal(*item)
                pending.remove(item)
        except BaseException as exc:  # e.g. KeyboardInterrupt from a restored handler
            error = error or exc
    if error is not None:
        raise error


def replace_all(moves: Sequence[tuple[Path, Path]]) -> None:
    """Move every ``(temp, target)`` into place: all of them, or none.

    Parameters
    ----------
    moves
        ``(temporary file, target)`` pairs, the temporary files fully written.

    Raises ``OutputError`` (naming the files and their kept backups) in the rare
    case that a rollback itself fails, e.g. a file system that turned read-only
    between two moves: the set is then mixed, and the error says so.

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
    kept: set[Path] = set()  # backups whose restore failed: the only copy of the old file
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
            except BaseException as exc:
                unrestored = _roll_back(moves, backups)
                if unrestored:
                    kept = {backup for backup, _ in backups if backup in unrestored}
                    raise _mixed_set(exc, unrestored) from exc
                raise
            finally:
                remove(backup for backup, _ in planned if backup not in kept)
            _completed += 1
    finally:  # an interruption while backing up
        remove(backup for backup, _ in planned if backup not in kept)


def remove(paths: Iterable[Path]) -> None:
    """Delete ``paths`` that exist, with SIGINT/SIGTERM deferred so that all go.

    Parameters
    ----------
    paths
        Temporary files or backups. One that cannot be deleted (a read-only file
        system) is left: a clean-up never replaces the error that caused it.
    """
    with deferred_signals():
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)


def _back_up(target: Path, backup: Path) -> None:
    """Keep ``target``'s current content as ``backup``: a hard link, else a copy."""
    backup.unlink(missing_ok=True)
    try:
        os.link(target, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(target, backup)


def _roll_back(
    moves: Sequence[tuple[Path, Path]], backups: list[tuple[Path, Path]]
) -> dict[Path, Path]:
    """Put every backed-up target back and remove the targets that are new.

    A move happened when its temporary file is gone: that holds even when the
    interruption came after :func:`os.replace` did its work but before it returned.
    Every step is tried, whatever fails; returns ``{backup or temp: target}`` for
    the targets that could not be put back (the backup then stays).
    """
    failed: dict[Path, Path] = {}
    moved = {target for temp, target in moves if not temp.exists()}
    for backup, target in backups:
        if target not in moved:
            continue  # never replaced: it still holds its old content
        try:
            os.replace(backup, target)
        except OSError:
            failed[backup] = target
    backed_up = {target for _, target in backups}
    for temp, target in moves:
        if target not in backed_up and not temp.exists():
            try:
                target.unlink(missing_ok=True)
            except OSError:
                failed[temp] = target
    return failed


def _mixed_set(cause: BaseException, unrestored: dict[Path, Path]) -> OutputError:
    """The one error a failed rollback gives: which files are new and where the old ones are."""
    kept = [backup.name for backup in unrestored if backup.name.endswith(".bak")]
    new = ", ".join(sorted(target.name for target in unrestored.values()))
    where = f"; the previous versions are kept as {', '.join(sorted(kept))}" if kept else ""
    return OutputError(
        f"the report set is mixed: writing failed ({type(cause).__name__}: {cause}) and "
        f"{new} could not be put back{where}; fix the file system and run again"
    )
