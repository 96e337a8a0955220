"""Dogfooding: jostle's own shared state as the resource under test.

jostle is a concurrent program: pytest-xdist workers write failure folders
into one directory, its worker pools are shared by every execution and
cancelled or killed mid-job, and controlled mode passes a baton between real
threads.  Each campaign here points jostle's public API at one of those
components, with a sequential model of what it must do:

* **Failure folders** (``FailureFolder``): threads *and* process workers
  save failures of two bugs into one ``.jostle`` directory with the real
  writer (``FailureStore.save``: atomic replace, one ``flock`` per folder,
  "the smaller scenario wins") and read the stored ``report.json`` back.
  The model is what the directory should say: per bug, the smallest
  scenario saved and how many times it was found.  The invariant: every
  folder on disk is complete and parseable (all four files, valid JSON, a
  ``repro.py`` that compiles, no temporary file left).  It would catch a
  lost update between two writers (the lock removed: ``times_found`` comes
  out one short, or a larger scenario overwrites a smaller one), a torn
  write (a reader parsing half a ``report.json``), and a folder left with
  some of its files.
* **Worker pools** (``WorkerBench``, ``ProcessBench``): threads borrow
  jostle's thread pool's threads and run jobs on them, abandon them, run
  coroutines on its loop thread and cancel them; others borrow process
  workers from its ``ProcessPool``, SIGKILL them and discard them.  The
  model: every borrow gets what it asked for.  The invariants: no worker is
  handed out to two borrowers at once, an abandoned thread or a dead or
  discarded process is never handed out again (killed workers are
  replaced), the pool never holds more live workers than were ever
  borrowed at once, and (jostle's leak check, on by default) no thread,
  process or file descriptor survives ``close()``.
* **The scheduler's handoff** (``BatonBench``): each operation builds a
  ``Controller`` (the baton of controlled mode) and runs a tiny program of
  scheduling points, blocks and wakes on real threads, one entity a
  thread, under a deterministic strategy drawn by Hypothesis; several such
  runs go on at once from jostle's workers with a 1 µs switch interval.  The
  model is an independent, sequential simulation of the baton's rules (who
  runs after each point, block and finish; when it is a deadlock), so the
  trace a run returns must equal the simulated one: the same schedule
  replays the same trace.  An invariant checks mutual exclusion (never two
  entities running at once).  A second operation aborts a run from a
  watchdog thread in the middle of its handoffs (the one path where two
  threads drive the controller at once): every entity thread must unwind
  and ``wait()`` return.  It would catch a handoff that lets the giver run
  on, a wake that wakes the wrong waiters, a miscounted step (replays
  diverge), and an abort that loses or double-releases a parked entity (a
  hang, or two entities at once).

``tests/test_dogfood.py`` plants a bug in each component (a subclass with
the lock or a check removed) and shows the campaign finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

import jostle
from jostle._control import Aborted, Controller, Entity, Strategy
from jostle._findings import FailureStore, TestRef, failure_id, size_key
from jostle._loop import LoopThread
from jostle._processes import ProcessPool, ProcessWorker
from jostle._threads import PoolThread, ThreadPool

# ---------------------------------------------------------------------------
# a. Failure folders written by threads and processes at once.

BUGS = st.sampled_from(["a", "b"])
FOLDER_FILES = frozenset({".lock", "report.json", "repro.py", "timeline.svg", "report.html"})


def planted_failure(bug: str, ops: int) -> tuple[TestRef, jostle.ConcurrencyFailure]:
    """A failure of test ``dogfood::<bug>`` whose scenario has ``ops`` operations."""
    steps = tuple(jostle.Step("put", (i,)) for i in range(ops))
    scenario = jostle.Scenario(workers=(jostle.WorkerPlan("thread", steps),))
    history = jostle.History(tuple(
        jostle.OpRecord(i, 1, "thread", "parallel", "put", (i,), 1000 * i, 1000 * i + 500,
                        jostle.Returned(None))
        for i in range(ops)))
    execution = jostle.Execution(scenario, history, "stress (dogfood)", 1.0,
                                 resource_name="Planted")
    finding = jostle.Finding("linearizability", "not linearizable: planted", "planted", None)
    failure = jostle.NotLinearizable(f"planted failure of bug {bug}")
    failure.verdict = jostle.Verdict(execution, (finding,), None)  # type: ignore[attr-defined]
    failure.schedule = None  # type: ignore[attr-defined]
    here = os.path.abspath(__file__)
    ref = TestRef(test_id=f"dogfood::{bug}", module="dogfood", file=here, attr=f"test_{bug}",
                  root=os.path.dirname(here))
    return ref, failure


class FailureFolder:
    """A temporary jostle directory; process workers open it by path."""

    store_class: type[FailureStore] = FailureStore

    def __init__(self, path: str | None = None) -> None:
        self._owner = path is None
        self.path = path if path is not None else tempfile.mkdtemp(prefix="jostle-dogfood-")
        self.store = self.store_class(self.path)

    def __jostle_handle__(self) -> FolderHandle:
        return FolderHandle(type(self), self.path)

    def close(self) -> None:
        if self._owner:
            shutil.rmtree(self.path, ignore_errors=True)


class FolderHandle:
    """Picklable: the class and the path (jostle's handle protocol)."""

    def __init__(self, cls: type[FailureFolder], path: str) -> None:
        self.cls, self.path = cls, path

    def attach(self) -> FailureFolder:
        return self.cls(self.path)


def save(folder: FailureFolder, bug: str, ops: int) -> bool:
    """Save a failure of ``bug``; whether its folder now holds this scenario."""
    ref, failure = planted_failure(bug, ops)
    _fid, _path, written = folder.store.save(ref, failure, status="final", context={},
                                             first_in_run=True)
    return written


def read(folder: FailureFolder, bug: str) -> tuple[int, int] | None:
    """The stored scenario's size and times found, or None before the first save."""
    ref, failure = planted_failure(bug, 1)
    path = folder.store.folder(failure_id(ref.test_id, failure, ref.root)) / "report.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    record = json.loads(text)  # a torn write fails here
    return size_key(record)[0], int(record["times_found"])


class FolderModel:
    """What the directory says after the saves, one at a time."""

    def __init__(self) -> None:
        self.stored: dict[str, tuple[int, int]] = {}

    def save(self, bug: str, ops: int) -> bool:
        size, times = self.stored.get(bug, (ops, 0))
        written = times == 0 or ops <= size
        self.stored[bug] = (ops if written else size, times + 1)
        return written

    def read(self, bug: str) -> tuple[int, int] | None:
        return self.stored.get(bug)


def folders_complete(folder: FailureFolder) -> None:
    """Every failure folder holds all its files, each one whole."""
    failures = Path(folder.path) / "failures"
    for sub in sorted(failures.iterdir()) if failures.is_dir() else ():
        names = {p.name for p in sub.iterdir()}
        assert names == FOLDER_FILES, f"{sub.name}: has {sorted(names)}"
        record = json.loads((sub / "report.json").read_text(encoding="utf-8"))
        assert record["id"] == sub.name, f"{sub.name}: report.json is about {record['id']}"
        compile((sub / "repro.py").read_text(encoding="utf-8"), str(sub / "repro.py"), "exec")
        assert (sub / "timeline.svg").read_text(encoding="utf-8").rstrip().endswith("</svg>")
        assert (sub / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")


def folder_spec(factory: type[FailureFolder] = FailureFolder) -> jostle.Spec:
    return jostle.spec(
        factory,
        jostle.operation(save, BUGS, st.integers(1, 3)),
        jostle.operation(read, BUGS),
        model=FolderModel,
        invariants=[folders_complete],
        name=factory.__name__,
    )


# ---------------------------------------------------------------------------
# b. Worker pools: threads, the loop thread and processes, borrowed at once.


class Borrowed:
    """Who holds which worker: a raw lock, and only around bookkeeping (never
    around the pool's own calls, which must race each other)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held: set[int] = set()
        self.retired: set[int] = set()  # abandoned, killed or discarded: never again
        self.demand = 0
        self.peak = 0
        self.problems: list[str] = []

    def want(self, n: int) -> None:
        with self._lock:
            self.demand += n
            self.peak = max(self.peak, self.demand)

    def done(self, n: int) -> None:
        with self._lock:
            self.demand -= n

    def take(self, keys: Sequence[int], what: str) -> None:
        with self._lock:
            if len(set(keys)) != len(keys):
                self.problems.append(f"one acquire handed out {what} {keys} with repeats")
            for k in keys:
                if k in self.held:
                    self.problems.append(f"{what} {k} handed out while another borrower holds it")
                if k in self.retired:
                    self.problems.append(f"{what} {k} handed out after it was retired")
                self.held.add(k)

    def give(self, keys: Sequence[int], *, retire: bool = False) -> None:
        with self._lock:
            self.held.difference_update(keys)
            if retire:
                self.retired.update(keys)


class WorkerBench:
    """jostle's thread pool and event-loop thread, shared by every borrower."""

    pool_class: type[ThreadPool] = ThreadPool

    def __init__(self) -> None:
        self.pool = self.pool_class()
        self.loop = LoopThread()
        self.borrowed = Borrowed()
        self.abandoned: list[PoolThread] = []

    def close(self) -> None:
        self.pool.close()
        # Abandoned threads are never reused; the engine leaves stuck ones to
        # die with the process.  These finished their jobs: stop them.
        for t in self.abandoned:
            t.stop()
            t.thread.join(5.0)
        self.loop.close()


def _run_on(thread: PoolThread) -> int | None:
    seen: list[int] = []
    thread.submit(lambda: seen.append(threading.get_ident()))
    if not thread.wait(10.0):
        return None
    return seen[0] if seen else None


def run_jobs(bench: WorkerBench, n: int) -> int:
    """Borrow ``n`` pool threads, run a job on each, give them back: jobs run."""
    bench.borrowed.want(n)
    try:
        threads = bench.pool.acquire(n)
        keys = [id(t) for t in threads]
        bench.borrowed.take(keys, "pool thread")
        ran = sum(_run_on(t) == t.ident for t in threads)
        bench.borrowed.give(keys)
        bench.pool.release(threads)
        return ran
    finally:
        bench.borrowed.done(n)


def abandon(bench: WorkerBench) -> bool:
    """Borrow a thread and abandon it (as the engine does with a stuck one)."""
    bench.borrowed.want(1)
    try:
        [thread] = bench.pool.acquire(1)
        bench.borrowed.take([id(thread)], "pool thread")
        ok = _run_on(thread) == thread.ident
        bench.pool.abandon(thread)
        bench.borrowed.give([id(thread)], retire=True)
        bench.pool.release([thread])
        bench.abandoned.append(thread)
        return ok
    finally:
        bench.borrowed.done(1)


async def _steps(n: int) -> int:
    for _ in range(n):
        await asyncio.sleep(0)
    return n


def on_loop(bench: WorkerBench, n: int) -> int:
    """Run a coroutine of ``n`` awaits on the loop thread from this thread."""
    return bench.loop.call(_steps(n), timeout=10.0)


def cancel_on_loop(bench: WorkerBench) -> bool:
    """Start a task that waits for ever, cancel it: the loop still serves."""
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    fut = bench.loop.submit(forever())
    started.wait(10.0)
    fut.cancel()
    with contextlib.suppress(BaseException):
        fut.result(10.0)
    return fut.cancelled() and bench.loop.responsive(10.0)


class WorkerModel:
    def run_jobs(self, n: int) -> int:
        return n

    def abandon(self) -> bool:
        return True

    def on_loop(self, n: int) -> int:
        return n

    def cancel_on_loop(self) -> bool:
        return True


def threads_accounted_for(bench: WorkerBench) -> None:
    """Nobody holds a thread; every thread started is idle or abandoned, once."""
    pool, b = bench.pool, bench.borrowed
    assert not b.problems, "; ".join(b.problems)
    assert not b.held, f"{len(b.held)} thread(s) still held after every borrower finished"
    idle = list(pool._idle)
    assert len({id(t) for t in idle}) == len(idle), "a thread is idle twice"
    assert not [t for t in idle if t.abandoned], "an abandoned thread is idle"
    assert all(t.thread.is_alive() and not t.busy for t in idle), "an idle thread is busy or dead"
    assert len(idle) + pool.abandoned == pool._count, (
        f"{pool._count} thread(s) started, {len(idle)} idle and {pool.abandoned} abandoned")
    assert pool._count - pool.abandoned <= b.peak, (
        f"{pool._count - pool.abandoned} live thread(s) but at most {b.peak} borrowed at once")
    assert bench.loop.responsive(10.0), "the loop thread stopped serving"


COUNTS = st.integers(1, 3)


def worker_spec(factory: type[WorkerBench] = WorkerBench) -> jostle.Spec:
    return jostle.spec(
        factory,
        jostle.operation(run_jobs, COUNTS),
        jostle.operation(abandon),
        jostle.operation(on_loop, COUNTS),
        jostle.operation(cancel_on_loop),
        model=WorkerModel,
        invariants=[threads_accounted_for],
        name=factory.__name__,
    )


class ProcessBench:
    """jostle's ``ProcessPool``, shared by every borrower."""

    pool_class: type[ProcessPool] = ProcessPool

    def __init__(self) -> None:
        self.pool = self.pool_class()
        self.borrowed = Borrowed()

    def close(self) -> None:
        self.pool.close()


def _dead_on_arrival(workers: Sequence[ProcessWorker]) -> int:
    return sum(not w.alive for w in workers)


def borrow(bench: ProcessBench, n: int) -> int:
    """Borrow ``n`` live process workers and give them back."""
    bench.borrowed.want(n)
    try:
        workers = bench.pool.acquire(n)
        keys = [w.pid for w in workers]
        bench.borrowed.take(keys, "process worker")
        live = len(workers) - _dead_on_arrival(workers)
        bench.borrowed.give(keys)
        bench.pool.release(workers)
        return live
    finally:
        bench.borrowed.done(n)


def kill(bench: ProcessBench) -> bool:
    """Borrow a worker, SIGKILL it, give it back: the pool must drop it."""
    bench.borrowed.want(1)
    try:
        [worker] = bench.pool.acquire(1)
        bench.borrowed.take([worker.pid], "process worker")
        os.kill(worker.pid, signal.SIGKILL)
        while (event := worker.next_event(10.0)) is not None and event[0] != "died":
            pass
        dead = not worker.alive
        bench.borrowed.give([worker.pid], retire=True)
        bench.pool.release([worker])
        return dead
    finally:
        bench.borrowed.done(1)


def discard(bench: ProcessBench) -> bool:
    """Borrow a worker and discard it (as the engine does with a hung one)."""
    bench.borrowed.want(1)
    try:
        [worker] = bench.pool.acquire(1)
        bench.borrowed.take([worker.pid], "process worker")
        bench.borrowed.give([worker.pid], retire=True)
        bench.pool.discard(worker)
        return not worker.alive
    finally:
        bench.borrowed.done(1)


class ProcessModel:
    def borrow(self, n: int) -> int:
        return n

    def kill(self) -> bool:
        return True

    def discard(self) -> bool:
        return True


def processes_accounted_for(bench: ProcessBench) -> None:
    """Nobody holds a worker; the idle ones are live, known, and no more than needed."""
    pool, b = bench.pool, bench.borrowed
    assert not b.problems, "; ".join(b.problems)
    assert not b.held, f"{len(b.held)} worker(s) still held after every borrower finished"
    idle, workers = list(pool._idle), list(pool._workers)
    assert len({w.pid for w in idle}) == len(idle), "a worker is idle twice"
    assert all(w in workers for w in idle), "an idle worker the pool does not know"
    retired = [w.pid for w in workers if w.pid in b.retired]
    assert not retired, f"killed or discarded worker(s) {retired} still in the pool"
    assert len(workers) <= b.peak, (
        f"{len(workers)} worker(s) in the pool but at most {b.peak} borrowed at once")


def process_spec(factory: type[ProcessBench] = ProcessBench) -> jostle.Spec:
    return jostle.spec(
        factory,
        jostle.operation(borrow, st.integers(1, 2)),
        jostle.operation(kill),
        jostle.operation(discard),
        model=ProcessModel,
        invariants=[processes_accounted_for],
        name=factory.__name__,
    )


# ---------------------------------------------------------------------------
# c. The baton: Controller handoffs between real threads.

#: A program is one entity's actions: ``("p",)`` a scheduling point,
#: ``("w", r)`` wake resource ``r`` then a point, ``("b", r)`` block on ``r``.
ACTION = st.one_of(st.just(("p",)), st.tuples(st.sampled_from(["w", "b"]), st.integers(0, 1)))
PROGRAMS = st.lists(st.lists(ACTION, max_size=4).map(tuple), min_size=1, max_size=3).map(tuple)
CHOICES = st.lists(st.integers(0, 2), min_size=1, max_size=6).map(tuple)

Program = tuple[tuple[Any, ...], ...]


class Choices(Strategy):
    """Deterministic: at step ``s`` run ``runnable[choices[s % len] % len(runnable)]``."""

    name = "dogfood"

    def __init__(self, choices: tuple[int, ...]) -> None:
        self.choices = choices

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        return runnable[self.choices[step % len(self.choices)] % len(runnable)]


class BatonBench:
    """Runs tiny controlled executions; counts any moment two entities ran at once."""

    controller_class: type[Controller] = Controller

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.overlaps = 0

    def run(self, choices: tuple[int, ...], programs: tuple[Program, ...], *,
            abort_after: int | None = None) -> tuple[tuple[tuple[Any, ...], ...], str]:
        ctl = self.controller_class(Choices(choices), max_steps=1_000)
        entities = [ctl.add(f"entity {i}") for i in range(len(programs))]
        trace: list[tuple[Any, ...]] = []
        running: list[int] = []  # who runs now, by their own account
        midway = threading.Event()
        errors: list[BaseException] = []

        def check_in(me: Entity) -> None:
            running.append(me.id)
            if len(running) > 1:
                with self._lock:
                    self.overlaps += 1

        def check_out(me: Entity) -> None:
            with contextlib.suppress(ValueError):
                running.remove(me.id)

        def body(me: Entity, program: Program) -> None:
            try:
                ctl.enter(me)
                check_in(me)
                for action in program:
                    trace.append((me.id, *action))
                    if abort_after is not None and len(trace) >= abort_after:
                        midway.set()
                    check_out(me)
                    if action[0] == "b":
                        ctl.block(me, action[1])
                    else:
                        if action[0] == "w":
                            ctl.wake(action[1])
                        ctl.point(me, f"{me.id}:{len(trace)}")
                    check_in(me)
                check_out(me)
                ctl.finish(me)
            except Aborted:
                check_out(me)
                ctl.finish(me)
            except BaseException as exc:  # a controller bug: raised from the operation
                errors.append(exc)

        threads = [threading.Thread(target=body, args=(e, p), daemon=True)
                   for e, p in zip(entities, programs, strict=True)]
        for t in threads:
            t.start()
        watchdog = None
        if abort_after is not None:
            def fire() -> None:
                midway.wait(10.0)
                ctl.abort()
            watchdog = threading.Thread(target=fire, daemon=True)
            watchdog.start()
        ctl.start()
        ended = ctl.wait(10.0)
        if not ended:
            ctl.abort()
        if watchdog is not None:
            midway.set()
            watchdog.join(10.0)
        for t in threads:
            t.join(10.0)
        if errors:
            raise errors[0]
        if not ended or any(t.is_alive() for t in threads):
            return tuple(trace), "hung"
        return tuple(trace), "deadlock" if ctl.deadlock is not None else "done"


def simulate(choices: tuple[int, ...], programs: tuple[Program, ...]
             ) -> tuple[tuple[tuple[Any, ...], ...], str]:
    """The baton's rules, one step at a time, with no threads (the model).

    A point with two or more runnable entities is a decision (the step
    counter moves and the strategy picks among the runnable, in id order);
    a block or finish passes the baton on, a decision only when two or more
    could take it; nobody runnable with someone blocked is a deadlock.
    """
    n = len(programs)
    state = ["R"] * n  # runnable, blocked, done
    on: list[Any] = [None] * n
    pc = [0] * n
    trace: list[tuple[Any, ...]] = []
    step = 0

    def runnable() -> list[int]:
        return [i for i in range(n) if state[i] == "R"]

    def choose(at: int, among: list[int]) -> int:
        return among[choices[at % len(choices)] % len(among)]

    def pass_on() -> int | None:
        nonlocal step
        among = runnable()
        if not among:
            return None
        if len(among) < 2:
            return among[0]
        step += 1
        return choose(step, among)

    cur = choose(0, runnable()) if n > 1 else 0
    while True:
        if pc[cur] < len(programs[cur]):
            action = programs[cur][pc[cur]]
            pc[cur] += 1
            trace.append((cur, *action))
            if action[0] == "b":
                state[cur], on[cur] = "B", action[1]
                nxt = pass_on()
                if nxt is None:
                    return tuple(trace), "deadlock"
                cur = nxt
                continue
            if action[0] == "w":
                for i in range(n):
                    if state[i] == "B" and on[i] == action[1]:
                        state[i], on[i] = "R", None
            among = runnable()
            if len(among) >= 2:
                step += 1
                cur = choose(step, among)
            continue
        state[cur] = "D"
        if all(s == "D" for s in state):
            return tuple(trace), "done"
        nxt = pass_on()
        if nxt is None:
            return tuple(trace), "deadlock"
        cur = nxt


def handoff(bench: BatonBench, choices: tuple[int, ...], programs: tuple[Program, ...]
            ) -> tuple[tuple[tuple[Any, ...], ...], str]:
    """Run the programs under the baton: the trace and how the run ended."""
    return bench.run(choices, programs)


def abort_midway(bench: BatonBench, choices: tuple[int, ...], programs: tuple[Program, ...],
                 after: int) -> bool:
    """Abort the run from a watchdog thread after ``after`` actions: it ends, nobody hangs."""
    _trace, how = bench.run(choices, programs, abort_after=after)
    return how != "hung"


class BatonModel:
    def handoff(self, choices: tuple[int, ...], programs: tuple[Program, ...]
                ) -> tuple[tuple[tuple[Any, ...], ...], str]:
        return simulate(choices, programs)

    def abort_midway(self, choices: tuple[int, ...], programs: tuple[Program, ...],
                     after: int) -> bool:
        return True


def one_at_a_time(bench: BatonBench) -> None:
    """No two entities ever ran at once."""
    assert bench.overlaps == 0, f"two entities ran at once {bench.overlaps} time(s)"


def baton_spec(factory: type[BatonBench] = BatonBench) -> jostle.Spec:
    return jostle.spec(
        factory,
        jostle.operation(handoff, CHOICES, PROGRAMS),
        jostle.operation(abort_midway, CHOICES, PROGRAMS, st.integers(1, 6)),
        model=BatonModel,
        invariants=[one_at_a_time],
        name=factory.__name__,
    )


# Stress mode throughout: the components are jostle's own plumbing (raw
# locks, threads and processes of their own), which controlled mode would
# rightly refuse to schedule.
test_failure_folders = jostle.concurrent_test(folder_spec(), max_workers=3, repeats=3)
test_worker_pools = jostle.concurrent_test(worker_spec(), repeats=3)
test_process_pool = jostle.concurrent_test(process_spec(), max_workers=2, max_ops=2, repeats=2)
test_baton_handoff = jostle.concurrent_test(baton_spec(), repeats=3)
