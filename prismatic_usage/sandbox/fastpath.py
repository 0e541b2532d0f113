"""Record field resolvers, and an executor that completes pages of records quickly.

graphql-core completes every field of every node through its general machinery
(resolve info, path, type checks: several microseconds a field), so a page of 100
snapshots with six fields is 600 such completions, and a packed request of ten
pages costs tens of milliseconds. :class:`RecordListExecutor` completes a list of
records whose selection is plain -- fields without arguments or directives, read
by :class:`AttributeResolver` or :class:`RelationResolver`, leaves or nested plain
selections -- by reading the records directly, with the very same output coercers.

Anything else goes to graphql-core unchanged: other selections (fragments,
directives, arguments, list-valued fields), and any list in which something is
unusual (a null in a non-null position, a value a coercer refuses, a failing
lookup). Record fields are pure reads, so graphql-core then starts that list over
and produces exactly the data and errors it always would. The fast path therefore
never changes an answer; ``tests/test_sandbox.py`` compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from graphql import (
    FieldNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
)
from graphql.execution.executor import Executor

__all__ = ["AttributeResolver", "RecordListExecutor", "RelationResolver"]

Reader = Callable[[Any], Any]
Plan = tuple[tuple[str, Reader], ...]


class AttributeResolver:
    """Resolve a field from a record attribute (None when the record has none)."""

    __slots__ = ("attr",)

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __call__(self, source: Any, _info: GraphQLResolveInfo[Any], **_args: Any) -> Any:
        return getattr(source, self.attr, None)


class RelationResolver:
    """Resolve a field through an index of the org: ``getattr(org, index)[source.key]``."""

    __slots__ = ("index", "key")

    def __init__(self, index: str, key: str) -> None:
        self.index = index
        self.key = key

    def __call__(self, source: Any, info: GraphQLResolveInfo[Any], **_args: Any) -> Any:
        return self.lookup(info.context.data, source)

    def lookup(self, org: Any, source: Any) -> Any:
        return getattr(org, self.index)[getattr(source, self.key)]


class _Fallback(Exception):
    """Something in this list needs graphql-core's own handling."""


class RecordListExecutor(Executor[Any]):
    """graphql-core's executor, with plain lists of records completed directly."""

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: GraphQLResolveInfo[Any],
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is list and self.middleware_manager is None:
            try:
                read = self._list_plan(return_type, field_details_list)
                if read is not None:
                    return [read(item) for item in result]
            except Exception:  # graphql-core starts over and reports it properly
                pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _list_plan(self, return_type: GraphQLList[Any], details: Any) -> Reader | None:
        if len(details) != 1:
            return None
        detail = details[0]
        if detail.defer_usage is not None or detail.fragment_variable_values is not None:
            return None
        node: FieldNode = detail.node
        if node.directives or node.selection_set is None:
            return None
        item_type, item_non_null = _unwrap(return_type.of_type)
        if not isinstance(item_type, GraphQLObjectType):
            return None
        plan = self._object_plan(item_type, node)
        if plan is None:
            return None
        return _object_reader(plan, item_non_null)

    def _object_plan(self, object_type: GraphQLObjectType, node: FieldNode) -> Plan | None:
        """How to build one object of ``object_type`` for ``node``'s selection, or None."""
        assert node.selection_set is not None
        readers: list[tuple[str, Reader]] = []
        keys: set[str] = set()
        for selection in node.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
                return None
            key = selection.alias.value if selection.alias else selection.name.value
            if key in keys:  # graphql-core merges repeated keys; leave that to it
                return None
            keys.add(key)
            reader = self._field_reader(object_type, selection)
            if reader is None:
                return None
            readers.append((key, reader))
        return tuple(readers)

    def _field_reader(self, object_type: GraphQLObjectType, node: FieldNode) -> Reader | None:
        name = node.name.value
        if name == "__typename":
            type_name = object_type.name
            return lambda _item: type_name
        field = object_type.fields.get(name)
        if field is None:
            return None
        field_type, non_null = _unwrap(field.type)
        resolve = field.resolve
        if isinstance(resolve, AttributeResolver) and is_leaf_type(field_type):
            if node.selection_set is not None:
                return None
            return _leaf_reader(resolve.attr, field_type.coerce_output_value, non_null)
        if isinstance(resolve, RelationResolver) and isinstance(field_type, GraphQLObjectType):
            if node.selection_set is None:
                return None
            plan = self._object_plan(field_type, node)
            if plan is None:
                return None
            nested = _object_reader(plan, non_null)
            org = self.context_value.data
            lookup = resolve.lookup
            return lambda item: nested(lookup(org, item))
        return None


def _unwrap(type_: Any) -> tuple[Any, bool]:
    if isinstance(type_, GraphQLNonNull):
        return type_.of_type, True
    return type_, False


def _leaf_reader(attr: str, coerce: Callable[[Any], Any], non_null: bool) -> Reader:
    def read(item: Any) -> Any:
        value = getattr(item, attr, None)
        if value is None:
            if non_null:
                raise _Fallback
            return None
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _Fallback
        return coerced

    return read


def _object_reader(plan: Iterable[tuple[str, Reader]], non_null: bool) -> Reader:
    def read(item: Any) -> Any:
        if item is None:
            if non_null:
                raise _Fallback
            return None
        return {key: reader(item) for key, reader in plan}

    return read
