"""Dictionary-encoded columns: functions asked once per distinct value, and one shared dictionary."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["per_distinct_value", "with_one_dictionary"]


def per_distinct_value(
    column: pa.ChunkedArray | pa.Array,
    function: Callable[[pa.ChunkedArray | pa.Array], pa.ChunkedArray | pa.Array],
) -> pa.ChunkedArray:
    """``function(column)`` for an elementwise ``function``, run on each dictionary's values once.

    Arrow's kernels decode a dictionary-encoded column row by row (``index_in``
    over a million owner IDs costs 1.5-4x the plain text, by pyarrow version);
    asking the dictionary and taking each row's answer by its index costs about
    a third of the plain text. A plain column goes to ``function`` whole, in one
    call (a ``pc.is_in`` hashes its value set once a call: once per chunk over the
    2,060 one-instance chunks of a 1,000-customer month took 20x as long).

    Parameters
    ----------
    column
        Plain or dictionary-encoded values (chunks may have different dictionaries).
    function
        An elementwise Arrow function of the plain values (an array or a chunked
        array), e.g. a ``pc.is_in``.
    """
    if not pa.types.is_dictionary(column.type):
        answer = function(column)
        return answer if isinstance(answer, pa.ChunkedArray) else pa.chunked_array([answer])
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    results = [pc.take(function(chunk.dictionary), chunk.indices) for chunk in chunks]
    if not results:
        return pa.chunked_array([function(pa.array([], column.type.value_type))])
    return pa.chunked_array(results)


def with_one_dictionary(table: pa.Table, name: str) -> pa.Table:
    """``table`` whose dictionary column ``name`` shares one sorted dictionary of the values used.

    Chunks converted apart carry dictionaries of their own (and an org-wide
    stream's the IDs of system customers whose rows were dropped). Arrow's
    ``group_by`` and ``join`` refuse differing dictionaries, and pandas orders a
    categorical by its categories; one sorted dictionary holding exactly the
    values the rows use makes the column group, join and sort as text does,
    and equal data compare equal. Each chunk's indices are remapped (4 bytes a
    row, one chunk at a time); a plain column is returned as it is.

    Parameters
    ----------
    table
        Any Arrow table.
    name
        The column to give one dictionary, e.g. the snapshots' ``customer_id``.
    """
    column = table.column(name)
    if not pa.types.is_dictionary(column.type):
        return table
    used = [pc.take(chunk.dictionary, pc.unique(chunk.indices)) for chunk in column.chunks]
    values = pc.unique(pa.concat_arrays(used)) if used else pa.array([], column.type.value_type)
    values = pc.drop_null(values)
    values = pc.take(values, pc.sort_indices(values))
    chunks = [
        pa.DictionaryArray.from_arrays(
            pc.take(pc.index_in(chunk.dictionary, value_set=values), chunk.indices).cast(
                column.type.index_type
            ),
            values,
        )
        for chunk in column.chunks
    ]
    index = table.schema.get_field_index(name)
    return table.set_column(
        index, table.schema.field(index), pa.chunked_array(chunks, type=column.type)
    )
