"""The controlled event loop: ready order, virtual time and cancellations as choices."""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import importlib
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from jostle._control import Controller, Strategy
from jostle._controlled_loop import (
    AsyncDeadlock,
    ControlledEventLoop,
    LoopLivelock,
    LoopRun,
    UncontrolledWait,
    run_controlled,
)

Factory = Callable[[], Coroutine[Any, Any, Any]]
# shared/ lies beside the checkout, in CI too
BUGZOO = str(Path(__file__).resolve().parents[3] / "shared" / "bugzoo")


# -- strategies ----------------------------------------------------------------
class AlwaysZero(Strategy):
    """The stock order, never an injection."""

    def pick(self, step: int, options: int, what: str) -> int:
        return 0


class AnswerAt(Strategy):
    """Answer ``answers[step]`` at that step, 0 elsewhere."""

    def __init__(self, answers: dict[int, int]) -> None:
        self.answers = answers

    def pick(self, step: int, options: int, what: str) -> int:
        return self.answers.get(step, 0)


class Seeded(Strategy):
    """Uniform ready order; an injection with probability ``p``."""

    def __init__(self, seed: int, *, p: float = 0.1) -> None:
        self.rng = random.Random(seed)
        self.p = p

    def pick(self, step: int, options: int, what: str) -> int:
        if what.startswith("inject"):
            return int(self.rng.random() < self.p)
        return self.rng.randrange(options)


class Enumerator(Strategy):
    """Replay ``prefix``, then answer 0; record every choice and its options."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix = prefix
        self.trail: list[tuple[int, int]] = []

    def pick(self, step: int, options: int, what: str) -> int:
        i = len(self.trail)
        choice = self.prefix[i] if i < len(self.prefix) else 0
        self.trail.append((choice, options))
        return choice


def every_schedule(run: Callable[[Strategy], Any], *, limit: int = 20_000) -> Iterator[Any]:
    """Depth-first over the whole decision tree; fails if it exceeds ``limit``."""
    prefix: list[int] = []
    for _ in range(limit):
        strategy = Enumerator(prefix)
        yield run(strategy)
        trail = strategy.trail
        while trail and trail[-1][0] + 1 >= trail[-1][1]:
            trail.pop()
        if not trail:
            return
        prefix = [c for c, _ in trail[:-1]] + [trail[-1][0] + 1]
    raise AssertionError(f"more than {limit} schedules: bound the scenario")


def _task_name() -> str:
    task = asyncio.current_task()
    assert task is not None
    return task.get_name()


@pytest.fixture
def loop() -> Iterator[ControlledEventLoop]:
    lp = ControlledEventLoop()
    yield lp
    lp.close()


# -- scenarios -----------------------------------------------------------------
def three_by_five(trace: list[tuple[int, object]]) -> list[Factory]:
    """3 tasks x 5 awaits over sleep(0), a Lock, a Queue and an Event."""
    lock = asyncio.Lock()
    queue: asyncio.Queue[int] = asyncio.Queue()
    event = asyncio.Event()

    async def worker(i: int) -> int:
        trace.append((i, "start"))
        await asyncio.sleep(0)
        trace.append((i, "slept"))
        async with lock:
            await asyncio.sleep(0)
            trace.append((i, "locked"))
        await queue.put(i)
        got = await queue.get()
        trace.append((i, got))
        if i == 2:
            event.set()
        await event.wait()
        trace.append((i, "end"))
        return i

    return [functools.partial(worker, i) for i in range(3)]


class Client:
    """Lazily creates its session: check-then-act across an await."""

    def __init__(self) -> None:
        self.session: object | None = None
        self.created = 0

    async def _create(self) -> object:
        await asyncio.sleep(0)
        self.created += 1
        return object()

    async def get(self) -> object:
        if self.session is None:
            self.session = await self._create()
        return self.session


class LockedClient(Client):
    """The correct twin: double-checked under an asyncio.Lock."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = asyncio.Lock()

    async def get(self) -> object:
        if self.session is None:
            async with self.lock:
                if self.session is None:
                    self.session = await self._create()
        return self.session


