"""Cooperative primitives: each works under the baton, with timeouts in
virtual time, and like the real one outside a controlled run; the patching
window is always undone."""

from __future__ import annotations

import _thread
import multiprocessing.connection
import queue
import socket
import sys
import threading
import time
from time import monotonic as _monotonic_alias
from typing import Any

import pytest

from jostle import _cooperative as coop, _patching, _virtual_time as vtime, _window
from jostle._control import Controller, Strategy
from jostle._errors import JostleError
from jostle._threads import ThreadPool

from _controlled_support import Choices, explore, scenario

TOUCHED = [(threading, n) for n in ("Lock", "_allocate_lock", "RLock", "Condition", "Semaphore",
                                    "BoundedSemaphore", "Event", "Barrier", "_time")] + \
    [(time, n) for n in ("sleep", "monotonic", "monotonic_ns", "perf_counter",
                         "perf_counter_ns", "time", "time_ns")] + \
    [(_thread, "allocate_lock"), (queue, "time"), (threading.Thread, "start"),
     (sys.modules[__name__], "_monotonic_alias")]


@pytest.fixture(scope="module")
def pool() -> Any:
    p = ThreadPool()
    yield p
    p.close()


def _snapshot() -> list[Any]:
    return [getattr(obj, name) for obj, name in TOUCHED]


# -- under the baton ---------------------------------------------------------------------
class LockedCounter:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def incr(self) -> None:
        with self.lock:
            self.n = self.n + 1


def test_lock_excludes_under_every_schedule(pool):
    """A locked increment never loses an update, even preempted at every
    opcode, and some schedules make a worker block on the lock."""
    blocked = 0
    for found in explore(lambda s: scenario(pool, LockedCounter, [LockedCounter.incr] * 2, s,
                                            model="opcode"), bound=1):
        counter, run, _ = found.result
        assert run.failure is None and counter.n == 2
        blocked += any(d.kind == "block" for d in run.decisions)
    assert blocked > 0


def test_lock_timeout_expires_in_virtual_time(pool):
    """acquire(timeout=2) on a lock held by a sleeping worker gives up at
    virtual time 2; non-blocking calls never wait."""
    def holder(r: Any) -> None:
        with r:
            time.sleep(10)

    def taker(r: Any) -> tuple[bool, bool, float]:
        start = time.monotonic()
        return r.acquire(False), r.acquire(timeout=2), time.monotonic() - start

    _, run, results = scenario(pool, lambda: threading.Lock(), [holder, taker], Choices())
    assert results[1] == ("ok", (False, False, 2.0))
    assert run.virtual_time == 10.0


def test_lock_rejects_a_timeout_on_a_non_blocking_call(pool):
    """The controlled path validates arguments as the real lock does."""
    _, _, results = scenario(pool, lambda: threading.Lock(), [lambda r: r.acquire(False, 1)],
                             Choices())
    assert results[0] == ("raise", "ValueError")


def test_rlock_is_reentrant_and_owned(pool):
    """The owner re-enters; another worker waits; a non-owner cannot release."""
    def reenter(r: Any) -> int:
        with r, r:
            count = r._recursion_count()
            time.sleep(1)
        return count

    def other(r: Any) -> str:
        try:
            r.release()
        except RuntimeError:
            pass
        with r:
            return "got it"

    for found in explore(lambda s: scenario(pool, lambda: threading.RLock(), [reenter, other], s),
                         bound=1):
        r, run, results = found.result
        assert run.failure is None
        assert results == {0: ("ok", 2), 1: ("ok", "got it")}
        assert not r.locked()


def test_condition_wait_for_sees_the_notify_under_every_schedule(pool):
    """A consumer waiting for an item gets it whatever the interleaving."""
    class Box:
        def __init__(self) -> None:
            self.items: list[int] = []
            self.cond = threading.Condition()

    def consume(b: Box) -> int:
        with b.cond:
            b.cond.wait_for(lambda: b.items)
            return b.items.pop()

    def produce(b: Box) -> None:
        with b.cond:
            b.items.append(5)
            b.cond.notify()

    runs = 0
    for found in explore(lambda s: scenario(pool, Box, [consume, produce], s), bound=1):
        _, run, results = found.result
        assert run.failure is None and results[0] == ("ok", 5)
        runs += 1
    assert runs > 2


