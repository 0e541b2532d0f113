"""JSON values to Arrow arrays of a declared field, checked (pure).

Each page's columns arrive as plain JSON values. The usual column converts in one
pass in C: Arrow infers its type, and when that is the JSON type the field needs
(int64 from Python ints, strings for text and ISO timestamps) no value needs a
Python-level check. Anything else (BigInt text, floats, bools, nulls, lone
surrogates) takes the value-by-value path, which accepts or names the offending
value exactly as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import MalformedResponseError

log = logging.getLogger("prismatic_usage.records")

__all__ = ["GRAPHQL_INT_MAX", "to_arrow"]

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


def to_arrow(values: Sequence[Any], f: pa.Field) -> pa.Array:
    """Convert one column of JSON values to the field's type, naming the field on failure.

    Parameters
    ----------
    values
        The column's values as JSON decoded them (timestamps and dates as strings).
    f
        The schema field: its type, name and whether it may hold nulls.
    """
    if pa.types.is_dictionary(f.type):
        # Checked as its values' type, then each distinct value held once.
        plain = to_arrow(values, f.with_type(f.type.value_type))
        return plain.dictionary_encode().cast(f.type)
    try:
        inferred = _inferred(values)
        if inferred is not None and _plain(inferred, f.type):
            # One pass in C proved every value has the JSON type the field needs.
            array = pc.cast(inferred, f.type) if inferred.type != f.type else inferred
            if pa.types.is_integer(f.type):
                _check_count_range(array, f.name)
        elif pa.types.is_timestamp(f.type) or pa.types.is_date(f.type):
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


def _inferred(values: Sequence[Any]) -> pa.Array | None:
    """``values`` as Arrow infers them, or ``None`` if they do not convert as one type.

    Lone surrogates give ``None`` too: the slow path repairs or refuses them.
    """
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError):
        return None


def _plain(inferred: pa.Array, target: pa.DataType) -> bool:
    """Whether values inferred as ``inferred.type`` need no per-value checks for ``target``.

    Integers must have been Python ints (int64, not floats, bools or text) and
    timestamps and dates ISO strings, all without nulls (those get the slow path's
    message); text fields take strings and, where nullable, nulls.
    """
    if pa.types.is_integer(target):
        return bool(inferred.type == pa.int64() and not inferred.null_count)
    if pa.types.is_timestamp(target) or pa.types.is_date(target):
        return bool(inferred.type == pa.string() and not inferred.null_count)
    return bool(inferred.type in (pa.string(), pa.null()) and target == pa.string())


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
