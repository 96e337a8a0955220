"""Persistent process workers: jobs, the start gate, failures, controlled mode."""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import select
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from jostle._errors import JostleError, SpecError, SpecTypeError
from jostle._handles import FileHandle, handle_for
from jostle._history import Raised, Returned, Unknown, now
from jostle._processes import END, START, ProcessJob, ProcessPool, ProcessWorker, RemoteException

import _proc_ops as ops

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    with ProcessPool() as p:
        p.release(p.acquire(2))  # start-up cost goes to set-up, not to a test
        yield p


@contextlib.contextmanager
def workers(pool: ProcessPool, n: int) -> Iterator[list[ProcessWorker]]:
    ws = pool.acquire(n)
    try:
        yield ws
    finally:
        pool.release(ws)


def job(handle, *steps, worker=1, **kw) -> ProcessJob:
    """A job running ``steps`` given as ``(fn, *args)``, indexed from 0."""
    kw.setdefault("wait_for_go", False)
    return ProcessJob(
        next(_ids),
        worker,
        "parallel",
        handle,
        tuple((i, fn.__name__, fn, tuple(args)) for i, (fn, *args) in enumerate(steps)),
        **kw,
    )


def run(w: ProcessWorker, handle, *steps, **kw):
    w.submit(job(handle, *steps, **kw))
    recs = w.collect(30)
    assert recs is not None
    return recs


def next_point(w: ProcessWorker):
    """Consume events up to the worker's next point (or done) and return it."""
    while True:
        ev = w.next_event(30)
        assert ev is not None
        assert ev[0] in ("ready", "invoke", "record", "point", "done"), ev
        if ev[0] in ("point", "done"):
            return ev


def drive(ws: list[ProcessWorker], schedule) -> None:
    """Release ``(worker, label)`` points in order, one worker running at a time.

    After each release the driver waits for that worker's next point, so no
    two workers are ever between points at once: the schedule alone decides.
    """
    paused = [next_point(w) for w in ws]
    for who, label in schedule:
        assert (paused[who][0], paused[who][2]) == ("point", label), (who, paused[who])
        ws[who].release()
        paused[who] = next_point(ws[who])
    assert all(ev[0] == "done" for ev in paused), paused


NONE = handle_for(None)


def test_job_runs_steps_and_records_them(pool):
    """A job's records carry kind, worker, phase, args and increasing times."""
    with workers(pool, 1) as [w]:
        recs = run(w, NONE, (ops.add_one, 1), (ops.add_one, 41), worker=3)
    assert [r.outcome for r in recs] == [Returned(2), Returned(42)]
    assert [(r.index, r.worker, r.kind, r.phase, r.op) for r in recs] == [
        (0, 3, "process", "parallel", "add_one"),
        (1, 3, "process", "parallel", "add_one"),
    ]
    assert recs[0].args == (1,)
    assert recs[0].invoke < recs[0].response < recs[1].invoke < recs[1].response


def test_pool_reuses_the_same_processes(pool):
    """Fifty jobs run in the same two processes, which the next acquire reuses."""
    with workers(pool, 2) as ws:
        pids = {w.pid for w in ws}
        seen = {run(ws[i % 2], NONE, (ops.pid,))[0].outcome.value for i in range(50)}
    assert len(pids) == 2
    assert seen == pids
    with workers(pool, 2) as ws:
        assert {w.pid for w in ws} == pids


def test_worker_waits_for_go(pool):
    """With wait_for_go, no operation starts before the controller says go."""
    with workers(pool, 2) as ws:
        for i, w in enumerate(ws):
            w.submit(job(NONE, (ops.clock,), (ops.clock,), worker=i + 1, wait_for_go=True))
        assert all(w.wait_ready(30) for w in ws)
        assert ws[0].next_event(0) is None
        gate = now()
        for w in ws:
            w.go()
        recs = [r for w in ws for r in w.collect(30)]
    assert len(recs) == 4
    assert all(gate < r.invoke <= r.outcome.value for r in recs)


def test_cancel_at_the_gate_runs_nothing(pool):
    """A job cancelled at the gate finishes with no records."""
    with workers(pool, 1) as [w]:
        w.submit(job(NONE, (ops.add_one, 1), wait_for_go=True))
        assert w.wait_ready(30)
        w.cancel()
        assert w.collect(30) == []
        assert run(w, NONE, (ops.add_one, 1))[0].outcome == Returned(2)


def test_exception_comes_back_with_traceback_and_origin(pool):
    """An op's exception arrives with its traceback text and raising line."""
    with workers(pool, 1) as [w]:
        [rec] = run(w, NONE, (ops.boom, "bad input"))
    assert isinstance(rec.outcome, Raised)
    exc = rec.outcome.exception
    assert isinstance(exc, ValueError)
    assert str(exc) == "bad input"
    assert "in boom" in rec.outcome.traceback
    assert "_processes.py" not in rec.outcome.traceback
    lines, first = inspect.getsourcelines(ops.boom)
    raise_line = first + next(i for i, text in enumerate(lines) if "raise" in text)
    assert exc.__jostle_origin__ == (ops.__file__, raise_line)


