"""Record field resolvers, and an executor that completes pages of records quickly.

graphql-core completes every field of every node through its general machinery
(resolve info, path, type checks: several microseconds a field), so a page of 100
snapshots with six fields is 600 such completions, and a packed request of ten
pages costs tens of milliseconds. :class:`RecordListExecutor` completes a list of
records whose selection is plain -- fields without arguments or directives, read
by :class:`AttributeResolver` or :class:`RelationResolver`, leaves or nested plain
selections -- by reading the records directly, with the very same output coercers.
Each selection shape's reader is generated as Python code once (a dict display per
record, no call per field) and reused by every request: an exact ``int`` in Int's
range or a ``str`` for String/ID is written as it is (what graphql-core's coercers
return for them), anything else goes through the field type's coercer.

Anything else goes to graphql-core unchanged: other selections (fragments,
directives, arguments, list-valued fields), and any list in which something is
unusual (a null in a non-null position, a value a coercer refuses, a failing
lookup). Record fields are pure reads, so graphql-core then starts that list over
and produces exactly the data and errors it always would. The fast path therefore
never changes an answer; ``tests/test_sandbox.py`` compares the two.
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from graphql.execution.executor import Executor

__all__ = ["AttributeResolver", "RecordListExecutor", "RelationResolver"]

Reader = Callable[[Any], Any]


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


_MIN_INT, _MAX_INT = -(2**31), 2**31 - 1

# A plan's signature: everything its generated reader depends on, hashable, so the
# generated code is compiled once per selection shape and reused by every request.
# Leaf: ("leaf", key, attr, kind, coerce, non_null); kind is "int", "str" or "any". Constant: ("typename", key, name). Relation: ("rel", key, index, attr, nested),
# nested an object signature: (non_null, fields).
Signature = tuple[bool, tuple[tuple[Any, ...], ...]]


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
                signature = self._list_plan(return_type, field_details_list)
                if signature is not None:
                    read = _factory(signature)(self.context_value.data, _Fallback)
                    return [read(item) for item in result]
            except Exception:  # graphql-core starts over and reports it properly
                pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _list_plan(self, return_type: GraphQLList[Any], details: Any) -> Signature | None:
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
        return (item_non_null, plan)

    def _object_plan(
        self, object_type: GraphQLObjectType, node: FieldNode
    ) -> tuple[tuple[Any, ...], ...] | None:
        """How to build one object of ``object_type`` for ``node``'s selection, or None."""
        assert node.selection_set is not None
        fields: list[tuple[Any, ...]] = []
        keys: set[str] = set()
        for selection in node.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
                return None
            key = selection.alias.value if selection.alias else selection.name.value
            if key in keys:  # graphql-core merges repeated keys; leave that to it
                return None
            keys.add(key)
            field = self._field_plan(object_type, selection, key)
            if field is None:
                return None
            fields.append(field)
        return tuple(fields)

    def _field_plan(
        self, object_type: GraphQLObjectType, node: FieldNode, key: str
    ) -> tuple[Any, ...] | None:
        name = node.name.value
        if name == "__typename":
            return ("typename", key, object_type.name)
        field = object_type.fields.get(name)
        if field is None:
            return None
        field_type, non_null = _unwrap(field.type)
        resolve = field.resolve
        if isinstance(resolve, AttributeResolver) and is_leaf_type(field_type):
            if node.selection_set is not None:
                return None
            coerce = field_type.coerce_output_value
            return ("leaf", key, resolve.attr, _kind(field_type, coerce), coerce, non_null)
        if isinstance(resolve, RelationResolver) and isinstance(field_type, GraphQLObjectType):
            if node.selection_set is None:
                return None
            plan = self._object_plan(field_type, node)
            if plan is None:
                return None
            return ("rel", key, resolve.index, resolve.key, (non_null, plan))
        return None


def _unwrap(type_: Any) -> tuple[Any, bool]:
    if isinstance(type_, GraphQLNonNull):
        return type_.of_type, True
    return type_, False


