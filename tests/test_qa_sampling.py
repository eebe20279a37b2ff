"""The weekly review sample: repeatable from its seed, fair to every agent and stage."""

from __future__ import annotations

from collections import Counter

import pytest

from qa_scoring.sampling import SampleCall, allocate, draw_sample, sample_size


def calls(agent: str, count: int, stages: dict[str, int] | None = None) -> list[SampleCall]:
    """`count` calls for `agent`, split over `stages` (name -> count) when given."""
    made: list[SampleCall] = []
    plan = stages or {"bank-a": count}
    for stage, n in plan.items():
        made.extend(SampleCall(f"{agent}-{stage}-{i:03d}", agent, stage) for i in range(n))
    return made


WEEK = calls("agent1", 200, {"bank-a": 150, "bank-b": 40, "bank-c": 10}) + calls("agent2", 30)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 0), (1, 1), (3, 3), (4, 4), (79, 4), (80, 4), (81, 5), (100, 5), (200, 10), (1000, 50)],
)
def test_sample_size_is_five_percent_but_at_least_four(count: int, expected: int) -> None:
    assert sample_size(count) == expected


def test_same_seed_same_sample_whatever_the_input_order() -> None:
    first = draw_sample(WEEK, "2026-W48-a")
    again = draw_sample(list(reversed(WEEK)), "2026-W48-a")
    assert [c.id for c in first] == [c.id for c in again]


def test_different_seed_different_sample() -> None:
    a = {c.id for c in draw_sample(WEEK, "seed-1")}
    b = {c.id for c in draw_sample(WEEK, "seed-2")}
    assert a != b


def test_minimum_per_agent_and_all_calls_when_fewer() -> None:
    few = calls("agent3", 3)
    drawn = Counter(c.agent for c in draw_sample([*WEEK, *few], 7))
    assert drawn == {"agent1": 10, "agent2": 4, "agent3": 3}


def test_every_stage_is_represented_in_proportion() -> None:
    drawn = draw_sample(WEEK, "x")
    stages = Counter(c.stage for c in drawn if c.agent == "agent1")
    # 10 draws over 150/40/10 calls: 7.5/2/0.5 by proportion; the small stage still gets one
    assert stages == {"bank-a": 7, "bank-b": 2, "bank-c": 1}


def test_one_agents_late_call_does_not_reshuffle_the_others() -> None:
    before = [c.id for c in draw_sample(WEEK, "s") if c.agent == "agent1"]
    after = [c.id for c in draw_sample([*WEEK, *calls("agent2", 31)[-1:]], "s")]
    assert [i for i in after if i.startswith("agent1")] == before


@pytest.mark.parametrize(
    ("sizes", "total", "expected"),
    [
        ({"a": 50, "b": 50}, 4, {"a": 2, "b": 2}),
        ({"a": 90, "b": 9, "c": 1}, 4, {"a": 2, "b": 1, "c": 1}),
        ({"a": 90, "b": 10}, 1, {"a": 1, "b": 0}),  # fewer draws than stages: biggest first
        ({"a": 3, "b": 1}, 4, {"a": 3, "b": 1}),  # everything
        ({"a": 5}, 0, {"a": 0}),
    ],
)
def test_allocation(sizes: dict[str, int], total: int, expected: dict[str, int]) -> None:
    assert allocate(sizes, total) == expected
    assert sum(allocate(sizes, total).values()) == total


def test_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        draw_sample(WEEK, 1, rate=0)
