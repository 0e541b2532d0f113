"""Durable file primitives: atomic replace with fsync, and the store's lock.

A file is written to a hidden temporary sibling, flushed and fsynced, moved over
its target with ``os.replace`` and the directory is fsynced, so after a crash a
reader sees either the old file or the new one, never a torn one. Temporary
names start with ``.`` and end in ``.tmp``: Spark and glob patterns such as
``*.parquet`` never read them, and :func:`remove_temporaries` clears what a
killed run left behind.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from .._atomic import fsync_dir, temp_name, write_temp
from ..errors import StoreError, StoreLockedError

__all__ = [
    "StoreLock",
    "atomic_write",
    "fsync_dir",
    "read_parquet",
    "remove_temporaries",
    "sha256_of",
    "write_parquet_atomically",
]


def make_dirs(directory: Path) -> None:
    """Create ``directory`` and its parents, each new entry made durable."""
    missing: list[Path] = []
    path = directory
    while not path.exists():
        missing.append(path)
        path = path.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_dir(new.parent)


def atomic_write(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``target`` through ``write(fh)`` so that it appears whole or not at all."""
    make_dirs(target.parent)
    temp = temp_name(target)
    try:
        write_temp(temp, target, write)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_parquet_atomically(target: Path, table: pa.Table) -> None:
    """Write ``table`` as one Parquet file at ``target`` (atomic, durable)."""
    atomic_write(target, lambda fh: pq.write_table(table, fh, compression="zstd"))


def read_parquet(path: Path, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet file of the store, checked to carry ``schema`` (or its ``columns``, read alone)."""
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    try:
        table = pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"cannot read {path}: {exc}; the store is damaged") from exc
    if not table.schema.equals(schema, check_metadata=False):
        raise StoreError(
            f"{path} has columns {table.schema.names} of other types than this version "
            f"writes ({schema.names}); was it written by another tool?"
        )
    return table


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_temporaries(root: Path) -> int:
    """Delete every ``.*.tmp`` file under ``root`` (left by a killed run); returns how many."""
    removed = 0
    for temp in _walk_temporaries(root):
        temp.unlink(missing_ok=True)
        removed += 1
    return removed


def _walk_temporaries(root: Path) -> Iterator[Path]:
    for directory, _, names in os.walk(root):
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                yield Path(directory, name)


class StoreLock:
    """An exclusive, non-blocking lock on a store (``DIR/.lock``, via ``flock``).

    The operating system drops it when the holder exits, however it exits, so
    a killed run never leaves a stale lock behind.
    """

    def __init__(self, root: Path) -> None:
        self._path = root / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StoreLockedError` naming the holder."""
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreLockedError(
                    f"the store {self._path.parent} is in use by another run (pid {holder}); "
                    "wait for it to finish, then run again"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
