"""Tests for prismatic_usage.frames: hand-worked cases and properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage.errors import ConfigurationError
from prismatic_usage.frames import customer_instance_frame, instance_compute_frame
from prismatic_usage.records import (
    CUSTOMER_SCHEMA,
    DAILY_METRIC_SCHEMA,
    INSTANCE_SCHEMA,
    SNAPSHOT_SCHEMA,
    UsageRecords,
)

UTC = dt.UTC
CUSTOMER_COLUMNS = [
    "Customer ID",
    "Customer Name",
    "Date",
    "Deployed Instances",
    "Unique Integrations",
]
CUSTOMER_EXTENDED = [
    "Customer ID",
    "Customer Name",
    "Date",
    "Deployed Instances",
    "Unique Integrations",
    "Customer External ID",
    "Snapshots",
    "Expected Snapshots",
    "Coverage",
    "Final",
]
COMPUTE_COLUMNS = [
    "Customer ID",
    "Customer Name",
    "Instance ID",
    "Instance Name",
    "Date",
    "Successful Executions",
    "Failed Executions",
    "Step Count",
    "Execution Mb-Seconds",
]
# Extended columns come after all others, so an extended schema only adds columns.
COMPUTE_EXTENDED = [
    "Customer ID",
    "Customer Name",
    "Instance ID",
    "Instance Name",
    "Date",
    "Successful Executions",
    "Failed Executions",
    "Step Count",
    "Execution Mb-Seconds",
    "Customer External ID",
    "Integration Name",
    "Final",
]
DATE_DTYPE = np.dtype("datetime64[s]")


def expected_dtype(column: str) -> Any:
    """The dtype each column should have, written out independently of the declaration."""
    if column == "Date":
        return DATE_DTYPE
    if column in ("Deployed Instances", "Unique Integrations", "Coverage"):
        return np.dtype("float64")
    if column == "Final":
        return np.dtype("bool")
    if column.endswith(("ID", "Name")):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return np.dtype("int64")


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    """A UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def records(
    *,
    customers: Sequence[tuple[str, str, str | None]] = (),
    snapshots: Sequence[tuple[str, dt.datetime, int, int]] = (),
    instances: Sequence[tuple[str, str, str, str | None]] = (),
    metrics: Sequence[tuple[str, dt.date, int, int, int, int]] = (),
    start: dt.date = dt.date(2025, 2, 1),
    end: dt.date = dt.date(2025, 2, 28),
    tz: str = "UTC",
) -> UsageRecords:
    """UsageRecords from plain tuples, with the schemas from records.py."""
    return UsageRecords(
        start=start,
        end=end,
        tz=tz,
        customers=pa.Table.from_pylist(
            [{"id": i, "name": n, "external_id": e} for i, n, e in customers], CUSTOMER_SCHEMA
        ),
        snapshots=pa.Table.from_pylist(
            [
                {
                    "id": f"s{k}",
                    "customer_id": c,
                    "snapshot_time": t,
                    "deployed_instance_count": a,
                    "deployed_unique_integration_count": b,
                }
                for k, (c, t, a, b) in enumerate(snapshots)
            ],
            SNAPSHOT_SCHEMA,
        ),
        instances=pa.Table.from_pylist(
            [
                {"id": i, "name": n, "customer_id": c, "integration_name": g}
                for i, n, c, g in instances
            ],
            INSTANCE_SCHEMA,
        ),
        daily_metrics=pa.Table.from_pylist(
            [
                {
                    "id": f"m{k}",
                    "instance_id": i,
                    "snapshot_date": d,
                    "successful_execution_count": ok,
                    "failed_execution_count": bad,
                    "step_count": steps,
                    "spend_mb_secs": mb,
                }
                for k, (i, d, ok, bad, steps, mb) in enumerate(metrics)
            ],
            DAILY_METRIC_SCHEMA,
        ),
    )


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple[Any, ...]]:
    """Selected columns as a list of plain-Python tuples (days as :class:`datetime.date`)."""
    selected = frame[list(columns)].copy()
    for name in columns:
        if selected[name].dtype == DATE_DTYPE:
            selected[name] = selected[name].dt.date
    return list(selected.itertuples(index=False, name=None))


