"""Expected raw records, computed straight from a sandbox's OrgData (not through GraphQL)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from prismatic_usage.records import UsageRecords
from prismatic_usage.sandbox import OrgData

Row = tuple[Any, ...]


def expected_records(
    data: OrgData, start: dt.date, end: dt.date, tz: str = "UTC"
) -> dict[str, set[Row]]:
    zone = zoneinfo.ZoneInfo(tz)
    low = dt.datetime.combine(start, dt.time(0), tzinfo=zone)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    customers = {c.id: c for c in data.customers if not c.is_system}
    integrations = {i.id: i.name for i in data.integrations}
    instances = {i.id: i for i in data.instances if not i.is_system}
    return {
        "customers": {(c.id, c.name, c.external_id) for c in customers.values()},
        "instances": {
            (i.id, i.name, i.customer_id, integrations[i.integration_id])
            for i in instances.values()
        },
        "snapshots": {
            (
                s.id,
                s.customer_id,
                s.snapshot_time.astimezone(dt.UTC),
                s.deployed_instance_count,
                s.deployed_unique_integration_count,
            )
            for s in data.snapshots
            if s.customer_id in customers and low <= s.snapshot_time < high
        },
        "daily_metrics": {
            (
                m.id,
                m.instance_id,
                m.snapshot_date,
                m.successful_execution_count,
                m.failed_execution_count,
                m.step_count,
                m.spend_mb_secs,
            )
            for m in data.daily_metrics
            if m.instance_id in instances and start <= m.snapshot_date <= end
        },
    }


def actual_records(records: UsageRecords) -> dict[str, set[Row]]:
    def rows(table: Any) -> list[Row]:
        return list(zip(*(table.column(n).to_pylist() for n in table.schema.names), strict=True))

    result = {
        "customers": rows(records.customers),
        "instances": rows(records.instances),
        "snapshots": rows(records.snapshots),
        "daily_metrics": rows(records.daily_metrics),
    }
    for name, listed in result.items():
        assert len(listed) == len(set(listed)), f"duplicate {name} rows"
    return {name: set(listed) for name, listed in result.items()}