def test_condition_wait_timeout_expires_in_virtual_time(pool):
    """wait(5) with nobody to notify returns False at virtual time 5."""
    def waits(c: Any) -> tuple[bool, float]:
        with c:
            start = time.monotonic()
            return c.wait(5), time.monotonic() - start

    _, run, results = scenario(pool, lambda: threading.Condition(), [waits], Choices())
    assert results[0] == ("ok", (False, 5.0))
    assert run.virtual_time == 5.0


def test_semaphore_admits_at_most_its_value(pool):
    """Three workers through Semaphore(2): never more than two inside."""
    class Gate:
        def __init__(self) -> None:
            self.sem = threading.Semaphore(2)
            self.inside = 0
            self.most = 0

    def enter(g: Gate) -> None:
        with g.sem:
            g.inside += 1
            g.most = max(g.most, g.inside)
            time.sleep(0)
            g.inside -= 1

    most = set()
    for found in explore(lambda s: scenario(pool, Gate, [enter] * 3, s), bound=1):
        g, run, _ = found.result
        assert run.failure is None
        most.add(g.most)
    assert most == {1, 2}


def test_bounded_semaphore_rejects_too_many_releases(pool):
    """Releasing a BoundedSemaphore past its initial value raises."""
    _, _, results = scenario(pool, lambda: threading.BoundedSemaphore(1),
                             [lambda s: s.release()], Choices())
    assert results[0] == ("raise", "ValueError")


def test_semaphore_acquire_timeout_is_virtual(pool):
    """acquire(timeout=3) on an empty semaphore fails at virtual time 3."""
    _, run, results = scenario(pool, lambda: threading.Semaphore(0),
                               [lambda s: s.acquire(timeout=3)], Choices())
    assert results[0] == ("ok", False)
    assert run.virtual_time == 3.0


def test_event_wait_times_out_virtually_or_sees_the_set(pool):
    """Event.wait(3) alone times out at virtual 3; with a setter it returns True."""
    _, run, results = scenario(pool, lambda: threading.Event(), [lambda e: e.wait(3)],
                               Choices())
    assert results[0] == ("ok", False) and run.virtual_time == 3.0
    for found in explore(lambda s: scenario(pool, lambda: threading.Event(),
                                            [lambda e: e.wait(), lambda e: e.set()], s), bound=1):
        _, run, results = found.result
        assert run.failure is None and results[0] == ("ok", True)


def test_barrier_releases_every_party_or_breaks_on_timeout(pool):
    """Three parties all pass with distinct indices; two of three break
    after the barrier's virtual timeout."""
    for found in explore(lambda s: scenario(pool, lambda: threading.Barrier(3),
                                            [lambda b: b.wait()] * 3, s), bound=1):
        _, run, results = found.result
        assert run.failure is None
        assert sorted(v for _, v in results.values()) == [0, 1, 2]
    _, run, results = scenario(pool, lambda: threading.Barrier(3, timeout=1),
                               [lambda b: b.wait()] * 2, Choices())
    assert set(results.values()) == {("raise", "BrokenBarrierError")}
    assert run.virtual_time == 1.0


