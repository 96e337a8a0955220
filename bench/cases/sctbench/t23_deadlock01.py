"""t23 -- ABBA deadlock between adding and removing documents of a search index.

Bug: ``add()`` locks the document store, then the index; ``remove()`` locks
the index, then the store (it finds the document through the index first).
An ``add()`` and a ``remove()`` running together can each take their first
lock and wait forever for the other's.

Origin: SCTBench ``CS/deadlock01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/deadlock01_bad.c``; Fray:
``Deadlock01Bad``).  thread1 locks ``a`` then ``b`` and
increments ``counter``; thread2 locks ``b`` then ``a`` and decrements it.
One preemption between the two acquisitions of either thread deadlocks.

Port: ``a`` is the store lock, ``b`` the index lock, ``counter`` the number
of documents (it starts at 1, as ``counter`` does).  Fray's Java version
reports the deadlock through an ``isLocked()`` probe; here it is a real
deadlock, as in the C original.  The twin takes the locks in one order.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    T1: add() holds the store lock, is preempted before the index lock
    T2: remove() holds the index lock, blocks on the store lock
    T1: blocks on the index lock             -> deadlock
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"


class SearchIndex:
    """Documents and their index, each behind its own lock."""

    def __init__(self):
        self.store_lock = threading.Lock()     # a
        self.index_lock = threading.Lock()     # b
        self.documents = 1                     # counter
        self.changes = 0

    def _log(self, what):
        self.changes += 1
        return what

    def add(self):
        with self.store_lock:
            self._log("add")
            with self.index_lock:
                self.documents += 1
                return self.documents

    def remove(self):
        with self.index_lock:
            self._log("remove")
            with self.store_lock:
                self.documents -= 1
                return self.documents

    def count(self):
        with self.store_lock:
            return self.documents


class OrderedSearchIndex(SearchIndex):
    def remove(self):
        with self.store_lock:
            self._log("remove")
            with self.index_lock:
                self.documents -= 1
                return self.documents


Buggy, Fixed = SearchIndex, OrderedSearchIndex


def add(r):
    return r.add()


def remove(r):
    return r.remove()


def count(r):
    return r.count()


OPERATIONS = [
    Op(add, (), "add a document; returns the new count"),
    Op(remove, (), "remove a document; returns the new count"),
    Op(count, (), "number of documents", observer=True),
]


class Model:
    def __init__(self):
        self.documents = 1

    def add(self):
        self.documents += 1
        return self.documents

    def remove(self):
        self.documents -= 1
        return self.documents

    def count(self):
        return self.documents


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "T1: add() locks the store; T2: remove() locks the index, waits for "
                    "the store; T1 waits for the index -> deadlock",
}


def _scenario(cls):
    r = cls()
    out = Interleaving(blocked_after=0.05).run(
        {"T1": r.add, "T2": r.remove},
        [("T1", "with self.index_lock:"), ("T2", None), ("T1", None)],
        join_timeout=0.1)
    if out.hung:                               # let the deadlocked threads finish
        r.store_lock.release()
        r.index_lock.release()
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert sorted(bad.hung) == ["T1", "T2"], bad
    assert not good.hung and good.results == {"T1": 2, "T2": 1}, good
    return "Buggy: add() and remove() deadlocked; Fixed: both completed"
