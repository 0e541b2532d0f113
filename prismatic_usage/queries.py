"""The GraphQL documents we send, built in one place and validated once.

Every request is one *packed* operation: up to K page units, each a root field
under its own alias (``u0``, ``u1``, ...) with its own ``first``/``offset``
(and ``customer``/``instance``) variables. K = 1 is the plain one-page query.
A document depends only on which kinds of unit fill its slots, so its text is
built once per shape and reused with fresh variables.

Nothing is parsed or validated on the way to a request: the text is sent as
built (gql would re-print a parsed document on every send), and parsing plus
validating a shape costs about 1.4 ms a slot (0.14 s for a 100-slot pack, once
per new shape, in the middle of the first second of a fetch). A document is
correct by construction instead, and the tests prove the construction: every
stream's slot, and packs mixing all of them at up to 100 slots, validate against
the shipped ``schema.graphql`` (:func:`validation_errors`; ``tests/test_queries.py``).
Slot ``i`` uses only its own variables (``$f{i}``, ``$o{i}``, ...) and its own
alias, so a pack is valid when each of its slots is. :attr:`PackedRequest.document`
parses the text on first use, for whoever wants the AST.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import graphql
from gql import GraphQLRequest

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
    "PackedRequest",
    "Stream",
    "packed_document",
    "schema",
    "schema_sdl",
    "validation_errors",
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
    """A request whose query is the text we built, sent as is and parsed only on demand.

    gql re-prints the AST for every request (``print_ast``, ~25 ms for a
    10-slot document) and the runtime client has no schema, so nothing on the
    send path reads :attr:`document`: it is parsed from the text the first time
    something asks (a test, a debugger), once per shape.

    Parameters
    ----------
    text
        The operation, as built by :func:`packed_document`.
    variable_values
        This request's variables (None for the shape's template).
    template
        The request of the same shape whose parsed document to share (None: this one).
    """

    def __init__(
        self,
        text: str,
        *,
        variable_values: dict[str, Any] | None = None,
        template: PackedRequest | None = None,
    ) -> None:
        # GraphQLRequest.__init__ is not called: it would parse the text now.
        self.text = text
        self.variable_values = variable_values
        self.operation_name = OPERATION_NAME
        self.extensions = None
        self._template = template

    @functools.cached_property
    def _parsed(self) -> graphql.DocumentNode:
        return graphql.parse(graphql.Source(self.text, "GraphQL request"))

    @property
    def document(self) -> graphql.DocumentNode:  # type: ignore[override]  # lazy, read-only
        """The parsed operation (parsed on first use, shared by every request of the shape)."""
        return (self._template or self)._parsed

    def with_variables(self, variable_values: dict[str, Any]) -> PackedRequest:
        """The same document with this request's variables."""
        return PackedRequest(
            self.text, variable_values=variable_values, template=self._template or self
        )

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "query": self.text,
            "operationName": OPERATION_NAME,
            "variables": self.variable_values or {},
        }


@functools.cache
def packed_document(shape: tuple[Stream, ...]) -> PackedRequest:
    """The operation whose slot ``i`` pages through ``shape[i]`` (built once per shape).

    Not validated here (see the module docstring): :func:`validation_errors`
    checks one against the shipped schema, as the tests do for every stream.
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
    return PackedRequest(f"query {OPERATION_NAME}({', '.join(definitions)}) {{\n{body}\n}}")


def validation_errors(request: PackedRequest) -> list[graphql.GraphQLError]:
    """What is wrong with ``request``'s document against the shipped schema (empty if valid).

    Parameters
    ----------
    request
        A document from :func:`packed_document`.
    """
    try:
        document = request.document
    except graphql.GraphQLError as exc:  # not even GraphQL
        return [exc]
    return list(graphql.validate(schema(), document))
