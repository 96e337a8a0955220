"""Hypothesis glue: draw scenarios, run them, raise what the checker found.

``concurrent_test`` returns a plain function decorated with ``@given``, not
a unittest class: pytest collects it, pytest-repeat can repeat it (it skips
``Machine.TestCase`` classes, field notes) and pytest-xdist can distribute it.
Each example runs its scenario ``repeats`` times in stress mode, stopping at
the first failure.

Stress runs are not reproducible by nature.  When Hypothesis replays a
scenario that already failed in this session (to shrink it or to show the
final example), the replay may pass by luck; rather than let Hypothesis
report that as ``Flaky``, jostle remembers each failing scenario's failure,
re-runs it a few times to measure how often it reproduces, and raises the
failure it saw, saying "failed in k of n runs".  Controlled mode makes this
unnecessary; stress mode is honest about it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Literal, ParamSpec, TypeVar

from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st
from hypothesis.control import current_build_context

from . import _observe
from ._checker import Verdict, judge, leak_verdict
from ._controlled_search import Search
from ._driver import DriverLost
from ._engine import DEFAULT_TIMEOUT, execute, get_engine
from ._errors import ConcurrencyFailure, SpecError, SpecTypeError
from ._history import WorkerKind
from ._leaks import LeakCheck, leak_kinds, leaks_text
from ._misuse import collect_thread_starts, uncontrolled_threads_error
from ._report import format_failure
from ._scenario import Scenario, scenarios
from ._scheduler import ControlledScheduler, Scheduler, StressScheduler
from ._spec import Spec
from ._strategies import Preemptions, preemptions

__all__ = ["concurrent_test", "failure_for", "replay", "run"]

MODES = ("stress", "controlled")
UNCONTROLLED_THREADS = ("error", "allow")
MODELS = ("gil", "opcode")
STRATEGIES = ("portfolio", "random", "pct", "pos", "exhaustive")


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):  # 3.11+
        exc.add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def failure_for(verdict: Verdict, spec: Spec, *, attempt: str = "",
                schedule: Preemptions | None = None, model: str = "gil",
                inject: bool = False, kill: bool = False) -> ConcurrencyFailure:
    """The exception to raise for a failed verdict, chained to its cause."""
    first = verdict.findings[0]
    hint = "jostle.replay(spec, scenario)  # spec: this test's jostle.spec(...)"
    if schedule is not None:
        # inject/kill decide which choices a run offers, so the step numbers
        # of the schedule: a replay needs the same flags.
        flags = "".join(f", {name}=True" for name, on in (("inject", inject), ("kill", kill))
                        if on)
        hint = (f"jostle.replay(spec, scenario, schedule=jostle.{schedule!r}, "
                f"preemption_model={model!r}{flags})  # exact: controlled runs replay")
    message = format_failure(verdict, spec_name=spec.name, attempt=attempt, replay_hint=hint)
    failure = first.failure_type(message)
    failure.__cause__ = first.cause
    failure.verdict = verdict  # type: ignore[attr-defined]
    failure.schedule = schedule  # type: ignore[attr-defined]
    failure.preemption_model = model  # type: ignore[attr-defined]
    failure.inject, failure.kill = inject, kill  # type: ignore[attr-defined]
    _observe.failed(failure)
    return failure


def replay(
    spec: Spec,
    scenario: Scenario,
    *,
    schedule: Preemptions | None = None,
    preemption_model: Literal["gil", "opcode"] = "gil",
    inject: bool = False,
    kill: bool = False,
    runs: int = 1,
    scheduler: Callable[[], Scheduler] | None = None,
    timeout: float | None = None,
    leaks: bool | str | Iterable[str] = True,
) -> Verdict:
    """Run ``scenario`` up to ``runs`` times; raise on the first failure.

    This is what a printed repro calls.  With ``schedule`` the run is
    controlled and replays exactly; without it, it is a stress run.

    Args:
        spec: the spec the scenario belongs to.
        scenario: the scenario to run (from a failure message).
        schedule: the controlled schedule to replay (from a failure message).
        preemption_model: ``gil`` or ``opcode``, as printed on the report.
        inject: the test let schedules inject cancellations (as printed).
        kill: the test let schedules kill process workers (as printed).
        runs: how many times to try (stress runs are not always reproducible).
        scheduler: a zero-argument factory of schedulers (overrides
            ``schedule``; default stress).
        timeout: watchdog deadline per run.
        leaks: the leak kinds to check after each run (as in
            :func:`jostle.concurrent_test`).

    Returns:
        The last verdict, when every run passed.

    Raises:
        ConcurrencyFailure: a run failed (the subclass says how).
    """
    if scheduler is None and schedule is not None:
        def scheduler() -> Scheduler:
            return ControlledScheduler(schedule, model=preemption_model, inject=inject, kill=kill)
    kinds = leak_kinds(leaks, where="replay(leaks=...)")
    verdict: Verdict | None = None
    for i in range(runs):
        with LeakCheck(kinds) as check:
            execution = execute(spec, scenario, scheduler=scheduler() if scheduler else None,
                                timeout=timeout)
        verdict = judge(spec, execution)
        if verdict.ok and check.leaks:
            verdict = leak_verdict(execution, check.leaks)
        if not verdict.ok:
            raise failure_for(verdict, spec, attempt=f"failed on run {i + 1} of {runs}",
                              schedule=schedule, model=preemption_model, inject=inject,
                              kill=kill)
    assert verdict is not None
    return verdict


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecTypeError(f"concurrent_test(): {name} must be an int, got {value!r} "
                            f"(type={type(value).__name__})")
    if value < low:
        raise SpecError(f"concurrent_test(): {name}={value} must be at least {low}")
    return value


P = ParamSpec("P")
T = TypeVar("T")


def _remember_explicit(make: Callable[P, Callable[[], None]]) -> Callable[P, Callable[[], None]]:
    """Record which options the caller wrote (``_jostle_explicit``): the pytest
    plugin's settings (ini, env, command line) apply only to the others."""
    @functools.wraps(make)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Callable[[], None]:
        test = make(*args, **kwargs)
        test._jostle_explicit = frozenset(kwargs) - {"spec"}  # type: ignore[attr-defined]
        return test

    return wrapper