def test_queue_get_and_put_work_with_virtual_timeouts(pool):
    """queue.Queue built in the window: get(timeout=2) on nothing raises
    Empty at virtual 2; a put wakes a waiting get; a full put waits; and a
    get's timeout is a scheduling choice: it may fire before the put."""
    _, run, results = scenario(pool, lambda: queue.Queue(), [lambda q: q.get(timeout=2)],
                               Choices())
    assert results[0] == ("raise", "Empty") and run.virtual_time == 2.0
    outcomes = []
    for found in explore(lambda s: scenario(
            pool, lambda: queue.Queue(maxsize=1),
            [lambda q: (q.get(timeout=5), q.get(timeout=5)),
             lambda q: (q.put(1, timeout=5), q.put(2, timeout=5))],
            s), bound=1):
        _, run, results = found.result
        assert run.failure is None
        assert results[1] in (("ok", (None, None)), ("raise", "Full"))
        if results[0] == ("ok", (1, 2)):  # a timeout that fired as the put came finds it
            assert run.virtual_time in (0.0, 5.0)
        else:  # a get timed out, at its virtual deadline (the first's or the second's)
            assert results[0] == ("raise", "Empty") and run.virtual_time in (5.0, 10.0)
        outcomes.append(results[0][0])
    assert outcomes[0] == "ok" and "raise" in outcomes  # default first; early timeouts too


def test_clocks_and_sleep_are_virtual_inside(pool):
    """A controlled worker sees the fixed virtual clock bases; sleep moves them."""
    def read(_: Any) -> tuple[float, ...]:
        before = (time.monotonic(), time.perf_counter(), time.time(), time.monotonic_ns())
        time.sleep(1.5)
        return (*before, time.monotonic(), time.time_ns())

    _, _, results = scenario(pool, lambda: None, [read], Choices())
    assert results[0] == ("ok", (vtime.MONOTONIC_BASE, vtime.MONOTONIC_BASE, vtime.EPOCH_BASE,
                                 int(vtime.MONOTONIC_BASE * 1e9), vtime.MONOTONIC_BASE + 1.5,
                                 int(vtime.EPOCH_BASE) * 10**9 + 1_500_000_000))


def test_waits_for_real_io_keep_the_real_clock(pool):
    """Standard-library code that polls real I/O with a timeout sees the
    real clock, so a zero timeout returns instead of spinning forever."""
    a, b = socket.socketpair()
    try:
        _, run, results = scenario(
            pool, lambda: None,
            [lambda _: multiprocessing.connection.wait([a], timeout=0)], Choices(),
            watchdog=5.0)
        assert run.failure is None and results[0] == ("ok", [])
    finally:
        a.close()
        b.close()


def test_a_lost_wakeup_is_a_deadlock_naming_the_condition(pool):
    """Waiting on a condition nobody notifies is reported with its name."""
    def waits(c: Any) -> None:
        with c:
            c.wait()

    _, run, _ = scenario(pool, lambda: threading.Condition(), [waits], Choices())
    assert run.deadlock is not None and run.uncontrolled is None
    assert run.deadlock.cycle.startswith("worker 1 waits for notify of Condition@")


# -- outside a controlled run ---------------------------------------------------------------
def test_lock_outside_a_run_behaves_like_the_real_one():
    """Acquire, fail to acquire, time out for real, release, re-acquire."""
    lock = coop.Lock()
    assert lock.acquire()
    assert not lock.acquire(False)
    out: list[bool] = []
    t = threading.Thread(target=lambda: out.append(lock.acquire(timeout=0.01)))
    t.start()
    t.join()
    assert out == [False]
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    assert lock.acquire(False)
    lock.release()


def test_rlock_outside_a_run_is_owned_by_its_thread():
    """Another thread can neither release nor take a held RLock."""
    r = coop.RLock()
    with r, r:
        out: list[Any] = []

        def other() -> None:
            try:
                r.release()
            except RuntimeError as exc:
                out.append(str(exc))
            out.append(r.acquire(False))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert out == ["cannot release un-acquired lock", False]
    assert not r.locked()


def test_condition_event_semaphore_barrier_outside_a_run_work_across_threads():
    """Real threads coordinate through the cooperative classes as usual."""
    cond = coop.Condition()
    event = coop.Event()
    sem = coop.Semaphore(0)
    barrier = coop.Barrier(2)
    flag: list[int] = []

    def other() -> None:
        barrier.wait()
        with cond:
            cond.wait_for(lambda: flag)
        event.set()
        sem.release()

    t = threading.Thread(target=other)
    t.start()
    barrier.wait()
    with cond:
        flag.append(1)
        cond.notify_all()
    assert event.wait(10)
    assert sem.acquire(timeout=10)
    t.join()
    assert isinstance(event, threading.Event) and isinstance(barrier, threading.Barrier)


