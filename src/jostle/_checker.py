"""Judges an execution: what went wrong, if anything, and why.

Checks, in the order a report lists them:

* **exceptions**: every operation that raised an exception its spec does not
  declare (``expected_errors``), from any worker of any kind, each with its
  own traceback.  None hides another.
* **crashes**: process workers that died during an operation.
* **hangs**: workers still running when the watchdog fired, with stacks.
* **invariants** at quiescence, and a failing teardown.
* **linearizability** of the history against the sequential model.
  Operations that raised undeclared exceptions are treated as pending there
  (they are reported above; the question is whether the *rest* of the run
  still makes sense).

Each finding carries a ``cause``: an exception whose traceback ends where
the bug shows itself (the user's raising line, the line a stuck worker is
blocked on).  Failures are raised chained from it, so Hypothesis, which tells
failures apart by exception type, file and line, keeps distinct bugs distinct
instead of merging them into one "raised in the pool" (field notes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import _observe
from ._errors import (
    ConcurrencyFailure,
    Deadlock,
    Hang,
    InvariantViolated,
    NotLinearizable,
    ResourceLeaked,
    UnexpectedException,
    WorkerCrashed,
)
from ._execution import Execution
from ._history import History, OpRecord, Raised, Unknown
from ._leaks import Leak, describe
from ._linearizability import LinearizabilityResult, check_linearizability
from ._misuse import check_model_results
from ._spec import Spec

__all__ = ["Finding", "Verdict", "judge", "leak_verdict"]

FindingKind = Literal["exception", "crash", "hang", "deadlock", "invariant", "teardown",
                      "linearizability", "leak"]

_FAILURE_TYPES: dict[str, type[ConcurrencyFailure]] = {
    "exception": UnexpectedException,
    "crash": WorkerCrashed,
    "hang": Hang,
    "deadlock": Deadlock,
    "invariant": InvariantViolated,
    "teardown": UnexpectedException,
    "linearizability": NotLinearizable,
    "leak": ResourceLeaked,
}


class BlockedHere(Exception):
    """Stand-in raised at the line where a stuck worker was blocked, so the
    hang's failure origin is that line."""


