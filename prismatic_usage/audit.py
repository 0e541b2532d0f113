"""Can finance invoice this? What keeps a written report from being clean (pure).

A report is *clean* when every day of its range is final, every customer-day
has a snapshot for every hour of the local day, and (when it was reconciled)
every exact metric matches Prismatic's org totals. ``--strict`` turns an
unclean report into exit code 6; the summary line says which of the three.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ._calendar import IntArray, day_and_hour, day_span, final_days, hours_in_days
from .config import resolve_zone
from .records import UsageRecords

if TYPE_CHECKING:
    from .report import UsageReport

__all__ = ["Audit", "audit"]

_UTC = zoneinfo.ZoneInfo("UTC")


@dataclass(frozen=True)
class Audit:
    """What is not clean in a report (all zero/empty: clean).

    Attributes
    ----------
    open_days
        Days of the range not yet final (their numbers may still grow).
    gappy_customer_days
        Customer-days (of customers with data in the range) lacking some hour's snapshot.
    reconciliation_days
        Days whose report totals differ from Prismatic's org totals.
    reconciled
        Whether the report was reconciled at all.
    """

    open_days: int
    #: Customer-days (of customers with data in the range) lacking some hour's snapshot.
    gappy_customer_days: int
    reconciliation_days: int
    reconciled: bool

    @property
    def clean(self) -> bool:
        return not (self.open_days or self.gappy_customer_days or self.reconciliation_days)

    def summary(self) -> str:
        """One line: ``clean`` or what is not."""
        if self.clean:
            checked = "reconciled, " if self.reconciled else ""
            return f"data clean: {checked}every day final, every hour's snapshot present"
        parts = []
        if self.open_days:
            parts.append(f"{self.open_days} day{'s' * (self.open_days != 1)} not yet final")
        if self.gappy_customer_days:
            parts.append(f"{self.gappy_customer_days} customer-days with missing snapshot hours")
        if self.reconciliation_days:
            parts.append(f"differences from the org totals on {self.reconciliation_days} days")
        return "data not clean: " + "; ".join(parts)


def _customer_days_missing_hours(
    records: UsageRecords, days: IntArray, zone: zoneinfo.ZoneInfo
) -> int:
    """Customer-days of the range without a snapshot in every hour of the local day.

    Every customer with a snapshot anywhere in the range is expected on every
    day: a day with none counts, and so does a day where two snapshots share an
    hour while another hour has none.
    """
    snapshots = records.snapshots
    known = pc.is_in(snapshots.column("customer_id"), value_set=records.customers.column("id"))
    snapshots = snapshots.filter(known)
    day, hour = day_and_hour(snapshots.column("snapshot_time"), zone)
    inside = (day >= days[0]) & (day <= days[-1])
    customers = np.asarray(snapshots.column("customer_id").to_pylist(), dtype=object)[inside]
    seen = pd.DataFrame({"customer": customers, "day": day[inside], "hour": hour[inside]})
    distinct = seen.drop_duplicates().groupby(["customer", "day"]).size().reset_index(name="n")
    expected = hours_in_days(distinct["day"].to_numpy(np.int64), zone)
    complete = int((distinct["n"].to_numpy(np.int64) >= expected).sum())
    return len(set(customers.tolist())) * len(days) - complete


def audit(report: UsageReport, *, as_of: dt.datetime | None = None) -> Audit:
    """Judge a report: open days, customer-days with missing hours, reconciliation differences.

    Parameters
    ----------
    report : UsageReport
        A built report (``report.final_after`` says when a day is final).
    as_of : datetime.datetime, optional
        When the data was fetched; default ``report.records.fetched_at``, else now.
    """
    records = report.records
    moment = as_of or records.fetched_at or dt.datetime.now(dt.UTC)
    days = day_span(records.start, records.end)
    zone = resolve_zone(records.tz)
    # Final in the report's zone and as a UTC day: the compute rows are UTC dates.
    final = final_days(days, zone, as_of=moment, final_after=report.final_after) & final_days(
        days, _UTC, as_of=moment, final_after=report.final_after
    )
    gappy = _customer_days_missing_hours(records, days, zone)
    reconciliation = report.reconciliation
    differing = 0
    if reconciliation is not None and reconciliation.refused is None:
        differing = int(reconciliation.differences["Date"].nunique())
    return Audit(
        open_days=int((~final).sum()),
        gappy_customer_days=gappy,
        reconciliation_days=differing,
        reconciled=reconciliation is not None and reconciliation.refused is None,
    )
