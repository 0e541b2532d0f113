"""Tests for prismatic_usage._json_arrow: the one-pass path agrees with the checked path."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage._json_arrow import to_arrow
from prismatic_usage.errors import MalformedResponseError

COUNT = pa.field("step_count", pa.int64(), nullable=False)
NAME = pa.field("name", pa.string())
ID = pa.field("id", pa.string(), nullable=False)
WHEN = pa.field("snapshot_time", pa.timestamp("us", tz="UTC"), nullable=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), max_size=20))
def test_ints_convert_as_the_checked_path_does(values: list[int]) -> None:
    # BigInt text at the end forces the value-by-value path for the same values.
    checked = to_arrow([*values, "7"], COUNT)
    assert to_arrow(values, COUNT).equals(checked.slice(0, len(values)))
    assert to_arrow(values, COUNT).to_pylist() == values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=20))
def test_text_converts_as_the_checked_path_does(values: list[str | None]) -> None:
    # A lone surrogate in display text forces the repairing path.
    checked = to_arrow([*values, "\ud800"], NAME)
    assert to_arrow(values, NAME).equals(checked.slice(0, len(values)))
    assert to_arrow(values, NAME).to_pylist() == values


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ([1, True], COUNT, "expected an integer, got True"),
        ([True], COUNT, "expected an integer, got True"),
        ([1, 2.5], COUNT, "expected an integer, got 2.5"),
        ([1, None], COUNT, "expected an integer, got None"),
        ([1, -1], COUNT, "is negative"),
        ([2**63], COUNT, "too large"),
        (["9223372036854775808"], COUNT, "does not fit in int64"),
        (["a", 1], ID, "expected a string, got 1"),
        (["a", None], ID, "missing value"),
        (["a\ud800"], ID, "lone surrogate"),
        (["2025-01-01T00:00:00Z", 5], WHEN, "expected an ISO string, got 5"),
        (["2025-01-01T00:00:00Z", None], WHEN, "expected an ISO string, got None"),
    ],
)
def test_wrong_values_are_refused_naming_the_field(
    values: list[Any], field: pa.Field, message: str
) -> None:
    with pytest.raises(MalformedResponseError, match=field.name) as caught:
        to_arrow(values, field)
    assert message in str(caught.value)


def test_whole_floats_and_bigint_text_are_exact() -> None:
    assert to_arrow([1, 2.0, " 3 ", "9007199254740993"], COUNT).to_pylist() == [
        1,
        2,
        3,
        9007199254740993,
    ]


def test_iso_strings_become_utc_microseconds() -> None:
    array = to_arrow(["2025-01-01T01:02:03.000004Z"], WHEN)
    assert array.type == WHEN.type
    assert array.cast(pa.int64()).to_pylist() == [1735693323000004]
