"""How a controlled test searches one example's schedules, and shrinks what it finds.

Hypothesis draws a scenario, a sparse schedule and a seed per example
(``_runner``).  :class:`Search` runs the drawn schedule, then more: random
walks, PCT or POS with seeds derived from the drawn one, or every schedule
up to a preemption bound (``_exhaustive``); many schedules per example lift
Hypothesis's per-example cost.  A failing run's decision log becomes a
sparse schedule (``_strategies.from_log``), so Hypothesis stores and
replays it exactly.

Shrinking has three parts, because Hypothesis alone cannot reach every
small counterexample:

* Hypothesis shrinks the scenario (fewer workers, fewer operations).  A
  smaller scenario is kept only if *some* schedule of it fails, and random
  schedules can miss the one that does.  So once a bug has been seen in
  this test, a small scenario is first searched exhaustively with up to
  two preemptions (most bugs need one or two; CHESS, PLDI 2007): the
  shrink is kept whenever the bug is still there.
* For the final example, decisions are removed while the same bug still
  shows (:func:`~jostle._strategies.minimize`), then every schedule with
  fewer preemptions than the survivor is tried, fewest first: the reported
  schedule has the fewest preemptions any schedule of that scenario needs
  (within a bounded number of runs).
* Shapes Hypothesis cannot reach by deleting are tried on the final
  example: a worker's last step moved to the sequential suffix (an
  observer such as ``count()`` needs one preemption fewer there), its
  first step moved to the prefix (an order bug needs no preemption then),
  a step split off into a worker of its own (three one-step workers are
  simpler than two of two), and single steps dropped again after those
  moves.  Smaller means fewer parallel operations, then fewer in the
  busiest worker, then fewer workers, then fewer sequential steps; then
  fewer preemptions, then fewer reorders.

All of it relies on controlled runs replaying exactly, which is checked:
the final schedule is run :data:`REPLAYS` more times, and a run that differs
(decisions or outcomes) is reported as uncontrolled nondeterminism, with
the first difference, next to whatever the run itself noted
(``_nondeterminism``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

from ._checker import Verdict, judge
from ._control import Strategy
from ._engine import execute
from ._execution import Execution
from ._exhaustive import bounded_schedules
from ._scenario import Scenario, Step, WorkerPlan
from ._scheduler import ControlledScheduler
from ._spec import Spec
from ._strategies import PCT, POS, Preemptions, RandomWalk, from_log, minimize

__all__ = ["Search", "cost"]

#: Runs spent looking for a schedule with fewer preemptions, per final shrink.
FEWER_RUNS = 2_000
#: Runs of the exhaustive pass over a small scenario while shrinking.
SMALL_RUNS = 300
#: A scenario with at most this many parallel operations counts as small.
SMALL_OPS = 4
#: Extra runs of the final schedule that check it replays.
REPLAYS = 2


def cost(execution: Execution) -> tuple[int, int]:
    """What a controlled run forced, to minimise in this order: preemptions
    (switches away from a runnable entity, injected cancellations and
    kills), then reorders (another ready callback first)."""
    preempt = reorder = 0
    for d in execution.decisions:
        if d.kind == "switch" or (d.kind == "pick" and d.label.startswith(("inject", "kill"))):
            preempt += 1
        elif d.kind == "pick":
            reorder += 1
    return preempt, reorder


def _size(scenario: Scenario) -> tuple[int, int, int, int]:
    """Smaller is simpler: parallel operations in all, the most in one
    worker, workers, then sequential steps."""
    ops = [len(p.steps) for p in scenario.workers]
    return sum(ops), max(ops, default=0), len(ops), len(scenario.prefix) + len(scenario.suffix)


def _sampled(strategy: str, k: int, seed: int, steps: int) -> Strategy:
    """The ``k``-th extra schedule of an example whose seed is ``seed``, for
    a scenario whose runs make about ``steps`` decisions.

    The parameters follow the run's length: PCT spreads its change points
    over the decisions there are, and the random walk mixes switch
    probabilities of about one and three per run (the best odds of landing
    a single preemption anywhere: a needle 100 decisions in is found in a
    few hundred runs) with fixed ones for shallow bugs.
    """
    steps = max(steps, 1)
    i = k  # the index within the strategy's own turns: its parameters cycle on it
    if strategy == "portfolio":
        turn, rounds = k % len(_PORTFOLIO), k // len(_PORTFOLIO)
        strategy = _PORTFOLIO[turn]
        i = rounds * _PORTFOLIO.count(strategy) + _PORTFOLIO[:turn].count(strategy)
    if strategy == "pct":
        return PCT(seed + k, depth=2 + i % 2, max_steps=steps)
    if strategy == "pos":
        return POS(seed + k)
    p = (1 / steps, 0.05, 3 / steps, 0.15, 0.3)[i % 5]
    return RandomWalk(seed + k, p=min(max(p, 1 / steps), 0.5))


# The default strategy's turns: random walks (their five rates in turn),
# PCT (depth 2 and 3 in turn) and POS.
_PORTFOLIO = ("random", "pct", "random", "pos", "random", "pct", "random", "random")


def _small(scenario: Scenario) -> bool:
    return sum(len(p.steps) for p in scenario.workers) <= SMALL_OPS


@dataclass
class Search:
    """The schedule search of one controlled test (its examples share it).

    Args:
        spec: what the test runs.
        model: the preemption model.
        timeout: wall-clock seconds per execution.
        schedules: schedules per example (the drawn one included).
        strategy: ``portfolio``, ``random``, ``pct``, ``pos`` or ``exhaustive``.
        max_preemptions: the bound of the exhaustive strategy.
        inject: schedules may inject cancellations into tasks.
        kill: schedules may kill process workers.
    """

    spec: Spec
    model: Literal["gil", "opcode"]
    timeout: float
    schedules: int
    strategy: str
    max_preemptions: int
    inject: bool
    kill: bool
    #: Whether any example of this test failed yet (Hypothesis is then
    #: shrinking, or looking for more).
    seen_failure: bool = False

    def run_once(self, scenario: Scenario, schedule: Strategy) -> Verdict:
        """One controlled execution of ``scenario``, judged."""
        scheduler = ControlledScheduler(schedule, model=self.model, inject=self.inject,
                                        kill=self.kill)
        return judge(self.spec, execute(self.spec, scenario, scheduler=scheduler,
                                        timeout=self.timeout))

    @staticmethod
    def same_bug(first: Verdict, other: Verdict) -> bool:
        """Whether ``other`` fails the way ``first`` does (same finding kind)."""
        return not other.ok and other.findings[0].kind == first.findings[0].kind

    def _bounded(self, scenario: Scenario, bound: int, runs: int) -> Iterator[Verdict]:
        return (f.result for f in bounded_schedules(partial(self.run_once, scenario),
                                                    bound=bound, max_runs=runs))

    def _others(self, scenario: Scenario, seed: int, steps: int) -> Iterable[Verdict]:
        """The example's schedules after the drawn one (whose run made
        ``steps`` decisions)."""
        if self.strategy == "exhaustive":
            yield from self._bounded(scenario, self.max_preemptions, self.schedules - 1)
            return
        if self.seen_failure and _small(scenario):
            yield from self._bounded(scenario, 2, SMALL_RUNS)
        for k in range(self.schedules - 1):
            yield self.run_once(scenario, _sampled(self.strategy, k, seed, steps))

    def explore(self, scenario: Scenario, schedule: Preemptions, seed: int, *,
                like: Verdict | None = None) -> tuple[Verdict, Preemptions, int]:
        """Run the example's schedules until one fails (the same way as
        ``like``, if given).

        Returns:
            The verdict (a failing one if any failed), the sparse schedule
            that replays it, and how many schedules ran.
        """
        verdict = self.run_once(scenario, schedule)
        tried = 1
        if not verdict.ok and (like is None or self.same_bug(like, verdict)):
            self.seen_failure = True
            return verdict, schedule, tried
        for found in self._others(scenario, seed, verdict.execution.steps):
            tried += 1
            if found.ok or (like is not None and not self.same_bug(like, found)):
                continue
            self.seen_failure = True
            return found, from_log(found.execution.decisions), tried
        return verdict, schedule, tried

    def minimise(self, scenario: Scenario, verdict: Verdict, schedule: Preemptions
                 ) -> tuple[Verdict, Preemptions]:
        """Fewest decisions, then fewest preemptions, for the same bug."""
        def fails(trial: Preemptions) -> Preemptions | None:
            v = self.run_once(scenario, trial)
            return from_log(v.execution.decisions) if self.same_bug(verdict, v) else None

        schedule = minimize(fails, schedule)
        best = self.run_once(scenario, schedule)
        if not self.same_bug(verdict, best):  # cannot happen: runs replay
            best, schedule = verdict, from_log(verdict.execution.decisions)
        best_cost = cost(best.execution)
        total = sum(best_cost)
        if total:
            # Every schedule with at most as many forced choices, fewest
            # first: keep the one with the fewest preemptions, then reorders.
            for v in self._bounded(scenario, total, FEWER_RUNS):
                if self.same_bug(verdict, v) and cost(v.execution) < best_cost:
                    best, best_cost = v, cost(v.execution)
                    schedule = from_log(v.execution.decisions)
                    if best_cost == (0, 0):
                        break
        return best, schedule

    def simplify(self, scenario: Scenario, verdict: Verdict, schedule: Preemptions,
                 seed: int) -> tuple[Scenario, Verdict, Preemptions]:
        """Try shapes Hypothesis cannot reach by deleting (see the module
        docstring), smallest first; keep the first that fails the same way,
        and start again from it."""
        improved = True
        while improved:
            improved = False
            here = _size(scenario)
            for candidate in sorted(_reshaped(scenario), key=_size):
                if _size(candidate) >= here:
                    continue
                v, sched, _ = self.explore(candidate, Preemptions(), seed, like=verdict)
                if self.same_bug(verdict, v):
                    v, sched = self.minimise(candidate, v, sched)
                    scenario, verdict, schedule, improved = candidate, v, sched, True
                    break
        return scenario, verdict, schedule

    def example(self, scenario: Scenario, schedule: Preemptions, seed: int, *, final: bool
                ) -> tuple[Scenario, Verdict, Preemptions, int]:
        """One Hypothesis example: search, and for the final one, shrink."""
        verdict, schedule, tried = self.explore(scenario, schedule, seed)
        if not verdict.ok and final:
            verdict, schedule = self.minimise(scenario, verdict, schedule)
            scenario, verdict, schedule = self.simplify(scenario, verdict, schedule, seed)
            verdict = self.check_replay(scenario, verdict, schedule)
        return scenario, verdict, schedule, tried

    def check_replay(self, scenario: Scenario, verdict: Verdict, schedule: Preemptions
                     ) -> Verdict:
        """``verdict`` with a warning if ``schedule`` does not replay the same
        run :data:`REPLAYS` times over."""
        want = _fingerprint(verdict.execution)
        for n in range(1, REPLAYS + 1):
            got = _fingerprint(self.run_once(scenario, schedule).execution)
            if got != want:
                diff = _first_difference(want, got)
                warning = (f"uncontrolled nondeterminism: replaying this schedule gave a "
                           f"different run (replay {n} of {REPLAYS}; {diff}); something the "
                           "run depends on is outside jostle's control")
                execution = replace(verdict.execution,
                                    warnings=(*verdict.execution.warnings, warning))
                return replace(verdict, execution=execution)
        return verdict


_Fingerprint = tuple[tuple[tuple[int, str, int, int], ...], tuple[tuple[int, int, str], ...]]


def _fingerprint(execution: Execution) -> _Fingerprint:
    """What must be equal between two runs of one schedule: the decisions and
    every operation's outcome, by scenario index."""
    decisions = tuple((d.step, d.kind, d.source, d.target) for d in execution.decisions)
    outcomes = tuple(sorted((r.index, r.worker, r.outcome_repr()) for r in execution.history.ops))
    return decisions, outcomes


