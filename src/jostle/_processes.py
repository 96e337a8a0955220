"""Persistent process workers: one child interpreter each, reused across jobs.

A process costs 40-50 ms to start with forkserver or spawn, and a warm round
trip about 100 µs (FIELD-NOTES, "Processes"; here a one-operation job took
160 µs and each further operation 25 µs), so jostle keeps a pool of
children alive for a whole test and sends each one *job* per execution, as
pytest-xdist keeps its nodes and ``ProcessPoolExecutor`` its workers.  Unlike
an executor, a job is not a call: it is a scenario worker's list of
operations, run against the handle the job carries (see ``_handles``), with
every operation reported the moment it starts and ends.  That is what lets
the controller say which operation a crashed worker was running (xdist's
"worker crashed while running test X") and stamp it ``Unknown``.

fork is not offered: forking a controller with live threads can deadlock
(and warns from 3.12 on), and a forked child would inherit the other
workers' pipe ends, which hides their EOF.

The protocol, over one duplex ``Pipe`` per worker (tuples, first item the
kind)::

    controller -> worker              worker -> controller
    ("job", id, sys_path|None, bytes) ("hello", pid)            once, at start
    ("go", budget) ("cancel",)        ("ready", id)             attached
    ("release", budget) ("kill",)     ("invoke", index, ns)     about to call
                                      ("record", OpRecord)      op finished
                                      ("point", index, label, skipped, records)
                                      ("error", id, stage, Raised)
                                      ("done", id, skipped, records)

``budget`` is how many points the worker may pass without reporting (the
controller's strategy promised not to switch there); ``skipped`` says how
many it passed since its last report, so the controller's step count stays
what it would have been with a report at every point.  ``records`` are the
records of a ``batch`` job since its last report (a ``batch`` job sends no
``invoke`` and no ``record`` events).

In stress mode (``wait_for_go``) the worker attaches, reports ``ready`` and
blocks until ``go``, so the engine can release processes, threads and tasks
at one moment.  In controlled mode (``pause_at_points``) the worker reports
a ``point`` at the start and end of each operation and at every
:func:`jostle.sync_point`, and waits for ``release`` (go on) or ``kill``
(exit at once with status 137, as a crash would).  The controller adds one
event of its own, ``("died", exitcode)``, when the pipe reaches EOF or the
process exits.

A hang is diagnosed with ``faulthandler``: each child registers SIGUSR1 to
dump every thread's stack into a per-worker file (as pytest's
``faulthandler_timeout`` does), which works even when the child's main thread
is blocked in C.
"""

from __future__ import annotations

import _thread
import multiprocessing
import os
import pickle
import selectors
import signal
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable
from types import TracebackType

from ._control import UNBOUNDED
from ._errors import JostleError, SpecError, SpecTypeError
from ._handles import PickledHandle, check_picklable
from ._history import OpRecord, Unknown, now

__all__ = [
    "END",
    "START",
    "ProcessJob",
    "ProcessPool",
    "ProcessWorker",
    "RemoteException",
]

from ._process_child import (
    _PROTOCOL,
    END,
    START,
    Event,
    ProcessJob,
    RemoteException,
    _child_main,
)

_allocate_lock = _thread.allocate_lock
_START_METHODS = ("forkserver", "spawn")