ACME = ("c1", "Acme Corp", "ext-1")


# -- customer_instance_frame ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extended", "columns"), [(False, CUSTOMER_COLUMNS), (True, CUSTOMER_EXTENDED)]
)
def test_customer_frame_columns_and_dtypes(extended: bool, columns: list[str]) -> None:
    recs = records(customers=[ACME], snapshots=[("c1", at(2025, 2, 1, 5), 3, 2)])
    frame = customer_instance_frame(recs, extended=extended)
    assert list(frame.columns) == columns
    assert {c: frame[c].dtype for c in columns} == {c: expected_dtype(c) for c in columns}
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["Date"].min() == pd.Timestamp("2025-02-01")


@pytest.mark.parametrize("extended", [False, True])
def test_empty_records_give_empty_typed_frames(extended: bool) -> None:
    recs = records()
    customer = customer_instance_frame(recs, extended=extended)
    compute = instance_compute_frame(recs, extended=extended)
    for frame, columns in [
        (customer, CUSTOMER_EXTENDED if extended else CUSTOMER_COLUMNS),
        (compute, COMPUTE_EXTENDED if extended else COMPUTE_COLUMNS),
    ]:
        assert frame.empty
        assert list(frame.columns) == columns
        assert {c: frame[c].dtype for c in columns} == {c: expected_dtype(c) for c in columns}


def test_day_with_23_snapshots_is_their_mean() -> None:
    # 2025-02-03 has 23 hourly snapshots (one missing): 20 x 8 and 3 x 5 instances,
    # 12 x 4 and 11 x 3 integrations. By hand: 175 / 23 and 81 / 23.
    instances = [8] * 20 + [5] * 3
    integrations = [4] * 12 + [3] * 11
    snaps = [
        ("c1", at(2025, 2, 3, hour), a, b)
        for hour, a, b in zip(range(23), instances, integrations, strict=True)
    ]
    frame = customer_instance_frame(records(customers=[ACME], snapshots=snaps), extended=True)
    assert rows(frame, "Date", "Deployed Instances", "Unique Integrations", "Snapshots") == [
        (dt.date(2025, 2, 3), 175 / 23, 81 / 23, 23)
    ]
    assert frame.loc[0, "Deployed Instances"] == pytest.approx(7.608695652173913)


def test_readme_example_fraction() -> None:
    # 23 hours at 8 and one at 7 average to 191/24 = 7.958333333333333.
    snaps = [("c1", at(2025, 2, 12, h), 8 if h else 7, 8) for h in range(24)]
    frame = customer_instance_frame(records(customers=[ACME], snapshots=snaps))
    assert frame.loc[0, "Deployed Instances"] == 7.958333333333333
    assert frame.loc[0, "Unique Integrations"] == 8.0


def test_customers_with_the_same_name_are_kept_apart_by_id() -> None:
    customers = [("c2", "Smith Real Estate", None), ("c1", "Smith Real Estate", "x")]
    snaps = [
        ("c1", at(2025, 2, 11, 1), 1, 1),
        ("c2", at(2025, 2, 11, 1), 10, 2),
        ("c1", at(2025, 2, 11, 2), 3, 1),
        ("c2", at(2025, 2, 11, 2), 20, 2),
    ]
    frame = customer_instance_frame(records(customers=customers, snapshots=snaps), extended=True)
    assert rows(frame, "Customer ID", "Customer Name", "Deployed Instances") == [
        ("c1", "Smith Real Estate", 2.0),
        ("c2", "Smith Real Estate", 15.0),
    ]
    assert frame["Customer External ID"].fillna("<missing>").tolist() == ["x", "<missing>"]


def test_last_microsecond_and_midnight_fall_on_different_days() -> None:
    snaps = [
        ("c1", dt.datetime(2025, 2, 4, 23, 59, 59, 999_999, tzinfo=UTC), 4, 1),
        ("c1", at(2025, 2, 5, 0, 0, 0), 6, 1),
    ]
    frame = customer_instance_frame(records(customers=[ACME], snapshots=snaps))
    assert rows(frame, "Date", "Deployed Instances") == [
        (dt.date(2025, 2, 4), 4.0),
        (dt.date(2025, 2, 5), 6.0),
    ]


