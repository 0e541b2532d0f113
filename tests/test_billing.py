"""Tests for prismatic_usage.billing: hand-worked roll-ups, amounts, and the sum identity."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage.billing import (
    Prices,
    billing_summary,
    compute_rollup,
    customer_period_rollup,
)
from prismatic_usage.columns import (
    BILLING_SUMMARY,
    CUSTOMER_COMPUTE_ROLLUP,
    CUSTOMER_INSTANCE,
    CUSTOMER_PERIOD_ROLLUP,
    HOUR_COLUMNS,
    INSTANCE_COMPUTE,
    INSTANCE_COMPUTE_ROLLUP,
    spec_for_columns,
)
from prismatic_usage.errors import ConfigurationError
from prismatic_usage.export import write_csv, write_parquet
from prismatic_usage.frames import customer_instance_frame, instance_compute_frame
from prismatic_usage.records import (
    CUSTOMER_SCHEMA,
    DAILY_METRIC_SCHEMA,
    INSTANCE_SCHEMA,
    SNAPSHOT_SCHEMA,
    UsageRecords,
)

D = dt.date
MONEY = pd.ArrowDtype(pa.decimal128(18, 2))
AMOUNTS = ["Instance Amount", "Compute Amount", "Execution Amount", "Total Amount"]

CustomerRow = tuple[str, str, dt.date, float, float]
ComputeRow = tuple[str, str, str, str, dt.date, int, int, int, int]


def dates(values: Sequence[dt.date]) -> np.ndarray[Any, Any]:
    """A DATE array: each day at midnight, ``datetime64[s]``."""
    return np.array([np.datetime64(v, "s") for v in values], dtype="datetime64[s]")


def customers(
    rows: Sequence[CustomerRow], *, external: dict[str, str] | None = None
) -> pd.DataFrame:
    """A customer-instance frame from (id, name, date, deployed, integrations) rows."""
    data: dict[str, Any] = {
        "Customer ID": [r[0] for r in rows],
        "Customer Name": [r[1] for r in rows],
        "Date": dates([r[2] for r in rows]),
        "Deployed Instances": [float(r[3]) for r in rows],
        "Unique Integrations": [float(r[4]) for r in rows],
    }
    if external is not None:
        data["Customer External ID"] = [external.get(r[0]) for r in rows]
        data["Snapshots"] = [24] * len(rows)
        data["Expected Snapshots"] = [24] * len(rows)
        data["Coverage"] = [1.0] * len(rows)
        data["Final"] = [True] * len(rows)
    return CUSTOMER_INSTANCE.select(extended=external is not None).build(data)


def compute(rows: Sequence[ComputeRow]) -> pd.DataFrame:
    """An instance-compute frame from (customer id, name, instance id, name, date, counts) rows."""
    names = INSTANCE_COMPUTE.select(extended=False).names
    data: dict[str, Any] = {name: [r[k] for r in rows] for k, name in enumerate(names)}
    data["Date"] = dates([r[4] for r in rows])
    return INSTANCE_COMPUTE.select(extended=False).build(data)


def plain(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (NaN kept as NaN)."""
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    """A plain Python value; a midnight timestamp (a DATE cell) as its :class:`datetime.date`."""
    if isinstance(value, pd.Timestamp):
        assert value == value.normalize(), value
        return value.date()
    return value.item() if isinstance(value, np.generic) else value