def _first_difference(want: _Fingerprint, got: _Fingerprint) -> str:
    for a, b in zip(want[0], got[0], strict=False):
        if a != b:
            return f"first different decision at step {a[0]}: {a[1]} {a[2]}->{a[3]} then, " \
                   f"{b[1]} {b[2]}->{b[3]} now"
    if len(want[0]) != len(got[0]):
        return f"{len(want[0])} decisions then, {len(got[0])} now"
    for a2, b2 in zip(want[1], got[1], strict=False):
        if a2 != b2:
            return f"operation {a2[0]} of worker {a2[1]} gave {a2[2]} then, {b2[2]} now"
    return f"{len(want[1])} operations then, {len(got[1])} now"


def _reshaped(scenario: Scenario) -> Iterator[Scenario]:
    """Scenarios one move away: a worker's last step to the suffix or its
    first to the prefix (a one-step worker moves out whole while another is
    left), a worker's last step split off into a worker of its own, or one
    step dropped."""
    plans, prefix, suffix = scenario.workers, scenario.prefix, scenario.suffix

    def with_plans(new: list[WorkerPlan], pre: tuple[Step, ...] = prefix,
                   suf: tuple[Step, ...] = suffix) -> Scenario:
        return Scenario(pre, tuple(p for p in new if p.steps), suf)

    for w, plan in enumerate(plans):
        first, last = plan.steps[0], plan.steps[-1]
        if len(plan.steps) == 1 and len(plans) < 2:
            continue  # the last worker stays
        rest = list(plans)
        rest[w] = WorkerPlan(plan.kind, plan.steps[:-1])
        yield with_plans(rest, suf=(last, *suffix))
        if len(plan.steps) >= 2:
            yield with_plans(rest)  # the last step dropped
            yield with_plans([*rest, WorkerPlan(plan.kind, (last,))])  # split off
        rest[w] = WorkerPlan(plan.kind, plan.steps[1:])
        yield with_plans(rest, pre=(*prefix, first))
        if len(plan.steps) >= 2:
            yield with_plans(rest)  # the first step dropped
    for i in range(len(prefix)):
        yield Scenario(prefix[:i] + prefix[i + 1:], plans, suffix)
    for i in range(len(suffix)):
        yield Scenario(prefix, plans, suffix[:i] + suffix[i + 1:])
