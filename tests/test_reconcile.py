"""Reconciliation against the org totals, coverage and --strict, through the sandbox.

Expected values are computed here from the sandbox's own data (``OrgData``),
never from the code under test.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from prismatic_usage import (
    ConfigurationError,
    FetchOptions,
    OrgTotals,
    fetch_report,
    reconcile,
)
from prismatic_usage.sandbox import ORG_TOTALS, FaultPlan, OrgData, Sandbox, generate_org

from .test_cli import run_cli

START, END = dt.date(2024, 12, 1), dt.date(2024, 12, 5)
FAST = FetchOptions(requests_per_second=None)
HEADER = ["Date", "Metric", "Org Total", "Report Total", "Difference"]
FIELDS = {
    "Successful Executions": "successful_execution_count",
    "Failed Executions": "failed_execution_count",
    "Step Count": "step_count",
    "Execution Mb-Seconds": "spend_mb_secs",
}


@pytest.fixture(scope="module")
def clean_org() -> OrgData:
    """No system customers or instances: every execution belongs to a listed instance."""
    org = generate_org(
        edge_cases=True, seed=17, customers=7, start=START, days=6, system_customers=0
    )
    instances = [i for i in org.instances if not i.is_system]
    kept = {i.id for i in instances}
    return OrgData(
        customers=org.customers,
        integrations=org.integrations,
        instances=instances,
        snapshots=org.snapshots,
        daily_metrics=[m for m in org.daily_metrics if m.instance_id in kept],
    )


def with_deleted(org: OrgData) -> tuple[OrgData, str]:
    """``org`` with one instance that has usage deleted since; and its ID."""
    gone = next(i for i in org.instances if any(m.instance_id == i.id for m in org.daily_metrics))
    instances = [dataclasses.replace(i, deleted=True) if i is gone else i for i in org.instances]
    return dataclasses.replace(org, instances=instances), gone.id


def rebuilt(org: OrgData) -> OrgData:
    """A fresh OrgData (its indexes are built on construction)."""
    return OrgData(
        customers=org.customers,
        integrations=org.integrations,
        instances=org.instances,
        snapshots=org.snapshots,
        daily_metrics=org.daily_metrics,
    )


def test_a_clean_org_reconciles_to_zero(
    clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=clean_org)
    report = fetch_report(START, END, url=sb.url, token=sb.token, options=FAST, progress=False,
                          reconcile=True)  # fmt: skip
    result = report.reconciliation
    assert result is not None and result.clean
    frame = result.frame
    assert list(frame.columns) == HEADER
    assert len(frame) == 5 * 5  # five days, four exact metrics and deployed instances
    exact = frame[frame["Metric"] != "Deployed Instances"]
    assert set(exact["Difference"]) == {0}
    # The org totals are the sandbox's own per-date sums, exactly (above 2**53 too).
    for row in exact.itertuples():
        expected = sum(getattr(m, FIELDS[row.Metric]) for m in clean_org.daily_metrics
                       if m.snapshot_date == row.Date.date())  # fmt: skip
        assert row._3 == expected and type(row._3) is int
    assert result.summary().startswith(
        "reconciled 5 days: executions match; steps match; MB-seconds match"
    )


def test_a_deleted_instances_usage_is_exactly_the_difference(
    clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    org, gone = with_deleted(clean_org)
    sb = make_sandbox(data=rebuilt(org))
    report = fetch_report(START, END, url=sb.url, token=sb.token, options=FAST, progress=False,
                          reconcile=True)  # fmt: skip
    assert gone not in set(report.instance_compute["Instance ID"])
    usage: dict[tuple[dt.date, str], int] = defaultdict(int)
    for m in org.daily_metrics:
        if m.instance_id == gone:
            for metric, field in FIELDS.items():
                usage[(m.snapshot_date, metric)] += getattr(m, field)
    assert report.reconciliation is not None
    frame = report.reconciliation.frame
    exact = frame[frame["Metric"] != "Deployed Instances"]
    got = {(r.Date.date(), r.Metric): r.Difference for r in exact.itertuples()}
    assert got == {key: usage.get(key, 0) for key in got}
    mb = sum(v for (day, metric), v in usage.items()
             if metric == "Execution Mb-Seconds" and START <= day <= END)  # fmt: skip
    days = len({day for (day, metric), v in usage.items() if v and START <= day <= END})
    assert f"{mb:,} MB-seconds on {days} days not attributed to a listed instance" in (
        report.reconciliation.summary()
    )


def test_deployed_instances_compare_the_org_snapshots_mean_with_the_customers_means(
    clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=clean_org)
    report = fetch_report(START, START, url=sb.url, token=sb.token, options=FAST, progress=False,
                          reconcile=True)  # fmt: skip
    assert report.reconciliation is not None
    row = report.reconciliation.frame.iloc[4]
    assert row["Metric"] == "Deployed Instances"
    hours: dict[dt.datetime, int] = defaultdict(int)
    for s in clean_org.snapshots:
        if s.snapshot_time.date() == START:
            hours[s.snapshot_time.replace(minute=0, second=0, microsecond=0)] += (
                s.deployed_instance_count
            )
    assert row["Org Total"] == pytest.approx(sum(hours.values()) / len(hours), rel=1e-12)
    ours = report.customer_instances
    assert row["Report Total"] == pytest.approx(ours["Deployed Instances"].sum(), rel=1e-12)


def test_refused_org_totals_are_one_line_and_the_report_is_still_written(
    tmp_path: Path, clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=clean_org, faults=FaultPlan(denied_ids=frozenset({ORG_TOTALS})))
    result = run_cli("--url", sb.url, "--start-date", START.isoformat(), "--end-date",
                     END.isoformat(), "--reconcile", "--rate", "10000", "--output-dir", "out",
                     cwd=tmp_path, env={"PRISMATIC_API_KEY": sb.token})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1 and "refused the org totals" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "customer-instance-data.csv", "instance-compute-data.csv"
    ]  # fmt: skip
    report = fetch_report(START, END, url=sb.url, token=sb.token, options=FAST, progress=False,
                          reconcile=True)  # fmt: skip
    assert report.reconciliation is not None and report.reconciliation.refused
    assert not report.reconciliation.clean


def test_the_reconciliation_csv_has_exact_integers_and_the_documented_header(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    org = generate_org(
        edge_cases=True, seed=23, customers=6, start=START, days=6
    )  # BigInt rows above 2**53
    sb = make_sandbox(data=org)
    args = ("--url", sb.url, "--start-date", START.isoformat(), "--end-date", END.isoformat(),
            "--reconcile", "--rate", "10000")  # fmt: skip
    env = {"PRISMATIC_API_KEY": sb.token}
    plain = run_cli(*args, "--output-dir", "a", cwd=tmp_path, env=env)
    assert plain.returncode == 0, plain.stderr
    assert "reconciled 5 days:" in plain.stdout
    with open(tmp_path / "a" / "reconciliation.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == HEADER
    mb = [r for r in rows[1:] if r[1] == "Execution Mb-Seconds"]
    for date, _, org_total, report_total, difference in mb:
        day = dt.date.fromisoformat(date)
        assert int(org_total) == sum(m.spend_mb_secs for m in org.daily_metrics
                                     if m.snapshot_date == day)  # fmt: skip
        assert int(difference) == int(org_total) - int(report_total)
    assert any(int(r[2]) > 2**53 for r in mb)
    # Through a store the reconciliation is the same, byte for byte.
    stored = run_cli(*args, "--store", "store", "--output-dir", "b", cwd=tmp_path, env=env)
    assert stored.returncode == 0, stored.stderr
    assert (tmp_path / "b" / "reconciliation.csv").read_bytes() == (
        tmp_path / "a" / "reconciliation.csv"
    ).read_bytes()


def test_strict_exits_6_for_an_open_day_and_0_once_clean(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    whole = generate_org(edge_cases=True, seed=5, customers=4, start=START, days=3, missing_hour_rate=0.0,
                         missing_day_rate=0.0, system_customers=0)  # fmt: skip
    sb = make_sandbox(data=whole)
    base = ("--url", sb.url, "--start-date", START.isoformat(), "--end-date", START.isoformat(),
            "--rate", "10000", "--strict", "--output-dir", "out")  # fmt: skip
    env = {"PRISMATIC_API_KEY": sb.token}
    open_day = run_cli(*base, "--final-after", "500000", cwd=tmp_path, env=env)
    assert open_day.returncode == 6
    assert open_day.stderr.strip() == "data not clean: 1 day not yet final"
    assert (tmp_path / "out" / "customer-instance-data.csv").exists()  # written all the same
    final = run_cli(*base, cwd=tmp_path, env=env)
    assert final.returncode == 0, final.stderr
    assert final.stderr == ""


def test_strict_counts_customer_days_with_missing_hours(
    tmp_path: Path, clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=clean_org)
    result = run_cli("--url", sb.url, "--start-date", START.isoformat(), "--end-date",
                     END.isoformat(), "--rate", "10000", "--strict", "--output-dir", "out",
                     cwd=tmp_path, env={"PRISMATIC_API_KEY": sb.token})  # fmt: skip
    per_day: dict[tuple[str, dt.date], int] = defaultdict(int)
    for s in clean_org.snapshots:
        if START <= s.snapshot_time.date() <= END:
            per_day[(s.customer_id, s.snapshot_time.date())] += 1
    gappy = sum(1 for count in per_day.values() if count < 24)
    assert gappy > 0  # the generator leaves ~3 % of the hours out
    assert result.returncode == 6
    assert f"{gappy} customer-days with missing snapshot hours" in result.stderr


def test_reconcile_needs_org_totals_and_takes_them_as_an_argument(
    clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=clean_org)
    report = fetch_report(START, END, url=sb.url, token=sb.token, options=FAST, progress=False)
    assert report.reconciliation is None
    with pytest.raises(ConfigurationError, match="reconcile=True"):
        reconcile(report)
    refused = reconcile(report, OrgTotals(refused="no permission"))
    assert refused.frame.empty and "refused" in refused.summary()
    coverage = report.coverage
    assert list(coverage.columns) == ["Customer ID", "Customer Name", "Date", "Snapshots",
                                      "Expected Snapshots", "Coverage", "Final"]  # fmt: skip
    assert (coverage["Expected Snapshots"] == 24).all()
    assert isinstance(coverage, pd.DataFrame) and coverage["Final"].all()


# -- found in review -------------------------------------------------------------------------


def test_strict_counts_a_day_without_any_snapshot_of_a_customer(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    whole = generate_org(edge_cases=True, seed=5, customers=3, start=START, days=4, missing_hour_rate=0.0,
                         missing_day_rate=0.0, system_customers=0)  # fmt: skip
    victim = whole.customers[0].id
    day = START + dt.timedelta(days=1)
    snapshots = [s for s in whole.snapshots
                 if not (s.customer_id == victim and s.snapshot_time.date() == day)]  # fmt: skip
    sb = make_sandbox(data=rebuilt(dataclasses.replace(whole, snapshots=snapshots)))
    result = run_cli("--url", sb.url, "--start-date", START.isoformat(), "--end-date",
                     (START + dt.timedelta(days=2)).isoformat(), "--rate", "10000", "--strict",
                     "--output-dir", "out", cwd=tmp_path,
                     env={"PRISMATIC_API_KEY": sb.token})  # fmt: skip
    assert result.returncode == 6
    assert result.stderr.strip() == "data not clean: 1 customer-days with missing snapshot hours"


def test_two_snapshots_in_one_hour_do_not_hide_a_missing_hour() -> None:
    from prismatic_usage import UsageRecords, audit, build_report
    from prismatic_usage.records import CUSTOMER_SCHEMA, SNAPSHOT_SCHEMA

    hours = [h for h in range(24) if h != 5] + [0]  # hour 5 missing, hour 0 twice
    snapshots = [
        {"id": f"s{k}", "customer_id": "c1", "snapshot_time":
         dt.datetime(2024, 12, 1, h, 30 if k == len(hours) - 1 else 0, tzinfo=dt.UTC),
         "deployed_instance_count": 1, "deployed_unique_integration_count": 1}
        for k, h in enumerate(hours)
    ]  # fmt: skip
    import pyarrow as pa

    records = UsageRecords(
        start=START, end=START, tz="UTC",
        customers=pa.Table.from_pylist([{"id": "c1", "name": "A", "external_id": None}],
                                       CUSTOMER_SCHEMA),
        snapshots=pa.Table.from_pylist(snapshots, SNAPSHOT_SCHEMA),
        fetched_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    report = build_report(records)
    assert report.coverage["Snapshots"].tolist() == [24]  # counted, as documented
    assert audit(report).gappy_customer_days == 1  # but an hour is missing


def test_a_refusal_on_a_later_page_of_the_org_totals_is_still_only_a_warning(
    clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    from prismatic_usage import FetchProgress

    sb = make_sandbox(data=clean_org)

    def deny_after_the_first_pages(event: FetchProgress) -> None:
        if event.requests == 3:
            sb.update_faults(denied_ids=frozenset({ORG_TOTALS}))

    options = FetchOptions(requests_per_second=None, page_size=20, concurrency=1)
    report = fetch_report(START, END, url=sb.url, token=sb.token, options=options,
                          progress=deny_after_the_first_pages, reconcile=True)  # fmt: skip
    assert report.reconciliation is not None and report.reconciliation.refused
    assert len(report.instance_compute) > 0
    # No request ever carried an org-total page beside anything else.
    for record in sb.stats.request_log:
        names = {c.field_name for c in record.root_fields}
        if names & {"orgDailyUsageMetrics", "orgTotalUsageMetrics"}:
            assert len(record.root_fields) == 1


def test_shortfalls_and_surpluses_never_cancel_in_the_summary(
    clean_org: OrgData, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(data=clean_org)
    report = fetch_report(START, START + dt.timedelta(days=1), url=sb.url, token=sb.token,
                          options=FAST, progress=False, reconcile=True)  # fmt: skip
    org = report.records.org_totals
    assert org is not None
    daily = org.daily.to_pylist()
    daily[0]["successful_execution_count"] += 7
    daily[0]["failed_execution_count"] -= 7
    daily[0]["spend_mb_secs"] += 100
    daily[1]["spend_mb_secs"] -= 100
    import pyarrow as pa

    skewed = OrgTotals(daily=pa.Table.from_pylist(daily, org.daily.schema), hourly=org.hourly)
    summary = reconcile(report, skewed).summary()
    assert "7 executions on 1 day not attributed to a listed instance" in summary
    assert "7 executions on 1 day more in the report than in the org's totals" in summary
    assert "100 MB-seconds on 1 day not attributed" in summary
    assert "100 MB-seconds on 1 day more in the report" in summary


def test_the_sandbox_serves_org_totals_with_the_real_apis_arguments(clean_org: OrgData) -> None:
    import json
    import urllib.request

    query = """query($latest: Boolean) {
      orgTotalUsageMetrics(onlyLatestDailySnapshots: $latest, first: 100,
          snapshotTime_Gte: "2024-12-01T00:00:00Z", snapshotTime_Lte: "2024-12-02T23:59:59Z",
          sortBy: [{field: SNAPSHOT_TIME, direction: ASC}]) {
        totalCount nodes { snapshotTime deployedInstanceCount integrationCount customerCount }
      }
      orgDailyUsageMetrics(snapshotDate: "2024-12-01") { nodes { snapshotDate spendMbSecs } }
    }"""
    with Sandbox(clean_org) as sb:
        answers = []
        for latest in (False, True):
            body = json.dumps({"query": query, "variables": {"latest": latest}}).encode()
            request = urllib.request.Request(
                sb.api_url, data=body,
                headers={"Authorization": f"Bearer {sb.token}", "Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=10) as response:
                answers.append(json.loads(response.read())["data"])
    hourly, latest_only = (a["orgTotalUsageMetrics"] for a in answers)
    assert hourly["totalCount"] == 48  # two days of hourly org snapshots
    assert [n["snapshotTime"][:10] for n in latest_only["nodes"]] == ["2024-12-01", "2024-12-02"]
    assert latest_only["nodes"][0] == hourly["nodes"][23]  # the last snapshot of the day
    spend = sum(m.spend_mb_secs for m in clean_org.daily_metrics if m.snapshot_date == START)
    assert answers[0]["orgDailyUsageMetrics"]["nodes"] == [
        {"snapshotDate": "2024-12-01", "spendMbSecs": spend}  # a JSON integer, exact
    ]


@pytest.mark.parametrize("flags", [True, False], ids=["flags", "keys"])
def test_missing_hours_are_counted_per_customer_day(
    flags: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    from prismatic_usage import UsageRecords, audit, build_report
    from prismatic_usage.records import CUSTOMER_SCHEMA, SNAPSHOT_SCHEMA

    if not flags:  # as for an org of many customers and few snapshots
        monkeypatch.setattr(sys.modules["prismatic_usage.audit"], "_SPARE_FLAGS", -(10**9))
    day1, day2, day3 = (START + dt.timedelta(days=n) for n in range(3))
    moments = (
        [("c1", day1, h) for h in range(24)]  # complete
        + [("c1", day2, h) for h in range(24) if h != 7]  # one hour missing
        + [("c2", day1, h) for h in range(24)]  # complete; c2 has no day 2 or 3
        + [("c-system", day3, 1)]  # not a customer: neither counted nor expected
    )  # c1 has no day 3: missing too
    snapshots = [
        {"id": f"s{k}", "customer_id": c,
         "snapshot_time": dt.datetime(d.year, d.month, d.day, h, tzinfo=dt.UTC),
         "deployed_instance_count": 1, "deployed_unique_integration_count": 1}
        for k, (c, d, h) in enumerate(moments)
    ]  # fmt: skip
    customers = [{"id": c, "name": c, "external_id": None} for c in ("c1", "c2", "c3")]
    records = UsageRecords(
        start=day1, end=day3, tz="UTC",
        customers=pa.Table.from_pylist(customers, CUSTOMER_SCHEMA),
        snapshots=pa.Table.from_pylist(snapshots, SNAPSHOT_SCHEMA),
        fetched_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    # c1: day 2 gappy, day 3 empty; c2: days 2 and 3 empty; c3 has no data at all.
    assert audit(build_report(records)).gappy_customer_days == 4
