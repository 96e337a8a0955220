"""``jostle fuzz``: run campaigns on every core for a time budget.

The parent discovers the jostle tests under the paths, deals them out to one
worker process per core (``--jobs``), and shows live progress from the
events the workers send (``_progress``).  Each worker runs its tests in
time slices, round-robin, through ``_campaign.run_test`` (so every failure's
folder is written the moment it is found and updated as it shrinks), until
the budget is spent; a test that has found a failure gives its remaining
time to the others.  At the end of the budget, or on Ctrl-C (SIGINT) or
SIGTERM, the parent tells the workers to stop, waits for their last
numbers, and writes the campaign report (``.jostle/campaigns/<start>/``,
plus the index page of all findings).

Workers are ``python -m jostle._fuzz`` subprocesses, not multiprocessing
children: each imports the campaign modules itself (jostle's own process
workers start with forkserver and import operations by name), and a worker
that dies takes nothing else with it.  Events travel on a pipe of their own
as JSON lines; the worker's stdout and stderr (Hypothesis prints there) go
to a log file in the campaign folder, so the live display stays readable.

The ``fuzz`` profile is the default here: randomized, database on, its
parent Hypothesis's built-in ``default`` profile (never the automatic ``ci``
one, which would make an overnight run derandomized and database-less).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._campaign import Found, TestWatch

__all__ = ["discover", "run_campaign", "worker_main"]

_SLICE = 300.0  # seconds a test runs before the next gets its turn
_PROGRESS_EVERY = 0.5
_STOP_WAIT = 15.0  # seconds workers get to finish after a stop


def _python_files(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        if not os.path.isdir(path):
            raise SystemExit(f"jostle: no such file or folder: {path!r}")
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
            for f in sorted(files):
                if f.endswith(".py") and not f.startswith("_"):
                    yield os.path.join(root, f)


def _load(path: str) -> Any:
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # process workers import ops by module name
    name = os.path.splitext(os.path.basename(path))[0]
    loaded = sys.modules.get(name)
    if loaded is not None and os.path.abspath(getattr(loaded, "__file__", "") or "") == (
            os.path.abspath(path)):
        return loaded  # imported already by another campaign: one module object
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"jostle: cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def discover(paths: Sequence[str]) -> list[tuple[str, Any, str, Any]]:
    """``(test id, module, attribute, test)`` for every jostle test under ``paths``.

    Test ids are ``relative/path.py::name`` from the current folder, the
    same ids pytest gives the tests when run from there, so a bug found by
    either front end updates one failure folder.
    """
    found = []
    for path in _python_files(paths):
        module = _load(path)
        rel = os.path.relpath(os.path.abspath(path)).replace(os.sep, "/")
        for attr, value in sorted(vars(module).items()):
            if callable(value) and getattr(value, "_jostle_spec", None) is not None:
                found.append((f"{rel}::{attr}", module, attr, value))
    return found


def _stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------
# The parent


class _StopRequest:
    """A signal handler that only records the request: the parent then stops
    the workers and still writes the report (tox sends SIGINT, then SIGTERM)."""

    requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True


def run_campaign(*, paths: Sequence[str], resolved: Any, jobs: int | None,
                 fail_on_finding: bool, progress: str = "auto") -> int:
    """Run the campaign; returns the exit status (see ``jostle fuzz --help``)."""
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run_campaign(stop, paths=paths, resolved=resolved, jobs=jobs,
                             fail_on_finding=fail_on_finding, progress=progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_campaign(stop: _StopRequest, *, paths: Sequence[str], resolved: Any,
                  jobs: int | None, fail_on_finding: bool, progress: str) -> int:
    from ._database import describe, example_database
    from ._errors import SpecError
    from ._findings import FailureStore
    from ._index import write_index
    from ._profiles import choose
    from ._progress import make_display

    tests = discover(paths)
    if not tests:
        print(f"jostle: no jostle tests found under {', '.join(paths)}")
        return 2
    profile = resolved["profile"] or "fuzz"
    try:
        example_database(resolved["database"], shared_writable=profile != "default",
                         where=resolved.sources["database"])
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    budget = resolved["budget"] if resolved["budget"] is not None else 60.0
    directory = Path(resolved["dir"] or ".jostle").resolve()
    started = _stamp()
    campaign_dir = directory / "campaigns" / started
    campaign_dir.mkdir(parents=True, exist_ok=True)
    n = max(1, min(jobs or os.cpu_count() or 1, len(tests)))
    run_id = uuid.uuid4().hex[:12]
    ids = [t[0] for t in tests]
    shares = [ids[i::n] for i in range(n)]
    workers: list[_Worker] = []
    t0 = time.monotonic()
    try:
        print(f"jostle fuzz: {len(tests)} test(s) on {n} worker(s), {budget:g} s budget, "
              f"profile {choose(profile)}, database "
              f"{describe(resolved['database'], shared_writable=profile != 'default')}",
              flush=True)
        display = make_display(ids, budget=budget, mode=progress)
        for i, share in enumerate(shares):
            if not stop.requested:
                workers.append(_Worker.start(i, share, paths, resolved, profile, run_id, budget,
                                             directory, campaign_dir))
        with display:
            _pump(workers, display, stop=stop)
            if stop.requested:
                display.note("stopping: waiting for the workers' last numbers ...")
                for w in workers:
                    w.stop()
                _pump(workers, display, until=time.monotonic() + _STOP_WAIT)
    finally:
        for w in workers:
            w.kill()
    interrupted = stop.requested
    elapsed = time.monotonic() - t0
    report = _campaign_report(display, started=started, elapsed=elapsed, budget=budget,
                              interrupted=interrupted, profile=profile, run_id=run_id,
                              workers=workers, directory=directory)
    _write_json(campaign_dir / "campaign.json", report)
    write_index(FailureStore(directory))
    _print_summary(display, report, FailureStore(directory), campaign_dir)
    if interrupted:
        return 130
    if any(w.returncode not in (0, None) for w in workers) and not report["findings"]:
        return 2
    return 1 if report["findings"] and fail_on_finding else 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt




class _Worker:
    """One worker subprocess and its event pipe."""

    def __init__(self, index: int, proc: subprocess.Popen[bytes], events: Any,
                 log: Path) -> None:
        self.index, self.proc, self.events, self.log = index, proc, events, log
        self.buffer = b""
        self.done = False
        self.returncode: int | None = None

    @classmethod
    def start(cls, index: int, tests: list[str], paths: Sequence[str], resolved: Any,
              profile: str, run_id: str, budget: float, directory: Path,
              campaign_dir: Path) -> _Worker:
        read_fd, write_fd = os.pipe()
        job = {"index": index, "tests": tests, "paths": list(paths), "profile": profile,
               "values": dict(resolved.values), "sources": dict(resolved.sources),
               "run_id": run_id, "budget": budget, "dir": str(directory),
               "fd": write_fd}
        log = campaign_dir / f"worker-{index}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jostle._fuzz", json.dumps(job)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,))
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return cls(index, proc, os.fdopen(read_fd, "rb", buffering=0), log)

    def read(self) -> list[dict[str, Any]]:
        try:
            chunk = self.events.read(65536)
        except BlockingIOError:
            return []
        if chunk is None:
            return []
        if chunk == b"":
            self.done = True
            self.returncode = self.proc.wait()
            chunk = b"\n"
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                if line.strip():
                    out.append(json.loads(line))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
            self.proc.wait()
        if self.returncode is None:
            self.returncode = self.proc.returncode
        with contextlib.suppress(OSError):
            self.events.close()


def _pump(workers: list[_Worker], display: Any, *, until: float | None = None,
          stop: _StopRequest | None = None) -> None:
    import selectors

    sel = selectors.DefaultSelector()
    for w in workers:
        if not w.done:
            sel.register(w.events, selectors.EVENT_READ, w)
    while any(not w.done for w in workers):
        if stop is not None and stop.requested:
            break
        timeout = 0.25
        if until is not None:
            timeout = min(timeout, until - time.monotonic())
            if timeout <= 0:
                return
        for key, _mask in sel.select(timeout):
            w = key.data
            for event in w.read():
                display.event(event)
            if w.done:
                sel.unregister(w.events)
        display.refresh()
    sel.close()


def _campaign_report(display: Any, **info: Any) -> dict[str, Any]:
    workers = info.pop("workers")
    return {
        **info,
        "finished": _stamp(),
        "workers": [{"index": w.index, "returncode": w.returncode, "log": str(w.log)}
                    for w in workers],
        "tests": display.rows(),
        "findings": display.findings(),
    }


def _write_json(path: Path, data: Any) -> None:
    from ._findings import _atomic_write

    _atomic_write(path, json.dumps(data, indent=2, default=repr))


def _print_summary(display: Any, report: dict[str, Any], store: Any, campaign_dir: Path) -> None:
    print()
    for row in report["tests"]:
        status = f"FOUND {row['found']}" if row["found"] else row["state"]
        print(f"  {row['test']:<60} {row['executions']:>8} executions "
              f"{row['rate']:>7.0f}/s {row['interleavings']:>7} interleavings  "
              f"{row['elapsed']:6.1f} s  {status}")
    by_id = {r["id"]: r for r in store.records()}
    for f in report["findings"]:
        record = by_id.get(f["id"], {})
        print(f"\n=== {f['test']}: {f['failure']} ({f['folder']}) ===")
        print(record.get("message", "(report.json missing)"))
        print(f"\nrepro: python {Path(f['folder']) / 'repro.py'}   (or: jostle replay {f['id']})")
    tail = " (interrupted)" if report["interrupted"] else ""
    print(f"\njostle fuzz: {len(report['findings'])} finding(s) in {len(report['tests'])} "
          f"test(s){tail}; campaign report: {campaign_dir / 'campaign.json'}; "
          f"all findings: {store.root / 'index.html'}")


# ---------------------------------------------------------------------------
# A worker


class _Events:
    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "wb", buffering=0)

    def send(self, **event: Any) -> None:
        with contextlib.suppress(OSError):
            self.out.write((json.dumps(event, default=repr) + "\n").encode())


def worker_main(job: dict[str, Any]) -> int:
    """Run one worker's share of the campaign (``python -m jostle._fuzz JOB``)."""
    from ._campaign import run_test
    from ._database import example_database
    from ._findings import FailureStore, TestRef
    from ._profiles import hypothesis_settings
    from ._settings import SETTINGS, Resolved

    events = _Events(job["fd"])
    signal.signal(signal.SIGTERM, _raise_interrupt)
    resolved = Resolved(job["values"], job["sources"])
    profile = job["profile"]
    start = time.monotonic()
    deadline = start + float(job["budget"])
    database = example_database(resolved["database"], shared_writable=profile != "default",
                                where=resolved.sources["database"])
    settings = hypothesis_settings(profile, database=database,
                                   max_examples=resolved["max_examples"])
    tests = {t[0]: t for t in discover(job["paths"])}
    store = FailureStore(job["dir"])
    root = os.getcwd()
    watches: dict[str, _ProgressWatch] = {}
    active = [tid for tid in job["tests"] if tid in tests]
    seed_base = resolved["seed"] if resolved["seed"] is not None else job["run_id"]
    slices: dict[str, int] = {}
    try:
        while active and time.monotonic() < deadline:
            for tid in list(active):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                share = min(remaining / len(active), _SLICE)
                _, module, attr, test = tests[tid]
                options = {k: v for k, v in test._jostle_options.items() if k != "settings"}
                explicit: frozenset[str] = getattr(test, "_jostle_explicit", frozenset())
                for name in (s.name for s in SETTINGS if s.option):
                    if resolved[name] is not None and name not in explicit:
                        options[name] = resolved[name]
                watch = watches.get(tid)
                if watch is None:
                    ref = TestRef(tid, module.__name__, module.__file__, attr, root,
                                  tuple(os.path.abspath(p) for p in sys.path
                                        if p and os.path.abspath(p).startswith(root)),
                                  options)
                    watch = watches[tid] = _ProgressWatch(
                        ref, store, context={"profile": profile, "run_id": job["run_id"],
                                             "worker": f"fuzz-{job['index']}"},
                        events=events, mode=str(options["mode"]))
                    watch.on_found = watch.found_event
                watch.begin()
                events.send(type="state", test=tid, state="running")
                n = slices[tid] = slices.get(tid, 0) + 1
                test_settings = (hypothesis_settings(profile, database=database,
                                                     parent=test._jostle_options["settings"],
                                                     max_examples=resolved["max_examples"])
                                 if test._jostle_options.get("settings") else settings)
                try:
                    outcome = run_test(test, watch, options=options, settings=test_settings,
                                       seed_base=seed_base, seed_parts=(tid, n),
                                       budget=share, grace=min(30.0, share))
                finally:
                    watch.end()
                if outcome.error is not None:
                    active.remove(tid)
                    events.send(type="state", test=tid, state="found")
                else:
                    events.send(type="state", test=tid, state="waiting")
        for tid in active:
            events.send(type="state", test=tid, state="ok")
    except KeyboardInterrupt:
        for watch in watches.values():
            watch.end()
        events.send(type="stopped")
        return 0
    events.send(type="done")
    return 0


