"""Schedules as data: sparse preemptions, PCT, random walks, and minimisation."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hypothesis import given

from jostle._control import Aborted, Controller, Strategy
from jostle._strategies import PCT, Preemptions, RandomWalk, from_log, minimize, preemptions


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
