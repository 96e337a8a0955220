"""Cleanup after failures: teardown always runs, stuck tasks and loops are replaced."""

from __future__ import annotations

import asyncio
import threading

import pytest

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._engine import get_engine

CLOSED: list[str] = []


class Conn:
    def __init__(self) -> None:
        self.never = asyncio.Event()

    async def aclose(self) -> None:
        CLOSED.append("aclose")


async def fail(conn: Conn) -> None:
    raise RuntimeError("boom")


async def wait_forever(conn: Conn) -> None:
    await conn.never.wait()


def block_loop(conn: Conn) -> None:
    threading.Event().wait()  # blocks the loop thread itself


class Model:
    def fail(self) -> None:
        return None

    def wait_forever(self) -> None:
        return None

    def block_loop(self) -> None:
        return None


SPEC = jostle.spec(Conn, jostle.operation(fail), jostle.operation(wait_forever),
                   jostle.operation(block_loop, kinds=("task",)), model=Model)


def test_teardown_runs_after_a_failing_operation() -> None:
    """aclose() is awaited even when an operation raised."""
    CLOSED.clear()
    run = jostle.execute(SPEC, Scenario(workers=(WorkerPlan("task", (Step("fail"),)),)))
    assert CLOSED == ["aclose"]
    assert jostle.judge(SPEC, run).findings[0].kind == "exception"


@pytest.mark.slow
def test_stuck_task_is_cancelled_and_the_loop_lives_on() -> None:
    """A task waiting forever is a hang; it is cancelled and the same loop is reused."""
    engine = get_engine()
    loop_before = engine.loop
    run = jostle.execute(SPEC, Scenario(workers=(WorkerPlan("task", (Step("wait_forever"),)),)),
                         timeout=0.3)
    assert run.hung and "wait_forever" in run.stuck[0].stack
    assert engine.loop is loop_before
    assert jostle.judge(SPEC, jostle.execute(
        SPEC, Scenario(workers=(WorkerPlan("task", (Step("fail"),)),)))).findings


@pytest.mark.slow
def test_blocked_loop_is_replaced() -> None:
    """Sync code blocking the loop thread is reported, and a fresh loop takes over."""
    engine = get_engine()
    loop_before = engine.loop
    run = jostle.execute(SPEC, Scenario(workers=(WorkerPlan("task", (Step("block_loop"),)),)),
                         timeout=0.3)
    assert run.hung
    assert "event loop thread blocked" in run.stuck[0].stack
    assert engine.loop is not loop_before
    CLOSED.clear()
    jostle.execute(SPEC, Scenario(workers=(WorkerPlan("task", (Step("fail"),)),)))
    assert CLOSED == ["aclose"]


class BadClose:
    def close(self) -> None:
        raise OSError("disk gone")


def noop(r: BadClose) -> None:
    return None


class NoopModel:
    def noop(self) -> None:
        return None


def test_failing_teardown_is_reported() -> None:
    """An exception from close() is a finding, not swallowed."""
    spec = jostle.spec(BadClose, jostle.operation(noop), model=NoopModel)
    verdict = jostle.judge(spec, jostle.execute(spec, Scenario(prefix=(Step("noop"),))))
    assert [f.kind for f in verdict.findings] == ["teardown"]
    assert "disk gone" in verdict.findings[0].summary
