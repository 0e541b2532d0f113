"""Building a record table from JSON pages, chunk by chunk: :class:`TableBuilder`.

Values arrive as plain JSON (timestamps and dates as ISO strings, BigInt as
numbers or numeric strings); :func:`prismatic_usage._json_arrow.to_arrow`
converts each column to its field's declared Arrow type, naming the field on
any refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any

import pyarrow as pa

from ._json_arrow import to_arrow

__all__ = ["TableBuilder"]


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

    def _flush(self, executor: Executor | None) -> None:
        if not self._pending:
            return
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
        return pa.Table.from_batches(batches, schema=self.schema)
