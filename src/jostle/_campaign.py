"""Run one jostle test the way a campaign does: for a time budget, in rounds,
watching every execution and writing each failure's folder as it is found.

Both front ends use this: the pytest plugin (one call per test item) and
``jostle fuzz`` (one call per test per worker).  A *round* is one Hypothesis
run of the test with its own seed; with a time budget, rounds follow each
other until the budget is spent or a round fails (pytest-repeat's two
long-standing requests, "repeat for a time" and "stop at the first failure",
for the tests jostle makes).  A fresh seed per round, and per worker and
repetition (see :func:`derive_seed`), keeps parallel runs from exploring the
same schedules; Hypothesis's database replays stored failures at the start
of every round.

Stopping is cooperative: at the start of each example the watch compares the
clock with the deadline and raises :class:`~jostle._observe.BudgetSpent`,
which Hypothesis lets through.  A round that has already found a failure is
allowed to keep shrinking until a later, hard deadline.  Each failure is
saved when first found (status ``shrinking``), again at most every half
second while it shrinks, and once more when Hypothesis is done (``final``,
with the reproduce blob and, for stress runs, how often it reproduced).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConcurrencyFailure
from ._findings import FailureStore, TestRef, failure_id
from ._observe import BudgetSpent, Watch, watching

if TYPE_CHECKING:
    from hypothesis import settings as hsettings

    from ._checker import Verdict

__all__ = ["Found", "Outcome", "TestWatch", "derive_seed", "failures_in", "run_test"]

_SAVE_EVERY = 0.5
_BLOB = re.compile(r"@reproduce_failure\((.*?)\)")


def derive_seed(base: object, *parts: object) -> int:
    """A 64-bit seed from a base (the configured seed or the run id) and the
    parts that make this run distinct (worker, test, repetition, round)."""
    text = "\0".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def failures_in(exc: BaseException) -> list[ConcurrencyFailure]:
    """The jostle failures in ``exc``: itself, or those of an exception group."""
    if isinstance(exc, ConcurrencyFailure):
        return [exc]
    out: list[ConcurrencyFailure] = []
    for inner in getattr(exc, "exceptions", ()) or ():
        out.extend(failures_in(inner))
    return out


def interleaving_key(verdict: Verdict) -> int:
    """A fingerprint of what one execution did: its scenario and the order of
    its events (controlled: the decisions that were not defaults)."""
    ex = verdict.execution
    if ex.controlled:
        order: tuple[Any, ...] = tuple(
            (d.step, d.kind, d.source, d.target) for d in ex.decisions if not d.default)
    else:
        events = []
        for r in ex.history.ops:
            events.append((r.invoke, 0, r.index))
            if r.response is not None:
                events.append((r.response, 1, r.index))
        order = tuple((k, i) for _t, k, i in sorted(events))
    return hash((repr(ex.scenario), order))


@dataclass
class Found:
    """A failure seen in this run.

    Attributes:
        id: its failure id.
        folder: its folder.
        failure: the latest (smallest) failure object.
        final: Hypothesis finished with it.
    """

    id: str
    folder: Path
    failure: ConcurrencyFailure
    final: bool = False
    saved_at: float = 0.0


@dataclass
class TestWatch(Watch):
    """Counts executions and interleavings, writes failure folders, stops at
    the deadline.

    Attributes:
        ref: the test.
        store: where folders go.
        context: extra ``report.json`` fields (profile, seed, run id...).
        deadline: no new examples after this ``time.monotonic()``, unless a
            failure is being shrunk.
        hard_deadline: no examples at all after this.
        on_found: called with each new :class:`Found`.
    """

    __test__ = False

    ref: TestRef
    store: FailureStore
    context: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    hard_deadline: float | None = None
    on_found: Callable[[Found], None] | None = None
    executions: int = 0
    examples: int = 0
    interleavings: set[int] = field(default_factory=set)
    found: dict[str, Found] = field(default_factory=dict)
    round_examples: int = 0
    round_saved: int = 0
    shrinking: bool = False
    stopped: bool = False

    def on_example(self) -> None:
        self.examples += 1
        self.round_examples += 1
        now = time.monotonic()
        if self.hard_deadline is not None and now >= self.hard_deadline:
            self.stopped = True
            raise BudgetSpent
        if self.deadline is not None and now >= self.deadline and not self.shrinking:
            self.stopped = True
            raise BudgetSpent

    def on_judged(self, verdict: Verdict) -> None:
        self.executions += 1
        self.interleavings.add(interleaving_key(verdict))

    def on_failure(self, failure: ConcurrencyFailure) -> None:
        if getattr(failure, "verdict", None) is None:
            return
        fid = failure_id(self.ref.test_id, failure, self.ref.root)
        known = self.found.get(fid)
        now = time.monotonic()
        self.shrinking = True
        if known is None:
            replayed = self.round_saved > 0 and self.round_examples <= self.round_saved
            context = {**self.context, "executions_before_found": self.executions,
                       "found_by": "database replay" if replayed else "generation"}
            fid, folder, _ = self.store.save(self.ref, failure, status="shrinking",
                                             context=context, first_in_run=True)
            found = self.found[fid] = Found(fid, folder, failure, saved_at=now)
            if self.on_found is not None:
                self.on_found(found)
            return
        known.failure = failure
        if now - known.saved_at >= _SAVE_EVERY:
            self._save(known, status="shrinking")

    def _save(self, found: Found, *, status: str, **extra: Any) -> None:
        self.store.save(self.ref, found.failure, status=status,
                        context={**self.context, **extra}, first_in_run=False)
        found.saved_at = time.monotonic()

    def finish(self, failure: ConcurrencyFailure) -> Found:
        """Hypothesis is done with ``failure``: save it as final."""
        fid = failure_id(self.ref.test_id, failure, self.ref.root)
        found = self.found.get(fid)
        if found is None:  # raised without passing through failure_for
            self.on_failure(failure)
            found = self.found[fid]
        found.failure, found.final = failure, True
        blob = next((m.group(0) for note in getattr(failure, "__notes__", [])
                     if (m := _BLOB.search(note))), None)
        self._save(found, status="final", reproduce_blob=blob)
        return found


@dataclass
class Outcome:
    """What :func:`run_test` did.

    Attributes:
        watch: the watch, with its counters and findings.
        rounds: Hypothesis runs started.
        error: the exception to raise for the test (a failure, or an
            exception group of several), or ``None`` if it passed.
        budget_spent: the run stopped at the deadline.
        final: the findings Hypothesis finished with.
    """

    watch: TestWatch
    rounds: int = 0
    error: BaseException | None = None
    budget_spent: bool = False
    final: list[Found] = field(default_factory=list)


def _saved_examples(test: Any, database: Any) -> int:
    if database is None:
        return 0
    try:
        from hypothesis.internal.reflection import function_digest

        key = function_digest(test.hypothesis.inner_test)
        return sum(1 for _ in database.fetch(key))
    except Exception:  # a private helper moved, or the database is down: only a label
        return 0


def _seeded(test: Callable[[], None], seed: int) -> Callable[[], None]:
    """``test`` with its Hypothesis seed set, the database left on.

    ``hypothesis.seed`` also sets ``database=None`` (a seeded run is meant to
    reproduce, not to record), which would make every campaign forget its
    findings; the attribute it sets is the one Hypothesis reads.
    """
    test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    return test


def run_test(test: Callable[[], None], watch: TestWatch, *,
             options: Mapping[str, Any], settings: hsettings, seed_base: object,
             seed_parts: tuple[object, ...] = (), budget: float | None = None,
             deadline: float | None = None, grace: float = 0.0) -> Outcome:
    """Run a jostle test in rounds until ``budget`` is spent or it fails.

    Args:
        test: from :func:`jostle.concurrent_test` (its spec is rebuilt with
            ``options`` and ``settings``).
        watch: the watch to install.
        options: the ``concurrent_test`` options to use.
        settings: the Hypothesis settings of every round.
        seed_base: the configured seed or the run id.
        seed_parts: what makes this run distinct (worker, test, repetition).
        budget: seconds of rounds; ``None``: one round.
        deadline: an absolute ``time.monotonic()`` limit (pytest-timeout's
            backstop), whatever the budget.
        grace: seconds after the budget a round may go on shrinking.
    """
    from ._repro import spec_of
    from ._runner import _add_note, concurrent_test

    spec = spec_of(test)
    start = time.monotonic()
    soft = start + budget if budget is not None else None
    if deadline is not None:
        soft = deadline if soft is None else min(soft, deadline)
    watch.deadline = soft
    hard = soft + grace if soft is not None else None
    watch.hard_deadline = hard if deadline is None or hard is None else min(hard, deadline)
    outcome = Outcome(watch)
    with watching(watch):
        while True:
            round_seed = derive_seed(seed_base, *seed_parts, outcome.rounds)
            watch.context["seed"] = round_seed
            watch.context.setdefault("first_seed", round_seed)
            fn = _seeded(concurrent_test(spec, **options, settings=settings), round_seed)
            watch.round_examples, watch.shrinking = 0, False
            watch.round_saved = _saved_examples(fn, settings.database)
            outcome.rounds += 1
            try:
                fn()
            except BudgetSpent:
                outcome.budget_spent = True
                pending = [f for f in watch.found.values() if not f.final]
                if pending:
                    for f in pending:
                        _add_note(f.failure,
                            "jostle: the time budget ran out while shrinking; this is the "
                            "smallest failing scenario found so far")
                        outcome.final.append(watch.finish(f.failure))
                    outcome.error = pending[0].failure
                break
            except Exception as exc:
                failures = failures_in(exc)
                if not failures:
                    raise
                outcome.final = [watch.finish(f) for f in failures]
                outcome.error = exc
                break
            if budget is None:
                break
            if soft is not None and time.monotonic() >= soft:
                outcome.budget_spent = True
                break
    return outcome


def iter_found(outcomes: Mapping[str, Outcome]) -> Iterator[Found]:
    """Every finding of several outcomes."""
    for outcome in outcomes.values():
        yield from outcome.watch.found.values()
