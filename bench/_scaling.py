"""``python -m bench scaling``: campaign executions/s with pytest ``-n 0`` and ``-n auto``.

The fuzz campaigns in ``fuzz/`` are pytest tests (``jostle.concurrent_test``
functions).  Each measurement runs them the way a user runs a campaign under
pytest, in a fresh ``python -m pytest`` process:

    python -m pytest fuzz/<campaign files> -n MODE --count 1000 --repeat-scope session
        -p bench._scaling_plugin

``--count``/``--repeat-scope`` (pytest-repeat) repeat the whole campaign so
that it never runs out of tests, and the plugin (``_scaling_plugin``) stops
each process after the test running at the deadline, ``seconds`` after the
launch.  Canaries fail by design; the exit status is ignored.

Executions are counted honestly: every pytest process (the controller and
each xdist worker) writes its jostle engine's execution count at exit, and
the rate is their sum over the wall time of the whole pytest command,
startup, collection and xdist's worker start included, as a user waits for
them.  Each mode is measured ``repetitions`` times, alternating the modes so
that a slow spell of the machine hits both; the median rate is reported,
and the ratio of the medians.

JSON (``--json FILE``)::

    {"settings": {"seconds": ..., "repetitions": ..., "campaigns": [...], "cpus": ...},
     "modes": {"0": {"executions_per_s": ..., "runs": [...]}, "auto": {same}},
     "ratio": ...}

Each run is ``{"executions", "seconds", "executions_per_s", "workers", "tests"}``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._scaling_plugin import DEADLINE_VAR, DIR_VAR
from ._table import grid

__all__ = ["MODES", "campaign_files", "format_scaling", "run_scaling"]

#: The ``-n`` values compared.
MODES = ("0", "auto")
#: pytest-repeat ``--count``: more campaign rounds than any run gets through.
COUNT = 1000
#: Seconds a run may take past its deadline (the running test finishes) before
#: it is killed.
GRACE_SECONDS = 120.0
_REPO = Path(__file__).resolve().parent.parent


def campaign_files(folder: str | os.PathLike[str]) -> list[str]:
    """The Python files of a campaign folder that define tests (``test_*`` names)."""
    files = []
    for path in sorted(Path(folder).glob("*.py")):
        if path.name.startswith("_"):
            continue
        text = path.read_text(encoding="utf-8")
        if "\ntest_" in text or "\ndef test_" in text:
            files.append(str(path))
    return files


def _run(files: Sequence[str], mode: str, seconds: float) -> dict[str, Any]:
    """One campaign run with ``-n mode`` for about ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="jostle-bench-scaling-") as tmp:
        env = {**os.environ, DIR_VAR: tmp,
               "PYTHONPATH": os.pathsep.join(filter(None, (str(_REPO),
                                                            os.environ.get("PYTHONPATH"))))}
        cmd = [sys.executable, "-m", "pytest", *files, "-n", mode, "-p", "bench._scaling_plugin",
               "-p", "no:cacheprovider", "-q", "--count", str(COUNT), "--repeat-scope",
               "session"]
        start = time.perf_counter()
        env[DEADLINE_VAR] = repr(time.time() + seconds)
        with open(Path(tmp) / "pytest.log", "wb") as log:
            proc = subprocess.run(cmd, cwd=_REPO, env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  timeout=seconds + GRACE_SECONDS, check=False)
        took = time.perf_counter() - start
        reports = [json.loads(p.read_text(encoding="utf-8"))
                   for p in sorted(Path(tmp).glob("*.json"))]
        if not reports:
            tail = (Path(tmp) / "pytest.log").read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"bench scaling: pytest -n {mode} exited with "
                               f"{proc.returncode} and no report; its output ended with:\n"
                               + "\n".join(tail))
    executions = sum(int(r["executions"]) for r in reports)
    runners = [r for r in reports if r["process"] != "main"] or reports
    return {"executions": executions, "seconds": round(took, 3),
            "executions_per_s": round(executions / took, 1), "workers": len(runners),
            "tests": sum(int(r["tests"]) for r in runners)}


def run_scaling(*, seconds: float = 20.0, repetitions: int = 3,
                campaigns: str | os.PathLike[str] = _REPO / "fuzz",
                json_path: str | None = None) -> dict[str, Any]:
    """Measure both modes, print the table, and write the JSON if asked.

    Args:
        seconds: wall time of each run, launch to deadline.
        repetitions: runs per mode (the median is reported).
        campaigns: the campaign folder.
        json_path: where to write the JSON, or ``None``.

    Returns:
        The JSON object (see the module docstring).
    """
    files = campaign_files(campaigns)
    if not files:
        raise SystemExit(f"python -m bench scaling: no campaign files in {str(campaigns)!r}")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(repetitions):
        for mode in MODES:
            runs[mode].append(_run(files, mode, seconds))
            print(f"-n {mode}: {runs[mode][-1]}", file=sys.stderr, flush=True)
    modes = {mode: {"executions_per_s": round(statistics.median(
                        r["executions_per_s"] for r in runs[mode]), 1),
                    "runs": runs[mode]}
             for mode in MODES}
    base = modes["0"]["executions_per_s"]
    result: dict[str, Any] = {
        "settings": {"seconds": seconds, "repetitions": repetitions,
                     "campaigns": [os.path.relpath(f, _REPO) for f in files],
                     "cpus": os.cpu_count()},
        "modes": modes,
        "ratio": round(modes["auto"]["executions_per_s"] / base, 3) if base else None,
    }
    print(format_scaling(result))
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return result


def format_scaling(result: dict[str, Any]) -> str:
    """One line per mode, then the ratio."""
    lines = []
    for mode, data in result["modes"].items():
        workers = sorted({r["workers"] for r in data["runs"]})
        lines.append((f"-n {mode}", "/".join(map(str, workers)),
                      f"{data['executions_per_s']:,.0f}",
                      ", ".join(f"{r['executions_per_s']:,.0f}" for r in data["runs"])))
    ratio = result["ratio"]
    s = result["settings"]
    return (grid(("pytest", "workers", "executions/s (median)", "runs"), lines)
            + f"\n\n-n auto / -n 0: {'-' if ratio is None else f'{ratio:.2f}x'} "
              f"({s['repetitions']} run(s) of {s['seconds']:g} s per mode, {s['cpus']} CPU(s))")
