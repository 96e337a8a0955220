"""The process worker's side: the child loop and the records it sends.

This module is what runs inside each persistent process worker (the
forkserver preloads it, so a worker starts in milliseconds).  It receives a
job, attaches the handle, runs the operations, and streams an event for each
step of the protocol described in ``_processes`` (the controller's side).
Kept apart from the controller so each side reads on its own, and so the
child imports as little as possible.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any, NoReturn

from ._errors import SpecTypeError
from ._handles import untrack_shared_memory
from ._history import OpRecord, Outcome, Phase, Raised, Returned, now, outcome_of
from ._syncpoints import _set_hook

try:
    import fcntl as _fcntl
except ImportError:  # not POSIX
    _fcntl = None  # type: ignore[assignment]
_real_flock: Callable[..., Any]
_real_lockf: Callable[..., Any]
if _fcntl is not None:  # elsewhere patch_os_locks patches nothing
    _real_flock, _real_lockf = _fcntl.flock, _fcntl.lockf

__all__ = ["END", "START", "ProcessJob", "RemoteException"]

START = "jostle:start"
"""Label of the point a worker reports before each operation."""
END = "jostle:end"
"""Label of the point a worker reports after each operation."""

KILLED_AT_POINT = 137
_PROTOCOL = pickle.HIGHEST_PROTOCOL

Event = tuple[Any, ...]
Step = tuple[int, str, Callable[..., object], tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class ProcessJob:
    """One scenario worker's operations, to run in a process worker.

    Attributes:
        job_id: chosen by the engine; echoed in ``ready``/``done`` events.
        worker: the scenario worker id, which goes into ``OpRecord.worker``.
        phase: ``prefix``, ``parallel`` or ``suffix``.
        handle: from ``handle_for(resource)``; attached in the worker.
        steps: ``(index, name, fn, args)`` for each operation, run in order as
            ``fn(resource, *args)``; ``index`` and ``name`` go into the record.
        pause_at_points: controlled mode: report each point and wait.
        wait_for_go: stress mode: attach, report ready, wait for ``go``.
        line_points: with ``pause_at_points``, also pause before every line
            of the code under test (processes run truly in parallel, so any
            line boundary is a place another process can get in between).
        cpu: pin the worker to this CPU for the job (controlled runs pin
            every party to one CPU, so each handoff is a direct switch), or
            ``None`` to run on the CPUs it started with.
        batch: send no ``invoke`` events and keep the records until the
            next report (a point or ``done``), which carries them: a
            controlled run needs them only when the worker stops, and one
            message instead of two per operation is most of its cost.  If
            the worker dies, the operations it had not reported are taken as
            pending.
    """

    job_id: int
    worker: int
    phase: Phase
    handle: object
    steps: tuple[Step, ...]
    pause_at_points: bool = False
    wait_for_go: bool = True
    line_points: bool = False
    cpu: int | None = None
    batch: bool = False


class RemoteException(Exception):
    """Stands in for an exception a process worker could not pickle back.

    ``str()`` is the original message; ``__jostle_type_name__`` is the
    original class's qualified name (which ``Raised.type_name`` reports) and
    ``remote_traceback`` its formatted traceback.
    """

    def __init__(self, message: str, *, type_name: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.__jostle_type_name__ = type_name
        self.remote_traceback = remote_traceback


# -- the child ------------------------------------------------------------------


def _child_main(conn: Connection, dump_path: str) -> None:
    """Entry point of a worker process: serve jobs until the pipe closes."""
    # The controller owns Ctrl-C: it stops the run and kills the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    dump = open(dump_path, "a", encoding="utf-8")  # noqa: SIM115  # lives as long as the process
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True, chain=False)
    untrack_shared_memory()
    try:
        # The pool marks workers daemon so multiprocessing reaps them at exit;
        # operations may still start processes of their own.
        multiprocessing.current_process().daemon = False
    except AssertionError:
        pass
    _exit_with_parent()
    child = _Child(conn)
    child.send(("hello", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg[0] == "job":
            child.run_job(msg[1], msg[2], msg[3])
    _exit(0)


def _exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _exit_with_parent() -> None:
    """Exit when the controller dies, even while an operation is hung."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        wait([sentinel])
        _exit(0)

    threading.Thread(target=watch, name="jostle-parent-watch", daemon=True).start()


