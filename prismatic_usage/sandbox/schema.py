"""The executable schema: the shipped SDL plus scalars and resolvers.

The sandbox serves exactly ``prismatic_usage/schema.graphql`` (the file the client
validates its queries against), so a query that works here is type-valid there.
Scalars behave like graphene's: DateTime is ``isoformat()`` with an offset, Date is
``YYYY-MM-DD`` and BigInt is a JSON number (exact above 2**53).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    IntValueNode,
    StringValueNode,
    ValueNode,
    build_schema,
)

from .fastpath import AttributeResolver, RelationResolver
from .resolvers import ROOT_RESOLVERS

__all__ = ["sandbox_schema", "schema_sdl"]

UTC = dt.UTC
_RECORD_TYPES = (
    "Customer",
    "Integration",
    "Instance",
    "CustomerTotalUsageMetrics",
    "InstanceDailyUsageMetrics",
    "OrgDailyUsageMetrics",
    "OrgTotalUsageMetrics",
)


def schema_sdl() -> str:
    """The SDL shipped with the package."""
    return resources.files("prismatic_usage").joinpath("schema.graphql").read_text("utf-8")


@cache
def sandbox_schema() -> GraphQLSchema:
    """The SDL built once, with scalars and resolvers installed (shared by all sandboxes)."""
    schema = build_schema(schema_sdl())
    _install_scalars(schema)
    _install_resolvers(schema)
    return schema


# Scalars ---------------------------------------------------------------------------------


def _serialize_datetime(value: Any) -> str:
    if type(value) is dt.datetime and value.tzinfo is UTC:
        return value.isoformat()  # what astimezone(UTC) returns it as: itself
    if not isinstance(value, dt.datetime):
        raise GraphQLError(f"DateTime cannot represent value: {value!r}")
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise GraphQLError(f"DateTime cannot represent non-string value: {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"DateTime cannot parse value: {value!r}") from None
    # Django (USE_TZ, UTC) reads a naive date-time as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _serialize_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        raise GraphQLError(f"Date cannot represent value: {value!r}")
    return value.isoformat()


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(value: Any) -> dt.date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise GraphQLError(f"Date cannot represent value: {value!r}; expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"Date cannot represent value: {value!r}") from None


def _serialize_bigint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphQLError(f"BigInt cannot represent value: {value!r}")
    return value


_INTEGER = re.compile(r"[+-]?\d+")


def _parse_bigint(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise GraphQLError(f"BigInt cannot represent value: {value!r}")


def _literal(parse: Callable[[Any], Any], *kinds: type[ValueNode]) -> Callable[..., Any]:
    """A literal coercer: accepts only ``kinds`` of nodes, then parses their value."""

    def coerce_literal(node: ValueNode, _variables: Any = None) -> Any:
        if isinstance(node, IntValueNode):
            return parse(int(node.value))
        if isinstance(node, StringValueNode) and StringValueNode in kinds:
            return parse(node.value)
        raise GraphQLError(f"Unexpected literal {type(node).__name__}")

    return coerce_literal


def _install_scalars(schema: GraphQLSchema) -> None:
    """Give the SDL's custom scalars graphene's behaviour (graphql-core 3.3 coercer API)."""
    table: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[..., Any]]] = {
        "DateTime": (
            _serialize_datetime,
            _parse_datetime,
            _literal(_parse_datetime, StringValueNode),
        ),
        "Date": (_serialize_date, _parse_date, _literal(_parse_date, StringValueNode)),
        "BigInt": (
            _serialize_bigint,
            _parse_bigint,
            _literal(_parse_bigint, IntValueNode, StringValueNode),
        ),
    }
    for name, (output, parse, literal) in table.items():
        scalar = schema.get_type(name)
        assert isinstance(scalar, GraphQLScalarType)
        scalar.coerce_output_value = output
        scalar.coerce_input_value = parse
        scalar.coerce_input_literal = literal


# Resolvers -------------------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: Fields that lead from a record to another, through the org's indexes.
_RELATIONS: dict[tuple[str, str], RelationResolver] = {
    ("Instance", "customer"): RelationResolver("customers_by_id", "customer_id"),
    ("Instance", "integration"): RelationResolver("integrations_by_id", "integration_id"),
    ("CustomerTotalUsageMetrics", "customer"): RelationResolver("customers_by_id", "customer_id"),
    ("InstanceDailyUsageMetrics", "instance"): RelationResolver("instances_by_id", "instance_id"),
}


def _install_resolvers(schema: GraphQLSchema) -> None:
    for type_name in _RECORD_TYPES:
        object_type = schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        for field_name, field in object_type.fields.items():
            relation = _RELATIONS.get((type_name, field_name))
            field.resolve = relation or AttributeResolver(_snake(field_name))
    root = schema.query_type
    assert root is not None
    for field_name, resolver in ROOT_RESOLVERS.items():
        root.fields[field_name].resolve = resolver
