"""The misuse catalogue (docs/misuse.md): each mistake is refused with an
error that says what was wrong, where it came from, and the fix."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import Phase, settings, strategies as st

import jostle
from jostle import Scenario, Step, WorkerPlan

import thread_resources as tr

FEW = settings(max_examples=3, database=None)
ONE = {"max_workers": 1, "max_ops": 1, "max_prefix": 0, "max_suffix": 0}


def _fix(exc: BaseException, *parts: str) -> str:
    """The message, checked to name each of ``parts`` and a fix."""
    text = str(exc)
    assert isinstance(exc, jostle.JostleError) and isinstance(exc, (TypeError, ValueError))
    assert "Fix" in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


class Box:
    """A resource that cannot be pickled (it holds a lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0


class BoxModel:
    def __init__(self) -> None:
        self.n = 0

    def peek(self) -> int:
        return self.n


def peek(box: Any) -> int:
    return int(box.n) if hasattr(box, "n") else len(box)


def on_process(spec: jostle.Spec) -> Scenario:
    return Scenario(workers=(WorkerPlan("process", (Step("peek"),)),))


def test_unpicklable_operation_for_a_process_worker() -> None:
    """A lambda given to a process worker: the operation, the worker and
    step, and 'define it at module level'."""
    spec = jostle.spec(tr.LockedCounter,
                       jostle.operation(lambda c: 0, name="peek", kinds=("process",)),
                       model=BoxModel)
    with pytest.raises(jostle.SpecTypeError) as info:
        jostle.execute(spec, on_process(spec))
    _fix(info.value, "operation 'peek'", "scenario worker 1", "module level")


def test_unpicklable_resource_for_a_process_worker() -> None:
    """A resource holding a lock, sent to a process: its type and
    '__jostle_handle__'."""
    spec = jostle.spec(Box, jostle.operation(peek, kinds=("process",)), model=BoxModel)
    with pytest.raises(jostle.SpecTypeError) as info:
        jostle.execute(spec, on_process(spec))
    _fix(info.value, "resource Box", "scenario worker 1", "__jostle_handle__")


def test_async_operation_on_a_thread_worker() -> None:
    """An async def put on a thread worker: the worker and 'task'."""
    async def tick(counter: object) -> int:
        return 0

    class Model:
        def tick(self) -> int:
            return 0

    spec = jostle.spec(tr.LockedCounter, jostle.operation(tick), model=Model)
    with pytest.raises(jostle.SpecError) as info:
        jostle.execute(spec, Scenario(workers=(WorkerPlan("thread", (Step("tick"),)),)))
    _fix(info.value, "operation 'tick'", "thread worker (worker 1)", "'task' worker")


def test_model_missing_an_operation() -> None:
    """A model without the operation's method: the spec, the model and the
    method to add."""
    with pytest.raises(jostle.SpecError) as info:
        jostle.spec(tr.LockedCounter, jostle.operation(tr.incr), model=BoxModel)
    _fix(info.value, "spec 'LockedCounter'", "BoxModel", "def incr(self")


def test_model_raising_an_undeclared_exception() -> None:
    """A model that raises where the operation returns is the model's
    mistake, not a linearizability failure: the operation, the model's
    exception and expected_errors."""
    class RaisingModel:
        def incr(self) -> int:
            raise KeyError("model bug")

    spec = jostle.spec(tr.LockedCounter, jostle.operation(tr.incr), model=RaisingModel)
    with pytest.raises(jostle.SpecError) as info:
        jostle.run(spec, settings=FEW, **ONE)
    _fix(info.value, "RaisingModel raised KeyError", "incr()", "expected_errors=(KeyError,)")


@pytest.mark.parametrize("mode", ["stress", "controlled"])
def test_resource_factory_returning_none(mode: str) -> None:
    """A factory that returns None: the factory and 'return the shared
    resource', in both modes."""
    def make() -> None:
        return None

    spec = jostle.spec(make, jostle.operation(tr.get), model=tr.CounterModel)
    with pytest.raises(jostle.SpecError) as info:
        jostle.run(spec, settings=FEW, mode=mode, **ONE)
    _fix(info.value, ".make returned None", "return the shared resource")


@pytest.mark.parametrize("mode", ["stress", "controlled"])
def test_resource_factory_raising(mode: str) -> None:
    """A factory that raises: its exception, chained, in both modes."""
    def make() -> object:
        raise OSError("no database")

    spec = jostle.spec(make, jostle.operation(tr.get), model=tr.CounterModel)
    with pytest.raises(jostle.SpecError) as info:
        jostle.run(spec, settings=FEW, mode=mode, **ONE)
    _fix(info.value, ".make raised OSError: no database", "called alone")
    assert isinstance(info.value.__cause__, OSError)


def test_a_misuse_error_in_a_controlled_run_keeps_the_driver() -> None:
    """A job's own error comes back at once and leaves the driver thread in
    service (it used to wait out the lost-driver grace, 2 s, and replace
    the driver, each time)."""
    from jostle._engine import get_engine

    def make() -> None:
        return None

    spec = jostle.spec(make, jostle.operation(tr.get), model=tr.CounterModel)
    once = settings(max_examples=1, database=None, phases=[Phase.generate])
    with pytest.raises(jostle.SpecError):
        jostle.run(spec, settings=once, mode="controlled", **ONE)
    driver = get_engine().driver.thread
    with pytest.raises(jostle.SpecError):
        jostle.run(spec, settings=once, mode="controlled", **ONE)
    assert get_engine().driver.thread is driver and not driver.abandoned


def test_argument_strategy_that_errors() -> None:
    """A strategy that raises while drawn: the operation, the argument and
    the user's line."""
    def by(counter: object, n: int) -> int:
        return n

    class Model:
        def by(self, n: int) -> int:
            return n

    def boom(n: int) -> int:
        return n // 0  # the strategy's bug

    spec = jostle.spec(tr.LockedCounter, jostle.operation(by, st.integers().map(boom)),
                       model=Model)
    with pytest.raises(jostle.SpecError) as info:
        jostle.run(spec, settings=FEW, **ONE)
    _fix(info.value, "argument 1 of operation 'by'", "ZeroDivisionError",
         f"{__file__}:", "Fix the strategy")


def test_resource_without_a_process_handle_for_process_workers() -> None:
    """A dict given to process workers without a handle (each process would
    change a copy): the worker, the type and the handles to use."""
    spec = jostle.spec(dict, jostle.operation(peek, kinds=("process",)), model=BoxModel)
    with pytest.raises(jostle.SpecTypeError) as info:
        jostle.execute(spec, on_process(spec))
    _fix(info.value, "scenario worker 1", "dict with no process handle",
         "ManagerHandle('dict')")


def test_monitoring_tool_ids_all_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sys.monitoring tool id jostle may use is held: who holds each,
    and mode='stress'."""
    from jostle import _tracing

    class Taken:
        def get_tool(self, tool: int) -> str:
            return f"profiler-{tool}"

        def use_tool_id(self, tool: int, name: str) -> None:
            raise ValueError("taken")

    monkeypatch.setattr(_tracing, "_mon", Taken())
    with pytest.raises(jostle.SpecError) as info:
        _tracing._claim_tool_id()
    _fix(info.value, "4: 'profiler-4'", "mode='stress'")


def test_a_jostle_run_nested_in_another() -> None:
    """An operation that starts a jostle run: the calling line, and 'side by
    side'."""
    def nested(counter: object) -> None:
        jostle.execute(spec, Scenario(prefix=(Step("get"),)))

    class Model:
        def nested(self) -> None:
            return None

        def get(self) -> int:
            return 0

    spec = jostle.spec(tr.LockedCounter, jostle.operation(nested, kinds=("task",)),
                       jostle.operation(tr.get), model=Model)
    verdict = jostle.judge(spec, jostle.execute(spec, Scenario(prefix=(Step("nested"),))))
    (finding,) = verdict.findings
    assert isinstance(finding.cause, jostle.SpecError)
    _fix(finding.cause, f"{__file__}:", "side by side, not nested")


def test_an_operation_starting_its_own_thread_in_controlled_mode() -> None:
    """A thread the operation starts runs outside the schedule: where it was
    started, and the ways out (an operation of its own, stress mode,
    uncontrolled_threads='allow')."""
    def spawn(counter: object) -> int:
        t = threading.Thread(target=lambda: None)
        t.start()  # behind the scheduler's back
        t.join()
        return 0

    class Model:
        def spawn(self) -> int:
            return 0

    spec = jostle.spec(tr.LockedCounter, jostle.operation(spawn), model=Model)
    with pytest.raises(jostle.SpecError) as info:
        jostle.run(spec, settings=FEW, mode="controlled", **ONE)
    _fix(info.value, "controlled run of LockedCounter", "test_misuse.py:",
         "mode='stress'", "uncontrolled_threads='allow'")
    jostle.run(spec, settings=FEW, mode="controlled", uncontrolled_threads="allow", **ONE)
