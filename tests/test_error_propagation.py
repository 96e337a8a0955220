"""An exception in one worker never hides another's, and exception groups
and chained causes survive into the failure report, from every worker kind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import strategies as st

import jostle
from jostle._findings import FailureStore, TestRef

if sys.version_info < (3, 11):  # pragma: no cover - ExceptionGroup is 3.11+
    pytest.skip("ExceptionGroup needs Python 3.11", allow_module_level=True)
else:
    from builtins import ExceptionGroup


class Box:
    """Nothing to share: the operations only raise."""


def fail(box: Box, how: str) -> None:
    if how == "value":
        raise ValueError("the first worker's value error")
    if how == "group":
        raise ExceptionGroup("two sub-tasks failed", [KeyError("k"), OSError("disk full")])
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("lookup failed") from exc


async def afail(box: Box, how: str) -> None:
    fail(box, how)


class NoModel:
    def fail(self, how: str) -> None: ...

    def afail(self, how: str) -> None: ...


SPEC = jostle.spec(Box, jostle.operation(fail, st.just("value")),
                   jostle.operation(afail, st.just("value")), model=NoModel,
                   handle=jostle.handle_for)


def scenario(*workers: tuple[str, str, str]) -> jostle.Scenario:
    return jostle.Scenario(workers=tuple(
        jostle.WorkerPlan(kind, (jostle.Step(op, (how,)),))  # type: ignore[arg-type]
        for kind, op, how in workers))


def failure_of(sc: jostle.Scenario) -> jostle.ConcurrencyFailure:
    with pytest.raises(jostle.UnexpectedException) as info:
        jostle.replay(SPEC, sc)
    return info.value


def test_two_workers_raising_different_exceptions_both_appear() -> None:
    """A thread's ValueError and a task's chained RuntimeError are both findings."""
    failure = failure_of(scenario(("thread", "fail", "value"), ("task", "afail", "chained")))
    text = str(failure)
    assert "2 finding(s)" in text
    assert "ValueError: the first worker's value error" in text
    assert "RuntimeError: lookup failed" in text


@pytest.mark.parametrize("kind", ["thread", "task", "process"])
def test_an_exception_group_and_a_chained_cause_survive_into_the_report(kind: str) -> None:
    """The group's sub-exceptions and the cause of a ``raise X from Y`` are in
    the report text, whichever kind of worker raised them."""
    op = "afail" if kind == "task" else "fail"
    failure = failure_of(scenario((kind, op, "group"), (kind, op, "chained")))
    text = str(failure)
    for shown in ("ExceptionGroup: two sub-tasks failed (2 sub-exceptions)",
                  "KeyError: 'k'", "OSError: disk full",
                  "The above exception was the direct cause of the following exception",
                  "KeyError: 'missing'", "RuntimeError: lookup failed"):
        assert shown in text, f"{shown!r} is missing from the report:\n{text}"


def test_the_failure_folder_keeps_every_exception(tmp_path: Path) -> None:
    """report.json lists each worker's exception with its whole traceback."""
    failure = failure_of(scenario(("thread", "fail", "group"), ("thread", "fail", "chained")))
    ref = TestRef("t::errors", __name__, __file__, "SPEC", str(tmp_path))
    _fid, folder, _ = FailureStore(tmp_path).save(ref, failure, status="final", context={},
                                                   first_in_run=True)


    record = json.loads((folder / "report.json").read_text())
    tracebacks = [e["traceback"] for e in record["exceptions"]]
    assert len(tracebacks) == 2
    assert any("OSError: disk full" in t for t in tracebacks)
    assert any("KeyError: 'missing'" in t and "direct cause" in t for t in tracebacks)
