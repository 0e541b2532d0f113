"""Reconciliation: the reports checked against Prismatic's own org-wide totals (pure).

For every date of the range, Prismatic's ``orgDailyUsageMetrics`` (executions,
steps, MB-seconds of the whole org) is set against the sum of that date's rows
in the compute report, and the mean of the day's hourly ``orgTotalUsageMetrics``
snapshots against the sum of the customers' daily means. Exact integers stay
exact (Python ``int``, also above 2**53); ``Difference = Org Total - Report Total``.

Why a difference appears (the README lists them too):

- usage of instances deleted during the period, or not listed (the API lists
  current, non-system instances only): the org totals count it, the report
  cannot;
- system instances and customers: in the org totals, never in the reports;
- missing data: a page the API did not return, an hour without a snapshot;
- a day still open: the org totals and the per-instance rows were read at
  slightly different moments of a day that is still growing;
- for deployed instances only: the org snapshots are taken at other moments
  than the customers' and include system customers, so the two means differ
  by design; they are shown, not judged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._calendar import day_span, local_days
from ._periods import days as day_numbers
from .columns import RECONCILIATION, date_array, with_column_names
from .config import resolve_zone
from .errors import ConfigurationError
from .records import OrgTotals

if TYPE_CHECKING:
    from .report import UsageReport

__all__ = ["EXACT_METRICS", "Reconciliation", "reconcile"]

#: The metrics compared exactly: report column -> org total field.
EXACT_METRICS = {
    "Successful Executions": "successful_execution_count",
    "Failed Executions": "failed_execution_count",
    "Step Count": "step_count",
    "Execution Mb-Seconds": "spend_mb_secs",
}
DEPLOYED = "Deployed Instances"


@dataclass(frozen=True)
class Reconciliation:
    """The reconciliation frame and what it says.

    ``frame`` has the columns of :data:`prismatic_usage.columns.RECONCILIATION`
    (``Date, Metric, Org Total, Report Total, Difference``), five rows a date.
    ``refused`` is the API's message when the token may not read the org
    totals (the frame is then empty). The frame keeps the report headers
    whatever the report's naming; ``with_column_names(frame, "snake")`` renames it.
    """

    frame: pd.DataFrame
    days: int
    refused: str | None = None

    @property
    def differences(self) -> pd.DataFrame:
        """The rows of the exact metrics whose Difference is not zero."""
        exact = self.frame[self.frame["Metric"] != DEPLOYED]
        return exact[exact["Difference"] != 0]

    @property
    def clean(self) -> bool:
        """The org totals were read and every exact metric matches on every date."""
        return self.refused is None and self.differences.empty

    def summary(self) -> str:
        """One line for the run's output, e.g. ``reconciled 31 days: executions match; ...``."""
        if self.refused is not None:
            return f"not reconciled: the API refused the org totals ({self.refused})"
        parts = []
        for label, metrics, unit in (
            ("executions", ("Successful Executions", "Failed Executions"), "executions"),
            ("steps", ("Step Count",), "steps"),
            ("MB-seconds", ("Execution Mb-Seconds",), "MB-seconds"),
        ):
            rows = self.differences[self.differences["Metric"].isin(metrics)]
            if rows.empty:
                parts.append(f"{label} match")
                continue
            # Shortfalls and surpluses are told apart: they must never cancel out.
            for sign, where in ((1, "not attributed to a listed instance"),
                                (-1, "more in the report than in the org's totals")):  # fmt: skip
                side = rows[[int(v) * sign > 0 for v in rows["Difference"]]]
                if side.empty:
                    continue
                total = sum(abs(int(v)) for v in side["Difference"])
                days = side["Date"].nunique()
                parts.append(f"{total:,} {unit} on {days} day{'s' * (days != 1)} {where}")
        deployed = self.frame[self.frame["Metric"] == DEPLOYED]["Difference"]
        gaps = [abs(float(v)) for v in deployed if v is not None and not math.isnan(float(v))]
        if gaps:
            parts.append(f"deployed instances within {max(gaps):.2f} a day of the org's snapshots")
        return f"reconciled {self.days} days: " + "; ".join(parts)


