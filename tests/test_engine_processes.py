"""Process workers in scenarios: mixed with threads and tasks on one resource."""

from __future__ import annotations

import pytest

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._engine import get_engine

import proc_resources as pr


def counter_spec(factory: type[pr.FileCounter]) -> jostle.Spec:
    return jostle.spec(factory, jostle.operation(pr.take), jostle.operation(pr.take_on_loop),
                       model=pr.CounterModel)


ALL_KINDS = Scenario(
    prefix=(Step("take"),),
    workers=(WorkerPlan("thread", (Step("take"),)),
             WorkerPlan("task", (Step("take_on_loop"),)),
             WorkerPlan("process", (Step("take"), Step("take")))),
    suffix=(Step("take"),),
)


def test_one_scenario_mixes_threads_tasks_and_processes() -> None:
    """A locked file counter driven by all three kinds at once is linearizable."""
    spec = counter_spec(pr.FileCounter)
    assert spec.op("take").kinds == {"thread", "process"}
    run = jostle.execute(spec, ALL_KINDS)
    assert sorted((r.worker, r.kind) for r in run.history.ops) == [
        (0, "thread"), (0, "thread"), (1, "thread"), (2, "task"), (3, "process"), (3, "process")]
    values = sorted(r.outcome.value for r in run.history.ops)  # type: ignore[union-attr]
    assert values == [1, 2, 3, 4, 5, 6]
    assert jostle.judge(spec, run).ok


def test_race_between_a_thread_and_a_process_is_found() -> None:
    """A thread and a process meeting in an unlocked window lose an update."""
    spec = counter_spec(pr.RendezvousFile)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("take"),)),
                           WorkerPlan("process", (Step("take"),))))
    with pytest.raises(jostle.NotLinearizable) as info:
        jostle.replay(spec, sc)
    assert "worker 2 (process)" in str(info.value)


def test_process_workers_are_reused() -> None:
    """The same worker processes serve execution after execution."""
    spec = counter_spec(pr.FileCounter)
    sc = Scenario(workers=(WorkerPlan("process", (Step("take"),)),) * 2)
    jostle.execute(spec, sc)
    pids = {w.pid for w in get_engine().processes._workers}
    for _ in range(20):
        jostle.execute(spec, sc)
    assert {w.pid for w in get_engine().processes._workers} == pids


def fault_spec() -> jostle.Spec:
    return jostle.spec(pr.FileCounter, jostle.operation(pr.crash, kinds=("process",)),
                       jostle.operation(pr.raise_here, kinds=("process",)), model=pr.FaultModel)


def test_exception_in_a_process_keeps_its_origin() -> None:
    """An exception raised in a worker process points at the user's line."""
    spec = fault_spec()
    sc = Scenario(workers=(WorkerPlan("process", (Step("raise_here"),)),))
    with pytest.raises(jostle.UnexpectedException) as info:
        jostle.replay(spec, sc)
    cause = info.value.__cause__
    assert isinstance(cause, LookupError)
    frames = []
    tb = cause.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    assert frames[-1].endswith("proc_resources.py")
    assert "raise LookupError" in str(info.value)  # the remote traceback text


def test_crashed_worker_is_a_finding_and_is_replaced() -> None:
    """A process dying mid-operation is reported, its op pending, the pool refilled."""
    spec = fault_spec()
    sc = Scenario(workers=(WorkerPlan("process", (Step("crash"),)),))
    run = jostle.execute(spec, sc)
    assert run.crashed == (1,)
    (rec,) = run.history.ops
    assert rec.outcome == jostle.Unknown("worker died")
    verdict = jostle.judge(spec, run)
    assert [f.kind for f in verdict.findings] == ["crash"]
    assert "crash()" in verdict.findings[0].summary
    ok = jostle.execute(counter_spec(pr.FileCounter), Scenario(
        workers=(WorkerPlan("process", (Step("take"),)),)))
    assert jostle.judge(counter_spec(pr.FileCounter), ok).ok


