"""What happened in one execution: invoke and response of every operation.

A history is the single thing the checkers read.  Records are frozen and
slotted; timestamps come from ``time.monotonic_ns()``, which on Linux reads
``CLOCK_MONOTONIC``, a clock shared by every process on the machine, so
thread, task and process workers can be ordered against each other.

Outcomes are one of three: ``Returned`` (a value), ``Raised`` (an exception,
kept with its formatted traceback, which survives pickling from a process),
or ``Unknown`` (cancelled, hung, or the worker died): the operation may or
may not have taken effect, and the linearizability checker treats it so
(Jepsen's "info" operations, Porcupine's pending calls).
"""

from __future__ import annotations

import _thread
import time
from dataclasses import dataclass, field
from traceback import format_exception as _format_exception
from typing import Literal

from ._unknown import UNKNOWN

__all__ = [
    "History",
    "OpRecord",
    "Outcome",
    "Raised",
    "Returned",
    "Unknown",
    "WorkerKind",
]

WorkerKind = Literal["thread", "task", "process"]
Phase = Literal["prefix", "parallel", "suffix"]


@dataclass(frozen=True, slots=True)
class Returned:
    """The operation returned ``value``."""

    value: object


class Raised:
    """The operation raised ``exception``; ``traceback`` is its formatted text.

    The text is formatted when first read (most raised outcomes are an
    expected ``Empty`` or ``KeyError`` nobody reads the traceback of, and
    formatting costs more than the whole operation); an exception's
    ``__traceback__`` keeps what the text needs.  Pickling formats it, so the
    text survives the trip from a process worker.

    ``type_name`` is the exception's qualified class name, which is what the
    linearizability checker compares (exceptions do not define equality).  An
    exception that could not be pickled back from a process worker arrives as
    a stand-in carrying the original name in ``__jostle_type_name__``.
    """

    __slots__ = ("_text", "exception")

    def __init__(self, exception: BaseException, traceback: str | None = None) -> None:
        self.exception = exception
        self._text = traceback

    @property
    def traceback(self) -> str:
        if self._text is None:
            exc = self.exception
            self._text = "".join(_format_exception(type(exc), exc, exc.__traceback__))
        return self._text

    @property
    def type_name(self) -> str:
        name = getattr(self.exception, "__jostle_type_name__", None)
        return name if isinstance(name, str) else type(self.exception).__qualname__

    def __reduce__(self) -> tuple[type[Raised], tuple[BaseException, str]]:
        return Raised, (self.exception, self.traceback)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Raised):
            return NotImplemented
        return self.exception is other.exception or (
            self.exception == other.exception and self.traceback == other.traceback)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Raised(exception={self.exception!r})"


@dataclass(frozen=True, slots=True)
class Unknown:
    """The operation's effect is unknown: ``reason`` is one of ``cancelled``,
    ``hung``, ``worker died``, ``unknown`` (returned ``jostle.UNKNOWN``)."""

    reason: str


Outcome = Returned | Raised | Unknown


def outcome_of(value: object) -> Outcome:
    """The outcome of an operation that returned ``value``: ``jostle.UNKNOWN``
    means the operation itself could not tell whether it took effect."""
    return Unknown("unknown") if value is UNKNOWN else Returned(value)


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One operation of a history.

    Attributes:
        index: position of the operation in the scenario (unique per history).
        worker: worker id; the sequential prefix and suffix run as worker 0,
            parallel workers are numbered from 1.
        kind: the kind of worker that ran it.
        phase: ``prefix``, ``parallel`` or ``suffix``.
        op: the operation's name.
        args: its positional arguments.
        invoke: ``time.monotonic_ns()`` just before the call.
        response: ``time.monotonic_ns()`` just after it, or ``None`` if it
            never returned.
        outcome: what it returned or raised, or ``Unknown``.
    """

    index: int
    worker: int
    kind: WorkerKind
    phase: Phase
    op: str
    args: tuple[object, ...]
    invoke: int
    response: int | None
    outcome: Outcome

    def call_repr(self) -> str:
        """``name(arg, ...)`` as the operation would be written in code."""
        return f"{self.op}({', '.join(map(repr, self.args))})"

    def outcome_repr(self) -> str:
        """A short text for the outcome: ``-> 3``, ``raised KeyError``, ``?``."""
        out = self.outcome
        if isinstance(out, Returned):
            return f"-> {out.value!r}"
        if isinstance(out, Raised):
            return f"raised {out.type_name}: {out.exception}"
        return f"? ({out.reason})"


@dataclass(frozen=True, slots=True)
class History:
    """All operations of one execution, ordered by invoke time."""

    ops: tuple[OpRecord, ...]

    def by_worker(self) -> dict[int, list[OpRecord]]:
        """Operations grouped per worker, each group in invoke order."""
        out: dict[int, list[OpRecord]] = {}
        for rec in self.ops:
            out.setdefault(rec.worker, []).append(rec)
        return out


@dataclass
class Recorder:
    """Thread-safe accumulator of records, filled by workers of every kind.

    Its lock is a raw ``_thread`` lock taken at import: a controlled run
    creates its recorder inside the patching window, where
    ``threading.Lock`` is a cooperative lock whose every use would be a
    scheduling point.
    """

    _records: list[OpRecord] = field(default_factory=list)
    _lock: _thread.LockType = field(default_factory=_thread.allocate_lock)

    def add(self, rec: OpRecord) -> None:
        with self._lock:
            self._records.append(rec)

    def history(self) -> History:
        with self._lock:
            recs = sorted(self._records, key=lambda r: (r.invoke, r.index))
        return History(tuple(recs))


_monotonic_ns = time.monotonic_ns  # bound at import: controlled runs patch time.*


#: The shared monotonic clock used for every timestamp (``time.monotonic_ns``
#: taken at import, so a C call, no wrapper).  Always the real clock, even
#: inside a controlled run whose ``time`` functions are virtual: there,
#: operations run one at a time, so real timestamps give the checker exactly
#: the real-time order of the run.
now = _monotonic_ns
