"""Tests for prismatic_usage._distinct (the fast distinctness check agrees with a set) and _distinct_values."""

from __future__ import annotations

import itertools
from unittest import mock

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage import _distinct
from prismatic_usage._distinct import all_distinct, distinct_count

# Few letters and short lengths make repeats likely; one length exercises the hashed path.
ids = st.text(alphabet="ab\u00e9", min_size=0, max_size=9)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(ids, max_size=30),
    width=st.one_of(st.none(), st.integers(0, 12)),
    cuts=st.lists(st.integers(0, 30), max_size=3),
    offset=st.integers(0, 3),
)
def test_agrees_with_a_python_set(
    values: list[str], width: int | None, cuts: list[int], offset: int
) -> None:
    if width is not None:
        values = [v.encode()[:width].decode(errors="ignore").ljust(width, "x") for v in values]
    padded = ["pad"] * offset + values
    sliced = pa.array(padded, pa.string()).slice(offset)
    bounds = sorted({0, len(values), *(c for c in cuts if c <= len(values))})
    chunked = pa.chunked_array(
        [sliced.slice(a, b - a) for a, b in itertools.pairwise(bounds)] or [sliced],
        type=pa.string(),
    )
    expected = len(set(values))
    for small_rows in (_distinct._SMALL_ROWS, 0):  # the set's path, then the hashes'
        with mock.patch.object(_distinct, "_SMALL_ROWS", small_rows):
            for column in (sliced, chunked):
                assert all_distinct(column) == (expected == len(values))
                assert distinct_count(column) == expected


def test_long_equal_length_ids_with_one_repeat() -> None:
    values = [f"Q3VzdG9tZXI6{n:048d}" for n in range(5_000)]
    assert all_distinct(pa.array(values))
    assert not all_distinct(pa.array([*values, values[1234]]))
    assert distinct_count(pa.chunked_array([values, values[:10]])) == 5_000


def test_nulls_are_not_counted_as_values() -> None:
    for column in (pa.array(["a", None, "b"]), pa.array(["a", None, "b"] * 400)):
        assert distinct_count(column) == 2  # small (a set) and large (hashes, then exact)
        assert not all_distinct(column)
    assert all_distinct(pa.array(["x", "y"])) and not all_distinct(pa.array(["x", "x"]))


def test_per_distinct_value_answers_each_row_through_its_chunks_dictionary() -> None:
    import pyarrow.compute as pc

    from prismatic_usage._distinct_values import per_distinct_value

    wanted = pa.array(["a", "c"])
    column = pa.chunked_array(
        [
            pa.array(["a", "b", "a"]).dictionary_encode(),  # dictionary [a, b]
            pa.array(["c", "a"]).dictionary_encode(),  # another: [c, a]
        ]
    )
    positions = per_distinct_value(column, lambda ids: pc.index_in(ids, value_set=wanted))
    assert positions.to_pylist() == [0, None, 0, 1, 0]
    plain = pa.chunked_array([pa.array(["b", "c"])])
    assert per_distinct_value(plain, lambda ids: pc.is_in(ids, value_set=wanted)).to_pylist() == [
        False,
        True,
    ]
    empty = pa.chunked_array([], pa.dictionary(pa.int32(), pa.string()))
    assert per_distinct_value(empty, lambda ids: pc.is_in(ids, value_set=wanted)).to_pylist() == []


def test_per_distinct_value_asks_a_plain_column_once_whatever_its_chunks() -> None:
    import pyarrow.compute as pc

    from prismatic_usage._distinct_values import per_distinct_value

    wanted = pa.array(["a", "c"])
    calls: list[int] = []

    def is_wanted(ids: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
        calls.append(len(ids))
        return pc.is_in(ids, value_set=wanted)

    plain = pa.chunked_array([["a", "b"], ["c"], ["x"], ["a", None]])
    assert per_distinct_value(plain, is_wanted).to_pylist() == [
        True, False, True, False, True, False
    ]  # fmt: skip
    assert calls == [6]  # one call for all four chunks
    encoded = pa.chunked_array(
        [pa.array(["b", "a", "b"]).dictionary_encode(), pa.array(["c"]).dictionary_encode()]
    )
    assert per_distinct_value(encoded, is_wanted).to_pylist() == [False, True, False, True]
    assert calls[1:] == [2, 1]  # each chunk's dictionary, not its rows
    assert per_distinct_value(pa.array(["c"]), is_wanted).to_pylist() == [True]


def test_with_one_dictionary_keeps_only_used_values_sorted_and_shared() -> None:
    from prismatic_usage._distinct_values import with_one_dictionary

    first = pa.array(["sys", "b", "a"]).dictionary_encode().slice(1)  # "sys" unused now
    second = pa.array(["c", "b", None]).dictionary_encode()
    table = pa.table({"owner": pa.chunked_array([first, second]), "n": [1, 2, 3, 4, 5]})
    one = with_one_dictionary(table, "owner")
    assert one.column("owner").to_pylist() == ["b", "a", "c", "b", None]
    assert [c.dictionary.to_pylist() for c in one.column("owner").chunks] == [["a", "b", "c"]] * 2
    assert one.schema == table.schema and one.column("n").equals(table.column("n"))
    grouped = one.group_by("owner").aggregate([("n", "sum")]).to_pydict()
    assert dict(zip(grouped["owner"], grouped["n_sum"], strict=True)) == {
        "a": 2,
        "b": 5,
        "c": 3,
        None: 5,
    }
    plain = pa.table({"owner": ["x"]})
    assert with_one_dictionary(plain, "owner") is plain


def test_only_known_drops_null_owners_encoded_or_not() -> None:
    from prismatic_usage.collector import only_known

    for owners in (pa.array(["a", None, "b"]), pa.array(["a", None, "b"]).dictionary_encode()):
        table = pa.table({"owner": owners, "n": [1, 2, 3]})
        assert only_known(table, "owner", pa.array(["a", "b"])).column("n").to_pylist() == [1, 3]
