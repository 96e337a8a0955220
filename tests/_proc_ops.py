"""Operations and resources for the process-worker tests.

They live at module level of an importable module so they pickle by
reference: a process worker imports this module by name.
"""

from __future__ import annotations

import os
import signal
import struct
import threading
from multiprocessing import resource_tracker, shared_memory

from jostle._history import now
from jostle._syncpoints import sync_point


def add_one(r, x):
    return x + 1


def pid(r):
    return os.getpid()


def clock(r):
    return now()


def boom(r, message):
    raise ValueError(message)


class NeedsTwoArgs(Exception):
    """Pickles, but cannot be unpickled: ``__init__`` wants two arguments."""

    def __init__(self, a, b):
        super().__init__(a)
        self.b = b


def raise_needs_two_args(r):
    raise NeedsTwoArgs("half", 2)


def return_lock(r):
    return threading.Lock()


def die(r):
    os._exit(1)


def hang_forever(r):
    threading.Event().wait()


def sigint_ignored(r):
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def tracker_filtered(r):
    return getattr(resource_tracker.register, "__jostle_filter__", False)


def labelled_point(r, label):
    sync_point(label)
    return label


def append_tag(f, tag):
    """Read-modify-write on a FileHandle: points file.read, file.write."""
    text = f.read_text()
    f.write_text(text + tag)
    return text + tag


def write_text(f, text):
    f.write_text(text)


def read_text(f):
    return f.read_text()


def sqlite_insert(db, value):
    db.execute("INSERT INTO t(v) VALUES (?)", (value,))
    return [row[0] for row in db.execute("SELECT v FROM t ORDER BY v")]


def shm_write(shm, offset, value):
    shm.buf[offset] = value
    return bytes(shm.buf[:4])


def dict_put(d, key, value):
    d[key] = value
    return d.get(key)


class FailingHandle:
    """A handle whose attach() raises in the worker."""

    def attach(self):
        raise RuntimeError("cannot attach here")


class LockedBox:
    """A resource that does not pickle: it holds a thread lock."""

    def __init__(self):
        self.lock = threading.Lock()


class SharedCounters:
    """bugzoo p03's resource: int64 counters in shared memory, attached by
    name in ``__setstate__`` (so it goes through PickledHandle)."""

    SLOTS = 2

    def __init__(self, name=None):
        self._owner = name is None
        if self._owner:
            self._shm = shared_memory.SharedMemory(create=True, size=8 * self.SLOTS)
            self._shm.buf[: 8 * self.SLOTS] = bytes(8 * self.SLOTS)
        else:
            self._shm = shared_memory.SharedMemory(name=name)

    def __getstate__(self):
        return {"name": self._shm.name}

    def __setstate__(self, state):
        self.__init__(state["name"])

    def incr(self, slot):
        buf = self._shm.buf
        (value,) = struct.unpack_from("q", buf, slot * 8)
        struct.pack_into("q", buf, slot * 8, value + 1)
        return value + 1

    def get(self, slot):
        return struct.unpack_from("q", self._shm.buf, slot * 8)[0]

    def close(self):
        self._shm.close()
        if self._owner:
            self._shm.unlink()


def incr(r, slot):
    return r.incr(slot)


def is_daemon(r):
    import multiprocessing

    return multiprocessing.current_process().daemon
