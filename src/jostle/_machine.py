"""The stateful form: a Hypothesis ``RuleBasedStateMachine`` made concurrent.

A user with a rule-based state machine changes little: the machine's rules
become the operations and the machine's own state becomes the sequential
model.  Each rule body is read as *the model*: it updates the machine's
state and returns what the operation should return.  The operation on the
real resource is, by default, the resource's method of the same name called
with the rule's arguments; ``operations={"rule": fn}`` overrides that.

What keeps working, and how:

* ``@rule`` arguments, ``Bundle`` and ``consumes``: scenarios are drawn by
  running the rules on a generation-time machine in scenario order (prefix,
  worker 1, worker 2, ..., suffix), so preconditions and bundles see a
  sensible state; bundle values are the model's results, passed to later
  operations as plain arguments.
* ``@initialize`` rules run first, in the sequential prefix.
* ``@precondition`` is checked at generation time, on that sequential order
  (as Lincheck does for its scenarios).
* ``@invariant`` methods run at quiescence on the model state of a witness
  linearization, with the resource attached as ``self.resource``, so they can
  compare model and resource (``assert self.resource.size() == len(self.items)``).

Rationale: splitting "model" from "system" is what every parallel
state-machine tester does (QuickCheck's parallel state machines, qcheck-stm,
Lincheck); reading rule bodies as the model is the smallest change to an
existing Hypothesis machine.
"""

from __future__ import annotations

import copy
import inspect
import pickle
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import MultipleResults, RuleBasedStateMachine, VarReference

from ._errors import SpecError, SpecTypeError
from ._history import History, WorkerKind
from ._linearizability import check_linearizability
from ._scenario import Scenario, Step, WorkerPlan
from ._spec import KINDS, Operation, Spec, _check_kinds

__all__ = ["from_machine"]

_BASELINE: dict[type, frozenset[str]] = {}


def _hypothesis_attrs(cls: type[RuleBasedStateMachine]) -> frozenset[str]:
    """Instance attributes Hypothesis's own ``__init__`` sets (not user state)."""
    if cls not in _BASELINE:
        bare = object.__new__(cls)
        RuleBasedStateMachine.__init__(bare)
        _BASELINE[cls] = frozenset(vars(bare)) | {"resource"}
    return _BASELINE[cls]


class _MethodCall:
    """Default operation: ``resource.<name>(**dict(zip(argnames, args)))``.

    A class so that it pickles by reference for process workers.
    """

    def __init__(self, name: str, argnames: tuple[str, ...]) -> None:
        self.name = name
        self.argnames = argnames
        self.__name__ = name

    def __call__(self, resource: object, *args: object) -> object:
        return getattr(resource, self.name)(**dict(zip(self.argnames, args, strict=True)))


class _AsyncMethodCall(_MethodCall):
    async def _run(self, resource: object, *args: object) -> object:
        return await getattr(resource, self.name)(**dict(zip(self.argnames, args, strict=True)))

    def __call__(self, resource: object, *args: object) -> Any:
        return self._run(resource, *args)


class _MachineModel:
    """A machine instance seen as a jostle model (one method per rule)."""

    def __init__(self, machine_cls: type[RuleBasedStateMachine], rules: Mapping[str, Any]) -> None:
        # Initialize rules are explicit prefix steps of every scenario, so the
        # model never runs them on its own.
        self.machine = machine_cls()
        self._rules = rules

    def __getattr__(self, name: str) -> Callable[..., object]:
        rules = self.__dict__.get("_rules", {})
        if name not in rules:
            raise AttributeError(name)
        rule = rules[name]
        names = tuple(rule.arguments)

        def call(*args: object) -> object:
            result = rule.function(self.machine, **dict(zip(names, args, strict=True)))
            if isinstance(result, MultipleResults):
                return tuple(result.values)
            return result

        return call

    def _user_state(self) -> dict[str, Any]:
        skip = _hypothesis_attrs(type(self.machine))
        return {k: v for k, v in vars(self.machine).items() if k not in skip}

    def __jostle_copy__(self) -> _MachineModel:
        new = object.__new__(_MachineModel)
        new._rules = self._rules
        new.machine = copy.copy(self.machine)
        for k, v in self._user_state().items():
            setattr(new.machine, k, copy.deepcopy(v))
        return new

    def __jostle_state__(self) -> Hashable:
        state = self._user_state()
        try:
            return pickle.dumps(state, protocol=5)
        except Exception:
            return repr(sorted(state.items(), key=lambda kv: kv[0]))


