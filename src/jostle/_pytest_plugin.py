"""jostle's pytest plugin (``pytest11`` entry point).

Tests made by :func:`jostle.concurrent_test` are plain functions and run
without the plugin; with it, each one runs the way a campaign does
(``_campaign.run_test``):

* **Settings** (``_settings``): ``--jostle-*`` flags, ``jostle_*`` ini keys
  and ``JOSTLE_*`` variables, and a ``@pytest.mark.jostle(...)`` marker per
  test; precedence ini < env < command line < marker.  The report header
  shows what is in effect and where each value came from.
* **Profiles and the database** (``_profiles``, ``_database``).
* **pytest-xdist**: every worker gets the controller's run id
  (``pytest_configure_node``), and each test, repetition and worker derives
  its own seed from it, so workers explore different schedules while
  sharing one example database.  A failure is reported once per run: the
  first worker to finish it claims ``.jostle/runs/<run>/reported/<id>`` with
  an exclusive create; any other test item ending in the same failure
  (another repetition, another worker) is skipped, naming the one that
  reported it.
* **pytest-repeat**: jostle's tests are functions, so ``--count`` repeats
  them; once one repetition of a test has failed, its later repetitions are
  skipped (stop at the first failure), and ``--jostle-budget`` repeats a
  test for a time.
* **pytest-timeout** stays a backstop: a jostle test stops starting examples
  well before the item's pytest-timeout deadline, and its watchdog fires
  within a quarter of it, so a hang is found, saved to the database and
  written to its folder by jostle instead of lost to the ``thread`` method's
  ``os._exit``.
* A terminal summary per jostle test: runs, executions, distinct
  interleavings, failures, mode and preemption model.
* ``--jostle-perf`` (``_pytest_profile``, an option group of its own):
  profile each jostle test's spec instead of testing it.

It imports little at start-up: the engine is imported when the first jostle
test runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import _pytest_profile
from ._errors import SpecError
from ._settings import SETTINGS, Resolved, from_environ, resolve

__all__: list[str] = []

_REPEAT_PARAM = "__pytest_repeat_step_number"
_OPTION_SETTINGS = tuple(s.name for s in SETTINGS if s.option)
_PER_TEST = tuple(s.name for s in SETTINGS if s.per_test)
_STATE: list[_State] = []


@dataclass
class _State:
    """The plugin's per-session state, on ``config._jostle``."""

    resolved: Resolved
    profile: str
    profile_source: str
    run_id: str
    worker: str
    root: Path
    directory: Path
    database: Any = None
    database_ready: bool = False
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.directory / "runs" / self.run_id


def pytest_addoption(parser: pytest.Parser) -> None:
    """One flag and one ini key per setting."""
    group = parser.getgroup("jostle", "jostle (concurrency tests)")
    for s in SETTINGS:
        group.addoption(s.flag, dest=f"jostle_{s.name}", default=None,
                        help=f"{s.help} [env {s.env}, ini {s.ini}]")
        parser.addini(s.ini, help=s.help, default=None)
    _pytest_profile.add_options(parser)


def _config_layers(config: pytest.Config) -> Resolved:
    ini_file = str(config.inipath) if config.inipath else "the ini file"
    ini = {}
    for s in SETTINGS:
        value = config.getini(s.ini)
        if value not in (None, "", []):
            ini[s.name] = value
    cli = {s.name: config.getoption(f"jostle_{s.name}") for s in SETTINGS}
    return resolve([
        (lambda s: f"ini {s.ini} in {ini_file}", ini),
        from_environ(),
        (lambda s: f"command line {s.flag}", cli),
    ])


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; read and check the settings."""
    config.addinivalue_line(
        "markers",
        "jostle(**settings): per-test jostle settings (mode, preemption_model, strategy, "
        "timeout, budget, seed, max_examples); also set on every test jostle generated, "
        "so -m jostle selects them",
    )
    _pytest_profile.check_options(config)
    try:
        resolved = _config_layers(config)
    except SpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    from ._profiles import choose

    profile = choose(resolved["profile"])
    source = resolved.sources["profile"]
    if resolved["profile"] is None:
        source = "automatic: CI is set" if profile == "ci" else "automatic: CI is not set"
    workerinput = getattr(config, "workerinput", None)
    run_id = (workerinput or {}).get("jostle_run_id") or uuid.uuid4().hex[:12]
    worker = (workerinput or {}).get("workerid", "main")
    root = Path(config.rootpath)
    directory = Path(resolved["dir"]) if resolved["dir"] else root / ".jostle"
    if not directory.is_absolute():
        directory = root / directory
    state = _State(resolved, profile, source, run_id, worker, root, directory)
    config._jostle = state  # type: ignore[attr-defined]
    _STATE[:] = [state]  # pytest_runtest_logreport gets no config


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand every worker the controller's run id."""
    state: _State = node.config._jostle
    node.workerinput["jostle_run_id"] = state.run_id


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The jostle version and the effective settings, with where each came from."""
    from importlib.metadata import PackageNotFoundError, version

    state: _State = config._jostle  # type: ignore[attr-defined]
    try:
        head = f"jostle: {version('jostle')}"
    except PackageNotFoundError:  # running from a source tree
        head = "jostle: (source tree)"
    from ._database import describe

    r = state.resolved
    seed = (f"{r['seed']} ({r.sources['seed']})" if r["seed"] is not None
            else f"from run id {state.run_id}")
    budget = "one round per test" if r["budget"] is None else f"{r['budget']:g} s per test"
    lines = [
        f"{head}, profile {state.profile} ({state.profile_source}), seed {seed}, {budget}",
        f"jostle database: {describe(r['database'], shared_writable=state.profile != 'default')}"
        f"; failures in {state.directory / 'failures'}",
    ]
    chosen = [n for n in (*_OPTION_SETTINGS, "max_examples") if r.sources[n] != "default"]
    if chosen:
        lines.append("jostle settings: " + r.describe(chosen))
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests jostle generated, and open the database if there are any."""
    found = False
    for item in items:
        fn = getattr(item, "obj", None)
        if getattr(fn, "_jostle_spec", None) is not None:
            item.add_marker("jostle")
            found = True
    if found:
        _database(config._jostle)  # type: ignore[attr-defined]


