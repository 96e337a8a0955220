"""``python -m bench report``: run the whole benchmark and regenerate ``docs/benchmark.md``.

``tox -e bench`` runs this.  It measures, in order, each step a subprocess
of this package's own command line (so the page lists commands a reader can
rerun one by one), then draws the plots and writes the page:

1. ``findings``: every tool (jostle-controlled, jostle-stress, naive, and the
   peers when installed) on every case folder: ``../shared/bugzoo/cases``
   beside the checkout and ``bench/cases`` in it (or the case packages in
   ``bench/cases``), those that exist, or the ``--cases`` given.  One
   ``findings`` run per folder (two case packages with the same folder name
   cannot be imported into one process), merged into one ``findings.json``
   whose summary is recomputed over all rows.
2. ``throughput``, 3. ``checker``, 4. ``scaling``, at their defaults.

Everything lands in ``docs/benchmark/``: one JSON per step, ``meta.json``
(machine, versions, command, step times) and the SVG plots;
``docs/benchmark.md`` is rendered from those files only, so ``--render-only``
redraws the page from committed numbers without measuring anything.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._findings import summarize
from ._tools import KNOWN, unavailable

__all__ = ["DEFAULT_BUDGET", "default_case_dirs", "render", "run_report"]

#: Seconds per case, tool and variant when ``--budget`` is not given.
DEFAULT_BUDGET = 5.0
_REPO = Path(__file__).resolve().parent.parent
_PACKAGES = ("jostle", "hypothesis", "pytest", "pytest-xdist", "frontrun", "detangle",
             "matplotlib")


def default_case_dirs(repo: Path = _REPO) -> list[Path]:
    """The case folders measured by default, those that exist:
    ``../shared/bugzoo/cases``, then ``bench/cases`` if it is a case package,
    else each case package directly inside it (``bench/cases/sctbench``)."""
    found = []
    bugzoo = repo.parent / "shared" / "bugzoo" / "cases"
    if (bugzoo / "__init__.py").is_file():
        found.append(bugzoo)
    local = repo / "bench" / "cases"
    if (local / "__init__.py").is_file():
        found.append(local)
    elif local.is_dir():
        found.extend(sorted(d for d in local.iterdir()
                            if (d / "__init__.py").is_file() and not d.name.startswith("_")))
    return found


#: 1-minute load averages seen around each step: other work on the machine
#: shows up in every number, so the page says how busy it was.
_LOADS: list[float] = []


def _load() -> None:
    try:
        _LOADS.append(round(os.getloadavg()[0], 2))
    except OSError:  # not available on this platform
        pass


def _step(args: Sequence[str]) -> float:
    """Run ``python -m bench ARGS`` from the checkout; its wall seconds."""
    print(f"\n$ python -m bench {shlex.join(args)}", flush=True)
    _load()
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "bench", *args], cwd=_REPO, check=True)
    took = round(time.monotonic() - start, 1)
    _load()
    return took


def _findings(case_dirs: Sequence[Path], *, budget: float, seed: int, out: Path) -> float:
    tools = [arg for tool in KNOWN for arg in ("--tool", tool)]
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="jostle-bench-report-") as tmp:
        for n, folder in enumerate(case_dirs):
            part = Path(tmp) / f"findings-{n}.json"
            seconds += _step(["findings", "--cases", str(folder), *tools, "--budget",
                              f"{budget:g}", "--seed", str(seed), "--json", str(part)])
            rows.extend(json.loads(part.read_text(encoding="utf-8"))["rows"])
    measured = [t for t in KNOWN if unavailable(t) is None]
    document = {"rows": rows, "summary": summarize(rows, measured)}
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return seconds


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=_REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out + (" (with uncommitted changes)" if dirty.strip() else "")


def _meta(*, budget: float, seed: int, case_dirs: Sequence[Path], command: str,
          steps: dict[str, float], commit: str) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "budget": budget,
        "seed": seed,
        "case_dirs": [os.path.relpath(d, _REPO) for d in case_dirs],
        "machine": {"cpu": _cpu(), "cpus": os.cpu_count(), "os": platform.platform()},
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {p: _version(p) for p in _PACKAGES},
        "unavailable": {t: why for t in KNOWN if (why := unavailable(t)) is not None},
        "commit": commit,
        "steps": steps,
        "load_average": {"min": min(_LOADS, default=None), "max": max(_LOADS, default=None)},
    }


def run_report(*, budget: float = DEFAULT_BUDGET, seed: int = 0,
               case_dirs: Sequence[str | os.PathLike[str]] | None = None,
               docs: str | os.PathLike[str] = _REPO / "docs", render_only: bool = False,
               command: str = "python -m bench report") -> Path:
    """Measure every step (unless ``render_only``), then render the page.

    Args:
        budget: ``findings`` seconds per case, tool and variant.
        seed: ``findings`` base seed.
        case_dirs: case folders; default :func:`default_case_dirs`.
        docs: the folder of ``benchmark.md``; data goes to ``docs/benchmark/``.
        render_only: only redraw the page from the JSON already there.
        command: the command line to print on the page.

    Returns:
        The path of the page.
    """
    docs = Path(docs)
    data = docs / "benchmark"
    data.mkdir(parents=True, exist_ok=True)
    if not render_only:
        commit = _commit()  # before the run writes its own files into the tree
        dirs = [Path(d) for d in case_dirs] if case_dirs else default_case_dirs()
        if not dirs:
            raise SystemExit("python -m bench report: no case folders (give --cases DIR)")
        steps = {"findings": _findings(dirs, budget=budget, seed=seed,
                                       out=data / "findings.json")}
        for name in ("throughput", "checker", "scaling"):
            steps[name] = _step([name, "--json", str(data / f"{name}.json")])
        meta = _meta(budget=budget, seed=seed, case_dirs=dirs, command=command, steps=steps,
                     commit=commit)
        (data / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    page = docs / "benchmark.md"
    render(data, page)
    print(f"\nwrote {page} and {data}/", flush=True)
    return page


def render(data: Path, page: Path, *, draw: bool = True) -> list[Path]:
    """Draw the plots of the JSON files in ``data`` and write ``page``.

    Steps whose JSON is missing are left out of the page with a note; plots
    are left out when matplotlib is not installed, or ``draw`` is false.

    Returns:
        The plot files written.
    """
    from ._markdown import page_text

    loaded: dict[str, Any] = {}
    for name in ("meta", "findings", "throughput", "checker", "scaling"):
        path = data / f"{name}.json"
        if path.is_file():
            loaded[name] = json.loads(path.read_text(encoding="utf-8"))
    plots = _draw(loaded, data) if draw else {}
    page.write_text(page_text(loaded, {k: os.path.relpath(v, page.parent)
                                       for k, v in plots.items()}), encoding="utf-8")
    return list(plots.values())


def _draw(loaded: dict[str, Any], data: Path) -> dict[str, Path]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {}
    from . import _plots

    budget = float(loaded.get("meta", {}).get("budget", DEFAULT_BUDGET))
    drawn: dict[str, Path] = {}
    jobs: dict[str, tuple[str, Callable[[dict[str, Any], Path], None]]] = {
        "found": ("findings", _plots.found_plot),
        "time": ("findings", lambda d, p: _plots.time_to_first_plot(d, p, budget=budget)),
        "throughput": ("throughput", _plots.throughput_plot),
        "checker": ("checker", _plots.checker_plot),
        "scaling": ("scaling", _plots.scaling_plot),
    }
    for key, (source, draw) in jobs.items():
        if source in loaded:
            path = data / _plots.PLOTS[key]
            draw(loaded[source], path)
            drawn[key] = path
    return drawn
