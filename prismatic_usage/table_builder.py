"""Building a record table from JSON pages: :class:`TableBuilder` and the value checks.

Values arrive as plain JSON (timestamps and dates as ISO strings, BigInt as
numbers or numeric strings) and are converted to the declared Arrow type of
their field, with every refusal naming the field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import MalformedResponseError

# The records' logger: a repaired value is reported as the records' concern.
log = logging.getLogger("prismatic_usage.records")

__all__ = ["GRAPHQL_INT_MAX", "TableBuilder"]

_INT64_MAX = 2**63 - 1
#: GraphQL's ``Int`` is a signed 32-bit integer; these fields are ``Int!`` in the schema.
GRAPHQL_INT_MAX = 2**31 - 1
_GRAPHQL_INT_FIELDS = frozenset({"deployed_instance_count", "deployed_unique_integration_count"})
# Text shown to people, not used as a key: repaired rather than refused when invalid.
_DISPLAY_TEXT_FIELDS = frozenset({"name", "external_id", "integration_name"})
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _exact_int(value: Any, *, field_name: str) -> int:
    """A BigInt/Int value as an exact Python int.

    Accepts JSON integers, decimal integer strings (BigInt may be sent as text)
    and whole floats below 2**53 (still exact); anything else names the field.
    """
    if isinstance(value, bool):
        raise MalformedResponseError(f"field {field_name!r}: expected an integer, got {value!r}")
    if isinstance(value, int):
        result = value
    elif (isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip())) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 2**53
    ):
        result = int(value)
    else:
        raise MalformedResponseError(f"field {field_name!r}: expected an integer, got {value!r}")
    if not -_INT64_MAX - 1 <= result <= _INT64_MAX:
        raise MalformedResponseError(f"field {field_name!r}: {result} does not fit in int64")
    return result


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
        arrays = [_to_arrow(columns[f.name], f) for f in self.schema]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def finish(self) -> pa.Table:
        """The accumulated rows as one table with the declared schema (in order)."""
        self._flush(None)  # the last, partial chunk: a thread would only add a hop
        batches = [b.result() if isinstance(b, Future) else b for b in self._batches]
        if not batches:
            return self.schema.empty_table()
        return pa.Table.from_batches(batches, schema=self.schema)


def _to_arrow(values: Sequence[Any], f: pa.Field) -> pa.Array:
    """Convert one column of JSON values to the field's type, naming the field on failure."""
    try:
        if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
            if not all(type(v) is str for v in values):
                bad = next(v for v in values if type(v) is not str)
                raise MalformedResponseError(
                    f"field {f.name!r}: expected an ISO string, got {bad!r}"
                )
            array = pc.cast(pa.array(values, type=pa.string()), f.type)
        elif pa.types.is_integer(f.type):
            if not all(type(v) is int for v in values):
                # BigInt may arrive as numeric strings; never let a float through.
                values = [_exact_int(v, field_name=f.name) for v in values]
            array = pa.array(values, type=f.type)
            _check_count_range(array, f.name)
        else:
            if not all(v is None or type(v) is str for v in values):
                bad = next(v for v in values if not (v is None or type(v) is str))
                raise MalformedResponseError(f"field {f.name!r}: expected a string, got {bad!r}")
            try:
                array = pa.array(values, type=f.type)
            except UnicodeEncodeError:
                array = pa.array(_valid_text(values, f.name), type=f.type)
    except UnicodeEncodeError:
        raise MalformedResponseError(
            f"field {f.name!r}: a value holds an invalid character (a lone surrogate); "
            "report this to Prismatic"
        ) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise MalformedResponseError(f"field {f.name!r}: {exc}") from exc
    if not f.nullable and array.null_count:
        raise MalformedResponseError(f"field {f.name!r}: missing value in a non-null field")
    return array


def _check_count_range(array: pa.Array, name: str) -> None:
    """Every integer field here is a count (or MB-seconds): refuse negatives and, for
    the schema's ``Int!`` fields, values beyond GraphQL's 32-bit ``Int`` range."""
    if not len(array):
        return
    low, high = pc.min_max(array).values()
    if low.as_py() is not None and low.as_py() < 0:
        raise MalformedResponseError(
            f"field {name!r}: {low.as_py()} is negative, which a count cannot be; "
            "report this to Prismatic"
        )
    if name in _GRAPHQL_INT_FIELDS and high.as_py() is not None and high.as_py() > GRAPHQL_INT_MAX:
        raise MalformedResponseError(
            f"field {name!r}: {high.as_py()} is outside GraphQL's Int range "
            f"(at most {GRAPHQL_INT_MAX}); report this to Prismatic"
        )


def _valid_text(values: Sequence[str | None], name: str) -> list[str | None]:
    """``values`` with lone surrogates (invalid in UTF-8) replaced by U+FFFD.

    A JSON string may carry ``\\ud800`` alone, which no UTF-8 file can hold. A
    name or external ID is display text, so it is repaired with a warning; an ID
    is a key, and a repaired key could merge two records, so it is refused (the
    caller turns the ``UnicodeEncodeError`` into a ``MalformedResponseError``).
    """
    if name not in _DISPLAY_TEXT_FIELDS:
        raise UnicodeEncodeError("utf-8", "", 0, 1, "surrogates not allowed")
    repaired = [
        None if v is None else v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        for v in values
    ]
    changed = sum(a != b for a, b in zip(values, repaired, strict=True))
    log.warning("field %r: replaced invalid characters in %d value(s) with U+FFFD", name, changed)
    return repaired