@pytest.mark.parametrize(
    ("tz", "moment", "day"),
    [
        ("UTC", at(2025, 3, 9, 5, 30), dt.date(2025, 3, 9)),
        # Chicago is UTC-6 (CST) until 2025-03-09 08:00Z, then UTC-5 (CDT).
        ("America/Chicago", at(2025, 3, 9, 5, 30), dt.date(2025, 3, 8)),
        ("America/Chicago", at(2025, 3, 10, 4, 30), dt.date(2025, 3, 9)),
        ("America/Chicago", at(2025, 3, 10, 5, 30), dt.date(2025, 3, 10)),
        # Berlin is UTC+1 (CET) in winter and UTC+2 (CEST) from 2025-03-30 01:00Z.
        ("Europe/Berlin", at(2025, 1, 15, 23, 30), dt.date(2025, 1, 16)),
        ("Europe/Berlin", at(2025, 1, 15, 22, 30), dt.date(2025, 1, 15)),
        ("Europe/Berlin", at(2025, 3, 30, 22, 30), dt.date(2025, 3, 31)),
    ],
)
def test_tz_decides_the_calendar_day(tz: str, moment: dt.datetime, day: dt.date) -> None:
    recs = records(
        customers=[ACME],
        snapshots=[("c1", moment, 7, 1)],
        start=dt.date(2025, 1, 1),
        end=dt.date(2025, 12, 31),
    )
    assert rows(customer_instance_frame(recs, tz=tz), "Date") == [(day,)]


def test_tz_defaults_to_records_tz() -> None:
    recs = records(
        customers=[ACME], snapshots=[("c1", at(2025, 2, 10, 3), 1, 1)], tz="America/Chicago"
    )
    assert rows(customer_instance_frame(recs), "Date") == [(dt.date(2025, 2, 9),)]
    assert rows(customer_instance_frame(recs, tz="UTC"), "Date") == [(dt.date(2025, 2, 10),)]


@pytest.mark.parametrize("tz", ["Mars/Olympus", "+05:00", "", "../etc/passwd", "utc/"])
def test_unknown_zone_is_a_configuration_error(tz: str) -> None:
    with pytest.raises(ConfigurationError, match="unknown time zone") as info:
        customer_instance_frame(records(), tz=tz)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_records_zone_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        customer_instance_frame(records(tz="Nowhere/Special"))


def test_system_customers_snapshots_are_dropped() -> None:
    snaps = [("c1", at(2025, 2, 2, 1), 2, 1), ("system-1", at(2025, 2, 2, 1), 99, 99)]
    frame = customer_instance_frame(records(customers=[ACME], snapshots=snaps))
    assert rows(frame, "Customer ID", "Deployed Instances") == [("c1", 2.0)]


def test_days_outside_the_range_are_dropped() -> None:
    snaps = [
        ("c1", dt.datetime(2025, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC), 1, 1),
        ("c1", at(2025, 2, 1), 2, 1),
        ("c1", at(2025, 2, 28, 23, 59, 59), 3, 1),
        ("c1", at(2025, 3, 1), 4, 1),
    ]
    frame = customer_instance_frame(records(customers=[ACME], snapshots=snaps))
    assert rows(frame, "Date", "Deployed Instances") == [
        (dt.date(2025, 2, 1), 2.0),
        (dt.date(2025, 2, 28), 3.0),
    ]


def test_range_applies_to_local_days() -> None:
    # 2025-02-01 03:00Z is still 2025-01-31 in Chicago, before the range.
    snaps = [("c1", at(2025, 2, 1, 3), 1, 1), ("c1", at(2025, 2, 1, 7), 5, 1)]
    frame = customer_instance_frame(
        records(customers=[ACME], snapshots=snaps), tz="America/Chicago"
    )
    assert rows(frame, "Date", "Deployed Instances") == [(dt.date(2025, 2, 1), 5.0)]


