"""The engine runs scenarios on threads, tasks and processes and records all."""

from __future__ import annotations

import sys

import pytest
from hypothesis import strategies as st

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._engine import get_engine

import thread_resources as tr

COUNTER = jostle.spec(tr.RendezvousCounter, jostle.operation(tr.incr), jostle.operation(tr.get),
                      model=tr.CounterModel)
TWO_INCRS = Scenario(
    prefix=(Step("get"),),
    workers=(WorkerPlan("thread", (Step("incr"),)), WorkerPlan("thread", (Step("incr"),))),
    suffix=(Step("get"),),
)
ONE_INCR = Scenario(workers=(WorkerPlan("thread", (Step("incr"),)),))


def test_history_has_every_operation_with_worker_kind_and_phase() -> None:
    """Prefix and suffix run as worker 0; parallel workers are numbered from 1."""
    run = jostle.execute(COUNTER, TWO_INCRS)
    got = sorted((r.index, r.worker, r.kind, r.phase, r.op) for r in run.history.ops)
    assert got == [(0, 0, "thread", "prefix", "get"), (1, 1, "thread", "parallel", "incr"),
                   (2, 2, "thread", "parallel", "incr"), (3, 0, "thread", "suffix", "get")]
    assert all(r.response is not None and r.response >= r.invoke for r in run.history.ops)


def test_forced_lost_update_is_not_linearizable() -> None:
    """Two increments that both return 1 cannot be explained sequentially."""
    verdict = jostle.judge(COUNTER, jostle.execute(COUNTER, TWO_INCRS))
    assert [f.kind for f in verdict.findings] == ["linearizability"]
    with pytest.raises(jostle.NotLinearizable, match="longest linearizable prefix"):
        jostle.replay(COUNTER, TWO_INCRS)


def test_correct_counter_passes_the_same_scenario() -> None:
    """The locked counter is linearizable whatever the interleaving."""
    spec = jostle.spec(tr.LockedCounter, jostle.operation(tr.incr), jostle.operation(tr.get),
                       model=tr.CounterModel)
    for _ in range(20):
        assert jostle.judge(spec, jostle.execute(spec, TWO_INCRS)).ok


def test_threads_are_reused_between_executions() -> None:
    """The pool hands the same threads out again instead of starting new ones."""
    engine = get_engine()
    spec = jostle.spec(tr.LockedCounter, jostle.operation(tr.incr), model=tr.CounterModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("incr"),)),) * 2)
    jostle.execute(spec, sc)
    before = engine.threads._count
    for _ in range(30):
        jostle.execute(spec, sc)
    assert engine.threads._count == before


def test_switch_interval_restored_after_the_parallel_part() -> None:
    """Stress mode lowers sys.setswitchinterval only while workers run."""
    before = sys.getswitchinterval()
    jostle.execute(COUNTER, TWO_INCRS)
    assert sys.getswitchinterval() == before


@pytest.mark.slow
def test_deadlock_is_a_hang_with_stacks_and_threads_are_replaced() -> None:
    """An ABBA deadlock fails inside the test with both stacks, then the pool recovers."""
    spec = jostle.spec(tr.Ledger, jostle.operation(tr.transfer, st.just(0), st.just(1)),
                       model=tr.LedgerModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("transfer", (0, 1)),)),
                           WorkerPlan("thread", (Step("transfer", (1, 0)),))))
    engine = get_engine()
    abandoned = engine.threads.abandoned
    run = jostle.execute(spec, sc, timeout=0.5)
    assert run.hung and {s.worker for s in run.stuck} == {1, 2}
    for stuck in run.stuck:
        assert "transfer" in stuck.stack
        assert stuck.where is not None and stuck.where[0].endswith("thread_resources.py")
    assert engine.threads.abandoned == abandoned + 2
    pending = [r for r in run.history.ops if isinstance(r.outcome, jostle.Unknown)]
    assert {r.outcome.reason for r in pending} == {"hung"}  # type: ignore[union-attr]
    verdict = jostle.judge(spec, run)
    assert verdict.findings[0].kind == "hang"
    assert verdict.findings[0].cause is not None
    with pytest.raises(jostle.Hang, match=r"blocked at .*thread_resources\.py"):
        jostle.replay(spec, sc, timeout=0.5)
    spec_free = jostle.spec(tr.LockedCounter, jostle.operation(tr.incr), model=tr.CounterModel)
    assert jostle.judge(spec_free, jostle.execute(
        spec_free, Scenario(workers=(WorkerPlan("thread", (Step("incr"),)),) * 2))).ok


