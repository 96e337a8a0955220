"""Uncontrolled nondeterminism in controlled runs is made deterministic or named."""

from __future__ import annotations

import random
import time
import uuid

import pytest
from hypothesis import settings

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._engine import get_engine
from jostle._scheduler import ControlledScheduler
from jostle._strategies import Preemptions


class Box:
    def __init__(self) -> None:
        self.value: object = None


class BoxModel:
    def put_uuid(self) -> None:
        return None

    def draw(self) -> None:
        return None

    def clock(self) -> None:
        return None


def put_uuid(box: Box) -> None:
    box.value = uuid.uuid4()


def draw(box: Box) -> float:
    return random.random()


def clock(box: Box) -> None:
    box.value = time.clock_gettime(time.CLOCK_MONOTONIC)


SPEC = jostle.spec(Box, jostle.operation(put_uuid), jostle.operation(draw),
                   jostle.operation(clock), model=BoxModel)


def one(*steps: str) -> Scenario:
    return Scenario(workers=tuple(WorkerPlan("thread", (Step(s),)) for s in steps))


def run(scenario: Scenario) -> jostle.Execution:
    return jostle.execute(SPEC, scenario, scheduler=ControlledScheduler(Preemptions()))


def test_true_randomness_and_unvirtualised_clocks_are_named() -> None:
    """uuid4 (os.urandom) and time.clock_gettime in a worker become warnings
    naming the worker and the user's line."""
    warnings = run(one("put_uuid", "clock")).warnings
    assert any("worker 1 (thread) read os.urandom" in w and "test_nondeterminism.py" in w
               for w in warnings), warnings
    assert any("worker 2 (thread) read time.clock_gettime" in w for w in warnings), warnings


def test_a_clean_run_has_no_nondeterminism_warning() -> None:
    """Nothing is noted when the operations use no uncontrolled source."""
    assert not [w for w in run(one("draw")).warnings if "nondeterminism" in w]


def test_the_global_random_is_the_same_in_every_execution() -> None:
    """random.random() in a worker gives the same value in every execution,
    first or k-th of a session, so a schedule replays."""
    def value(ex: jostle.Execution) -> object:
        (rec,) = ex.history.ops
        return rec.outcome

    alone = value(run(one("draw")))
    scheduler = ControlledScheduler(Preemptions())
    with get_engine().controlled_session() as session:
        batch = session.call(lambda: [value(jostle.execute(SPEC, one("draw"),
                                                           scheduler=scheduler))
                                      for _ in range(3)])
    assert batch == [alone] * 3


def test_the_callers_random_state_is_left_alone() -> None:
    """A controlled run does not move the caller's global generator."""
    random.seed(1234)
    expected = random.Random(1234).random()
    run(one("draw"))
    assert random.random() == expected


calls = {"n": 0}


class Flaky:
    """Fails on odd calls in the whole process: hidden global state."""


def flaky(box: Flaky) -> None:
    calls["n"] += 1
    if calls["n"] % 2:
        raise ValueError(f"call {calls['n']}")


class FlakyModel:
    def flaky(self) -> None:
        return None


@pytest.mark.slow
def test_a_schedule_that_does_not_replay_is_reported() -> None:
    """State outside the resource makes the same schedule pass on replay:
    the failure says so, with the first difference."""
    calls["n"] = 0
    spec = jostle.spec(Flaky, jostle.operation(flaky), model=FlakyModel)
    test = jostle.concurrent_test(spec, mode="controlled", max_workers=1, max_ops=1,
                                  max_prefix=0, max_suffix=0,
                                  settings=settings(max_examples=5, database=None))
    with pytest.raises(jostle.UnexpectedException) as info:
        test()
    assert "replaying this schedule gave a different run" in str(info.value)
    assert "raised ValueError" in str(info.value)
