"""Thread workers under the baton: preemption models, the bugzoo bug shapes,
deadlock and lock-order reports, replay, and uncontrolled blocking."""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import controlled_bugs as bugs
import pytest

from jostle._control import Controller, Strategy
from jostle._controlled_threads import ControlledRun, run_threads
from jostle._cooperative import Lock
from jostle._errors import SpecError
from jostle._threads import ThreadPool
from jostle._tracing import MONITORING
from jostle._window import ThreadMap

from _controlled_support import (
    Choices,
    Outcome,
    Seeded,
    SwitchAt,
    explore,
    first_failure,
    scenario,
)

HERE = os.path.abspath(__file__)
# shared/ lies beside the checkout, in CI too
BUGZOO = str(Path(__file__).resolve().parents[2] / "shared" / "bugzoo")


@pytest.fixture(scope="module")
def pool() -> Any:
    p = ThreadPool()
    yield p
    p.close()


def test_lost_update_is_never_found_in_the_gil_model(pool):
    """`self.n = self.n + 1` never loses an update under any schedule with
    up to 2 preemptions of 2 threads in the gil model."""
    seen = 0
    for found in explore(lambda s: scenario(pool, bugs.Counter, [bugs.Counter.incr] * 2, s),
                         bound=2):
        counter, run, _ = found.result
        assert run.failure is None
        assert counter.n == 2, found
        seen += 1
    assert seen >= 3


def test_lost_update_is_found_in_the_opcode_model(pool):
    """Preempting between the load and the store loses an update."""
    found = first_failure(
        lambda s: scenario(pool, bugs.Counter, [bugs.Counter.incr] * 2, s, model="opcode"),
        lambda res: res[0].n != 2, max_bound=1)
    assert found is not None
    assert found.preemptions == 1
    assert found.result[1].model == "opcode"


def test_stats_snapshot_lost_update_needs_one_preemption(pool):
    """t01: a preemption inside record() (dict.get's return, or the
    namedtuple's __new__) loses a hit."""
    found = first_failure(
        lambda s: scenario(pool, bugs.Stats, [lambda r: r.record("a")] * 2, s),
        lambda res: res[0].count("a") != 2, max_bound=1)
    assert found is not None and found.preemptions == 1


def test_lazy_init_builds_twice_with_one_preemption(pool):
    """t02: two workers both see no client and both build one."""
    found = first_failure(
        lambda s: scenario(pool, bugs.LazyClient, [bugs.LazyClient.client] * 2, s),
        lambda res: res[0].built != 1, max_bound=1)
    assert found is not None and found.preemptions == 1
    assert sorted(v for _, v in found.result[2].values()) == [1, 2]


def test_abba_deadlock_is_reported_at_once_with_the_wait_for_cycle(pool):
    """t07: one preemption deadlocks; the report names both locks, both
    workers and where each is stuck, without waiting for the watchdog."""
    ops = [lambda r: r.transfer(0, 1, 30), lambda r: r.transfer(1, 0, 30)]
    found = first_failure(lambda s: scenario(pool, bugs.Ledger, ops, s),
                          lambda res: res[1].deadlock is not None, max_bound=1)
    assert found is not None and found.preemptions == 1
    run = found.result[1]
    assert run.uncontrolled is None and not run.livelock
    cycle = run.deadlock.cycle
    first = f"Lock@controlled_bugs.py:{_line(bugs, 'self.lock_a = threading.Lock()')}"
    second = f"Lock@controlled_bugs.py:{_line(bugs, 'self.lock_b = threading.Lock()')}"
    assert first in cycle and second in cycle
    assert "worker 1 holds" in cycle and "worker 2 holds" in cycle
    assert "held by worker 1" in cycle and "held by worker 2" in cycle
    assert sorted(run.deadlock.blocked) == ["worker 1", "worker 2"]
    inner = f"line {_line(bugs, 'with self.locks[dst]:')}"
    assert all(inner in stack for _, stack in run.deadlock.stacks)
    assert len(run.inversions) == 1


