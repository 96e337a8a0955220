"""The seam between the engine and whoever decides the interleaving.

The engine asks a ``Scheduler`` at every scheduling point of every worker:
before and after each operation, and at ``jostle.sync_point()`` calls.  What
the scheduler does there is the whole difference between the two modes:

* ``StressScheduler`` (this module) lets the operating system decide.  It
  only shapes the run: all workers are held at a start gate and released
  together, and ``sys.setswitchinterval`` is lowered while the parallel part
  runs so CPython switches threads far more often (pytest-run-parallel does
  the same).  Every other point returns at once.
* A controlled scheduler (a later module) blocks each worker at its points
  until it is that worker's turn, with the turns drawn by Hypothesis.

Thread workers call ``thread_point`` on their own thread; task workers await
``task_point`` on the loop; process workers report points over their pipe
only when ``remote_points`` is true (a round trip per point would distort a
stress run), and the engine then calls ``process_point`` on the controller.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Literal

from ._control import Strategy
from ._history import WorkerKind

__all__ = ["ControlledScheduler", "Point", "Scheduler", "StressScheduler", "WorkerInfo"]


class Point(str, Enum):
    """Where in a worker a scheduling point is."""

    START = "start"
    INVOKE = "invoke"
    RETURN = "return"
    SYNC = "sync"
    END = "end"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A parallel worker as the scheduler sees it."""

    worker: int
    kind: WorkerKind
    n_ops: int


class Scheduler:
    """Decides the interleaving of one execution's parallel part.

    Subclasses override the hooks they need; the base class lets every worker
    run freely.  One scheduler object serves one execution at a time and may
    be reused for the next after ``end()``.
    """

    #: Name printed on reports (``stress``, ``controlled``...).
    name: ClassVar[str] = "free"
    #: Whether process workers must stop at each point and wait for
    #: ``process_point`` to return before going on.
    remote_points: ClassVar[bool] = False

    def begin(self, workers: tuple[WorkerInfo, ...]) -> None:
        """Called on the controller before any worker of the parallel part runs."""

    def before_release(self) -> None:
        """Called on the controller when every worker waits at the start
        gate, just before it opens."""

    def thread_point(self, worker: int, point: Point, label: str = "") -> None:
        """Called on a thread worker's own thread at each point."""

    async def task_point(self, worker: int, point: Point, label: str = "") -> None:
        """Awaited by a task worker on the loop at each point."""

    def process_point(self, worker: int, point: Point, label: str = "") -> None:
        """Called on the controller when a process worker reports a point
        (only when ``remote_points``); the process resumes when it returns."""

    def end(self) -> None:
        """Called on the controller after every worker finished or was
        abandoned (also after a hang)."""

    def describe(self) -> str:
        """One line for reports: the mode and its parameters."""
        return self.name


class StressScheduler(Scheduler):
    """Real concurrency: release together, then let the OS interleave.

    Args:
        switch_interval: the value ``sys.setswitchinterval`` is set to while
            the parallel part runs (restored at ``end``).
    """

    name = "stress"

    def __init__(self, *, switch_interval: float = 1e-6) -> None:
        self.switch_interval = switch_interval
        self._saved: float | None = None

    def begin(self, workers: tuple[WorkerInfo, ...]) -> None:
        self._saved = sys.getswitchinterval()

    def before_release(self) -> None:
        sys.setswitchinterval(self.switch_interval)

    def end(self) -> None:
        if self._saved is not None:
            sys.setswitchinterval(self._saved)
            self._saved = None

    def describe(self) -> str:
        return f"stress (switch interval {self.switch_interval:g} s)"


class ControlledScheduler(Scheduler):
    """Hypothesis owns the interleaving: one worker runs at a time.

    Every scheduling point of every worker (thread preemption points under
    the chosen model, the event loop's ready queue, process workers' sync
    points) is a decision of ``strategy``, logged in one global list, so the
    same strategy data replays the same run.

    Args:
        strategy: who runs next (see ``jostle._strategies``).
        model: ``"gil"``: threads switch only where CPython can switch them
            (function entry, backward jumps, blocking calls), so what is found
            can happen on a stock interpreter; ``"opcode"``: at any bytecode,
            as on a free-threaded build.
        max_steps: scheduling points before a run counts as a livelock.
        watchdog: wall-clock seconds without a scheduling point before the
            running worker is reported as blocked in code jostle does not
            control.
        inject: let the strategy inject cancellations into task workers at
            their awaits.
        kill: let the strategy kill process workers at their sync points.
        process_lines: process workers also pause before each line of the
            code under test, not only at operation boundaries and sync
            points (processes run in parallel: any line can interleave).
    """

    name = "controlled"
    remote_points = True

    def __init__(self, strategy: Strategy, *, model: Literal["gil", "opcode"] = "gil",
                 max_steps: int = 100_000, watchdog: float = 0.5, inject: bool = False,
                 kill: bool = False, process_lines: bool = True) -> None:
        self.strategy = strategy
        self.model = model
        self.max_steps = max_steps
        self.watchdog = watchdog
        self.inject = inject
        self.kill = kill
        self.process_lines = process_lines

    def describe(self) -> str:
        return f"controlled, {self.model} preemption model"