def test_unpicklable_exception_becomes_remote_exception(pool):
    """An exception that cannot be unpickled is replaced by a named stand-in."""
    with workers(pool, 1) as [w]:
        [rec] = run(w, NONE, (ops.raise_needs_two_args,))
    assert isinstance(rec.outcome, Raised)
    assert isinstance(rec.outcome.exception, RemoteException)
    assert rec.outcome.type_name == "NeedsTwoArgs"
    assert str(rec.outcome.exception) == "half"
    assert "raise_needs_two_args" in rec.outcome.exception.remote_traceback
    assert rec.outcome.exception.__jostle_origin__[0] == ops.__file__


def test_unpicklable_return_value_is_reported(pool):
    """A return value that cannot be pickled becomes a SpecTypeError outcome."""
    with workers(pool, 1) as [w]:
        [rec] = run(w, NONE, (ops.return_lock,))
    assert isinstance(rec.outcome, Raised)
    assert isinstance(rec.outcome.exception, SpecTypeError)
    assert "'return_lock'" in str(rec.outcome.exception)
    assert "Fix:" in str(rec.outcome.exception)


def test_lambda_operation_is_rejected_on_submit(pool):
    """A lambda op raises SpecTypeError naming it and the fix, at submit."""
    with workers(pool, 1) as [w]:
        with pytest.raises(SpecTypeError, match=r"operation '<lambda>'.*module level"):
            w.submit(job(NONE, (lambda r: 1,)))
        assert not w.busy
        assert run(w, NONE, (ops.add_one, 1))[0].outcome == Returned(2)


def test_unpicklable_resource_is_rejected_on_submit(pool):
    """A resource that does not pickle is named, with the adapters as the fix."""
    with workers(pool, 1) as [w]:
        with pytest.raises(SpecTypeError, match=r"resource LockedBox.*_thread.lock.*__jostle_h"):
            w.submit(job(handle_for(ops.LockedBox()), (ops.add_one, 1)))
        assert not w.busy


def test_attach_failure_raises_spec_error(pool):
    """A handle that fails to attach in the worker raises SpecError from collect."""
    with workers(pool, 1) as [w]:
        w.submit(job(ops.FailingHandle(), (ops.add_one, 1)))
        with pytest.raises(SpecError, match=r"could not attach.*cannot attach here"):
            w.collect(30)
        assert run(w, NONE, (ops.add_one, 1))[0].outcome == Returned(2)