class ProcessWorker:
    """One persistent worker process, driven over a pipe.

    Usually obtained from :class:`ProcessPool`.  The constructor starts the
    process and returns at once; :meth:`wait_started` waits until it serves.

    Args:
        start_method: ``"forkserver"`` (default) or ``"spawn"``.
    """

    def __init__(self, *, start_method: str = "forkserver") -> None:
        ctx = (
            multiprocessing.get_context("spawn")
            if start_method == "spawn"
            else multiprocessing.get_context("forkserver")
        )
        # The child opens the stack-dump file by name and we unlink it once the
        # child has said hello; both keep it open, so nothing is left behind
        # even if this process is killed.
        self._dump_fd, self._dump_path = tempfile.mkstemp(prefix="jostle-stacks-", suffix=".txt")
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=_child_main,
            args=(child_conn, self._dump_path),
            name="jostle-process-worker",
            daemon=True,
        )
        self._process.start()
        child_conn.close()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._conn.fileno(), selectors.EVENT_READ)
        self._selector.register(self._process.sentinel, selectors.EVENT_READ)
        pid = self._process.pid
        assert pid is not None
        self._pid: int = pid
        self._started = False
        self._dead = False
        self._killed = False
        self._kill_lock = _allocate_lock()
        self._exitcode: int | None = None
        self._sent_path: list[str] | None = None
        self._job: ProcessJob | None = None
        self._over = True
        self._records: list[OpRecord] = []
        self._inflight: tuple[int, int] | None = None
        # When the worker last reported (a batch job's pending operations
        # were invoked after it).
        self._reported = 0

    def __repr__(self) -> str:
        state = "dead" if self._dead else "busy" if self.busy else "idle"
        return f"<ProcessWorker pid={self._pid} {state}>"

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._pid

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return not self._dead and self._process.is_alive()

    @property
    def busy(self) -> bool:
        """Whether a job was submitted and has not finished."""
        return self._job is not None and not self._over

    @property
    def exitcode(self) -> int | None:
        """The exit status once dead (negative: killed by that signal)."""
        return self._exitcode

    def wait_started(self, timeout: float = 60.0) -> None:
        """Wait until the process has started and serves jobs.

        Raises:
            JostleError: it exited while starting (its traceback is on
                stderr) or did not start within ``timeout`` seconds.
        """
        if self._started:
            return
        msg = self._read(timeout)
        if msg is None:
            raise JostleError(f"process worker pid {self._pid} did not start within {timeout} s")
        if msg[0] == "died":
            raise JostleError(
                f"process worker pid {self._pid} exited with status {msg[1]} while "
                "starting; its traceback, if any, is on stderr"
            )
        self._on_hello()

    def submit(self, job: ProcessJob) -> None:
        """Send ``job`` to the worker; it runs as soon as the worker reads it.

        The job is pickled once, here, so a value that cannot cross to
        another process is reported now, by name.  ``sys.path`` goes along
        whenever it changed since the last job (pytest adds test directories
        to it after the workers have started).

        Raises:
            SpecTypeError: an operation, its arguments or the resource cannot
                be pickled; the message names it and the fix.
            JostleError: the worker is dead, or still busy with a job.
        """
        if self._dead:
            raise JostleError(f"process worker pid {self._pid} is dead (status {self._exitcode})")
        if self.busy:
            raise JostleError(
                f"process worker pid {self._pid} is still running job {self._job.job_id}"  # type: ignore[union-attr]
            )
        data = _pickle_job(job)
        path = None if sys.path == self._sent_path else list(sys.path)
        try:
            self._conn.send(("job", job.job_id, path, data))
        except OSError as exc:
            self._mark_dead()
            raise JostleError(
                f"process worker pid {self._pid} died before job {job.job_id}"
            ) from exc
        if path is not None:
            self._sent_path = path
        self._job = job
        self._over = False
        self._records = []
        self._inflight = None
        self._reported = now()

    @property
    def gated(self) -> bool:
        """Whether the job it runs waits at a start gate (``wait_for_go``)."""
        return self._job is not None and self._job.wait_for_go

    def go(self, budget: int = 0) -> None:
        """Open the start gate of a job submitted with ``wait_for_go``; it may
        then pass ``budget`` points before it reports one."""
        self._send(("go", budget))

    def cancel(self) -> None:
        """Skip the operations of a job waiting at the start gate (it detaches
        and reports ``done`` with no records)."""
        self._send(("cancel",))

    def release(self, budget: int = 0) -> None:
        """Let a worker paused at a point run on to its next point (or done);
        it may pass ``budget`` points without reporting them.

        To run one worker at a time, wait for that next event
        (:meth:`next_event`) before releasing another worker.
        """
        self._send(("release", budget))

    def crash(self) -> None:
        """Make a worker paused at a point exit at once with status 137, as
        if it had crashed there."""
        self._send(("kill",))

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event from the worker, or ``None`` after ``timeout`` seconds.

        Events are tuples: ``("ready", job_id)``, ``("invoke", index, ns)``,
        ``("record", OpRecord)``, ``("point", index, label)``,
        ``("external", index, what)`` (about to wait for an OS file lock),
        ``("error", job_id, stage, Raised)``, ``("done", job_id)`` and
        ``("died", exitcode)``; ``died`` repeats once the worker is dead.
        ``timeout=None`` waits for ever.
        """
        while True:
            msg = self._read(timeout)
            if msg is None:
                return None
            kind = msg[0]
            if kind == "hello":
                self._on_hello()
                continue
            if kind in ("point", "external", "done") and len(msg) > (3 if kind == "done" else 4):
                self._records.extend(msg[3] if kind == "done" else msg[4])  # a batch job's
                self._reported = now()
            if kind == "invoke":
                self._inflight = (msg[1], msg[2])
            elif kind == "record":
                self._records.append(msg[1])
                self._inflight = None
            elif kind in ("done", "error"):
                self._over = True
            return msg

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the submitted job is attached and ready.

        Returns:
            ``True`` when ready; ``False`` on timeout or if the worker died
            (see :attr:`alive`).

        Raises:
            SpecError: the job could not be loaded or attached in the worker.
        """
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event(max(0.0, deadline - time.monotonic()))
            if ev is None or ev[0] == "died":
                return False
            if ev[0] == "error":
                raise self._error(ev)
            if ev[0] == "ready":
                return True

    def collect(self, timeout: float) -> list[OpRecord] | None:
        """Wait for the job to finish and return its records, in run order.

        Points met while collecting are released at once (the job runs to
        completion).  If the worker died, the records so far come back with
        an ``Unknown("worker died")`` record for the operation it was running
        (if any), and the worker is marked dead.

        Returns:
            The records, or ``None`` if the job did not finish within
            ``timeout`` seconds (it is still running: see :meth:`dump_stacks`).

        Raises:
            SpecError: the job could not be loaded, attached or detached in
                the worker; the message holds the worker's traceback.
        """
        deadline = time.monotonic() + timeout
        while not self._over:
            ev = self.next_event(max(0.0, deadline - time.monotonic()))
            if ev is None:
                return None
            if ev[0] == "error":
                raise self._error(ev)
            if ev[0] == "point":
                self.release(UNBOUNDED)  # run to the end
        self._job = None
        return list(self._records)

    def dump_stacks(self, timeout: float = 1.0) -> str:
        """Every thread's stack in the worker, as ``faulthandler`` prints them.

        For diagnosing a hang: the worker answers even when its main thread
        is blocked.  Returns ``""`` if the worker is dead or not yet started.
        """
        if self._dead or not self._started:
            return ""
        os.ftruncate(self._dump_fd, 0)  # the child appends (O_APPEND) from 0 again
        try:
            os.kill(self._pid, signal.SIGUSR1)
        except ProcessLookupError:
            return ""
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            size = os.fstat(self._dump_fd).st_size
            if (size and size == last) or time.monotonic() >= deadline:
                break
            last = size
            time.sleep(0.01)  # polling is fine here: this is the hang path
        return os.pread(self._dump_fd, size, 0).decode("utf-8", "replace")

    def kill(self) -> None:
        """Kill the process (SIGKILL), reap it and remove its files.  Idempotent,
        and safe from two threads at once (the pool's and a watchdog's)."""
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.join()
        self._dead = True
        self._over = True
        self._exitcode = self._process.exitcode
        self._selector.close()
        self._conn.close()
        self._process.close()
        os.close(self._dump_fd)
        if not self._started:
            try:
                os.unlink(self._dump_path)
            except FileNotFoundError:
                pass

    def _on_hello(self) -> None:
        if not self._started:
            self._started = True
            os.unlink(self._dump_path)

    def _send(self, msg: Event) -> None:
        try:
            self._conn.send(msg)
        except OSError:
            pass  # dead: the next event says so

    def _read(self, timeout: float | None) -> Event | None:
        if self._dead:
            return ("died", self._exitcode)
        conn = self._conn
        try:
            if not conn.poll(0):
                # One selector per worker, reused: building one per wait (as
                # multiprocessing.connection.wait does) doubles the cost of a
                # controlled-mode point.
                if not self._selector.select(timeout):
                    return None
                if not conn.poll(0):
                    return self._mark_dead()  # only the exit sentinel is ready
            msg: Event = conn.recv()
        except (EOFError, OSError):
            return self._mark_dead()
        return msg

    def _mark_dead(self) -> Event:
        if not self._dead:
            self._dead = True
            self._process.join(5.0)
            self._exitcode = self._process.exitcode
            job = self._job
            if job is not None and not self._over and job.batch:
                # Whatever it had not reported may or may not have happened.
                done = {r.index for r in self._records}
                self._records.extend(
                    OpRecord(index, job.worker, "process", job.phase, name, args,
                             self._reported, None, Unknown("worker died"))
                    for index, name, _fn, args in job.steps if index not in done)
            elif job is not None and not self._over and self._inflight is not None:
                index, invoke = self._inflight
                name, args = next((s[1], s[3]) for s in job.steps if s[0] == index)
                self._records.append(
                    OpRecord(
                        index,
                        job.worker,
                        "process",
                        job.phase,
                        name,
                        args,
                        invoke,
                        None,
                        Unknown("worker died"),
                    )
                )
            self._inflight = None
            self._over = True
        return ("died", self._exitcode)

    def _error(self, ev: Event) -> SpecError:
        _, job_id, stage, raised = ev
        self._job = None
        fix = {
            "load": (
                "operations, their arguments and the resource must be importable "
                "by a fresh interpreter: define them at module level of a module on "
                "sys.path (not in `python -c` or an interactive session)"
            ),
            "attach": "the handle's attach() (or the resource's __setstate__) must "
            "work in another process",
            "detach": "the handle's detach() must not raise",
        }[stage]
        return SpecError(
            f"process worker pid {self._pid} could not {stage} job {job_id}: "
            f"{raised.type_name}: {raised.exception}. Fix: {fix}. The worker's "
            f"traceback:\n{raised.traceback}"
        )


