"""Leak checks: each kind of planted leak is caught, with where it was created,
and its clean twin passes."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

import jostle
from jostle._leaks import LEAK_KINDS, LeakCheck, leak_kinds

import leaky

FEW = settings(max_examples=5)
ONE = {"max_workers": 1, "max_ops": 1, "max_prefix": 0, "max_suffix": 0, "repeats": 1}


@pytest.fixture(autouse=True)
def release() -> Iterator[None]:
    leaky.RELEASE.clear()
    yield
    leaky.RELEASE.set()
    leaky.reap()


def _line(text: str = "# leaks here", *, after: str = "") -> int:
    with open(leaky.__file__) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if text in line)


def _leak(spec: jostle.Spec, **options: Any) -> jostle.ResourceLeaked:
    with pytest.raises(jostle.ResourceLeaked) as info:
        jostle.run(spec, settings=FEW, **{**ONE, **options})
    return info.value


def _finding(failure: jostle.ResourceLeaked) -> jostle.Finding:
    (finding,) = failure.verdict.findings  # type: ignore[attr-defined]
    assert finding.kind == "leak"
    return finding


def _origin(failure: jostle.ResourceLeaked) -> tuple[str, int]:
    """Where the failure's cause was raised: what Hypothesis tells bugs apart by."""
    cause = failure.__cause__
    assert cause is not None and cause.__traceback__ is not None
    tb = cause.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def _created_at(failure: jostle.ResourceLeaked, line: int) -> None:
    detail = _finding(failure).detail
    assert f"leaky.py:{line} in " in detail, detail
    assert _origin(failure) == (leaky.__file__, line)


def touch_spec(factory: Any) -> jostle.Spec:
    return jostle.spec(factory, jostle.operation(leaky.touch), model=leaky.NoneModel)


def test_a_thread_left_running_is_caught_where_it_was_started() -> None:
    """A thread the factory starts and never joins is reported with its
    target, where it was created and where it is now."""
    failure = _leak(touch_spec(leaky.Poller))
    finding = _finding(failure)
    assert "thread 'poller' (Poller.run, daemon) still running" in finding.summary
    assert "now at " in finding.detail and "in run" in finding.detail
    _created_at(failure, _line(after="class Poller"))


def test_a_joined_thread_is_not_a_leak() -> None:
    """The twin that joins its thread in close() passes."""
    jostle.run(touch_spec(leaky.JoinedPoller), settings=FEW, **ONE)


def test_a_pending_task_is_caught_with_its_coroutine_and_where_it_waits() -> None:
    """A task an operation starts and never awaits is reported; once a task
    leak has been seen, its creation site is tracked too."""
    spec = jostle.spec(leaky.Notifier, jostle.operation(leaky.kick), model=leaky.NoneModel)
    failure = _leak(spec, max_prefix=1)
    finding = _finding(failure)
    assert "Notifier._watch) still pending" in finding.summary
    assert "waiting at " in finding.detail
    # the origin is the coroutine's code, which needs no tracking ...
    assert _origin(failure) == (leaky.__file__, _line("async def _watch"))
    # ... and once a task leak has been seen, where it was created is tracked
    again = _leak(spec, max_prefix=1)
    assert f"leaky.py:{_line(after='class Notifier')} in kick" in _finding(again).detail
    assert _origin(again) == _origin(failure)


def test_cancelled_and_awaited_tasks_are_not_leaks() -> None:
    """The twin whose aclose() cancels and awaits its tasks passes."""
    spec = jostle.spec(leaky.CancellingNotifier, jostle.operation(leaky.kick),
                       model=leaky.NoneModel)
    jostle.run(spec, settings=FEW, **ONE)


def test_a_coroutine_never_awaited_is_caught() -> None:
    """A sync operation calling an async method without awaiting it is
    reported as a coroutine never awaited, not as Python's bare warning."""
    spec = jostle.spec(leaky.Mailer, jostle.operation(leaky.forgetful_touch, name="touch"),
                       model=leaky.NoneModel)
    failure = _leak(spec)
    finding = _finding(failure)
    assert "coroutine 'Mailer.send' was never awaited" in finding.summary
    assert f"dropped (garbage collected) at {os.path.relpath(leaky.__file__)}:" in finding.detail


