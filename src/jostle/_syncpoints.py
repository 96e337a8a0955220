"""Sync points: named places where a controlled scheduler may switch workers.

jostle's controlled mode interleaves workers at points it can see.  Inside a
process worker it cannot see individual bytecodes, so it sees *sync points*:
the start and end of every operation, and every call to :func:`sync_point`,
which jostle's own adapters (``FileHandle``, ``SqliteHandle``) make before
touching shared state and which users may place in their own code at the
places where a race could happen (between a read and the write that depends
on it).  This is the same bargain as Loom's and Shuttle's explicit yield
points and Coyote's ``SchedulingPoint.Interleave``: the tool explores only the
interleavings the points expose, and in return it can replay them exactly.

Outside controlled mode no hook is installed and a sync point costs one
global lookup and a comparison, so library code can leave them in.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["sync_point"]

_hook: Callable[[str], None] | None = None


def sync_point(label: str = "") -> None:
    """Mark a place where a controlled scheduler may switch to another worker.

    Outside jostle's controlled mode this does nothing (it is nearly free, so
    it can stay in production code).  Under controlled mode the worker that
    reaches it reports ``label`` to the controller and waits until the
    scheduler lets it continue, which is how jostle places a preemption
    between, say, the read and the write of a read-modify-write.

    Args:
        label: a short name for the point, shown in traces and failure
            reports (``"file.read"``, ``"after-check"``).

    Example:
        >>> from jostle import sync_point
        >>> def next_id(path):
        ...     current = int(open(path).read() or 0)
        ...     sync_point("after-read")      # a race lives here
        ...     open(path, "w").write(str(current + 1))
        ...     return current + 1
    """
    hook = _hook
    if hook is not None:
        hook(label)


def _set_hook(fn: Callable[[str], None] | None) -> None:
    """Install ``fn`` as this process's sync point hook, or remove it."""
    global _hook
    _hook = fn
