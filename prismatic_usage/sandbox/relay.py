"""Relay connection slicing the way graphene-django does it.

Cursors are positional, ``base64("arrayconnection:N")``. ``offset`` is turned into an
``after`` cursor (added to it when both are given). Without ``first``/``last`` a page
holds ``max_limit`` (100) nodes; asking for more is an error, as is a negative count.
``hasPreviousPage`` is only ever true when paging backwards with ``last`` and
``hasNextPage`` only when paging forwards with ``first`` (graphql-relay's rules).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from graphql import GraphQLError

__all__ = ["MAX_LIMIT", "Page", "PageRequest", "connection", "cursor_for", "offset_of", "page_from"]

#: graphene-django's RELAY_CONNECTION_MAX_LIMIT default, which Prismatic's docs match.
MAX_LIMIT = 100
_PREFIX = "arrayconnection:"


def cursor_for(position: int) -> str:
    """The opaque cursor of the node at ``position`` (0-based)."""
    return base64.b64encode(f"{_PREFIX}{position}".encode()).decode("ascii")


def offset_of(cursor: str | None) -> int | None:
    """The position a cursor points at, or None for an empty/foreign cursor (ignored)."""
    if not cursor:
        return None
    try:
        text = base64.b64decode(cursor.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    prefix, _, number = text.partition(":")
    if f"{prefix}:" != _PREFIX or not number.lstrip("-").isdigit():
        return None
    return int(number)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The paging arguments of one connection field, validated."""

    first: int | None
    last: int | None
    after: int | None
    before: int | None

    @classmethod
    def from_args(cls, args: dict[str, Any], field_name: str) -> PageRequest:
        """Validate ``first/last/after/before/offset`` like graphene-django.

        Raises
        ------
        GraphQLError
            For a negative ``first``/``last`` or one above :data:`MAX_LIMIT`.
        """
        first: int | None = args.get("first")
        last: int | None = args.get("last")
        for name, value in (("first", first), ("last", last)):
            if value is not None and value < 0:
                raise GraphQLError(f"`{name}` argument must be positive, got `{value}`")
            if value is not None and value > MAX_LIMIT:
                raise GraphQLError(
                    f"Requesting {value} records on the `{field_name}` connection exceeds "
                    f"the `{name}` limit of {MAX_LIMIT} records."
                )
        after = offset_of(args.get("after"))
        offset: int | None = args.get("offset")
        if offset:
            # graphene-django: "input offset starts at 1 while the graphene offset starts at 0"
            after = offset - 1 if after is None else after + offset
        if first is None and last is None:
            first = MAX_LIMIT
        return cls(first=first, last=last, after=after, before=offset_of(args.get("before")))

    @property
    def requested(self) -> int:
        """How many nodes this page may hold at most."""
        return min(x for x in (self.first, self.last, MAX_LIMIT) if x is not None)


@dataclass(frozen=True, slots=True)
class Page:
    """One slice of a connection, ready to serialise."""

    nodes: list[Any]
    start: int
    total: int
    has_next: bool
    has_previous: bool


def page_from(rows: Sequence[Any], request: PageRequest) -> Page:
    """Slice ``rows`` (the whole filtered, ordered set) as graphql-relay would."""
    total = len(rows)
    start = 0 if request.after is None else min(max(request.after + 1, 0), total)
    stop = total
    if request.before is not None and 0 <= request.before < total:
        stop = min(stop, request.before)
    if request.first is not None:
        stop = min(stop, start + request.first)
    if request.last is not None:
        start = max(start, stop - request.last)
    stop = max(start, stop)
    lower = request.after + 1 if request.after is not None else 0
    upper = request.before if request.before is not None else total
    return Page(
        nodes=list(rows[start:stop]),
        start=start,
        total=total,
        has_next=request.first is not None and stop < upper,
        has_previous=request.last is not None and start > lower,
    )


def connection(
    page: Page,
    *,
    stuck_after: str | None = None,
    total_delta: int = 0,
    cursor: Callable[[int], str] = cursor_for,
) -> dict[str, Any]:
    """The connection object graphql-core resolves from (dicts, default resolvers).

    ``stuck_after`` and ``total_delta`` implement the misbehaving-pagination faults:
    with ``stuck_after`` set, ``hasNextPage`` stays true and ``endCursor`` is that cursor.
    """
    count = len(page.nodes)
    start_cursor = cursor(page.start) if count else None
    end_cursor = cursor(page.start + count - 1) if count else None
    has_next = page.has_next
    if stuck_after is not None:
        has_next = True
        end_cursor = stuck_after or end_cursor
    return {
        "nodes": page.nodes,
        # Built only when selected: the default resolver calls a callable dict value.
        "edges": partial(_edges, page, cursor),
        "totalCount": page.total + total_delta,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": page.has_previous,
            "startCursor": start_cursor,
            "endCursor": end_cursor,
        },
    }


def _edges(
    page: Page, cursor: Callable[[int], str], _info: Any, **_args: Any
) -> list[dict[str, Any]]:
    return [{"cursor": cursor(page.start + i), "node": n} for i, n in enumerate(page.nodes)]
