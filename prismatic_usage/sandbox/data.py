"""The records a sandbox serves, and the indexes that make paging cheap.

Records are frozen dataclasses named after Prismatic's types; their fields are the
snake_case of the GraphQL fields, so a generic resolver can serve them. Tests may
build an :class:`OrgData` by hand or read a generated one to work out expected
answers on their own, without going through the sandbox's resolvers.

Every list a connection pages over is kept sorted once, here, so a page costs a
binary search plus the page itself (O(log n + page)) even at millions of rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import Generic, TypeVar

__all__ = [
    "EPOCH",
    "Customer",
    "DailyMetric",
    "Instance",
    "Integration",
    "OrgDailyMetric",
    "OrgData",
    "OrgTotalMetric",
    "Snapshot",
    "global_id",
    "parse_global_id",
]

UTC = dt.UTC
#: Creation time given to records whose creation time does not matter.
EPOCH = dt.datetime(2023, 1, 1, tzinfo=UTC)


def global_id(type_name: str, key: uuid.UUID | str) -> str:
    """Prismatic's opaque ID: base64 of ``"<Type>:<uuid>"`` (graphene's relay global ID)."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode("ascii")


def parse_global_id(value: str) -> tuple[str, str] | None:
    """``(type name, key)`` of a global ID, or None when ``value`` is not one."""
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        return None
    type_name, sep, key = decoded.partition(":")
    if not sep or not type_name or not key:
        return None
    return type_name, key


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer of the organisation; system customers are Prismatic's own."""

    id: str
    name: str
    external_id: str | None = None
    is_system: bool = False
    description: str = ""
    labels: tuple[str, ...] = ()
    created_at: dt.datetime = EPOCH
    updated_at: dt.datetime = EPOCH
    is_demo: bool = False


@dataclass(frozen=True, slots=True)
class Integration:
    """An integration (the thing instances deploy)."""

    id: str
    name: str
    description: str | None = None
    category: str | None = None
    version_number: int = 1


@dataclass(frozen=True, slots=True)
class Instance:
    """A deployment of an integration to a customer."""

    id: str
    name: str
    customer_id: str
    integration_id: str
    is_system: bool = False
    description: str = ""
    enabled: bool = True
    labels: tuple[str, ...] = ()
    created_at: dt.datetime = EPOCH
    updated_at: dt.datetime = EPOCH
    last_deployed_at: dt.datetime | None = None
    last_executed_at: dt.datetime | None = None
    deployed_version: int = 1
    needs_deploy: bool = False
    system_suspended: bool = False
    designed_by: str = "ORG"
    instance_type: str | None = "INTEGRATION"
    in_failed_state: bool | None = False
    #: Deleted since: absent from ``instances`` and ``instance(id)``, but its usage
    #: stays in the org totals (as on the real API).
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One ``CustomerTotalUsageMetrics`` row: a customer's totals at ``snapshot_time`` (UTC)."""

    id: str
    customer_id: str
    snapshot_time: dt.datetime
    deployed_instance_count: int
    deployed_unique_integration_count: int
    user_count: int = 0
    created_workflow_count: int = 0
    enabled_workflow_count: int = 0


@dataclass(frozen=True, slots=True)
class DailyMetric:
    """One ``InstanceDailyUsageMetrics`` row: an instance's usage on ``snapshot_date``."""

    id: str
    instance_id: str
    snapshot_date: dt.date
    successful_execution_count: int
    failed_execution_count: int
    step_count: int
    spend_mb_secs: int


@dataclass(frozen=True, slots=True)
class OrgTotalMetric:
    """One ``OrgTotalUsageMetrics`` row: the whole org's totals at ``snapshot_time`` (hourly)."""

    id: str
    snapshot_time: dt.datetime
    integration_count: int
    customer_count: int
    deployed_instance_count: int
    deployed_unique_integration_count: int
    user_count: int = 0
    blob_bytes_stored: int = 0


@dataclass(frozen=True, slots=True)
class OrgDailyMetric:
    """One ``OrgDailyUsageMetrics`` row: the sum of every instance's row for a date."""

    id: str
    snapshot_date: dt.date
    successful_execution_count: int
    failed_execution_count: int
    step_count: int
    spend_mb_secs: int


T = TypeVar("T")
K = TypeVar("K", dt.datetime, dt.date)
R = TypeVar("R", Customer, Integration, Instance)
S = TypeVar("S", Snapshot, "OrgTotalMetric")


# The default orders: by time (or date), then id. attrgetter builds the key tuples in C.
_snapshot_key = attrgetter("snapshot_time", "id")
_metric_key = attrgetter("snapshot_date", "id")


