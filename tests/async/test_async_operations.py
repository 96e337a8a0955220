"""Async operations run as tasks on jostle's loop, with cancellation as pending."""

from __future__ import annotations

import asyncio

from hypothesis import strategies as st

import jostle
from jostle import Scenario, Step, WorkerPlan

import async_resources as ar


class Box:
    """Built inside the running loop, so its asyncio.Lock binds to that loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()
        self.items: list[int] = []


async def add(box: Box, x: int) -> int:
    async with box.lock:
        await asyncio.sleep(0)
        box.items.append(x)
        return len(box.items)


async def on_right_loop(box: Box) -> bool:
    return asyncio.get_running_loop() is box.loop


class BoxModel:
    def __init__(self) -> None:
        self.n = 0

    def add(self, x: int) -> int:
        self.n += 1
        return self.n

    def on_right_loop(self) -> bool:
        return True


BOX = jostle.spec(Box, jostle.operation(add, st.integers(0, 3)),
                  jostle.operation(on_right_loop), model=BoxModel)


def test_async_operations_run_as_tasks_on_the_resource_loop() -> None:
    """Each task worker awaits its ops on the loop the resource was built on."""
    sc = Scenario(workers=(WorkerPlan("task", (Step("add", (1,)), Step("on_right_loop"))),
                           WorkerPlan("task", (Step("add", (2,)),))))
    run = jostle.execute(BOX, sc)
    assert {r.kind for r in run.history.ops} == {"task"}
    assert [r.outcome for r in run.history.ops if r.op == "on_right_loop"] == [
        jostle.Returned(True)]
    assert jostle.judge(BOX, run).ok


def test_async_ops_in_prefix_and_suffix_run_on_the_loop() -> None:
    """Sequential async steps are awaited on the loop too (worker 0, kind task)."""
    sc = Scenario(prefix=(Step("add", (0,)),), suffix=(Step("on_right_loop"),))
    run = jostle.execute(BOX, sc)
    assert [(r.worker, r.kind, r.phase) for r in run.history.ops] == [
        (0, "task", "prefix"), (0, "task", "suffix")]
    assert jostle.judge(BOX, run).ok


async def cancelled(box: Box) -> int:
    raise asyncio.CancelledError


class CancelModel:
    def cancelled(self) -> int:
        return 1


def test_a_cancelled_operation_is_pending() -> None:
    """CancelledError out of an op records an unknown outcome, not a failure."""
    spec = jostle.spec(Box, jostle.operation(cancelled), model=CancelModel)
    run = jostle.execute(spec, Scenario(workers=(WorkerPlan("task", (Step("cancelled"),)),)))
    (rec,) = run.history.ops
    assert rec.outcome == jostle.Unknown("cancelled")
    assert jostle.judge(spec, run).ok


def test_returning_unknown_marks_the_operation_pending() -> None:
    """An op that gives up on a sub-task returns jostle.UNKNOWN and is pending."""
    spec = jostle.spec(ar.SafePool, jostle.operation(
        ar.query_with_timeout, st.just("q"), st.sampled_from([None, 1])),
        model=ar.PoolModel, invariants=[ar.nothing_leaked])
    run = jostle.execute(spec, Scenario(workers=(
        WorkerPlan("task", (Step("query_with_timeout", ("q", 1)),)),)))
    (rec,) = run.history.ops
    assert rec.outcome == jostle.Unknown("unknown")
    assert jostle.judge(spec, run).ok


def make_coroutine(box: Box) -> object:
    return add(box, 1)


class CoroModel:
    def make_coroutine(self) -> int:
        return 1


def test_sync_operation_returning_a_coroutine_is_flagged() -> None:
    """A plain function that returns a coroutine is reported with the fix, never awaited."""
    spec = jostle.spec(Box, jostle.operation(make_coroutine), model=CoroModel)
    run = jostle.execute(spec, Scenario(workers=(WorkerPlan("thread", (Step("make_coroutine"),)),)))
    (finding,) = jostle.judge(spec, run).findings
    assert finding.kind == "exception"
    assert "async def make_coroutine" in finding.summary