def test_rows_sorted_by_name_then_id_then_date() -> None:
    customers = [
        ("id-b", "beta", None),
        ("id-z", "Alpha", None),
        ("id-a", "Alpha", None),
        ("id-u", "Ärger", None),
        ("id-l", "alpha", None),
    ]
    snaps = [
        (cid, at(2025, 2, day, 12), day, 1)
        for day in (3, 1, 2)
        for cid in ("id-u", "id-b", "id-z", "id-a", "id-l")
    ]
    frame = customer_instance_frame(records(customers=customers, snapshots=snaps))
    names = {cid: name for cid, name, _ in customers}
    expected = sorted(
        (names[cid], cid, dt.date(2025, 2, day)) for cid in names for day in (1, 2, 3)
    )
    assert rows(frame, "Customer Name", "Customer ID", "Date") == expected
    assert frame.index.tolist() == list(range(len(expected)))


def test_duplicate_customer_rows_count_once() -> None:
    customers = [ACME, ("c1", "Acme Corp (renamed)", None)]
    snaps = [("c1", at(2025, 2, 2), 4, 4)]
    frame = customer_instance_frame(records(customers=customers, snapshots=snaps))
    assert rows(frame, "Customer Name", "Deployed Instances") == [("Acme Corp", 4.0)]


def test_large_counts_stay_exact_in_snapshots_column() -> None:
    big = 2**53 + 1
    snaps = [("c1", at(2025, 2, 2, h), big, 0) for h in range(3)]
    frame = customer_instance_frame(records(customers=[ACME], snapshots=snaps), extended=True)
    assert frame.loc[0, "Snapshots"] == 3
    assert frame.loc[0, "Deployed Instances"] == float(big)


# -- instance_compute_frame -------------------------------------------------------------------

COMPUTE_CUSTOMERS = [
    ("c-j", "Johnson Homes", "ext-j"),
    ("c-s2", "Smith Real Estate", None),
    ("c-s1", "Smith Real Estate", "ext-s1"),
]
COMPUTE_INSTANCES = [
    ("i-hub", "HubSpot", "c-j", "HubSpot Sync"),
    ("i-sf2", "Salesforce", "c-s2", None),
    ("i-sf1", "Salesforce", "c-s1", "SF"),
    ("i-abc", "Accounting", "c-j", "QB"),
    ("i-orphan", "Orphan", "c-unknown", None),
]


def test_compute_frame_joins_filters_and_sorts() -> None:
    big = 2**53 + 1
    metrics = [
        ("i-hub", dt.date(2025, 2, 12), 1440, 0, 5760, 985819),
        ("i-hub", dt.date(2025, 2, 11), 1440, 0, 5760, big),
        ("i-sf2", dt.date(2025, 2, 12), 0, 5, 0, 515),
        ("i-sf1", dt.date(2025, 2, 11), 1, 0, 4, 3380),
        ("i-abc", dt.date(2025, 2, 13), 2**63 - 1, 0, 0, 0),
        ("i-orphan", dt.date(2025, 2, 11), 9, 9, 9, 9),
        ("i-missing", dt.date(2025, 2, 11), 9, 9, 9, 9),
        ("i-hub", dt.date(2025, 3, 1), 9, 9, 9, 9),
    ]
    recs = records(customers=COMPUTE_CUSTOMERS, instances=COMPUTE_INSTANCES, metrics=metrics)
    frame = instance_compute_frame(recs)
    assert list(frame.columns) == COMPUTE_COLUMNS
    assert {c: frame[c].dtype for c in COMPUTE_COLUMNS} == {
        c: expected_dtype(c) for c in COMPUTE_COLUMNS
    }
    feb = dt.date(2025, 2, 1).replace
    assert rows(frame, *COMPUTE_COLUMNS) == [
        ("c-j", "Johnson Homes", "i-abc", "Accounting", feb(day=13), 2**63 - 1, 0, 0, 0),
        ("c-j", "Johnson Homes", "i-hub", "HubSpot", feb(day=11), 1440, 0, 5760, big),
        ("c-j", "Johnson Homes", "i-hub", "HubSpot", feb(day=12), 1440, 0, 5760, 985819),
        ("c-s1", "Smith Real Estate", "i-sf1", "Salesforce", feb(day=11), 1, 0, 4, 3380),
        ("c-s2", "Smith Real Estate", "i-sf2", "Salesforce", feb(day=12), 0, 5, 0, 515),
    ]
    assert frame.loc[1, "Execution Mb-Seconds"] == big  # exact, not rounded to 2**53
    assert isinstance(frame.index, pd.RangeIndex)


