"""The stateful form: a RuleBasedStateMachine becomes a concurrent test."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, rule

import jostle

import machines as m


def spec(resource: type) -> jostle.Spec:
    return jostle.from_machine(m.StoreMachine, resource, operations={"new_key": m.new_key})


def test_rules_become_operations_with_kinds_from_the_resource() -> None:
    """An async resource method runs on tasks; sync ones on threads."""
    s = spec(m.KeyValueStore)
    assert s.op("bump").kinds == {"task"} and s.op("bump").is_async
    assert s.op("read").kinds == {"thread"}
    assert s.op("open").kinds == {"thread"}


def test_buggy_store_is_found_with_bundles_initialize_and_preconditions() -> None:
    """The lost update across await is found; scenarios start with the initialize rule."""
    with pytest.raises(jostle.ConcurrencyFailure) as info:
        jostle.run(spec(m.KeyValueStore), repeats=1, settings=settings(max_examples=200))
    scenario = info.value.verdict.execution.scenario  # type: ignore[attr-defined]
    assert scenario.prefix[0] == jostle.Step("open")
    assert sum(len(w.steps) for w in scenario.workers) >= 2


def test_safe_store_passes_and_invariants_see_the_resource() -> None:
    """The fixed store passes; @invariant compares the model with self.resource."""
    jostle.run(spec(m.SafeKeyValueStore), repeats=2, settings=settings(max_examples=40))


def test_invariant_failure_is_reported() -> None:
    """A resource that drifts from the model fails the machine's @invariant."""
    class Drifting(m.SafeKeyValueStore):
        def read(self, key: str) -> int:
            self.data["zz"] = 1  # corrupts the state, but returns the right value
            return super().read(key)

    with pytest.raises(jostle.ConcurrencyFailure, match=r"resource_matches_model|zz"):
        jostle.run(spec(Drifting), repeats=1, settings=settings(max_examples=100))


def test_from_machine_rejects_non_machines_and_unknown_rules() -> None:
    """Passing an instance, or naming a rule that does not exist, is a clear error."""
    with pytest.raises(jostle.SpecTypeError, match="pass the class itself"):
        jostle.from_machine(object(), m.KeyValueStore)  # type: ignore[arg-type]
    with pytest.raises(jostle.SpecError, match="not rules"):
        jostle.from_machine(m.StoreMachine, m.KeyValueStore, operations={"nope": m.new_key})

    class Empty(RuleBasedStateMachine):
        pass

    with pytest.raises(jostle.SpecError, match="no @rule"):
        jostle.from_machine(Empty, m.KeyValueStore)


def test_async_rule_cannot_be_forced_onto_threads() -> None:
    """kinds= for an async operation must be tasks only."""
    with pytest.raises(jostle.SpecError, match="task workers"):
        jostle.from_machine(m.StoreMachine, m.KeyValueStore, kinds={"bump": ("thread",)})


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n


class CounterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    @rule()
    def incr(self) -> int:
        self.n += 1
        return self.n


def test_plain_machine_with_default_method_calls() -> None:
    """With no operations=, each rule calls the resource's method of the same name."""
    s = jostle.from_machine(CounterMachine, Counter)
    run = jostle.execute(s, jostle.Scenario(workers=(
        jostle.WorkerPlan("thread", (jostle.Step("incr"), jostle.Step("incr"))),)))
    assert [r.outcome for r in run.history.ops] == [jostle.Returned(1), jostle.Returned(2)]
    assert jostle.judge(s, run).ok
