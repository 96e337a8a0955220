"""The dogfooding campaigns in fuzz/dogfood.py can fail: each finds a bug
planted in the jostle component it targets (and the baton's real one)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import jostle
from jostle import _findings
from jostle._control import Aborted, Controller, Entity, Strategy
from jostle._processes import ProcessPool, ProcessWorker
from jostle._threads import PoolThread, ThreadPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

import dogfood

pytestmark = pytest.mark.slow


def quick(max_examples: int) -> settings:
    return settings(max_examples=max_examples, derandomize=True, database=None)


# -- a. failure folders ------------------------------------------------------


@contextlib.contextmanager
def _no_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    yield


def test_failure_folders_without_the_flock_lose_an_update(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Two writers of one bug's folder without its flock: a save is lost."""
    monkeypatch.setattr(_findings, "_locked", _no_lock)
    with pytest.raises(jostle.ConcurrencyFailure) as info:
        jostle.run(dogfood.folder_spec(), kinds=("thread",), max_workers=3, repeats=5,
                   settings=quick(60))
    assert "save(" in str(info.value)


def test_failure_folders_pass_with_the_real_writer() -> None:
    """The real writer passes the same campaign, threads and processes at once."""
    jostle.run(dogfood.folder_spec(), max_workers=3, repeats=2, settings=quick(10))


# -- b. worker pools ---------------------------------------------------------


class RecyclingThreadPool(ThreadPool):
    """Planted: release takes abandoned threads back."""

    def release(self, threads: list[PoolThread]) -> None:
        with self._lock:
            self._idle.extend(t for t in threads if not t.busy)


class RecyclingBench(dogfood.WorkerBench):
    pool_class = RecyclingThreadPool


def test_worker_pools_catch_an_abandoned_thread_handed_out_again() -> None:
    """A pool that reuses an abandoned thread fails the campaign."""
    with pytest.raises(jostle.InvariantViolated, match="abandoned"):
        jostle.run(dogfood.worker_spec(RecyclingBench), repeats=1, settings=quick(60))


class ForgetfulProcessPool(ProcessPool):
    """Planted: discard kills the worker but keeps it on the pool's books."""

    def discard(self, worker: ProcessWorker) -> None:
        worker.kill()


class ForgetfulBench(dogfood.ProcessBench):
    pool_class = ForgetfulProcessPool


def test_process_pool_catches_a_discarded_worker_kept() -> None:
    """A pool that keeps a discarded worker fails the campaign."""
    with pytest.raises(jostle.InvariantViolated, match="still in the pool"):
        jostle.run(dogfood.process_spec(ForgetfulBench), max_workers=2, max_ops=1, repeats=1,
                   settings=quick(30))


# -- c. the baton --------------------------------------------------------------


class WakeAllController(Controller):
    """Planted: wake() wakes every blocked entity, whatever it waits for."""

    def wake(self, on: object, *, count: int | None = None) -> int:
        woken = 0
        for e in self.entities:
            if e.blocked_on is not None:
                woken += super().wake(e.blocked_on, count=count)
        return woken


class WakeAllBench(dogfood.BatonBench):
    controller_class = WakeAllController


def test_baton_catches_a_wake_of_the_wrong_waiter() -> None:
    """A wake that ignores the resource gives a trace the baton's rules do not."""
    with pytest.raises(jostle.NotLinearizable, match="handoff"):
        jostle.run(dogfood.baton_spec(WakeAllBench), repeats=1, settings=quick(100))


def test_abort_while_a_finishing_entity_hands_off_releases_its_successor_once() -> None:
    """Found by the baton campaign: a watchdog abort between a finishing
    entity's choice of successor and the handoff released the successor's
    park twice (RuntimeError: release unlocked lock)."""
    ctl = Controller(Strategy())
    first, second = ctl.add("first"), ctl.add("second")
    ctl.hold(first)
    choose = ctl._next_after

    def abort_after_choosing(me: Entity, kind: str, label: str) -> Entity | None:
        nxt = choose(me, kind, label)  # type: ignore[arg-type]
        watchdog = threading.Thread(target=ctl.abort)
        watchdog.start()
        watchdog.join()
        return nxt

    ctl._next_after = abort_after_choosing  # type: ignore[method-assign]
    ctl.finish(first)
    assert second.aborted
    with pytest.raises(Aborted):
        ctl.enter(second)  # released once, by the abort
    assert ctl.wait(0)
