"""What the user wrote: a resource factory, its operations, a sequential model.

This is the declarative form (Lincheck's shape on the JVM): operations are
plain functions ``op(resource, *args)``, sync or ``async def``, each with one
Hypothesis strategy per argument; the model is a class with a method of the
same name per operation that says what the operation does sequentially.  The
stateful form (``jostle.from_machine``) and the bugzoo case format
(``jostle.load_cases``) both build the same ``Spec``, so everything after this
module sees one shape.

Which worker kinds may run an operation follows from what it is: an
``async def`` runs as an asyncio task; a plain function runs on a thread or in
a process worker (if the resource can be shared with processes).  Users may
narrow this with ``kinds=``; asking for an impossible kind is an error that
names the fix, never a silent skip.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis.strategies import SearchStrategy

from ._errors import SpecError, SpecTypeError
from ._history import WorkerKind

__all__ = ["KINDS", "Operation", "Spec", "operation", "spec"]

KINDS: tuple[WorkerKind, ...] = ("thread", "task", "process")


def _describe(obj: object) -> str:
    return f"{obj!r} (type={type(obj).__name__})"


def _check_kinds(kinds: Iterable[str], where: str) -> frozenset[WorkerKind]:
    if isinstance(kinds, str):
        raise SpecTypeError(
            f"{where}: expected a collection of worker kinds but got kinds={kinds!r}; "
            f"write kinds=({kinds!r},)"
        )
    out: set[WorkerKind] = set()
    for k in kinds:
        if k not in KINDS:
            raise SpecError(
                f"{where}: unknown worker kind {_describe(k)}; "
                f"choose from {', '.join(map(repr, KINDS))}"
            )
        out.add(k)
    if not out:
        raise SpecError(f"{where}: kinds is empty; give at least one of {KINDS}")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a spec: ``fn(resource, *args)``.

    Build it with :func:`jostle.operation`.

    Attributes:
        fn: the function called with the resource and the drawn arguments.
        args: one Hypothesis strategy per positional argument after the resource.
        name: the name the model's method and the reports use.
        kinds: the worker kinds that may run it.
        is_async: whether ``fn`` is a coroutine function.
    """

    fn: Callable[..., Any]
    args: tuple[SearchStrategy[Any], ...]
    name: str
    kinds: frozenset[WorkerKind]
    is_async: bool
    #: Whether ``kinds`` was chosen by the user (else :func:`spec` may add
    #: ``process`` when the resource can be shared with processes).
    explicit_kinds: bool = False


def operation(
    fn: Callable[..., Any],
    *args: SearchStrategy[Any],
    name: str | None = None,
    kinds: Iterable[WorkerKind] | None = None,
) -> Operation:
    """Describe one operation on the shared resource.

    Args:
        fn: ``fn(resource, *args)``; a plain function or an ``async def``.
        *args: one Hypothesis strategy per argument after the resource.
        name: the operation's name (default ``fn.__name__``); the model must
            have a method of this name.
        kinds: worker kinds allowed to run it.  Default: ``("task",)`` for an
            ``async def``; ``("thread",)`` for a plain function, plus
            ``"process"`` when the spec's resource can be shared with
            processes (the spec has ``handle=``, or the factory class defines
            ``__jostle_handle__``).  A plain function may also be given
            ``"task"``: it then runs on the event loop's thread, between the
            loop's callbacks.

    Returns:
        An :class:`Operation` for :func:`jostle.spec`.

    Raises:
        SpecTypeError: ``fn`` is not callable or an argument is not a strategy.
        SpecError: the arity does not match, or an ``async def`` is given a
            thread or process kind.

    Example:
        >>> from hypothesis import strategies as st
        >>> def put(q, item):
        ...     q.append(item)
        >>> op = operation(put, st.integers(0, 3))
        >>> op.name, sorted(op.kinds)
        ('put', ['thread'])
    """
    if not callable(fn):
        raise SpecTypeError(
            f"operation(): expected a function fn(resource, *args) but got fn={_describe(fn)}"
        )
    op_name = name if name is not None else getattr(fn, "__name__", None)
    if not isinstance(op_name, str) or not op_name.isidentifier():
        raise SpecError(
            f"operation({_describe(fn)}): cannot use {op_name!r} as the operation name; "
            "pass name='...' (a Python identifier, the name of the model's method)"
        )
    where = f"operation {op_name!r}"
    for i, strat in enumerate(args, start=1):
        if not isinstance(strat, SearchStrategy):
            raise SpecTypeError(
                f"{where}: argument {i} must be a Hypothesis strategy but got {_describe(strat)}; "
                f"wrap a fixed value as st.just({strat!r}) or a choice as st.sampled_from([...])"
            )
    _check_arity(fn, len(args), where)
    is_async = inspect.iscoroutinefunction(fn)
    if kinds is None:
        allowed: frozenset[WorkerKind] = frozenset({"task"} if is_async else {"thread"})
    else:
        allowed = _check_kinds(kinds, where)
        if is_async and allowed & {"thread", "process"}:
            bad = sorted(allowed & {"thread", "process"})
            raise SpecError(
                f"{where} is an async def, so it cannot run on a {' or '.join(bad)} worker; "
                "give it kinds=('task',), or make it a plain function that calls "
                "asyncio.run_coroutine_threadsafe(...) if a thread must drive the loop"
            )
    return Operation(fn=fn, args=tuple(args), name=op_name, kinds=allowed, is_async=is_async,
                     explicit_kinds=kinds is not None)


