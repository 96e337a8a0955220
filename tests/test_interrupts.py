"""Ctrl-C is an interrupt, never a finding: it stops a run wherever it lands,
and a failure folder being written when it lands is finished first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
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


# --- a campaign interrupted at seeded moments ------------------------------------------

PROCESS_TEST = '''

class Tally:
    """Process workers append to a file: its own lock, no bug."""

    def __init__(self):
        import tempfile
        fd, self.path = tempfile.mkstemp(prefix="jostle-interrupt-")
        os.close(fd)

    def __jostle_handle__(self):
        return jostle.FileHandle(self.path)


def touch(f):
    return 0


class TallyModel:
    def touch(self):
        return 0


test_processes = jostle.concurrent_test(
    jostle.spec(Tally, jostle.operation(touch, kinds=("process",)), model=TallyModel,
                teardown=lambda t: os.unlink(t.path)),
    max_workers=2, max_ops=1, max_prefix=0, max_suffix=0)
'''


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries ``tag`` (the campaign's)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if tag.encode() in env and state != b"Z":
            out.append(int(entry))
    return out


def _interrupt_at(tmp: Path, sig: int, moment: float, tag: str) -> tuple[int, str]:
    """Start a campaign, signal it ``moment`` seconds in, and wait for it."""
    from _campaign_support import BUGGY, env_for, jostle_command, write_campaign

    write_campaign(tmp, "import os\n" + BUGGY + PROCESS_TEST)
    proc = subprocess.Popen(jostle_command("fuzz", "campaign_counter.py", "--budget", "1h",
                                           "--jobs", "1", "--progress", "plain"),
                            cwd=tmp, env=env_for(tmp, JOSTLE_INTERRUPT_TAG=tag),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.communicate(timeout=moment)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def _check(tmp: Path, code: int, out: str, tag: str) -> list[str]:
    """What is wrong after the interrupt (nothing, if it was survived)."""
    wrong = []
    began = (tmp / ".jostle" / "campaigns").is_dir()
    # A signal that lands while Python is still importing jostle ends the
    # process the way it ends any program: nothing of jostle's exists yet.
    if code != 130 and (began or code not in (-signal.SIGINT, -signal.SIGTERM, 1)):
        wrong.append(f"exit status {code}")
    found = [line.split("FOUND ", 1)[1].split()[0] for line in out.splitlines()
             if "FOUND " in line]
    failures = tmp / ".jostle" / "failures"
    for folder in failures.iterdir() if failures.is_dir() else ():
        names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        if names != {"report.html", "report.json", "repro.py", "timeline.svg"}:
            wrong.append(f"folder {folder.name} holds {sorted(names)}")
    campaigns = list((tmp / ".jostle" / "campaigns").glob("*/campaign.json"))
    if not campaigns:
        if began:
            wrong.append("no campaign report")
    else:
        import json

        report = json.loads(campaigns[0].read_text())
        for f in report["findings"]:
            if not (Path(f["folder"]) / "report.json").is_file():
                wrong.append(f"finding {f['id']} not on disk")
    if found and not (failures.is_dir() and any(failures.iterdir())):
        wrong.append("a finding was announced but no folder written")
    left = _tagged(tag)
    for _ in range(50):  # orphans notice their parent is gone within a poll
        if not left:
            break
        time.sleep(0.02)
        left = _tagged(tag)
    if left:
        wrong.append(f"processes left behind: {left}")
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return wrong


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_campaign_interrupted_at_seeded_moments_loses_nothing_and_leaves_nothing(
        tmp_path: Path, sig: int) -> None:
    """Ctrl-C or SIGTERM at seeded moments of a campaign (starting, finding,
    shrinking, writing, running process workers): it exits 130, every
    finding is on disk in a whole folder, the campaign report is written,
    and none of its processes remains.  JOSTLE_INTERRUPTS=20 (tox -e fuzz)
    runs 20 moments; the suite runs 2."""
    import random
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    n = int(os.environ.get("JOSTLE_INTERRUPTS", "2"))
    rng = random.Random(f"interrupts-{int(sig)}")
    moments = [round(rng.uniform(0.3, 4.0), 2) for _ in range(n)]

    def one(i: int) -> tuple[float, list[str]]:
        tag = uuid.uuid4().hex
        tmp = tmp_path / f"run{i}"
        code, out = _interrupt_at(tmp, sig, moments[i], tag)
        return moments[i], _check(tmp, code, out, tag)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(n)))
    survived = sum(1 for _, wrong in results if not wrong)
    print(f"{signal.Signals(sig).name}: {survived}/{n} interruptions survived")
    assert survived == n, [r for r in results if r[1]]