def _pickle_job(job: ProcessJob) -> bytes:
    try:
        return pickle.dumps(job, _PROTOCOL)
    except Exception as exc:
        for pos, (index, name, fn, args) in enumerate(job.steps):
            where = f"scenario worker {job.worker}, step {pos}, index {index}"
            check_picklable(fn, f"operation {name!r}", where)
            check_picklable(args, f"arguments of operation {name!r}", where)
        handle, where = job.handle, f"scenario worker {job.worker}"
        if isinstance(handle, PickledHandle):
            what = f"resource {type(handle.resource).__qualname__}"
            check_picklable(handle.resource, what, where)
        else:
            check_picklable(handle, f"resource handle {type(handle).__qualname__}", where)
        raise SpecTypeError(
            f"the job for scenario worker {job.worker} cannot be pickled: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class ProcessPool:
    """Persistent process workers, reused across jobs.

    Workers start only when :meth:`acquire` needs more than are idle; a
    worker that died or hung is :meth:`discard`-ed and replaced by the next
    ``acquire``.  :meth:`close` kills them all; it also runs at interpreter
    exit (via ``weakref.finalize``, an ``atexit`` hook) and when the pool is
    garbage collected.  Workers ignore SIGINT and exit when this process dies.

    Args:
        start_method: ``"forkserver"`` (default) or ``"spawn"``.

    Raises:
        SpecError: another start method was asked for.
    """

    def __init__(self, *, start_method: str | None = None) -> None:
        method = "forkserver" if start_method is None else start_method
        if method not in _START_METHODS or method not in multiprocessing.get_all_start_methods():
            raise SpecError(
                f"Expected 'forkserver' or 'spawn' but got start_method={start_method!r} "
                f"(type={type(start_method).__name__}) in ProcessPool(). Fix: use "
                "'forkserver' (the default) or 'spawn'; 'fork' is not offered because "
                "forking a process with live threads can deadlock."
            )
        self.start_method = method
        if method == "forkserver":
            _preload_in_forkserver()
        # Raw: the pool may be first made inside a controlled run's window.
        self._lock = _allocate_lock()
        self._workers: list[ProcessWorker] = []
        self._idle: list[ProcessWorker] = []
        self._closed = False
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def acquire(self, n: int) -> list[ProcessWorker]:
        """``n`` idle, live workers: idle ones first, new ones for the rest.

        Raises:
            JostleError: the pool is closed, or a new worker failed to start.
        """
        with self._lock:
            if self._closed:
                raise JostleError("the ProcessPool is closed")
            out: list[ProcessWorker] = []
            while self._idle and len(out) < n:
                worker = self._idle.pop(0)
                if worker.alive:
                    out.append(worker)
                else:
                    self._forget(worker)
            fresh = [ProcessWorker(start_method=self.start_method) for _ in range(n - len(out))]
            self._workers.extend(fresh)
        try:
            for worker in fresh:
                worker.wait_started()
        except BaseException:
            for worker in fresh:
                self.discard(worker)
            self.release(out)
            raise
        return out + fresh

    def release(self, workers: Iterable[ProcessWorker]) -> None:
        """Give workers back; a dead one, or one still running a job, is discarded."""
        for worker in workers:
            if worker.alive and not worker.busy:
                with self._lock:
                    if not self._closed and worker in self._workers:
                        self._idle.append(worker)
                        continue
            self.discard(worker)

    def discard(self, worker: ProcessWorker) -> None:
        """Kill ``worker`` and forget it; the next :meth:`acquire` replaces it."""
        worker.kill()
        with self._lock:
            self._forget(worker)

    def close(self) -> None:
        """Kill every worker.  Idempotent."""
        with self._lock:
            self._closed = True
            self._idle.clear()
        self._finalizer()

    def _forget(self, worker: ProcessWorker) -> None:
        worker.kill()
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)


def _preload_in_forkserver() -> None:
    """Have the forkserver import this module once, before it forks workers.

    Each worker then starts in a few milliseconds instead of importing jostle
    (and Hypothesis) itself: 4 workers took 1.0 s without, 25 ms with.  It
    only takes effect if the forkserver is not running yet.  The current list
    is read from a private attribute so a user's own preloads are kept.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    current = list(getattr(server, "_preload_modules", None) or ["__main__"])
    child = "jostle._process_child"
    if child not in current:
        forkserver.set_forkserver_preload([*current, child])


def _kill_all(workers: list[ProcessWorker]) -> None:
    for worker in list(workers):
        worker.kill()
    workers.clear()
