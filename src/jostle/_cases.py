"""Loads folders of bug cases in the bugzoo format as specs.

The format (../shared/bugzoo/README.md) is tool-independent: a package of
case modules, each with ``KIND``, ``Buggy``/``Fixed`` factories,
``OPERATIONS`` (``Op`` records: a function, one tuple of candidate values per
argument, ``where`` for mixed cases), a sequential ``Model``, an optional
``invariant``, ``EXPECTED_ERRORS`` and ``MINIMAL``.  Everything here is read
from those names; no case is special-cased, so any folder in the format
loads.

Mapping to a spec:

* argument domains become ``st.sampled_from(candidates)`` (shrinking goes to
  the first candidate);
* ``KIND`` fixes the worker kinds: thread -> thread workers, asyncio -> tasks,
  process -> process workers, mixed -> ``where="loop"`` ops on tasks and
  ``where="thread"`` ops on threads;
* an async op returning the format's ``CANCELLED`` marker is recorded as
  pending (``jostle.UNKNOWN``), as the format requires.

A case folder is imported as a package under its own name with its parent
directory on ``sys.path`` (the format's convention), so process workers can
import the operations by reference.  Two different folders with the same
name cannot both be loaded in one process; that is reported, not guessed at.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from hypothesis import strategies as st

from ._errors import SpecError
from ._history import WorkerKind
from ._spec import Operation, Spec
from ._unknown import UNKNOWN

__all__ = ["Case", "load_cases"]

_KIND_MAP: dict[str, tuple[WorkerKind, ...]] = {
    "thread": ("thread",),
    "asyncio": ("task",),
    "process": ("process",),
}
_WHERE_MAP: dict[str, WorkerKind] = {"loop": "task", "thread": "thread"}


class _PendingIfCancelled:
    """Wraps an async case op: the format's CANCELLED marker becomes UNKNOWN.

    A class (not a closure) so it pickles by reference to the wrapped op.
    """

    def __init__(self, fn: Callable[..., Coroutine[Any, Any, object]], marker: object) -> None:
        self.fn = fn
        self.marker = marker
        self.__name__ = fn.__name__
        self.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
        self.__module__ = fn.__module__

    async def _run(self, *args: object) -> object:
        value = await self.fn(*args)
        return UNKNOWN if self.marker is not None and value == self.marker else value

    def __call__(self, *args: object) -> Coroutine[Any, Any, object]:
        return self._run(*args)


@dataclass(frozen=True)
class Case:
    """One bug case: a buggy and a fixed version of a shared resource.

    Attributes:
        id: the module name (``t01_stats_lost_update``).
        kind: ``thread``, ``asyncio``, ``process`` or ``mixed``.
        module: the imported case module.
        minimal: the case's ``MINIMAL`` dict (workers, ops_per_worker,
            prefix, preemptions, interleaving).
    """

    id: str
    kind: str
    module: ModuleType
    minimal: dict[str, Any]

    @property
    def doc(self) -> str:
        """The first line of the case's docstring."""
        return (self.module.__doc__ or "").strip().splitlines()[0]

    def spec(self, variant: Literal["buggy", "fixed"] = "buggy") -> Spec:
        """The case as a spec, for its ``Buggy`` or ``Fixed`` resource."""
        if variant not in ("buggy", "fixed"):
            raise SpecError(f"case {self.id}: variant must be 'buggy' or 'fixed', got {variant!r}")
        mod = self.module
        factory = mod.Buggy if variant == "buggy" else mod.Fixed
        marker = getattr(sys.modules.get(f"{mod.__package__}._support"), "CANCELLED", None)
        ops: list[Operation] = []
        for op in mod.OPERATIONS:
            fn = op.fn
            is_async = bool(op.is_async)
            if self.kind == "mixed":
                if op.where not in _WHERE_MAP:
                    raise SpecError(f"case {self.id}: op {op.name} has where={op.where!r}; "
                                    "a mixed case needs 'loop' or 'thread'")
                kinds: tuple[WorkerKind, ...] = (_WHERE_MAP[op.where],)
            else:
                kinds = _KIND_MAP[self.kind]
            if is_async:
                fn = _PendingIfCancelled(fn, marker)
            ops.append(Operation(
                fn=fn,
                args=tuple(st.sampled_from(list(domain)) for domain in op.args),
                name=op.name,
                kinds=frozenset(kinds),
                is_async=is_async,
            ))
        invariant = getattr(mod, "invariant", None)
        return Spec(
            factory=factory,
            operations=tuple(ops),
            model=mod.Model,
            invariants=(invariant,) if invariant is not None else (),
            expected_errors=tuple(getattr(mod, "EXPECTED_ERRORS", ())),
            name=f"{self.id}[{variant}]",
        )


def _import_package(folder: str) -> ModuleType:
    folder = os.path.abspath(folder)
    if not os.path.isfile(os.path.join(folder, "__init__.py")):
        raise SpecError(
            f"load_cases({folder!r}): not a case package (no __init__.py); point it at the "
            "folder holding the case modules, as in the bugzoo README"
        )
    parent, name = os.path.split(folder)
    existing = sys.modules.get(name)
    if existing is not None:
        loaded_from = os.path.dirname(os.path.abspath(getattr(existing, "__file__", "") or ""))
        if loaded_from != folder:
            raise SpecError(
                f"load_cases({folder!r}): a package named {name!r} is already imported from "
                f"{loaded_from!r}; rename one of the folders so their names differ"
            )
        return existing
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return importlib.import_module(name)


def load_cases(*folders: str | os.PathLike[str]) -> list[Case]:
    """Load every case module in each folder, in id order.

    Args:
        *folders: case packages in the bugzoo format.

    Returns:
        A list of :class:`Case`.

    Raises:
        SpecError: a folder is not a case package, or a module breaks the
            format (the message names the module and the missing name).

    Example:
        >>> cases = load_cases("../shared/bugzoo/cases")  # doctest: +SKIP
        >>> spec = cases[0].spec("buggy")  # doctest: +SKIP
    """
    out: list[Case] = []
    for folder in folders:
        pkg = _import_package(os.fspath(folder))
        pkg_dir = os.path.dirname(os.path.abspath(pkg.__file__ or ""))
        ids = sorted(f[:-3] for f in os.listdir(pkg_dir)
                     if f.endswith(".py") and not f.startswith("_"))
        for cid in ids:
            mod = importlib.import_module(f"{pkg.__name__}.{cid}")
            missing = [n for n in ("KIND", "Buggy", "Fixed", "OPERATIONS", "Model", "MINIMAL")
                       if not hasattr(mod, n)]
            if missing:
                raise SpecError(f"case {cid} ({mod.__file__}): missing {', '.join(missing)}; "
                                "see the case format in the bugzoo README")
            if mod.KIND not in (*_KIND_MAP, "mixed"):
                raise SpecError(f"case {cid}: KIND={mod.KIND!r} is not one of thread, asyncio, "
                                "process, mixed")
            out.append(Case(id=cid, kind=mod.KIND, module=mod, minimal=dict(mod.MINIMAL)))
    return out
