"""Root-field resolvers: filter, order and page the org's records like Prismatic.

Each resolver takes ``(source, info, **arguments)`` as graphql-core calls a
``field.resolve`` and reads the org and the switches from ``info.context``
(:class:`ResolveContext`). Filters follow graphene-django's semantics: absent or
null arguments do not filter, ``isSystem`` defaults to false (explicit null shows
both kinds), date bounds are inclusive, ID arguments are global IDs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from graphql import GraphQLError, GraphQLResolveInfo

from .data import Customer, Instance, OrgData, SortedRows, parse_global_id
from .faults import ORG_TOTALS
from .relay import Page, PageRequest, connection, page_from

__all__ = ["ROOT_RESOLVERS", "ResolveContext"]

T = TypeVar("T")
K = TypeVar("K", dt.datetime, dt.date)


@dataclass(frozen=True, slots=True)
class ResolveContext:
    """What one request's resolvers need besides their arguments."""

    data: OrgData
    require_instance_for_daily_metrics: bool = True
    refuse_org_wide_snapshots: bool = False
    stuck_cursor: bool = False
    lie_total_count: int = 0
    denied_ids: frozenset[str] = frozenset()
    #: Records created since the run began (``FaultPlan.insert_*``), listed first.
    extra_customers: tuple[Customer, ...] = ()
    extra_instances: tuple[Instance, ...] = ()
    #: Seed of this request's order of tied usage rows; None keeps (key, id) order.
    tie_order: str | None = None


def _check_permission(ctx: ResolveContext, entity_id: str) -> None:
    if entity_id in ctx.denied_ids:
        raise GraphQLError("You do not have permission to view usage metrics of this record.")


class RowView(Sequence[T]):
    """``rows[start:stop]``, optionally reversed, without copying the rows."""

    __slots__ = ("_reverse", "_rows", "_start", "_stop")

    def __init__(self, rows: Sequence[T], start: int, stop: int, *, reverse: bool) -> None:
        self._rows, self._start, self._stop, self._reverse = rows, start, stop, reverse

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, int):
            return self[index : index + 1 or None][0]
        lo, hi, _ = index.indices(len(self))
        hi = max(lo, hi)
        if not self._reverse:
            return list(self._rows[self._start + lo : self._start + hi])
        picked = self._rows[self._stop - hi : self._stop - lo]
        return list(reversed(picked))

    def __iter__(self) -> Iterator[T]:
        return iter(self[0 : len(self)])


def _context(info: GraphQLResolveInfo[Any]) -> ResolveContext:
    ctx = info.context
    assert isinstance(ctx, ResolveContext)  # set by the server for every request
    return ctx


def _finish(ctx: ResolveContext, page: Page, args: dict[str, Any]) -> dict[str, Any]:
    stuck = (args.get("after") or "") if ctx.stuck_cursor else None
    return connection(page, stuck_after=stuck, total_delta=ctx.lie_total_count)


def _invalid_id(arg: str) -> GraphQLError:
    """graphene-django reports filter-form errors as the form's JSON."""
    return GraphQLError(
        json.dumps({arg: [{"message": "Invalid ID specified.", "code": "invalid"}]})
    )


def _record_id(value: str, known: dict[str, Any], arg: str) -> str:
    """The stored ID a global-ID argument names (unknown IDs stay, and match nothing)."""
    if value in known or parse_global_id(value) is not None:
        return value
    raise _invalid_id(arg)


def _orders(args: dict[str, Any]) -> list[tuple[str, bool]]:
    """``[(FIELD, descending)]`` from ``sortBy`` (preferred) or deprecated ``orderBy``."""
    given = args.get("sortBy") or ([args["orderBy"]] if args.get("orderBy") else [])
    return [(o["field"], o["direction"] == "DESC") for o in given if o]


def _nulls_last(value: Any) -> tuple[bool, Any]:
    """Sort key placing None after values (PostgreSQL's ASC NULLS LAST)."""
    return (value is None, value)