def reconcile(report: UsageReport, org_totals: OrgTotals | None = None) -> Reconciliation:
    """Set a report against Prismatic's org totals, date by date (no network).

    Parameters
    ----------
    report : UsageReport
        From :func:`prismatic_usage.fetch_report`; its range and zone are used.
    org_totals : OrgTotals, optional
        Default: ``report.records.org_totals`` (fetched with ``reconcile=True``
        or ``org_totals=True``).

    Returns
    -------
    Reconciliation
        One row per date and metric; ``summary()`` says it in one line.

    Raises
    ------
    ConfigurationError
        If no org totals were given or fetched.
    """
    org = org_totals if org_totals is not None else report.records.org_totals
    if org is None:
        raise ConfigurationError(
            "no org totals to reconcile against: fetch with fetch_report(..., reconcile=True)"
        )
    records = report.records
    dates = day_span(records.start, records.end)
    if org.refused is not None:
        return Reconciliation(RECONCILIATION.empty(), days=len(dates), refused=org.refused)
    report_sums = _report_sums(
        with_column_names(report.instance_compute, "original"),
        with_column_names(report.customer_instances, "original"),
    )
    org_daily = _org_daily(org)
    org_deployed = _org_deployed(org, resolve_zone(records.tz))
    columns: dict[str, list[Any]] = defaultdict(list)
    for day in dates.tolist():
        for metric, field in EXACT_METRICS.items():
            org_value = org_daily.get(day, {}).get(field, 0)
            ours = report_sums[metric].get(day, 0)
            _row(columns, day, metric, org_value, ours, org_value - ours)
        mean = org_deployed.get(day)
        ours_deployed = report_sums[DEPLOYED].get(day, 0.0)
        difference = None if mean is None else mean - ours_deployed
        _row(columns, day, DEPLOYED, mean, ours_deployed, difference)
    frame = RECONCILIATION.build(
        {
            **columns,
            "Date": date_array(np.asarray(columns["Date"], dtype=np.int64)),
        }
    )
    return Reconciliation(frame, days=len(dates))


def _row(columns: dict[str, list[Any]], day: int, metric: str, *values: Any) -> None:
    columns["Date"].append(day)
    columns["Metric"].append(metric)
    for name, value in zip(("Org Total", "Report Total", "Difference"), values, strict=True):
        columns[name].append(value)


def _report_sums(compute: pd.DataFrame, customers: pd.DataFrame) -> dict[str, dict[int, Any]]:
    """Per report metric, date -> the sum of that date's rows (exact ints, float for means)."""
    sums: dict[str, dict[int, Any]] = {}
    compute_days = day_numbers(compute["Date"])
    for metric in EXACT_METRICS:
        totals: dict[int, int] = defaultdict(int)
        for day, value in zip(compute_days.tolist(), compute[metric].tolist(), strict=True):
            totals[day] += int(value)
        sums[metric] = totals
    means: dict[int, list[float]] = defaultdict(list)
    customer_days = day_numbers(customers["Date"])
    for day, value in zip(customer_days.tolist(), customers[DEPLOYED].tolist(), strict=True):
        means[day].append(float(value))
    sums[DEPLOYED] = {day: math.fsum(values) for day, values in means.items()}
    return sums


def _org_daily(org: OrgTotals) -> dict[int, dict[str, int]]:
    """Date -> the org's exact totals (several rows for one date are added up)."""
    table = org.daily
    dates = table.column("snapshot_date").cast("int32").to_pylist()
    result: dict[int, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(EXACT_METRICS.values(), 0)
    )
    for field in EXACT_METRICS.values():
        for day, value in zip(dates, table.column(field).to_pylist(), strict=True):
            result[day][field] += int(value)
    return result


def _org_deployed(org: OrgTotals, zone: Any) -> dict[int, float]:
    """Local date -> the mean deployedInstanceCount of that day's hourly org snapshots."""
    table = org.hourly
    if not table.num_rows:
        return {}
    days = local_days(table.column("snapshot_time"), zone)
    counts = table.column("deployed_instance_count").to_pylist()
    grouped: dict[int, list[int]] = defaultdict(list)
    for day, count in zip(days.tolist(), counts, strict=True):
        grouped[day].append(int(count))
    return {day: sum(values) / len(values) for day, values in grouped.items()}
