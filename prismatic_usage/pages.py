"""One answered page: checked against its promises and turned into record columns.

Pure functions over the JSON of one connection: no network, no queue. The
planner calls :func:`checked_page` for every page that arrives and
:func:`without_duplicates` once a stream is complete.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import pyarrow as pa

from . import queries
from ._distinct import all_distinct
from ._safe_text import one_line
from .errors import MalformedResponseError, PaginationError
from .records import one_row_per_key

__all__ = [
    "KIND_OF_STREAM",
    "MAX_TOTAL_COUNT",
    "PageContradiction",
    "checked_page",
    "messages",
    "node_columns",
    "without_duplicates",
    "without_refused_integrations",
]

log = logging.getLogger(__name__)

#: The largest ``totalCount`` believed. Far above any real org: a year of
#: hourly snapshots of 10,000 customers is under 90 million rows, and the
#: schema's ``Int`` ends at 2**31 - 1. A larger count is a broken or hostile
#: server, and its pages are not planned (that would never end).
MAX_TOTAL_COUNT = 1_000_000_000


class PageContradiction(PaginationError):
    """A page contradicts its own count: the org changed, or ties were reordered, mid-read.

    The planner reads the stream again from the start rather than failing.
    """


#: The record kind each stream's nodes belong to.
KIND_OF_STREAM = {
    queries.CUSTOMERS.name: "customers",
    queries.INSTANCES.name: "instances",
    queries.SNAPSHOTS.name: "snapshots",
    queries.SNAPSHOTS_ORG_WIDE.name: "snapshots",
    queries.METRICS.name: "metrics",
    queries.METRICS_ORG_WIDE.name: "metrics",
    queries.ORG_DAILY.name: "org_daily",
    queries.ORG_HOURLY.name: "org_hourly",
}

# How each stream's nodes become record columns: (record column, node field path).
_COLUMNS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    queries.CUSTOMERS.name: (
        ("id", ("id",)),
        ("name", ("name",)),
        ("external_id", ("externalId",)),
    ),
    queries.INSTANCES.name: (
        ("id", ("id",)),
        ("name", ("name",)),
        ("customer_id", ("customer", "id")),
        ("integration_name", ("integration", "name")),
    ),
    queries.SNAPSHOTS.name: (
        ("id", ("id",)),
        ("snapshot_time", ("snapshotTime",)),
        ("deployed_instance_count", ("deployedInstanceCount",)),
        ("deployed_unique_integration_count", ("deployedUniqueIntegrationCount",)),
    ),
    queries.METRICS.name: (
        ("id", ("id",)),
        ("snapshot_date", ("snapshotDate",)),
        ("successful_execution_count", ("successfulExecutionCount",)),
        ("failed_execution_count", ("failedExecutionCount",)),
        ("step_count", ("stepCount",)),
        ("spend_mb_secs", ("spendMbSecs",)),
    ),
}
_COLUMNS[queries.ORG_DAILY.name] = _COLUMNS[queries.METRICS.name]
_COLUMNS[queries.ORG_HOURLY.name] = (
    ("id", ("id",)),
    ("snapshot_time", ("snapshotTime",)),
    ("deployed_instance_count", ("deployedInstanceCount",)),
)
_COLUMNS[queries.SNAPSHOTS_ORG_WIDE.name] = (
    *_COLUMNS[queries.SNAPSHOTS.name],
    ("customer_id", ("customer", "id")),
)
_COLUMNS[queries.METRICS_ORG_WIDE.name] = (
    *_COLUMNS[queries.METRICS.name],
    ("instance_id", ("instance", "id")),
)
# Per-entity streams take the owner's ID from the unit, not from the node.
_ENTITY_COLUMN = {queries.SNAPSHOTS.name: "customer_id", queries.METRICS.name: "instance_id"}


def cursor_offset(cursor: object) -> int | None:
    """The position in a graphene ``arrayconnection:N`` cursor; None if opaque."""
    if not isinstance(cursor, str):
        return None
    try:
        text = base64.b64decode(cursor, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "arrayconnection" or not number.isdigit():
        return None
    return int(number)


def field_at(node: Mapping[str, Any], *path: str, where: str) -> Any:
    """``node[path[0]][path[1]]...``, or an error naming the missing field."""
    value: Any = node
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            raise MalformedResponseError(f"{where}: field {'.'.join(path)!r} is missing")
        value = value[name]
    return value


def checked_page(connection: Any, *, where: str, offset: int, first: int) -> tuple[int, list[Any]]:
    """``(totalCount, nodes)`` of one page, after checking it keeps its own promises.

    Parameters
    ----------
    connection
        The JSON value of the aliased root field.
    where
        Names the page in error messages.
    offset, first
        What the page was asked for.

    Raises
    ------
    MalformedResponseError
        A field is missing or of the wrong type, or ``totalCount`` is beyond
        :data:`MAX_TOTAL_COUNT`.
    PageContradiction
        The page holds another number of nodes than ``totalCount`` promises, or
        its ``hasNextPage`` contradicts the count.
    PaginationError
        The page starts at another position than asked for.
    """
    if not isinstance(connection, Mapping):
        raise MalformedResponseError(f"{where}: the connection is not an object")
    total = field_at(connection, "totalCount", where=where)
    nodes = field_at(connection, "nodes", where=where)
    if type(total) is not int or total < 0:
        raise MalformedResponseError(f"{where}: field 'totalCount' is not a count: {total!r}")
    if total > MAX_TOTAL_COUNT:
        raise MalformedResponseError(
            f"{where}: totalCount {total:,} is beyond the {MAX_TOTAL_COUNT:,} records any org "
            "holds; the server is not answering like Prismatic's API: check the URL "
            "and try again later"
        )
    if not isinstance(nodes, list):
        raise MalformedResponseError(f"{where}: field 'nodes' is not a list")
    expected = max(0, min(first, total - offset))
    if len(nodes) != expected:
        raise PageContradiction(
            f"{where}: the page holds {len(nodes)} nodes but totalCount {total} "
            f"promises {expected}; the server's paging is inconsistent"
        )
    has_next = field_at(connection, "pageInfo", "hasNextPage", where=where)
    more = offset + len(nodes) < total
    if has_next is not more:
        raise PageContradiction(
            f"{where}: hasNextPage is {has_next} but totalCount {total} says "
            f"{'more' if more else 'no more'} pages follow; the server's paging is inconsistent"
        )
    start_cursor = field_at(connection, "pageInfo", "startCursor", where=where) if nodes else None
    position = cursor_offset(start_cursor)
    if position is not None and position != offset:
        raise PaginationError(
            f"{where}: the server answered from position {position}, not {offset}; "
            "it does not honour 'offset'"
        )
    return total, nodes


def node_columns(
    stream_name: str, entity: str | None, nodes: Sequence[Any], *, where: str
) -> dict[str, list[Any]]:
    """Turn one page of nodes into record columns, naming any missing field."""
    columns: dict[str, list[Any]] = {}
    for column, path in _COLUMNS[stream_name]:
        try:
            if len(path) == 1:
                (key,) = path
                columns[column] = list(map(itemgetter(key), nodes))  # ~1.5x a comprehension
            else:
                outer, inner = path
                columns[column] = [
                    None if node[outer] is None else node[outer][inner] for node in nodes
                ]
        except (KeyError, TypeError):
            for node in nodes:
                if not isinstance(node, Mapping):
                    raise MalformedResponseError(f"{where}: a node is not an object") from None
                field_at(node, *path, where=where)
            raise
    entity_column = _ENTITY_COLUMN.get(stream_name)
    if entity_column:
        columns[entity_column] = [entity] * len(nodes)
    return columns


def without_duplicates(table: pa.Table, what: str) -> tuple[pa.Table, int]:
    """Drop rows whose node ID was already seen (positional pages can shift)."""
    if all_distinct(table.column("id")):
        return table, 0
    deduped = one_row_per_key(table, ["id"])
    dropped = table.num_rows - deduped.num_rows
    log.warning("dropped %d duplicate %s (the same node ID on two pages)", dropped, what)
    return deduped, dropped


def messages(errors: Sequence[Mapping[str, Any]]) -> str:
    """The distinct messages of GraphQL errors, joined into one line.

    Each message is the server's text made safe to show (:func:`one_line`): no
    control characters, capped length. Tokens were cut out by the session.
    """
    texts = [one_line(str(error.get("message", error))) for error in errors]
    return "; ".join(dict.fromkeys(texts)) or "unknown error"


def without_refused_integrations(
    stream_name: str, connection: Any, errors: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The errors that do more than refuse one instance's ``integration``.

    A token may read an instance but not its integration: the API then answers
    an error whose ``path`` is ``[alias, "nodes", i, "integration", ...]`` and
    that field null. Such an instance is kept, without an integration name,
    and a warning names it; every other error is returned.
    """
    if stream_name != queries.INSTANCES.name or not isinstance(connection, Mapping):
        return list(errors)
    nodes = connection.get("nodes")
    others: list[Mapping[str, Any]] = []
    for error in errors:
        path = error.get("path")
        node = None
        if (
            isinstance(path, list)
            and len(path) >= 4
            and path[1:2] == ["nodes"]
            and path[3] == "integration"
            and type(path[2]) is int
            and isinstance(nodes, list)
            and 0 <= path[2] < len(nodes)
        ):
            node = nodes[path[2]]
        if isinstance(node, Mapping) and node.get("integration", ...) is None and node.get("id"):
            log.warning(
                "instance %s: the API refused its integration (%s); "
                "it is kept with an empty integration name",
                node["id"],
                messages([error]),
            )
        else:
            others.append(error)
    return others