def _sorted(rows: list[T], args: dict[str, Any], keys: dict[str, Callable[[T], Any]]) -> list[T]:
    """Stable multi-key sort; the incoming order is the final tie-break."""
    for field_name, descending in reversed(_orders(args)):
        key = keys.get(field_name)
        if key is not None:  # fields we hold no data for keep the default order
            rows.sort(key=lambda r, k=key: _nulls_last(k(r)), reverse=descending)  # type: ignore[misc]
    return rows


def _icontains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.casefold() in haystack.casefold()


def _labels_contain(labels: Sequence[str] | None, needle: str, *, fold: bool) -> bool:
    if fold:
        return any(needle.casefold() in label.casefold() for label in labels or ())
    return needle in (labels or ())


def _system_ok(is_system: bool, args: dict[str, Any]) -> bool:
    wanted = args.get("isSystem")
    return wanted is None or wanted == is_system


def _time_ok(value: dt.datetime, args: dict[str, Any], prefix: str) -> bool:
    low, high = args.get(f"{prefix}_Gte"), args.get(f"{prefix}_Lte")
    return (low is None or value >= low) and (high is None or value <= high)


_CUSTOMER_FILTERS: dict[str, Callable[[Customer, Any], bool]] = {
    "isDemo": lambda c, v: c.is_demo == v,
    "name": lambda c, v: c.name == v,
    "name_Icontains": lambda c, v: _icontains(c.name, v),
    "name_Istartswith": lambda c, v: c.name.casefold().startswith(v.casefold()),
    "description_Icontains": lambda c, v: _icontains(c.description, v),
    "externalId": lambda c, v: c.external_id == v,
    "externalId_Isnull": lambda c, v: (c.external_id is None) == v,
    "labels_Contains": lambda c, v: _labels_contain(c.labels, v, fold=False),
    "labels_Icontains": lambda c, v: _labels_contain(c.labels, v, fold=True),
}
_CUSTOMER_KEYS: dict[str, Callable[[Customer], Any]] = {
    "NAME": lambda c: c.name,
    "DESCRIPTION": lambda c: c.description,
    "CREATED_AT": lambda c: c.created_at,
    "UPDATED_AT": lambda c: c.updated_at,
}


