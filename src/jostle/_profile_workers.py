"""The profiler's workers: call operations in a loop until a deadline.

Each profiling worker runs its own list of calls round-robin (drawn up front,
so no Hypothesis work happens while measuring) and times every call with
``time.monotonic_ns``, which on Linux reads ``CLOCK_MONOTONIC``, shared by
every process, so thread, task and process workers share one time line.
Latencies go into a log-linear histogram (the top 6 bits of each duration
kept: at most 1/32 = 3 % relative error, the HdrHistogram idea with a
fixed precision), so a worker's memory and the result a process worker
sends back stay small however many calls it made.

A task worker yields to the loop between its calls (``await
asyncio.sleep(0)``), as a task serving one request after another would when
awaiting the next one; without it, operations that complete without
suspending would let one task run its whole time slice alone.

This module is imported by process workers (the step function and the
handle wrapper travel by reference), so it imports only the standard library
and jostle's light ``_profile_waits``.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ._profile_waits import WaitTotals, instrumented, worker_kind

__all__ = [
    "Assignment",
    "ProfiledHandle",
    "Tally",
    "bucket",
    "noop",
    "process_worker",
    "run_async",
    "run_sync",
    "thread_job",
]

_now = time.monotonic_ns

Call = tuple[int, Callable[..., Any], tuple[Any, ...]]


class Assignment(NamedTuple):
    """What one profiling worker runs: its calls, round-robin, for ``duration_ns``
    (processes; threads and tasks share the run's end)."""

    kind: str
    worker: int
    calls: tuple[Call, ...]
    is_async: tuple[bool, ...]  # by operation slot
    duration_ns: int


class Tally(NamedTuple):
    """What one profiling worker did (a tuple: it crosses from processes)."""

    kind: str
    worker: int
    start_ns: int
    end_ns: int
    #: by operation slot: {bucket lower bound in ns: calls}
    latency: dict[int, dict[int, int]]
    #: by operation slot: {exception type name: calls}
    raised: dict[int, dict[str, int]]
    waits: WaitTotals
    acquired: dict[tuple[str, str], int]


def bucket(ns: int) -> int:
    """The lower bound of the histogram bucket holding ``ns`` (6 significant bits)."""
    shift = ns.bit_length() - 6
    return ns if shift <= 0 else (ns >> shift) << shift


def noop(resource: object) -> None:
    """The empty operation the harness's own cost is measured with."""


def _count_raise(raised: dict[int, dict[str, int]], slot: int, exc: BaseException) -> None:
    seen = raised.setdefault(slot, {})
    name = type(exc).__qualname__
    seen[name] = seen.get(name, 0) + 1


# run_sync and run_async repeat their bookkeeping inline on purpose: it runs
# once per call, and a helper call there would add to the harness's cost.
def run_sync(resource: object, plan: Assignment, end_ns: int, current: list[int]) -> Tally:
    """Call ``plan``'s operations on this thread until ``end_ns``.

    ``current[0]`` holds the index of the call in progress, for a report of
    where a stuck worker is.
    """
    calls = plan.calls
    n = len(calls)
    latency: dict[int, dict[int, int]] = {}
    raised: dict[int, dict[str, int]] = {}
    i = 0
    start = now = _now()
    while now < end_ns:
        current[0] = i
        slot, fn, args = calls[i]
        i += 1
        if i == n:
            i = 0
        try:
            fn(resource, *args)
        except Exception as exc:
            _count_raise(raised, slot, exc)
        took = _now() - now
        shift = took.bit_length() - 6
        if shift > 0:
            took = (took >> shift) << shift
        hist = latency.get(slot)
        if hist is None:
            hist = latency[slot] = {}
        hist[took] = hist.get(took, 0) + 1
        now = _now()
    return Tally(plan.kind, plan.worker, start, now, latency, raised, {}, {})


async def run_async(resource: object, plan: Assignment, end_ns: int,
                    current: list[int]) -> Tally:
    """Call ``plan``'s operations as this task until ``end_ns``."""
    calls = plan.calls
    is_async = plan.is_async
    n = len(calls)
    latency: dict[int, dict[int, int]] = {}
    raised: dict[int, dict[str, int]] = {}
    i = 0
    start = now = _now()
    while now < end_ns:
        current[0] = i
        slot, fn, args = calls[i]
        i += 1
        if i == n:
            i = 0
        try:
            value = fn(resource, *args)
            if is_async[slot] or inspect.isawaitable(value):
                await value
        except (Exception, asyncio.CancelledError) as exc:
            # An operation's own CancelledError (a timeout inside it) is a
            # result; the profiler never cancels a worker before its end.
            _count_raise(raised, slot, exc)
        took = _now() - now
        shift = took.bit_length() - 6
        if shift > 0:
            took = (took >> shift) << shift
        hist = latency.get(slot)
        if hist is None:
            hist = latency[slot] = {}
        hist[took] = hist.get(took, 0) + 1
        await asyncio.sleep(0)  # the next request: let the other tasks run
        now = _now()
    return Tally(plan.kind, plan.worker, start, now, latency, raised, {}, {})


def thread_job(resource: object, plan: Assignment, gate: Any, end: list[int],
               out: list[Any], current: list[int]) -> None:
    """A pool thread's job: arrive at the engine's start gate, run until
    ``end[0]`` (set before the gate opens), keep the tally."""
    try:
        gate.arrive()
        gate.wait_open()
        with worker_kind("thread"):
            out.append(run_sync(resource, plan, end[0], current))
    except BaseException as exc:  # handed to the profiler, which reports it
        out.append(exc)


class _Attached(NamedTuple):
    resource: object
    totals: Callable[[], tuple[WaitTotals, dict[tuple[str, str], int]]] | None


class ProfiledHandle:
    """Wraps a spec's process handle for a profiling job.

    The user's handle travels pickled inside this one and is unpickled in
    :meth:`attach`, after wait instrumentation is switched on (if asked), so
    primitives a resource makes while unpickling or attaching are timed too.
    """

    def __init__(self, inner: object, instrument: bool) -> None:
        self.inner = pickle.dumps(inner, pickle.HIGHEST_PROTOCOL)
        self.instrument = instrument
        self._handle: Any = None
        self._cm: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"inner": self.inner, "instrument": self.instrument}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.inner = state["inner"]
        self.instrument = state["instrument"]
        self._handle = self._cm = None

    def attach(self) -> _Attached:
        """Called in the worker: instrumentation on, then the user's attach."""
        totals = None
        if self.instrument:
            self._cm = instrumented()
            totals = self._cm.__enter__()
        try:
            self._handle = pickle.loads(self.inner)
            resource = getattr(self._handle, "attach")()  # noqa: B009  # any object with attach()
        except BaseException:
            self._off()
            raise
        return _Attached(resource, totals)

    def detach(self, attached: _Attached) -> None:
        """Called in the worker after the run: the user's detach, instrumentation off."""
        try:
            detach = getattr(self._handle, "detach", None)
            if detach is not None:
                detach(attached.resource)
        finally:
            self._off()

    def _off(self) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            cm.__exit__(None, None, None)


def process_worker(attached: _Attached, plan: Assignment) -> Tally:
    """The step a process worker runs: its calls until its own deadline.

    Its run starts when it reads ``go`` and lasts ``plan.duration_ns``.
    """
    with worker_kind("process"):
        tally = run_sync(attached.resource, plan, _now() + plan.duration_ns, [0])
    if attached.totals is not None:
        waits, acquired = attached.totals()
        tally = tally._replace(waits=waits, acquired=acquired)
    return tally