def two_requests(client: Client) -> list[Factory]:
    """Two requests; the second first does other work, so FIFO order misses the race."""

    async def first() -> int:
        await client.get()
        return client.created

    async def second() -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await client.get()
        return client.created

    return [first, second]


class Empty(Exception):
    """No job arrived in time."""


class WorkQueue:
    """Consumer waits with ``if`` instead of ``while`` (a stolen item)."""

    def __init__(self) -> None:
        self.items: collections.deque[int] = collections.deque()
        self.cond = asyncio.Condition()

    async def put(self, job: int) -> None:
        async with self.cond:
            self.items.append(job)
            self.cond.notify()

    async def get(self, timeout: float = 0.02) -> int:
        async with self.cond:
            if not self.items:
                try:
                    await asyncio.wait_for(self.cond.wait(), timeout)
                except asyncio.TimeoutError:
                    raise Empty from None
            return self.items.popleft()


class CorrectWorkQueue(WorkQueue):
    """The correct twin: waits for the predicate."""

    async def get(self, timeout: float = 0.02) -> int:
        async with self.cond:
            try:
                await asyncio.wait_for(self.cond.wait_for(lambda: self.items), timeout)
            except asyncio.TimeoutError:
                raise Empty from None
            return self.items.popleft()


def consumer_and_producer(q: WorkQueue) -> list[Factory]:
    """C1: get(); T2: put(1) then get()."""

    async def consumer() -> int:
        return await q.get()

    async def producer() -> int:
        await q.put(1)
        return await q.get()

    return [consumer, producer]


class Pool:
    """A pool whose query awaits reset() before entering its try/finally."""

    def __init__(self, size: int = 2) -> None:
        self.checked_out = 0
        self.sem = asyncio.Semaphore(size)

    async def reset(self) -> None:
        await asyncio.sleep(0)

    async def execute(self, sql: str) -> str:
        await asyncio.sleep(0)
        return f"{sql}:ok"

    async def query(self, sql: str) -> str:
        await self.sem.acquire()
        self.checked_out += 1
        await self.reset()
        try:
            return await self.execute(sql)
        finally:
            self.checked_out -= 1
            self.sem.release()


class SafePool(Pool):
    """The correct twin: the try starts right after the acquire."""

    async def query(self, sql: str) -> str:
        await self.sem.acquire()
        self.checked_out += 1
        try:
            await self.reset()
            return await self.execute(sql)
        finally:
            self.checked_out -= 1
            self.sem.release()


# -- ready order -------------------------------------------------------------
def test_always_zero_reproduces_the_stock_loop_order(loop: ControlledEventLoop) -> None:
    """With every answer 0 the trace of 3 tasks x 5 awaits equals stock asyncio's."""
    stock: list[tuple[int, object]] = []

    async def main() -> list[int]:
        tasks = [asyncio.create_task(f()) for f in three_by_five(stock)]
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [0, 1, 2]
    controlled: list[tuple[int, object]] = []
    run = run_controlled(three_by_five(controlled), AlwaysZero(), loop=loop)
    assert run.ok and run.results == (0, 1, 2)
    assert controlled == stock
    assert run.decisions == ()


def test_other_answers_give_other_orders(loop: ControlledEventLoop) -> None:
    """Answering 1 at the first choice runs task 1 before task 0."""
    trace: list[tuple[int, object]] = []
    run = run_controlled(three_by_five(trace), AnswerAt({1: 1}), loop=loop)
    assert trace[0] == (1, "start")
    assert [(d.step, d.kind, d.target) for d in run.decisions] == [(1, "pick", 1)]
    assert run.decisions[0].label == "ready: task 0 | task 1 | task 2"


