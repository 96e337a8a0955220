"""What one execution produced, for the checker: the record both engines fill.

The stress engine (``_engine``) and the controlled one (``_controlled_run``)
run scenarios very differently; what they hand the checker is the same
:class:`Execution`, so judging, reporting and shrinking never need to know
which mode ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._control import Decision
from ._history import History, Raised, WorkerKind
from ._scenario import Scenario

__all__ = ["Execution", "StuckWorker"]


@dataclass(frozen=True, slots=True)
class StuckWorker:
    """A worker that did not finish before the watchdog fired.

    Attributes:
        worker: worker id (0 = the sequential part).
        kind: its kind.
        op: the operation it was running (``name(args)``), if any.
        stack: where it was, formatted.
        where: the innermost frame of user code ``(file, line)``, if known.
    """

    worker: int
    kind: WorkerKind
    op: str | None
    stack: str
    where: tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class Execution:
    """Everything one run of a scenario produced, for the checker.

    Attributes:
        scenario: what was run.
        history: every operation's invoke and response.
        scheduler: the scheduler's one-line description.
        timeout: the watchdog's deadline in seconds.
        stuck: workers still running at the deadline (a hang).
        crashed: ids of process workers that died during the run.
        exit_statuses: how each crashed worker ended (its exit status, or
            minus the signal that killed it).
        errors: ``(stage, Raised)`` for exceptions outside the operations:
            stage is ``invariant`` or ``teardown``.
        resource_name: the resource's type name.
        decisions: the controlled run's decision log (empty under stress).
        entities: names of the controlled run's entities, by id.
        deadlock: the wait-for cycle, when a controlled run deadlocked.
        hang_reason: why the run counts as hung, when jostle knows more
            than "still running" (livelock, uncontrolled blocking).
        warnings: things worth knowing that are not failures (lock-order
            inversions seen in a run that did not deadlock).
        controlled: whether a controlled scheduler ran it (its
            ``decisions`` replay it exactly; an empty log means no choice
            was ever made).
        steps: decisions the controlled run made (points with two or more
            options), logged or not.
    """

    scenario: Scenario
    history: History
    scheduler: str
    timeout: float
    stuck: tuple[StuckWorker, ...] = ()
    crashed: tuple[int, ...] = ()
    #: ``(worker, exit status)`` of each crashed worker (``-N``: signal N).
    exit_statuses: tuple[tuple[int, int | None], ...] = ()
    errors: tuple[tuple[str, Raised], ...] = ()
    resource_name: str = ""
    decisions: tuple[Decision, ...] = ()
    entities: tuple[str, ...] = ()
    deadlock: str | None = None
    hang_reason: str | None = None
    warnings: tuple[str, ...] = ()
    controlled: bool = False
    steps: int = 0

    @property
    def preemptions(self) -> int | None:
        """Switches away from a runnable worker (controlled runs), else ``None``."""
        if not self.controlled:
            return None
        return sum(1 for d in self.decisions if d.kind == "switch")

    @property
    def hung(self) -> bool:
        """Whether the watchdog fired."""
        return bool(self.stuck)