def test_every_unexpected_exception_is_reported_with_its_own_origin() -> None:
    """Two workers raising different exceptions give two findings with distinct causes."""
    spec = jostle.spec(tr.LockedCounter,
                       jostle.operation(tr.explode, st.sampled_from(["key", "value"])),
                       model=tr.ExplodeModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("explode", ("key",)),)),
                           WorkerPlan("thread", (Step("explode", ("value",)),))))
    verdict = jostle.judge(spec, jostle.execute(spec, sc))
    kinds = [(f.kind, type(f.cause).__name__) for f in verdict.findings]
    assert ("exception", "KeyError") in kinds and ("exception", "ValueError") in kinds
    for f in verdict.findings:
        if f.kind == "exception":
            assert "thread_resources.py" in f.detail  # the worker's traceback
    with pytest.raises(jostle.UnexpectedException) as info:
        jostle.replay(spec, sc)
    assert isinstance(info.value.__cause__, KeyError)


def test_declared_errors_are_results_not_bugs() -> None:
    """An exception the model also raises is compared, not reported."""
    class RaisingModel:
        def explode(self, what: str) -> None:
            raise KeyError(what) if what == "key" else ValueError(what)

    spec = jostle.spec(tr.LockedCounter,
                       jostle.operation(tr.explode, st.sampled_from(["key", "value"])),
                       model=RaisingModel, expected_errors=(KeyError, "ValueError"))
    sc = Scenario(workers=(WorkerPlan("thread", (Step("explode", ("key",)),)),
                           WorkerPlan("thread", (Step("explode", ("value",)),))))
    assert jostle.judge(spec, jostle.execute(spec, sc)).ok


def test_scenario_with_an_unknown_operation_is_a_spec_error() -> None:
    """A hand-written scenario naming no operation of the spec is refused."""
    with pytest.raises(jostle.SpecError, match="does not define"):
        jostle.execute(COUNTER, Scenario(prefix=(Step("decr"),)))


def test_operation_on_a_kind_it_cannot_run_on() -> None:
    """A hand-written scenario putting an op on the wrong kind is refused."""
    with pytest.raises(jostle.SpecError, match="can run on"):
        jostle.execute(COUNTER, Scenario(workers=(WorkerPlan("task", (Step("incr"),)),)))


def test_factory_that_raises_names_the_fix() -> None:
    """A resource factory that raises is a spec error chained to the cause."""
    def broken() -> object:
        raise OSError("no database")

    spec = jostle.spec(broken, jostle.operation(tr.incr), model=tr.CounterModel)
    with pytest.raises(jostle.SpecError, match="Fix: make the factory") as info:
        jostle.execute(spec, ONE_INCR)
    assert isinstance(info.value.__cause__, OSError)


def test_factory_returning_none() -> None:
    """A factory returning None is refused: ops need a resource."""
    spec = jostle.spec(lambda: None, jostle.operation(tr.incr), model=tr.CounterModel)
    with pytest.raises(jostle.SpecError, match="returned None"):
        jostle.execute(spec, ONE_INCR)


def test_nested_runs_are_refused() -> None:
    """An operation that starts another jostle run gets a clear error."""
    def nested(counter: object) -> None:
        jostle.execute(COUNTER, TWO_INCRS)

    class M:
        def nested(self) -> None:
            return None

    spec = jostle.spec(tr.LockedCounter, jostle.operation(nested, kinds=("task",)), model=M)
    verdict = jostle.judge(spec, jostle.execute(spec, Scenario(prefix=(Step("nested"),))))
    (finding,) = verdict.findings
    assert "not nested" in finding.summary
