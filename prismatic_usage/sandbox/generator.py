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

from ._names import AWKWARD_INTEGRATIONS, PLAIN_INTEGRATIONS, awkward_names, plausible_names
from .data import Customer, Instance, Integration, OrgData, Snapshot
from .usage_rows import Deployment, customer_snapshots, daily_metrics, new_id

__all__ = ["DEFAULT_START", "demo_org", "generate_org"]

UTC = dt.UTC
#: First day of a generated organisation's data unless told otherwise (fixed, so runs repeat).
DEFAULT_START = dt.date(2024, 12, 1)


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
        Integration(id=new_id(rng, "Integration"), name=name, category=category)
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
            customer_snapshots(
                rng,
                customer.id,
                deployments.get(customer.id, []),
                range_start,
                days,
                missing_hour_rate,
            )
        )
    metrics = daily_metrics(
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
                id=new_id(rng, "Customer"),
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
                id=new_id(rng, "Customer"),
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
) -> tuple[list[Instance], dict[str, list[Deployment]]]:
    """Instances per customer, with deployment windows (some start or end mid-range)."""
    span = max(int((range_end - range_start).total_seconds()), 1)
    ordinary = [c for c in customers if not c.is_system]
    counts = {c.id: rng.randint(0, max_per_customer) for c in ordinary}
    if len(ordinary) > 1 and 0 not in counts.values():
        counts[ordinary[-1].id] = 0
    # One ordinary customer also owns a system instance, so instance filters stand alone.
    with_system_instance = next((c.id for c in ordinary if counts[c.id] > 0), None)
    instances: list[Instance] = []
    deployments: dict[str, list[Deployment]] = {}
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
                    id=new_id(rng, "Instance"),
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
                Deployment(integration.id, deployed, removed)
            )
    return instances, deployments


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
