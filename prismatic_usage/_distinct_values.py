"""Elementwise Arrow functions over dictionary-encoded columns, once per distinct value."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["per_distinct_value"]


def per_distinct_value(
    column: pa.ChunkedArray | pa.Array, function: Callable[[pa.Array], pa.Array]
) -> pa.ChunkedArray:
    """``function(column)`` for an elementwise ``function``, run on each dictionary's values once.

    Arrow's kernels decode a dictionary-encoded column row by row (``index_in``
    over a million owner IDs costs 4x the plain text); asking the dictionary
    and taking each row's answer by its index is ~10x cheaper. Plain chunks
    are passed to ``function`` as they are.

    Parameters
    ----------
    column
        Plain or dictionary-encoded values (chunks may have different dictionaries).
    function
        An elementwise Arrow function of the plain values, e.g. a ``pc.is_in``.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    results = [
        pc.take(function(chunk.dictionary), chunk.indices)
        if pa.types.is_dictionary(chunk.type)
        else function(chunk)
        for chunk in chunks
    ]
    if not results:
        value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        return pa.chunked_array([function(pa.array([], value_type))])
    return pa.chunked_array(results)