def test_check_then_act_across_await_is_found(loop: ControlledEventLoop) -> None:
    """The FIFO order misses the double session; some schedule creates two."""
    first = run_controlled(two_requests(Client()), AlwaysZero(), loop=loop)
    assert first.ok and max(first.results) == 1  # type: ignore[type-var]
    created = [max(r.results) for r in every_schedule(
        lambda s: run_controlled(two_requests(Client()), s, loop=loop))]
    assert 2 in created


def test_check_then_act_twin_passes_every_schedule(loop: ControlledEventLoop) -> None:
    """The locked client creates one session under every schedule."""
    runs = list(every_schedule(
        lambda s: run_controlled(two_requests(LockedClient()), s, loop=loop)))
    assert len(runs) > 10
    assert all(r.ok and r.results[-1] == 1 for r in runs)


def test_condition_if_instead_of_while_is_found(loop: ControlledEventLoop) -> None:
    """The woken consumer pops an empty deque: IndexError."""
    errors = [type(e) for r in every_schedule(
        lambda s: run_controlled(consumer_and_producer(WorkQueue()), s, loop=loop))
        for e in r.exceptions if e is not None]
    assert IndexError in errors


def test_condition_twin_passes_every_schedule(loop: ControlledEventLoop) -> None:
    """With wait_for(predicate) no schedule raises anything but Empty."""
    runs = list(every_schedule(
        lambda s: run_controlled(consumer_and_producer(CorrectWorkQueue()), s, loop=loop)))
    for r in runs:
        assert r.stuck is None
        assert {type(e) for e in r.exceptions if e is not None} <= {Empty}
        assert sorted(v for v in r.results if v is not None) in ([], [1])


def _one_query(pool_cls: type[Pool], loop: ControlledEventLoop, workers: int = 1
               ) -> Callable[[Strategy], tuple[LoopRun, int]]:
    def run(strategy: Strategy) -> tuple[LoopRun, int]:
        pool = pool_cls()
        factories = [functools.partial(pool.query, f"q{i}") for i in range(workers)]
        return run_controlled(factories, strategy, loop=loop, inject=True), pool.checked_out
    return run


def test_pool_cancel_leak_is_found_with_one_injection(loop: ControlledEventLoop) -> None:
    """An injected cancellation at reset() leaks the connection; one injection suffices."""
    run, leaked = _one_query(Pool, loop)(AlwaysZero())
    assert leaked == 0 and run.injections == 0
    failing = [(r, n) for r, n in every_schedule(_one_query(Pool, loop)) if n]
    assert failing
    run, leaked = failing[0]
    assert leaked == 1 and run.injections == 1
    assert isinstance(run.exceptions[0], asyncio.CancelledError)
    assert [d.label for d in run.decisions] == ["inject:cancel task 0"]
    assert "test_controlled_loop.py" in run.injected[0] and "task 0 at" in run.injected[0]


def test_pool_twin_passes_every_schedule(loop: ControlledEventLoop) -> None:
    """Two workers, every ready order and every injection: the safe pool never leaks."""
    outcomes = list(every_schedule(_one_query(SafePool, loop, workers=2)))
    assert len(outcomes) > 50
    assert max(r.injections for r, _ in outcomes) == 2
    assert all(n == 0 and r.stuck is None for r, n in outcomes)


def test_max_injections_bounds_injections(loop: ControlledEventLoop) -> None:
    """With max_injections=1 no run injects twice."""
    def run(strategy: Strategy) -> LoopRun:
        pool = SafePool()
        return run_controlled([lambda: pool.query("a"), lambda: pool.query("b")], strategy,
                              loop=loop, inject=True, max_injections=1)
    assert max(r.injections for r in every_schedule(run)) == 1


# -- virtual time ------------------------------------------------------------
def test_sleep_completes_instantly_in_virtual_time(loop: ControlledEventLoop) -> None:
    """asyncio.sleep(10) costs no wall time and advances the clock by 10."""
    async def nap() -> float:
        await asyncio.sleep(10)
        return asyncio.get_running_loop().time()

    start = time.perf_counter()
    run = run_controlled([nap], loop=loop)
    assert time.perf_counter() - start < 1.0
    assert run.results == (10.0,) and run.virtual_time == 10.0