def _database(state: _State) -> Any:
    if not state.database_ready:
        from ._database import example_database
        from ._profiles import register

        r = state.resolved
        try:
            state.database = example_database(
                r["database"], shared_writable=state.profile != "default",
                where=r.sources["database"])
        except SpecError as exc:
            raise pytest.UsageError(str(exc)) from None
        register(state.database)
        state.database_ready = True
    return state.database


def _base_id(item: pytest.Item) -> tuple[str, int]:
    """The node id without pytest-repeat's part, and the repetition number."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or _REPEAT_PARAM not in callspec.params:
        return item.nodeid, 0
    step = int(callspec.params[_REPEAT_PARAM])
    nodeid = item.nodeid
    if len(callspec.params) == 1:
        return nodeid[: nodeid.rindex("[")], step
    return re.sub(r"-?\d+-\d+(?=\]$)", "", nodeid).replace("[]", ""), step


def _marker_settings(item: pytest.Item) -> dict[str, object]:
    out: dict[str, object] = {}
    for mark in item.iter_markers("jostle"):  # closest first
        if mark.args:
            raise SpecError(
                f"jostle: @pytest.mark.jostle{mark.args!r} on {item.nodeid} takes keyword "
                f"arguments only, e.g. @pytest.mark.jostle(mode='controlled')")
        for key, value in mark.kwargs.items():
            out.setdefault(key, value)
    return out


def _timeout_of(item: pytest.Item) -> float | None:
    """pytest-timeout's deadline for ``item``, in seconds, if one applies."""
    try:
        from pytest_timeout import _get_item_settings  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        t = _get_item_settings(item).timeout
    except Exception:  # its private helper changed: no backstop adjustment
        return None
    return float(t) if t and t > 0 else None


def _claim(path: Path, text: str) -> tuple[bool, str]:
    """Create ``path`` exclusively; ``(True, text)`` if we did, else what is in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            return False, path.read_text(encoding="utf-8")
        except OSError:
            return False, "another worker"
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True, text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a jostle test as a campaign does (or profile it, with --jostle-perf);
    leave every other test alone."""
    fn = pyfuncitem.obj
    if getattr(fn, "_jostle_spec", None) is None:
        return None
    if pyfuncitem.config.getoption("jostle_perf"):
        return _pytest_profile.profile_item(pyfuncitem)
    __tracebackhide__ = True
    state: _State = pyfuncitem.config._jostle  # type: ignore[attr-defined]
    base_id, step = _base_id(pyfuncitem)
    failed_flag = state.run_dir / "failed" / _digest(base_id)
    if step and failed_flag.exists():
        pyfuncitem.user_properties.append(("jostle", _row(base_id, fn, {}, None, skipped=True)))
        _skip(f"jostle: an earlier repetition of {base_id} failed in this run "
              f"({failed_flag.read_text(encoding='utf-8').strip()}); stopping its repeats")

    from ._campaign import TestWatch, run_test
    from ._findings import FailureStore, TestRef
    from ._profiles import hypothesis_settings
    from ._runner import _add_note

    r = state.resolved
    per_test = resolve([(lambda s: f"@pytest.mark.jostle({s.name}=...) on {pyfuncitem.nodeid}",
                         _marker_settings(pyfuncitem))], base=r, only=_PER_TEST)
    marker_set = {n for n in _PER_TEST if per_test.sources[n].startswith("@pytest.mark")}
    explicit: frozenset[str] = getattr(fn, "_jostle_explicit", frozenset())
    options = {k: v for k, v in fn._jostle_options.items() if k != "settings"}
    for name in _OPTION_SETTINGS:
        if per_test[name] is not None and (name in marker_set or name not in explicit):
            options[name] = per_test[name]
    limit = _timeout_of(pyfuncitem)
    deadline = None
    if limit is not None:
        # Stop early enough that the watchdog and the failure's report finish
        # before pytest-timeout ends the process.
        options["timeout"] = min(float(options["timeout"]), limit / 4)
        deadline = time.monotonic() + max(limit * 0.8 - options["timeout"], limit * 0.25)
    settings = hypothesis_settings(state.profile, database=_database(state),
                                   parent=fn._jostle_options.get("settings"),
                                   max_examples=per_test["max_examples"])
    module = pyfuncitem.module
    root = str(state.root)
    ref = TestRef(base_id, module.__name__, str(module.__file__), pyfuncitem.originalname,
                  root, tuple(p for p in _sys_path() if p.startswith(root)), options)
    watch = TestWatch(ref, FailureStore(state.directory),
                      context={"profile": state.profile, "run_id": state.run_id,
                               "worker": state.worker, "node_id": pyfuncitem.nodeid})
    seed_base = per_test["seed"] if per_test["seed"] is not None else state.run_id
    parts = (base_id, step) if per_test["seed"] is not None else (state.worker, base_id, step)
    outcome = run_test(fn, watch, options=options, settings=settings, seed_base=seed_base,
                       seed_parts=parts, budget=per_test["budget"], deadline=deadline,
                       grace=30.0 if per_test["budget"] else 0.0)
    ids = [f.id for f in outcome.final]
    pyfuncitem.user_properties.append(("jostle", _row(base_id, fn, options, outcome)))
    if outcome.error is None:
        return True
    _claim(failed_flag, pyfuncitem.nodeid)
    claimed = [fid for fid in ids if _claim(state.run_dir / "reported" / fid,
                                            f"{pyfuncitem.nodeid} on {state.worker}")[0]]
    if ids and not claimed:
        owner = (state.run_dir / "reported" / ids[0]).read_text(encoding="utf-8")
        _skip(f"jostle: same failure as already reported in this run by {owner} "
              f"(.jostle/failures/{ids[0]})")
    for found in outcome.final:
        _add_note(outcome.error,
                  f"jostle: failure {found.id} saved in {found.folder} (repro.py, report.html); "
                  f"rerun it with: jostle replay {found.id}")
    raise outcome.error