@dataclass
class _ProgressWatch(TestWatch):
    """A test's watch that also sends progress events, at most twice a second."""

    events: _Events | None = None
    mode: str = ""
    last_sent: float = 0.0
    began: float | None = None
    spent: float = 0.0

    def on_judged(self, verdict: Any) -> None:
        super().on_judged(verdict)
        self.progress()

    def begin(self) -> None:
        self.began = time.monotonic()

    def end(self) -> None:
        if self.began is not None:
            self.spent += time.monotonic() - self.began
            self.began = None
        self.progress(force=True)

    def progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.events is None or (not force and now - self.last_sent < _PROGRESS_EVERY):
            return
        self.last_sent = now
        spent = self.spent + (now - self.began if self.began is not None else 0.0)
        self.events.send(type="progress", test=self.ref.test_id, mode=self.mode,
                         executions=self.executions, interleavings=len(self.interleavings),
                         examples=self.examples, elapsed=spent, failures=sorted(self.found))

    def found_event(self, found: Found) -> None:
        if self.events is not None:
            self.events.send(type="found", test=self.ref.test_id, id=found.id,
                             failure=type(found.failure).__name__, folder=str(found.folder),
                             executions=self.executions)


if __name__ == "__main__":
    sys.exit(worker_main(json.loads(sys.argv[1])))