def test_wait_for_timeout_is_deterministic(loop: ControlledEventLoop) -> None:
    """wait_for(..., 0.02) on an event nobody sets times out at 0.02, every time."""
    async def waiter() -> tuple[str, float]:
        try:
            await asyncio.wait_for(asyncio.Event().wait(), 0.02)
        except asyncio.TimeoutError:
            return "timeout", asyncio.get_running_loop().time()
        return "set", 0.0

    runs = {run_controlled([waiter], Seeded(i), loop=loop).results for i in range(50)}
    assert runs == {(("timeout", 0.02),)}


def test_timers_due_together_run_in_either_order(loop: ControlledEventLoop) -> None:
    """Two sleeps ending at the same virtual time: both orders are choices."""
    def run(strategy: Strategy) -> tuple[int, ...]:
        trace: list[int] = []

        async def sleeper(i: int) -> float:
            await asyncio.sleep(1)
            trace.append(i)
            return asyncio.get_running_loop().time()

        r = run_controlled([functools.partial(sleeper, 0), functools.partial(sleeper, 1)],
                           strategy, loop=loop)
        assert r.results == (1.0, 1.0)
        return tuple(trace)

    assert run(AlwaysZero()) == (0, 1)
    assert set(every_schedule(run)) == {(0, 1), (1, 0)}


def test_call_later_timers_are_choices_too(loop: ControlledEventLoop) -> None:
    """call_later callbacks due together are ordered by the strategy."""
    def run(strategy: Strategy) -> tuple[str, ...]:
        trace: list[str] = []

        async def main() -> None:
            lp = asyncio.get_running_loop()
            done = lp.create_future()
            lp.call_later(0.5, trace.append, "a")
            lp.call_later(0.5, trace.append, "b")
            lp.call_later(0.75, done.set_result, None)
            await done

        run_controlled([main], strategy, loop=loop)
        return tuple(trace)

    assert set(every_schedule(run)) == {("a", "b"), ("b", "a")}


def test_plain_run_until_complete_uses_virtual_time(loop: ControlledEventLoop) -> None:
    """Outside run_controlled the loop is a normal loop with a virtual clock."""
    async def nap() -> float:
        await asyncio.sleep(3600)
        return asyncio.get_running_loop().time()

    assert loop.run_until_complete(nap()) == 3600.0


def test_plain_loop_serves_other_threads(loop: ControlledEventLoop) -> None:
    """Outside a controlled run an idle loop waits for call_soon_threadsafe, as stock."""
    fut = loop.create_future()
    t = threading.Thread(target=loop.call_soon_threadsafe, args=(fut.set_result, 7))
    t.start()
    assert loop.run_until_complete(fut) == 7
    t.join()


# -- replay and identities -----------------------------------------------------
def _replay_scenario(loop: ControlledEventLoop, strategy: Strategy) -> tuple[Any, ...]:
    client = Client()

    async def request(i: int) -> tuple[str, int, float]:
        lp = asyncio.get_running_loop()
        await asyncio.sleep(0.01 * i)
        sub = asyncio.ensure_future(client.get())
        await sub
        return _task_name(), client.created, lp.time()

    run = run_controlled([functools.partial(request, i) for i in range(3)], strategy,
                         loop=loop, inject=True)
    excs = tuple(type(e).__name__ if e else None for e in run.exceptions)
    return run.decisions, run.results, excs, run.injections, run.virtual_time, run.steps


def test_same_choices_replay_exactly_1000_times(loop: ControlledEventLoop) -> None:
    """Same strategy data, same decision log and results: 1000 out of 1000."""
    mismatches = 0
    for seed in range(10):
        reference = _replay_scenario(loop, Seeded(seed, p=0.2))
        for _ in range(100):
            mismatches += _replay_scenario(loop, Seeded(seed, p=0.2)) != reference
    assert mismatches == 0