def _draw_rule(draw: st.DrawFn, machine: RuleBasedStateMachine, rules: Sequence[Any]) -> Step:
    valid = [r for r in rules
             if all(machine.bundle(b.name) for b in r.bundles)
             and all(pre(machine) for pre in r.preconditions)]
    if not valid:
        from hypothesis import reject
        reject()
    rule = draw(st.sampled_from(valid))
    cd = getattr(draw, "__self__", None)
    saved = getattr(cd, "hypothesis_runner", None)
    if cd is not None:
        cd.hypothesis_runner = machine  # Bundle strategies find the machine here
    try:
        values = [draw(strat) for strat in rule.arguments_strategies.values()]
    finally:
        if cd is not None:
            cd.hypothesis_runner = saved
    resolved: list[object] = []
    for v in values:
        if isinstance(v, VarReference):
            v = machine.names_to_values[v.name]
        elif isinstance(v, list) and v and all(isinstance(i, VarReference) for i in v):
            v = [machine.names_to_values[i.name] for i in v]
        resolved.append(v)
    names = tuple(rule.arguments)
    result = rule.function(machine, **dict(zip(names, resolved, strict=True)))
    if rule.targets:
        values_out = result.values if isinstance(result, MultipleResults) else [result]
        machine._add_results_to_targets(rule.targets, values_out)  # type: ignore[no-untyped-call]
    return Step(rule.function.__name__, tuple(resolved))