def _check_arity(fn: Callable[..., Any], n_args: int, where: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins without a signature: trust the user
    try:
        sig.bind(object(), *([None] * n_args))
    except TypeError as exc:
        raise SpecError(
            f"{where}: {getattr(fn, '__qualname__', fn)}{sig} cannot be called as "
            f"fn(resource, <{n_args} argument(s)>): {exc}; give one strategy per "
            "argument after the resource"
        ) from None


@dataclass(frozen=True)
class Spec:
    """A shared resource, its operations and what they should do sequentially.

    Build it with :func:`jostle.spec`, :func:`jostle.from_machine` or
    :func:`jostle.load_cases`; run it with :func:`jostle.concurrent_test`,
    :func:`jostle.run` or :func:`jostle.execute`.
    """

    factory: Callable[[], Any]
    operations: tuple[Operation, ...]
    model: Callable[[], Any] | None
    invariants: tuple[Callable[[Any], Any], ...] = ()
    expected_errors: tuple[type[BaseException] | str, ...] = ()
    partition: Callable[[str, tuple[Any, ...]], Hashable | None] | None = None
    name: str = "resource"
    teardown: Callable[[Any], Any] | None = None
    handle: Callable[[Any], Any] | None = None
    # Set by from_machine: called at quiescence with the resource and the
    # history so far; runs the machine's @invariant methods on the model state
    # of a linearization, with the resource attached.
    model_invariants: Callable[[Any, Any], None] | None = field(default=None, repr=False)
    # Set by from_machine: builds the scenario strategy (rules need the
    # machine's state to draw: preconditions and bundles).
    scenario_strategy: Callable[..., Any] | None = field(default=None, repr=False)

    def op(self, name: str) -> Operation:
        """The operation called ``name``; ``SpecError`` if there is none."""
        for op in self.operations:
            if op.name == name:
                return op
        raise SpecError(
            f"{self.name}: no operation named {name!r}; the spec has "
            f"{', '.join(o.name for o in self.operations)}"
        )

    @property
    def kinds(self) -> frozenset[WorkerKind]:
        """Every worker kind at least one operation can run on."""
        out: frozenset[WorkerKind] = frozenset()
        for op in self.operations:
            out |= op.kinds
        return out

    def is_expected_error(self, exc: BaseException, type_name: str | None = None) -> bool:
        """Whether ``exc`` is an outcome the model specifies (not a bug by itself)."""
        name = type_name or type(exc).__qualname__
        for e in self.expected_errors:
            if isinstance(e, str):
                if e == name or e == type(exc).__name__:
                    return True
            elif isinstance(exc, e) or e.__qualname__ == name:
                return True
        return False


def spec(
    factory: Callable[[], Any],
    *operations: Operation,
    model: Callable[[], Any] | None,
    invariants: Sequence[Callable[[Any], Any]] = (),
    expected_errors: Sequence[type[BaseException] | str] = (),
    partition: Callable[[str, tuple[Any, ...]], Hashable | None] | None = None,
    name: str | None = None,
    teardown: Callable[[Any], Any] | None = None,
    handle: Callable[[Any], Any] | None = None,
) -> Spec:
    """Describe a shared resource for jostle (the declarative form).

    Args:
        factory: builds a fresh resource; a class, a function or an
            ``async def``.  It is called on jostle's event-loop thread inside
            the running loop, so asyncio primitives bind to that loop.
        *operations: from :func:`jostle.operation`.
        model: a zero-argument factory of the sequential model: an object with
            one method per operation name, taking the same arguments and
            returning what the operation should return (or raising the
            exception type it should raise).  It must be deterministic and
            ``copy.deepcopy``-able (define ``__jostle_copy__`` otherwise, and
            ``__jostle_state__`` returning a hashable fingerprint to speed up
            the search).  ``None`` disables the linearizability check.
        invariants: ``check(resource)`` functions run at quiescence; they raise
            ``AssertionError`` when violated.  ``async def`` is allowed.
        expected_errors: exception types (or class names) the model itself
            raises as results (``Empty``, ``KeyError``...).  Any other
            exception from an operation is reported as a bug.
        partition: ``partition(op_name, args)`` returning a key when operations
            on different keys are independent (P-compositionality: each key is
            checked separately, which makes long histories cheap), or ``None``
            for an operation touching every key.
        name: shown in reports (default: the factory's name).
        teardown: called with the resource after each execution (default: its
            ``aclose()`` or ``close()`` if it has one).
        handle: ``handle(resource)`` returning a picklable handle for process
            workers (default: ``resource.__jostle_handle__()`` or the resource
            itself, pickled).

    Returns:
        A :class:`Spec`.

    Raises:
        SpecTypeError: a value has the wrong type.
        SpecError: the model lacks an operation, names repeat, or no operation
            was given.

    Example:
        >>> from hypothesis import strategies as st
        >>> class Counter:
        ...     def __init__(self): self.n = 0
        >>> def incr(c): c.n += 1; return c.n
        >>> class Model:
        ...     def __init__(self): self.n = 0
        ...     def incr(self): self.n += 1; return self.n
        >>> s = spec(Counter, operation(incr), model=Model)
        >>> s.name
        'Counter'
    """
    if not callable(factory):
        raise SpecTypeError(
            f"spec(): expected a resource factory (a class or function) but got "
            f"factory={_describe(factory)}"
        )
    spec_name = name or getattr(factory, "__qualname__", None) or type(factory).__name__
    if not operations:
        raise SpecError(f"spec {spec_name!r}: give at least one jostle.operation(...)")
    seen: set[str] = set()
    for op in operations:
        if not isinstance(op, Operation):
            raise SpecTypeError(
                f"spec {spec_name!r}: expected jostle.operation(fn, ...) but got {_describe(op)}; "
                f"wrap it as jostle.operation({getattr(op, '__name__', 'fn')}, <strategies>)"
            )
        if op.name in seen:
            raise SpecError(
                f"spec {spec_name!r}: two operations are named {op.name!r}; "
                "pass name='...' to tell them apart"
            )
        seen.add(op.name)
    if model is not None:
        if not callable(model):
            raise SpecTypeError(
                f"spec {spec_name!r}: model must be a class or zero-argument factory, "
                f"got model={_describe(model)}"
            )
        for op in operations:
            method = getattr(model, op.name, None)
            if method is None and not isinstance(model, type):
                continue  # a factory function: checked when first built
            if not callable(method):
                mname = getattr(model, "__qualname__", repr(model))
                raise SpecError(
                    f"spec {spec_name!r}: the model {mname} has no method {op.name!r} for "
                    f"operation {op.name!r}: the checker replays every operation on the "
                    f"model. Fix: add `def {op.name}(self, ...)` to {mname}, returning what "
                    "the operation returns when run alone"
                )
    if handle is not None or hasattr(factory, "__jostle_handle__"):
        operations = tuple(
            replace(op, kinds=op.kinds | {"process"})
            if not op.explicit_kinds and not op.is_async else op
            for op in operations
        )
    for inv in invariants:
        if not callable(inv):
            raise SpecTypeError(
                f"spec {spec_name!r}: invariants must be functions check(resource), "
                f"got {_describe(inv)}"
            )
    for err in expected_errors:
        if not (isinstance(err, str) or (isinstance(err, type) and issubclass(err, BaseException))):
            raise SpecTypeError(
                f"spec {spec_name!r}: expected_errors holds exception types or class names, "
                f"got {_describe(err)}"
            )
    return Spec(
        factory=factory,
        operations=tuple(operations),
        model=model,
        invariants=tuple(invariants),
        expected_errors=tuple(expected_errors),
        partition=partition,
        name=spec_name,
        teardown=teardown,
        handle=handle,
    )