def test_the_decision_log_alone_replays_a_run(loop: ControlledEventLoop) -> None:
    """Answering each logged (step, choice) and 0 elsewhere reproduces the run."""
    for seed in range(20):
        first = _replay_scenario(loop, Seeded(seed, p=0.2))
        assert _replay_scenario(loop, AnswerAt({d.step: d.target for d in first[0]})) == first


def test_task_identities_are_normalised(loop: ControlledEventLoop) -> None:
    """Traces and decisions name tasks by run-local index, not asyncio's global Task-N."""
    first = _replay_scenario(loop, Seeded(1, p=0.0))

    async def churn() -> None:
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(50)))

    asyncio.run(churn())  # the global Task-N counter moves on
    again = _replay_scenario(loop, Seeded(1, p=0.0))
    assert again == first
    assert [r[0] for r in first[1]] == ["task 0", "task 1", "task 2"]
    assert any("task 3" in d.label for d in first[0])


# -- stuck runs ----------------------------------------------------------------
def test_deadlock_is_reported_at_once_with_both_await_stacks(loop: ControlledEventLoop) -> None:
    """Two tasks awaiting each other's futures: a deadlock, with both await stacks."""
    futs: dict[str, asyncio.Future[None]] = {}

    async def wait_on(fut_name: str) -> None:
        await asyncio.sleep(0)
        await futs[fut_name]

    async def side(mine: str, other: str) -> None:
        futs[mine] = asyncio.get_running_loop().create_future()
        await wait_on(other)
        futs[mine].set_result(None)

    run = run_controlled([lambda: side("a", "b"), lambda: side("b", "a")], loop=loop)
    assert isinstance(run.stuck, AsyncDeadlock)
    assert run.steps == 4 and run.done == (False, False)
    assert [t.index for t in run.stuck.tasks] == [0, 1]
    for t in run.stuck.tasks:
        assert "in side" in t.stack and "in wait_on" in t.stack
        assert t.where is not None and t.where[0] == __file__
    text = str(run.stuck)
    assert "asyncio deadlock" in text and "task 0 ('task 0')" in text and "task 1" in text


def test_a_cancelled_leftover_callback_is_not_a_deadlock(loop: ControlledEventLoop) -> None:
    """Tasks done, only a cancelled callback left: the run ends cleanly."""
    async def cancels_its_callback() -> int:
        asyncio.get_running_loop().call_soon(print, "never").cancel()
        return 1

    run = run_controlled([cancels_its_callback], loop=loop)
    assert run.ok and run.results == (1,)


def test_livelock_is_reported_past_max_steps(loop: ControlledEventLoop) -> None:
    """A task spinning on sleep(0) for a flag nobody sets ends as a livelock."""
    async def spin() -> None:
        while True:
            await asyncio.sleep(0)

    run = run_controlled([spin], loop=loop, max_steps=50)
    assert isinstance(run.stuck, LoopLivelock) and run.steps == 50
    assert "max_steps=50" in str(run.stuck) and "in spin" in run.stuck.tasks[0].stack


def test_waiting_on_a_silent_socket_is_an_uncontrolled_wait() -> None:
    """A read nobody will satisfy is named (fd, callback), not a silent hang."""
    lp = ControlledEventLoop(uncontrolled_grace=0.0)
    a, b = socket.socketpair()
    try:
        a.setblocking(False)

        async def read() -> bytes:
            return await asyncio.get_running_loop().sock_recv(a, 10)

        run = run_controlled([read], loop=lp)
        assert isinstance(run.stuck, UncontrolledWait)
        assert f"fd {a.fileno()} to become readable" in str(run.stuck)
        b.send(b"hi")  # data already there: real I/O works
        assert run_controlled([read], loop=lp).results == (b"hi",)
    finally:
        a.close()
        b.close()
        lp.close()