def from_machine(
    machine: type[RuleBasedStateMachine],
    resource: Callable[[], Any],
    *,
    operations: Mapping[str, Callable[..., Any]] | None = None,
    kinds: Mapping[str, Sequence[WorkerKind]] | None = None,
    expected_errors: Sequence[type[BaseException] | str] = (),
    handle: Callable[[Any], Any] | None = None,
) -> Spec:
    """Make a Hypothesis rule-based state machine concurrent.

    Args:
        machine: a ``RuleBasedStateMachine`` subclass whose rule bodies act as
            the sequential model: they update the machine's state and return
            what the operation should return.
        resource: factory of the real shared resource (sync or async).
        operations: per rule name, ``fn(resource, *args)`` to run instead of
            the default ``resource.<rule name>(**rule arguments)``.  The
            arguments come in the order the rule declares them.
        kinds: per rule name, the worker kinds allowed to run it.
        expected_errors: exception types the rules raise as results.
        handle: ``handle(resource)`` giving a picklable process handle.

    Returns:
        A :class:`jostle.Spec` for :func:`jostle.concurrent_test`.

    Raises:
        SpecTypeError: ``machine`` is not a RuleBasedStateMachine subclass.
        SpecError: an ``operations`` or ``kinds`` key names no rule.

    Example:
        >>> import jostle
        >>> from hypothesis import strategies as st
        >>> from hypothesis.stateful import RuleBasedStateMachine, rule
        >>> class Registers(RuleBasedStateMachine):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.value = 0
        ...     @rule(v=st.integers(0, 3))
        ...     def write(self, v):
        ...         self.value = v
        ...     @rule()
        ...     def read(self):
        ...         return self.value
        >>> class Register:
        ...     def __init__(self): self.value = 0
        ...     def write(self, v): self.value = v
        ...     def read(self): return self.value
        >>> spec = jostle.from_machine(Registers, Register)
        >>> sorted(op.name for op in spec.operations)
        ['read', 'write']
    """
    if not (isinstance(machine, type) and issubclass(machine, RuleBasedStateMachine)):
        raise SpecTypeError(
            f"from_machine(): expected a RuleBasedStateMachine subclass but got {machine!r} "
            f"(type={type(machine).__name__}); pass the class itself, not an instance"
        )
    state = machine.setup_state()
    all_rules = {r.function.__name__: r for r in [*state.rules, *state.initializers]}
    if not state.rules:
        raise SpecError(f"from_machine({machine.__name__}): the machine has no @rule methods")
    for what, mapping in (("operations", operations or {}), ("kinds", kinds or {})):
        unknown = sorted(set(mapping) - set(all_rules))
        if unknown:
            raise SpecError(
                f"from_machine({machine.__name__}): {what} names {unknown}, which are not "
                f"rules; the rules are {sorted(all_rules)}"
            )
    shareable = handle is not None or hasattr(resource, "__jostle_handle__")
    ops: list[Operation] = []
    for name, rule in all_rules.items():
        argnames = tuple(rule.arguments)
        fn: Callable[..., Any]
        if operations and name in operations:
            fn = operations[name]
            is_async = inspect.iscoroutinefunction(fn)
        else:
            method = getattr(resource, name, None) if isinstance(resource, type) else None
            is_async = inspect.iscoroutinefunction(method)
            fn = _AsyncMethodCall(name, argnames) if is_async else _MethodCall(name, argnames)
        if kinds and name in kinds:
            allowed = _check_kinds(kinds[name], f"from_machine: rule {name!r}")
            if is_async and allowed - {"task"}:
                raise SpecError(
                    f"from_machine: rule {name!r} runs an async operation, so it can only "
                    "run on task workers; set kinds={%r: ('task',)}" % name
                )
        elif is_async:
            allowed = frozenset({"task"})
        else:
            allowed = frozenset({"thread", "process"} if shareable else {"thread"})
        ops.append(Operation(fn=fn, args=(), name=name, kinds=allowed, is_async=is_async,
                             explicit_kinds=bool(kinds and name in kinds)))
    initializers = [r.function.__name__ for r in state.initializers]
    rule_objs = {r.function.__name__: r for r in state.rules}

    def model() -> _MachineModel:
        return _MachineModel(machine, all_rules)

    def model_invariants(res: object, history: History) -> None:
        if not state.invariants:
            return
        result = check_linearizability(history, model)
        if not result.ok or result.final_model is None:
            return  # the checker reports the history itself
        final = result.final_model
        assert isinstance(final, _MachineModel)
        m = final.machine
        m.resource = res  # type: ignore[attr-defined]
        for inv in state.invariants:
            if all(pre(m) for pre in inv.preconditions):
                inv.function(m)

    def strategy(*, min_workers: int, max_workers: int, max_ops: int, max_prefix: int,
                 max_suffix: int, kinds: frozenset[WorkerKind]) -> st.SearchStrategy[Scenario]:
        by_kind: dict[WorkerKind, list[Any]] = {}
        for op in ops:
            if op.name in rule_objs:
                for k in op.kinds & kinds:
                    by_kind.setdefault(k, []).append(rule_objs[op.name])
        if not by_kind:
            raise SpecError(f"from_machine({machine.__name__}): no rule can run on worker "
                            f"kinds {sorted(kinds)}")
        order = sorted(by_kind, key=KINDS.index)
        seq_rules = list(rule_objs.values())

        @st.composite
        def draw_scenario(draw: st.DrawFn) -> Scenario:
            gen = machine()
            prefix: list[Step] = []
            pending = [all_rules[n] for n in initializers]
            while pending:
                init = draw(st.sampled_from(pending))
                pending.remove(init)
                prefix.append(_draw_rule(draw, gen, [init]))
            for _ in range(draw(st.integers(0, max_prefix))):
                prefix.append(_draw_rule(draw, gen, seq_rules))
            workers: list[WorkerPlan] = []
            n_workers = draw(st.integers(min_workers, max_workers))
            for _ in range(n_workers):
                kind = draw(st.sampled_from(order))
                n_ops = draw(st.integers(1, max_ops))
                steps = tuple(_draw_rule(draw, gen, by_kind[kind]) for _ in range(n_ops))
                workers.append(WorkerPlan(kind, steps))
            suffix = [_draw_rule(draw, gen, seq_rules)
                      for _ in range(draw(st.integers(0, max_suffix)))]
            return Scenario(tuple(prefix), tuple(workers), tuple(suffix))

        return draw_scenario()

    return Spec(
        factory=resource,
        operations=tuple(ops),
        model=model,
        expected_errors=tuple(expected_errors),
        name=machine.__name__,
        handle=handle,
        model_invariants=model_invariants,
        scenario_strategy=strategy,
    )
