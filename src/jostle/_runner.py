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

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis.control import current_build_context

from ._checker import Verdict, judge
from ._engine import DEFAULT_TIMEOUT, execute
from ._errors import ConcurrencyFailure, SpecError, SpecTypeError
from ._history import WorkerKind
from ._report import format_failure
from ._scenario import Scenario, scenarios
from ._scheduler import Scheduler, StressScheduler
from ._spec import Spec

__all__ = ["concurrent_test", "failure_for", "replay", "run"]

MODES = ("stress",)


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):  # 3.11+
        exc.add_note(note)
    else:
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def failure_for(verdict: Verdict, spec: Spec, *, attempt: str = "") -> ConcurrencyFailure:
    """The exception to raise for a failed verdict, chained to its cause."""
    first = verdict.findings[0]
    message = format_failure(
        verdict, spec_name=spec.name, attempt=attempt,
        replay_hint="jostle.replay(spec, scenario)  # spec: this test's jostle.spec(...)",
    )
    failure = first.failure_type(message)
    failure.__cause__ = first.cause
    failure.verdict = verdict  # type: ignore[attr-defined]
    return failure


def replay(
    spec: Spec,
    scenario: Scenario,
    *,
    runs: int = 1,
    scheduler: Callable[[], Scheduler] | None = None,
    timeout: float | None = None,
) -> Verdict:
    """Run ``scenario`` up to ``runs`` times; raise on the first failure.

    This is what a printed repro calls.

    Args:
        spec: the spec the scenario belongs to.
        scenario: the scenario to run (from a failure message).
        runs: how many times to try (stress runs are not always reproducible).
        scheduler: a zero-argument factory of schedulers (default stress).
        timeout: watchdog deadline per run.

    Returns:
        The last verdict, when every run passed.

    Raises:
        ConcurrencyFailure: a run failed (the subclass says how).
    """
    verdict: Verdict | None = None
    for i in range(runs):
        execution = execute(spec, scenario, scheduler=scheduler() if scheduler else None,
                            timeout=timeout)
        verdict = judge(spec, execution)
        if not verdict.ok:
            raise failure_for(verdict, spec, attempt=f"failed on run {i + 1} of {runs}")
    assert verdict is not None
    return verdict


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecTypeError(f"concurrent_test(): {name} must be an int, got {value!r} "
                            f"(type={type(value).__name__})")
    if value < low:
        raise SpecError(f"concurrent_test(): {name}={value} must be at least {low}")
    return value


def concurrent_test(
    spec: Spec,
    *,
    mode: str = "stress",
    min_workers: int = 1,
    max_workers: int = 3,
    max_ops: int = 3,
    max_prefix: int = 2,
    max_suffix: int = 1,
    kinds: Iterable[WorkerKind] | None = None,
    repeats: int = 5,
    timeout: float = DEFAULT_TIMEOUT,
    switch_interval: float = 1e-6,
    settings: hsettings | None = None,
) -> Callable[[], None]:
    """Turn a spec into a pytest test that runs it concurrently.

    Args:
        spec: from :func:`jostle.spec`, :func:`jostle.from_machine` or a case.
        mode: ``"stress"``: real parallel runs released together.
        min_workers: fewest parallel workers per scenario.
        max_workers: most parallel workers per scenario.
        max_ops: most operations per parallel worker.
        max_prefix: most operations in the sequential prefix.
        max_suffix: most operations in the sequential suffix.
        kinds: worker kinds to mix (default: every kind an operation allows).
        repeats: runs of each scenario per example (stress).
        timeout: watchdog deadline per run, in seconds; a run still going
            then fails as a hang, with every stuck worker's stack.
        switch_interval: ``sys.setswitchinterval`` during the parallel part.
        settings: Hypothesis settings (default: the active profile);
            ``deadline`` is switched off because executions vary.

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
        ...     max_workers=2, kinds=("thread",))
    """
    if not isinstance(spec, Spec):
        raise SpecTypeError(
            f"concurrent_test(): expected a jostle.Spec but got {spec!r} "
            f"(type={type(spec).__name__}); build one with jostle.spec(...), "
            "jostle.from_machine(...) or jostle.load_cases(...)"
        )
    if mode not in MODES:
        raise SpecError(f"concurrent_test(): unknown mode={mode!r}; choose from {MODES}")
    _check_int("repeats", repeats, 1)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SpecError(f"concurrent_test(): timeout must be a positive number of seconds, "
                        f"got {timeout!r}")
    strategy = scenarios(
        spec, min_workers=min_workers, max_workers=max_workers, max_ops=max_ops,
        max_prefix=max_prefix, max_suffix=max_suffix,
        kinds=tuple(kinds) if kinds is not None else None,
    )
    base = settings if settings is not None else hsettings()
    final_settings = hsettings(
        base, deadline=None,
        suppress_health_check=(*base.suppress_health_check, HealthCheck.too_slow),
    )
    seen: dict[str, tuple[ConcurrencyFailure, int]] = {}

    def run_once(scenario: Scenario) -> Verdict:
        execution = execute(spec, scenario,
                            scheduler=StressScheduler(switch_interval=switch_interval),
                            timeout=timeout)
        return judge(spec, execution)

    def test(scenario: Scenario) -> None:
        __tracebackhide__ = True  # pytest shows the failure, not jostle's frames
        key = repr(scenario)
        found: ConcurrencyFailure | None = None
        if key in seen:
            found, first_run = seen[key]
            if current_build_context().is_final:
                hits = sum(not run_once(scenario).ok for _ in range(repeats))
                _add_note(found,
                          f"jostle: this scenario failed on run {first_run} of {repeats} when "
                          f"found; re-run {repeats} more times, it failed {hits} time(s)")
        else:
            for i in range(1, repeats + 1):
                verdict = run_once(scenario)
                if not verdict.ok:
                    found = failure_for(
                        verdict, spec, attempt=f"failed on run {i} of {repeats} of this scenario")
                    seen[key] = (found, i)
                    break
        if found is not None:
            # One raise site and a fresh traceback: a replayed failure has the
            # same origin (type, file, line) as when it was first seen.
            raise found.with_traceback(None)

    ident = re.sub(r"\W", "_", spec.name)
    test.__name__ = test.__qualname__ = f"test_{ident}"
    wrapped = final_settings(given(strategy)(test))
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
        "switch_interval": switch_interval, "settings": settings,
    }
    return wrapped


def run(spec: Spec, **options: Any) -> None:
    """Run ``concurrent_test(spec, **options)`` now; raise on the first bug.

    Raises:
        ConcurrencyFailure: what the minimal failing scenario did.
    """
    concurrent_test(spec, **options)()
