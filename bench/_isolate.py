"""One measurement in a fresh subprocess, with a hard wall-clock limit.

Each (case, tool, variant) runs in its own ``python -m bench _one`` process,
so that

* jostle's worker pools (threads, the loop thread, process workers) start
  clean for every measurement, and a stuck worker abandoned by one
  measurement cannot slow the next;
* a case that hangs the tool itself cannot stall the benchmark: the child
  is killed at ``budget + GRACE_SECONDS``.

Before the child imports the case modules it runs the tool's set-up hook
(``_tools.prepare``: frontrun patches ``threading`` there).  The child runs
in a session of its own, and the whole process group is killed at the
limit, so process workers it started go too.  It reports
through a ``_measure.Progress`` file: if it is killed after it saw a failure
(during the shrink, say), the row still says detected, with the time of
that first failure, no counterexample, and the failure text marked as cut
short.  Killed before any failure: not detected, ``harness timeout``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from jostle import load_cases

from ._measure import FAILURE_CHARS, Measurement, Progress, Variant, short
from ._tools import TOOLS, prepare

__all__ = ["GRACE_SECONDS", "run_isolated", "run_one"]

#: Seconds a child may run past its budget (final replay of a failure,
#: pools closing) before it is killed.
GRACE_SECONDS = 30.0
#: Seconds the child may spend exiting once its result is written.
_EXIT_SECONDS = 5.0
_REPO = Path(__file__).resolve().parent.parent


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal the process group; False when it is already empty."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a reused id that is not ours: leave it alone
        return False
    return True


def _sweep(pgid: int) -> None:
    """Let leftovers of a finished child exit (resource trackers clean up on
    exit), then kill whatever is left of its group."""
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and _kill_group(pgid, 0):
        time.sleep(0.05)
    _kill_group(pgid)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _cut_short(first: dict[str, Any], why: str) -> Measurement:
    text = f"{first.get('failure') or 'failure'} ({why})"
    return Measurement(
        detected=True,
        seconds_to_first=float(first["seconds_to_first"]),
        executions=int(first.get("executions") or 0),
        failure=short(text, FAILURE_CHARS),
        shrunk=None,
    )


def run_isolated(folder: str, case_id: str, tool: str, variant: Variant, *, budget: float,
                 seed: int) -> Measurement:
    """Measure one (case, tool, variant) in a child process.

    Args:
        folder: the case package the case was loaded from.
        case_id: the case's id in that folder.
        tool: a name in ``_tools.TOOLS``.
        variant: ``buggy`` or ``fixed``.
        budget: seconds for the tool.
        seed: the ``--seed`` value.

    Returns:
        The child's measurement, or one saying why there is none.
    """
    with tempfile.TemporaryDirectory(prefix="jostle-bench-") as tmp:
        out, log = Path(tmp) / "progress.jsonl", Path(tmp) / "child.log"
        cmd = [sys.executable, "-m", "bench", "_one", "--case-dir", os.path.abspath(folder),
               "--case", case_id, "--tool", tool, "--variant", variant,
               "--budget", repr(budget), "--seed", str(seed), "--out", str(out)]
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(cmd, cwd=_REPO, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            timed_out = False
            try:
                proc.wait(timeout=budget + GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()
            _sweep(proc.pid)
        first, done = Progress.read(out)
        if done is not None:
            return Measurement.from_json(done)
        if timed_out:
            if first is not None:
                return _cut_short(first, "cut short by harness timeout")
            return Measurement(detected=False, seconds_to_first=None, executions=0,
                               failure="harness timeout", shrunk=None)
        print(f"bench: {case_id} / {tool} / {variant}: the child exited with "
              f"{proc.returncode} and no result; its output ended with:\n{_tail(log)}",
              file=sys.stderr)
        if first is not None:
            return _cut_short(first, f"harness error: exit {proc.returncode}")
        return Measurement(detected=False, seconds_to_first=None, executions=0,
                           failure=f"harness error: exit {proc.returncode}", shrunk=None)


def run_one(folder: str, case_id: str, tool: str, variant: Variant, *, budget: float,
            seed: int, out: str) -> int:
    """The child's side: measure, write the result to ``out``, exit.

    An exception from the tool becomes a row with ``harness error: ...``
    (traceback on stderr), not a detection: it says nothing about the case.

    Returns:
        The exit status (0 once a result is written).
    """
    prepare(tool)  # before the case modules are imported
    (case,) = [c for c in load_cases(folder) if c.id == case_id]
    progress = Progress(out)
    try:
        measurement = TOOLS[tool](case, variant, budget=budget, seed=seed, progress=progress)
    except Exception as exc:  # any failure of the tool is reported, not raised
        traceback.print_exc()
        seen = progress.first_seen
        why = f"harness error: {type(exc).__name__}: {exc}"
        measurement = (_cut_short(seen, why) if seen is not None else Measurement(
            detected=False, seconds_to_first=None, executions=0, failure=short(why),
            shrunk=None))
    progress.done(measurement)
    # Exiting waits for worker threads and pools; abandoned (hung) ones may
    # never finish, and the result is already written.
    killer = threading.Timer(_EXIT_SECONDS, os._exit, args=(0,))
    killer.daemon = True
    killer.start()
    return 0