class _Child:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.index = -1
        self.thread = threading.get_ident()
        self.user_files: dict[str, bool] = {}
        self.batch = False
        self.cpus: set[int] | None = (os.sched_getaffinity(0)
                                      if hasattr(os, "sched_getaffinity") else None)
        self.pinned: int | None = None
        # Points this job may still pass without reporting (granted with
        # "go" and "release"), and points passed so since the last report.
        self.budget = 0
        self.skipped = 0
        # Records of a batch job not yet sent (they go with the next report).
        self.unsent: list[OpRecord] = []

    def pin(self, cpu: int | None) -> None:
        """Run on ``cpu`` only, or (``None``) on the CPUs the worker started with."""
        if cpu == self.pinned or self.cpus is None:
            return
        try:
            os.sched_setaffinity(0, {cpu} if cpu is not None else self.cpus)
        except OSError:
            return
        self.pinned = cpu

    def send(self, msg: Event) -> None:
        self.send_bytes(pickle.dumps(msg, _PROTOCOL))

    def send_bytes(self, data: bytes) -> None:
        try:
            self.conn.send_bytes(data)
        except OSError:
            _exit(0)  # the controller has gone

    def recv(self, *expected: str) -> Event:
        """The next message of an ``expected`` kind; ``kill`` exits at once.

        Other kinds are stale (say, a release sent after the point had
        already been released by ``collect``) and are skipped.
        """
        while True:
            try:
                msg: Event = self.conn.recv()
            except (EOFError, OSError):
                _exit(0)
            if msg[0] == "kill":
                _exit(KILLED_AT_POINT)
            if msg[0] in expected:
                return msg

    def run_job(self, job_id: int, path: list[str] | None, data: bytes) -> None:
        if path is not None:
            sys.path[:] = path
        try:
            job: ProcessJob = pickle.loads(data)
        except BaseException as exc:
            self.send_error(job_id, "load", exc)
            return
        try:
            resource = getattr(job.handle, "attach")()  # noqa: B009  # any object with attach()
        except BaseException as exc:
            self.send_error(job_id, "attach", exc)
            return
        self.pin(job.cpu)
        self.send(("ready", job_id))
        self.budget = self.skipped = 0
        self.unsent = []
        self.batch = job.batch
        go = self.recv("go", "cancel") if job.wait_for_go else ("go",)
        if go[0] == "go":
            self.budget = go[1] if len(go) > 1 else 0
            if job.pause_at_points:
                _set_hook(self.sync_point)
                self.patch_os_locks(True)
            try:
                for step in job.steps:
                    self.run_step(job, resource, *step)
            finally:
                if job.pause_at_points:
                    self.patch_os_locks(False)
                _set_hook(None)
                self.index = -1
        detach = getattr(job.handle, "detach", None)
        if detach is not None:
            try:
                detach(resource)
            except BaseException as exc:
                self.send_error(job_id, "detach", exc)
                return
        self.send_report(("done", job_id, self.skipped, self.take_unsent()))

    def run_step(
        self,
        job: ProcessJob,
        resource: object,
        index: int,
        name: str,
        fn: Callable[..., object],
        args: tuple[object, ...],
    ) -> None:
        self.index = index
        if job.pause_at_points:
            self.pause(START)
        invoke = now()
        if not job.batch:
            self.send(("invoke", index, invoke))
        outcome: Outcome
        tracer = self.line_tracer() if job.pause_at_points and job.line_points else None
        try:
            if tracer is not None:
                sys.settrace(tracer)
            try:
                value = fn(resource, *args)
            finally:
                if tracer is not None:
                    sys.settrace(None)
        except BaseException as exc:
            response = now()
            outcome = _raised(exc)
        else:
            response = now()
            outcome = outcome_of(value)
        rec = OpRecord(
            index, job.worker, "process", job.phase, name, args, invoke, response, outcome
        )
        if job.batch:
            self.unsent.append(rec)
        else:
            self.send_record(rec)
        if job.pause_at_points:
            self.pause(END)

    def send_record(self, rec: OpRecord) -> None:
        self.send(("record", self.sendable(rec)))

    @staticmethod
    def sendable(rec: OpRecord) -> OpRecord:
        """``rec``, or with a stand-in for an outcome that does not survive
        pickling (an exception whose ``__init__`` takes other arguments
        fails only when unpickled)."""
        try:
            pickle.loads(pickle.dumps(rec, _PROTOCOL))
        except Exception as exc:
            return replace(rec, outcome=_stand_in(rec, exc))
        return rec

    def take_unsent(self) -> list[OpRecord]:
        out, self.unsent = self.unsent, []
        return out

    def send_report(self, msg: Event) -> None:
        """A point or ``done`` carrying a batch job's records (its last item):
        checked once as a whole; only if that fails, record by record."""
        try:
            data = pickle.dumps(msg, _PROTOCOL)
            pickle.loads(data)
        except Exception:
            msg = (*msg[:-1], [self.sendable(r) for r in msg[-1]])
            data = pickle.dumps(msg, _PROTOCOL)
        self.send_bytes(data)

    def send_error(self, job_id: int, stage: str, exc: BaseException) -> None:
        raised = _raised(exc)
        try:
            data = pickle.dumps(("error", job_id, stage, raised), _PROTOCOL)
            pickle.loads(data)
        except Exception:
            raised = Raised(_remote(exc, raised.traceback), raised.traceback)
            data = pickle.dumps(("error", job_id, stage, raised), _PROTOCOL)
        self.send_bytes(data)

    def line_tracer(self) -> Callable[..., Any]:
        """A ``sys.settrace`` function pausing before each line of user code."""
        from ._tracing import is_user_file

        cache = self.user_files

        def local(frame: Any, event: str, arg: object) -> Any:
            if event == "line":
                self.pause(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}")
            return local

        def global_(frame: Any, event: str, arg: object) -> Any:
            filename = frame.f_code.co_filename
            user = cache.get(filename)
            if user is None:
                user = cache[filename] = is_user_file(filename)
            return local if user else None

        return global_

    def pause(self, label: str) -> None:
        if self.budget > 0:  # the controller promised not to stop us here
            self.budget -= 1
            self.skipped += 1
            return
        self.send_report(("point", self.index, label, self.skipped, self.take_unsent()))
        self.skipped = 0
        msg = self.recv("release")
        self.budget = msg[1] if len(msg) > 1 else 0

    def patch_os_locks(self, on: bool) -> None:
        """While a job pauses at points, ``fcntl.flock``/``lockf`` that would
        block say so first (an ``external`` report), so the controller lets
        the holder run at once instead of waiting out its grace period."""
        if _fcntl is None:
            return
        _fcntl.flock = self.flock if on else _real_flock
        _fcntl.lockf = self.lockf if on else _real_lockf

    def flock(self, fd: Any, operation: int) -> None:
        if operation & (_fcntl.LOCK_NB | _fcntl.LOCK_UN) or threading.get_ident() != self.thread:
            _real_flock(fd, operation)
            return
        self.os_lock_wait("flock", lambda: _real_flock(fd, operation | _fcntl.LOCK_NB),
                          lambda: _real_flock(fd, operation))

    def lockf(self, fd: Any, cmd: int, len: int = 0, start: int = 0, whence: int = 0) -> Any:
        if cmd & _fcntl.LOCK_NB or cmd == _fcntl.LOCK_UN or threading.get_ident() != self.thread:
            return _real_lockf(fd, cmd, len, start, whence)
        return self.os_lock_wait(
            "lockf", lambda: _real_lockf(fd, cmd | _fcntl.LOCK_NB, len, start, whence),
            lambda: _real_lockf(fd, cmd, len, start, whence))

    def os_lock_wait(self, what: str, try_once: Callable[[], object],
                     wait: Callable[[], object]) -> object:
        try:
            return try_once()
        except (BlockingIOError, PermissionError):
            pass
        # Taken: say so, wait for real outside the schedule, then rejoin it
        # at a point of its own (the budget does not stretch across a wait).
        self.send_report(("external", self.index, what, self.skipped, self.take_unsent()))
        self.skipped = self.budget = 0
        got = wait()
        self.pause(f"{what} acquired")
        return got

    def sync_point(self, label: str) -> None:
        # Threads an operation starts are not scheduled; only the op's own.
        if threading.get_ident() == self.thread:
            self.pause(label)


