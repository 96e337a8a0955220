"""Handles: the sharing protocol, the four adapters, resource_tracker quiet."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from jostle import _syncpoints
from jostle._errors import SpecError, SpecTypeError
from jostle._handles import (
    FileHandle,
    ManagerHandle,
    PickledHandle,
    SharedMemoryHandle,
    SqliteHandle,
    check_picklable,
    handle_for,
)
from jostle._history import Returned
from jostle._processes import ProcessJob, ProcessPool, ProcessWorker
from jostle._syncpoints import sync_point

import _proc_ops as ops

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    with ProcessPool() as p:
        p.release(p.acquire(1))  # start-up cost goes to set-up, not to a test
        yield p


@contextlib.contextmanager
def worker(pool: ProcessPool) -> Iterator[ProcessWorker]:
    ws = pool.acquire(1)
    try:
        yield ws[0]
    finally:
        pool.release(ws)


def run(w: ProcessWorker, handle, *steps):
    """Run ``steps`` (``(fn, *args)``) in ``w`` and return their outcomes."""
    w.submit(
        ProcessJob(
            next(_ids),
            1,
            "parallel",
            handle,
            tuple((i, fn.__name__, fn, tuple(a)) for i, (fn, *a) in enumerate(steps)),
            wait_for_go=False,
        )
    )
    recs = w.collect(30)
    assert recs is not None
    return [r.outcome for r in recs]


@contextlib.contextmanager
def hook(fn):
    _syncpoints._set_hook(fn)
    try:
        yield
    finally:
        _syncpoints._set_hook(None)


# -- sync points ---------------------------------------------------------------


def test_sync_point_without_hook_does_nothing():
    """With no hook installed, sync_point is a no-op."""
    assert sync_point("anything") is None


def test_sync_point_calls_the_hook_with_its_label():
    """An installed hook receives each sync point's label."""
    seen: list[str] = []
    with hook(seen.append):
        sync_point("a")
        sync_point()
    sync_point("after")
    assert seen == ["a", ""]


def test_file_helpers_hit_sync_points(tmp_path):
    """FileHandle's helpers pass a file.read / file.write point before I/O."""
    fh = FileHandle(tmp_path / "f.txt")
    seen: list[str] = []
    with hook(seen.append):
        fh.write_text("x")
        fh.read_text()
        with fh.open("rb") as f:
            f.read()
        with fh.open("a") as f:
            f.write("y")
    assert seen == ["file.write", "file.read", "file.read", "file.write"]
    assert (tmp_path / "f.txt").read_text() == "xy"


# -- the protocol -------------------------------------------------------------


def test_handle_for_falls_back_to_pickling_the_resource():
    """A resource without __jostle_handle__ travels as a PickledHandle."""
    handle = handle_for([1, 2])
    assert handle == PickledHandle([1, 2])
    assert pickle.loads(pickle.dumps(handle)).attach() == [1, 2]


def test_handle_for_uses_the_resource_opt_in():
    """__jostle_handle__ decides the handle; adapters are their own handles."""

    class Opted:
        def __jostle_handle__(self):
            return FileHandle("/tmp/x")

    assert isinstance(handle_for(Opted()), FileHandle)
    fh = FileHandle("/tmp/y")
    assert handle_for(fh) is fh


def test_handle_without_attach_is_a_spec_type_error():
    """A __jostle_handle__ returning an object without attach() is refused."""

    class Bad:
        def __jostle_handle__(self):
            return 42

    with pytest.raises(SpecTypeError, match=r"Bad.__jostle_handle__\(\) returned 42.*attach"):
        handle_for(Bad())


def test_check_picklable_names_what_where_and_fix():
    """check_picklable's message names the value, where it came from and the fix."""
    with pytest.raises(SpecTypeError) as info:
        check_picklable(lambda r: r, "operation 'get'", "scenario worker 2, step 0")
    text = str(info.value)
    for part in ("operation 'get'", "scenario worker 2, step 0", "a lambda cannot be pickled"):
        assert part in text
    assert "module level" in text
    with pytest.raises(SpecTypeError, match=r"resource LockedBox.*SqliteHandle"):
        check_picklable(ops.LockedBox(), "resource LockedBox", "scenario worker 1")
    check_picklable(ops.add_one, "operation 'add_one'", "anywhere")


def test_adapters_pickle_as_their_names(tmp_path):
    """File and SQLite handles pickle to a path, shared memory to its name."""
    fh = pickle.loads(pickle.dumps(FileHandle(tmp_path / "f")))
    assert fh.path == os.fspath(fh) == str(tmp_path / "f")
    db = pickle.loads(pickle.dumps(SqliteHandle(tmp_path / "d.db", timeout=1.5)))
    assert (db.path, db.timeout) == (str(tmp_path / "d.db"), 1.5)
    with SharedMemoryHandle(4) as shm:
        copy = pickle.loads(pickle.dumps(shm))
        assert copy.name == shm.name
        assert not copy.owner
        copy.buf[1] = 9
        assert shm.buf[1] == 9
        copy.close()


def test_shared_memory_handle_needs_size_or_name():
    """SharedMemoryHandle() and a size below 1 are SpecErrors with the fix."""
    with pytest.raises(SpecError, match="needs size= to create"):
        SharedMemoryHandle()
    with pytest.raises(SpecError, match=r"size=0"):
        SharedMemoryHandle(0)


