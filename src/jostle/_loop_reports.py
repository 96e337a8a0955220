r"""What a controlled event loop run produced, and why one could not go on.

:class:`LoopRun` is the record of one ``run_controlled`` execution;
:class:`LoopStuck` and its kinds (an asyncio deadlock, a livelock, a wait for
something jostle does not control) say why a run stopped, with every
unfinished task's await stack (:class:`WaitingTask`).  They are ``Hang``\ s,
so a stuck run surfaces as a hang finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._control import Decision
from ._errors import Hang

__all__ = ["AsyncDeadlock", "LoopLivelock", "LoopRun", "LoopStuck", "UncontrolledWait",
           "WaitingTask"]


@dataclass(frozen=True, slots=True)
class WaitingTask:
    """A task that had not finished when the loop got stuck.

    Attributes:
        index: its normalised index (``task 2``).
        name: its name.
        stack: its await stack, outermost first, formatted.
        where: the innermost frame of user code ``(file, line)``, if any.
    """

    index: int
    name: str
    stack: str
    where: tuple[str, int] | None

    def describe(self) -> str:
        """``task 1 ('w1') waiting at file.py:12`` and its stack, indented."""
        at = f" waiting at {self.where[0]}:{self.where[1]}" if self.where else ""
        stack = "".join(f"    {line}\n" for line in self.stack.rstrip("\n").splitlines())
        return f"  task {self.index} ({self.name!r}){at}\n{stack}"


class LoopStuck(Hang):
    """The controlled loop could not go on; ``tasks`` holds every unfinished
    task with its await stack, ``pending`` names what the loop waited for."""

    def __init__(self, headline: str, tasks: tuple[WaitingTask, ...],
                 pending: tuple[str, ...] = ()) -> None:
        self.headline = headline
        self.tasks = tasks
        self.pending = pending
        lines = [headline]
        lines += [f"  pending: {p}" for p in pending]
        lines += [t.describe().rstrip("\n") for t in tasks]
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.headline, self.tasks, self.pending))


class AsyncDeadlock(LoopStuck):
    """No callback is ready, no timer is pending and nothing else can wake
    the loop, yet tasks wait: they wait forever."""


class LoopLivelock(LoopStuck):
    """The run went past ``max_steps`` callbacks (a task spinning on
    ``await asyncio.sleep(0)`` for a change no schedule makes, or a bound
    too low for the scenario)."""


class UncontrolledWait(LoopStuck):
    """The loop can only go on when something jostle does not control
    happens (a socket becomes readable, an executor thread finishes), and it
    did not happen within the grace period.  Not proof of a bug: the run is
    outside what controlled mode can decide."""


@dataclass(frozen=True, slots=True)
class LoopRun:
    """What one :func:`run_controlled` execution produced.

    Attributes:
        results: each coroutine's return value (``None`` if it raised, was
            cancelled or did not finish).
        exceptions: what each raised (a ``CancelledError`` if it was
            cancelled), or ``None``.
        done: whether each finished.
        decisions: the loop's decisions (non-default choices only), in order.
        injections: how many cancellations were injected.
        injected: where each injection landed (``task 0 at pool.py:41``).
        virtual_time: the virtual clock at the end of the run.
        steps: callbacks run.
        stuck: why the run did not finish (deadlock, livelock, uncontrolled
            wait), or ``None``.
    """

    results: tuple[object, ...]
    exceptions: tuple[BaseException | None, ...]
    done: tuple[bool, ...]
    decisions: tuple[Decision, ...]
    injections: int
    injected: tuple[str, ...]
    virtual_time: float
    steps: int
    stuck: LoopStuck | None = None

    @property
    def ok(self) -> bool:
        """Every coroutine returned normally."""
        return self.stuck is None and all(self.done) and all(e is None for e in self.exceptions)