def test_condition_if_instead_of_while_is_found_with_three_workers(pool):
    """t06: a consumer woken for an item finds it stolen and pops an empty
    deque, within 2 preemptions; the fixed queue never does."""
    ops = [lambda r: r.get(), lambda r: r.put(7), lambda r: r.get()]

    def stolen(res: Any) -> bool:
        return ("raise", "IndexError") in res[2].values()

    found = first_failure(lambda s: scenario(pool, bugs.WorkQueue, ops, s), stolen,
                          max_bound=2)
    assert found is not None and found.preemptions <= 2
    fixed = [f.result for f in explore(lambda s: scenario(pool, bugs.FixedWorkQueue, ops, s),
                                       bound=1)]
    assert fixed and not any(stolen(res) or res[1].failure for res in fixed)


def test_event_set_before_result_is_found_with_one_preemption(pool):
    """t11: a poller sees the job done before its result is stored."""
    ops = [lambda r: r.finish('{"ok": 1}'), lambda r: r.result()]
    found = first_failure(lambda s: scenario(pool, bugs.JobHandle, ops, s),
                          lambda res: res[2].get(1) == ("ok", None), max_bound=1)
    assert found is not None and found.preemptions == 1


def test_lock_order_inversion_is_reported_without_a_deadlock(pool):
    """A then B in one worker, B then A in the other, run one after the
    other: no deadlock, but lockdep reports the inversion."""
    _, run, results = scenario(pool, bugs.OrderedLocks, [bugs.OrderedLocks.ab,
                                                         bugs.OrderedLocks.ba], Choices())
    assert run.failure is None and len(results) == 2
    (inv,) = run.inversions
    names = {inv.first, inv.second}
    assert names == {f"Lock@controlled_bugs.py:{_line(bugs, 'self.a = threading.Lock()')}",
                     f"RLock@controlled_bugs.py:{_line(bugs, 'self.b = threading.RLock()')}"}
    assert "worker 1" in str(inv) and "worker 2" in str(inv)


@pytest.mark.slow
def test_the_same_strategy_data_replays_1000_times_out_of_1000(pool):
    """Same seed, same decision log and same results, every time."""
    ops = [lambda r: r.get(), lambda r: r.put(7), lambda r: r.get()]

    def once() -> tuple[Any, ...]:
        r, run, results = scenario(pool, bugs.WorkQueue, ops, Seeded(11, p=0.3))
        return run.decisions, run.steps, run.virtual_time, sorted(results.items()), \
            list(r._items)

    first = once()
    assert sum(1 for d in first[0] if d.kind == "switch") >= 2
    assert all(once() == first for _ in range(999))


def test_livelock_is_reported_at_the_step_limit(pool):
    """A spin loop that is never preempted ends as a livelock."""
    _, run, _ = scenario(pool, lambda: [False], [bugs.spin_until, lambda f: f.__setitem__(0, 1)],
                         Choices(), max_steps=500)
    assert run.livelock and run.failure is not None and "livelock" in run.failure


def test_timeouts_and_sleeps_take_virtual_time(pool):
    """time.sleep(5) in a worker advances only the virtual clock."""
    _, run, results = scenario(pool, lambda: None, [lambda _: bugs.nap(5.0)], Choices())
    assert results[0] == ("ok", 5.0)
    assert run.virtual_time == 5.0


@pytest.mark.slow
def test_simple_queue_get_is_reported_as_uncontrolled_blocking(pool):
    """A blocking C call is reported at its file:line, not a hang, and the
    next run works."""
    q: queue.SimpleQueue[int] = queue.SimpleQueue()

    def stuck(_: Any) -> int:
        return q.get()  # uncontrolled: blocks in C

    _, run, _ = scenario(pool, lambda: None, [stuck, lambda _: 1], Choices(), watchdog=0.1)
    assert run.uncontrolled is not None
    assert run.uncontrolled.where == (HERE, _line(sys.modules[__name__], "return q.get()"))
    assert "uncontrolled blocking at" in str(run.uncontrolled)
    assert run.abandoned >= 1
    q.put(0)  # let the abandoned thread go
    counter, run2, _ = scenario(pool, bugs.Counter, [bugs.Counter.incr] * 2, Choices())
    assert run2.failure is None and counter.n == 2


