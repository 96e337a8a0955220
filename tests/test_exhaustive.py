"""Bounded exhaustive search: every schedule with at most k preemptions, fewest first."""

from __future__ import annotations

import pytest
from hypothesis import settings

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._exhaustive import Choices, bounded_schedules
from jostle._scheduler import ControlledScheduler
from test_controlled_mode import STATS, TWO_RECORDS, StatsModel


def run_stats(strategy: Choices) -> jostle.Verdict:
    execution = jostle.execute(STATS, TWO_RECORDS, scheduler=ControlledScheduler(strategy))
    return jostle.judge(STATS, execution)


def test_the_first_failure_has_the_fewest_preemptions() -> None:
    """The lost update needs one preemption: every 0-preemption schedule passes
    and the first failing one has exactly one."""
    found = list(bounded_schedules(run_stats, bound=2))
    assert found[0].preemptions == 0 and found[0].result.ok
    first_bad = next(f for f in found if not f.result.ok)
    assert first_bad.preemptions == 1
    assert all(f.result.ok for f in found if f.preemptions == 0)
    assert [f.preemptions for f in found] == sorted(f.preemptions for f in found)


def test_every_schedule_is_run_once() -> None:
    """No schedule (choice list) is run twice, and the search is finite."""
    seen = [f.choices for f in bounded_schedules(run_stats, bound=2)]
    assert len(seen) == len(set(seen))
    assert len(seen) < 200


def test_max_runs_caps_the_search() -> None:
    """The search stops after max_runs schedules."""
    assert len(list(bounded_schedules(run_stats, bound=3, max_runs=4))) == 4


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_bad_bound_is_a_clear_error(bad: object) -> None:
    """A bound that is not a non-negative int is rejected with the fix."""
    with pytest.raises(jostle.SpecError, match="bound=2"):
        list(bounded_schedules(run_stats, bound=bad))  # type: ignore[arg-type]


@pytest.mark.slow
def test_concurrent_test_exhaustive_reports_a_minimal_schedule() -> None:
    """strategy='exhaustive' finds the lost update with one preemption and a
    2 x 1 scenario."""
    test = jostle.concurrent_test(STATS, mode="controlled", kinds=("thread",),
                                  strategy="exhaustive", max_preemptions=1, max_workers=2,
                                  max_ops=2, schedules=200,
                                  settings=settings(max_examples=60, database=None))
    with pytest.raises(jostle.NotLinearizable) as info:
        test()
    execution = info.value.verdict.execution  # type: ignore[attr-defined]
    assert execution.scenario.size == (2, 1)
    assert execution.preemptions == 1


def test_exhaustive_search_passes_a_correct_resource() -> None:
    """Every schedule of a locked counter with up to 2 preemptions passes."""
    spec = jostle.spec(LockedStats, jostle.operation(record, *STATS.op("record").args),
                       model=StatsModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("record", ("a",)),)),) * 2)
    for found in bounded_schedules(
            lambda s: jostle.judge(spec, jostle.execute(spec, sc,
                                                        scheduler=ControlledScheduler(s))),
            bound=2):
        assert found.result.ok, found.choices


class LockedStats:
    def __init__(self) -> None:
        import threading

        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def record(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1


def record(stats: LockedStats, key: str) -> None:
    stats.record(key)