def test_an_awaited_coroutine_is_not_a_leak() -> None:
    """The twin that awaits it passes."""
    spec = jostle.spec(leaky.Mailer, jostle.operation(leaky.careful_touch, name="touch"),
                       model=leaky.NoneModel)
    jostle.run(spec, settings=FEW, **ONE)


def test_a_child_process_never_waited_for_is_caught_and_killed() -> None:
    """A child process an operation starts and never waits for is reported
    with its command line and creating line, then killed."""
    spec = jostle.spec(leaky.Spawner, jostle.operation(leaky.spawn), model=leaky.NoneModel)
    failure = _leak(spec)
    finding = _finding(failure)
    assert "child process" in finding.summary and "still running" in finding.summary
    assert "command line: sleep 60" in finding.detail
    _created_at(failure, _line(after="class Spawner"))


def test_a_reaped_child_is_not_a_leak() -> None:
    """The twin that kills and waits for its children passes."""
    spec = jostle.spec(leaky.ReapingSpawner, jostle.operation(leaky.spawn),
                       model=leaky.NoneModel)
    jostle.run(spec, settings=FEW, **ONE)


def test_an_open_file_descriptor_is_caught_with_what_it_points_at() -> None:
    """A descriptor the factory opens and never closes is reported with the
    file it points at and the line that opened it."""
    failure = _leak(touch_spec(leaky.Journal))
    finding = _finding(failure)
    assert "file descriptor" in finding.summary and "still open (a file)" in finding.summary
    assert "points at " in finding.detail and "jostle-journal-" in finding.detail
    _created_at(failure, _line(after="class Journal"))


def test_a_closed_file_descriptor_is_not_a_leak() -> None:
    """The twin that closes it passes."""
    jostle.run(touch_spec(leaky.ClosingJournal), settings=FEW, **ONE)


def test_a_shared_memory_segment_never_unlinked_is_caught_and_unlinked() -> None:
    """A segment the factory creates and never unlinks is reported, then
    unlinked, so nothing stays in /dev/shm."""
    before = set(os.listdir("/dev/shm"))
    failure = _leak(touch_spec(leaky.Board))
    finding = _finding(failure)
    assert "shared-memory segment" in finding.summary and "never unlinked" in finding.summary
    _created_at(failure, _line(after="class Board"))
    assert not {n for n in set(os.listdir("/dev/shm")) - before if n.startswith("psm_")}


def test_an_unlinked_segment_is_not_a_leak() -> None:
    """The twin that unlinks it passes."""
    jostle.run(touch_spec(leaky.UnlinkingBoard), settings=FEW, **ONE)


def test_each_kind_can_be_switched_off() -> None:
    """leaks= takes True, False, kinds, or '-kind'; a switched-off kind is not
    reported."""
    jostle.run(touch_spec(leaky.Poller), settings=FEW, leaks="-threads", **ONE)
    jostle.run(touch_spec(leaky.Journal), settings=FEW, leaks=False, **ONE)
    jostle.run(touch_spec(leaky.Board), settings=FEW, leaks=("threads", "fds"), **ONE)
    assert leak_kinds(True) == set(LEAK_KINDS)
    assert leak_kinds("threads, fds") == {"threads", "fds"}
    assert leak_kinds("-fds,-shm") == set(LEAK_KINDS) - {"fds", "shm"}
    with pytest.raises(jostle.SpecError, match=r"unknown leak kind 'thread'.*threads"):
        leak_kinds(["thread"])
    with pytest.raises(jostle.SpecTypeError, match=r"leaks=\.\.\.\).*got 3"):
        jostle.concurrent_test(touch_spec(leaky.Poller), leaks=3)  # type: ignore[arg-type]


def test_a_leak_in_controlled_mode_is_caught_too() -> None:
    """Controlled runs are checked the same way (a descriptor here)."""
    failure = _leak(touch_spec(leaky.Journal), mode="controlled")
    _created_at(failure, _line(after="class Journal"))