@pytest.mark.slow
def test_a_real_lock_from_before_the_window_is_uncontrolled_blocking(pool):
    """A lock created before the window and held by a preempted worker
    blocks the other one for real: reported where it blocked."""
    real = threading.Lock()  # created outside any window: a real lock

    def hold(_: Any) -> None:
        with real:
            bugs.nap(0)

    def take(_: Any) -> None:
        real.acquire()  # blocks for real
        real.release()

    # Preempt worker 1 at its first point inside the `with` (the C return
    # of __enter__), then let worker 2 run.
    def stuck_in_take(s: Strategy) -> Any:
        return scenario(pool, lambda: None, [hold, take], s, watchdog=0.1)

    hit = None
    for k in range(1, 6):
        res = stuck_in_take(SwitchAt([k]))
        if res[1].uncontrolled is not None:
            hit = res
            break
    assert hit is not None
    assert hit[1].uncontrolled.where == (HERE, _line(sys.modules[__name__],
                                                    "real.acquire()  # blocks for real"))
    assert not real.locked()
    counter, run2, _ = scenario(pool, bugs.Counter, [bugs.Counter.incr] * 2, Choices())
    assert run2.failure is None and counter.n == 2


def test_an_existing_controller_can_carry_other_entities(pool):
    """An entity the caller runs on its own thread shares the baton (and
    the cooperative locks) with the thread workers."""
    strategy = Choices()
    ctl = Controller(strategy)
    tmap = ThreadMap()
    other = ctl.add("event loop")
    order: list[str] = []
    box: dict[str, Lock] = {}

    def run_other() -> None:
        tmap.bind(other)
        ctl.enter(other)
        with box["lock"]:
            order.append("other")
        ctl.finish(other)
        tmap.unbind()

    def setup() -> None:
        box["lock"] = threading.Lock()  # type: ignore[assignment]

    def worker() -> None:
        with box["lock"]:
            order.append("worker")

    t = threading.Thread(target=run_other, daemon=True)
    t.start()
    run = run_threads([worker], strategy, pool=pool, timeout=10.0, controller=ctl,
                      threads=tmap, setup=setup)
    t.join(5)
    assert not t.is_alive()
    assert run.failure is None
    assert order == ["other", "worker"]
    assert [e.name for e in ctl.entities] == ["event loop", "worker 1"]


def test_an_exception_escaping_a_job_is_reported(pool):
    """A job that raises is reported as crashed; the others still run."""
    ran = []

    def bad() -> None:
        raise RuntimeError("boom")

    run = run_threads([bad, lambda: ran.append(1)], Choices(), pool=pool, timeout=10.0)
    assert ran == [1]
    assert run.failure == "worker 1 crashed: RuntimeError: boom"


def test_bad_arguments_are_spec_errors(pool):
    """Misuse names the bad value."""
    with pytest.raises(SpecError, match="model"):
        run_threads([lambda: None], Choices(), pool=pool, timeout=1.0, model="fast")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="names"):
        run_threads([lambda: None], Choices(), pool=pool, timeout=1.0, names=["a", "b"])


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring is 3.12+")
def test_no_free_monitoring_tool_id_is_a_clear_error(pool):
    """When every usable tool id is taken the error names the holders."""
    mon = sys.monitoring
    taken = [i for i in (0, 2, 4, 5) if mon.get_tool(i) is None]
    for i in taken:
        mon.use_tool_id(i, f"squatter-{i}")
    try:
        with pytest.raises(SpecError, match="squatter"):
            run_threads([lambda: None], Choices(), pool=pool, timeout=1.0)
    finally:
        for i in taken:
            mon.free_tool_id(i)
    assert run_threads([lambda: None], Choices(), pool=pool, timeout=1.0).failure is None


# -- the real bugzoo thread cases, driven generically -----------------------------------
def _bugzoo_thread_cases() -> list[Any]:
    if not os.path.isdir(os.path.join(BUGZOO, "cases")):
        return []
    if BUGZOO not in sys.path:
        sys.path.insert(0, BUGZOO)
    import importlib

    names = sorted(f[:-3] for f in os.listdir(os.path.join(BUGZOO, "cases"))
                   if f.startswith("t") and f.endswith(".py"))
    mods = [importlib.import_module(f"cases.{n}") for n in names]
    return [m for m in mods if getattr(m, "KIND", None) == "thread"]


def _call(fn: Callable[..., Any], *args: Any) -> Outcome:
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("raise", type(exc).__name__)


def _observe(case: Any, target: Any, *, model: bool) -> list[Outcome]:
    """Every observer operation, on the model or on the resource."""
    return [_call(getattr(target, op.name), *args) if model else _call(op.fn, target, *args)
            for op in case.OPERATIONS if op.observer for args in op.arg_combos()]