def test_unpicklable_operation_is_a_spec_error_naming_the_fix() -> None:
    """An operation defined inside a function cannot go to a process: say how to fix it."""
    def local_take(counter: pr.FileCounter) -> int:
        return counter.take()

    class M:
        def local_take(self) -> int:
            return 1

    spec = jostle.spec(pr.FileCounter, jostle.operation(local_take, kinds=("process",)), model=M)
    with pytest.raises(jostle.SpecTypeError, match="module level"):
        jostle.execute(spec, Scenario(workers=(WorkerPlan("process", (Step("local_take"),)),)))
    # the pool is still usable afterwards
    assert jostle.judge(counter_spec(pr.FileCounter), jostle.execute(
        counter_spec(pr.FileCounter),
        Scenario(workers=(WorkerPlan("process", (Step("take"),)),)))).ok


def test_unshareable_resource_for_a_process_worker() -> None:
    """A resource that cannot be pickled gets the handle protocol as the fix."""
    import threading

    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()

    class M:
        def take(self) -> int:
            return 1

    spec = jostle.spec(Holder, jostle.operation(pr.take, kinds=("process",)), model=M)
    with pytest.raises(jostle.SpecTypeError, match="__jostle_handle__"):
        jostle.execute(spec, Scenario(workers=(WorkerPlan("process", (Step("take"),)),)))


def _faults() -> jostle.Spec:
    kinds = ("process",)
    return jostle.spec(pr.FileCounter, *(jostle.operation(fn, kinds=kinds) for fn in (
        pr.crash, pr.sigkill, pr.segfault, pr.hang_in_c)), model=pr.FaultModel)


@pytest.mark.slow
@pytest.mark.parametrize(("op", "how"), [("sigkill", "SIGKILL"), ("crash", "exit status 3"),
                                         ("segfault", "SIGSEGV")])
def test_a_worker_killed_mid_operation_is_a_finding_and_the_campaign_goes_on(op: str,
                                                                              how: str) -> None:
    """SIGKILL, os._exit and a segfault in C code mid-operation: each is a
    WorkerCrashed failure naming the operation, with the scenario to replay;
    the pool replaces the worker and the next run passes."""
    from hypothesis import settings

    spec = jostle.spec(pr.FileCounter, jostle.operation(getattr(pr, op), kinds=("process",)),
                       model=pr.FaultModel)
    with pytest.raises(jostle.WorkerCrashed) as info:
        jostle.run(spec, settings=settings(max_examples=5, database=None), max_workers=1,
                   max_ops=1, max_prefix=0, max_suffix=0, repeats=1)
    text = str(info.value)
    assert f"{op}()" in text and how in text, text
    assert "jostle.replay(" in text  # the schedule to copy and paste
    spec_ok = jostle.spec(pr.FileCounter, jostle.operation(pr.take, kinds=("process",)),
                          model=pr.CounterModel)
    jostle.run(spec_ok, settings=settings(max_examples=3, database=None), max_workers=2,
               max_ops=2, max_prefix=0, max_suffix=0, repeats=1)
    assert all(w.alive for w in get_engine().processes._workers)


@pytest.mark.slow
def test_a_worker_hung_in_c_code_is_reported_with_its_stack_and_killed() -> None:
    """An operation blocked in a system call (no Python runs, nothing to
    preempt) hangs neither jostle nor the next run: a Hang naming the line,
    the worker killed and replaced."""
    spec = _faults()
    run = jostle.execute(spec, Scenario(workers=(WorkerPlan("process", (Step("hang_in_c"),)),)),
                         timeout=0.5)
    verdict = jostle.judge(spec, run)
    assert [f.kind for f in verdict.findings] == ["hang"], verdict.findings
    assert "hang_in_c" in verdict.findings[0].detail
    with open(pr.__file__) as f:
        line = next(n for n, text in enumerate(f, 1) if "os.read(r, 1)" in text)
    assert f"blocked at {pr.__file__}:{line}" in verdict.findings[0].detail
    ok = jostle.execute(counter_spec(pr.FileCounter), Scenario(
        workers=(WorkerPlan("process", (Step("take"),)),)))
    assert jostle.judge(counter_spec(pr.FileCounter), ok).ok