@_remember_explicit
def concurrent_test(
    spec: Spec,
    *,
    mode: Literal["stress", "controlled"] = "stress",
    min_workers: int = 1,
    max_workers: int = 3,
    max_ops: int = 3,
    max_prefix: int = 2,
    max_suffix: int = 1,
    kinds: Iterable[WorkerKind] | None = None,
    repeats: int = 5,
    timeout: float = DEFAULT_TIMEOUT,
    switch_interval: float = 1e-6,
    preemption_model: Literal["gil", "opcode"] = "gil",
    schedules: int | None = None,
    strategy: Literal["portfolio", "random", "pct", "pos", "exhaustive"] = "portfolio",
    max_preemptions: int = 2,
    inject: bool = False,
    kill: bool = False,
    leaks: bool | str | Iterable[str] = True,
    uncontrolled_threads: Literal["error", "allow"] = "error",
    settings: hsettings | None = None,
) -> Callable[[], None]:
    """Turn a spec into a pytest test that runs it concurrently.

    Args:
        spec: from :func:`jostle.spec`, :func:`jostle.from_machine` or a case.
        mode: ``"stress"``: real parallel runs released together;
            ``"controlled"``: one worker at a time, every interleaving choice
            drawn by Hypothesis, so failures replay exactly and shrink to the
            fewest preemptions.
        min_workers: fewest parallel workers per scenario.
        max_workers: most parallel workers per scenario.
        max_ops: most operations per parallel worker.
        max_prefix: most operations in the sequential prefix.
        max_suffix: most operations in the sequential suffix.
        kinds: worker kinds to mix (default: every kind an operation allows).
        repeats: runs of each scenario per example (stress).
        timeout: watchdog deadline per run, in seconds; a run still going
            then fails as a hang, with every stuck worker's stack.  Under
            control a run that keeps making scheduling points is not hung
            (a livelock is caught by its step bound, a worker blocked outside
            jostle's control by the watchdog), so there the deadline is ten
            times this, a backstop against a loaded machine.
        switch_interval: ``sys.setswitchinterval`` during the parallel part
            (stress).
        preemption_model: controlled: ``"gil"`` (switch only where CPython
            can: what is found can happen on a stock interpreter) or
            ``"opcode"`` (any bytecode, as on a free-threaded build).
        schedules: controlled: schedules tried per example (the drawn one,
            then ``strategy`` with seeds Hypothesis draws); more schedules per
            example lift Hypothesis's per-example cost.  Default 20, or 1,000
            for ``strategy="exhaustive"`` (there it caps the search).
        strategy: controlled: how the extra schedules are chosen:
            ``"portfolio"`` (the default: random walks at several rates, PCT
            of depth 2 and 3, and POS, in turn: each finds bugs the others
            miss), ``"random"`` walks, ``"pct"`` (probabilistic concurrency
            testing, depth 2-3), ``"pos"`` (partial order sampling), or
            ``"exhaustive"``: every schedule with at most
            ``max_preemptions`` preemptions, fewest first (for small
            scenarios; the first failure found is minimal in preemptions).
        max_preemptions: controlled, ``strategy="exhaustive"``: the bound.
        inject: controlled: let schedules inject a cancellation into task
            workers at their awaits.
        kill: controlled: let schedules kill process workers at sync points.
        leaks: what to check after each example for things the resource left
            behind, reported as :class:`jostle.ResourceLeaked` with where
            each was created: ``True`` (the default: every kind), ``False``,
            a collection of kinds (``"threads"``, ``"tasks"``,
            ``"coroutines"``, ``"processes"``, ``"fds"``, ``"shm"``), or a
            string such as ``"threads,fds"`` or ``"-fds"`` (all but fds).
        uncontrolled_threads: controlled: an operation (or the factory)
            that starts a thread of its own runs it outside jostle's
            schedule, so the run is neither controlled nor replayable:
            ``"error"`` (the default) raises a :class:`jostle.SpecError`
            naming the thread and the line that started it; ``"allow"``
            runs it anyway and names it as a warning in failure reports.
        settings: Hypothesis settings (default: the active profile);
            ``deadline`` is switched off because executions vary, and the
            ``explain`` phase because it would re-run a failing example
            (a whole batch of executions) many times for little news.

    Returns:
        A test function; assign it to a ``test_*`` name in a test module.

    Raises:
        SpecError, SpecTypeError: a bad option, with the fix.

    Example:
        >>> import jostle
        >>> from hypothesis import strategies as st
        >>> def add(s, x): s.add(x)
        >>> class Model:
        ...     def __init__(self): self.s = set()
        ...     def add(self, x): self.s.add(x)
        >>> test_set = jostle.concurrent_test(
        ...     jostle.spec(set, jostle.operation(add, st.integers()), model=Model),
        ...     max_workers=2, kinds=("thread",), mode="controlled")
    """
    if not isinstance(spec, Spec):
        raise SpecTypeError(
            f"concurrent_test(): expected a jostle.Spec but got {spec!r} "
            f"(type={type(spec).__name__}); build one with jostle.spec(...), "
            "jostle.from_machine(...) or jostle.load_cases(...)"
        )
    for name, value, allowed in (("mode", mode, MODES), ("preemption_model", preemption_model,
                                                         MODELS),
                                 ("strategy", strategy, STRATEGIES),
                                 ("uncontrolled_threads", uncontrolled_threads,
                                  UNCONTROLLED_THREADS)):
        if value not in allowed:
            raise SpecError(f"concurrent_test(): unknown {name}={value!r}; choose from {allowed}")
    _check_int("repeats", repeats, 1)
    if schedules is None:
        schedules = 1_000 if strategy == "exhaustive" else 20
    _check_int("schedules", schedules, 1)
    _check_int("max_preemptions", max_preemptions, 0)
    kinds_to_check = leak_kinds(leaks)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SpecError(f"concurrent_test(): timeout must be a positive number of seconds, "
                        f"got {timeout!r}")
    strategy_of_scenarios = scenarios(
        spec, min_workers=min_workers, max_workers=max_workers, max_ops=max_ops,
        max_prefix=max_prefix, max_suffix=max_suffix,
        kinds=tuple(kinds) if kinds is not None else None,
    )
    base = settings if settings is not None else hsettings()
    final_settings = hsettings(
        base, deadline=None,
        suppress_health_check=(*base.suppress_health_check, HealthCheck.too_slow),
        # Hypothesis's explain phase re-runs the failing example many times to
        # find which inputs do not matter; each run here is a whole batch of
        # executions, and jostle's report already says what happened.
        phases=tuple(p for p in base.phases if p is not Phase.explain),
    )
    if mode == "controlled":
        test = _controlled_test(spec, timeout=timeout, model=preemption_model,
                                schedules=schedules, strategy=strategy,
                                max_preemptions=max_preemptions, inject=inject, kill=kill,
                                leaks=kinds_to_check,
                                uncontrolled_threads=uncontrolled_threads)
        given_test = given(strategy_of_scenarios,
                           preemptions(entities=max_workers + 1),
                           st.integers(0, 2**32 - 1))(_observe.per_example(test))
    else:
        given_test = given(strategy_of_scenarios)(_observe.per_example(
            _stress_test(spec, repeats=repeats, timeout=timeout,
                         switch_interval=switch_interval, leaks=kinds_to_check)))
    ident = re.sub(r"\W", "_", spec.name)
    given_test.__name__ = given_test.__qualname__ = f"test_{ident}"
    wrapped = final_settings(given_test)
    digest = hashlib.sha256(
        f"jostle:{spec.name}:{getattr(spec.factory, '__module__', '')}:"
        f"{[o.name for o in spec.operations]}:{mode}".encode()
    ).digest()
    wrapped.hypothesis.inner_test._hypothesis_internal_add_digest = digest  # type: ignore[attr-defined]
    wrapped._jostle_spec = spec  # type: ignore[attr-defined]
    wrapped._jostle_options = {  # type: ignore[attr-defined]
        "mode": mode, "min_workers": min_workers, "max_workers": max_workers,
        "max_ops": max_ops, "max_prefix": max_prefix, "max_suffix": max_suffix,
        "kinds": kinds, "repeats": repeats, "timeout": timeout,
        "switch_interval": switch_interval, "preemption_model": preemption_model,
        "schedules": schedules, "strategy": strategy, "max_preemptions": max_preemptions,
        "inject": inject, "kill": kill, "leaks": leaks_text(kinds_to_check),
        "uncontrolled_threads": uncontrolled_threads,
        "settings": settings,
    }
    return wrapped


