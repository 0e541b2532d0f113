"""The generated org's usage rows: hourly snapshots per customer, daily metrics per instance.

Split from :mod:`.generator`, which shapes the org (customers, instances and when
each is deployed); this module turns those deployments into the rows the usage
queries serve. Both draw from the one seeded :class:`random.Random`, in a fixed
order, so the same arguments always give the same rows and IDs.
"""

from __future__ import annotations

import datetime as dt
import random
from binascii import b2a_base64
from collections.abc import Callable
from dataclasses import dataclass

from .data import DailyMetric, Instance, Snapshot

__all__ = ["Deployment", "customer_snapshots", "daily_metrics", "fast_id", "new_id"]

_BIG = 2**53 + 1  # the first integer a float64 cannot hold


@dataclass(frozen=True, slots=True)
class Deployment:
    """When an instance is deployed, for the counts in its customer's snapshots."""

    integration_id: str
    start: dt.datetime
    end: dt.datetime | None


def customer_snapshots(
    rng: random.Random,
    customer_id: str,
    deployments: list[Deployment],
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
                    fast_id(bits, "CustomerTotalUsageMetrics:"),
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


def daily_metrics(
    rng: random.Random,
    instances: list[Instance],
    deployments: dict[str, list[Deployment]],
    start: dt.date,
    days: int,
    missing_rate: float,
    big_rows: int,
) -> list[DailyMetric]:
    """One row per instance per deployed day; the first ``big_rows`` busy ones exceed 2**53."""
    windows: dict[str, Deployment] = {}
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
        id=new_id(rng, "InstanceDailyUsageMetrics"),
        instance_id=instance_id,
        snapshot_date=day,
        successful_execution_count=ok,
        failed_execution_count=failed,
        step_count=steps,
        spend_mb_secs=spend,
    )


def new_id(rng: random.Random, type_name: str) -> str:
    """A global ID whose UUID is ``uuid.UUID(int=rng.getrandbits(128))``."""
    return fast_id(rng.getrandbits, f"{type_name}:")


def fast_id(bits: Callable[[int], int], prefix: str) -> str:
    """Same as ``global_id(type, uuid.UUID(int=bits(128)))``, three times faster."""
    h = f"{bits(128):032x}"
    text = f"{prefix}{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return b2a_base64(text.encode(), newline=False).decode("ascii")
