"""A seeded generator of organisations for the sandbox.

By default an org looks like a real SaaS customer base (what ``--demo``,
``python -m prismatic_usage sandbox``, ``Sandbox()`` and the notebook show): distinct,
plausible company names, 0-4 instances per customer, up to 1,440 executions per
instance per day. Every org also has what real data has: missing external IDs,
system customers and instances (hidden by default), hourly snapshots with
sub-second jitter and missing hours, snapshots pinned exactly at 00:00:00.000000
and 23:59:59.999999, instances deployed or removed mid-range, zero and
failed-only days.

``edge_cases=True`` (what the tests use) adds the awkward cases a billing export
must survive: duplicate and formula-like customer names, commas, quotes, non-ASCII
(CJK included) and a newline in names and integration names, and BigInt values
above 2**53. The same arguments always give the same organisation (IDs included).
"""

from __future__ import annotations

import datetime as dt
import gc
import random
from binascii import b2a_base64
from collections.abc import Callable
from dataclasses import dataclass

from ._names import AWKWARD_INTEGRATIONS, PLAIN_INTEGRATIONS, awkward_names, plausible_names
from .data import (
    Customer,
    DailyMetric,
    Instance,
    Integration,
    OrgData,
    Snapshot,
)

__all__ = ["DEFAULT_START", "demo_org", "generate_org"]

UTC = dt.UTC
#: First day of a generated organisation's data unless told otherwise (fixed, so runs repeat).
DEFAULT_START = dt.date(2024, 12, 1)

_BIG = 2**53 + 1  # the first integer a float64 cannot hold


@dataclass(frozen=True, slots=True)
class _Deployment:
    """When an instance is deployed, for the counts in its customer's snapshots."""

    integration_id: str
    start: dt.datetime
    end: dt.datetime | None


def _new_id(rng: random.Random, type_name: str) -> str:
    """A global ID whose UUID is ``uuid.UUID(int=rng.getrandbits(128))``."""
    return _fast_id(rng.getrandbits, f"{type_name}:")


def _fast_id(bits: Callable[[int], int], prefix: str) -> str:
    """Same as ``global_id(type, uuid.UUID(int=bits(128)))``, three times faster."""
    h = f"{bits(128):032x}"
    text = f"{prefix}{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return b2a_base64(text.encode(), newline=False).decode("ascii")


def generate_org(
    *,
    seed: int = 0,
    customers: int = 50,
    start: dt.date = DEFAULT_START,
    days: int = 31,
    max_instances_per_customer: int = 4,
    system_customers: int = 2,
    missing_hour_rate: float = 0.03,
    missing_day_rate: float = 0.05,
    edge_cases: bool = False,
) -> OrgData:
    """Build a deterministic organisation with ``days`` days of usage from ``start`` (UTC).

    Parameters
    ----------
    seed
        Seeds :class:`random.Random`; the same arguments always give equal data and IDs.
    customers
        Number of ordinary customers (system customers come on top).
    start, days
        The UTC date range ``[start, start + days)`` covered by snapshots and daily rows.
    max_instances_per_customer
        Each ordinary customer gets ``0..max`` instances (uniform, so ~max/2 on average);
        at least one customer gets none.
    system_customers
        Customers with ``is_system=True``; each holds 1-2 system instances.
    missing_hour_rate, missing_day_rate
        Share of hourly snapshots / daily rows left out, as real data has gaps.
    edge_cases
        False (default): plausible, distinct company and integration names and
        ordinary values, for demos. True: the first customers get awkward names
        (formula-like, quoted, duplicated, CJK, with a newline), integration names
        carry quotes and commas, and three daily rows carry values above 2**53 (for
        tests).

    Returns
    -------
    OrgData
        Customers in shuffled order (system ones among them), their instances, hourly
        snapshots for every customer and daily rows for every deployed instance.

    Examples
    --------
    >>> org = generate_org(seed=1, customers=3, days=2)
    >>> len(org.customers), org.customers[0].id == generate_org(seed=1, customers=3, days=2).customers[0].id
    (5, True)
    """
    if customers < 0 or days < 0 or system_customers < 0 or max_instances_per_customer < 0:
        raise ValueError("customers, days, system_customers and max_instances must be >= 0")
    # Millions of small acyclic objects: the cyclic GC would rescan them over and over.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(
            random.Random(seed),
            customers=customers,
            start=start,
            days=days,
            max_instances_per_customer=max_instances_per_customer,
            system_customers=system_customers,
            missing_hour_rate=missing_hour_rate,
            missing_day_rate=missing_day_rate,
            edge_cases=edge_cases,
        )
    finally:
        if was_enabled:
            gc.enable()