def test_executor_jobs_are_uncontrolled_waits() -> None:
    """A run_in_executor job still running is named in the report."""
    lp = ControlledEventLoop(uncontrolled_grace=0.0)
    release = threading.Event()

    def blocked_job() -> int:
        release.wait()
        return 1

    async def offload() -> int:
        return await asyncio.get_running_loop().run_in_executor(None, blocked_job)

    try:
        run = run_controlled([offload], loop=lp)
        assert isinstance(run.stuck, UncontrolledWait)
        assert "executor job test_executor_jobs_are_uncontrolled_waits.blocked_job()" in str(
            run.stuck)
    finally:
        release.set()
        lp.close()


# -- reuse ---------------------------------------------------------------------
def test_loop_is_reused_100_times_without_leaks(loop: ControlledEventLoop) -> None:
    """Runs that finish, deadlock, leave tasks and timers behind: the loop ends empty."""
    async def leaves_a_sleeper() -> str:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        asyncio.get_running_loop().call_later(5, print, "never")
        return _task_name()

    async def stubborn() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # cleanup must let it unwind in virtual time
            raise

    closed: list[int] = []
    kept: list[Any] = []

    async def ticker() -> Any:
        try:
            while True:
                yield 1
        finally:
            closed.append(1)

    async def keeps_an_async_generator() -> None:
        agen = ticker()
        await agen.__anext__()
        kept.append(agen)  # alive after the run: cleanup must close it

    scenarios: list[list[Factory]] = [
        three_by_five([]),
        [leaves_a_sleeper, leaves_a_sleeper],
        [stubborn],
        two_requests(Client()),
        [keeps_an_async_generator],
    ]
    for i in range(100):
        run = run_controlled(scenarios[i % 5], Seeded(i), loop=loop, inject=i % 3 == 0)
        if i % 5 == 1 and not run.injections:
            assert run.results == ("task 0", "task 1")
        assert not loop._ready and not loop._scheduled
        assert not asyncio.all_tasks(loop)
        assert len(loop._selector.get_map()) == 1  # only the self-pipe
    assert len(closed) == len(kept) > 10
    del run  # its exceptions' tracebacks hold the last run's tasks
    gc.collect()
    live = [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and o.get_loop() is loop]
    assert live == []


def test_tasks_that_survive_cancellation_are_abandoned(loop: ControlledEventLoop) -> None:
    """Cleanup gives up on a task that swallows every cancellation; the loop stays usable."""
    held: list[Any] = []

    async def immortal() -> None:
        held[:] = [asyncio.current_task()]
        while len(held) < 3:
            try:
                fut = asyncio.get_running_loop().create_future()
                held[1:] = [fut]
                await fut
            except asyncio.CancelledError:
                pass

    run = run_controlled([immortal], loop=loop)
    assert isinstance(run.stuck, AsyncDeadlock)
    assert not loop._ready and not loop._scheduled
    assert run_controlled(two_requests(Client()), loop=loop).ok
    task, fut = held
    held.append("let it end")  # so the test leaves no pending task behind
    fut.set_result(None)
    loop.run_until_complete(task)


# -- attached to a controller ------------------------------------------------------
def test_attached_loop_shares_the_controllers_clock_with_a_thread() -> None:
    """A controlled thread sleeps 3 virtual seconds and wakes the loop's task; one clock."""
    controller = Controller(Strategy())
    loop_entity = controller.add("event loop")
    thread_entity = controller.add("worker 1 (thread)")
    lp = ControlledEventLoop()
    box: dict[str, asyncio.Future[float]] = {}

    def thread_body() -> None:
        controller.enter(thread_entity)
        controller.sleep(thread_entity, 3)
        lp.call_soon_threadsafe(box["fut"].set_result, controller.now)
        controller.finish(thread_entity)

    async def task() -> tuple[float, float]:
        box["fut"] = asyncio.get_running_loop().create_future()
        await asyncio.sleep(5)
        return await box["fut"], asyncio.get_running_loop().time()

    t = threading.Thread(target=thread_body)
    t.start()
    try:
        run = run_controlled([task], controller=controller, entity=loop_entity, loop=lp)
    finally:
        t.join()
        lp.close()
    assert run.results == ((3.0, 5.0),) and controller.now == 5.0
    assert [d.kind for d in controller.log if d.kind == "timeout"] == ["timeout", "timeout"]