def test_sys_path_added_after_start_reaches_the_worker(pool, tmp_path, monkeypatch):
    """A module on a sys.path entry added after the worker started imports there."""
    (tmp_path / "late_ops_for_jostle.py").write_text("def seven(r):\n    return 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import late_ops_for_jostle

    with workers(pool, 1) as [w]:
        [rec] = run(w, NONE, (late_ops_for_jostle.seven,))
    assert rec.outcome == Returned(7)


def test_worker_ignores_sigint(pool):
    """Workers ignore SIGINT: the controller owns Ctrl-C."""
    with workers(pool, 1) as [w]:
        assert run(w, NONE, (ops.sigint_ignored,))[0].outcome == Returned(True)


def test_worker_is_not_daemonic_inside(pool):
    """Inside a worker the daemon flag is off, so ops may start processes."""
    with workers(pool, 1) as [w]:
        assert run(w, NONE, (ops.is_daemon,))[0].outcome == Returned(False)


def test_stale_release_is_ignored(pool):
    """A release sent to a worker that is not paused does not disturb it."""
    with workers(pool, 1) as [w]:
        w.release()
        w.submit(job(NONE, (ops.add_one, 1), wait_for_go=True))
        assert w.wait_ready(30)
        w.release()
        w.go()
        assert w.collect(30)[0].outcome == Returned(2)


def test_worker_dying_mid_operation(pool):
    """An op that kills its process yields Unknown('worker died'); acquire replaces it."""
    with workers(pool, 1) as [w]:
        dead_pid = w.pid
        recs = run(w, NONE, (ops.add_one, 1), (ops.die,), (ops.add_one, 2))
        assert not w.alive
        assert w.exitcode == 1
    assert [r.op for r in recs] == ["add_one", "die"]
    assert recs[1].outcome == Unknown("worker died")
    assert recs[1].response is None
    assert recs[1].invoke > recs[0].response
    with workers(pool, 1) as [w]:
        assert w.pid != dead_pid
        assert run(w, NONE, (ops.add_one, 1))[0].outcome == Returned(2)


def test_hung_worker_dumps_stacks_and_is_discarded(pool):
    """A hung op times out, its stack names the op, and discard kills it."""
    w = pool.acquire(1)[0]
    try:
        w.submit(job(NONE, (ops.hang_forever,)))
        while (ev := w.next_event(30)) is not None and ev[0] != "invoke":
            pass
        assert w.collect(0.01) is None
        stacks = w.dump_stacks(timeout=5.0)
        assert "hang_forever" in stacks
    finally:
        pool.discard(w)
    assert not w.alive
    assert w.dump_stacks() == ""


def test_controlled_release_order_decides_the_result(pool, tmp_path):
    """Releasing points in a chosen order reproduces the same interleaving."""
    serial = [
        (0, START),
        (0, "file.read"),
        (0, "file.write"),
        (0, END),
        (1, START),
        (1, "file.read"),
        (1, "file.write"),
        (1, END),
    ]
    lost_update = [
        (0, START),
        (0, "file.read"),
        (1, START),
        (1, "file.read"),
        (1, "file.write"),
        (1, END),
        (0, "file.write"),
        (0, END),
    ]
    for schedule, final, first_invoker in [(serial, "AB", 1), (lost_update, "A", 1)] * 3:
        path = tmp_path / "shared.txt"
        path.write_text("")
        fh = FileHandle(path)
        with workers(pool, 2) as ws:
            for i, (w, tag) in enumerate(zip(ws, "AB", strict=True)):
                w.submit(job(fh, (ops.append_tag, tag), worker=i + 1, pause_at_points=True))
            drive(ws, schedule)
            recs = [w.collect(30)[0] for w in ws]
        assert path.read_text() == final
        assert min(recs, key=lambda r: r.invoke).worker == first_invoker
        if final == "A":  # both read "" before either wrote: a lost update
            assert [r.outcome for r in recs] == [Returned("A"), Returned("B")]
        else:
            assert [r.outcome for r in recs] == [Returned("A"), Returned("AB")]
            assert recs[0].response < recs[1].invoke


def test_user_sync_point_is_reported_with_its_label(pool):
    """sync_point('label') inside an op pauses the worker under its op index."""
    with workers(pool, 1) as [w]:
        w.submit(job(NONE, (ops.add_one, 0), (ops.labelled_point, "here"), pause_at_points=True))
        labels = []
        while (ev := next_point(w))[0] == "point":
            labels.append(ev[1:3])
            w.release()
        recs = w.collect(30)
    assert labels == [(0, START), (0, END), (1, START), (1, "here"), (1, END)]
    assert recs[1].outcome == Returned("here")


def test_kill_at_a_point_is_a_crash(pool, tmp_path):
    """crash() at a point mid-op gives a died event and an Unknown record."""
    path = tmp_path / "f.txt"
    path.write_text("")
    w = pool.acquire(1)[0]
    try:
        w.submit(job(FileHandle(path), (ops.append_tag, "A"), pause_at_points=True))
        for label in (START, "file.read", "file.write"):
            ev = next_point(w)
            assert ev[2] == label
            if label != "file.write":
                w.release()
        w.crash()
        assert w.next_event(30) == ("died", 137)
        assert w.next_event(0) == ("died", 137)
        [rec] = w.collect(30)
    finally:
        pool.release([w])
    assert rec.outcome == Unknown("worker died")
    assert path.read_text() == ""


def test_pool_close_is_idempotent_and_kills_workers():
    """close() kills every worker; a second close() is harmless."""
    p = ProcessPool()
    ws = p.acquire(2)
    p.close()
    p.close()
    assert not any(w.alive for w in ws)
    with pytest.raises(JostleError, match="closed"):
        p.acquire(1)


def test_fork_start_method_is_refused():
    """ProcessPool(start_method='fork') is a SpecError that says why."""
    with pytest.raises(SpecError, match=r"start_method='fork'.*deadlock"):
        ProcessPool(start_method="fork")


@pytest.mark.slow
def test_workers_exit_when_the_controller_dies(tmp_path):
    """A worker hung in an op exits once its controller is SIGKILLed."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path[:0] = [{os.path.dirname(ops.__file__)!r}]
        import _proc_ops as ops
        from jostle._handles import handle_for
        from jostle._processes import ProcessJob, ProcessPool
        if __name__ == "__main__":
            pool = ProcessPool()
            [w] = pool.acquire(1)
            step = (0, "hang_forever", ops.hang_forever, ())
            w.submit(ProcessJob(1, 1, "parallel", handle_for(None), (step,), wait_for_go=False))
            while w.next_event(30)[0] != "invoke":
                pass
            print(w.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    # stdout stays open while any process holding it lives, so run() returning
    # already shows the worker (and the forkserver) exited.
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    worker_pid = int(out.stdout.split()[0])
    try:
        fd = os.pidfd_open(worker_pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([fd], [], [], 30)[0] == [fd]
    finally:
        os.close(fd)
