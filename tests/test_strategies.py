"""Schedules as data: sparse preemptions, PCT, random walks, and minimisation."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hypothesis import given

from jostle._control import Aborted, Controller, Strategy
from jostle._strategies import (
    PCT,
    POS,
    Preemptions,
    RandomWalk,
    from_log,
    minimize,
    preemptions,
)


def run(strategy: Strategy, n_workers: int = 2, points: int = 3) -> tuple[list[tuple[int, int]],
                                                                          Controller]:
    """Run ``n_workers`` raw threads of ``points`` points each under ``strategy``."""
    c = Controller(strategy)
    trace: list[tuple[int, int]] = []
    entities = [c.add(f"w{i}") for i in range(n_workers)]

    def body(e: object) -> None:
        try:
            c.enter(e)  # type: ignore[arg-type]
            for k in range(points):
                trace.append((e.id, k))  # type: ignore[attr-defined]
                c.point(e)  # type: ignore[arg-type]
            c.finish(e)  # type: ignore[arg-type]
        except Aborted:
            pass

    threads = [threading.Thread(target=body, args=(e,)) for e in entities]
    for t in threads:
        t.start()
    c.start()
    assert c.wait(10)
    for t in threads:
        t.join(10)
    return trace, c


def test_no_preemptions_runs_workers_one_after_another() -> None:
    """An empty schedule is sequential: worker 0 to the end, then worker 1."""
    trace, c = run(Preemptions())
    assert trace == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [d.kind for d in c.log if not d.default] == []


def test_one_switch_interleaves_at_that_point() -> None:
    """A switch at point 1 hands the baton to worker 1 right after worker 0's first point."""
    trace, c = run(Preemptions(switches=((1, 1),)))
    assert trace[:2] == [(0, 0), (1, 0)]
    assert [d.kind for d in c.log if d.kind == "switch"] == ["switch"]


def test_from_log_replays_the_same_trace() -> None:
    """A random walk's decisions, read back as a sparse schedule, replay exactly."""
    for seed in range(30):
        trace, c = run(RandomWalk(seed, p=0.5), n_workers=3, points=4)
        again, _ = run(from_log(c.log), n_workers=3, points=4)
        assert again == trace, seed


def test_pct_is_deterministic_per_seed() -> None:
    """The same PCT seed gives the same trace."""
    for seed in range(10):
        assert run(PCT(seed, depth=3, max_steps=12))[0] == run(PCT(seed, depth=3, max_steps=12))[0]


@given(preemptions(max_step=10, entities=2))
def test_drawn_schedules_are_valid_and_deterministic(schedule: Preemptions) -> None:
    """Any drawn schedule runs to completion and replays identically."""
    first, _ = run(schedule)
    assert sorted(first) == sorted((w, k) for w in range(2) for k in range(3))
    assert run(schedule)[0] == first


def test_minimize_removes_unneeded_decisions() -> None:
    """Of three switches only the one the 'bug' needs survives minimisation."""
    def needs_interleaving(schedule: Preemptions) -> Preemptions | None:
        trace, c = run(schedule)
        bug = trace.index((1, 0)) < trace.index((0, 2))  # worker 1 ran inside worker 0
        return from_log(c.log) if bug else None

    noisy = Preemptions(switches=((1, 1), (3, 0), (5, 1)))
    assert needs_interleaving(noisy) is not None
    small = minimize(needs_interleaving, noisy)
    assert len(small.switches) == 1
    assert needs_interleaving(small) is not None


def test_picks_are_taken_modulo_options() -> None:
    """A pick beyond the number of options wraps instead of failing."""
    p = Preemptions(picks=((4, 5),))
    assert p.pick(4, 3, "ready") == 2
    assert p.pick(5, 3, "ready") == 0


def test_describe_names_each_decision() -> None:
    """Reports read 'at point N switch to entity E'."""
    assert Preemptions().describe().startswith("no preemptions")
    assert "at point 3 switch to entity 1" in Preemptions(switches=((3, 1),)).describe()


FAILS = Callable[[Preemptions], Preemptions | None]


class NoPromise(Strategy):
    """Delegates every choice but promises nothing: the controller asks at every point."""

    name = "no-promise"

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.wants_labels = inner.wants_labels

    def next(self, step, current, runnable, *, preemptible):  # type: ignore[no-untyped-def]
        return self.inner.next(step, current, runnable, preemptible=preemptible)

    def pick(self, step: int, options: int, what: str) -> int:
        return self.inner.pick(step, options, what)


def test_keeps_until_promises_hold_for_every_strategy() -> None:
    """Skipping the points a strategy promised to keep gives the same decisions
    and trace as asking at every point (the process run-ahead relies on it)."""
    makers: list[Callable[[int], Strategy]] = [
        lambda s: RandomWalk(s, p=0.3), lambda s: PCT(s, depth=3, max_steps=20),
        lambda s: Preemptions(switches=((2, 1), (7, 0), (9, 2))), lambda s: POS(s)]
    for make in makers:
        for seed in range(25):
            trace, c = run(make(seed), n_workers=3, points=6)
            again, c2 = run(NoPromise(make(seed)), n_workers=3, points=6)
            assert again == trace, (make(seed).name, seed)
            assert [(d.step, d.kind, d.target) for d in c2.log] == \
                [(d.step, d.kind, d.target) for d in c.log]


def test_random_walk_switches_about_as_often_as_its_p() -> None:
    """Geometric gaps between switches keep a coin's law: switches per
    decision stay near p (500 runs, 3 workers x 6 points)."""
    decisions = switches = 0
    for seed in range(500):
        _, c = run(RandomWalk(seed, p=0.2), n_workers=3, points=6)
        decisions += c.step
        switches += sum(1 for d in c.log if d.kind == "switch")
    assert 0.15 < switches / decisions < 0.25


def test_pos_is_deterministic_per_seed_and_interleaves() -> None:
    """The same POS seed gives the same trace; different seeds give different ones."""
    traces = {tuple(run(POS(seed), n_workers=3, points=4)[0]) for seed in range(20)}
    assert len(traces) > 5
    for seed in range(10):
        assert run(POS(seed), n_workers=3, points=4)[0] == run(POS(seed), n_workers=3,
                                                               points=4)[0]