def resolve_customers(_source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    """``customers``: the org's customers, filtered, ordered (default: as stored) and paged."""
    ctx = _context(info)
    request = PageRequest.from_args(args, info.field_name)
    filters = [(_CUSTOMER_FILTERS[k], v) for k, v in args.items() if k in _CUSTOMER_FILTERS]
    rows = [
        c
        for c in itertools.chain(ctx.extra_customers, ctx.data.customers)
        if _system_ok(c.is_system, args)
        and _time_ok(c.created_at, args, "createdAt")
        and _time_ok(c.updated_at, args, "updatedAt")
        and all(v is None or f(c, v) for f, v in filters)
    ]
    return _finish(ctx, page_from(_sorted(rows, args, _CUSTOMER_KEYS), request), args)


def _instance_filters(data: OrgData) -> dict[str, Callable[[Instance, Any], bool]]:
    customers, integrations = data.customers_by_id, data.integrations_by_id
    return {
        "customer": lambda i, v: i.customer_id == _record_id(v, customers, "customer"),
        "integration": lambda i, v: i.integration_id == _record_id(v, integrations, "integration"),
        "customer_ExternalId": lambda i, v: customers[i.customer_id].external_id == v,
        "id_In": lambda i, v: i.id in {x for x in v if x is not None},
        "name": lambda i, v: i.name == v,
        "name_Icontains": lambda i, v: _icontains(i.name, v),
        "description": lambda i, v: i.description == v,
        "description_Icontains": lambda i, v: _icontains(i.description, v),
        "enabled": lambda i, v: i.enabled == v,
        "needsDeploy": lambda i, v: i.needs_deploy == v,
        "designedBy": lambda i, v: i.designed_by == v,
        "instanceType": lambda i, v: i.instance_type == v,
        "inFailedState": lambda i, v: i.in_failed_state == v,
        "labels_Contains": lambda i, v: _labels_contain(i.labels, v, fold=False),
        "labels_Icontains": lambda i, v: _labels_contain(i.labels, v, fold=True),
    }


def _instance_keys(data: OrgData) -> dict[str, Callable[[Instance], Any]]:
    customers, integrations = data.customers_by_id, data.integrations_by_id
    return {
        "NAME": lambda i: i.name,
        "DESCRIPTION": lambda i: i.description,
        # Django orders a foreign key by the related row; we use (name, id) so it reads well.
        "CUSTOMER": lambda i: (customers[i.customer_id].name, i.customer_id),
        "INTEGRATION": lambda i: integrations[i.integration_id].name,
        "CATEGORY": lambda i: integrations[i.integration_id].category,
        "VERSION": lambda i: i.deployed_version,
        "INSTANCE_TYPE": lambda i: i.instance_type,
        "ENABLED": lambda i: i.enabled,
        "CREATED_AT": lambda i: i.created_at,
        "UPDATED_AT": lambda i: i.updated_at,
        "LAST_EXECUTED_AT": lambda i: i.last_executed_at,
    }


def resolve_instances(_source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
    """``instances``: the org's instances, filtered, ordered (default: as stored) and paged."""
    ctx = _context(info)
    request = PageRequest.from_args(args, info.field_name)
    table = _instance_filters(ctx.data)
    filters = [(table[k], v) for k, v in args.items() if k in table and v is not None]
    if "customer" in args and args["customer"] is not None:
        _record_id(args["customer"], ctx.data.customers_by_id, "customer")  # validate early
    rows = [
        i
        for i in itertools.chain(ctx.extra_instances, ctx.data.instances)
        if not i.deleted
        and _system_ok(i.is_system, args)
        and _time_ok(i.created_at, args, "createdAt")
        and _time_ok(i.updated_at, args, "updatedAt")
        and all(f(i, v) for f, v in filters)
    ]
    return _finish(ctx, page_from(_sorted(rows, args, _instance_keys(ctx.data)), request), args)


def _descending(args: dict[str, Any]) -> bool:
    orders = _orders(args)
    return bool(orders) and orders[0][1]


def _bounds(args: dict[str, Any], prefix: str, *, exact: bool) -> tuple[Any, Any]:
    """Inclusive ``(low, high)`` from ``<prefix>_Gte/_Lte`` (and ``<prefix>`` when exact)."""
    lows = [
        v for v in (args.get(f"{prefix}_Gte"), args.get(prefix) if exact else None) if v is not None
    ]
    highs = [
        v for v in (args.get(f"{prefix}_Lte"), args.get(prefix) if exact else None) if v is not None
    ]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def _ranged(
    ctx: ResolveContext,
    rows: SortedRows[T, K],
    low: K | None,
    high: K | None,
    args: dict[str, Any],
) -> Sequence[T]:
    start, stop = rows.span(low, high)
    view = RowView(rows.rows, start, stop, reverse=_descending(args))
    if ctx.tie_order is None:
        return view
    # The fault: rows that tie on the one sort field come in this request's order.
    rng = random.Random(ctx.tie_order)
    keys = rows.keys[start:stop]
    if _descending(args):
        keys = keys[::-1]
    shuffled: list[T] = []
    for _, run in itertools.groupby(zip(keys, view, strict=True), key=lambda pair: pair[0]):
        group = [row for _, row in run]
        rng.shuffle(group)
        shuffled.extend(group)
    return shuffled


def resolve_customer_total_usage_metrics(
    _source: Any, info: GraphQLResolveInfo[Any], **args: Any
) -> dict[str, Any]:
    """``customerTotalUsageMetrics``: hourly snapshots by (time, id); org-wide when no customer."""
    ctx = _context(info)
    request = PageRequest.from_args(args, info.field_name)
    data, latest = ctx.data, bool(args.get("onlyLatestDailySnapshots"))
    customer = args.get("customer")
    if customer is None:
        if ctx.refuse_org_wide_snapshots:
            raise GraphQLError("Missing required argument 'customer'")
        rows = data.all_latest_daily_snapshots if latest else data.all_snapshots
    else:
        cid = _record_id(customer, data.customers_by_id, "customer")
        _check_permission(ctx, cid)
        rows = data.latest_daily_snapshots_of(cid) if latest else data.snapshots_of(cid)
    low, high = _bounds(args, "snapshotTime", exact=False)
    return _finish(ctx, page_from(_ranged(ctx, rows, low, high, args), request), args)


def resolve_instance_daily_usage_metrics(
    _source: Any, info: GraphQLResolveInfo[Any], **args: Any
) -> dict[str, Any]:
    """``instanceDailyUsageMetrics``: daily rows by (date, id); org-wide only when allowed."""
    ctx = _context(info)
    request = PageRequest.from_args(args, info.field_name)
    instance = args.get("instance")
    if instance is None:
        # Observed on the live API since 2026-05 (shared/prismatic-api.md section 2).
        if ctx.require_instance_for_daily_metrics:
            raise GraphQLError("Missing required argument 'instance'")
        rows = ctx.data.all_metrics
    else:
        iid = _record_id(instance, ctx.data.instances_by_id, "instance")
        _check_permission(ctx, iid)
        rows = ctx.data.metrics_of(iid)
    low, high = _bounds(args, "snapshotDate", exact=True)
    return _finish(ctx, page_from(_ranged(ctx, rows, low, high, args), request), args)


def resolve_org_daily_usage_metrics(
    _source: Any, info: GraphQLResolveInfo[Any], **args: Any
) -> dict[str, Any]:
    """``orgDailyUsageMetrics``: per-date sums over every instance (system ones included)."""
    ctx = _context(info)
    _check_permission(ctx, ORG_TOTALS)
    request = PageRequest.from_args(args, info.field_name)
    low, high = _bounds(args, "snapshotDate", exact=True)
    return _finish(ctx, page_from(_ranged(ctx, ctx.data.org_daily, low, high, args), request), args)


def resolve_org_total_usage_metrics(
    _source: Any, info: GraphQLResolveInfo[Any], **args: Any
) -> dict[str, Any]:
    """``orgTotalUsageMetrics``: hourly org snapshots (every customer, system ones included)."""
    ctx = _context(info)
    _check_permission(ctx, ORG_TOTALS)
    request = PageRequest.from_args(args, info.field_name)
    low, high = _bounds(args, "snapshotTime", exact=False)
    latest = bool(args.get("onlyLatestDailySnapshots"))
    rows = ctx.data.latest_daily_org_totals if latest else ctx.data.org_totals
    return _finish(ctx, page_from(_ranged(ctx, rows, low, high, args), request), args)


def resolve_customer(_source: Any, info: GraphQLResolveInfo[Any], id: str) -> Customer | None:
    """``customer(id)``: any customer, system ones included; null when unknown."""
    return _context(info).data.customers_by_id.get(id)


def resolve_instance(_source: Any, info: GraphQLResolveInfo[Any], id: str) -> Instance | None:
    """``instance(id)``: any instance, system ones included; null when unknown or deleted."""
    found = _context(info).data.instances_by_id.get(id)
    return None if found is None or found.deleted else found


ROOT_RESOLVERS: dict[str, Callable[..., Any]] = {
    "customers": resolve_customers,
    "instances": resolve_instances,
    "customerTotalUsageMetrics": resolve_customer_total_usage_metrics,
    "instanceDailyUsageMetrics": resolve_instance_daily_usage_metrics,
    "orgDailyUsageMetrics": resolve_org_daily_usage_metrics,
    "orgTotalUsageMetrics": resolve_org_total_usage_metrics,
    "customer": resolve_customer,
    "instance": resolve_instance,
}
