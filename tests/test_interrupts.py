"""Ctrl-C is an interrupt, never a finding: it stops a run wherever it lands,
and a failure folder being written when it lands is finished first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

RESOURCE = """
import os, signal
import jostle
from jostle import Scenario, Step, WorkerPlan

class R:
    def close(self):
        if STAGE == "teardown":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the test waits

def touch(r):
    return None

def interrupt_in_invariant(r):
    if STAGE == "invariant":
        os.kill(os.getpid(), signal.SIGINT)

class M:
    def touch(self):
        return None

spec = jostle.spec(R, jostle.operation(touch), model=M, invariants=[interrupt_in_invariant])
scenario = Scenario(workers=(WorkerPlan("thread", (Step("touch"),)),))
try:
    ex = jostle.execute(spec, scenario, scheduler=SCHEDULER)
    print("RETURNED", [f.summary for f in jostle.judge(spec, ex).findings])
except KeyboardInterrupt:
    print("INTERRUPTED")
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["teardown", "invariant"])
@pytest.mark.parametrize("mode", ["stress", "controlled"])
def test_ctrl_c_in_a_teardown_or_invariant_is_an_interrupt_not_a_finding(stage: str,
                                                                        mode: str) -> None:
    """SIGINT while the test waits for the teardown or an invariant stops the
    run with KeyboardInterrupt; it is not recorded as that stage failing."""
    scheduler = ("jostle.ControlledScheduler(jostle.Preemptions())" if mode == "controlled"
                 else "None")
    out = _run(f"STAGE = {stage!r}\nSCHEDULER = None\n" + RESOURCE.replace(
        "scheduler=SCHEDULER", f"scheduler={scheduler}"))
    assert out.stdout.strip() == "INTERRUPTED", (out.stdout, out.stderr)


@pytest.mark.slow
def test_a_failure_folder_being_written_is_finished_before_the_interrupt(tmp_path: Path
                                                                          ) -> None:
    """A SIGINT that lands while a failure folder is written is held until
    the folder is complete, then raised."""
    code = textwrap.dedent(f"""
        import json, os, signal, sys
        sys.path.insert(0, {str(HERE / "fixtures")!r})
        import jostle
        from jostle import _findings
        from jostle._findings import FailureStore, TestRef
        import thread_resources as tr
        from jostle import Scenario, Step, WorkerPlan

        spec = jostle.spec(tr.RendezvousCounter, jostle.operation(tr.incr),
                           jostle.operation(tr.get), model=tr.CounterModel)
        scenario = Scenario(workers=(WorkerPlan("thread", (Step("incr"),)),
                                     WorkerPlan("thread", (Step("incr"),))))
        try:
            jostle.replay(spec, scenario)
        except jostle.ConcurrencyFailure as exc:
            failure = exc
        real = _findings._atomic_write
        def write(path, text):
            if path.name == "repro.py":
                os.kill(os.getpid(), signal.SIGINT)  # lands between two files
            real(path, text)
        _findings._atomic_write = write
        store = FailureStore(sys.argv[1])
        ref = TestRef("t.py::test", "t", "t.py", "test", os.getcwd())
        try:
            store.save(ref, failure, status="shrinking", context={{}}, first_in_run=True)
            print("SAVED WITHOUT INTERRUPT")
        except KeyboardInterrupt:
            (folder,) = store.failures.iterdir()
            print("INTERRUPTED", sorted(p.name for p in folder.iterdir()
                                        if not p.name.startswith(".")))
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=60, check=False)
    assert out.stdout.strip() == ("INTERRUPTED ['report.html', 'report.json', 'repro.py', "
                                  "'timeline.svg']"), (out.stdout, out.stderr)
