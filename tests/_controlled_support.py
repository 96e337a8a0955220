"""Deterministic strategies for the controlled-threads tests, and
``explore``: jostle's own preemption-bounded search (``_exhaustive``) with a
cap that fails the test instead of silently stopping."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from jostle._control import Entity, EntityState, Strategy
from jostle._controlled_threads import ControlledRun, run_threads
from jostle._exhaustive import Choices as Choices, Found, bounded_schedules
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


def explore(run_once: Callable[[Strategy], T], *, bound: int,
            max_runs: int = 20_000) -> Iterator[Found[T]]:
    """Every schedule with at most ``bound`` preemptions, fewest first
    (``jostle._exhaustive``); fails the test if ``max_runs`` is not enough."""
    for runs, found in enumerate(
            bounded_schedules(run_once, bound=bound, max_runs=max_runs + 1), start=1):
        if runs > max_runs:
            raise AssertionError(f"explore: more than {max_runs} schedules")
        yield found


def first_failure(run_once: Callable[[Strategy], T], failed: Callable[[T], bool], *,
                  max_bound: int, max_runs: int = 20_000) -> Found[T] | None:
    """The failing schedule with the fewest preemptions (at most
    ``max_bound``), or ``None``."""
    for found in explore(run_once, bound=max_bound, max_runs=max_runs):
        if failed(found.result):
            return found
    return None