class SortedRows(Generic[T, K]):
    """Rows sorted by a key, with the key column kept aside for binary search."""

    __slots__ = ("keys", "rows")
    rows: list[T]
    keys: list[K]

    def __init__(self, rows: list[T], keys: list[K]) -> None:
        self.rows = rows
        self.keys = keys

    def span(self, low: K | None, high: K | None) -> tuple[int, int]:
        """Index range ``[start, stop)`` of rows with ``low <= key <= high`` (None = open)."""
        start = 0 if low is None else bisect_left(self.keys, low)
        stop = len(self.rows) if high is None else bisect_right(self.keys, high)
        return start, max(start, stop)


def _sorted_snapshots(rows: Iterable[Snapshot]) -> SortedRows[Snapshot, dt.datetime]:
    ordered = sorted(rows, key=_snapshot_key)
    return SortedRows(ordered, [s.snapshot_time for s in ordered])


def _sorted_metrics(rows: Iterable[DailyMetric]) -> SortedRows[DailyMetric, dt.date]:
    ordered = sorted(rows, key=_metric_key)
    return SortedRows(ordered, [m.snapshot_date for m in ordered])


_EMPTY_SNAPSHOTS: SortedRows[Snapshot, dt.datetime] = SortedRows([], [])
_EMPTY_METRICS: SortedRows[DailyMetric, dt.date] = SortedRows([], [])


def _latest_per_day(rows: Sequence[S]) -> list[S]:
    """The last snapshot of each UTC day, from rows sorted by time."""
    latest: list[S] = []
    for row in rows:
        if latest and latest[-1].snapshot_time.date() == row.snapshot_time.date():
            latest[-1] = row
        else:
            latest.append(row)
    return latest