def _stress_test(spec: Spec, *, repeats: int, timeout: float, switch_interval: float,
                 leaks: frozenset[str]) -> Callable[[Scenario], None]:
    seen: dict[str, tuple[ConcurrencyFailure, int]] = {}

    def run_once(scenario: Scenario) -> Verdict:
        execution = execute(spec, scenario,
                            scheduler=StressScheduler(switch_interval=switch_interval),
                            timeout=timeout)
        return judge(spec, execution)

    def run_checked(scenario: Scenario) -> Verdict:
        with LeakCheck(leaks) as check:
            verdict = run_once(scenario)
        if verdict.ok and check.leaks:
            return leak_verdict(verdict.execution, check.leaks)
        return verdict

    def test(scenario: Scenario) -> None:
        __tracebackhide__ = True  # pytest shows the failure, not jostle's frames
        key = repr(scenario)
        found: ConcurrencyFailure | None = None
        if key in seen:
            found, first_run = seen[key]
            if current_build_context().is_final:
                hits = sum(not run_checked(scenario).ok for _ in range(repeats))
                found.reproduced = (hits, repeats)  # type: ignore[attr-defined]
                _add_note(found,
                          f"jostle: this scenario failed on run {first_run} of {repeats} when "
                          f"found; re-run {repeats} more times, it failed {hits} time(s)")
        else:
            # One leak check around the example's runs (see ``_leaks``).
            failing: tuple[Verdict, int] | None = None
            with LeakCheck(leaks) as check:
                for i in range(1, repeats + 1):
                    verdict = run_once(scenario)
                    if not verdict.ok:
                        failing = (verdict, i)
                        break
            if failing is not None:
                found = failure_for(failing[0], spec, attempt=f"failed on run {failing[1]} of "
                                                               f"{repeats} of this scenario")
                seen[key] = (found, failing[1])
            elif check.leaks:
                found = failure_for(leak_verdict(verdict.execution, check.leaks), spec,
                                    attempt=f"left behind by {repeats} run(s) of this scenario")
                seen[key] = (found, repeats)
        if found is not None:
            # One raise site and a fresh traceback: a replayed failure has the
            # same origin (type, file, line) as when it was first seen.
            raise found.with_traceback(None)

    return test


