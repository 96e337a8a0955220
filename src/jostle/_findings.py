"""Failure folders: every distinct failure gets ``.jostle/failures/<id>/``.

A folder holds ``report.json`` (everything about the failure, for tools),
``repro.py`` (a standalone script that fails the same way), ``timeline.svg``
and ``report.html`` (the picture).  It is written the moment a failure is
found, before Hypothesis starts shrinking it, and rewritten as it shrinks:
a run killed at any point (Ctrl-C, pytest-timeout's ``os._exit``, the
machine going away) leaves the latest version on disk.

* **Atomic writes**: each file is written to a temporary file in the same
  folder, fsynced, and moved over the old one with ``os.replace``; a reader
  sees the old file or the new one, never half of either.
* **One folder per bug**: the id is a stable hash of the test's id and the
  failure's origin (the finding's kind and the user's ``file:line`` where it
  shows, as Hypothesis tells failures apart).  A bug found again, on another
  night or by another pytest-xdist worker, updates the same folder.
* **One writer at a time**: read-merge-write happens under an exclusive
  ``flock`` on the folder's ``.lock``, so two workers finishing the same bug
  at once do not clobber each other; the smaller scenario wins.

Paths in a report are kept relative to the project root where they can be,
so a folder copied from a CI machine still replays in a developer's clone.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._errors import ConcurrencyFailure

__all__ = ["FailureStore", "TestRef", "failure_id", "failure_origin", "size_key"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: folders are still written atomically
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class TestRef:
    """Where a jostle test lives, so a repro can import it again.

    Attributes:
        test_id: the test's id (pytest node id without a ``--count``
            repetition, or ``path::name`` for ``jostle fuzz``).
        module: the module's import name.
        file: the module's file.
        attr: the test's attribute name in the module.
        root: the project root (pytest's rootdir, or the current folder).
        sys_path: ``sys.path`` entries the module needs (those inside the
            root: conftest-added fixture folders, the test's own folder).
        options: the ``concurrent_test`` options the run used.
    """

    __test__ = False  # not a pytest test class, despite the name

    test_id: str
    module: str
    file: str
    attr: str
    root: str
    sys_path: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


def _relative(path: str, root: str) -> str:
    path = os.path.abspath(path)
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive
        return os.path.basename(path)
    return os.path.basename(path) if rel.startswith("..") else rel.replace(os.sep, "/")


def _inside(path: str, root: str) -> str:
    """``path`` relative to ``root`` (``/``-separated) if inside it, else absolute."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    if path == root:
        return "."
    if path.startswith(root + os.sep):
        return os.path.relpath(path, root).replace(os.sep, "/")
    return path


def failure_origin(failure: BaseException, root: str | None = None) -> tuple[str, str]:
    """``(kind, file:line)`` of a failure's first finding.

    The line is the innermost frame outside jostle of the finding's cause
    (the user's raising line, the line a stuck worker was blocked on); a
    linearizability failure has none, so every such failure of one test is
    one bug, as Hypothesis counts them.
    """
    verdict = getattr(failure, "verdict", None)
    if verdict is None or not verdict.findings:
        return type(failure).__name__, ""
    first = verdict.findings[0]
    cause = first.cause
    where = ""
    if cause is not None and cause.__traceback__ is not None:
        frames = [f for f in traceback.extract_tb(cause.__traceback__)
                  if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
        if frames:
            last = frames[-1]
            where = f"{_relative(last.filename, root or os.getcwd())}:{last.lineno}"
    return first.kind, where


def failure_id(test_id: str, failure: BaseException, root: str | None = None) -> str:
    """The stable id of a failure of ``test_id``: 12 hex digits."""
    kind, where = failure_origin(failure, root)
    return hashlib.sha256(f"{test_id}\0{kind}\0{where}".encode()).hexdigest()[:12]


def size_key(record: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Smaller is a better repro: operations, workers, preemptions, code length."""
    scenario = record.get("scenario") or {}
    workers = scenario.get("workers", [])
    ops = (len(scenario.get("prefix", [])) + len(scenario.get("suffix", []))
           + sum(len(w.get("steps", [])) for w in workers))
    return (ops, len(workers), int(record.get("preemptions") or 0),
            len(scenario.get("code", "")))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a folder is written, then deliver them:
    an interrupt never leaves a folder with some of its files."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals in Python
        return
    held: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous: dict[int, Any] = {
        sig: signal.signal(sig, lambda signum, _frame: held.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(held):
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _versions() -> dict[str, str]:
    import hypothesis

    from . import __version__

    return {"jostle": __version__, "hypothesis": hypothesis.__version__,
            "python": platform.python_version(),
            "implementation": sys.implementation.name, "platform": platform.platform()}


def _history(failure: ConcurrencyFailure) -> list[dict[str, Any]]:
    from ._history import Raised, Returned

    ops = []
    for r in failure.verdict.execution.history.ops:  # type: ignore[attr-defined]
        out = r.outcome
        if isinstance(out, Returned):
            outcome = {"type": "returned", "value": repr(out.value)}
        elif isinstance(out, Raised):
            outcome = {"type": "raised", "exception": out.type_name,
                       "message": str(out.exception)}
        else:
            outcome = {"type": "unknown", "reason": out.reason}
        ops.append({"index": r.index, "worker": r.worker, "kind": r.kind, "phase": r.phase,
                    "op": r.op, "args": [repr(a) for a in r.args], "call": r.call_repr(),
                    "invoke_ns": r.invoke, "response_ns": r.response, "outcome": outcome,
                    "text": r.outcome_repr()})
    return ops


def _scenario(failure: ConcurrencyFailure) -> dict[str, Any]:
    import base64
    import pickle

    import jostle

    sc = failure.verdict.execution.scenario  # type: ignore[attr-defined]

    def steps(ss: Any) -> list[dict[str, Any]]:
        return [{"op": s.op, "args": [repr(a) for a in s.args]} for s in ss]

    code = sc.to_code()
    try:
        exact = eval(code, {"jostle": jostle}) == sc
    except Exception:
        exact = False
    out: dict[str, Any] = {
        "prefix": steps(sc.prefix), "suffix": steps(sc.suffix),
        "workers": [{"kind": w.kind, "steps": steps(w.steps)} for w in sc.workers],
        "code": code,
    }
    if not exact:
        with contextlib.suppress(Exception):
            out["pickle"] = base64.b64encode(pickle.dumps(sc)).decode()
    return out


def build_record(ref: TestRef, failure: ConcurrencyFailure, *, fid: str, status: str,
                 context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``report.json`` content for one failure (before merging)."""
    verdict = failure.verdict  # type: ignore[attr-defined]
    ex = verdict.execution
    schedule = getattr(failure, "schedule", None)
    kind, where = failure_origin(failure, ref.root)
    lin = verdict.linearizability
    exceptions = [{"summary": f.summary, "traceback": f.detail}
                  for f in verdict.findings if f.kind == "exception"]
    mode = "controlled" if ex.controlled else "stress"
    reproduced = getattr(failure, "reproduced", None)
    return {
        "id": fid,
        "test_id": ref.test_id,
        "status": status,
        "kind": kind,
        "origin": where,
        "failure": type(failure).__name__,
        "summary": [f"{f.kind}: {f.summary}" for f in verdict.findings],
        "resource": ex.resource_name,
        "mode": mode,
        "scheduler": ex.scheduler,
        "preemption_model": getattr(failure, "preemption_model", "gil") if ex.controlled
        else None,
        "preemptions": ex.preemptions,
        "scenario": _scenario(failure),
        "schedule": None if schedule is None else {
            "switches": [list(p) for p in schedule.switches],
            "picks": [list(p) for p in schedule.picks]},
        "history": _history(failure),
        "decisions": [{"step": d.step, "kind": d.kind, "source": d.source, "target": d.target,
                       "label": d.label, "default": d.default} for d in ex.decisions],
        "entities": list(ex.entities),
        "linearizability": None if lin is None else {
            "ok": lin.ok, "timed_out": lin.timed_out,
            "longest_prefix": list(lin.longest_prefix),
            "stuck": [{"index": m.index, "expected": m.expected} for m in lin.stuck]},
        "exceptions": exceptions,
        "findings": [{"kind": f.kind, "summary": f.summary, "detail": f.detail}
                     for f in verdict.findings],
        "message": str(failure),
        "notes": list(getattr(failure, "__notes__", [])),
        "reproduces": ("exact (controlled)" if ex.controlled else
                       None if reproduced is None else
                       {"failed": reproduced[0], "runs": reproduced[1]}),
        "versions": _versions(),
        "test": {"module": ref.module, "file": _inside(ref.file, ref.root),
                 "attr": ref.attr,
                 "sys_path": [_inside(p, ref.root) for p in ref.sys_path],
                 "options": {k: v for k, v in ref.options.items()
                             if isinstance(v, (str, int, float, bool, type(None)))}},
        **dict(context),
    }


class FailureStore:
    """The ``failures/`` folder of a jostle directory (``.jostle`` by default)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory)
        self.failures = self.root / "failures"

    def folder(self, fid: str) -> Path:
        """The folder of failure ``fid``."""
        return self.failures / fid

    def save(self, ref: TestRef, failure: ConcurrencyFailure, *, status: str,
             context: Mapping[str, Any], first_in_run: bool) -> tuple[str, Path, bool]:
        """Write or update the failure's folder; returns ``(id, folder, written)``.

        Args:
            ref: the test.
            failure: the failure (with ``verdict`` and, if controlled, ``schedule``).
            status: ``"shrinking"`` (found, Hypothesis still working) or ``"final"``.
            context: more fields for ``report.json`` (seed, profile, blob,
                executions before it was found, how it was found).
            first_in_run: this run had not seen the failure before (it
                counts as found once more).

        A stored scenario is replaced only by one at most as large (a
        re-found bug does not undo an earlier, smaller repro); the times it
        was seen are updated either way.
        """
        from ._repro import repro_script
        from ._timeline import report_html, timeline_svg

        fid = failure_id(ref.test_id, failure, ref.root)
        folder = self.folder(fid)
        record = build_record(ref, failure, fid=fid, status=status, context=context)
        with _signals_held(), _locked(folder):
            old: dict[str, Any] | None = None
            with contextlib.suppress(OSError, ValueError):
                old = json.loads((folder / "report.json").read_text(encoding="utf-8"))
            now = _now()
            record["first_seen"] = old.get("first_seen", now) if old else now
            record["last_seen"] = now
            times = int(old.get("times_found", 0)) if old else 0
            record["times_found"] = times + 1 if first_in_run or not old else times
            if old is not None:
                for key in ("executions_before_found", "found_by", "first_seed"):
                    if key in old:
                        record[key] = old[key]
                replace = size_key(record) < size_key(old) or (
                    size_key(record) == size_key(old)
                    and (status == "final" or old.get("status") != "final"))
                if not replace:
                    old.update(last_seen=now, times_found=record["times_found"])
                    if status == "final" and old.get("status") != "final":
                        old["status"] = "final"
                    record = old
            written = record is not old
            if written:
                svg = timeline_svg(failure.verdict.execution,  # type: ignore[attr-defined]
                                   failure.verdict.linearizability)  # type: ignore[attr-defined]
                _atomic_write(folder / "repro.py", repro_script(record, folder, ref.root))
                _atomic_write(folder / "timeline.svg", svg)
                _atomic_write(folder / "report.html", report_html(record, svg))
            _atomic_write(folder / "report.json", json.dumps(record, indent=2, default=repr))
            _fsync_dir(folder)
        return fid, folder, written

    def records(self) -> list[dict[str, Any]]:
        """Every stored ``report.json``, newest first."""
        out = []
        if self.failures.is_dir():
            for path in self.failures.glob("*/report.json"):
                with contextlib.suppress(OSError, ValueError):
                    out.append(json.loads(path.read_text(encoding="utf-8")))
        out.sort(key=lambda r: str(r.get("last_seen", "")), reverse=True)
        return out
