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

from ._calendar import IntArray, day_and_hour, day_span, final_days, hours_in_days
from ._daily_sums import owner_codes, row_slices
from .config import resolve_zone
from .records import UsageRecords

if TYPE_CHECKING:
    from .report import UsageReport

__all__ = ["Audit", "audit"]

_UTC = zoneinfo.ZoneInfo("UTC")
#: More hours than any local day has (25 when the clocks fall back): a key's hour digit.
_HOURS_A_DAY_AT_MOST = 64
#: Flags (bytes) the gap count may use beyond 8 per snapshot before it keeps keys instead.
_SPARE_FLAGS = 1 << 24


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
    hour while another hour has none. Snapshots are read one slice at a time and
    each (customer, day, hour) seen is kept once, as an integer, so memory stays
    at a few bytes per customer-day-hour however many snapshots there are.
    """
    ids = records.customers.column("id").combine_chunks()
    bins = len(ids) * len(days) * _HOURS_A_DAY_AT_MOST
    # One flag per (customer, day, hour) while that is at most a few bytes a
    # snapshot; else (many customers, few snapshots) the distinct keys themselves.
    flags = np.zeros(bins if bins <= 8 * records.snapshots.num_rows + _SPARE_FLAGS else 0, np.bool_)
    seen: list[IntArray] = []
    for part in row_slices(records.snapshots):
        codes = owner_codes(part.column("customer_id"), ids)
        day, hour = day_and_hour(part.column("snapshot_time"), zone)
        inside = (codes >= 0) & (day >= days[0]) & (day <= days[-1])
        customer_day = codes[inside] * len(days) + (day[inside] - days[0])
        keys = customer_day * _HOURS_A_DAY_AT_MOST + hour[inside]
        if flags.size:
            flags[keys] = True
        else:
            seen.append(np.unique(keys))
    if flags.size:
        hours_seen = flags.reshape(-1, _HOURS_A_DAY_AT_MOST).sum(axis=1)
        customer_days = np.flatnonzero(hours_seen)
        hours_seen = hours_seen[customer_days]
    else:
        distinct = np.unique(np.concatenate([np.zeros(0, np.int64), *seen]))
        customer_days, hours_seen = np.unique(distinct // _HOURS_A_DAY_AT_MOST, return_counts=True)
    expected = hours_in_days(customer_days % len(days) + days[0], zone)
    complete = int((hours_seen >= expected).sum())
    customers = len(np.unique(customer_days // len(days)))
    return customers * len(days) - complete


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