def test_compute_frame_extended_columns() -> None:
    metrics = [
        ("i-sf2", dt.date(2025, 2, 12), 0, 5, 0, 515),
        ("i-hub", dt.date(2025, 2, 12), 1, 0, 4, 10),
    ]
    recs = records(customers=COMPUTE_CUSTOMERS, instances=COMPUTE_INSTANCES, metrics=metrics)
    frame = instance_compute_frame(recs, extended=True)
    assert list(frame.columns) == COMPUTE_EXTENDED
    optional = frame[["Customer External ID", "Integration Name"]].fillna("<missing>")
    assert rows(optional, "Customer External ID", "Integration Name") == [
        ("ext-j", "HubSpot Sync"),
        ("<missing>", "<missing>"),
    ]


# -- properties -------------------------------------------------------------------------------

PROPERTY_CUSTOMERS = [("c0", "Same", None), ("c1", "Same", None), ("c2", "Other", "e")]
PROPERTY_START = dt.date(2025, 3, 8)
PROPERTY_END = dt.date(2025, 3, 11)
ZONES = ["UTC", "America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham"]

snapshot_strategy = st.tuples(
    st.sampled_from(["c0", "c1", "c2", "system"]),
    st.datetimes(
        min_value=dt.datetime(2025, 3, 6),
        max_value=dt.datetime(2025, 3, 13),
        timezones=st.just(UTC),
    ),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)


def expected_days(
    snaps: Sequence[tuple[str, dt.datetime, int, int]], tz: str
) -> dict[tuple[str, dt.date], list[int]]:
    """Instance counts per (customer, local day), computed with the stdlib."""
    zone = zoneinfo.ZoneInfo(tz)
    known = {cid for cid, _, _ in PROPERTY_CUSTOMERS}
    days: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for cid, moment, count, _ in snaps:
        day = moment.astimezone(zone).date()
        if cid in known and PROPERTY_START <= day <= PROPERTY_END:
            days[cid, day].append(count)
    return days


@settings(max_examples=150, deadline=None)
@given(snaps=st.lists(snapshot_strategy, max_size=60), tz=st.sampled_from(ZONES))
def test_daily_means_match_a_stdlib_recount(
    snaps: list[tuple[str, dt.datetime, int, int]], tz: str
) -> None:
    recs = records(
        customers=PROPERTY_CUSTOMERS, snapshots=snaps, start=PROPERTY_START, end=PROPERTY_END
    )
    frame = customer_instance_frame(recs, tz=tz, extended=True)
    expected = expected_days(snaps, tz)
    assert len(frame) == len(expected)
    for cid, day, mean, count in rows(
        frame, "Customer ID", "Date", "Deployed Instances", "Snapshots"
    ):
        values = expected[cid, day]
        assert min(values) <= mean <= max(values)
        assert mean == sum(values) / len(values)
        assert count == len(values)


@settings(max_examples=100, deadline=None)
@given(
    snaps=st.lists(snapshot_strategy, max_size=40),
    tz=st.sampled_from(ZONES),
    seed=st.integers(0, 2**32 - 1),
)
def test_frames_do_not_depend_on_record_order(
    snaps: list[tuple[str, dt.datetime, int, int]], tz: str, seed: int
) -> None:
    instances = [("i0", "Inst", "c0", None), ("i1", "Inst", "c1", "g"), ("i2", "A", "c2", None)]
    metrics = [
        (f"i{k % 3}", dt.date(2025, 3, 8 + k % 4), count, k, k * 2, count * 3)
        for k, (_, _, count, _) in enumerate(snaps)
    ]
    shuffled = random.Random(seed)
    kwargs: dict[str, Any] = {"start": PROPERTY_START, "end": PROPERTY_END}
    first = records(
        customers=PROPERTY_CUSTOMERS,
        snapshots=snaps,
        instances=instances,
        metrics=metrics,
        **kwargs,
    )
    second = records(
        customers=shuffled.sample(PROPERTY_CUSTOMERS, k=3),
        snapshots=shuffled.sample(snaps, k=len(snaps)),
        instances=shuffled.sample(instances, k=3),
        metrics=shuffled.sample(metrics, k=len(metrics)),
        **kwargs,
    )
    pd.testing.assert_frame_equal(
        customer_instance_frame(first, tz=tz, extended=True),
        customer_instance_frame(second, tz=tz, extended=True),
    )
    pd.testing.assert_frame_equal(
        instance_compute_frame(first, extended=True), instance_compute_frame(second, extended=True)
    )