def _raised(exc: BaseException) -> Raised:
    """``exc`` with its traceback text (the worker's own frame dropped) and
    ``__jostle_origin__``, the innermost frame's (filename, lineno)."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        inner = tb
        while inner.tb_next is not None:
            inner = inner.tb_next
        try:
            exc.__jostle_origin__ = (inner.tb_frame.f_code.co_filename, inner.tb_lineno)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass  # an exception class with __slots__
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return Raised(exc, text)


def _remote(exc: BaseException, text: str) -> RemoteException:
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__qualname__}>"
    stand_in = RemoteException(message, type_name=type(exc).__qualname__, remote_traceback=text)
    origin = getattr(exc, "__jostle_origin__", None)
    if origin is not None:
        stand_in.__jostle_origin__ = origin  # type: ignore[attr-defined]
    return stand_in


def _stand_in(rec: OpRecord, exc: Exception) -> Raised:
    out = rec.outcome
    if isinstance(out, Raised):
        return Raised(_remote(out.exception, out.traceback), out.traceback)
    value = out.value if isinstance(out, Returned) else None
    return Raised(
        SpecTypeError(
            f"the return value of operation {rec.op!r} cannot be pickled back from "
            f"the process worker: got a {type(value).__qualname__}; pickling failed "
            f"with {type(exc).__name__}: {exc}. Fix: return plain data (numbers, "
            "strings, tuples, lists, dicts), converting the result inside the "
            "operation."
        )
    )


# -- the controller's side --------------------------------------------------------
