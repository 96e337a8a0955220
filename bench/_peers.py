"""What the peer adapters (``frontrun``, ``detangle``) share.

Both peers explore the *schedules* of one fixed program; neither draws the
program itself.  So an adapter runs the peer in **rounds**: each round takes
the next scenario of :func:`scenarios` and lets the peer explore it with its
own defaults, until the budget is spent or the peer reports a failure.

Scenarios go from small to large, *small scope first*: the shapes of
:data:`SHAPES` (parallel workers x calls per worker) in order, 1 x 1, 2 x 1,
1 x 2, 3 x 1, ... up to jostle's default bounds, 3 x 3.  Each shape gets up
to ``SHAPE_ROUNDS`` distinct scenarios (workers with the same calls in
another order count once), operations and arguments drawn uniformly with
``random.Random`` seeded from ``--seed``, the tool, the case and the
variant; after the last shape, random 3 x 3 scenarios follow.  Exploring
one scenario costs a peer a number of runs that grows exponentially with its
size (frontrun explores every interleaving within its preemption bound,
detangle runs 200 schedules), so one large scenario drawn first could take
the whole budget; the peers' own examples are small (two workers, one call
each).  Nothing comes from the case's ``MINIMAL``.

Once the workers have finished, every ``observer`` operation (the format
marks them read-only and safe to call at quiescence) is called once with
each combination of its arguments (at most ``MAX_OBSERVERS`` calls), one at
a time, and the results join the history: the final state is observed, as
a frontrun ``invariant`` or the assertions at the end of a detangle test
observe it.  There is no sequential prefix: frontrun's ``setup`` is
synchronous and could not run an async operation, and both peers get the
same shape.

Every run is judged by ``_judge``, as the naive tool judges its runs; on
top of that, a failure the peer reports by itself (a deadlock, say) counts.

The counterexample's size (``shrunk``) is the failing scenario's workers
and its most calls per worker (the peers do not shrink scenarios) and the
peer's own count of forced switches (:func:`preemptions` of frontrun's
schedule, detangle's deviations from asyncio's order).

A :class:`Watchdog` bounds a round that does not end: it writes what the
measurement has seen so far as its result and ends the child process.  The
``_isolate`` kill at the hard limit stays as the backstop.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._judge import Call, Plan
from ._measure import Measurement, Progress

__all__ = ["MAX_OBSERVERS", "SHAPES", "SHAPE_ROUNDS", "SLACK_SECONDS", "Clock", "Scenario",
           "Watchdog", "observations", "preemptions", "scenarios"]

#: Scenario shapes, (parallel workers, calls per worker), in the order tried.
SHAPES = ((1, 1), (2, 1), (1, 2), (3, 1), (1, 3), (2, 2), (3, 2), (2, 3), (3, 3))
#: Most distinct scenarios tried of each shape.
SHAPE_ROUNDS = 16
#: Most observer calls made at quiescence.
MAX_OBSERVERS = 8
#: Seconds a round may run past the budget before the watchdog ends it:
#: one run's timeout (5 s in both peers) and the replays of a failure.
SLACK_SECONDS = 15.0


def _calls(rng: random.Random, operations: Sequence[Any], n: int) -> list[Call]:
    return [(op, tuple(rng.choice(tuple(domain)) for domain in op.args))
            for op in (rng.choice(operations) for _ in range(n))]


@dataclass(frozen=True)
class Scenario:
    """What one round runs.

    Attributes:
        plan: one list of calls per parallel worker.
        suffix: calls made one at a time once every worker has finished.
    """

    plan: Plan
    suffix: list[Call]

    @property
    def size(self) -> tuple[int, int]:
        """``(workers, most calls of any worker)``."""
        return len(self.plan), max(map(len, self.plan))


def _key(plan: Plan) -> tuple[str, ...]:
    """The same for plans whose workers differ only in order (arguments may not sort)."""
    return tuple(sorted(repr([(op.name, args) for op, args in steps]) for steps in plan))


def observations(operations: Sequence[Any]) -> list[Call]:
    """Every observer operation with every combination of its arguments."""
    calls = [(op, args) for op in operations if getattr(op, "observer", False)
             for args in itertools.product(*op.args)]
    return calls[:MAX_OBSERVERS]


def scenarios(rng: random.Random, operations: Sequence[Any]) -> Iterator[Scenario]:
    """The rounds' scenarios, small scope first (see the module docstring)."""
    suffix = observations(operations)
    for workers, ops in SHAPES:
        seen: set[Any] = set()
        for _ in range(SHAPE_ROUNDS * 4):  # tries: a small shape may have few scenarios
            if len(seen) == SHAPE_ROUNDS:
                break
            plan = [_calls(rng, operations, ops) for _ in range(workers)]
            if _key(plan) not in seen:
                seen.add(_key(plan))
                yield Scenario(plan, suffix)
    workers, ops = SHAPES[-1]
    while True:
        yield Scenario([_calls(rng, operations, ops) for _ in range(workers)], suffix)