def test_attached_deadlock_across_thread_and_loop() -> None:
    """The loop's task waits for a thread that finished: the controller's deadlock."""
    controller = Controller(Strategy())
    loop_entity = controller.add("event loop")
    thread_entity = controller.add("worker 1 (thread)")

    def thread_body() -> None:
        controller.enter(thread_entity)
        controller.finish(thread_entity)

    async def forever() -> None:
        await asyncio.get_running_loop().create_future()

    t = threading.Thread(target=thread_body)
    t.start()
    lp = ControlledEventLoop()
    try:
        run = run_controlled([forever], controller=controller, entity=loop_entity, loop=lp)
    finally:
        t.join()
        lp.close()
    assert isinstance(run.stuck, AsyncDeadlock) and "in forever" in run.stuck.tasks[0].stack
    assert controller.deadlock == [loop_entity]
    assert not lp._ready and not asyncio.all_tasks(lp)


def test_attached_picks_go_to_the_global_log() -> None:
    """Attached, ready-order choices are the controller's steps and land in its log."""
    controller = Controller(AnswerAt({1: 2}))
    trace: list[tuple[int, object]] = []
    lp = ControlledEventLoop()
    try:
        run = run_controlled(three_by_five(trace), controller=controller, loop=lp)
    finally:
        lp.close()
    assert run.ok and trace[0] == (2, "start")
    assert [d for d in controller.log if d.kind == "pick"] == list(run.decisions)


class SeededSwitch(Seeded):
    """Seeded picks, and a coin flip at every point to switch entity."""

    def next(self, step: int, current: Any, runnable: Any, *, preemptible: bool) -> Any:
        if current in runnable and (not preemptible or self.rng.random() < 0.5):
            return current
        return runnable[self.rng.randrange(len(runnable))]


def _mixed_run(seed: int, lp: ControlledEventLoop) -> tuple[Any, ...]:
    """A loop task and a controlled thread share a list; the thread posts to
    the loop, and a served() task keeps the loop up until the thread is done."""
    controller = Controller(SeededSwitch(seed))
    loop_entity = controller.add("event loop")
    thread_entity = controller.add("worker 1 (thread)")
    shared: list[str] = []
    threads_done = lp.create_future()

    def thread_body() -> None:
        controller.enter(thread_entity)
        for k in range(3):
            shared.append(f"thread {k}")
            controller.point(thread_entity, "thread op")
        lp.call_soon_threadsafe(shared.append, "posted")
        lp.call_soon_threadsafe(threads_done.set_result, None)
        controller.finish(thread_entity)

    async def task_worker() -> int:
        for k in range(3):
            shared.append(f"task {k}")
            await asyncio.sleep(0)
        return len(shared)

    async def served() -> None:
        await threads_done

    t = threading.Thread(target=thread_body)
    t.start()
    try:
        run = run_controlled([task_worker, served], controller=controller,
                             entity=loop_entity, loop=lp)
    finally:
        t.join()
    return run.results, run.stuck, tuple(shared), tuple(controller.log)


def test_mixed_runs_serve_threads_and_replay(loop: ControlledEventLoop) -> None:
    """Thread and loop interleave by the controller's choices; same seed, same run."""
    shapes = set()
    for seed in range(30):
        first = _mixed_run(seed, loop)
        assert first[1] is None and "posted" in first[2]
        assert _mixed_run(seed, loop) == first
        shapes.add(first[2])
    assert len(shapes) > 3


def test_strategy_and_controller_must_agree() -> None:
    """Passing a second strategy with a controller is a clear ValueError."""
    with pytest.raises(ValueError, match="pass strategy=None"):
        run_controlled([], AlwaysZero(), controller=Controller(Strategy()))


