"""Process workers under the baton: one proxy entity per process.

A process worker cannot be traced from the controller, so it takes part in a
controlled run through its sync points: the start and end of each operation,
each call through a shared-resource adapter, and explicit
:func:`jostle.sync_point` calls.  At each point the worker pauses and reports
over its pipe (``pause_at_points``); a *proxy* entity in the controller
stands for it in the global schedule.  While the proxy holds the baton the
process runs (from one point to the next) and everyone else waits, so a
process's steps interleave with threads and tasks exactly as the strategy
says.  Killing the worker at a point is a choice of the strategy too
(``inject:kill``), after which its operation's outcome is unknown.

Field notes: 19-25 us a point pinned, 40-43 us unpinned; 0 mismatches in
1,000 replays of 2 processes x 5 increments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

from ._control import Aborted, Controller, Entity
from ._history import OpRecord
from ._process_child import Event
from ._processes import END, START, ProcessWorker

__all__ = ["ProxyResult", "run_proxy"]

#: Wall-clock seconds a released process may take to reach its next point
#: before it is taken to be blocked outside jostle's control.
_GRACE = 0.02


@dataclass
class ProxyResult:
    """What a proxy saw of its process.

    Attributes:
        records: the operation records, in run order.
        died: the worker exited (crashed or was killed at a point).
        killed_at: the point label where the strategy killed it, if it did.
        stalled: the process did not reach its next point within the
            watchdog's time (blocked in code jostle does not control).
        error: a misuse found when the worker loaded or attached the job.
    """

    records: list[OpRecord] = field(default_factory=list)
    error: Exception | None = None
    died: bool = False
    killed_at: str | None = None
    stalled: bool = False


def run_proxy(controller: Controller, entity: Entity, worker: ProcessWorker,
              result: ProxyResult, *, stall_timeout: float, allow_kill: bool = False) -> None:
    """Drive one process worker as ``entity`` (runs on a controller thread).

    The job must have been submitted with ``pause_at_points=True``.  Call it
    on a thread of its own; it parks until the entity holds the baton.
    """
    def budget() -> int:
        # Killing is offered at every point inside an operation: none may be
        # passed without asking then.
        return 0 if allow_kill else controller.budget(entity)

    try:
        # Without a start gate (the engine's jobs) the worker attached and ran
        # on to its first point (an operation's start), where it waits.
        controller.enter(entity)
        if worker.gated:
            worker.go(budget())
        while True:
            event = worker.next_event(_GRACE)
            if event is not None and event[0] == "external":
                # It waits for an OS file lock another process holds.
                controller.advance(entity, event[3] if len(event) > 3 else 0)
                event = _wait_outside(controller, entity, worker, stall_timeout,
                                      f"{entity.name}: waiting for {event[2]}")
            elif event is None:
                event = _next_while_running(worker, stall_timeout)
                if event is None and not _runnable(worker.pid):
                    # Not at a point yet and asleep in the kernel: waiting on
                    # a lock another process holds (sqlite, a semaphore).
                    # Let others run.
                    event = _wait_outside(controller, entity, worker, stall_timeout,
                                          f"{entity.name}: waiting outside jostle")
            if event is None:
                result.stalled = True
                return  # the engine's watchdog reports and kills it
            kind = event[0]
            if kind == "point":
                controller.advance(entity, event[3] if len(event) > 3 else 0)
                label = str(event[2])
                where = {START: "start", END: "end"}.get(label, label)
                controller.point(entity, f"{entity.name}: {where}")
                # Killing is offered inside an operation only: at its start the
                # op never ran, at its end it fully ran; neither is a crash.
                if allow_kill and label not in (START, END) and controller.pick(
                        entity, 2, "inject:kill", f"kill {entity.name} at {where}"):
                    result.killed_at = where
                    worker.crash()
                else:
                    worker.release(budget())
            elif kind in ("died", "done"):
                if kind == "done" and len(event) > 2:
                    controller.advance(entity, event[2])
                result.died = kind == "died"
                # collect() returns at once now; after a death it adds the
                # in-flight operation as pending.
                result.records = worker.collect(0.0) or []
                break
        controller.finish(entity)
    except Aborted:
        return


def _next_while_running(worker: ProcessWorker, timeout: float) -> Event | None:
    """The worker's next event while it is still on a CPU or waiting for one.

    A process that took longer than the grace period is waiting outside
    jostle only if the kernel says it sleeps; on a loaded machine one that
    is merely slow is runnable, and passing the baton on would run a
    schedule the strategy did not choose.
    """
    deadline = monotonic() + timeout
    while _runnable(worker.pid) and monotonic() < deadline:
        event = worker.next_event(_GRACE)
        if event is not None:
            return event
    return None


def _runnable(pid: int) -> bool:
    """Whether ``pid`` is running or runnable (``R`` in ``/proc/<pid>/stat``);
    ``False`` where there is no ``/proc`` (the grace period alone decides)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # pid (comm) state ...: comm may hold spaces and parentheses.
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"R"


def _wait_outside(controller: Controller, entity: Entity, worker: ProcessWorker,
                  timeout: float, label: str) -> Event | None:
    """Let others run while the process waits outside the schedule; its
    next event (``None`` if none came within ``timeout``)."""
    controller.block_external(entity, label)
    event = worker.next_event(timeout)
    if event is not None:
        controller.external_ready(entity)
    return event