def same(a: Any, b: Any) -> bool:
    """Equal, treating NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


# -- hand-worked customer roll-ups ------------------------------------------------------------


def test_two_days_in_a_31_day_month() -> None:
    # January 2025 has 31 days; data on the 10th (10 instances, 3 integrations) and
    # the 20th (7.5, 4). By hand: average (10 + 7.5) / 2 = 8.75, integrations 3.5,
    # peak 10, instance-days 17.5, instance-months 17.5 / 31, coverage 2 / 31.
    frame = customers(
        [("c1", "Acme", D(2025, 1, 10), 10, 3), ("c1", "Acme", D(2025, 1, 20), 7.5, 4)]
    )
    result = customer_period_rollup(frame, start=D(2025, 1, 1), end="2025-01-31")
    expected = CUSTOMER_PERIOD_ROLLUP.select(extended=False).build(
        {
            "Customer ID": ["c1"],
            "Customer Name": ["Acme"],
            "Period Start": dates([D(2025, 1, 1)]),
            "Period End": dates([D(2025, 1, 31)]),
            "Average Deployed Instances": [8.75],
            "Average Unique Integrations": [3.5],
            "Peak Deployed Instances": [10.0],
            "Instance-Days": [17.5],
            "Instance-Months": [17.5 / 31],
            "Days With Data": [2],
            "Days In Period": [31],
            "Coverage": [2 / 31],
        }
    )
    pd.testing.assert_frame_equal(result, expected)


def test_partial_months_count_only_requested_days_but_bill_calendar_months() -> None:
    # Range 2025-01-15 .. 2025-02-10: January is clipped to 17 days, February to 10.
    # Instance-Months divides by the calendar month (31, 28), so 31 days of one
    # instance make exactly one instance-month and half a month makes half.
    rows = [("c1", "Acme", D(2025, 1, 15) + dt.timedelta(days=k), 2.0, 1.0) for k in range(27)]
    rows.append(("c1", "Acme", D(2025, 1, 14), 100.0, 1.0))  # before the range: dropped
    result = customer_period_rollup(customers(rows), start=D(2025, 1, 15), end=D(2025, 2, 10))
    assert plain(result[["Period Start", "Period End", "Days With Data", "Days In Period"]]) == [
        {"Period Start": D(2025, 1, 15), "Period End": D(2025, 1, 31), "Days With Data": 17, "Days In Period": 17},
        {"Period Start": D(2025, 2, 1), "Period End": D(2025, 2, 10), "Days With Data": 10, "Days In Period": 10},
    ]  # fmt: skip
    assert result["Instance-Days"].tolist() == [34.0, 20.0]
    assert result["Instance-Months"].tolist() == [
        math.fsum([2 / 31] * 17),
        math.fsum([2 / 28] * 10),
    ]
    assert result["Peak Deployed Instances"].tolist() == [2.0, 2.0]
    assert result["Coverage"].tolist() == [1.0, 1.0]


def test_default_range_is_the_data_range() -> None:
    frame = customers([("c1", "Acme", D(2025, 1, 5), 1, 1), ("c1", "Acme", D(2025, 2, 3), 1, 1)])
    result = customer_period_rollup(frame)
    assert plain(result[["Period Start", "Period End", "Days In Period"]]) == [
        {"Period Start": D(2025, 1, 5), "Period End": D(2025, 1, 31), "Days In Period": 27},
        {"Period Start": D(2025, 2, 1), "Period End": D(2025, 2, 3), "Days In Period": 3},
    ]


def test_iso_weeks_start_on_monday_and_cross_months_and_years() -> None:
    # 2024-12-30 (Monday) .. 2025-01-05 (Sunday) is ISO week 1 of 2025.
    rows = [
        ("c1", "Acme", D(2024, 12, 29), 7.0, 1.0),  # Sunday: the week before
        ("c1", "Acme", D(2024, 12, 30), 31.0, 1.0),
        ("c1", "Acme", D(2025, 1, 5), 31.0, 2.0),
    ]
    result = customer_period_rollup(customers(rows), period="week", start=D(2024, 12, 28))
    assert plain(result[["Period Start", "Period End", "Days With Data", "Days In Period"]]) == [
        {"Period Start": D(2024, 12, 28), "Period End": D(2024, 12, 29), "Days With Data": 1, "Days In Period": 2},
        {"Period Start": D(2024, 12, 30), "Period End": D(2025, 1, 5), "Days With Data": 2, "Days In Period": 7},
    ]  # fmt: skip
    # Each day counts against its own calendar month: 31/31 + 31/31.
    assert result["Instance-Months"].tolist() == [7 / 31, 2.0]


def test_range_period_is_one_row_per_customer() -> None:
    rows = [
        ("c2", "Beta", D(2025, 3, 1), 4.0, 2.0),
        ("c1", "Acme", D(2025, 1, 1), 1.0, 1.0),
        ("c1", "Acme", D(2025, 2, 15), 3.0, 1.0),
    ]
    result = customer_period_rollup(customers(rows), period="range", end=D(2025, 3, 31))
    assert plain(result[["Customer ID", "Period Start", "Period End", "Days In Period"]]) == [
        {"Customer ID": "c1", "Period Start": D(2025, 1, 1), "Period End": D(2025, 3, 31), "Days In Period": 90},
        {"Customer ID": "c2", "Period Start": D(2025, 1, 1), "Period End": D(2025, 3, 31), "Days In Period": 90},
    ]  # fmt: skip
    assert result["Average Deployed Instances"].tolist() == [2.0, 4.0]
    assert result["Instance-Months"].tolist() == [1 / 31 + 3 / 28, 4 / 31]


def test_rows_sorted_by_name_then_id_and_external_id_carried() -> None:
    rows = [
        ("c9", "Zed", D(2025, 1, 1), 1.0, 1.0),
        ("c2", "Acme", D(2025, 1, 1), 1.0, 1.0),
        ("c1", "Acme", D(2025, 1, 1), 1.0, 1.0),
        ("c3", "Ünïcødé 日本", D(2025, 1, 1), 1.0, 1.0),
    ]
    result = customer_period_rollup(customers(rows, external={"c1": "=ext"}))
    assert result.columns.tolist() == CUSTOMER_PERIOD_ROLLUP.names
    assert result["Customer ID"].tolist() == ["c1", "c2", "c9", "c3"]
    assert result["Customer External ID"].isna().tolist() == [False, True, True, True]
    assert result.loc[0, "Customer External ID"] == "=ext"


def test_two_rows_for_one_customer_day_are_refused() -> None:
    frame = customers([("c1", "Acme", D(2025, 1, 1), 1.0, 1.0)] * 2)
    with pytest.raises(ConfigurationError, match="more than one row"):
        customer_period_rollup(frame)


# -- hand-worked compute roll-ups -------------------------------------------------------------

BIG = 2**53 + 1
COMPUTE_ROWS: list[ComputeRow] = [
    ("c1", "Acme", "i2", "beta", D(2025, 1, 2), 1, 0, 5, 512),
    ("c1", "Acme", "i1", "alpha", D(2025, 1, 2), 10, 2, 30, 1024),
    ("c1", "Acme", "i1", "alpha", D(2025, 1, 3), 5, 1, 12, 512),
    ("c1", "Acme", "i1", "alpha", D(2025, 2, 1), 7, 0, 7, BIG),
    ("c2", "Beta", "i3", "alpha", D(2025, 1, 31), 0, 4, 4, 0),
]


def test_compute_rollup_by_instance() -> None:
    result = compute_rollup(compute(COMPUTE_ROWS))
    assert result.columns.tolist() == INSTANCE_COMPUTE_ROLLUP.select(extended=False).names
    assert plain(result.drop(columns=["Customer Name", "Instance Name", "Period End"])) == [
        {"Customer ID": "c1", "Instance ID": "i1", "Period Start": D(2025, 1, 2), "Days With Data": 2,
         "Successful Executions": 15, "Failed Executions": 3, "Step Count": 42,
         "Execution Mb-Seconds": 1536, "Execution GB-Seconds": 1.5},
        {"Customer ID": "c1", "Instance ID": "i1", "Period Start": D(2025, 2, 1), "Days With Data": 1,
         "Successful Executions": 7, "Failed Executions": 0, "Step Count": 7,
         "Execution Mb-Seconds": BIG, "Execution GB-Seconds": float(BIG) / 1024},
        {"Customer ID": "c1", "Instance ID": "i2", "Period Start": D(2025, 1, 2), "Days With Data": 1,
         "Successful Executions": 1, "Failed Executions": 0, "Step Count": 5,
         "Execution Mb-Seconds": 512, "Execution GB-Seconds": 0.5},
        {"Customer ID": "c2", "Instance ID": "i3", "Period Start": D(2025, 1, 2), "Days With Data": 1,
         "Successful Executions": 0, "Failed Executions": 4, "Step Count": 4,
         "Execution Mb-Seconds": 0, "Execution GB-Seconds": 0.0},
    ]  # fmt: skip


def test_compute_rollup_by_customer_keeps_big_integers_exact() -> None:
    result = compute_rollup(compute(COMPUTE_ROWS), by="customer", period="range")
    assert result.columns.tolist() == CUSTOMER_COMPUTE_ROLLUP.select(extended=False).names
    assert result["Execution Mb-Seconds"].tolist() == [2048 + BIG, 0]
    assert result["Execution Mb-Seconds"].dtype == np.dtype("int64")
    assert result["Days With Data"].tolist() == [3, 1]  # 2025-01-02 counted once


def test_int64_overflow_is_refused() -> None:
    rows: list[ComputeRow] = [
        ("c1", "Acme", "i1", "a", D(2025, 1, d), 0, 0, 0, 2**62) for d in (1, 2)
    ]
    with pytest.raises(OverflowError, match="Execution Mb-Seconds"):
        compute_rollup(compute(rows))


# -- the summary and amounts ------------------------------------------------------------------


def test_summary_outer_join_fills_missing_sides() -> None:
    usage = customers(
        [("c1", "Acme", D(2025, 1, 10), 2.0, 1.0), ("c1", "Acme", D(2025, 2, 10), 2.0, 1.0)]
    )
    summary = billing_summary(usage, compute(COMPUTE_ROWS), start=D(2025, 1, 1), end=D(2025, 2, 28))
    assert summary.columns.tolist() == BILLING_SUMMARY.select(extended=False).names
    rows = plain(summary)
    assert [(r["Customer ID"], r["Period Start"]) for r in rows] == [
        ("c1", D(2025, 1, 1)), ("c1", D(2025, 2, 1)), ("c2", D(2025, 1, 1))
    ]  # fmt: skip
    assert rows[0]["Successful Executions"] == 16 and rows[0]["Execution Mb-Seconds"] == 2048
    assert rows[0]["Instance-Months"] == 2 / 31 and rows[1]["Instance-Months"] == 2 / 28
    beta = rows[2]  # compute data only
    assert math.isnan(beta["Average Deployed Instances"]) and math.isnan(
        beta["Peak Deployed Instances"]
    )
    assert (beta["Instance-Days"], beta["Instance-Months"], beta["Days With Data"]) == (0.0, 0.0, 0)
    assert (beta["Days In Period"], beta["Coverage"], beta["Period End"]) == (
        31,
        0.0,
        D(2025, 1, 31),
    )
    assert beta["Failed Executions"] == 4


def test_summary_usage_only_has_zero_compute() -> None:
    usage = customers([("c1", "Acme", D(2025, 1, 10), 2.0, 1.0)])
    empty = INSTANCE_COMPUTE.select(extended=True).empty()
    summary = billing_summary(usage, empty, prices=Prices(gb_second="1"))
    assert "Customer External ID" in summary.columns  # either input extended
    assert plain(summary[["Successful Executions", "Execution GB-Seconds", "Compute Amount"]]) == [
        {"Successful Executions": 0, "Execution GB-Seconds": 0.0, "Compute Amount": Decimal("0.00")}
    ]


def test_amounts_round_half_up_per_line() -> None:
    # By hand, January 2025 (31 days):
    #   instance: 15.5 instance-days / 31 = 0.5 instance-months x 0.01 = 0.005  -> 0.01
    #   compute:  5120 MB-s / 1024 = 5 GB-s x 0.123 = 0.615 (a float would say 0.61499...) -> 0.62
    #   executions: (300 + 200) / 1000 x 0.01 = 0.005 -> 0.01 (half-even would give 0.00)
    #   total: 0.01 + 0.62 + 0.01 = 0.64 (rounding the unrounded 0.625 would give 0.63)
    usage = customers([("c1", "Acme", D(2025, 1, 10), 15.5, 1.0)])
    comp = compute([("c1", "Acme", "i1", "a", D(2025, 1, 10), 300, 200, 0, 5120)])
    prices = Prices(instance_month="0.01", gb_second=Decimal("0.123"), per_1k_executions="0.01")
    summary = billing_summary(usage, comp, start="2025-01-01", end="2025-01-31", prices=prices)
    assert summary.columns.tolist()[-4:] == AMOUNTS
    assert [summary.loc[0, c] for c in AMOUNTS] == [
        Decimal(v) for v in ("0.01", "0.62", "0.01", "0.64")
    ]
    assert all(summary[c].dtype == MONEY for c in AMOUNTS)


@pytest.mark.parametrize(
    ("prices", "columns"),
    [
        (None, []),
        (Prices(), []),
        (Prices(instance_month=25), ["Instance Amount", "Total Amount"]),
        (Prices(gb_second="0.5", per_1k_executions="2"), ["Compute Amount", "Execution Amount", "Total Amount"]),
    ],
)  # fmt: skip
def test_amount_columns_only_for_prices_given(prices: Prices | None, columns: list[str]) -> None:
    usage = customers([("c1", "Acme", D(2025, 1, 10), 3.0, 1.0)])
    summary = billing_summary(usage, compute(COMPUTE_ROWS), prices=prices)
    assert [c for c in summary.columns if c.endswith("Amount")] == columns
    assert spec_for_columns(summary.columns) is not None


def test_amount_that_does_not_fit_is_refused() -> None:
    comp = compute([("c1", "Acme", "i1", "a", D(2025, 1, 10), 20_000, 0, 0, 0)])
    with pytest.raises(OverflowError, match="amount"):
        billing_summary(customers([]), comp, prices=Prices(per_1k_executions=10**15))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.5", Decimal("1.5")), (2, Decimal(2)), (Decimal("0.000016"), Decimal("0.000016")),
     (" 3 ", Decimal(3)), ("-0", Decimal(0)), (None, None)],
)  # fmt: skip
def test_prices_accept_exact_values(value: Any, expected: Decimal | None) -> None:
    price = Prices(gb_second=value).gb_second
    assert price == expected and (price is None or not price.is_signed())


@pytest.mark.parametrize(
    "value", [1.5, True, "-1", Decimal("-0.01"), "NaN", "Infinity", "abc", "", "1" * 41, [1]]
)
def test_prices_refuse_floats_and_junk(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="per_1k_executions"):
        Prices(per_1k_executions=value)


def test_prices_are_frozen_and_comparable() -> None:
    prices = Prices(instance_month="25.00")
    assert prices == Prices(instance_month=Decimal("25.00"))
    with pytest.raises(AttributeError):
        prices.instance_month = Decimal(1)  # type: ignore[misc]


# -- argument errors and empty inputs ---------------------------------------------------------

CUSTOMERS = customers([("c1", "Acme", D(2025, 1, 10), 1.0, 1.0)])
COMPUTE = compute(COMPUTE_ROWS)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: customer_period_rollup(CUSTOMERS, period="quarter"), "unknown period"),
        (lambda: compute_rollup(COMPUTE, period="M"), "unknown period"),
        (lambda: billing_summary(CUSTOMERS, COMPUTE, period="day"), "unknown period"),
        (lambda: compute_rollup(COMPUTE, by="integration"), "unknown grouping"),
        (lambda: customer_period_rollup(CUSTOMERS, start="2025-02-01", end="2025-01-01"), "after"),
        (lambda: customer_period_rollup(CUSTOMERS, start="01/02/2025"), "ISO date"),
        (lambda: customer_period_rollup(CUSTOMERS, end=dt.datetime(2025, 1, 1)), "datetime.date"),
        (lambda: customer_period_rollup(COMPUTE), "expected those of customer-instance-data"),
        (lambda: compute_rollup(CUSTOMERS), "expected those of instance-compute-data"),
        (lambda: customer_period_rollup(CUSTOMERS.astype({"Date": str})), "dtype"),
        (lambda: billing_summary(CUSTOMERS, COMPUTE, prices={"gb_second": 1}), "Prices"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_bad_arguments_raise_configuration_error(call: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        call()


def test_missing_values_are_refused() -> None:
    frame = CUSTOMERS.copy()
    frame.loc[0, "Deployed Instances"] = np.nan
    with pytest.raises(ConfigurationError, match="missing values"):
        customer_period_rollup(frame)


@pytest.mark.parametrize("period", ["month", "week", "range"])
@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize("bounds", [(None, None), (D(2025, 1, 1), D(2025, 1, 31))])
def test_empty_inputs_give_empty_typed_frames(
    period: str, extended: bool, bounds: tuple[dt.date | None, dt.date | None]
) -> None:
    start, end = bounds
    usage = CUSTOMER_INSTANCE.select(extended=extended).empty()
    comp = INSTANCE_COMPUTE.select(extended=extended).empty()
    prices = Prices(instance_month=1, gb_second=1, per_1k_executions=1)
    hours = HOUR_COLUMNS if extended else ()  # an extended frame counts coverage in hours
    results = [
        (customer_period_rollup(usage, period=period, start=start, end=end), CUSTOMER_PERIOD_ROLLUP, hours),
        (compute_rollup(comp, period=period, start=start, end=end), INSTANCE_COMPUTE_ROLLUP, ()),
        (compute_rollup(comp, period=period, by="customer", start=start, end=end), CUSTOMER_COMPUTE_ROLLUP, ()),
        (billing_summary(usage, comp, period=period, start=start, end=end, prices=prices), BILLING_SUMMARY, (*hours, *AMOUNTS)),
    ]  # fmt: skip
    for frame, declared, optional in results:
        pd.testing.assert_frame_equal(
            frame, declared.select(extended=extended, optional=optional).empty()
        )


def test_range_without_data_gives_empty_frame() -> None:
    result = billing_summary(CUSTOMERS, COMPUTE, start=D(2030, 1, 1))
    assert result.empty and result.columns.tolist() == BILLING_SUMMARY.select(extended=False).names


# -- declarations -----------------------------------------------------------------------------


def test_every_new_variant_is_found_by_its_columns() -> None:
    for declared in (CUSTOMER_PERIOD_ROLLUP, INSTANCE_COMPUTE_ROLLUP, CUSTOMER_COMPUTE_ROLLUP):
        for extended in (False, True):
            spec = declared.select(extended=extended)
            assert spec_for_columns(list(reversed(spec.names))) == spec
    for extended in (False, True):
        for k in range(4):
            for lines in itertools.combinations(AMOUNTS[:3], k):
                optional = [*lines, "Total Amount"] if lines else []
                spec = BILLING_SUMMARY.select(extended=extended, optional=optional)
                assert spec_for_columns(spec.names) == spec
    assert [s.stem for s in (CUSTOMER_PERIOD_ROLLUP, INSTANCE_COMPUTE_ROLLUP, BILLING_SUMMARY)] == [
        "customer-period-rollup", "compute-rollup", "billing-summary"
    ]  # fmt: skip


# -- writing ----------------------------------------------------------------------------------


def test_summary_csv_and_parquet_keep_amounts_exact(tmp_path: Path) -> None:
    usage = customers([("c1", "Comma, Inc.", D(2025, 1, 10), 31.0, 2.0)])
    comp = compute([("c1", "Comma, Inc.", "i1", "a", D(2025, 1, 10), 1, 0, 3, 1024)])
    prices = Prices(instance_month="12.345", gb_second="0.005")
    summary = billing_summary(usage, comp, start=D(2025, 1, 1), end=D(2025, 1, 31), prices=prices)
    text = write_csv(summary, tmp_path / "billing-summary.csv").read_text(encoding="utf-8")
    assert text == (
        "Customer ID,Customer Name,Period Start,Period End,Average Deployed Instances,"
        "Average Unique Integrations,Peak Deployed Instances,Instance-Days,Instance-Months,"
        "Days With Data,Days In Period,Coverage,Successful Executions,Failed Executions,"
        "Step Count,Execution Mb-Seconds,Execution GB-Seconds,Instance Amount,Compute Amount,"
        "Total Amount\n"
        'c1,"Comma, Inc.",2025-01-01,2025-01-31,31.0,2.0,31.0,31.0,1.0,1,31,'
        f"{1 / 31!r},1,0,3,1024,1.0,12.35,0.01,12.36\n"
    )
    table = pq.read_table(write_parquet(summary, tmp_path / "billing-summary.parquet"))
    assert table.schema.field("Total Amount").type == pa.decimal128(18, 2)
    assert table.column("Instance Amount").to_pylist() == [Decimal("12.35")]
    assert table.column("Total Amount").to_pylist() == [Decimal("12.36")]
    assert table.schema.field("Period Start").type == pa.date32()


# -- through the real pipeline ----------------------------------------------------------------


def test_month_edges_follow_the_frames_time_zone() -> None:
    # 2025-02-01 03:00 UTC is 2025-01-31 21:00 in Chicago: a January day there.
    records = UsageRecords(
        start=D(2025, 1, 31),
        end=D(2025, 2, 1),
        tz="America/Chicago",
        customers=pa.Table.from_pylist(
            [{"id": "c1", "name": "Acme", "external_id": None}], CUSTOMER_SCHEMA
        ),
        snapshots=pa.Table.from_pylist(
            [
                {"id": f"s{h}", "customer_id": "c1", "snapshot_time": t, "deployed_instance_count": 4,
                 "deployed_unique_integration_count": 2}
                for h, t in enumerate(
                    [dt.datetime(2025, 2, 1, 3, tzinfo=dt.UTC), dt.datetime(2025, 2, 1, 9, tzinfo=dt.UTC)]
                )
            ],
            SNAPSHOT_SCHEMA,
        ),
        instances=pa.Table.from_pylist(
            [{"id": "i1", "name": "one", "customer_id": "c1", "integration_name": None}], INSTANCE_SCHEMA
        ),
        daily_metrics=pa.Table.from_pylist(
            [{"id": "m1", "instance_id": "i1", "snapshot_date": D(2025, 2, 1), "successful_execution_count": 2,
              "failed_execution_count": 0, "step_count": 2, "spend_mb_secs": 2048}],
            DAILY_METRIC_SCHEMA,
        ),
    )  # fmt: skip
    usage, comp = customer_instance_frame(records), instance_compute_frame(records)
    summary = billing_summary(usage, comp, start=records.start, end=records.end)
    assert plain(summary[["Period Start", "Instance-Days", "Instance-Months", "Successful Executions"]]) == [
        {"Period Start": D(2025, 1, 31), "Instance-Days": 4.0, "Instance-Months": 4 / 31, "Successful Executions": 0},
        {"Period Start": D(2025, 2, 1), "Instance-Days": 4.0, "Instance-Months": 4 / 28, "Successful Executions": 2},
    ]  # fmt: skip


# -- the identity: every roll-up number is the sum/mean of its daily rows ---------------------

BASE = D(2024, 12, 20)
PEOPLE = [("c1", "Acme"), ("c0", "Acme"), ("c2", "Ünïcødé 日本"), ("c3", "=SUM(A1)")]
INSTANCES = [("i1", "alpha"), ("i2", "beta"), ("i3", "alpha")]
VALUES = st.one_of(
    st.integers(0, 24 * 5000).map(lambda k: k / 24),
    st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
)
PRICES = st.builds(
    Prices,
    instance_month=st.none() | st.decimals(0, 1000, places=4).map(str),
    gb_second=st.none() | st.decimals(0, 1, places=8),
    per_1k_executions=st.none() | st.integers(0, 50),
)


@st.composite
def customer_rows(draw: st.DrawFn) -> list[CustomerRow]:
    """Random daily customer rows: at most one per customer and day, in random order."""
    rows: list[CustomerRow] = []
    for cid, name in draw(st.lists(st.sampled_from(PEOPLE), unique=True, max_size=4)):
        for offset in draw(st.lists(st.integers(0, 80), unique=True, max_size=25)):
            rows.append((cid, name, BASE + dt.timedelta(offset), draw(VALUES), draw(VALUES)))
    return draw(st.permutations(rows))


@st.composite
def compute_rows(draw: st.DrawFn) -> list[ComputeRow]:
    """Random daily compute rows, duplicates of (instance, day) allowed, big integers."""
    counts = st.integers(0, 2**57)  # 30 rows x 2**57 < 2**63
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from(PEOPLE), st.sampled_from(INSTANCES), st.integers(0, 80),
                      counts, counts, counts, counts),
            max_size=30,
        )
    )  # fmt: skip
    return [
        (cid, name, f"{cid}-{iid}", iname, BASE + dt.timedelta(off), *values)
        for (cid, name), (iid, iname), off, *values in rows
    ]


def period_of(day: dt.date, period: str, first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The (clipped) period a day falls in, by plain calendar arithmetic."""
    if period == "month":
        start = day.replace(day=1)
        end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    elif period == "week":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=6)
    else:
        start, end = first, last
    return max(start, first), min(end, last)