@dataclass(repr=False, eq=False)
class OrgData:
    """Everything one organisation holds; build it by hand or with ``generate_org``.

    The lists are kept as given (their order is the default order of ``customers``
    and ``instances``, like a primary key). Indexes are built on construction;
    treat an ``OrgData`` as read-only once a sandbox serves it.

    Raises
    ------
    ValueError
        When an ID is duplicated or a record points at a missing customer/instance/integration.
    """

    customers: list[Customer] = field(default_factory=list)
    integrations: list[Integration] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    daily_metrics: list[DailyMetric] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.customers_by_id = _index("customer", self.customers)
        self.integrations_by_id = _index("integration", self.integrations)
        self.instances_by_id = _index("instance", self.instances)
        for inst in self.instances:
            if inst.customer_id not in self.customers_by_id:
                raise ValueError(
                    f"instance {inst.id} points at unknown customer {inst.customer_id}"
                )
            if inst.integration_id not in self.integrations_by_id:
                raise ValueError(
                    f"instance {inst.id} points at unknown integration {inst.integration_id}"
                )
        by_customer: dict[str, list[Snapshot]] = {c.id: [] for c in self.customers}
        for snap in self.snapshots:
            bucket = by_customer.get(snap.customer_id)
            if bucket is None:
                raise ValueError(
                    f"snapshot {snap.id} points at unknown customer {snap.customer_id}"
                )
            bucket.append(snap)
        self._snapshots_by_customer = {k: _sorted_snapshots(v) for k, v in by_customer.items()}
        by_instance: dict[str, list[DailyMetric]] = {i.id: [] for i in self.instances}
        for metric in self.daily_metrics:
            bucket_m = by_instance.get(metric.instance_id)
            if bucket_m is None:
                raise ValueError(
                    f"daily metric {metric.id} points at unknown instance {metric.instance_id}"
                )
            bucket_m.append(metric)
        self._metrics_by_instance = {k: _sorted_metrics(v) for k, v in by_instance.items()}
        self._latest_daily_by_customer: dict[str, SortedRows[Snapshot, dt.datetime]] = {}

    def warm(self) -> None:
        """Build the lazy org-wide indexes now (seconds for millions of rows), not mid-request."""
        was_enabled = gc.isenabled()
        gc.disable()  # sorting creates millions of key tuples; none is cyclic
        try:
            _ = self.all_snapshots, self.all_metrics, self.org_daily, self.org_totals
        finally:
            if was_enabled:
                gc.enable()

    def __repr__(self) -> str:
        return (
            f"OrgData(customers={len(self.customers)}, integrations={len(self.integrations)}, "
            f"instances={len(self.instances)}, snapshots={len(self.snapshots)}, "
            f"daily_metrics={len(self.daily_metrics)})"
        )

    # Sorted views used by the resolvers -------------------------------------------------

    def snapshots_of(self, customer_id: str) -> SortedRows[Snapshot, dt.datetime]:
        """A customer's snapshots by (time, id); empty for an unknown customer."""
        return self._snapshots_by_customer.get(customer_id) or _EMPTY_SNAPSHOTS

    @cached_property
    def all_snapshots(self) -> SortedRows[Snapshot, dt.datetime]:
        """Every snapshot (system customers' included) by (time, id); built on first use."""
        return _sorted_snapshots(self.snapshots)

    def latest_daily_snapshots_of(self, customer_id: str) -> SortedRows[Snapshot, dt.datetime]:
        """The last snapshot of each UTC day of a customer (``onlyLatestDailySnapshots``)."""
        cached = self._latest_daily_by_customer.get(customer_id)
        if cached is None:
            cached = _sorted_snapshots(_latest_per_day(self.snapshots_of(customer_id).rows))
            self._latest_daily_by_customer[customer_id] = cached
        return cached

    @cached_property
    def all_latest_daily_snapshots(self) -> SortedRows[Snapshot, dt.datetime]:
        """The last snapshot of each UTC day of every customer, by (time, id)."""
        rows: list[Snapshot] = []
        for customer in self.customers:
            rows.extend(self.latest_daily_snapshots_of(customer.id).rows)
        return _sorted_snapshots(rows)

    def metrics_of(self, instance_id: str) -> SortedRows[DailyMetric, dt.date]:
        """An instance's daily rows by (date, id); empty for an unknown instance."""
        return self._metrics_by_instance.get(instance_id) or _EMPTY_METRICS

    @cached_property
    def all_metrics(self) -> SortedRows[DailyMetric, dt.date]:
        """Every daily row (system instances' included) by (date, id); built on first use."""
        return _sorted_metrics(self.daily_metrics)

    @cached_property
    def org_daily(self) -> SortedRows[OrgDailyMetric, dt.date]:
        """Per-date sums over all instances, by date."""
        sums: dict[dt.date, list[int]] = {}
        for m in self.daily_metrics:
            acc = sums.setdefault(m.snapshot_date, [0, 0, 0, 0])
            acc[0] += m.successful_execution_count
            acc[1] += m.failed_execution_count
            acc[2] += m.step_count
            acc[3] += m.spend_mb_secs
        rows = [
            OrgDailyMetric(
                id=global_id(
                    "OrgDailyUsageMetrics", uuid.uuid5(uuid.NAMESPACE_OID, day.isoformat())
                ),
                snapshot_date=day,
                successful_execution_count=acc[0],
                failed_execution_count=acc[1],
                step_count=acc[2],
                spend_mb_secs=acc[3],
            )
            for day, acc in sorted(sums.items())
        ]
        return SortedRows(rows, [r.snapshot_date for r in rows])

    @cached_property
    def org_totals(self) -> SortedRows[OrgTotalMetric, dt.datetime]:
        """Hourly org snapshots: each hour's customer snapshots summed, at the whole hour.

        Every customer counts (system ones too); an hour in which a customer has
        no snapshot lacks its share, as a real org snapshot taken at another
        moment than the customers' would differ.
        """
        hours: dict[dt.datetime, list[int]] = {}
        for snap in self.snapshots:
            hour = snap.snapshot_time.replace(minute=0, second=0, microsecond=0)
            acc = hours.setdefault(hour, [0, 0])
            acc[0] += snap.deployed_instance_count
            acc[1] += snap.deployed_unique_integration_count
        rows = [
            OrgTotalMetric(
                id=global_id(
                    "OrgTotalUsageMetrics", uuid.uuid5(uuid.NAMESPACE_OID, hour.isoformat())
                ),
                snapshot_time=hour,
                integration_count=len(self.integrations),
                customer_count=len(self.customers),
                deployed_instance_count=acc[0],
                deployed_unique_integration_count=acc[1],
            )
            for hour, acc in sorted(hours.items())
        ]
        return SortedRows(rows, [r.snapshot_time for r in rows])

    @cached_property
    def latest_daily_org_totals(self) -> SortedRows[OrgTotalMetric, dt.datetime]:
        """The last org snapshot of each UTC day (``onlyLatestDailySnapshots``)."""
        rows = _latest_per_day(list(self.org_totals.rows))
        return SortedRows(rows, [r.snapshot_time for r in rows])


def _index(kind: str, rows: Sequence[R]) -> dict[str, R]:
    index: dict[str, R] = {}
    for row in rows:
        if row.id in index:
            raise ValueError(f"duplicate {kind} id {row.id}")
        index[row.id] = row
    return index
