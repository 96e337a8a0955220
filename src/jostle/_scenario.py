"""What Hypothesis drew: the operations, their arguments, and who runs them.

A scenario has Lincheck's shape: a sequential prefix, a parallel part of
``k`` workers each running a list of operations, and a sequential suffix.
Each parallel worker also carries its *kind* (thread, task or process), so one
scenario can drive the same resource from all three at once.

The strategy is built so that Hypothesis's shrinker does the right thing by
itself: workers and steps are lists (shrinking deletes them), kinds are
``sampled_from`` in the order thread < task < process (shrinking prefers the
simplest), and arguments come from the user's own strategies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from ._errors import SpecError
from ._history import Phase, WorkerKind
from ._misuse import guarded
from ._spec import KINDS, Operation, Spec, _check_kinds

__all__ = ["Scenario", "Step", "WorkerPlan", "scenarios"]


@dataclass(frozen=True, slots=True)
class Step:
    """One call of an operation: ``op(resource, *args)``."""

    op: str
    args: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return f"Step({self.op!r}, {self.args!r})"


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """A parallel worker: its kind and the steps it runs in order."""

    kind: WorkerKind
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A sequential prefix, parallel workers, and a sequential suffix.

    Worker 0 runs the prefix and the suffix; parallel workers are numbered
    from 1.  Every step gets an index, in the order prefix, worker 1, worker
    2, ..., suffix; histories refer to steps by that index.
    """

    prefix: tuple[Step, ...] = ()
    workers: tuple[WorkerPlan, ...] = ()
    suffix: tuple[Step, ...] = ()

    def indexed(self) -> Iterator[tuple[int, int, Phase, Step]]:
        """Yield ``(index, worker, phase, step)`` for every step."""
        i = 0
        for step in self.prefix:
            yield i, 0, "prefix", step
            i += 1
        for w, plan in enumerate(self.workers, start=1):
            for step in plan.steps:
                yield i, w, "parallel", step
                i += 1
        for step in self.suffix:
            yield i, 0, "suffix", step
            i += 1

    @property
    def size(self) -> tuple[int, int]:
        """``(workers, most operations of any worker)`` of the parallel part."""
        return len(self.workers), max((len(w.steps) for w in self.workers), default=0)

    def to_code(self) -> str:
        """The scenario as Python source using jostle's public API."""
        def steps(ss: tuple[Step, ...], indent: str) -> str:
            if not ss:
                return "()"
            inner = "".join(f"{indent}    jostle.Step({s.op!r}, {s.args!r}),\n" for s in ss)
            return "(\n" + inner + indent + ")"

        workers = "".join(
            f"        jostle.WorkerPlan({w.kind!r}, {steps(w.steps, '        ')}),\n"
            for w in self.workers
        )
        return (
            "jostle.Scenario(\n"
            f"    prefix={steps(self.prefix, '    ')},\n"
            f"    workers=(\n{workers}    ),\n"
            f"    suffix={steps(self.suffix, '    ')},\n"
            ")"
        )


def _step(op: Operation) -> st.SearchStrategy[Step]:
    args = (guarded(op, i, s) for i, s in enumerate(op.args, start=1))
    return st.tuples(*args).map(lambda args, name=op.name: Step(name, args))  # type: ignore[misc]


def _workers(by_kind: dict[WorkerKind, list[Operation]],
             max_ops: int) -> st.SearchStrategy[WorkerPlan]:
    """A worker: its kind, then its steps.  The strategies are built once
    here: building them inside every draw made a draw ~10x slower."""
    kinds = st.sampled_from(sorted(by_kind, key=KINDS.index))
    steps = {kind: st.lists(st.one_of([_step(op) for op in ops]), min_size=1,
                            max_size=max_ops)
             for kind, ops in by_kind.items()}

    @st.composite
    def worker(draw: st.DrawFn) -> WorkerPlan:
        kind: WorkerKind = draw(kinds)
        return WorkerPlan(kind, tuple(draw(steps[kind])))

    return worker()


def scenarios(
    spec: Spec,
    *,
    min_workers: int = 1,
    max_workers: int = 3,
    max_ops: int = 3,
    max_prefix: int = 2,
    max_suffix: int = 1,
    kinds: tuple[WorkerKind, ...] | None = None,
) -> st.SearchStrategy[Scenario]:
    """A Hypothesis strategy for scenarios of ``spec``.

    Args:
        spec: the resource to drive.
        min_workers: fewest parallel workers.
        max_workers: most parallel workers.
        max_ops: most operations per parallel worker.
        max_prefix: most operations in the sequential prefix.
        max_suffix: most operations in the sequential suffix.
        kinds: worker kinds to use (default: every kind some operation allows).

    Returns:
        A strategy of :class:`Scenario`.

    Raises:
        SpecError: bounds are inconsistent, or no operation can run on the
            kinds asked for.

    Example:
        >>> import jostle
        >>> from hypothesis import strategies as st
        >>> def put(q, x): q.append(x)
        >>> class Model:
        ...     def put(self, x): return None
        >>> s = jostle.spec(list, jostle.operation(put, st.integers()), model=Model)
        >>> strategy = jostle.scenarios(s, max_workers=2, kinds=("thread",))
    """
    for name, value in (("min_workers", min_workers), ("max_workers", max_workers),
                        ("max_ops", max_ops), ("max_prefix", max_prefix),
                        ("max_suffix", max_suffix)):
        if not isinstance(value, int) or value < 0:
            raise SpecError(f"scenarios(): {name} must be a whole number >= 0, got {value!r}")
    if max_workers < 1 or max_ops < 1:
        raise SpecError("scenarios(): max_workers and max_ops must be at least 1")
    if min_workers > max_workers:
        raise SpecError(
            f"scenarios(): min_workers={min_workers} is more than max_workers={max_workers}"
        )
    wanted = _check_kinds(kinds, "scenarios(kinds=...)") if kinds is not None else spec.kinds
    if spec.scenario_strategy is not None:
        strategy: st.SearchStrategy[Scenario] = spec.scenario_strategy(
            min_workers=min_workers, max_workers=max_workers, max_ops=max_ops,
            max_prefix=max_prefix, max_suffix=max_suffix, kinds=wanted)
        return strategy
    by_kind: dict[WorkerKind, list[Operation]] = {}
    for op in spec.operations:
        for kind in op.kinds & wanted:
            by_kind.setdefault(kind, []).append(op)
    if not by_kind:
        raise SpecError(
            f"spec {spec.name!r}: no operation can run on worker kinds {sorted(wanted)}; "
            f"its operations allow {sorted(spec.kinds)}"
        )
    seq_step = st.one_of([_step(op) for op in spec.operations])
    return st.builds(
        Scenario,
        prefix=st.lists(seq_step, max_size=max_prefix).map(tuple),
        workers=st.lists(_workers(by_kind, max_ops), min_size=min_workers,
                         max_size=max_workers).map(tuple),
        suffix=st.lists(seq_step, max_size=max_suffix).map(tuple),
    )