def month_days(day: dt.date) -> int:
    """Days in the day's calendar month."""
    return calendar.monthrange(day.year, day.month)[1]


def expected_usage(
    rows: list[CustomerRow], period: str, first: dt.date, last: dt.date
) -> dict[Any, Any]:
    """The customer roll-up recomputed from the rows with plain Python."""
    groups: dict[tuple[str, dt.date], list[CustomerRow]] = defaultdict(list)
    for row in rows:
        if first <= row[2] <= last:
            groups[(row[0], period_of(row[2], period, first, last)[0])].append(row)
    result = {}
    for (cid, start), members in groups.items():
        values = [m[3] for m in members]
        end = period_of(start, period, first, last)[1]
        days_in_period = (end - start).days + 1
        result[(cid, start)] = {
            "Customer Name": members[0][1],
            "Period End": end,
            "Average Deployed Instances": math.fsum(values) / len(values),
            "Average Unique Integrations": math.fsum(m[4] for m in members) / len(members),
            "Peak Deployed Instances": max(values),
            "Instance-Days": math.fsum(values),
            "Instance-Months": math.fsum(m[3] / month_days(m[2]) for m in members),
            "Days With Data": len(members),
            "Days In Period": days_in_period,
            "Coverage": len(members) / days_in_period,
        }
    return result


