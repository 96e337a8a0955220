"""Judging one run of a case, the same way for every tool that is not jostle.

The ``naive`` tool and the peer adapters (``frontrun``, ``detangle``) drive
a case differently, but judge each run by the same rules, so that every tool
is judged alike (jostle judges its own runs by the same four rules):

* a **hang**: a worker still running when the run was given up;
* an **unexpected exception**: an operation raised something its case does
  not list in ``EXPECTED_ERRORS`` (by name or by class);
* the case's **invariant** failed at quiescence, or the resource's teardown
  (``aclose()`` or ``close()``) failed;
* **not linearizable**: ``jostle.check_linearizability`` (jostle's public
  checker, on ``jostle.OpRecord`` histories built here) found no sequential
  order of the calls that the case's ``Model`` agrees with.  A search that
  hits ``MAX_CHECK_STEPS`` is undecided and not counted as a failure.

An async operation returning the case package's ``CANCELLED`` marker is an
unknown outcome (it may or may not have taken effect), as the format says.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from jostle import (
    Case,
    History,
    OpRecord,
    Raised,
    Returned,
    Unknown,
    check_linearizability,
)

__all__ = [
    "HANG_TIMEOUT",
    "MAX_CHECK_STEPS",
    "Call",
    "Plan",
    "Run",
    "acall",
    "async_teardown",
    "build",
    "call",
    "cancelled_marker",
    "invariant_errors",
    "judge",
    "plan_workers",
    "raised",
    "record",
    "returned",
    "sync_teardown",
]

#: Seconds a run may take before it counts as a hang.
HANG_TIMEOUT = 5.0
#: Model calls the linearizability search may make per run.
MAX_CHECK_STEPS = 200_000

#: One call: (the case's ``Op``, its arguments).
Call = tuple[Any, tuple[Any, ...]]
#: One list of calls per parallel worker.
Plan = list[list[Call]]


def cancelled_marker(module: ModuleType) -> object:
    """The ``CANCELLED`` marker of the case package ``module`` belongs to, or ``None``."""
    support = sys.modules.get(f"{module.__package__}._support")
    return getattr(support, "CANCELLED", None)


@dataclass
class Run:
    """What one run produced.

    Attributes:
        records: one per call that returned, raised or was cancelled.
        hung: workers still running when the run was given up.
        errors: invariant and teardown failures, one line each.
    """

    records: list[OpRecord] = field(default_factory=list)
    hung: int = 0
    errors: list[str] = field(default_factory=list)


def raised(exc: BaseException) -> Raised:
    """The outcome of a call that raised ``exc`` (its traceback text is
    formatted when read, as jostle's own outcomes are)."""
    return Raised(exc)


def returned(value: object, marker: object) -> Returned | Unknown:
    """The outcome of a call that returned ``value``: unknown if it is the
    case package's ``CANCELLED`` ``marker``."""
    cancelled = marker is not None and type(value) is type(marker) and value == marker
    return Unknown("cancelled") if cancelled else Returned(value)


def call(fn: Callable[..., Any], resource: object, args: tuple[Any, ...],
         marker: object) -> Returned | Raised | Unknown:
    """``fn(resource, *args)``, its result or exception as an outcome."""
    try:
        value = fn(resource, *args)
    except Exception as exc:  # every exception is a result to judge
        return raised(exc)
    return returned(value, marker)


async def acall(fn: Callable[..., Any], resource: object, args: tuple[Any, ...],
                marker: object) -> Returned | Raised | Unknown:
    """:func:`call` for an operation that may return an awaitable (awaited here);
    the caller's own cancellation propagates."""
    try:
        value = fn(resource, *args)
        if inspect.isawaitable(value):
            value = await value
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every exception is a result to judge
        return raised(exc)
    return returned(value, marker)


def record(index: int, worker: int, kind: Any, name: str, args: tuple[Any, ...],
           invoke: int, outcome: Returned | Raised | Unknown, *,
           response: int | None = None, phase: Any = "parallel") -> OpRecord:
    """A call that started at ``invoke`` (``time.monotonic_ns()``) and
    responded at ``response`` (default now)."""
    return OpRecord(index, worker, kind, phase, name, args, invoke,
                    time.monotonic_ns() if response is None else response, outcome)


def plan_workers(plan: Plan) -> list[tuple[int, int, list[Call]]]:
    """``(worker id, index of its first call, its calls)`` for each worker;
    ids start at 1 and call indices run worker by worker."""
    out, n = [], 0
    for w, steps in enumerate(plan, start=1):
        out.append((w, n, steps))
        n += len(steps)
    return out


def invariant_errors(module: ModuleType, resource: object) -> list[str]:
    """The case's ``invariant(resource)`` failure, as a one-item list, or ``[]``."""
    invariant = getattr(module, "invariant", None)
    if invariant is None:
        return []
    try:
        invariant(resource)
    except Exception as exc:  # an invariant may fail with anything
        return [f"invariant failed: {type(exc).__name__}: {exc}"]
    return []


def _teardown_error(exc: BaseException) -> list[str]:
    return [f"teardown failed: {type(exc).__name__}: {exc}"]


def sync_teardown(resource: object) -> list[str]:
    """Call the resource's sync ``close()``, if it has one; its failure, or ``[]``."""
    close = getattr(resource, "close", None)
    if callable(close) and not callable(getattr(resource, "aclose", None)):
        try:
            value = close()
            if inspect.isawaitable(value):
                return ["teardown failed: close() returned an awaitable outside a loop"]
        except Exception as exc:  # a teardown may fail with anything
            return _teardown_error(exc)
    return []


async def async_teardown(resource: object) -> list[str]:
    """Await the resource's ``aclose()`` (or ``close()``); its failure, or ``[]``."""
    try:
        aclose = getattr(resource, "aclose", None)
        if callable(aclose):
            await aclose()
            return []
        close = getattr(resource, "close", None)
        if callable(close):
            value = close()
            if inspect.isawaitable(value):
                await value
    except Exception as exc:  # a teardown may fail with anything
        return _teardown_error(exc)
    return []


async def build(factory: Callable[[], Any]) -> object:
    """``factory()`` inside the running loop, awaited if it returns an awaitable."""
    value = factory()
    if inspect.isawaitable(value):
        value = await value
    return value


def _is_expected(module: ModuleType, raised: Raised) -> bool:
    name = raised.type_name
    for expected in getattr(module, "EXPECTED_ERRORS", ()):
        if isinstance(expected, str):
            if expected in (name, name.rpartition(".")[2]):
                return True
        elif isinstance(raised.exception, expected):
            return True
    return False


def judge(case: Case, run: Run) -> str | None:
    """The first thing wrong with ``run``, as one line, or ``None``."""
    if run.hung:
        return f"hang: {run.hung} worker(s) still running after {HANG_TIMEOUT:g} s"
    for rec in sorted(run.records, key=lambda r: r.index):
        out = rec.outcome
        if isinstance(out, Raised) and not _is_expected(case.module, out):
            return (f"exception: worker {rec.worker} ({rec.kind}): {rec.call_repr()} raised "
                    f"{out.type_name}: {out.exception}")
    if run.errors:
        return run.errors[0]
    history = History(tuple(sorted(run.records, key=lambda r: (r.invoke, r.index))))
    result = check_linearizability(history, case.module.Model, max_steps=MAX_CHECK_STEPS)
    if not result.ok and not result.timed_out:
        return f"not linearizable ({len(history.ops)} ops)"
    return None