def _controlled_test(spec: Spec, *, timeout: float, model: Literal["gil", "opcode"],
                     schedules: int, strategy: str, max_preemptions: int, inject: bool,
                     kill: bool, leaks: frozenset[str], uncontrolled_threads: str,
                     ) -> Callable[[Scenario, Preemptions, int], None]:
    search = Search(spec, model=model, timeout=timeout, schedules=schedules, strategy=strategy,
                    max_preemptions=max_preemptions, inject=inject, kill=kill)

    def test(scenario: Scenario, schedule: Preemptions, seed: int) -> None:
        __tracebackhide__ = True  # pytest shows the failure, not jostle's frames
        final = current_build_context().is_final
        # Every schedule of the example (and, for the final one, every
        # shrinking run) runs in one session on the driver: the patching
        # window, the tracer and the handoff to the driver are paid once.
        example = partial(search.example, scenario, schedule, seed, final=final)
        with (LeakCheck(leaks) as check, collect_thread_starts() as started,
              get_engine().controlled_session(model=model) as session):
            try:
                scenario, verdict, schedule, tried = session.call(
                    partial(_on_driver, check, example))
            except DriverLost as lost:
                verdict, tried = judge(spec, lost.execution), 1
        if started and uncontrolled_threads == "error":
            raise uncontrolled_threads_error(started, spec)
        if verdict.ok and check.leaks:
            verdict, tried = leak_verdict(verdict.execution, check.leaks), 0
        if verdict.ok:
            return
        attempt = (f"found among {tried} schedule(s) of this scenario; "
                   f"{verdict.execution.preemptions} preemption(s)" if tried else
                   "left behind by this example's schedules")
        raise failure_for(
            verdict, spec, schedule=schedule, model=model, inject=inject, kill=kill,
            attempt=attempt,
        ).with_traceback(None)

    return test


def _on_driver(check: LeakCheck, fn: Callable[[], T]) -> T:
    """``fn()`` on the driver, with the check's coroutine-origin tracking."""
    with check.on_this_thread():
        return fn()


def run(spec: Spec, **options: Any) -> None:
    """Run ``concurrent_test(spec, **options)`` now; raise on the first bug.

    Raises:
        ConcurrencyFailure: what the minimal failing scenario did.
    """
    concurrent_test(spec, **options)()
