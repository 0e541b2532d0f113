"""The GraphQL documents we send, built in one place and validated once.

Every request is one *packed* operation: up to K page units, each a root field
under its own alias (``u0``, ``u1``, ...) with its own ``first``/``offset``
(and ``customer``/``instance``) variables. K = 1 is the plain one-page query.
A document depends only on which kinds of unit fill its slots, so documents are
built once per shape, validated against ``schema.graphql`` when built (not per
request: validation costs milliseconds), and reused with fresh variables.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import graphql
from gql import GraphQLRequest, gql

__all__ = [
    "CUSTOMERS",
    "INSTANCES",
    "METRICS",
    "METRICS_ORG_WIDE",
    "ORG_DAILY",
    "ORG_HOURLY",
    "SNAPSHOTS",
    "SNAPSHOTS_ORG_WIDE",
    "STREAMS",
    "Stream",
    "packed_document",
    "schema",
    "schema_sdl",
]


@dataclass(frozen=True)
class Stream:
    """One kind of connection we page through.

    ``entity_arg`` names the argument that scopes the stream to one customer or
    instance (None for org-wide and list streams); ``range_args`` maps the
    date-range arguments to the shared variable each one takes.
    """

    name: str
    root_field: str
    entity_arg: str | None
    fixed_args: str
    range_args: tuple[tuple[str, str], ...]
    selection: str


_PAGE = "totalCount pageInfo { hasNextPage startCursor endCursor }"

CUSTOMERS = Stream(
    name="customers",
    root_field="customers",
    entity_arg=None,
    fixed_args="isSystem: false, sortBy: [{field: NAME, direction: ASC}]",
    range_args=(),
    selection="nodes { id name externalId }",
)
INSTANCES = Stream(
    name="instances",
    root_field="instances",
    entity_arg=None,
    fixed_args=(
        "isSystem: false, "
        "sortBy: [{field: CUSTOMER, direction: ASC}, {field: CREATED_AT, direction: ASC}]"
    ),
    range_args=(),
    selection="nodes { id name customer { id } integration { name } }",
)
_SNAPSHOT_FIELDS = "id snapshotTime deployedInstanceCount deployedUniqueIntegrationCount"
_SNAPSHOT_RANGE = (("snapshotTime_Gte", "timeGte"), ("snapshotTime_Lte", "timeLte"))
_SNAPSHOT_SORT = "sortBy: [{field: SNAPSHOT_TIME, direction: ASC}]"
SNAPSHOTS = Stream(
    name="snapshots",
    root_field="customerTotalUsageMetrics",
    entity_arg="customer",
    fixed_args=_SNAPSHOT_SORT,
    range_args=_SNAPSHOT_RANGE,
    selection=f"nodes {{ {_SNAPSHOT_FIELDS} }}",
)
SNAPSHOTS_ORG_WIDE = Stream(
    name="snapshots (org-wide)",
    root_field="customerTotalUsageMetrics",
    entity_arg=None,
    fixed_args=_SNAPSHOT_SORT,
    range_args=_SNAPSHOT_RANGE,
    selection=f"nodes {{ {_SNAPSHOT_FIELDS} customer {{ id }} }}",
)
_METRIC_FIELDS = (
    "id snapshotDate successfulExecutionCount failedExecutionCount stepCount spendMbSecs"
)
_METRIC_RANGE = (("snapshotDate_Gte", "dateGte"), ("snapshotDate_Lte", "dateLte"))
_METRIC_SORT = "sortBy: [{field: SNAPSHOT_DATE, direction: ASC}]"
METRICS = Stream(
    name="daily metrics",
    root_field="instanceDailyUsageMetrics",
    entity_arg="instance",
    fixed_args=_METRIC_SORT,
    range_args=_METRIC_RANGE,
    selection=f"nodes {{ {_METRIC_FIELDS} }}",
)
METRICS_ORG_WIDE = Stream(
    name="daily metrics (org-wide)",
    root_field="instanceDailyUsageMetrics",
    entity_arg=None,
    fixed_args=_METRIC_SORT,
    range_args=_METRIC_RANGE,
    selection=f"nodes {{ {_METRIC_FIELDS} instance {{ id }} }}",
)

ORG_DAILY = Stream(
    name="org daily totals",
    root_field="orgDailyUsageMetrics",
    entity_arg=None,
    fixed_args="sortBy: [{field: SNAPSHOT_DATE, direction: ASC}]",
    range_args=_METRIC_RANGE,
    selection=f"nodes {{ {_METRIC_FIELDS} }}",
)
ORG_HOURLY = Stream(
    name="org hourly totals",
    root_field="orgTotalUsageMetrics",
    entity_arg=None,
    fixed_args=_SNAPSHOT_SORT,
    range_args=_SNAPSHOT_RANGE,
    selection="nodes { id snapshotTime deployedInstanceCount }",
)

STREAMS: tuple[Stream, ...] = (
    CUSTOMERS,
    INSTANCES,
    SNAPSHOTS_ORG_WIDE,
    METRICS_ORG_WIDE,
    SNAPSHOTS,
    METRICS,
    ORG_DAILY,
    ORG_HOURLY,
)

_RANGE_VARIABLE_TYPES = {
    "timeGte": "DateTime",
    "timeLte": "DateTime",
    "dateGte": "Date",
    "dateLte": "Date",
}

OPERATION_NAME = "UsagePages"


def schema_sdl() -> str:
    """The shipped SDL of the API subset we use."""
    return resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")


@functools.cache
def schema() -> graphql.GraphQLSchema:
    """The shipped schema, built once."""
    return graphql.build_schema(schema_sdl())


def alias(slot: int) -> str:
    """The alias of slot ``slot`` in a packed document."""
    return f"u{slot}"


def _root_field(slot: int, stream: Stream) -> str:
    args = [f"first: $f{slot}", f"offset: $o{slot}"]
    if stream.entity_arg:
        args.append(f"{stream.entity_arg}: $e{slot}")
    # Each slot has its own range variables: packed units may cover different days.
    args.extend(f"{arg}: ${var}{slot}" for arg, var in stream.range_args)
    if stream.fixed_args:
        args.append(stream.fixed_args)
    return (
        f"  {alias(slot)}: {stream.root_field}({', '.join(args)}) {{ {_PAGE} {stream.selection} }}"
    )


class PackedRequest(GraphQLRequest):
    """A request whose query text is printed once per document, not on every send.

    gql re-prints the AST for every request (``print_ast``, ~25 ms for a
    10-slot document); the text we built the document from is already valid
    and more compact, so it is sent as is.
    """

    def __init__(
        self,
        document: GraphQLRequest,
        text: str,
        *,
        variable_values: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(document, variable_values=variable_values, operation_name=OPERATION_NAME)
        self.text = text

    def with_variables(self, variable_values: dict[str, Any]) -> PackedRequest:
        """The same document with this request's variables."""
        return PackedRequest(self, self.text, variable_values=variable_values)

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "query": self.text,
            "operationName": OPERATION_NAME,
            "variables": self.variable_values or {},
        }


@functools.cache
def packed_document(shape: tuple[Stream, ...]) -> PackedRequest:
    """The parsed, validated operation whose slot ``i`` pages through ``shape[i]``.

    Raises ``graphql.GraphQLError`` if the document does not validate against
    the shipped schema: a programming error, caught by the test suite.
    """
    if not shape:
        raise ValueError("a packed document needs at least one slot")
    definitions: list[str] = []
    for slot, stream in enumerate(shape):
        definitions.append(f"$f{slot}: Int!")
        definitions.append(f"$o{slot}: Int!")
        if stream.entity_arg:
            definitions.append(f"$e{slot}: ID!")
        definitions.extend(
            f"${var}{slot}: {_RANGE_VARIABLE_TYPES[var]}!" for _, var in stream.range_args
        )
    body = "\n".join(_root_field(slot, stream) for slot, stream in enumerate(shape))
    text = f"query {OPERATION_NAME}({', '.join(definitions)}) {{\n{body}\n}}"
    request = gql(text)
    errors = graphql.validate(schema(), request.document)
    if errors:
        raise errors[0]
    return PackedRequest(request, text)
