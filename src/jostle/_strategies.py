"""Schedules as data Hypothesis draws, and how they shrink.

Every decision of a controlled run comes from a :class:`~jostle._control.Strategy`
built from data drawn on the test's own thread before the run starts (drawing
from a worker thread raises in Hypothesis, and forwarding each draw to the
test thread made shrinking take thousands of calls and stop at two
preemptions instead of one: field notes).

* :class:`Preemptions` is the canonical form: a sparse list of
  ``(step, worker)`` switches plus ``(step, choice)`` picks.  With no entries
  the run is sequential (each worker runs until it blocks or finishes).  It
  is what Hypothesis shrinks (fewer entries, smaller steps), what reports
  print, and what any other strategy's failing run is converted to.
* :class:`PCT` (Burckhardt et al., ASPLOS 2010): random priorities and
  ``d - 1`` priority change points; good odds for bugs of depth ``d``.
* :class:`RandomWalk`: at each point, switch with probability ``p``.  Cheap
  and fast; used to run many schedules per Hypothesis example.
* :class:`POS` (Yuan et al., CAV 2018): random priorities per pending step,
  re-drawn for the steps that race with the one that ran.
* bounded exhaustive search (``_exhaustive``): every schedule with at most
  ``k`` preemptions, fewest first.

A failing run of any strategy becomes a ``Preemptions`` by reading its
decision log (:func:`from_log`), and :func:`minimize` then removes decisions
one at a time while the run still fails: controlled runs replay exactly, so
this is deterministic and ends at a locally minimal number of preemptions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from ._control import UNBOUNDED, Decision, Entity, EntityState, Strategy

__all__ = ["PCT", "POS", "Preemptions", "RandomWalk", "from_log", "minimize", "preemptions"]


def _lookup(pairs: tuple[tuple[int, int], ...], step: int) -> int | None:
    for s, v in pairs:
        if s == step:
            return v
    return None


def _by_id(runnable: Sequence[Entity], wanted: int) -> Entity | None:
    for e in runnable:
        if e.id == wanted:
            return e
    return None


@dataclass(frozen=True, slots=True)
class Preemptions(Strategy):
    """Switch to entity ``worker`` at point ``step``; pick ``choice`` at ``step``.

    Attributes:
        switches: ``(step, entity id)`` pairs, at most one per step.
        picks: ``(step, choice)`` pairs for non-switch choices (ready order
            in the event loop, injected cancellations).
    """

    switches: tuple[tuple[int, int], ...] = ()
    picks: tuple[tuple[int, int], ...] = ()

    name = "preemptions"

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        wanted = _lookup(self.switches, step)
        if current is not None and current.state is EntityState.RUNNABLE:
            if wanted is None or not preemptible:
                return current
            target = _by_id(runnable, wanted)
            return target if target is not None else current
        if wanted is not None:
            target = _by_id(runnable, wanted)
            if target is not None:
                return target
        return runnable[0]

    def pick(self, step: int, options: int, what: str) -> int:
        choice = _lookup(self.picks, step)
        return 0 if choice is None else choice % options

    def keeps_until(self, step: int) -> int:
        for s, _e in self.switches:  # sorted by step
            if s > step:
                return s
        return UNBOUNDED

    @property
    def size(self) -> int:
        """How many decisions this schedule forces."""
        return len(self.switches) + len(self.picks)

    def describe(self) -> str:
        """One line: the decisions, or 'no preemptions'."""
        if not self.size:
            return "no preemptions (each worker runs until it blocks or finishes)"
        parts = [f"at point {s} switch to entity {e}" for s, e in self.switches]
        parts += [f"at point {s} choose {c}" for s, c in self.picks]
        return "; ".join(parts)


def preemptions(*, max_switches: int = 3, max_picks: int = 3,
                max_step: int = 200, entities: int = 4) -> st.SearchStrategy[Preemptions]:
    """A Hypothesis strategy of sparse schedules; shrinks toward none.

    Args:
        max_switches: most preemptions.
        max_picks: most non-switch choices.
        max_step: highest point number a decision may name.
        entities: entity ids are drawn below this.
    """
    pair = st.tuples(st.integers(1, max_step), st.integers(0, max(entities - 1, 0)))
    pick = st.tuples(st.integers(1, max_step), st.integers(1, 3))
    return st.builds(
        Preemptions,
        switches=st.lists(pair, max_size=max_switches, unique_by=lambda p: p[0]).map(
            lambda ps: tuple(sorted(ps))),
        picks=st.lists(pick, max_size=max_picks, unique_by=lambda p: p[0]).map(
            lambda ps: tuple(sorted(ps))),
    )


class RandomWalk(Strategy):
    """At each preemptible point, switch with probability ``p`` to a uniformly
    chosen other runnable entity; picks are uniform too.  Deterministic for a
    given ``seed`` (make a new instance per run).

    The switches are drawn as geometric gaps between decision steps (the
    same law as a coin at every point, and it lets the controller pass the
    points in between without asking: :meth:`keeps_until`).
    """

    name = "random"

    def __init__(self, seed: int, *, p: float = 0.1) -> None:
        self.seed = seed
        self.p = p
        self._rng = random.Random(seed)
        self._next_switch: int | None = None

    def _gap(self) -> int:
        """Decision steps until the next switch: Geometric(p), at least 1."""
        p = self.p
        if p <= 0:
            return UNBOUNDED
        if p >= 1:
            return 1
        u = 1.0 - self._rng.random()  # in (0, 1]
        return max(1, min(UNBOUNDED, int(math.log(u) / math.log1p(-p)) + 1))

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        if current is not None and current.state is EntityState.RUNNABLE:
            if self._next_switch is None:
                self._next_switch = step - 1 + self._gap()
            if not preemptible or len(runnable) < 2 or step < self._next_switch:
                return current
            self._next_switch = step + self._gap()
            others = [e for e in runnable if e is not current]
            return others[self._rng.randrange(len(others))]
        return runnable[self._rng.randrange(len(runnable))]

    def keeps_until(self, step: int) -> int:
        return self._next_switch if self._next_switch is not None else step + 1

    def pick(self, step: int, options: int, what: str) -> int:
        if what.startswith("inject"):
            return 1 if self._rng.random() < self.p / 2 else 0
        return self._rng.randrange(options)


class PCT(Strategy):
    """Probabilistic concurrency testing with ``depth - 1`` change points.

    The highest-priority runnable entity always runs; at each change point
    the running entity drops to the lowest priority.  Deterministic for a
    given ``seed``.

    Args:
        seed: the random seed.
        depth: the bug depth targeted (``d``).
        max_steps: the expected number of points (``k``) change points are
            spread over.
    """

    name = "pct"

    def __init__(self, seed: int, *, depth: int = 2, max_steps: int = 200) -> None:
        self.seed = seed
        self.depth = depth
        rng = random.Random(seed)
        self._rng = rng
        self._prio: dict[int, float] = {}
        self._changes = frozenset(rng.randrange(1, max_steps + 1) for _ in range(depth - 1))
        self._low = 0.0

    def _priority(self, e: Entity) -> float:
        if e.id not in self._prio:
            self._prio[e.id] = 1.0 + self._rng.random()
        return self._prio[e.id]

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        if current is not None and step in self._changes:
            self._low -= 1.0
            self._prio[current.id] = self._low
        if current is not None and current.state is EntityState.RUNNABLE and not preemptible:
            return current
        # A timed waiter (offered so its timeout can fire early) is never
        # PCT's choice: PCT runs the highest-priority *enabled* entity.
        enabled = [e for e in runnable if e.state is EntityState.RUNNABLE]
        return max(enabled, key=lambda e: (self._priority(e), -e.id))

    def keeps_until(self, step: int) -> int:
        # The holder has the highest priority; only a change point (or a
        # change of the runnable set, which voids the promise) can end that.
        later = [c for c in self._changes if c > step]
        return min(later) if later else UNBOUNDED

    def pick(self, step: int, options: int, what: str) -> int:
        if what.startswith("inject"):
            return 0
        return self._rng.randrange(options)


class POS(Strategy):
    """Partial order sampling (Yuan, Yang and Gu, CAV 2018), approximated.

    Every pending step (each runnable entity's next step) has a random
    priority and the highest runs.  After a step runs, the pending steps
    that *race* with it get fresh priorities, as does the next step of the
    entity that ran; the others keep theirs, which is what makes POS sample
    partial orders more evenly than a random walk samples interleavings.
    jostle does not track memory accesses, so two steps are taken to race
    when they start at points with the same label (the same lock, the same
    line of code): a coarse but deterministic stand-in.

    Args:
        seed: the random seed (deterministic for a given seed; make a new
            instance per run).
    """

    name = "pos"
    wants_labels = True

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._prio: dict[int, float] = {}
        self._ran: str | None = None  # the label the running step started at

    def _priority(self, e: Entity) -> float:
        p = self._prio.get(e.id)
        if p is None:
            p = self._prio[e.id] = self._rng.random()
        return p

    def next(self, step: int, current: Entity | None, runnable: Sequence[Entity],
             *, preemptible: bool) -> Entity:
        if current is not None:
            ran = self._ran
            for e in runnable:
                if e is current or (ran is not None and e.at == ran):
                    self._prio[e.id] = self._rng.random()
        if current is not None and current.state is EntityState.RUNNABLE and not preemptible:
            chosen = current
        else:
            # Steps of enabled entities only: a timed waiter's timeout is not
            # a pending step of its own (as in PCT).
            enabled = [e for e in runnable if e.state is EntityState.RUNNABLE]
            chosen = max(enabled, key=lambda e: (self._priority(e), -e.id))
        self._ran = chosen.at
        return chosen

    def pick(self, step: int, options: int, what: str) -> int:
        if what.startswith("inject"):
            return 0
        return self._rng.randrange(options)


def from_log(log: Sequence[Decision]) -> Preemptions:
    """The sparse schedule that makes the same decisions as ``log``.

    Switches, non-default handoffs and timeouts chosen early become
    ``switches``; picks become ``picks``.  Timeouts that fired because nobody
    could run follow from the others and are not recorded.
    """
    switches: list[tuple[int, int]] = []
    picks: list[tuple[int, int]] = []
    for d in log:
        if d.kind == "switch" or (d.kind in ("start", "block", "finish", "timeout")
                                  and not d.default):
            switches.append((d.step, d.target))
        elif d.kind == "pick":
            picks.append((d.step, d.target))
    return Preemptions(tuple(switches), tuple(picks))


def minimize(fails: Callable[[Preemptions], Preemptions | None],
             schedule: Preemptions, *, budget: int = 200) -> Preemptions:
    """Remove decisions while the run still fails.

    Args:
        fails: runs a schedule; returns the failing run's own schedule (read
            back with :func:`from_log`, which renumbers steps) or ``None`` if
            the run passed.
        schedule: a failing schedule.
        budget: most runs to spend.

    Returns:
        A failing schedule from which no single decision can be removed.
    """
    best = schedule
    runs = 0
    changed = True
    while changed and runs < budget:
        changed = False
        for kind in ("switches", "picks"):
            entries: tuple[tuple[int, int], ...] = getattr(best, kind)
            i = 0
            while i < len(entries) and runs < budget:
                trial_entries = entries[:i] + entries[i + 1:]
                trial = (Preemptions(trial_entries, best.picks) if kind == "switches"
                         else Preemptions(best.switches, trial_entries))
                runs += 1
                result = fails(trial)
                if result is not None and result.size <= best.size - 1:
                    best, changed = result, True
                    entries = getattr(best, kind)
                else:
                    i += 1
    return best