# -- coverage and finality (extended) ------------------------------------------------------


def test_dst_days_expect_23_and_25_snapshots_in_berlin() -> None:
    # Berlin: 2025-03-30 lasts 23 hours (clocks jump 02:00 -> 03:00), 2025-10-26 lasts 25
    # (03:00 -> 02:00). One snapshot at local noon on each day and on an ordinary day.
    noon = {  # local noon in UTC: CET is UTC+1, CEST is UTC+2
        dt.date(2025, 3, 29): at(2025, 3, 29, 11),
        dt.date(2025, 3, 30): at(2025, 3, 30, 10),
        dt.date(2025, 10, 26): at(2025, 10, 26, 11),
    }
    recs = dataclasses.replace(
        records(
            customers=[ACME],
            snapshots=[("c1", t, 1, 1) for t in noon.values()],
            start=dt.date(2025, 3, 1),
            end=dt.date(2025, 10, 31),
            tz="Europe/Berlin",
        ),
        fetched_at=at(2025, 10, 28, 0),
    )
    frame = customer_instance_frame(recs, extended=True)
    assert rows(frame, "Date", "Snapshots", "Expected Snapshots", "Coverage", "Final") == [
        (dt.date(2025, 3, 29), 1, 24, 1 / 24, True),
        (dt.date(2025, 3, 30), 1, 23, 1 / 23, True),
        # 10-26 ended 10-26 23:00 UTC; 48 hours later is 10-28 23:00, after the fetch.
        (dt.date(2025, 10, 26), 1, 25, 1 / 25, False),
    ]


@pytest.mark.parametrize(
    ("fetched_at", "final_after", "final"),
    [
        (at(2025, 2, 14, 0), 48.0, False),  # 2025-02-12 ended 02-13 00:00 UTC: 24 h before
        (at(2025, 2, 15, 0), 48.0, True),  # exactly 48 h after its end
        (at(2025, 2, 14, 0), 24.0, True),
        (at(2025, 2, 13, 0), 0.0, True),  # a day that has just ended, with no grace
        (at(2025, 2, 12, 23, 59), 0.0, False),  # still running
    ],
)
def test_a_day_is_final_once_it_ended_final_after_hours_before_the_fetch(
    fetched_at: dt.datetime, final_after: float, final: bool
) -> None:
    recs = dataclasses.replace(
        records(
            customers=COMPUTE_CUSTOMERS,
            instances=COMPUTE_INSTANCES,
            snapshots=[("c-s2", at(2025, 2, 12, 5), 3, 2)],
            metrics=[("i-sf2", dt.date(2025, 2, 12), 0, 5, 0, 515)],
        ),
        fetched_at=fetched_at,
    )
    customer = customer_instance_frame(recs, extended=True, final_after=final_after)
    compute = instance_compute_frame(recs, extended=True, final_after=final_after)
    assert customer["Final"].tolist() == [final]
    assert compute["Final"].tolist() == [final]


# -- slice-wise daily sums --------------------------------------------------------------------

DAY_1, DAY_2 = (
    (dt.date(2025, 2, 3) - dt.date(1970, 1, 1)).days,
    (dt.date(2025, 2, 4) - dt.date(1970, 1, 1)).days,
)