def _sequential(case: Any, calls: Sequence[tuple[Any, tuple[Any, ...]]]) -> set[str]:
    """Every outcome that some one-at-a-time order of ``calls`` explains."""
    explained = set()
    for order in itertools.permutations(range(len(calls))):
        m = case.Model()
        res: list[Outcome] = [("", None)] * len(calls)
        for i in order:
            op, args = calls[i]
            res[i] = _call(getattr(m, op.name), *args)
        explained.add(repr((res, _observe(case, m, model=True))))
    return explained


def _bugzoo_failure(case: Any, calls: Sequence[tuple[Any, tuple[Any, ...]]],
                    result: tuple[Any, ControlledRun, dict[int, Outcome]]) -> bool:
    r, run, results = result
    if run.failure is not None:
        return True
    if hasattr(case, "invariant"):
        try:
            case.invariant(r)
        except AssertionError:
            return True
    got = [results[i] for i in range(len(calls))]
    return repr((got, _observe(case, r, model=False))) not in _sequential(case, calls)


def _bugzoo_search(pool: ThreadPool, case: Any, cls: type, calls: Any, bound: int) -> Any:
    ops = [lambda r, op=op, args=args: op.fn(r, *args) for op, args in calls]
    return first_failure(lambda s: scenario(pool, cls, ops, s),
                         lambda res: _bugzoo_failure(case, calls, res), max_bound=bound)


@pytest.mark.slow
@pytest.mark.skipif(not _bugzoo_thread_cases(), reason="bugzoo not available")
def test_bugzoo_thread_cases_are_found_within_their_minimal_preemptions(pool):
    """Each bugzoo thread case fails in the gil model with at most its
    MINIMAL number of preemptions (one operation per worker, arguments from
    the first two values of each domain), and its Fixed twin passes every
    schedule of the same operations with as many preemptions."""
    report = {}
    for case in _bugzoo_thread_cases():
        minimal = case.MINIMAL
        choices = [(op, args) for op in case.OPERATIONS
                   for args in itertools.product(*(d[:2] for d in op.args))]
        combos = list(itertools.combinations_with_replacement(choices, minimal["workers"]))
        best = None
        for bound, calls in itertools.product(range(minimal["preemptions"] + 1), combos):
            found = _bugzoo_search(pool, case, case.Buggy, calls, bound)
            if found is not None:
                best = found.preemptions
                assert _bugzoo_search(pool, case, case.Fixed, calls, bound) is None, case
                break
        report[case.__name__] = (best, minimal["preemptions"])
    assert all(best is not None and best <= limit for best, limit in report.values()), report


def _line(module: Any, text: str) -> int:
    with open(module.__file__) as f:
        for n, line in enumerate(f, 1):
            if text in line:
                return n
    raise AssertionError(f"{text!r} not in {module.__file__}")


def test_a_thread_started_by_an_operation_is_noted_and_does_not_wedge(pool):
    """An op that starts and joins its own thread completes; the report
    names the uncontrolled thread and where it was started."""
    def spawn(_: Any) -> list[int]:
        out: list[int] = []
        t = threading.Thread(target=out.append, args=(1,), name="helper")
        t.start()  # the uncontrolled thread
        t.join()
        return out

    _, run, results = scenario(pool, lambda: None, [spawn, lambda _: 2], Choices())
    assert run.failure is None and results == {0: ("ok", [1]), 1: ("ok", 2)}
    (note,) = run.notes
    line = _line(sys.modules[__name__], "t.start()  # the uncontrolled thread")
    assert note.startswith("uncontrolled nondeterminism: worker 1 started thread 'helper' "
                           f"at test_controlled_threads.py:{line}")


def test_a_failing_setup_runs_nothing_and_keeps_the_threads():
    """If set-up raises, no job runs, the window closes and the pool keeps
    its threads."""
    own = ThreadPool()
    ran: list[int] = []
    try:
        run_threads([lambda: ran.append(1)], Choices(), pool=own, timeout=5.0)

        def bad_setup() -> None:
            raise KeyError("setup")

        with pytest.raises(KeyError):
            run_threads([lambda: ran.append(2)], Choices(), pool=own, timeout=5.0,
                        setup=bad_setup)
        run_threads([lambda: ran.append(3)], Choices(), pool=own, timeout=5.0)
        assert ran == [1, 3]
        assert own._count == 1  # the same thread served every run
        assert threading.Lock is not Lock
    finally:
        own.close()