def expected_compute(
    rows: list[ComputeRow], period: str, first: dt.date, last: dt.date, *, by: str
) -> dict[Any, Any]:
    """The compute roll-up recomputed from the rows with plain Python integers."""
    groups: dict[tuple[Any, ...], list[ComputeRow]] = defaultdict(list)
    for row in rows:
        if first <= row[4] <= last:
            entity = (row[0], row[2]) if by == "instance" else (row[0],)
            groups[(*entity, period_of(row[4], period, first, last)[0])].append(row)
    result = {}
    for key, members in groups.items():
        sums = [sum(counts) for counts in zip(*(m[5:] for m in members), strict=True)]
        result[key] = {
            "Period End": period_of(key[-1], period, first, last)[1],
            "Days With Data": len({m[4] for m in members}),
            "Successful Executions": sums[0],
            "Failed Executions": sums[1],
            "Step Count": sums[2],
            "Execution Mb-Seconds": sums[3],
            "Execution GB-Seconds": float(sums[3]) / 1024,
        }
    return result


def half_up(value: Decimal) -> Decimal:
    """To the cent, half-up."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def check(frame: pd.DataFrame, expected: dict[Any, Any], key: list[str]) -> None:
    """Every row matches its expected group exactly, and every group has a row."""
    rows = plain(frame)
    assert len(rows) == len(expected)
    for row in rows:
        want = expected[tuple(row[k] for k in key)]
        for name, value in want.items():
            assert same(row[name], value), (name, row[name], value)


def _an_amount_overflows(compute: dict[Any, dict[str, Any]], prices: Prices) -> bool:
    """Whether an execution or compute amount reaches 10**16 (worked out independently)."""
    limit = Decimal(10) ** 16
    for values in compute.values():
        executions = Decimal(values["Successful Executions"] + values["Failed Executions"])
        per_1k, gb_second = prices.per_1k_executions, prices.gb_second
        if per_1k is not None and executions / 1000 * per_1k >= limit:
            return True
        mb_seconds = Decimal(values["Execution Mb-Seconds"])
        if gb_second is not None and mb_seconds / 1024 * gb_second >= limit:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(
    usage_rows=customer_rows(),
    compute_rows_=compute_rows(),
    period=st.sampled_from(["month", "week", "range"]),
    start=st.none() | st.integers(-5, 85).map(lambda k: BASE + dt.timedelta(k)),
    end=st.none() | st.integers(-5, 85).map(lambda k: BASE + dt.timedelta(k)),
    prices=PRICES,
)
def test_rollups_equal_sums_and_means_of_their_daily_rows(
    usage_rows: list[CustomerRow],
    compute_rows_: list[ComputeRow],
    period: str,
    start: dt.date | None,
    end: dt.date | None,
    prices: Prices,
) -> None:
    if start is not None and end is not None and start > end:
        start, end = end, start
    all_days = [r[2] for r in usage_rows] + [r[4] for r in compute_rows_]
    if not all_days and (start is None or end is None):
        return  # nothing to anchor the range: covered by the empty-input tests
    first = start if start is not None else min(all_days)
    last = end if end is not None else max(all_days)
    usage_frame, compute_frame = customers(usage_rows), compute(compute_rows_)
    if first > last:  # e.g. only an end, before all data: nothing to report
        assert billing_summary(usage_frame, compute_frame, start=start, end=end).empty
        return

    usage = customer_period_rollup(usage_frame, period=period, start=first, end=last)
    want_usage = expected_usage(usage_rows, period, first, last)
    check(usage, want_usage, ["Customer ID", "Period Start"])
    for by, ids in [("instance", ["Customer ID", "Instance ID"]), ("customer", ["Customer ID"])]:
        rollup = compute_rollup(compute_frame, period=period, by=by, start=first, end=last)
        check(
            rollup,
            expected_compute(compute_rows_, period, first, last, by=by),
            [*ids, "Period Start"],
        )

    want_compute = expected_compute(compute_rows_, period, first, last, by="customer")
    try:
        summary = billing_summary(
            usage_frame, compute_frame, period=period, start=start, end=end, prices=prices
        )
    except OverflowError:
        # Legitimate only when an exact amount needs more than 16 integer digits.
        assert _an_amount_overflows(want_compute, prices)
        return
    rows = plain(summary)
    assert {(r["Customer ID"], r["Period Start"]) for r in rows} == set(want_usage) | set(
        want_compute
    )
    order = [(r["Customer Name"], r["Customer ID"], r["Period Start"]) for r in rows]
    assert order == sorted(order)
    for row in rows:
        key = (row["Customer ID"], row["Period Start"])
        u, c = want_usage.get(key), want_compute.get(key)
        for name, value in (u or {}).items():
            assert same(row[name], value), name
        for name, value in (c or {}).items():
            if name != "Days With Data":
                assert same(row[name], value), name
        if u is None:
            assert row["Days With Data"] == 0 and row["Instance-Months"] == 0.0
            assert math.isnan(row["Average Deployed Instances"])
        if c is None:
            assert row["Execution Mb-Seconds"] == 0 and row["Successful Executions"] == 0
        with localcontext(prec=100):  # exact, like the implementation
            lines = amounts(row, prices)
        assert [(n, row[n]) for n in AMOUNTS if n in row] == lines


def amounts(row: dict[str, Any], prices: Prices) -> list[tuple[str, Decimal]]:
    """The expected amount columns of one summary row, by the documented rule."""
    lines = []
    if prices.instance_month is not None:
        months = Decimal(repr(row["Instance-Months"]))
        lines.append(("Instance Amount", half_up(months * prices.instance_month)))
    if prices.gb_second is not None:
        gb = Decimal(row["Execution Mb-Seconds"]) / 1024
        lines.append(("Compute Amount", half_up(gb * prices.gb_second)))
    if prices.per_1k_executions is not None:
        runs = Decimal(row["Successful Executions"] + row["Failed Executions"]) / 1000
        lines.append(("Execution Amount", half_up(runs * prices.per_1k_executions)))
    if lines:
        lines.append(("Total Amount", sum((amount for _, amount in lines), Decimal(0))))
    return lines


@settings(max_examples=50, deadline=None)
@given(usage_rows=customer_rows())
def test_instance_months_add_up_across_periods(usage_rows: list[CustomerRow]) -> None:
    frame = customers(usage_rows)
    first, last = D(2024, 12, 1), D(2025, 3, 31)
    totals = {}
    for period in ("month", "week", "range"):
        result = customer_period_rollup(frame, period=period, start=first, end=last)
        totals[period] = result.groupby("Customer ID")["Instance-Months"].sum().to_dict()
    assert totals["month"].keys() == totals["week"].keys() == totals["range"].keys()
    for cid, total in totals["range"].items():
        assert totals["month"][cid] == pytest.approx(total, rel=1e-12)
        assert totals["week"][cid] == pytest.approx(total, rel=1e-12)


def test_an_external_id_follows_its_customer_into_rows_from_the_other_frame() -> None:
    from prismatic_usage.columns import CUSTOMER_INSTANCE, DATE, INSTANCE_COMPUTE

    usage = CUSTOMER_INSTANCE.select(extended=True).build(
        {
            "Customer ID": ["c1"],
            "Customer Name": ["A"],
            "Customer External ID": ["x1"],
            "Date": pd.array([D(2024, 12, 30)], dtype=DATE.pandas),
            "Deployed Instances": [1.0],
            "Unique Integrations": [1.0],
            "Snapshots": [24],
            "Expected Snapshots": [24],
            "Coverage": [1.0],
            "Final": [True],
        }
    )
    compute_only_later = INSTANCE_COMPUTE.select(extended=False).build(
        {
            "Customer ID": ["c1"],
            "Customer Name": ["A"],
            "Instance ID": ["i1"],
            "Instance Name": ["n1"],
            "Date": pd.array([D(2025, 1, 6)], dtype=DATE.pandas),
            "Successful Executions": [5],
            "Failed Executions": [0],
            "Step Count": [1],
            "Execution Mb-Seconds": [2048],
        }
    )
    summary = billing_summary(usage, compute_only_later, period="week")
    # Week of 30 Dec has usage only, week of 6 Jan compute only: both are c1's, so both x1.
    assert summary["Customer External ID"].tolist() == ["x1", "x1"]


def test_summary_counts_coverage_in_hours_and_says_which_periods_are_final() -> None:
    """Berlin, March 2025 (31 days, one of them 23 hours long) and two days of April."""
    usage = CUSTOMER_INSTANCE.select(extended=True).build(
        {
            "Customer ID": ["c1", "c1", "c1"],
            "Customer Name": ["A", "A", "A"],
            "Customer External ID": ["x", "x", "x"],
            "Date": dates([D(2025, 3, 29), D(2025, 3, 30), D(2025, 4, 1)]),
            "Deployed Instances": [1.0, 1.0, 1.0],
            "Unique Integrations": [1.0, 1.0, 1.0],
            "Snapshots": [24, 20, 12],
            "Expected Snapshots": [24, 23, 24],
            "Coverage": [1.0, 20 / 23, 0.5],
            "Final": [True, True, False],
        }
    )
    compute = INSTANCE_COMPUTE.select(extended=False).empty()
    summary = billing_summary(
        usage, compute, start=D(2025, 3, 1), end=D(2025, 4, 2), tz="Europe/Berlin",
        as_of=dt.datetime(2025, 4, 3, tzinfo=dt.UTC),
    )  # fmt: skip
    got = summary[["Period Start", "Final", "Snapshots", "Expected Snapshots",
                   "Snapshot Coverage", "Days With Data", "Days In Period"]]  # fmt: skip
    assert plain(got) == [
        # March: 31 x 24 hours less the hour lost on 03-30; ended 03-31 22:00 UTC, 48 h
        # before the fetch at 04-03 00:00 UTC is 04-01 00:00: final.
        {"Period Start": D(2025, 3, 1), "Final": True, "Snapshots": 44,
         "Expected Snapshots": 743, "Snapshot Coverage": 44 / 743, "Days With Data": 2,
         "Days In Period": 31},
        # April 1-2: 48 hours; ended 04-02 22:00 UTC, only 2 hours before the fetch.
        {"Period Start": D(2025, 4, 1), "Final": False, "Snapshots": 12,
         "Expected Snapshots": 48, "Snapshot Coverage": 12 / 48, "Days With Data": 1,
         "Days In Period": 2},
    ]  # fmt: skip
    assert "Final" not in billing_summary(usage, compute).columns  # only given a fetch time


def test_a_period_is_final_only_once_its_utc_day_is_final_too() -> None:
    """Tokyo's 2025-01-31 ends at 15:00 UTC, but its compute rows (UTC dates) at 24:00 UTC."""
    usage = CUSTOMER_INSTANCE.select(extended=False).build(
        {
            "Customer ID": ["c1"],
            "Customer Name": ["A"],
            "Date": dates([D(2025, 1, 31)]),
            "Deployed Instances": [1.0],
            "Unique Integrations": [1.0],
        }
    )
    compute = INSTANCE_COMPUTE.select(extended=False).empty()
    between = dt.datetime(2025, 2, 2, 20, tzinfo=dt.UTC)  # 53 h after Tokyo's end, 44 h after UTC's
    summary = billing_summary(usage, compute, tz="Asia/Tokyo", as_of=between)
    assert summary["Final"].tolist() == [False]
    later = dt.datetime(2025, 2, 3, 0, tzinfo=dt.UTC)  # 48 h after the UTC day ended
    assert billing_summary(usage, compute, tz="Asia/Tokyo", as_of=later)["Final"].tolist() == [True]