def _generate(
    rng: random.Random,
    *,
    customers: int,
    start: dt.date,
    days: int,
    max_instances_per_customer: int,
    system_customers: int,
    missing_hour_rate: float,
    missing_day_rate: float,
    edge_cases: bool,
) -> OrgData:
    range_start = dt.datetime.combine(start, dt.time(), tzinfo=UTC)
    range_end = range_start + dt.timedelta(days=days)

    integrations = [
        Integration(id=_new_id(rng, "Integration"), name=name, category=category)
        for name, category in (AWKWARD_INTEGRATIONS if edge_cases else PLAIN_INTEGRATIONS)
    ]
    names = (awkward_names if edge_cases else plausible_names)(rng, customers)
    org_customers = _make_customers(rng, names, system_customers, range_start)
    instances, deployments = _make_instances(
        rng, org_customers, integrations, max_instances_per_customer, range_start, range_end
    )
    snapshots: list[Snapshot] = []
    for customer in org_customers:
        snapshots.extend(
            _customer_snapshots(
                rng,
                customer.id,
                deployments.get(customer.id, []),
                range_start,
                days,
                missing_hour_rate,
            )
        )
    metrics = _daily_metrics(
        rng, instances, deployments, start, days, missing_day_rate, big_rows=3 if edge_cases else 0
    )
    return OrgData(
        customers=org_customers,
        integrations=integrations,
        instances=instances,
        snapshots=snapshots,
        daily_metrics=metrics,
    )


def _make_customers(
    rng: random.Random, names: list[str], system_count: int, range_start: dt.datetime
) -> list[Customer]:
    result: list[Customer] = []
    for i, name in enumerate(names):
        # Customer 0 always has an external ID and customer 1 never does; ~15% lack one.
        no_external = i == 1 or (i != 0 and rng.random() < 0.15)
        created = range_start - dt.timedelta(
            days=rng.randint(30, 900), seconds=rng.randrange(86400)
        )
        result.append(
            Customer(
                id=_new_id(rng, "Customer"),
                name=name,
                external_id=None if no_external else f"CRM-{i + 1:05d}",
                description=f"Customer #{i + 1}",
                labels=("billing",) if i % 3 == 0 else (),
                created_at=created,
                updated_at=created + dt.timedelta(days=rng.randint(0, 29)),
            )
        )
    for i in range(system_count):
        result.append(
            Customer(
                id=_new_id(rng, "Customer"),
                name=f"Prismatic System {i + 1}",
                is_system=True,
                description="System customer",
            )
        )
    rng.shuffle(result)
    return result


def _make_instances(
    rng: random.Random,
    customers: list[Customer],
    integrations: list[Integration],
    max_per_customer: int,
    range_start: dt.datetime,
    range_end: dt.datetime,
) -> tuple[list[Instance], dict[str, list[_Deployment]]]:
    """Instances per customer, with deployment windows (some start or end mid-range)."""
    span = max(int((range_end - range_start).total_seconds()), 1)
    ordinary = [c for c in customers if not c.is_system]
    counts = {c.id: rng.randint(0, max_per_customer) for c in ordinary}
    if len(ordinary) > 1 and 0 not in counts.values():
        counts[ordinary[-1].id] = 0
    # One ordinary customer also owns a system instance, so instance filters stand alone.
    with_system_instance = next((c.id for c in ordinary if counts[c.id] > 0), None)
    instances: list[Instance] = []
    deployments: dict[str, list[_Deployment]] = {}
    for customer in customers:
        n_system = 0
        n_plain = counts.get(customer.id, 0)
        if customer.is_system:
            n_plain, n_system = 0, rng.randint(1, 2)
        elif customer.id == with_system_instance:
            n_system = 1
        for k in range(n_plain + n_system):
            integration = rng.choice(integrations)
            if rng.random() < 0.25:  # deployed during the range
                deployed = range_start + dt.timedelta(seconds=rng.randrange(span))
            else:
                deployed = range_start - dt.timedelta(days=rng.randint(1, 400))
            removed = None
            if rng.random() < 0.1:  # removed during the range
                removed = deployed + dt.timedelta(seconds=rng.randrange(span))
            is_system = k >= n_plain
            suffix = "" if k == 0 else f" #{k + 1}"
            instances.append(
                Instance(
                    id=_new_id(rng, "Instance"),
                    name=f"{integration.name}{suffix}" + (" (system)" if is_system else ""),
                    customer_id=customer.id,
                    integration_id=integration.id,
                    is_system=is_system,
                    enabled=removed is None,
                    created_at=deployed,
                    updated_at=removed or deployed,
                    last_deployed_at=deployed,
                )
            )
            deployments.setdefault(customer.id, []).append(
                _Deployment(integration.id, deployed, removed)
            )
    return instances, deployments


