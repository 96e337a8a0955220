"""The ``jostle-stress`` and ``jostle-controlled`` tools: ``jostle.concurrent_test``.

Both tools run the same loop; ``jostle-controlled`` passes
``mode="controlled", inject=True`` (cancellations injected into task workers
are choices like any other) and reports preemptions (switches plus
injections, as the case format's ``MINIMAL`` counts them).

The measurement runs the test a user would write,
``jostle.concurrent_test(case.spec(variant), ...)()``, in rounds of
``MAX_EXAMPLES`` Hypothesis examples until a round raises a
``jostle.ConcurrencyFailure`` or the budget is spent.  Each round gets its
own seed (``hypothesis.seed``, derived from ``--seed``, the case, the
variant and the round number), so rounds explore different scenarios and a
rerun repeats them.

Everything else is ``concurrent_test``'s defaults (up to 3 workers of up to
3 operations, ``REPEATS`` runs per example, a ``RUN_TIMEOUT`` s watchdog), so
the numbers are what a user gets out of the box.  Hypothesis runs without a
database (no replay of earlier failures between measurements), without the
explain phase, and with health checks off (slow examples are expected).

How the numbers are taken:

* ``seconds_to_first``.  Hypothesis shrinks a failure before raising it, so
  the time at which ``concurrent_test`` raises is time-to-first *plus* the
  shrink.  Instead, the test's ``hypothesis.inner_test`` (Hypothesis's
  documented hook for wrapping the inner test function, issue
  HypothesisWorks/hypothesis#1257) is wrapped: the wrapper notes
  ``time.monotonic()`` the first time the inner test raises a
  ``ConcurrencyFailure``, which is right after jostle judged the first
  failing execution.  Nothing in jostle is patched.  The clock starts before
  the first round, so it includes starting jostle's worker pools (the child
  process is fresh), as a user's first run would.
* The budget covers the shrink too.  Past the deadline the wrapper stops
  running examples: during the search it ends the round (a ``BaseException``
  Hypothesis lets through); during a shrink it reports the remaining
  candidates as passing without running them, so the shrinker stops at the
  smallest failure it has confirmed so far.  An example that started
  before the deadline runs to its end and counts.  Hypothesis's final replay of
  that failure still runs (jostle re-runs it ``REPEATS`` times to say how
  often it reproduces), so a measurement can end a little after the budget.
* ``executions``: ``jostle._engine.get_engine().executions`` after minus
  before.  That is an internal attribute of jostle's engine, read (never
  written) because no public counter exists yet.
* ``shrunk``: the raised failure's ``verdict.execution.scenario``, i.e. the
  scenario Hypothesis shrank to: its parallel workers and the most
  operations of any one of them.  Stress mode forces no preemptions, so
  ``preemptions`` is ``None``.
* Any other exception from a run (``jostle.SpecError``: a factory that
  never returns, say) is not a finding: it ends the measurement at once and
  the row says ``harness error: ...``.
* A ``hypothesis`` ``ExceptionGroup`` (several distinct failures) counts by
  its first ``ConcurrencyFailure``.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, seed as hypothesis_seed, settings
from hypothesis.control import current_build_context
from hypothesis.errors import HypothesisException

import jostle
from jostle import Case, ConcurrencyFailure
from jostle._engine import get_engine

from ._measure import Measurement, Progress, Shrunk, Variant, derive_seed, short

__all__ = ["MAX_EXAMPLES", "REPEATS", "RUN_TIMEOUT", "measure_controlled", "measure_stress"]

#: Hypothesis examples per round.
MAX_EXAMPLES = 100
#: Stress runs of each scenario per example (``concurrent_test``'s default).
REPEATS = 5
#: jostle's watchdog per run, in seconds (``concurrent_test``'s default).
RUN_TIMEOUT = 2.0


class _BudgetSpent(BaseException):
    """Ends a round at the deadline; Hypothesis does not catch it."""


class _ToolError(BaseException):
    """Carries an error that is not a finding (a ``SpecError``, say) out of
    Hypothesis at once, instead of letting it be shrunk like a failure."""


def _settings() -> settings:
    return settings(
        max_examples=MAX_EXAMPLES,
        database=None,
        derandomize=False,
        deadline=None,
        # No explain phase: it traces the test, which would only slow it down.
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )


def _first_failure(exc: BaseException) -> ConcurrencyFailure | None:
    if isinstance(exc, ConcurrencyFailure):
        return exc
    # BaseExceptionGroup, or the exceptiongroup backport Hypothesis uses on 3.10
    for inner in getattr(exc, "exceptions", ()):
        found = _first_failure(inner)
        if found is not None:
            return found
    return None


def _summary(failure: ConcurrencyFailure) -> str:
    verdict = getattr(failure, "verdict", None)
    if verdict is not None and verdict.findings:
        return short(verdict.findings[0].summary)
    return short(f"{type(failure).__name__}: {failure}")


def _shrunk(failure: ConcurrencyFailure) -> Shrunk | None:
    verdict = getattr(failure, "verdict", None)
    if verdict is None:
        return None
    ex = verdict.execution
    workers, ops = ex.scenario.size
    if not ex.controlled:  # stress: no preemption count
        return Shrunk(workers=workers, ops=ops, preemptions=None)
    # Controlled: switches plus injected cancellations / kills, which is
    # what the case format's MINIMAL["preemptions"] counts.
    injected = sum(1 for d in ex.decisions
                   if d.kind == "pick" and d.target and d.label.startswith(("inject", "kill")))
    return Shrunk(workers=workers, ops=ops, preemptions=(ex.preemptions or 0) + injected)


def measure_controlled(case: Case, variant: Variant, *, budget: float, seed: int,
                       progress: Progress) -> Measurement:
    """``measure_stress`` in controlled mode (cancellations injected into tasks)."""
    return measure_stress(case, variant, budget=budget, seed=seed, progress=progress,
                          mode="controlled")


def measure_stress(case: Case, variant: Variant, *, budget: float, seed: int,
                   progress: Progress, mode: str = "stress") -> Measurement:
    """Run ``jostle.concurrent_test`` on ``case``'s ``variant`` for ``budget`` s.

    Args:
        case: from ``jostle.load_cases``.
        variant: ``buggy`` or ``fixed``.
        budget: seconds for the search and the shrink together.
        seed: the ``--seed`` value.
        progress: where the first failure is reported as soon as it is seen.

    Returns:
        The measurement.
    """
    spec = case.spec(variant)
    engine = get_engine()
    before = engine.executions
    start = time.monotonic()
    deadline = start + budget
    round_no = 0
    while time.monotonic() < deadline:
        options: dict[str, Any] = ({"mode": "controlled", "inject": True}
                                   if mode == "controlled" else {"repeats": REPEATS})
        test: Any = jostle.concurrent_test(spec, timeout=RUN_TIMEOUT, settings=_settings(),
                                           **options)
        inner = test.hypothesis.inner_test

        @functools.wraps(inner)
        def timed(*args: Any, _inner: Any = inner, **kwargs: Any) -> None:
            if not current_build_context().is_final and time.monotonic() >= deadline:
                if progress.first_seen is None:
                    raise _BudgetSpent
                return  # shrinking past the budget: keep the smallest failure so far
            try:
                _inner(*args, **kwargs)
            except ConcurrencyFailure as exc:
                progress.first(time.monotonic() - start, engine.executions - before,
                               _summary(exc))
                raise
            except HypothesisException:
                raise  # Hypothesis's own control flow (assume() and the like)
            except Exception as exc:
                raise _ToolError(exc) from exc

        test.hypothesis.inner_test = timed
        hypothesis_seed(derive_seed(f"jostle-{mode}", seed, case.id, variant, round_no))(test)
        try:
            test()
        except _BudgetSpent:
            break
        except _ToolError as exc:
            raise exc.args[0] from None
        except BaseException as exc:
            failure = _first_failure(exc)
            if failure is None:
                raise
            assert progress.first_seen is not None
            return Measurement(
                detected=True,
                seconds_to_first=progress.first_seen["seconds_to_first"],
                executions=engine.executions - before,
                failure=_summary(failure),
                shrunk=_shrunk(failure),
            )
        round_no += 1
    return Measurement(detected=False, seconds_to_first=None,
                       executions=engine.executions - before, failure=None, shrunk=None)