def test_manager_handle_rejects_unknown_kind():
    """ManagerHandle('set') is a SpecError listing the kinds it supports."""
    with pytest.raises(SpecError, match=r"kind='set'.*dict, list"):
        ManagerHandle("set")


# -- adapters round-trip through a worker -------------------------------------


def test_file_handle_round_trip(pool, tmp_path):
    """A worker writes through a FileHandle; the controller and worker read it."""
    fh = FileHandle(tmp_path / "f.txt")
    with worker(pool) as w:
        out = run(w, fh, (ops.write_text, "from worker"), (ops.read_text,))
    assert out == [Returned(None), Returned("from worker")]
    assert (tmp_path / "f.txt").read_text() == "from worker"


def test_sqlite_handle_round_trip(pool, tmp_path):
    """A worker inserts through its own connection; the controller sees the row."""
    db = SqliteHandle(tmp_path / "d.db")
    db.execute("CREATE TABLE t(v INTEGER)")
    db.execute("INSERT INTO t(v) VALUES (1)")
    with worker(pool) as w:
        out = run(w, db, (ops.sqlite_insert, 2))
    assert out == [Returned([1, 2])]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (2,)
    db.close()


def test_shared_memory_handle_round_trip(pool):
    """A byte written by a worker is visible to the owner; close unlinks."""
    shm = SharedMemoryHandle(16)
    try:
        with worker(pool) as w:
            out = run(w, shm, (ops.shm_write, 2, 200))
        assert out == [Returned(bytes([0, 0, 200, 0]))]
        assert shm.buf[2] == 200
    finally:
        shm.close()
    assert not os.path.exists(f"/dev/shm/{shm.name.lstrip('/')}")


def test_manager_handle_round_trip(pool):
    """A worker updates a Manager dict; the controller's proxy sees it."""
    shared = ManagerHandle("dict")
    with worker(pool) as w:
        out = run(w, shared, (ops.dict_put, "k", [1, 2]))
    assert out == [Returned([1, 2])]
    assert shared.proxy["k"] == [1, 2]


@pytest.mark.slow
def test_manager_handle_works_in_spawn_workers():
    """Spawned workers inherit the authkey, so Manager proxies connect."""
    shared = ManagerHandle("dict")
    with ProcessPool(start_method="spawn") as spawn_pool, worker(spawn_pool) as w:
        assert run(w, shared, (ops.dict_put, "s", 1)) == [Returned(1)]
    assert shared.proxy["s"] == 1


# -- resource_tracker ------------------------------------------------------------


def test_workers_filter_shared_memory_registration(pool):
    """Process workers filter out resource_tracker registration of shared memory."""
    with worker(pool) as w:
        assert run(w, handle_for(None), (ops.tracker_filtered,)) == [Returned(True)]


@pytest.mark.slow
def test_shared_memory_in_workers_is_quiet_and_leaks_nothing():
    """p03-style attach in a worker: no tracker warning, no leak, no foreign unlink."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:0] = [{os.path.dirname(ops.__file__)!r}]
        from multiprocessing import resource_tracker, shared_memory
        import _proc_ops as ops
        from jostle._handles import SharedMemoryHandle, handle_for
        from jostle._processes import ProcessJob, ProcessPool

        def run(w, handle, *steps):
            steps = tuple((i, fn.__name__, fn, a) for i, (fn, *a) in enumerate(steps))
            w.submit(ProcessJob(1, 1, "parallel", handle, steps, wait_for_go=False))
            return [r.outcome.value for r in w.collect(30)]

        if __name__ == "__main__":
            with ProcessPool() as pool:
                [w] = pool.acquire(1)
                counters = ops.SharedCounters()           # bugzoo p03's resource
                out = run(w, handle_for(counters), (ops.incr, 0), (ops.incr, 0))
                shm = SharedMemoryHandle(8)
                out += [b[0] for b in run(w, shm, (ops.shm_write, 0, 7))]
                here = SharedMemoryHandle(name=shm.name)  # attached in the owner's process
                out.append(here.buf[0])
                here.close()
                # A segment no process here owns (as if a service outside
                # Python made it): the tracker must not unlink it at exit.
                foreign = shared_memory.SharedMemory(create=True, size=16)
                resource_tracker.unregister(foreign._name, "shared_memory")
                view = ops.SharedCounters.__new__(ops.SharedCounters)
                view._shm, view._owner = foreign, False
                out += run(w, handle_for(view), (ops.incr, 1))
                names = [counters._shm.name, shm.name, foreign.name]
                counters.close()
                shm.close()
                foreign.close()
            print(json.dumps({{"names": names, "out": out}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    # capture_output waits for EOF on stderr, which the resource tracker holds
    # until it has finished its exit-time clean-up and warnings.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["out"] == [1, 2, 7, 7, 1]
    owned, adapter, foreign = (f"/dev/shm/{n.lstrip('/')}" for n in result["names"])
    assert not os.path.exists(owned)
    assert not os.path.exists(adapter)
    assert os.path.exists(foreign)
    os.unlink(foreign)
