"""The adaptive node budget: the AIMD rule by hand, and fetches against a sandbox that limits it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage import FetchOptions, fetch_usage
from prismatic_usage import queries as q
from prismatic_usage.budget import NodeBudget, slow_threshold
from prismatic_usage.packing import Packing
from prismatic_usage.sandbox import FaultPlan, Sandbox, generate_org
from prismatic_usage.sandbox.stats import RequestRecord
from prismatic_usage.unit_queue import UnitQueue
from prismatic_usage.units import PageUnit

from .conftest import sandbox_process
from .expected import actual_records, expected_records

START = dt.date(2025, 3, 1)
UNPACED = FetchOptions(requests_per_second=None)
# Paced, units pile up between starts and requests fill up to the budget (unpaced,
# eight idle workers each take the few units that are ready).
PACED = FetchOptions(requests_per_second=40)


def _budget(start: int = 1000, *, fixed: bool = False) -> NodeBudget:
    return NodeBudget(start, 100, ceiling_nodes=10_000, fixed=fixed, slow_seconds=1.0)


# -- the rule, by hand ---------------------------------------------------------------


def test_fast_whole_answers_grow_the_budget_one_page_each() -> None:
    budget = _budget()
    budget.answered(1000, 0.1)
    budget.answered(1100, 0.1)
    assert budget.nodes == 1200
    budget.answered(500, 0.1)  # under half the budget: says nothing about larger ones
    assert budget.nodes == 1200
    budget.answered(600, 0.1)  # exactly half counts
    assert budget.nodes == 1300


def test_slow_answers_halve_below_their_size_once_not_once_each() -> None:
    budget = _budget()
    for size in (1000, 1100, 1200):
        budget.answered(size, 0.2)
    assert budget.nodes == 1300
    budget.answered(1300, 1.5)  # slow: halved below its size
    assert budget.nodes == 650
    budget.answered(1200, 2.0)  # in flight together with it: 600, not 325
    assert budget.nodes == 600
    budget.answered(299, 9.0)  # under half the budget: a busy server, not a large request
    assert budget.nodes == 600
    budget.answered(300, 9.0)
    budget.answered(150, 9.0)
    assert budget.nodes == 100  # never under one page
    assert budget.slow_answers == 4


def test_the_budget_stops_at_its_ceiling() -> None:
    budget = _budget(9_900)
    budget.answered(9_900, 0.1)
    budget.answered(10_000, 0.1)
    assert budget.nodes == budget.peak == 10_000


def test_a_refusal_halves_the_budget_and_the_refused_size_is_never_reached_again() -> None:
    budget = _budget(1500)
    budget.answered(1500, 0.1)  # the largest answered: 1,500
    budget.refused(1900)
    # Half below 1,900; the limit halfway between 1,500 and 1,900.
    assert (budget.nodes, budget.limit) == (950, 1700)
    for _ in range(20):
        budget.answered(budget.nodes, 0.1)
    assert budget.nodes == 1700
    budget.refused(1700)  # at least one page below a refused size
    assert (budget.nodes, budget.limit) == (850, 1600)


def test_a_fixed_budget_never_grows_nor_shrinks_when_slow_only_when_refused() -> None:
    budget = _budget(1000, fixed=True)
    budget.answered(1000, 0.1)
    budget.answered(1000, 5.0)
    assert budget.nodes == 1000
    budget.refused(1000)
    assert budget.nodes == 500


def test_a_server_slower_than_the_threshold_at_any_size_does_not_shrink_it_to_nothing() -> None:
    budget = _budget(200)
    budget.answered(100, 1.2)  # the first answer: slow by the threshold alone
    assert budget.nodes == 100  # halved below its size: one page
    budget.answered(100, 1.3)  # now the latency guard: not over 2 x 1.2 s
    budget.answered(200, 2.3)
    assert budget.nodes == 300


def test_the_slow_threshold_is_the_larger_of_two_seconds_and_concurrency_over_rate() -> None:
    assert slow_threshold(8, 20.0) == 2.0
    assert slow_threshold(8, 2.0) == 4.0
    assert slow_threshold(8, None) == 2.0


_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["fast", "slow", "refused"]), st.integers(min_value=1, max_value=12_000)
    ),
    max_size=60,
)


@settings(deadline=None)
@given(_EVENTS, st.booleans())
def test_the_budget_stays_within_its_bounds_and_under_every_refused_size(
    events: list[tuple[str, int]], fixed: bool
) -> None:
    budget = _budget(fixed=fixed)
    smallest_refused: int | None = None
    for kind, nodes in events:
        if kind == "refused":
            budget.refused(nodes)
            smallest_refused = min(nodes, smallest_refused or nodes)
        else:
            budget.answered(nodes, 0.1 if kind == "fast" else 5.0)
        assert 100 <= budget.nodes <= 10_000
        if smallest_refused is not None and smallest_refused > 100:
            assert budget.nodes < smallest_refused
        if fixed:
            assert budget.nodes <= 1000


# -- trials: one at a time, and the others do not wait ----------------------------------


def _pages(count: int) -> list[PageUnit]:
    return [
        PageUnit(q.SNAPSHOTS_ORG_WIDE, None, 100 * (i + 1), 100, None, False, 0)
        for i in range(count)
    ]


def test_after_the_first_pack_a_trial_no_longer_holds_the_other_workers_back() -> None:
    queue = UnitQueue(Packing(None, 100, slow_seconds=1.0))
    for unit in _pages(60):
        queue.enqueue(unit)
    first = queue.claim()
    assert (first.trial, first.count) == (True, 10)  # 1,000 nodes: more than one page
    assert not queue.may_claim()  # nothing is known yet: the others wait
    batch = queue.take(first)
    queue.packing.answered(batch, 0.1)  # proven: 10 pages; the budget grows to 11
    queue.trial_in_flight = False  # (the dispatcher's part)
    second = queue.claim()
    assert (second.trial, second.count) == (True, 11)
    assert queue.may_claim()  # a trial is in flight, yet the others go on
    for _ in range(3):
        third = queue.claim()
        assert (third.trial, third.count) == (False, 10)  # no larger than what succeeded
    # 50 - 11 - 30 = 9 units left: not a full request of 10, it waits for the trial.
    assert not queue.may_claim()
    queue.trial_in_flight = False
    assert queue.may_claim()


def test_a_refusal_blames_the_root_fields_only_when_the_nodes_cannot_be_at_fault() -> None:
    packing = Packing(None, 100, slow_seconds=2.0)
    packing.answered(_pages(10), 0.1)  # proven: 10 fields, 1,000 nodes
    packing.refused(_pages(11))  # 1,100 nodes in 11 fields: the nodes
    assert (packing.max_fields, packing.budget_nodes) == (100, 550)
    small = [PageUnit(q.METRICS, f"i{i}", 0, 31, None, False, 0) for i in range(20)]
    packing.refused(small)  # 620 nodes (1,000 were answered) in 20 fields: the fields only,
    assert (packing.max_fields, packing.budget_nodes) == (15, 550)  # halfway back to 10
    packing.refused(_pages(3))  # 3 fields, 300 nodes: a size that succeeded, halved
    assert packing.max_fields == 1


# -- fetches through gql against the sandbox ------------------------------------------------


def _nodes(record: RequestRecord) -> int:
    return sum(int(call.arguments.get("first", 100)) for call in record.root_fields)


def test_the_budget_converges_under_a_node_cap_with_the_records_of_pack_1(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    data = generate_org(edge_cases=True, seed=5, customers=300, start=START, days=4)
    end = START + dt.timedelta(days=3)
    sb = make_sandbox(data=data, faults=FaultPlan(max_nodes_per_response=1500))
    records = fetch_usage(START, end, url=sb.url, token=sb.token, options=PACED)
    assert actual_records(records) == expected_records(data, START, end)
    log = sb.stats.request_log
    one = FetchOptions(requests_per_second=None, pack=1)
    single = fetch_usage(START, end, url=sb.url, token=sb.token, options=one)
    assert actual_records(records) == actual_records(single)
    refused = [r for r in log if r.error_messages and "too many nodes" in r.error_messages[0]]
    assert len(refused) == records.stats.splits
    # One trial at a time; each refusal at least halves the gap between the largest
    # answered request and the smallest refused one. The first gap is at most the
    # largest answered request (the budget stops growing at twice what succeeded):
    # under 1,500 nodes = 15 pages, so at most 1 + log2(15) -> 5 refusals.
    assert 1 <= len(refused) <= 5
    assert max(_nodes(r) for r in log if r not in refused) <= 1500
    assert max(_nodes(r) for r in log if r not in refused) > 1000  # it grew up to the cap


def test_without_a_cap_the_budget_grows_past_1000_nodes_and_saves_requests(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    data = generate_org(seed=6, customers=300, start=START, days=4)
    end = START + dt.timedelta(days=3)
    sb = make_sandbox(data=data)
    adaptive = fetch_usage(START, end, url=sb.url, token=sb.token, options=PACED)
    grown = max(_nodes(r) for r in sb.stats.request_log)
    sb.reset_stats()
    fixed = FetchOptions(requests_per_second=40, pack=10)
    ten = fetch_usage(START, end, url=sb.url, token=sb.token, options=fixed)
    assert actual_records(adaptive) == actual_records(ten) == expected_records(data, START, end)
    assert grown > 1000
    assert max(_nodes(r) for r in sb.stats.request_log) <= 1000  # an explicit pack is fixed
    assert ten.stats.pack == 10
    # 300 x 24 x 4 = 28,800 snapshots alone take 29 requests of 1,000 nodes.
    assert adaptive.stats.requests < ten.stats.requests


def test_an_explicit_pack_stays_fixed_under_a_node_cap_and_only_shrinks(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    data = generate_org(seed=7, customers=30, start=START, days=3)
    end = START + dt.timedelta(days=2)
    sb = make_sandbox(data=data, faults=FaultPlan(max_nodes_per_response=700))
    options = FetchOptions(requests_per_second=None, concurrency=2, pack=3)
    records = fetch_usage(START, end, url=sb.url, token=sb.token, options=options)
    assert actual_records(records) == expected_records(data, START, end)
    assert records.stats.pack == 3 and records.stats.splits == 0
    assert max(_nodes(r) for r in sb.stats.request_log) <= 300


def test_slow_answers_of_the_cost_model_shrink_the_budget(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    # 3 s per 1,000 nodes: a 1,000-node request answers after 3 s (slow: over 2 s),
    # one of 700 or more after 2.1 s or more; 600 or fewer are fast.
    data = generate_org(seed=8, customers=25, start=START, days=3)
    end = START + dt.timedelta(days=2)
    sb = make_sandbox(data=data, faults=FaultPlan(seconds_per_1000_nodes=3.0))
    records = fetch_usage(START, end, url=sb.url, token=sb.token, options=UNPACED)
    assert actual_records(records) == expected_records(data, START, end)
    assert records.stats.pack <= 6  # never back over 600 + one page
    sizes = [_nodes(r) for r in sb.stats.request_log]
    assert sizes.count(1000) <= 1  # the first pack; then at most half of it
    assert max(sizes[sizes.index(max(sizes)) + 1 :], default=0) <= 700


def test_the_cost_model_waits_in_proportion_to_the_nodes_requested() -> None:
    plan = FaultPlan(seconds_per_1000_nodes=0.25)
    assert plan.cost_seconds(4000) == 1.0
    assert FaultPlan().cost_seconds(4000) == 0.0


def test_the_sandbox_command_takes_a_node_cap_and_the_fetch_splits_under_it() -> None:
    days = 2
    command = [
        "--seed", "3",
        "--customers", "4", "--start-date", START.isoformat(), "--days", str(days),
        "--max-nodes", "150", "--ms-per-1000-nodes", "10",
    ]  # fmt: skip
    end = START + dt.timedelta(days=days - 1)
    with sandbox_process(*command) as (url, token):
        records = fetch_usage(START, end, url=url, token=token, options=UNPACED)
    data = generate_org(seed=3, customers=4, start=START, days=days)
    assert actual_records(records) == expected_records(data, START, end)
    assert records.stats.splits >= 1  # 1,000 nodes asked of a server that takes 150
    assert records.stats.pack == 1  # 150 nodes hold one full page, not two


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-nodes", "-5"),
        ("--ms-per-1000-nodes", "-5"),
        ("--ms-per-1000-nodes", "nan"),
        ("--rate-limit", "inf"),  # a limit that limits nothing is a typo, not a setting
        ("--rate-limit", "nan"),
    ],
)
def test_the_sandbox_command_refuses_a_negative_or_endless_number(flag: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "prismatic_usage", "sandbox", flag, value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert flag in done.stderr and value in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_node_cap_never_costs_root_fields() -> None:
    # A reviewer's sequence against a server whose only limit is 250 nodes: the old rule
    # blamed the fields of the leaps and ended at 3 fields a request for good.
    packing = Packing(None, 100, slow_seconds=2.0)
    packing.answered(_pages(2), 0.1)  # 200 nodes in 2 fields answered
    for pages in (10, 5, 3):
        if pages * 100 <= packing.budget_nodes:
            packing.refused(_pages(pages))
    assert packing.max_fields == 100
    small = [PageUnit(q.METRICS, f"i{i}", 0, 3, None, False, 0) for i in range(60)]
    assert packing.fit(small, len(small), trial=True)[0] == 60  # 180 nodes in one request


def test_a_refusal_never_puts_the_limit_under_what_was_answered() -> None:
    budget = NodeBudget(1000, 100, ceiling_nodes=10_000, fixed=False, slow_seconds=2.0)
    budget.answered(245, 0.1)
    budget.refused(296)  # halfway is 270, one page below is 196: never under 245
    assert budget.limit == 245