def _customer_snapshots(
    rng: random.Random,
    customer_id: str,
    deployments: list[_Deployment],
    range_start: dt.datetime,
    days: int,
    missing_rate: float,
) -> list[Snapshot]:
    """Hourly snapshots with jitter; day 1 is pinned at 00:00:00 and 23:59:59.999999.

    This is the hot loop (millions of rows for big orgs), hence the local aliases.
    """
    rows: list[Snapshot] = []
    append = rows.append
    random_ = rng.random
    bits = rng.getrandbits
    td = dt.timedelta
    users = rng.randint(1, 40)
    created_workflows = rng.randint(0, 5)
    pinned_day = min(1, days - 1)
    end_of_day = td(hours=23, minutes=59, seconds=59, microseconds=999999)
    windows = [(x.start, x.end, x.integration_id) for x in deployments]
    for d in range(days):
        day_start = range_start + td(days=d)
        for h in range(24):
            pinned = (d == pinned_day and h in (0, 23)) or (d == days - 1 and h == 23)
            if not pinned and random_() < missing_rate:
                continue
            if pinned:
                at = day_start if h == 0 else day_start + end_of_day
            else:
                # Up to 30 minutes late; 1 in 10 lands on a whole second (no fraction printed).
                late = int(random_() * 1_800_000_000)
                if random_() < 0.1:
                    late -= late % 1_000_000
                at = day_start + td(hours=h, microseconds=late)
            roll = random_()
            if roll < 0.02:
                users = users + 1 if roll < 0.01 or users == 0 else users - 1
            elif roll > 0.99:
                created_workflows += 1
            live = [w for w in windows if w[0] <= at and (w[1] is None or at < w[1])]
            append(
                Snapshot(
                    _fast_id(bits, "CustomerTotalUsageMetrics:"),
                    customer_id,
                    at,
                    len(live),
                    len({w[2] for w in live}) if len(live) > 1 else len(live),
                    users,
                    created_workflows,
                    created_workflows // 2,
                )
            )
    return rows


def _daily_metrics(
    rng: random.Random,
    instances: list[Instance],
    deployments: dict[str, list[_Deployment]],
    start: dt.date,
    days: int,
    missing_rate: float,
    big_rows: int,
) -> list[DailyMetric]:
    """One row per instance per deployed day; the first ``big_rows`` busy ones exceed 2**53."""
    windows: dict[str, _Deployment] = {}
    seen: dict[str, int] = {}
    for inst in instances:
        k = seen.get(inst.customer_id, 0)
        seen[inst.customer_id] = k + 1
        windows[inst.id] = deployments[inst.customer_id][k]
    big_rows_left = big_rows  # the first busy ordinary rows get BigInt-sized values
    rows: list[DailyMetric] = []
    for inst in instances:
        window = windows[inst.id]
        first_day = max(start, window.start.date())
        last_day = start + dt.timedelta(days=days - 1)
        if window.end is not None:
            last_day = min(last_day, window.end.date())
        day = first_day
        while day <= last_day:
            if rng.random() >= missing_rate:
                row = _metric_row(rng, inst.id, day)
                if big_rows_left and not inst.is_system and row.successful_execution_count:
                    big_rows_left -= 1
                    row = DailyMetric(
                        id=row.id,
                        instance_id=row.instance_id,
                        snapshot_date=row.snapshot_date,
                        successful_execution_count=row.successful_execution_count,
                        failed_execution_count=row.failed_execution_count,
                        step_count=_BIG + 2 if big_rows_left == 0 else row.step_count,
                        spend_mb_secs=_BIG + rng.randrange(1_000_000),
                    )
                rows.append(row)
            day += dt.timedelta(days=1)
    return rows


def _metric_row(rng: random.Random, instance_id: str, day: dt.date) -> DailyMetric:
    roll = rng.random()
    if roll < 0.08:  # idle day: a row with all zeros
        ok, failed = 0, 0
    elif roll < 0.12:  # everything failed
        ok, failed = 0, rng.randint(1, 300)
    else:
        ok, failed = rng.randint(1, 1440), rng.choice((0, 0, 0, rng.randint(1, 50)))
    steps = (ok + failed) * rng.randint(2, 12)
    spend = ok * rng.randint(100, 3000) + failed * rng.randint(10, 500)
    return DailyMetric(
        id=_new_id(rng, "InstanceDailyUsageMetrics"),
        instance_id=instance_id,
        snapshot_date=day,
        successful_execution_count=ok,
        failed_execution_count=failed,
        step_count=steps,
        spend_mb_secs=spend,
    )


def demo_org(start: dt.date, end: dt.date) -> OrgData:
    """A realistic org (seed 0, no edge cases) covering ``start``..``end`` plus a day on each side.

    Every sandbox (``--demo``, ``python -m prismatic_usage sandbox``, ``Sandbox()``)
    serves it over the one sandbox window (:mod:`prismatic_usage.sandbox.window`).
    The extra days let any time zone's first and last local day be whole.

    Parameters
    ----------
    start, end
        The first and last day (inclusive) to cover.

    Returns
    -------
    OrgData
        ``generate_org(seed=0, missing_hour_rate=0.001)`` over ``[start - 1 day, end + 1 day]``.
    """
    # Real hourly snapshots are rarely missing: a few gaps keep the audit honest
    # without making every other customer-day look incomplete (3% an hour would).
    return generate_org(
        seed=0,
        start=start - dt.timedelta(days=1),
        days=(end - start).days + 3,
        missing_hour_rate=0.001,
    )