# -- eager tasks ---------------------------------------------------------------------
@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager task factory is 3.12+")
def test_eager_task_factory_is_detected_and_supported(loop: ControlledEventLoop) -> None:
    """With the eager factory children start inside their creator; identities stay stable."""
    assert not loop.eager_tasks
    loop.set_task_factory(getattr(asyncio, "eager_task_factory"))  # noqa: B009 - 3.12+
    assert loop.eager_tasks

    async def parent() -> tuple[str, ...]:
        async def child() -> str:
            name = _task_name()
            await asyncio.sleep(0)
            return name
        return tuple(await asyncio.gather(child(), child()))

    runs = {run_controlled([parent], Seeded(i), loop=loop).results[0] for i in range(20)}
    assert runs == {("task 1", "task 2")}
    loop.set_task_factory(None)


# -- the real bugzoo cases -------------------------------------------------------------
def _bugzoo_asyncio_cases() -> list[Any]:
    if not os.path.isdir(os.path.join(BUGZOO, "cases")):
        return []
    sys.path.insert(0, BUGZOO)
    try:
        cases = importlib.import_module("cases")
        mods = [cases.load(c) for c in cases.case_ids() if c.startswith("a")]
    finally:
        sys.path.remove(BUGZOO)
    return [m for m in mods if m.KIND == "asyncio"]


async def _bugzoo_worker(resource: object, plan: list[tuple[Any, tuple[Any, ...]]],
                         errors: list[BaseException]) -> None:
    for op, args in plan:
        try:
            await op.fn(resource, *args)
        except Exception as exc:
            errors.append(exc)


def _bugzoo_finds(mod: Any, cls: Any, loop: ControlledEventLoop, tries: int) -> int | None:
    """The first try (random plan and schedule) that fails, judged generically:
    a stuck run, an exception the case does not expect, or a broken invariant."""
    ops = [op for op in mod.OPERATIONS if not op.observer]
    expected = set(getattr(mod, "EXPECTED_ERRORS", ())) | {"CancelledError"}
    per_worker = mod.MINIMAL["ops_per_worker"]
    workers = mod.MINIMAL["workers"]
    counts = per_worker if isinstance(per_worker, list) else [per_worker] * workers

    async def build() -> object:
        return cls()

    for attempt in range(tries):
        rng = random.Random(attempt)
        resource = loop.run_until_complete(build())
        plans = [[(op, rng.choice(op.arg_combos())) for op in rng.choices(ops, k=n)]
                 for n in counts]
        errors: list[BaseException] = []
        run = run_controlled([functools.partial(_bugzoo_worker, resource, p, errors)
                              for p in plans], Seeded(attempt),
                             loop=loop, inject=True, max_injections=1, max_steps=5_000)
        bad = run.stuck is not None or any(type(e).__name__ not in expected for e in errors)
        invariant = getattr(mod, "invariant", None)
        if not bad and invariant is not None:
            try:
                invariant(resource)
            except AssertionError:
                bad = True
        if bad:
            return attempt
    return None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="bugzoo needs 3.11+ (Task.cancelling)")
@pytest.mark.parametrize("case_id", ["a01", "a03", "a07"])
def test_bugzoo_asyncio_cases_found_and_twins_pass(case_id: str,
                                                   loop: ControlledEventLoop) -> None:
    """Each bugzoo asyncio case fails under some plan and schedule; its Fixed never does."""
    mods = [m for m in _bugzoo_asyncio_cases() if m.__name__.split(".")[-1].startswith(case_id)]
    if not mods:
        pytest.skip(f"bugzoo case {case_id} not available at {BUGZOO}")
    mod = mods[0]
    assert _bugzoo_finds(mod, mod.Buggy, loop, tries=300) is not None
    assert _bugzoo_finds(mod, mod.Fixed, loop, tries=300) is None

