"""Controlled mode end to end: found, shrunk to the fewest preemptions, replayed exactly."""

from __future__ import annotations

import pytest
from hypothesis import settings, strategies as st

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._scheduler import ControlledScheduler
from jostle._strategies import Preemptions, RandomWalk, from_log

import proc_resources as pr
import thread_resources as tr


class Stats:
    """t01's shape: read a snapshot, build a new one (a call: a GIL switch point), store."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def _bump(self, value: int) -> int:
        return value + 1

    def record(self, key: str) -> None:
        current = self.counts.get(key, 0)
        self.counts[key] = self._bump(current)


def record(stats: Stats, key: str) -> None:
    stats.record(key)


def count(stats: Stats, key: str) -> int:
    return stats.counts.get(key, 0)


class StatsModel:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def record(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


STATS = jostle.spec(Stats, jostle.operation(record, st.just("a")),
                    jostle.operation(count, st.just("a")), model=StatsModel)
TWO_RECORDS = Scenario(workers=(WorkerPlan("thread", (Step("record", ("a",)),)),) * 2,
                       suffix=(Step("count", ("a",)),))


def first_failing_schedule(spec: jostle.Spec, scenario: Scenario, tries: int = 200
                           ) -> Preemptions:
    for seed in range(tries):
        run = jostle.execute(spec, scenario,
                             scheduler=ControlledScheduler(RandomWalk(seed, p=0.3)))
        if not jostle.judge(spec, run).ok:
            return from_log(run.decisions)
    raise AssertionError("no failing schedule found")


def test_lost_update_is_found_shrunk_and_labelled() -> None:
    """Hypothesis finds the lost update: 2 workers x 1 op, 1 preemption, gil model."""
    test = jostle.concurrent_test(STATS, mode="controlled", kinds=("thread",),
                                  settings=settings(max_examples=100))
    with pytest.raises(jostle.NotLinearizable) as info:
        test()
    verdict = info.value.verdict  # type: ignore[attr-defined]
    assert verdict.execution.scenario.size == (2, 1)
    assert verdict.execution.preemptions == 1
    assert "gil preemption model" in str(info.value)
    assert "schedule=jostle.Preemptions(" in str(info.value)


def test_same_schedule_same_trace_1000_times() -> None:
    """Replay is exact: one schedule gives one decision log and one history."""
    schedule = first_failing_schedule(STATS, TWO_RECORDS)
    reference = None
    for _ in range(1000):
        run = jostle.execute(STATS, TWO_RECORDS, scheduler=ControlledScheduler(schedule))
        trace = (tuple((d.step, d.kind, d.source, d.target) for d in run.decisions),
                 tuple((r.index, r.worker, r.outcome) for r in run.history.ops))
        if reference is None:
            reference = trace
        assert trace == reference
    assert not jostle.judge(STATS, jostle.execute(
        STATS, TWO_RECORDS, scheduler=ControlledScheduler(schedule))).ok


def test_replay_with_the_printed_schedule() -> None:
    """jostle.replay(spec, scenario, schedule=...) raises the same failure every time."""
    schedule = first_failing_schedule(STATS, TWO_RECORDS)
    for _ in range(20):
        with pytest.raises(jostle.NotLinearizable):
            jostle.replay(STATS, TWO_RECORDS, schedule=schedule)


def test_deadlock_reported_at_once_with_the_wait_for_cycle() -> None:
    """ABBA: both workers blocked; the cycle names both locks and both workers."""
    spec = jostle.spec(tr.Ledger, jostle.operation(tr.transfer, st.just(0), st.just(1)),
                       model=tr.LedgerModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("transfer", (0, 1)),)),
                           WorkerPlan("thread", (Step("transfer", (1, 0)),))))
    # the Ledger's rendezvous barrier is cooperative here: any schedule deadlocks
    run = jostle.execute(spec, sc, scheduler=ControlledScheduler(Preemptions()))
    assert run.deadlock is not None
    assert "worker 1 (thread)" in run.deadlock and "worker 2 (thread)" in run.deadlock
    with pytest.raises(jostle.Deadlock, match="holds Lock"):
        jostle.replay(spec, sc, schedule=Preemptions())


def test_controlled_mix_of_threads_tasks_and_processes() -> None:
    """One schedule drives a thread, the loop and a process on one resource, exactly."""
    spec = jostle.spec(pr.FileCounter, jostle.operation(pr.take),
                       jostle.operation(pr.take_on_loop), model=pr.CounterModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("take"),)),
                           WorkerPlan("task", (Step("take_on_loop"),)),
                           WorkerPlan("process", (Step("take"),))))
    runs = [jostle.execute(spec, sc, scheduler=ControlledScheduler(RandomWalk(7, p=0.5)))
            for _ in range(5)]
    orders = {tuple(r.worker for r in run.history.ops) for run in runs}
    assert len(orders) == 1
    assert all(jostle.judge(spec, run).ok for run in runs)
    assert {r.kind for r in runs[0].history.ops} == {"thread", "task", "process"}


def test_misuse_in_a_controlled_run_leaves_the_pools_usable() -> None:
    """An unpicklable process op fails at once in controlled mode; the next run works."""
    def local_take(counter: pr.FileCounter) -> int:
        return counter.take()

    class M:
        def local_take(self) -> int:
            return 1

    bad = jostle.spec(pr.FileCounter, jostle.operation(local_take, kinds=("process",)),
                      model=M)
    sc = Scenario(workers=(WorkerPlan("process", (Step("local_take"),)),))
    for _ in range(3):
        with pytest.raises(jostle.SpecTypeError, match="module level"):
            jostle.execute(bad, sc, scheduler=ControlledScheduler(Preemptions()))
    good = jostle.spec(pr.FileCounter, jostle.operation(pr.take), model=pr.CounterModel)
    run = jostle.execute(good, Scenario(workers=(WorkerPlan("process", (Step("take"),)),)),
                         scheduler=ControlledScheduler(Preemptions()))
    assert [r.outcome for r in run.history.ops] == [jostle.Returned(1)]


class Handoff:
    """Hands an item to a waiting taker.  Bug: a taker whose wait times out
    while the item is being handed gives up without looking again, so an
    item handed to it is lost (the fix: wait_for, which re-checks)."""

    def __init__(self) -> None:
        import threading

        self.cond = threading.Condition()
        self.waiting = False
        self.item: object = None

    def take(self) -> object:
        with self.cond:
            self.waiting = True
            got = self.cond.wait(timeout=1.0)
            self.waiting = False
            if not got:
                return None
            item, self.item = self.item, None
            return item

    def give(self, item: object) -> bool:
        with self.cond:
            if not self.waiting:
                return False
            self.item = item
            self.cond.notify()
            return True


def take(h: Handoff) -> object:
    return h.take()


def give(h: Handoff) -> bool:
    return h.give("job")


def nothing_lost(h: Handoff) -> None:
    assert h.item is None, "an item was handed to a taker that had given up"


HANDOFF = jostle.spec(Handoff, jostle.operation(take), jostle.operation(give),
                      model=None, invariants=[nothing_lost])


def test_a_timeout_is_a_scheduling_choice() -> None:
    """The lost hand-off needs the taker's timeout to fire while the giver
    holds the lock: found, and its schedule fires the timeout early."""
    test = jostle.concurrent_test(HANDOFF, mode="controlled", max_workers=2, max_ops=1,
                                  max_prefix=0, max_suffix=0,
                                  settings=settings(max_examples=200, database=None))
    with pytest.raises(jostle.InvariantViolated) as info:
        test()
    execution = info.value.verdict.execution  # type: ignore[attr-defined]
    assert any(d.kind == "timeout" and not d.default for d in execution.decisions)
    assert execution.scenario.size == (2, 1)


def test_timeouts_fire_only_when_nobody_can_run_without_a_choice() -> None:
    """With no preemption, the timeout is not taken early: the hand-off works."""
    sc = Scenario(workers=(WorkerPlan("thread", (Step("take"),)),
                           WorkerPlan("thread", (Step("give"),))))
    run = jostle.execute(HANDOFF, sc, scheduler=ControlledScheduler(Preemptions()))
    assert jostle.judge(HANDOFF, run).ok
    assert [r.outcome for r in sorted(run.history.ops, key=lambda r: r.worker)] == [
        jostle.Returned("job"), jostle.Returned(True)]
