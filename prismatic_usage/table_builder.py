"""Building a record table from JSON pages, chunk by chunk: :class:`TableBuilder`.

Values arrive as plain JSON (timestamps and dates as ISO strings, BigInt as
numbers or numeric strings); :func:`prismatic_usage._json_arrow.to_arrow`
converts each column to its field's declared Arrow type, naming the field on
any refusal.

Rows wait as Python values (~370 bytes a snapshot) until a chunk is full. One
stream fills its chunks in turn, but a store's sync reads one stream per day,
and their pages interleave: hundreds of streams would each hold an unfinished
chunk (at 1,000 customers x 365 days, ~3 GB). The builders of one fetch
therefore share a :class:`ChunkConverter`, which bounds the rows they hold
together: over the bound, the builders holding most convert what they hold.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

import pyarrow as pa

from ._json_arrow import to_arrow

__all__ = ["ChunkConverter", "TableBuilder"]

_T = TypeVar("_T")


class TableBuilder:
    """Accumulates rows for one record kind and turns them into an Arrow table.

    Pages arrive as columns of plain JSON values (timestamps and dates still
    strings) and are converted to the declared schema in chunks of
    :attr:`CHUNK_ROWS`, so memory stays close to the Arrow size even for
    millions of rows.

    Parameters
    ----------
    schema
        The declared schema of the table.
    executor
        Where full chunks are converted (a fetch passes a one-thread pool, so the
        ~0.1 s of a 65,536-row chunk does not hold up the event loop and the
        pace). Chunks keep their order whatever the executor; a value that does
        not convert then raises from :meth:`finish`, not from the append that
        filled the chunk. None converts in the calling thread.
    """

    CHUNK_ROWS = 65_536

    def __init__(self, schema: pa.Schema, executor: Executor | None = None) -> None:
        self.schema = schema
        self._executor = executor
        self._names: list[str] = list(schema.names)
        self._columns: dict[str, list[Any]] = {name: [] for name in self._names}
        self._pending = 0
        self._batches: list[pa.RecordBatch | Future[pa.RecordBatch]] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append_columns(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Add equally long columns, one per schema field.

        Parameters
        ----------
        columns
            Field name to values, every schema field present.
        """
        lengths = {len(columns[name]) for name in self._names}
        if len(lengths) != 1:
            raise ValueError(f"columns of unequal length: {sorted(lengths)}")
        (count,) = lengths
        for name in self._names:
            self._columns[name].extend(columns[name])
        self._pending += count
        self._rows += count
        if isinstance(self._executor, ChunkConverter):
            self._executor.hold(self, count)  # may convert what this builder holds
        if self._pending >= self.CHUNK_ROWS:
            self._flush(self._executor)

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one row given as a mapping of field name to value.

        Parameters
        ----------
        row
            Field name to value; a missing field is None.
        """
        self.append_columns({name: [row.get(name)] for name in self._names})

    @property
    def pending(self) -> int:
        """Rows held as Python values, not yet converted."""
        return self._pending

    def _flush(self, executor: Executor | None) -> None:
        if not self._pending:
            return
        if isinstance(self._executor, ChunkConverter):
            self._executor.release(self._pending)
        columns, self._columns = self._columns, {name: [] for name in self._names}
        self._pending = 0
        if executor is None:
            self._batches.append(self._convert(columns))
        else:
            self._batches.append(executor.submit(self._convert, columns))

    def _convert(self, columns: dict[str, list[Any]]) -> pa.RecordBatch:
        """One chunk of JSON columns as a record batch of the schema."""
        arrays = [to_arrow(columns[f.name], f) for f in self.schema]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def finish(self) -> pa.Table:
        """The accumulated rows as one table with the declared schema (in order)."""
        self._flush(None)  # the last, partial chunk: a thread would only add a hop
        batches = [b.result() if isinstance(b, Future) else b for b in self._batches]
        if not batches:
            return self.schema.empty_table()
        return pa.Table.from_batches(_joined(batches, self.CHUNK_ROWS), schema=self.schema)


def _joined(batches: list[pa.RecordBatch], rows: int) -> list[pa.RecordBatch]:
    """``batches`` with runs of small ones joined into batches of up to ``rows`` rows.

    Chunks converted early (see :class:`ChunkConverter`) can be small; joining
    them copies one stream's small chunks, never a full one.
    """
    joined: list[pa.RecordBatch] = []
    run: list[pa.RecordBatch] = []
    for batch in [*batches, None]:
        if batch is not None and sum(b.num_rows for b in run) + batch.num_rows <= rows:
            run.append(batch)
            continue
        if run:
            joined.append(run[0] if len(run) == 1 else _concat(run))
        run = [] if batch is None else [batch]
    return joined


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch of ``batches``' rows (``pa.concat_batches`` is pyarrow 19+; we allow 16)."""
    table = pa.Table.from_batches(batches).combine_chunks()
    return pa.RecordBatch.from_arrays(
        [column.chunk(0) if column.num_chunks else pa.array([], column.type)
         for column in table.columns],
        schema=table.schema,
    )  # fmt: skip


class ChunkConverter(Executor):
    """Where the builders of one fetch convert their chunks, and how much they may hold.

    Every :class:`TableBuilder` given this as its executor counts the rows it
    holds as Python values here. When all of them together hold more than
    ``held_rows``, the builders holding most convert what they hold now (a
    smaller chunk, joined with its neighbours when the stream finishes) until at
    most half of it is held. Builders run on one thread (the event loop); only
    the conversions run on ``pool``.

    Parameters
    ----------
    pool
        Where chunks are converted; ``None`` converts in the calling thread.
    held_rows
        The most rows all builders together keep unconverted.
    """

    def __init__(self, pool: Executor | None, held_rows: int = 2 * TableBuilder.CHUNK_ROWS) -> None:
        self._pool = pool
        self.held_rows = held_rows
        self.held = 0
        self._builders: weakref.WeakSet[TableBuilder] = weakref.WeakSet()

    def hold(self, builder: TableBuilder, rows: int) -> None:
        """``builder`` now holds ``rows`` more; convert the largest holdings if over the bound.

        Parameters
        ----------
        builder
            The builder that took the rows.
        rows
            How many.
        """
        self._builders.add(builder)
        self.held += rows
        if self.held <= self.held_rows:
            return
        # Recount: a builder dropped unfinished (a stream read again) holds nothing now.
        holders = sorted(self._builders, key=lambda b: b.pending, reverse=True)
        self.held = sum(b.pending for b in holders)
        for holder in holders:
            if self.held <= self.held_rows // 2:
                break
            holder._flush(self)

    def release(self, rows: int) -> None:
        """A builder converted ``rows`` it held.

        Parameters
        ----------
        rows
            How many.
        """
        self.held -= rows

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on the pool (here, without one).

        Parameters
        ----------
        fn, args, kwargs
            The call.
        """
        if self._pool is not None:
            return self._pool.submit(fn, *args, **kwargs)
        done: Future[_T] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as exc:  # raised from finish(), as from a pool
            done.set_exception(exc)
        return done

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the pool down.

        Parameters
        ----------
        wait, cancel_futures
            As for :meth:`concurrent.futures.Executor.shutdown`.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
