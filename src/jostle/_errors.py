"""The exception hierarchy: one root, misuse errors that are also TypeError or
ValueError, and failures that are also AssertionError.

Misuse errors say what was wrong, where it came from, and the fix (the house
style follows pytest-timeout's ``where`` and Hypothesis's
``Expected {typ} but got {name}={arg!r}``).  Failures are what a test run
found in the user's resource; they subclass ``AssertionError`` so pytest and
Hypothesis treat them as ordinary test failures.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyFailure",
    "Deadlock",
    "Hang",
    "InvariantViolated",
    "JostleError",
    "NotLinearizable",
    "ResourceLeaked",
    "SpecError",
    "SpecTypeError",
    "UnexpectedException",
    "WorkerCrashed",
]


class JostleError(Exception):
    """Root of every exception jostle raises on its own account."""


class SpecError(JostleError, ValueError):
    """A spec, scenario or setting is malformed: the message names the fix."""


class SpecTypeError(JostleError, TypeError):
    """A value given to jostle has the wrong type: the message names the fix."""


class ConcurrencyFailure(JostleError, AssertionError):
    """A concurrent execution misbehaved; the message shows the scenario,
    the per-worker timeline and why the run is wrong."""


class NotLinearizable(ConcurrencyFailure):
    """No order of the operations consistent with real time explains the
    results with the sequential model."""


class InvariantViolated(ConcurrencyFailure):
    """An invariant failed at quiescence, after all workers had finished."""


class UnexpectedException(ConcurrencyFailure):
    """An operation raised an exception its model does not declare."""


class Hang(ConcurrencyFailure):
    """Workers did not finish within the watchdog's timeout (deadlock, or
    blocked forever); the message holds every worker's stack."""


class Deadlock(Hang):
    """No worker could run and none waited with a timeout (controlled mode):
    the message holds the wait-for cycle and every blocked worker's stack."""


class WorkerCrashed(ConcurrencyFailure):
    """A process worker died while running an operation."""


class ResourceLeaked(ConcurrencyFailure):
    """An example left something behind that its resource should have
    disposed of: a thread still running, a task still pending, a coroutine
    never awaited, a child process, an open file descriptor or a
    shared-memory segment; the message says where each was created."""