def test_replay_checks_each_run_for_leaks() -> None:
    """jostle.replay (what repro.py calls) reports a leak of the run it replays."""
    scenario = jostle.Scenario(workers=(jostle.WorkerPlan("thread", (jostle.Step("touch"),)),))
    with pytest.raises(jostle.ResourceLeaked, match="still open"):
        jostle.replay(touch_spec(leaky.Journal), scenario)
    jostle.replay(touch_spec(leaky.Journal), scenario, leaks="-fds")


def test_jostles_own_threads_loops_and_workers_are_not_leaks() -> None:
    """Starting jostle's pools, loop, driver and process workers inside a
    check reports nothing."""
    from jostle._engine import Engine

    import proc_resources as pr

    spec = jostle.spec(pr.FileCounter, jostle.operation(pr.take), model=pr.CounterModel)
    scenario = jostle.Scenario(workers=(jostle.WorkerPlan("process", (jostle.Step("take"),)),
                                        jostle.WorkerPlan("thread", (jostle.Step("take"),))))
    engine = Engine()
    try:
        with LeakCheck(LEAK_KINDS) as check:
            assert jostle.judge(spec, engine.execute(spec, scenario)).ok
            controlled = jostle.ControlledScheduler(jostle.Preemptions())
            assert jostle.judge(spec, engine.execute(spec, scenario, scheduler=controlled)).ok
        # a fresh engine is not the process-wide one: its parts are leaks
        assert {leak.kind for leak in check.leaks} <= {"threads", "fds"}
    finally:
        engine.close()
    with LeakCheck(LEAK_KINDS) as check:
        jostle.execute(spec, scenario)
        jostle.execute(spec, scenario, scheduler=jostle.ControlledScheduler(jostle.Preemptions()))
    assert check.leaks == []


def test_a_thread_that_is_just_finishing_is_not_a_leak() -> None:
    """A thread that ends right after the example (set an event, then return)
    gets a grace instead of a report."""
    go = threading.Event()

    class Handoff:
        def __init__(self) -> None:
            self.t = threading.Thread(target=go.wait)
            self.t.start()

        def close(self) -> None:
            go.set()  # not joined: it ends by itself a moment later

    jostle.run(touch_spec(Handoff), settings=FEW, **ONE)


def test_a_task_done_at_the_next_iteration_is_not_a_leak() -> None:
    """A fire-and-forget task that finishes at the loop's next turn is not
    reported."""
    class Fire:
        async def kick(self) -> None:
            asyncio.get_running_loop().create_task(asyncio.sleep(0))

    async def kick(r: Fire) -> None:
        await r.kick()

    spec = jostle.spec(Fire, jostle.operation(kick), model=leaky.NoneModel)
    jostle.run(spec, settings=FEW, **ONE)


def test_descriptors_and_segments_changed_between_checks_are_not_blamed_on_the_next() -> None:
    """What changed between two checks is not the next one's leak: a
    descriptor opened or a segment created between examples is not blamed on
    the next example, and one opened inside it still is."""
    from multiprocessing import shared_memory

    kinds = ("fds", "shm")
    with LeakCheck(kinds) as clean:
        pass
    r, w = os.pipe()
    seg = shared_memory.SharedMemory(create=True, size=16)
    try:
        with LeakCheck(kinds) as between:
            pass
        with LeakCheck(kinds) as inside:
            fd = os.open(os.devnull, os.O_RDONLY)
        os.close(fd)
    finally:
        os.close(r)
        os.close(w)
        seg.close()
        seg.unlink()
    assert clean.leaks == [] and between.leaks == []
    assert [leak.kind for leak in inside.leaks] == ["fds"]


def test_two_opened_and_the_first_closed_between_checks_is_not_the_next_ones_leak() -> None:
    """A process start between examples opens pipes and closes some of them,
    which can leave the lowest free descriptor where it was; the descriptor
    left open is still not the next example's leak."""
    kinds = ("fds",)
    with LeakCheck(kinds):
        pass
    first, second = os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_RDONLY)
    os.close(first)  # the lowest free number is back where it was
    try:
        with LeakCheck(kinds) as after:
            pass
    finally:
        os.close(second)
    assert after.leaks == []