def test_threads_outside_the_run_get_real_behaviour_inside_a_window():
    """In an open window a thread that is not an entity gets real locks,
    clocks and sleep, and what it builds keeps working after the window."""
    ctl = Controller(Strategy())
    with _patching.patched(ctl, lambda: None):
        lock = threading.Lock()
        q: queue.Queue[int] = queue.Queue()
        assert isinstance(lock, coop.Lock)
        assert abs(time.monotonic() - _window._real_monotonic()) < 1.0
        t = threading.Thread(target=lambda: q.put(7))
        t.start()
        assert q.get(timeout=10) == 7
        t.join()
        time.sleep(0)
    with lock:
        assert lock.locked()
    q.put(8)
    assert q.get_nowait() == 8


# -- the window itself --------------------------------------------------------------------
def test_patching_is_undone_after_a_run(pool):
    """Every replaced name, module aliases included, is restored after a run."""
    before = _snapshot()
    seen: list[Any] = []
    scenario(pool, lambda: None, [lambda _: seen.extend(_snapshot())], Choices())
    assert _snapshot() == before
    replaced = [i for i, (a, b) in enumerate(zip(before, seen, strict=True)) if a is not b]
    assert replaced == list(range(len(TOUCHED)))


def test_patching_is_undone_after_an_exception_in_the_window():
    """An exception inside the window still restores everything."""
    before = _snapshot()
    inside: list[bool] = []

    def fail_inside() -> None:
        with _patching.patched(Controller(Strategy()), lambda: None):
            inside.append(threading.Lock is coop.Lock and _monotonic_alias is vtime.monotonic)
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_inside()
    assert inside == [True]
    assert _snapshot() == before
    assert _window.current_window() is None


def test_windows_do_not_nest():
    """Opening a second window while one is open is an error."""
    ctl = Controller(Strategy())
    with _patching.patched(ctl, lambda: None), pytest.raises(JostleError, match="already"), \
            _patching.patched(ctl, lambda: None):
        pass
    assert threading.Lock is not coop.Lock


# -- locks made at import time ------------------------------------------------------------
def test_a_module_level_lock_made_at_import_is_cooperative_in_the_window(pool):
    """A lock built at import time (module global) excludes under every
    schedule without real blocking, and is the real lock again afterwards."""
    import import_time_locks as itl

    real = itl.registry_lock
    for found in explore(lambda s: scenario(pool, itl.Ledger, [itl.Ledger.move] * 2, s),
                         bound=2):
        ledger, run, _ = found.result
        assert run.failure is None and (ledger.a, ledger.b) == (8, 2)
    assert itl.registry_lock is real


def test_import_time_locks_in_abba_order_are_a_deadlock_not_a_hang(pool):
    """A class-level and a module-level lock taken in both orders: some
    schedule deadlocks, reported at once with both locks in the cycle."""
    import import_time_locks as itl

    runs = [f.result[1] for f in explore(
        lambda s: scenario(pool, itl.Ledger, [itl.Ledger.forward, itl.Ledger.backward], s),
        bound=1)]
    deadlocks = [r.deadlock for r in runs if r.deadlock is not None]
    assert deadlocks
    assert all(r.uncontrolled is None for r in runs)  # a deadlock, never a hang
    assert "import_time_locks.py" in deadlocks[0].cycle
    assert itl.Ledger.class_lock.acquire(False)  # real and free again
    itl.Ledger.class_lock.release()


def test_a_real_lock_held_when_the_window_opens_stays_real(pool):
    """A lock someone holds as the window opens is left alone (its state is
    not ours to copy)."""
    import import_time_locks as itl

    real = itl.audit_lock
    with real:
        _, run, results = scenario(pool, itl.Ledger, [lambda led: itl.audit_lock is real],
                                   Choices())
    assert results[0] == ("ok", True) and run.failure is None