class LeakedHere(Exception):
    """Stand-in raised at the line that created a leaked thing (or the code
    it runs), so the leak's failure origin is that line."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with an execution.

    Attributes:
        kind: ``exception``, ``crash``, ``hang``, ``deadlock``, ``invariant``,
            ``teardown``, ``linearizability`` or ``leak``.
        summary: one line.
        detail: the long form (traceback, stacks, explanation).
        cause: the exception that locates the bug, chained to the failure.
    """

    kind: FindingKind
    summary: str
    detail: str
    cause: BaseException | None

    @property
    def failure_type(self) -> type[ConcurrencyFailure]:
        """The :class:`jostle.ConcurrencyFailure` subclass this finding raises as."""
        return _FAILURE_TYPES[self.kind]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's judgement of one execution.

    Attributes:
        execution: what was judged.
        findings: everything wrong, most specific first; empty when correct.
        linearizability: the checker's result, if the model was checked.
    """

    execution: Execution
    findings: tuple[Finding, ...]
    linearizability: LinearizabilityResult | None

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.findings


def located(exc: BaseException, where: tuple[str, int] | None) -> BaseException:
    """Give ``exc`` a traceback ending at ``where`` (file, line).

    Exceptions from process workers arrive without a traceback and hangs
    have none at all; this makes their failure origin the user's line.  The
    technique (compiling a ``raise`` padded to the right line under the
    right file name) is the one Jinja2 uses for template tracebacks.
    """
    if where is None or where[1] < 1:
        return exc
    filename, lineno = where
    code = compile("\n" * (lineno - 1) + "raise __jostle_exc__", filename, "exec")
    try:
        exec(code, {"__jostle_exc__": exc})
    except BaseException as raised:  # always: the code raises
        return raised
    return exc  # pragma: no cover - exec always raises


def _cause_of(rec: OpRecord, raised: Raised) -> BaseException:
    exc = raised.exception
    if exc.__traceback__ is None:
        origin = getattr(exc, "__jostle_origin__", None)
        if isinstance(origin, tuple) and len(origin) == 2:
            return located(exc, (str(origin[0]), int(origin[1])))
    return exc


def _treat_as_pending(history: History, indices: set[int]) -> History:
    if not indices:
        return history
    return History(tuple(
        OpRecord(r.index, r.worker, r.kind, r.phase, r.op, r.args, r.invoke, None,
                 Unknown("raised")) if r.index in indices else r
        for r in history.ops
    ))


def judge(spec: Spec, execution: Execution, *, linearizability: bool = True) -> Verdict:
    """Judge one execution of ``spec``.

    Args:
        spec: the spec that was run.
        execution: from :func:`jostle.execute`.
        linearizability: check the history against the model (if the spec
            has one).

    Returns:
        A :class:`Verdict`; ``verdict.ok`` is true when nothing was found.
    """
    findings: list[Finding] = []
    unexpected: set[int] = set()
    # Scenario order, not time order: the first finding decides the failure's
    # origin, and it must not change from one run of the scenario to the next.
    for rec in sorted(execution.history.ops, key=lambda r: r.index):
        out = rec.outcome
        if isinstance(out, Raised) and not spec.is_expected_error(out.exception, out.type_name):
            unexpected.add(rec.index)
            findings.append(Finding(
                "exception",
                f"worker {rec.worker} ({rec.kind}): {rec.call_repr()} raised "
                f"{out.type_name}: {out.exception}",
                out.traceback.rstrip(),
                _cause_of(rec, out),
            ))
    for w in execution.crashed:
        died = [r for r in execution.history.ops
                if r.worker == w and isinstance(r.outcome, Unknown)]
        what = died[0].call_repr() if died else "between operations"
        how = _how_it_died(dict(execution.exit_statuses).get(w))
        findings.append(Finding(
            "crash", f"process worker {w} died{how} while running {what}",
            "the worker process exited without finishing its operations; "
            "its operation counts as pending (it may or may not have taken effect)",
            None,
        ))
    if execution.stuck:
        names = ", ".join(
            f"worker {s.worker} ({s.kind})" + (f" in {s.op}" if s.op else "")
            for s in execution.stuck
        )
        detail = "\n".join(
            f"--- worker {s.worker} ({s.kind})"
            + (f", blocked at {s.where[0]}:{s.where[1]}" if s.where else "")
            + f" ---\n{s.stack.rstrip()}"
            for s in execution.stuck
        )
        first = next((s.where for s in execution.stuck if s.where), None)
        kind: FindingKind = "hang"
        if execution.deadlock is not None:
            kind, summary = "deadlock", f"deadlock: {execution.deadlock}"
        elif execution.hang_reason is not None:
            summary = f"{execution.hang_reason}: {names}"
        else:
            summary = (f"{len(execution.stuck)} worker(s) still running after "
                       f"{execution.timeout:g} s (deadlock or blocked forever): {names}")
        findings.append(Finding(
            kind, summary, detail,
            located(BlockedHere("blocked here"), first) if first else None,
        ))
    for stage, raised in execution.errors:
        kind = "invariant" if stage == "invariant" else "teardown"
        findings.append(Finding(
            kind, f"{stage} failed: {raised.type_name}: {raised.exception}",
            raised.traceback.rstrip(), raised.exception,
        ))
    result: LinearizabilityResult | None = None
    if linearizability and spec.model is not None and not execution.stuck:
        history = _treat_as_pending(execution.history, unexpected)
        result = check_linearizability(history, spec.model, partition=spec.partition)
        if not result.ok:
            check_model_results(spec, result, history)
            what = ("the search for a linearization gave up (history too large)"
                    if result.timed_out else
                    "no order of the operations consistent with real time gives "
                    "these results with the sequential model")
            findings.append(Finding(
                "linearizability", f"not linearizable: {what}",
                result.explain(history), None,
            ))
    verdict = Verdict(execution, tuple(findings), result)
    _observe.judged(verdict)
    return verdict



def _how_it_died(status: int | None) -> str:
    """`` (SIGSEGV)``, `` (exit status 3)``, or nothing if unknown."""
    if status is None:
        return ""
    if status < 0:
        import signal

        try:
            return f" ({signal.Signals(-status).name})"
        except ValueError:
            return f" (signal {-status})"
    return f" (exit status {status})"

def leak_verdict(execution: Execution, leaks: list[Leak]) -> Verdict:
    """The verdict of an example that passed every execution's checks but
    left ``leaks`` behind (see ``_leaks``); ``execution`` is its last run."""
    summary, detail = describe(leaks)
    origin = next((leak.origin for leak in leaks if leak.origin is not None), None)
    cause = located(LeakedHere(leaks[0].what), origin) if origin is not None else None
    return Verdict(execution, (Finding("leak", summary, detail, cause),), None)