def _kind(field_type: Any, coerce: Callable[[Any], Any]) -> str:
    """How the generated code may coerce a leaf without calling ``coerce`` (same result)."""
    if field_type is GraphQLInt and coerce is GraphQLInt.coerce_output_value:
        return "int"  # serialize_int returns an in-range int as it is
    if field_type in (GraphQLString, GraphQLID) and coerce is field_type.coerce_output_value:
        return "str"  # serialize_string and serialize_id return a str as it is
    return "any"


class _Source:
    """Python source of the readers of one signature, and the constants they use."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.readers = 0

    def constant(self, value: Any) -> str:
        name = f"k{len(self.constants)}"
        self.constants[name] = value
        return name

    def reader(self, signature: Signature) -> str:
        """Emit a reader for ``signature`` (nested ones first); returns its name."""
        non_null, fields = signature
        nested = {i: self.reader(field[4]) for i, field in enumerate(fields) if field[0] == "rel"}
        name = f"r{self.readers}"
        self.readers += 1
        body = [f"    def {name}(item):", "        if item is None:"]
        body.append("            raise Fallback" if non_null else "            return None")
        values: list[str] = []
        for i, field in enumerate(fields):
            key = repr(field[1])
            if field[0] == "typename":
                values.append(f"{key}: {self.constant(field[2])}")
                continue
            if field[0] == "rel":
                index, attr = self.constant(field[2]), self.constant(field[3])
                body.append(
                    f"        c{i} = {nested[i]}(getattr(org, {index})[getattr(item, {attr})])"
                )
            else:
                body.extend(self._leaf(i, field))
            values.append(f"{key}: c{i}")
        body.append("        return {" + ", ".join(values) + "}")
        self.lines.extend(body)
        return name

    def _leaf(self, i: int, field: tuple[Any, ...]) -> list[str]:
        _, _, attr, kind, coerce, non_null = field
        a, f = self.constant(attr), self.constant(coerce)
        if kind == "int":
            fast = f"type(v) is int and {_MIN_INT} <= v <= {_MAX_INT}"
        elif kind == "str":
            fast = "type(v) is str"
        else:
            fast = "False"
        slow = f"            c{i} = {f}(v)"
        # ASCII only: Python compiles non-ASCII names NFKC-normalised, getattr does not.
        if attr.isascii() and attr.isidentifier() and not keyword.iskeyword(attr):
            read = [  # getattr(item, attr, None), without the call: ~2x faster on slots
                "        try:",
                f"            v = item.{attr}",
                "        except AttributeError:",
                "            v = None",
            ]
        else:
            read = [f"        v = getattr(item, {a}, None)"]
        return [
            *read,
            "        if v is None:",
            "            raise Fallback" if non_null else f"            c{i} = None",
            f"        elif {fast}:",
            f"            c{i} = v",
            "        else:",
            slow,
            f"            if c{i} is None or c{i} is Undefined:",
            "                raise Fallback",
        ]


@functools.lru_cache(maxsize=256)
def _factory(signature: Signature) -> Callable[[Any, type], Reader]:
    """Compile the reader of ``signature``: ``factory(org, Fallback)`` binds it.

    The generated code does what one record's fields ask, in selection order: read the
    attribute (None when missing), refuse a null in a non-null position, coerce (an
    exact ``int`` in Int's range or a ``str`` for String/ID is its own output, as
    graphql-core's coercers return it), refuse a coercer's None/Undefined.
    """
    source = _Source()
    top = source.reader(signature)
    text = "\n".join(["def make(org, Fallback):", *source.lines, f"    return {top}", ""])
    namespace: dict[str, Any] = {
        **source.constants,
        "Undefined": Undefined,
    }
    exec(compile(text, f"<fast path reader {top}>", "exec"), namespace)
    make: Callable[[Any, type], Reader] = namespace["make"]
    return make
