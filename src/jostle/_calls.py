"""How jostle calls the user's code and turns what happens into an outcome.

Shared by the stress engine and the controlled one: an operation either
returns (``Returned``, or ``Unknown`` for ``jostle.UNKNOWN``), raises
(``Raised``, with its formatted traceback: every exception is a result to
judge, never an error of jostle's), or, for a task, is cancelled
(``Unknown("cancelled")``).  ``Aborted`` is the controller unwinding a worker
and is never recorded.  :class:`CallLedger` keeps one execution's records
and each worker's call in flight, for both engines' watchdogs.
"""

from __future__ import annotations

import _thread
import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from ._control import Aborted
from ._errors import SpecTypeError
from ._execution import Execution, StuckWorker
from ._history import OpRecord, Outcome, Phase, Raised, Recorder, Unknown, WorkerKind, outcome_of
from ._scenario import Scenario, Step
from ._spec import Operation

__all__ = [
    "CallLedger",
    "append_call",
    "awaitable",
    "build",
    "call_on_loop",
    "call_sync",
    "default_teardown",
    "maybe_await",
    "not_awaited",
    "on_loop",
    "raised",
]

# Types no operation's result of which can be awaitable: checking these
# first skips inspect.isawaitable's ABC check (a Python-level
# __instancecheck__) for nearly every result.
_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes, tuple, list, dict, set,
                    frozenset})


#: An operation in flight: scenario index, step, operation, worker kind,
#: phase and invoke time.
InFlight = tuple[int, Step, Operation, WorkerKind, Phase, int]


class CallLedger:
    """The records of one execution, what each worker is calling now, and
    what went wrong on the way (stuck and crashed workers, errors).

    Shared by the stress run and the controlled one.  A worker given up on
    (hung, its thread abandoned, its process killed) is *dead*: its
    in-flight operation is recorded as pending, and anything it records
    late is dropped, so it never adds a second record for an operation
    already recorded as hung.
    """

    def __init__(self) -> None:
        self.rec = Recorder()
        self.inflight: dict[int, InFlight] = {}
        self.dead: set[int] = set()
        # Raw: a controlled run makes its ledger inside the patching window.
        self._rec_lock = _thread.allocate_lock()
        self.stuck: list[StuckWorker] = []
        self.crashed: list[int] = []
        self.exit_statuses: list[tuple[int, int | None]] = []
        self.errors: list[tuple[str, Raised]] = []

    def _execution_of(self, scenario: Scenario, scheduler: str, timeout: float,
                      resource_name: str, **more: Any) -> Execution:
        """The :class:`Execution` of what was recorded; ``more`` are the
        fields only one engine fills (decisions, warnings...)."""
        return Execution(
            scenario=scenario,
            history=self.rec.history(),
            scheduler=scheduler,
            timeout=timeout,
            stuck=tuple(self.stuck),
            crashed=tuple(self.crashed), exit_statuses=tuple(self.exit_statuses),
            errors=tuple(self.errors),
            resource_name=resource_name,
            **more,
        )

    def _start(self, w: int, entry: InFlight) -> None:
        with self._rec_lock:
            if w not in self.dead:
                self.inflight[w] = entry

    def _finish(self, w: int, record: OpRecord) -> None:
        with self._rec_lock:
            if w in self.dead:
                return
            self.inflight.pop(w, None)
            self.rec.add(record)

    def _pending(self, w: int, reason: str) -> str | None:
        """Give up on worker ``w``: its in-flight operation becomes pending
        (``Unknown(reason)``); the call as text, or ``None`` if it had none."""
        with self._rec_lock:
            self.dead.add(w)
            entry = self.inflight.pop(w, None)
            if entry is None:
                return None
            index, step, op, kind, phase, invoke = entry
            self.rec.add(OpRecord(index, w, kind, phase, op.name, step.args, invoke, None,
                                  Unknown(reason)))
        return f"{op.name}({', '.join(map(repr, step.args))})"


def awaitable(value: object) -> bool:
    """``inspect.isawaitable(value)``, fast for plain values."""
    return type(value) not in _PLAIN and inspect.isawaitable(value)



def raised(exc: BaseException) -> Raised:
    return Raised(exc)  # the traceback's text is formatted if someone reads it


def not_awaited(op: Operation, value: object) -> Raised:
    close = getattr(value, "close", None)
    if callable(close):
        close()  # no "coroutine was never awaited" warning on top
    return raised(SpecTypeError(
        f"operation {op.name!r} returned an awaitable ({type(value).__name__}) but is not an "
        f"async def, so jostle ran it on a thread and never awaited it; define it with "
        f"`async def {op.name}(resource, ...)` so it runs as a task"
    ))


def on_loop(op: Operation) -> bool:
    return op.is_async or op.kinds == frozenset({"task"})


async def call_on_loop(op: Operation, resource: object, args: tuple[Any, ...]) -> Outcome:
    try:
        value = op.fn(resource, *args)
        if op.is_async or awaitable(value):
            value = await value
        return outcome_of(value)
    except asyncio.CancelledError:
        return Unknown("cancelled")
    except Aborted:
        raise  # the controller gave up on this worker: unwind, do not record
    except BaseException as exc:  # every exception is a result to judge
        return raised(exc)


def append_call(box: list[Outcome], op: Operation, resource: object,
                 args: tuple[Any, ...]) -> None:
    box.append(call_sync(op, resource, args))


def call_sync(op: Operation, resource: object, args: tuple[Any, ...]) -> Outcome:
    try:
        value = op.fn(resource, *args)
    except Aborted:
        raise  # the controller gave up on this worker: unwind, do not record
    except BaseException as exc:  # every exception is a result to judge
        return raised(exc)
    if awaitable(value):
        return not_awaited(op, value)
    return outcome_of(value)


async def build(factory: Callable[[], Any]) -> object:
    value = factory()
    if awaitable(value):
        value = await value
    return value


async def maybe_await(fn: Callable[..., Any], *args: Any) -> object:
    value = fn(*args)
    if awaitable(value):
        value = await value
    return value


def default_teardown(resource: object) -> object:
    aclose = getattr(resource, "aclose", None)
    if callable(aclose):
        return aclose()
    close = getattr(resource, "close", None)
    if callable(close):
        return close()
    return None