@pytest.mark.parametrize("slice_rows", [1, 2, 3, 4, 100])
def test_daily_sums_do_not_depend_on_where_slices_end(slice_rows: int) -> None:
    from prismatic_usage._daily_sums import snapshot_daily_sums

    snaps = [  # slices of 2 end inside c1's first day, of 3 between c2's two rows
        ("c1", at(2025, 2, 3, 0), 1, 10),
        ("c2", at(2025, 2, 4, 5), 7, 70),
        ("c1", at(2025, 2, 3, 1), 2, 20),
        ("c1", at(2025, 2, 4, 0), 8, 80),
        ("c2", at(2025, 2, 4, 6), 9, 90),
        ("c1", at(2025, 2, 3, 2), 4, 40),
        ("c-system", at(2025, 2, 3, 3), 100, 100),
        ("c1", at(2025, 3, 1, 0), 100, 100),  # after the range
    ]
    table = records(snapshots=snaps).snapshots
    ranked = pa.array(["c2", "c1"])  # c2 ranks first
    daily = snapshot_daily_sums(
        table,
        ranked,
        zoneinfo.ZoneInfo("UTC"),
        dt.date(2025, 2, 1),
        dt.date(2025, 2, 28),
        slice_rows=slice_rows,
    )
    assert list(daily.itertuples(index=False, name=None)) == [
        (0, DAY_2, 16, 160, 2),
        (1, DAY_1, 7, 70, 3),
        (1, DAY_2, 8, 80, 1),
    ]


def test_a_sum_that_overflows_only_across_slices_is_refused() -> None:
    from prismatic_usage._daily_sums import snapshot_daily_sums

    table = records(snapshots=[("c1", at(2025, 2, 3, h), 2**62, 0) for h in range(2)]).snapshots
    with pytest.raises(OverflowError):
        snapshot_daily_sums(
            table,
            pa.array(["c1"]),
            zoneinfo.ZoneInfo("UTC"),
            dt.date(2025, 2, 1),
            dt.date(2025, 2, 28),
            slice_rows=1,
        )


def _owner_ids_as(snapshots: pa.Table, form: str, chunk_rows: int) -> pa.Table:
    """``snapshots`` whose ``customer_id`` is plain text, or dictionaries per chunk."""
    column = pc.cast(snapshots.column("customer_id"), pa.string()).combine_chunks()
    pieces = [column.slice(i, chunk_rows) for i in range(0, len(column), chunk_rows)] or [column]
    if form == "dictionary":  # each chunk its own dictionary, as the fetch builds them
        pieces = [piece.dictionary_encode() for piece in pieces]
    index = snapshots.schema.get_field_index("customer_id")
    return snapshots.set_column(index, "customer_id", pa.chunked_array(pieces))


@settings(max_examples=60, deadline=None)
@given(
    snaps=st.lists(snapshot_strategy, max_size=40),
    tz=st.sampled_from(ZONES),
    chunk_rows=st.integers(1, 7),
)
def test_frames_read_owner_ids_plain_or_dictionary_encoded_alike(
    snaps: list[tuple[str, dt.datetime, int, int]], tz: str, chunk_rows: int
) -> None:
    base = records(customers=PROPERTY_CUSTOMERS, snapshots=snaps)
    base = dataclasses.replace(base, start=PROPERTY_START, end=PROPERTY_END)
    frames = []
    for form in ("plain", "dictionary"):
        snapshots = _owner_ids_as(base.snapshots, form, chunk_rows)
        assert pa.types.is_dictionary(snapshots.schema.field("customer_id").type) == (
            form == "dictionary"
        )
        frames.append(
            customer_instance_frame(
                dataclasses.replace(base, snapshots=snapshots), tz=tz, extended=True
            )
        )
    pd.testing.assert_frame_equal(frames[0], frames[1])
    # And both are the stdlib recount (unknown customers, days out of range dropped).
    counts = expected_days(snaps, tz)
    assert len(frames[0]) == len(counts)
    for row in frames[0].itertuples(index=False):
        values = counts[row[0], row[2].date()]
        assert row[3] == pytest.approx(sum(values) / len(values))


def test_snapshot_schema_holds_each_owner_id_once_per_chunk() -> None:
    snapshots = records(
        customers=[ACME],
        snapshots=[("c1", at(2025, 2, 3, hour), hour, 1) for hour in range(24)],
    ).snapshots
    column = snapshots.column("customer_id")
    assert pa.types.is_dictionary(column.type)
    assert [chunk.dictionary.to_pylist() for chunk in column.chunks] == [["c1"]]
    assert column.to_pylist() == ["c1"] * 24
