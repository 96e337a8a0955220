"""Hooks the engine calls so a campaign can watch a jostle test run.

The pytest plugin and ``jostle fuzz`` need three things from inside a
Hypothesis run that Hypothesis does not hand out: every judged execution (to
count executions and distinct interleavings), every failure *the moment it is
found* (to write its folder before shrinking starts, so a killed run loses
nothing), and the start of every example (to stop at a time budget, or before
pytest-timeout's ``os._exit`` would lose the run).  The engine calls the
functions below at those three places; they do nothing unless a
:class:`Watch` is installed with :func:`watching`.

One watch at a time per process, held in a module global rather than a
context variable: in controlled mode the executions are judged on the
driver thread, not the test's, and a context variable would not follow.
Each pytest-xdist worker and each ``jostle fuzz`` worker is its own process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._checker import Verdict
    from ._errors import ConcurrencyFailure

__all__ = ["BudgetSpent", "Watch", "example_started", "failed", "judged", "per_example",
           "watching"]

F = TypeVar("F", bound=Callable[..., Any])


class BudgetSpent(BaseException):
    """Raised at the start of an example when the watch's time is up.

    A ``BaseException`` so Hypothesis does not take it for a failure of the
    test: it stops the run at once and propagates, and the watcher reports
    the smallest failure recorded so far (or a pass)."""


class Watch:
    """What a campaign wants to hear about; subclasses override the hooks."""

    def on_example(self) -> None:
        """A Hypothesis example is about to run; raise :class:`BudgetSpent` to stop."""

    def on_judged(self, verdict: Verdict) -> None:
        """One execution was judged."""

    def on_failure(self, failure: ConcurrencyFailure) -> None:
        """A failing execution became ``failure`` (found, or smaller while shrinking)."""


_current: Watch | None = None


@contextmanager
def watching(watch: Watch) -> Iterator[Watch]:
    """Install ``watch`` for the duration of the block (one at a time)."""
    global _current
    previous, _current = _current, watch
    try:
        yield watch
    finally:
        _current = previous


def example_started() -> None:
    """Called by the runner before each Hypothesis example."""
    if _current is not None:
        _current.on_example()


def judged(verdict: Verdict) -> None:
    """Called by the checker after judging an execution."""
    if _current is not None:
        _current.on_judged(verdict)


def failed(failure: ConcurrencyFailure) -> None:
    """Called by the runner when it builds the failure for a failed verdict."""
    if _current is not None:
        _current.on_failure(failure)


def per_example(test: F) -> F:
    """Wrap a Hypothesis inner test so each example calls :func:`example_started`."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if _current is not None:
            _current.on_example()
        return test(*args, **kwargs)

    return run  # type: ignore[return-value]
