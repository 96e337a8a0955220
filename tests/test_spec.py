"""Misuse of the declarative API is caught early, with the fix in the message."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

import jostle


def put(q: list[int], x: int) -> None:
    q.append(x)


async def aput(q: list[int], x: int) -> None:
    q.append(x)


class Model:
    def __init__(self) -> None:
        self.items: list[int] = []

    def put(self, x: int) -> None:
        self.items.append(x)

    def aput(self, x: int) -> None:
        self.items.append(x)


def test_argument_must_be_a_strategy() -> None:
    """A plain value where a strategy belongs names st.just as the fix."""
    with pytest.raises(jostle.SpecTypeError, match=r"st\.just\(3\)"):
        jostle.operation(put, 3)  # type: ignore[arg-type]


def test_spec_type_error_is_a_type_error() -> None:
    """Misuse errors can be caught as the usual built-in types."""
    with pytest.raises(TypeError):
        jostle.operation(put, 3)  # type: ignore[arg-type]


def test_arity_mismatch() -> None:
    """One strategy per argument after the resource, or a clear error."""
    with pytest.raises(jostle.SpecError, match="one strategy per argument"):
        jostle.operation(put)


def test_async_operation_on_a_thread_worker() -> None:
    """An async def cannot be put on a thread worker; the fix is kinds=('task',)."""
    with pytest.raises(jostle.SpecError, match=r"async def.*kinds=\('task',\)"):
        jostle.operation(aput, st.integers(), kinds=("thread",))


def test_unknown_kind() -> None:
    """A misspelt worker kind lists the valid ones."""
    with pytest.raises(jostle.SpecError, match="'thread', 'task', 'process'"):
        jostle.operation(put, st.integers(), kinds=("threads",))  # type: ignore[arg-type]


def test_model_missing_an_operation() -> None:
    """A model without the operation's method says which method to add."""
    class Partial:
        pass

    with pytest.raises(jostle.SpecError, match=r"add `def put\(self"):
        jostle.spec(list, jostle.operation(put, st.integers()), model=Partial)


def test_duplicate_operation_names() -> None:
    """Two operations with one name are refused, with name= as the fix."""
    op = jostle.operation(put, st.integers())
    with pytest.raises(jostle.SpecError, match="name="):
        jostle.spec(list, op, op, model=Model)


def test_factory_must_be_callable() -> None:
    """A non-callable factory is refused with its type shown."""
    with pytest.raises(jostle.SpecTypeError, match=r"factory=\[\] \(type=list\)"):
        jostle.spec([], jostle.operation(put, st.integers()), model=Model)  # type: ignore[arg-type]


def test_default_kinds_follow_the_function() -> None:
    """Async ops default to tasks, sync ops to threads (processes only if shareable)."""
    s = jostle.spec(list, jostle.operation(put, st.integers()),
                    jostle.operation(aput, st.integers()), model=Model)
    assert s.op("put").kinds == {"thread"}
    assert s.op("aput").kinds == {"task"}


def test_handle_makes_sync_ops_process_capable() -> None:
    """Giving the spec a process handle lets sync ops run on process workers."""
    s = jostle.spec(list, jostle.operation(put, st.integers()), model=Model,
                    handle=lambda r: r)
    assert s.op("put").kinds == {"thread", "process"}


def test_concurrent_test_rejects_bad_options() -> None:
    """concurrent_test validates its options up front."""
    s = jostle.spec(list, jostle.operation(put, st.integers()), model=Model)
    with pytest.raises(jostle.SpecError, match="unknown mode"):
        jostle.concurrent_test(s, mode="fast")
    with pytest.raises(jostle.SpecError, match="repeats=0"):
        jostle.concurrent_test(s, repeats=0)
    with pytest.raises(jostle.SpecTypeError, match=r"jostle\.spec"):
        jostle.concurrent_test(Model)  # type: ignore[arg-type]


def test_scenarios_rejects_impossible_kinds() -> None:
    """Asking for worker kinds no operation can run on is an error, not a skip."""
    s = jostle.spec(list, jostle.operation(put, st.integers()), model=Model)
    with pytest.raises(jostle.SpecError, match="no operation can run"):
        jostle.scenarios(s, kinds=("task",))