def preemptions(schedule: Sequence[int]) -> int:
    """Forced switches in a schedule of worker ids, one per step: switches
    away from a worker that still has steps later in the schedule."""
    last_step = {worker: i for i, worker in enumerate(schedule)}
    return sum(1 for i in range(1, len(schedule))
               if schedule[i] != schedule[i - 1] and last_step[schedule[i - 1]] > i)


class Watchdog:
    """Ends the child process when an armed deadline passes.

    Its thread and event are made when it is created, so create it before
    anything patches ``threading`` (frontrun replaces ``Lock`` and
    ``Event`` with cooperative versions that only work under its
    scheduler).
    """

    def __init__(self) -> None:
        self._disarmed = threading.Event()
        self._deadline: float | None = None
        self._on_expiry: Callable[[], None] | None = None
        thread = threading.Thread(target=self._watch, daemon=True, name="bench-peer-watchdog")
        thread.start()

    def arm(self, deadline: float, on_expiry: Callable[[], None]) -> None:
        """Call ``on_expiry`` and ``os._exit(0)`` once ``time.monotonic()``
        passes ``deadline``."""
        self._on_expiry = on_expiry
        self._deadline = deadline

    def disarm(self) -> None:
        """Stop watching."""
        self._disarmed.set()

    def _watch(self) -> None:
        while not self._disarmed.wait(0.1):
            deadline, on_expiry = self._deadline, self._on_expiry
            if deadline is not None and on_expiry is not None and time.monotonic() > deadline:
                try:
                    on_expiry()
                finally:
                    os._exit(0)


class Clock:
    """Counts a measurement's runs, remembers when each started, and reports
    the first failure.

    Args:
        progress: where the first failure is reported.
        tool: the peer's name, for the text of a cut-short measurement.
    """

    def __init__(self, progress: Progress, tool: str) -> None:
        self.progress = progress
        self.tool = tool
        self.start = time.monotonic()
        self.starts: list[float] = []

    @property
    def executions(self) -> int:
        """Runs started so far."""
        return len(self.starts)

    def started(self) -> None:
        """Note that a run starts now."""
        self.starts.append(time.monotonic())

    def ended_at(self, run: int) -> float:
        """When run number ``run`` (0-based) ended: when the next one started,
        or now if none has."""
        return self.starts[run + 1] if run + 1 < len(self.starts) else time.monotonic()

    def failed(self, failure: str, *, at: float | None = None) -> None:
        """Report the first failure, seen at ``at`` (default now)."""
        seconds = (time.monotonic() if at is None else at) - self.start
        self.progress.first(seconds, self.executions, failure)

    def so_far(self) -> Measurement:
        """The measurement if it ended now, without a counterexample."""
        first = self.progress.first_seen
        if first is None:
            return Measurement(detected=False, seconds_to_first=None,
                               executions=self.executions,
                               failure=f"harness timeout: a {self.tool} round overran the budget",
                               shrunk=None)
        return Measurement(detected=True, seconds_to_first=first["seconds_to_first"],
                           executions=self.executions,
                           failure=f"{first['failure']} (cut short: a round overran the budget)",
                           shrunk=None)