def _skip(reason: str) -> None:
    """Skip, reported at the test's own location (not the hook's)."""
    __tracebackhide__ = True
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # pytest moved the private flag: the hook's location then
        exc = pytest.skip.Exception(reason)
    raise exc


def _sys_path() -> list[str]:
    import sys

    return [os.path.abspath(p) for p in sys.path if p]


def _row(base_id: str, fn: Any, options: dict[str, Any], outcome: Any,
         *, skipped: bool = False) -> dict[str, Any]:
    mode = options.get("mode", fn._jostle_options.get("mode"))
    model = options.get("preemption_model", fn._jostle_options.get("preemption_model"))
    if outcome is None:
        return {"test": base_id, "mode": mode, "model": model, "executions": 0,
                "interleavings": 0, "failures": [], "skipped": skipped}
    w = outcome.watch
    return {"test": base_id, "mode": mode, "model": model if mode == "controlled" else "-",
            "executions": w.executions, "interleavings": len(w.interleavings),
            "failures": sorted(w.found), "skipped": skipped, "rounds": outcome.rounds}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect each jostle test's numbers (from xdist workers too)."""
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "jostle" and isinstance(value, dict):
            rows = _STATE[0].rows if _STATE else None
            if rows is None:
                continue
            row = rows.setdefault(value["test"], {
                "test": value["test"], "mode": value["mode"], "model": value["model"],
                "runs": 0, "executions": 0, "interleavings": 0, "failures": set()})
            row["runs"] += 0 if value.get("skipped") else 1
            row["executions"] += value["executions"]
            row["interleavings"] += value["interleavings"]
            row["failures"].update(value["failures"])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line per jostle test: runs, executions, interleavings, failures, mode."""
    _pytest_profile.summary(terminalreporter, config)
    state: _State = config._jostle  # type: ignore[attr-defined]
    if not state.rows:
        return
    tr = terminalreporter
    tr.write_sep("-", "jostle")
    width = max(len(t) for t in state.rows)
    tr.write_line(f"{'test':<{width}}  {'runs':>4}  {'mode':<10}  {'model':<6}  "
                  f"{'executions':>10}  {'interleavings':>13}  failures")
    for test, row in sorted(state.rows.items()):
        failures = ", ".join(sorted(row["failures"])) or "0"
        tr.write_line(f"{test:<{width}}  {row['runs']:>4}  {row['mode']:<10}  "
                      f"{row['model']:<6}  {row['executions']:>10}  "
                      f"{row['interleavings']:>13}  {failures}")
    tr.write_line("(interleavings: distinct per run, summed over repetitions; failures: ids "
                  f"of folders in {state.directory / 'failures'})")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller removes the run's shared state (claims, failed flags)."""
    state: _State | None = getattr(config, "_jostle", None)
    if state is None or state.worker != "main":
        return
    _STATE.clear()
    shutil.rmtree(state.run_dir, ignore_errors=True)
    runs = state.run_dir.parent
    if runs.is_dir() and not any(runs.iterdir()):
        runs.rmdir()
