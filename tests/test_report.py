"""Failure messages: findings, runnable scenario code, a per-worker timeline."""

from __future__ import annotations

import jostle
from jostle import History, OpRecord, Returned, Scenario, Step, Unknown, WorkerPlan

import thread_resources as tr


def test_timeline_has_a_column_per_worker_and_marks_pending() -> None:
    """Rows are events in time order; a pending op ends with '? (hung)'."""
    h = History((
        OpRecord(0, 1, "thread", "parallel", "incr", (), 1_000, 3_000, Returned(1)),
        OpRecord(1, 2, "task", "parallel", "incr", (), 2_000, None, Unknown("hung")),
    ))
    lines = jostle.format_timeline(h).splitlines()
    assert "worker 1 (thread)" in lines[0] and "worker 2 (task)" in lines[0]
    assert lines[1].split() == ["0.0", "incr()"]
    assert lines[2].split()[:2] == ["1.0", "incr()"]
    assert lines[3].split() == ["2.0", "->", "1"]
    assert lines[4].split()[:1] == ["end"] and lines[4].endswith("? (hung)")


def test_failure_message_replays_as_code() -> None:
    """The scenario printed in a failure evaluates back to the failing scenario."""
    spec = jostle.spec(tr.RendezvousCounter, jostle.operation(tr.incr), model=tr.CounterModel)
    sc = Scenario(workers=(WorkerPlan("thread", (Step("incr"),)),) * 2)
    try:
        jostle.replay(spec, sc)
    except jostle.NotLinearizable as exc:
        text = str(exc)
    else:
        raise AssertionError("the forced lost update was not reported")
    code = text.split("scenario = ", 1)[1].split("\n\n", 1)[0]
    assert eval(code, {"jostle": jostle}) == sc
    assert "jostle.replay(spec, scenario)" in text
    assert "Timeline:" in text and "stress" in text
