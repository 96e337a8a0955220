"""jostle.profile: its numbers add up to what ran, and misuse is explained."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import jostle
from jostle._profile import draw_arguments, worker_counts
from jostle._profile_data import Spread, percentile_of
from jostle._profile_workers import bucket

from _profile_ops import Counted, FileCounted, Stuck, aincr, boom, fincr, fother, incr, wait_forever

KEYS = st.integers(0, 3)


def counted_spec() -> jostle.Spec:
    return jostle.spec(Counted, jostle.operation(incr, KEYS), jostle.operation(aincr, KEYS),
                       jostle.operation(boom), model=None, name="Counted")


@pytest.mark.slow
def test_calls_in_every_run_equal_what_the_resource_counted() -> None:
    """Each run's calls per operation (and raised ones) match the resource's own count."""
    Counted.made.clear()
    result = jostle.profile(counted_spec(), budget=0.4, max_workers=2, repeats=1)
    assert [(r.kind, r.workers) for r in result.runs if not r.warmup and not r.instrumented] == [
        ("thread", 1), ("thread", 2), ("task", 1), ("task", 2), ("mixed", 2)]
    assert len(Counted.made) == len(result.runs)  # one fresh resource per run
    for run, resource in zip(result.runs, Counted.made, strict=True):
        assert dict(run.calls) == dict(resource.counts), (run.kind, run.workers)
        assert run.raised.get("boom", {}).get("KeyError", 0) == resource.counts["boom"]
        for op, hist in run.latency.items():
            assert sum(c for _, c in hist) == run.calls[op]
        assert run.throughput == pytest.approx(run.total_calls / run.seconds)
    assert result.operations == {"thread": ("incr", "boom"), "task": ("aincr",)}
    mixed = next(r for r in result.runs if r.kind == "mixed")
    assert mixed.worker_kinds == ("thread", "task")
    assert result.calls("thread", 2, "incr") == sum(
        r.calls["incr"] for r in result.measured("thread", 2))


@pytest.mark.slow
def test_process_workers_calls_equal_what_the_files_counted() -> None:
    """Process and mixed runs count the calls made in the workers, exactly."""
    FileCounted.made.clear()
    spec = jostle.spec(FileCounted, jostle.operation(fincr), jostle.operation(fother),
                       model=None, name="FileCounted")
    result = jostle.profile(spec, budget=0.4, max_workers=2, repeats=1, waits=False,
                            kinds=("process", "mixed"))
    assert {(r.kind, r.workers) for r in result.runs} == {("process", 1), ("process", 2),
                                                          ("mixed", 2)}
    assert len(FileCounted.made) == len(result.runs)
    for run, resource in zip(result.runs, FileCounted.made, strict=True):
        assert dict(run.calls) == resource.final, (run.kind, run.workers)
        assert run.total_calls > 0


@pytest.mark.slow
def test_a_stuck_worker_stops_the_profile_with_its_place() -> None:
    """A deadlocked operation ends the profile with the operation named."""
    Stuck.made.clear()
    spec = jostle.spec(Stuck, jostle.operation(wait_forever), model=None)
    try:
        with pytest.raises(jostle.JostleError, match=r"thread worker 1: stuck in wait_forever\(\)"):
            jostle.profile(spec, budget=0.1, max_workers=1, repeats=1, waits=False,
                           timeout=0.2)
    finally:
        for resource in Stuck.made:
            resource.lock.release()  # let the abandoned thread go


def test_arguments_come_from_the_strategies_with_a_fixed_seed() -> None:
    """The argument pool is drawn from each operation's strategies, reproducibly."""
    spec = counted_spec()
    first = draw_arguments(spec, seed=3)
    assert first == draw_arguments(spec, seed=3)
    assert set(first["incr"]) <= {(k,) for k in range(4)}
    assert len(set(first["incr"])) > 1
    assert set(first["boom"]) == {()}


def test_worker_counts_double_up_to_the_maximum() -> None:
    """1, 2, 4 ... and the maximum itself; mixed starts at 2."""
    assert worker_counts("thread", 6) == (1, 2, 4, 6)
    assert worker_counts("thread", 1) == (1,)
    assert worker_counts("mixed", 4) == (2, 4)


def test_percentiles_and_spread() -> None:
    """Histogram buckets keep 6 significant bits; percentiles read midpoints."""
    assert bucket(63) == 63
    assert bucket(1000) == 992  # 0b1111101000 -> top 6 bits 0b111110, then zeros
    assert abs(bucket(123_456_789) - 123_456_789) / 123_456_789 < 1 / 32
    hist = ((10, 50), (20, 49), (1000, 1))
    assert percentile_of(hist, 50) == pytest.approx(10e-9)
    assert percentile_of(hist, 99) == pytest.approx(20e-9)
    assert percentile_of(hist, 100) == pytest.approx((1000 + 7.5) / 1e9)  # bucket width 16
    s = Spread.of([5, 1, 3, 4, 2])
    assert (s.median, s.low, s.high, s.q1, s.q3, s.n) == (3, 1, 5, 1.5, 4.5, 5)
    assert Spread.of([]).n == 0


@pytest.mark.parametrize(("options", "message"), [
    ({"budget": 0}, r"budget=0 from jostle.profile\(budget=...\) must be more than 0"),
    ({"budget": None}, r"no time budget: give jostle.profile\(budget=...\)"),
    ({"budget": "20"}, r"Expected a number of seconds but got budget='20' \(type=str\)"),
    ({"max_workers": 0}, r"max_workers=0 .* must be at least 1"),
    ({"repeats": 1.5}, r"Expected an int but got repeats=1.5 \(type=float\)"),
    ({"kinds": "thread"}, r"write kinds=\('thread',\)"),
    ({"kinds": ("fibre",)}, r"unknown worker kind 'fibre'.*choose from thread, task"),
    ({"kinds": ("process",)}, r"no operation of 'Counted' runs on a process.*handle="),
    ({"kinds": ("mixed",), "max_workers": 1}, r"'mixed' needs at least 2 workers"),
    ({"budget": 0.05}, r"budget=0.05 s .* is too small for 5 configuration\(s\).*raise the "
                       r"budget to \d"),
])
def test_misuse_names_the_option_and_the_fix(options: dict[str, object], message: str) -> None:
    """Bad options fail before anything runs, saying where they came from."""
    kwargs: dict[str, object] = {"budget": 10, "max_workers": 2, "repeats": 1, **options}
    with pytest.raises((jostle.SpecError, jostle.SpecTypeError), match=message):
        jostle.profile(counted_spec(), **kwargs)  # type: ignore[arg-type]


def test_profile_wants_a_spec() -> None:
    """Anything but a Spec is a type error naming how to build one."""
    with pytest.raises(jostle.SpecTypeError, match=r"Expected a jostle.Spec"):
        jostle.profile(Counted, budget=1)  # type: ignore[arg-type]


@pytest.mark.slow
def test_docstring_examples_run() -> None:
    """The examples in jostle.profile's and write_profile_report's docstrings work."""
    import doctest

    from jostle import _profile, _profile_report

    for module in (_profile, _profile_report):
        failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0, module.__name__
