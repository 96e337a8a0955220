"""Bounded exhaustive search: every schedule with at most ``k`` preemptions.

For small scenarios, sampling schedules is not the only option: with few
workers and few decisions, *all* schedules with at most ``k`` preemptions
can be run (CHESS's preemption bounding, Musuvathi and Qadeer, PLDI 2007:
most concurrency bugs need one or two preemptions, and the number of
schedules with at most ``k`` grows polynomially, not exponentially).  The
search runs them in order of increasing preemptions, so the first failure
it meets has the fewest preemptions any failing schedule of that scenario
has: the counterexample is minimal by construction, with no shrinking.

A schedule is a prefix of decision indices followed by defaults
(:class:`Choices`).  At each decision the options are ordered with the
default first (keep the holder at a preemption point; the lowest-id
runnable entity after a block or finish; the stock order of ready
callbacks), so index 0 costs nothing; any other index at a preemption point
costs one preemption, and so does any non-default pick (another ready
callback first, an injected cancellation); a non-default choice after a
block or finish is free (nobody was preempted).  Running a
schedule records how many options each decision had, which is all the
search needs to enumerate its children: change one default after the
prefix.  Controlled runs replay exactly, so this enumeration is sound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._control import Entity, EntityState, Strategy
from ._errors import SpecError

__all__ = ["Choices", "Found", "bounded_schedules"]

T = TypeVar("T")


class Choices(Strategy):
    """Take ``choices[i]`` at the i-th decision, then the default.

    Args:
        choices: an index per decision, 0 being the default option.

    Attributes:
        options: for each decision taken so far, ``(number of options,
            whether a non-default choice there is a preemption)``.
    """

    name = "choices"

    def __init__(self, choices: Sequence[int] = ()) -> None:
        self.choices = tuple(choices)
        self.i = 0
        self.options: list[tuple[int, bool]] = []

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        if current is not None and current.state is EntityState.RUNNABLE:
            if not preemptible:
                return current
            cands = [current] + [e for e in runnable if e is not current]
            preempt = True
        else:
            cands = list(runnable)
            # Firing a timeout early is a precisely timed event: it costs one.
            preempt = any(c.state is EntityState.BLOCKED for c in cands)
        if len(cands) == 1:
            return cands[0]
        k = self.choices[self.i] if self.i < len(self.choices) else 0
        self.i += 1
        self.options.append((len(cands), preempt))
        return cands[min(k, len(cands) - 1)]

    def pick(self, step: int, options: int, what: str) -> int:
        if options < 2:
            return 0
        k = self.choices[self.i] if self.i < len(self.choices) else 0
        self.i += 1
        # Any non-default pick (another ready callback first, an injected
        # cancellation or kill) is a reordering the bound must count, or
        # the search over asyncio schedules would never end.
        self.options.append((options, True))
        return min(k, options - 1)

    def preemptions(self) -> int:
        """Preemptions this run actually made."""
        taken = self.choices[: len(self.options)]
        return sum(1 for (_, pre), k in zip(self.options, taken, strict=False) if pre and k > 0)


@dataclass(frozen=True, slots=True)
class Found(Generic[T]):
    """A schedule the search ran.

    Attributes:
        choices: its decision indices (defaults after them).
        preemptions: how many of them preempt.
        result: what the run returned.
    """

    choices: tuple[int, ...]
    preemptions: int
    result: T


def bounded_schedules(run_once: Callable[[Choices], T], *, bound: int,
                      max_runs: int = 10_000) -> Iterator[Found[T]]:
    """Run every schedule with at most ``bound`` preemptions, fewest first.

    Args:
        run_once: runs the scenario under the given strategy and returns
            what the caller wants to see of the run.
        bound: the most preemptions a schedule may have.
        max_runs: stop after this many runs (the iterator then just ends,
            short of exhausting the bound).

    Yields:
        Each schedule run, in order of increasing preemptions.

    Raises:
        SpecError: ``bound`` or ``max_runs`` is negative or not an int.
    """
    for name, value in (("bound", bound), ("max_runs", max_runs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SpecError(f"Expected a non-negative int but got {name}={value!r} "
                            f"(type={type(value).__name__}) for the bounded search; "
                            f"e.g. {name}=2")
    levels: list[list[tuple[int, ...]]] = [[] for _ in range(bound + 1)]
    levels[0].append(())
    runs = 0
    for cost in range(bound + 1):
        level = levels[cost]
        while level:
            if runs >= max_runs:
                return
            prefix = level.pop()
            strategy = Choices(prefix)
            result = run_once(strategy)
            runs += 1
            yield Found(prefix, cost, result)
            options = strategy.options
            taken = prefix + (0,) * (len(options) - len(prefix))
            for j in range(len(options) - 1, len(prefix) - 1, -1):
                n, pre = options[j]
                child_cost = cost + (1 if pre else 0)
                if child_cost > bound:
                    continue
                for k in range(n - 1, 0, -1):
                    levels[child_cost].append((*taken[:j], k))
