"""The frames behave in pandas and warehouses: dates every idiom understands, snake names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import prismatic_usage
from prismatic_usage import (
    BILLING_SUMMARY,
    CUSTOMER_INSTANCE,
    INSTANCE_COMPUTE,
    ConfigurationError,
    FetchOptions,
    UsageReport,
    billing_summary,
    fetch_report,
    with_column_names,
    write_reports,
)
from prismatic_usage.columns import snake_name
from prismatic_usage.sandbox import Sandbox

START, END = dt.date(2024, 12, 1), dt.date(2024, 12, 5)
FAST = FetchOptions(requests_per_second=None)


@pytest.fixture(scope="module")
def report(sandbox: Sandbox) -> UsageReport:
    return fetch_report(START, END, url=sandbox.url, token=sandbox.token, options=FAST,
                        progress=False, extended=True)  # fmt: skip


# -- dates ------------------------------------------------------------------------------


def test_dates_are_midnight_datetime64_in_every_frame(report: UsageReport) -> None:
    frames = [report.customer_instances, report.instance_compute]
    summary = billing_summary(*frames)
    for frame, columns in ((frames[0], ["Date"]), (frames[1], ["Date"]),
                           (summary, ["Period Start", "Period End"])):  # fmt: skip
        for column in columns:
            assert frame[column].dtype == np.dtype("datetime64[s]")
            assert (frame[column] == frame[column].dt.normalize()).all()
    days = sorted(set(frames[0]["Date"].dt.date))
    assert days == [START + dt.timedelta(days=k) for k in range(5)]


def test_a_string_filter_and_a_timestamp_comparison_work(report: UsageReport) -> None:
    frame = report.customer_instances
    later = frame[frame.Date >= "2024-12-04"]
    assert set(later.Date.dt.day) == {4, 5}
    assert len(later) == (frame.Date > pd.Timestamp("2024-12-03")).sum()
    assert len(later) == sum(day >= dt.date(2024, 12, 4) for day in frame.Date.dt.date)


def test_weekly_resampling_and_grouping_and_monthly_periods_work(report: UsageReport) -> None:
    frame = report.customer_instances
    weekly = frame.set_index("Date")["Deployed Instances"].resample("W").sum()
    # 2024-12-01 is a Sunday: weeks ending Sunday put it alone in the first week.
    assert list(weekly.index.date) == [dt.date(2024, 12, 1), dt.date(2024, 12, 8)]
    first_day = frame.loc[frame.Date == "2024-12-01", "Deployed Instances"].sum()
    assert weekly.iloc[0] == pytest.approx(first_day)
    grouped = frame.groupby(pd.Grouper(key="Date", freq="W"))["Deployed Instances"].sum()
    assert grouped.tolist() == pytest.approx(weekly.tolist())
    assert set(frame.Date.dt.to_period("M").astype(str)) == {"2024-12"}


def test_a_merge_with_the_csv_read_back_keeps_every_row(
    report: UsageReport, tmp_path: Path
) -> None:
    write_reports(report.customer_instances, report.instance_compute, tmp_path)
    back = pd.read_csv(tmp_path / "customer-instance-data.csv", parse_dates=["Date"])
    merged = report.customer_instances.merge(
        back, on=["Customer ID", "Date"], suffixes=("", " (csv)")
    )
    assert len(merged) == len(report.customer_instances) > 0
    assert (merged["Deployed Instances"] == merged["Deployed Instances (csv)"]).all()


def test_parquet_keeps_a_day_type_and_engines_read_it_as_dates(
    report: UsageReport, tmp_path: Path
) -> None:
    write_reports(report.customer_instances, report.instance_compute, tmp_path,
                  formats=("parquet",))  # fmt: skip
    path = tmp_path / "customer-instance-data.parquet"
    assert pq.read_schema(path).field("Date").type == pa.date32()
    first = duckdb.sql(f"SELECT min(\"Date\") FROM read_parquet('{path}')").fetchall()
    assert first == [(START,)]
    assert pl.read_parquet(path)["Date"].dtype == pl.Date


def test_a_time_of_day_is_refused_where_a_day_is_expected(report: UsageReport) -> None:
    frame = report.customer_instances.copy()
    frame["Date"] = frame["Date"] + pd.Timedelta(hours=5)
    with pytest.raises(ConfigurationError, match="time of day"):
        billing_summary(frame, report.instance_compute)


# -- names ------------------------------------------------------------------------------


def test_snake_names_are_identifier_safe_and_in_declared_order(sandbox: Sandbox) -> None:
    snake = fetch_report(START, END, url=sandbox.url, token=sandbox.token, options=FAST,
                         progress=False, extended=True, column_names="snake")  # fmt: skip
    assert list(snake.customer_instances.columns) == [
        "customer_id", "customer_name", "date", "deployed_instances", "unique_integrations",
        "customer_external_id", "snapshots", "expected_snapshots", "coverage", "final",
    ]  # fmt: skip
    assert list(snake.instance_compute.columns) == [
        "customer_id", "customer_name", "instance_id", "instance_name", "date",
        "successful_executions", "failed_executions", "step_count", "execution_mb_seconds",
        "customer_external_id", "integration_name", "final",
    ]  # fmt: skip
    for frame in (snake.customer_instances, snake.instance_compute, snake.coverage):
        assert all(name.isidentifier() and name.islower() for name in frame.columns)


def test_snake_frames_hold_the_same_values_and_feed_the_billing_functions(
    report: UsageReport,
) -> None:
    snake = with_column_names(report.customer_instances, "snake")
    back = with_column_names(snake, "original")
    pd.testing.assert_frame_equal(back, report.customer_instances)
    summary = billing_summary(snake, with_column_names(report.instance_compute, "snake"))
    original = billing_summary(report.customer_instances, report.instance_compute)
    assert list(summary.columns) == [snake_name(name) for name in original.columns]
    assert summary.to_numpy().tolist() == original.to_numpy().tolist()


def test_extended_and_optional_columns_only_append_to_the_basic_schema() -> None:
    for spec in (CUSTOMER_INSTANCE, INSTANCE_COMPUTE, BILLING_SUMMARY):
        basic = spec.select(extended=False).names
        everything = [c.name for c in spec.columns if c.optional]
        assert spec.select(extended=True).names[: len(basic)] == basic
        assert spec.select(extended=True, optional=everything).names[: len(basic)] == basic
    summary = BILLING_SUMMARY.select(extended=True, optional=["Final", "Total Amount"]).names
    assert summary[-3:] == ["Final", "Total Amount", "Customer External ID"]


def test_the_plots_take_snake_named_frames(sandbox: Sandbox) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from prismatic_usage import plots

    snake = fetch_report(START, END, url=sandbox.url, token=sandbox.token, options=FAST,
                         progress=False, column_names="snake")  # fmt: skip
    for figure in (
        plots.plot_deployed_instances(snake.customer_instances),
        plots.plot_daily_executions(snake.instance_compute),
        plots.plot_top_compute(snake.instance_compute),
        plots.plot_coverage(snake.coverage),
    ):
        assert figure.axes and figure.axes[0].has_data()


def test_each_frames_natural_key_is_unique(report: UsageReport) -> None:
    assert CUSTOMER_INSTANCE.keys == ("Customer ID", "Date")
    assert INSTANCE_COMPUTE.keys == ("Instance ID", "Date")
    for frame, spec in ((report.customer_instances, CUSTOMER_INSTANCE),
                        (report.instance_compute, INSTANCE_COMPUTE)):  # fmt: skip
        assert not frame.duplicated(list(spec.keys)).any() and len(frame) > 0


def test_the_declared_arrow_schemas_are_public_and_match_the_files(
    report: UsageReport, tmp_path: Path
) -> None:
    snake = with_column_names(report.instance_compute, "snake")
    write_reports(with_column_names(report.customer_instances, "snake"), snake, tmp_path,
                  formats=("parquet",))  # fmt: skip
    schema = pq.read_schema(tmp_path / "instance-compute-data.parquet")
    declared = prismatic_usage.INSTANCE_COMPUTE.select(extended=True).named("snake").arrow_schema
    assert schema.remove_metadata().equals(declared)
    assert declared.field("execution_mb_seconds").type == pa.int64()


def test_an_unknown_naming_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="column_names"):
        with_column_names(CUSTOMER_INSTANCE.empty(), "camel")
