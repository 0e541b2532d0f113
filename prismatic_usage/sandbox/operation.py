"""What an operation asks for at the top level: for the request log and the limits.

Fragments spread at the root are followed, so ``{ ...F }`` counts F's fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast

from .relay import MAX_LIMIT
from .stats import RootFieldCall

__all__ = ["CONNECTION_FIELDS", "limit_error", "nodes_requested", "root_fields"]

#: Root fields that return a connection (and so a page of nodes).
CONNECTION_FIELDS = frozenset(
    {
        "customers",
        "instances",
        "customerTotalUsageMetrics",
        "instanceDailyUsageMetrics",
        "orgDailyUsageMetrics",
        "orgTotalUsageMetrics",
    }
)


def _fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def root_fields(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> tuple[str | None, tuple[RootFieldCall, ...]]:
    """``(operation name, root field calls)``; no calls when the operation is not found."""
    operation = get_operation_ast(document, operation_name)
    if not isinstance(operation, OperationDefinitionNode):
        return operation_name, ()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    calls = tuple(
        RootFieldCall(
            alias=node.alias.value if node.alias else None,
            field_name=node.name.value,
            arguments={
                arg.name.value: value_from_ast_untyped(arg.value, dict(variables or {}))
                for arg in node.arguments or ()
            },
        )
        for node in _fields(operation.selection_set, fragments)
    )
    return (operation.name.value if operation.name else operation_name), calls


def _nodes_requested(call: RootFieldCall) -> int:
    for name in ("first", "last"):
        value = call.arguments.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return MAX_LIMIT


def nodes_requested(calls: tuple[RootFieldCall, ...]) -> int:
    """The sum over connection root fields of ``first``/``last`` (100 when absent)."""
    return sum(_nodes_requested(c) for c in calls if c.field_name in CONNECTION_FIELDS)


def limit_error(
    calls: tuple[RootFieldCall, ...], *, max_root_fields: int | None, max_nodes: int | None
) -> str | None:
    """The message of the first query-cost limit ``calls`` break, if any."""
    if max_root_fields is not None and len(calls) > max_root_fields:
        return f"Query has too many root fields ({len(calls)} > {max_root_fields})"
    if max_nodes is not None:
        total = nodes_requested(calls)
        if total > max_nodes:
            return f"Query requests too many nodes ({total} > {max_nodes})"
    return None
