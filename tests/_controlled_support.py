"""Deterministic strategies and a preemption-bounded explorer for the
controlled-threads tests.

``Choices`` follows a list of choice indices (0 = keep the holder, or the
lowest-id runnable entity after a block or finish) and records how many
options each decision had, which is all :func:`explore` needs to enumerate
every schedule with at most ``bound`` preemptions, depth first (CHESS's
preemption bounding, Musuvathi and Qadeer, PLDI 2007).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from jostle._control import Entity, EntityState, Strategy
from jostle._controlled_threads import ControlledRun, run_threads
from jostle._threads import ThreadPool

T = TypeVar("T")
Outcome = tuple[str, Any]


def scenario(pool: ThreadPool, make: Callable[[], Any], ops: Sequence[Callable[[Any], Any]],
             strategy: Strategy, *, model: str = "gil", watchdog: float = 0.5,
             max_steps: int = 100_000) -> tuple[Any, ControlledRun, dict[int, Outcome]]:
    """Build the resource inside the window (``make``), run one op per
    worker, and return the resource, the run and each worker's outcome
    (``("ok", value)`` or ``("raise", exception type name)``)."""
    box: dict[str, Any] = {}
    results: dict[int, Outcome] = {}

    def setup() -> None:
        box["r"] = make()

    def job(i: int, op: Callable[[Any], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                results[i] = ("ok", op(box["r"]))
            except Exception as exc:
                results[i] = ("raise", type(exc).__name__)
        return run

    run = run_threads([job(i, op) for i, op in enumerate(ops)], strategy,
                      model=model,  # type: ignore[arg-type]
                      pool=pool, timeout=10.0, setup=setup, watchdog=watchdog,
                      max_steps=max_steps)
    return box["r"], run, results


class Choices(Strategy):
    """Take ``choices[i]`` at the i-th real decision, then the default."""

    name = "choices"

    def __init__(self, choices: Sequence[int] = ()) -> None:
        self.choices = tuple(choices)
        self.i = 0
        #: (number of options, whether choosing > 0 is a preemption)
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
            preempt = False
        if len(cands) == 1:
            return cands[0]
        k = self.choices[self.i] if self.i < len(self.choices) else 0
        self.i += 1
        self.options.append((len(cands), preempt))
        return cands[min(k, len(cands) - 1)]

    def preemptions(self) -> int:
        """Preemptions this run actually made."""
        taken = self.choices[: len(self.options)]
        return sum(1 for (_, pre), k in zip(self.options, taken, strict=False) if pre and k > 0)


class SwitchAt(Strategy):
    """Preempt the holder at the given steps, in favour of the next runnable
    entity by id (wrapping)."""

    name = "switch-at"

    def __init__(self, steps: Sequence[int]) -> None:
        self.steps = frozenset(steps)

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        if current is None or current.state is not EntityState.RUNNABLE:
            return runnable[0]
        if step in self.steps and preemptible and len(runnable) > 1:
            later = [e for e in runnable if e.id > current.id]
            return later[0] if later else runnable[0]
        return current


class Seeded(Strategy):
    """A seeded random walk: switch with probability ``p`` at each point."""

    name = "seeded"

    def __init__(self, seed: int, p: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.p = p

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        if current is not None and current.state is EntityState.RUNNABLE and (
                not preemptible or self.rng.random() >= self.p):
            return current
        return self.rng.choice(list(runnable))


@dataclass
class Found(Generic[T]):
    """A schedule the explorer ran."""

    choices: tuple[int, ...]
    preemptions: int
    result: T


def explore(run_once: Callable[[Strategy], T], *, bound: int,
            max_runs: int = 20_000) -> Iterator[Found[T]]:
    """Every schedule with at most ``bound`` preemptions, each run once, in
    order of increasing preemptions (so the first failure has the fewest).

    A schedule is a prefix of choices followed by defaults; its children
    change one default after the prefix: to another entity at a preemption
    point (one more preemption) or after a block or finish (free).
    """
    levels: list[list[tuple[int, ...]]] = [[] for _ in range(bound + 1)]
    levels[0].append(())
    runs = 0
    for cost in range(bound + 1):
        level = levels[cost]
        while level:
            prefix = level.pop()
            strategy = Choices(prefix)
            result = run_once(strategy)
            runs += 1
            yield Found(prefix, cost, result)
            if runs >= max_runs:
                raise AssertionError(f"explore: more than {max_runs} schedules")
            options = strategy.options
            taken = prefix + (0,) * (len(options) - len(prefix))
            for j in range(len(options) - 1, len(prefix) - 1, -1):
                n, pre = options[j]
                child_cost = cost + (1 if pre else 0)
                if child_cost > bound:
                    continue
                for k in range(n - 1, 0, -1):
                    levels[child_cost].append((*taken[:j], k))


def first_failure(run_once: Callable[[Strategy], T], failed: Callable[[T], bool], *,
                  max_bound: int, max_runs: int = 20_000) -> Found[T] | None:
    """The failing schedule with the fewest preemptions (at most
    ``max_bound``), or ``None``."""
    for found in explore(run_once, bound=max_bound, max_runs=max_runs):
        if failed(found.result):
            return found
    return None
