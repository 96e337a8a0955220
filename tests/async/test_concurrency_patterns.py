"""Concurrent scenarios: Hypothesis finds planted races and shrinks them."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings, strategies as st

import jostle

import async_resources as ar

SESSIONS = jostle.spec(ar.SessionCache, jostle.operation(ar.get_session), model=ar.SessionModel,
                       invariants=[ar.one_session])
LOCKED = jostle.spec(ar.LockedSessionCache, jostle.operation(ar.get_session),
                     model=ar.SessionModel, invariants=[ar.one_session])


def test_check_then_act_across_await_is_found_and_shrunk() -> None:
    """Two tasks creating a session at once is found, shrunk to 2 workers x 1 op."""
    test = jostle.concurrent_test(SESSIONS, repeats=1, settings=settings(max_examples=100))
    with pytest.raises(jostle.ConcurrencyFailure) as info:
        test()
    verdict = info.value.verdict  # type: ignore[attr-defined]
    scenario = verdict.execution.scenario
    assert scenario.size == (2, 1)
    assert scenario.prefix == () and scenario.suffix == ()
    assert "2 sessions created" in str(info.value)


def test_locked_twin_passes() -> None:
    """The fixed cache passes the same search."""
    jostle.concurrent_test(LOCKED, repeats=2, settings=settings(max_examples=30))()


def test_cancellation_leak_is_found_by_the_invariant() -> None:
    """A client timeout between acquire and try leaks a connection: the invariant says so."""
    spec = jostle.spec(ar.Pool, jostle.operation(
        ar.query_with_timeout, st.just("q"), st.sampled_from([None, 1, 2])),
        model=ar.PoolModel, invariants=[ar.nothing_leaked])
    with pytest.raises(jostle.InvariantViolated, match="leaked"):
        jostle.run(spec, repeats=1, max_workers=1, max_ops=1, max_prefix=0, max_suffix=0,
                   settings=settings(max_examples=100))


def test_tasks_and_threads_share_one_resource() -> None:
    """A mixed scenario: loop tasks connect while threads push, checked as one history."""
    spec = jostle.spec(
        ar.Hub,
        jostle.operation(ar.connect, st.sampled_from([1, 2])),
        jostle.operation(ar.push, st.sampled_from([1, 2]), st.just("r")),
        model=ar.HubModel,
    )
    sc = jostle.Scenario(
        prefix=(jostle.Step("connect", (1,)),),
        workers=(jostle.WorkerPlan("task", (jostle.Step("connect", (2,)),)),
                 jostle.WorkerPlan("thread", (jostle.Step("push", (1, "r")),))),
    )
    run = jostle.execute(spec, sc)
    assert {(r.worker, r.kind) for r in run.history.ops} == {(0, "task"), (1, "task"),
                                                             (2, "thread")}
    assert jostle.judge(spec, run).ok
    jostle.run(spec, repeats=2, settings=settings(max_examples=20))


async def query(pool: ar.Pool, sql: str) -> object:
    try:
        return await pool.query(sql)
    except asyncio.CancelledError:
        return jostle.UNKNOWN


class QueryModel:
    def query(self, sql: str) -> str:
        return f"{sql}:ok"


@pytest.mark.slow
def test_an_injected_cancellation_replays_from_the_printed_line() -> None:
    """A leak only an injected cancellation shows is found with inject=True;
    the failure's replay line carries inject=True, and replaying the printed
    schedule with it fails the same way."""
    spec = jostle.spec(ar.Pool, jostle.operation(query, st.just("q")),
                       model=QueryModel, invariants=[ar.nothing_leaked])
    test = jostle.concurrent_test(spec, mode="controlled", inject=True, max_workers=1,
                                  max_ops=1, max_prefix=0, max_suffix=0,
                                  settings=settings(max_examples=100, database=None))
    with pytest.raises(jostle.InvariantViolated) as info:
        test()
    failure = info.value
    assert "inject=True)" in str(failure)
    scenario = failure.verdict.execution.scenario  # type: ignore[attr-defined]
    with pytest.raises(jostle.InvariantViolated):
        jostle.replay(spec, scenario, schedule=failure.schedule,  # type: ignore[attr-defined]
                      inject=True)


class TwoLocks:
    def __init__(self) -> None:
        self.a, self.b = asyncio.Lock(), asyncio.Lock()

    async def ab(self) -> None:
        async with self.a:
            await asyncio.sleep(0)
            async with self.b:  # ab waits here
                pass

    async def ba(self) -> None:
        async with self.b:
            await asyncio.sleep(0)
            async with self.a:  # ba waits here
                pass


async def ab(r: TwoLocks) -> None:
    await r.ab()


async def ba(r: TwoLocks) -> None:
    await r.ba()


class NoneModel:
    def ab(self) -> None:
        return None

    def ba(self) -> None:
        return None


def test_a_deadlock_of_tasks_names_each_task_and_where_it_waits() -> None:
    """Two tasks in ABBA order deadlock with no preemption: the report says
    which worker waits at which line, with each task's await stack."""
    from jostle._scheduler import ControlledScheduler
    from jostle._strategies import Preemptions

    spec = jostle.spec(TwoLocks, jostle.operation(ab), jostle.operation(ba), model=NoneModel)
    scenario = jostle.Scenario(workers=(jostle.WorkerPlan("task", (jostle.Step("ab"),)),
                                        jostle.WorkerPlan("task", (jostle.Step("ba"),))))
    execution = jostle.execute(spec, scenario, scheduler=ControlledScheduler(Preemptions()))
    line_ab = _line("async with self.b:  # ab waits here")
    line_ba = _line("async with self.a:  # ba waits here")
    assert execution.deadlock is not None
    assert (f"task 0 at test_concurrency_patterns.py:{line_ab}; "
            f"task 1 at test_concurrency_patterns.py:{line_ba}") in execution.deadlock
    assert {s.worker for s in execution.stuck} == {1, 2}
    assert all((s.kind == "task" and "in ab\n" in s.stack) or "in ba\n" in s.stack
               for s in execution.stuck)


def _line(text: str) -> int:
    with open(__file__, encoding="utf-8") as f:
        return next(i for i, line in enumerate(f, start=1) if line.rstrip().endswith(text))
