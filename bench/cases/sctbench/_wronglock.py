"""The wronglock family (SCTBench ``CS/wronglock*_bad``): one counter, two locks.

Shared by ``t40_wronglock`` (7 bumpers), ``t41_wronglock_1`` (1) and
``t42_wronglock_3`` (3); each case module fixes ``BUMPERS`` and carries its
own docstring, ``MINIMAL`` and ``self_check``.

``SequenceCounter.next_checked()`` is funcA: under ``lock`` it reads the
counter, writes it back plus one and checks that the counter moved by exactly
one.  ``bump()`` is the ``BUMPERS`` funcB threads, one increment each, but
under ``legacy_lock``.  Reads and writes go through ``_read``/``_write`` (the
counter lives behind accessor methods), which is what makes the critical
section preemptible on a GIL build: a bare ``self.value += 1`` has no switch
point (field notes).  Lost updates show in ``invariant``; a bump inside
``next_checked``'s section also trips its own check (``CounterMoved``), as
funcA's ``assert(0)`` does.
"""
import threading

from ._support import Interleaving, Op


class CounterMoved(Exception):
    pass


class SequenceCounter:
    """A counter shared by request threads (next_checked) and a legacy batch path (bump)."""

    BUMPERS = 1

    def __init__(self):
        self.lock = threading.Lock()            # dataLock
        self.legacy_lock = threading.Lock()     # thisLock
        self.value = 0                          # dataValue
        self.checked_calls = 0                  # guarded by lock
        self.bump_calls = 0                     # guarded by legacy_lock

    def _read(self):
        return self.value

    def _write(self, value):
        self.value = value

    def next_checked(self):
        with self.lock:
            self.checked_calls += 1
            x = self._read()
            self._write(x + 1)
            if self._read() != x + 1:
                raise CounterMoved(f"counter moved under lock: read {x}, now {self.value}")

    def _bump_lock(self):
        return self.legacy_lock

    def bump(self):
        lock = self._bump_lock()
        with lock:
            self.bump_calls += 1
        for _ in range(self.BUMPERS):
            with lock:
                self._write(self._read() + 1)


class LockedSequenceCounter(SequenceCounter):
    def _bump_lock(self):
        return self.lock


def next_checked(r):
    r.next_checked()


def bump(r):
    r.bump()


OPERATIONS = [
    Op(next_checked, (), "increment under the counter's lock and check it moved by one"),
    Op(bump, (), "the batch path: BUMPERS increments, one lock hold each"),
]


class Model:
    def next_checked(self):
        return None

    def bump(self):
        return None


def invariant(r):
    expected = r.checked_calls + r.BUMPERS * r.bump_calls
    assert r.value == expected, f"lost update: counter {r.value}, expected {expected}"


def scenario(cls):
    """next_checked() preempted after its write; bump() runs; the check sees the bump."""
    r = cls()
    out = Interleaving(__file__, blocked_after=0.05).run(
        {"A": r.next_checked, "B": r.bump},
        [("A", "if self._read() != x + 1:"), ("B", None), ("A", None)])
    assert not out.hung, out
    return out, r


def check(buggy, fixed):
    """The self-check every wronglock case runs."""
    (bad, bad_r), (good, good_r) = scenario(buggy), scenario(fixed)
    assert isinstance(bad.errors.get("A"), CounterMoved), bad
    assert not good.errors and good_r.value == 1 + good_r.BUMPERS, (good, good_r.value)
    invariant(bad_r)
    return (f"a bump inside next_checked(): Buggy raised CounterMoved; Fixed waited "
            f"(counter {good_r.value})")
