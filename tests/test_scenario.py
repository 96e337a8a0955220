"""Scenarios: the drawn shape respects the spec, and prints as runnable code."""

from __future__ import annotations

from hypothesis import given, strategies as st

import jostle
from jostle import Scenario, Step, WorkerPlan


def put(q: list[int], x: int) -> None:
    q.append(x)


async def aget(q: list[int]) -> int:
    return len(q)


class Model:
    def put(self, x: int) -> None:
        return None

    def aget(self) -> int:
        return 0


SPEC = jostle.spec(list, jostle.operation(put, st.integers(0, 9)),
                   jostle.operation(aget), model=Model)


@given(jostle.scenarios(SPEC, max_workers=3, max_ops=2))
def test_drawn_scenarios_respect_kinds_and_bounds(scenario: Scenario) -> None:
    """Each worker runs only operations its kind allows, within the bounds."""
    assert 1 <= len(scenario.workers) <= 3
    for plan in scenario.workers:
        assert 1 <= len(plan.steps) <= 2
        for step in plan.steps:
            assert plan.kind in SPEC.op(step.op).kinds
    assert len(scenario.prefix) <= 2 and len(scenario.suffix) <= 1


@given(jostle.scenarios(SPEC))
def test_to_code_round_trips(scenario: Scenario) -> None:
    """The printed scenario is code that rebuilds the same scenario."""
    assert eval(scenario.to_code(), {"jostle": jostle}) == scenario


def test_indexed_numbers_prefix_workers_suffix() -> None:
    """Steps are numbered prefix first, then worker by worker, then suffix."""
    sc = Scenario(
        prefix=(Step("put", (1,)),),
        workers=(WorkerPlan("thread", (Step("put", (2,)), Step("put", (3,)))),
                 WorkerPlan("task", (Step("aget"),))),
        suffix=(Step("aget"),),
    )
    assert [(i, w, ph, s.op) for i, w, ph, s in sc.indexed()] == [
        (0, 0, "prefix", "put"), (1, 1, "parallel", "put"), (2, 1, "parallel", "put"),
        (3, 2, "parallel", "aget"), (4, 0, "suffix", "aget"),
    ]
    assert sc.size == (2, 2)
