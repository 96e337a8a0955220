"""The twostage family (SCTBench ``CS/twostage*_bad``): a record published in two steps.

Shared by ``t38_twostage`` (1 writer) and ``t39_twostage_100`` (99 writers);
each case module fixes ``WRITERS`` and carries its own docstring,
``MINIMAL`` and ``self_check``.

The original: ``iTThreads`` threads run funcA (``data1 = 1`` under
``data1Lock``, then ``data2 = data1 + 1`` under ``data2Lock``) and
``iRThreads = 1`` thread runs funcB, which returns if ``data1 == 0`` and
otherwise reads ``data1`` and ``data2`` under their locks and asserts
``data2 == data1 + 1``.  Every access is locked (no data race); the two
stages are not atomic together.  The reader must run between the first
writer's two stages (1 preemption), before any writer completes stage 2;
with 99 writers it must be picked out of 100 threads in that window.

The port keeps that shape as ``_reorder`` does for the reorder family:
``publish()`` is main and the writer threads (it starts ``WRITERS`` jobs, one
loop iteration and scheduling point each, then runs them in start order),
``read()`` is funcB.
A read before the first stage 1 returns ``None`` and is spent, a read after
the first stage 2 sees a complete record, so the one preemption has to land
in the first writer's gap, after the ``WRITERS`` starts (points 104-105 of
``publish()`` with 99 writers on CPython 3.11, measured with
``jostle.replay``; see ``_reorder`` on how this differs from the original's
difficulty).  The locks are the
scheduling points (a GIL build can switch threads when a lock call returns).

The twin holds the primary lock across both stages, in writer and reader
(the locks are always taken in the same order).
"""
import threading

from ._support import Interleaving, Op


class TornRecord(Exception):
    pass


class TwoStagePublisher:
    """A primary value and a value derived from it, each behind its own lock."""

    WRITERS = 1          # iTThreads

    def __init__(self):
        self.primary_lock = threading.Lock()     # data1Lock
        self.derived_lock = threading.Lock()     # data2Lock
        self.primary = 0                         # data1Value
        self.derived = 0                         # data2Value

    def _writer(self):                           # funcA
        with self.primary_lock:
            self.primary = 1
        with self.derived_lock:
            self.derived = self.primary + 1

    def publish(self):
        jobs = []
        for _ in range(self.WRITERS):       # pthread_create: one scheduling point each
            jobs.append(self._writer)
        for job in jobs:
            job()

    def read(self):                              # funcB
        with self.primary_lock:
            if self.primary == 0:
                return None
            primary = self.primary
        with self.derived_lock:
            derived = self.derived
        if derived != primary + 1:
            raise TornRecord(f"derived {derived} for primary {primary}")
        return (primary, derived)


class AtomicTwoStagePublisher(TwoStagePublisher):
    def _writer(self):
        with self.primary_lock:
            self.primary = 1
            with self.derived_lock:
                self.derived = self.primary + 1

    def read(self):
        with self.primary_lock:
            if self.primary == 0:
                return None
            primary = self.primary
            with self.derived_lock:
                derived = self.derived
        if derived != primary + 1:
            raise TornRecord(f"derived {derived} for primary {primary}")
        return (primary, derived)


def publish(r):
    r.publish()


def read(r):
    return r.read()


OPERATIONS = [
    Op(publish, (), "start the WRITERS writer jobs, then run them: (1, 2) published"),
    Op(read, (), "the record (primary, derived), or None before the first stage",
       observer=True),
]


class Model:
    def __init__(self):
        self.published = False

    def publish(self):
        self.published = True

    def read(self):
        return (1, 2) if self.published else None


def check(buggy, fixed):
    """The self-check every twostage case runs: a read inside the first writer's gap."""
    outs = []
    for cls in (buggy, fixed):
        r = cls()
        out = Interleaving(__file__, blocked_after=0.05).run(
            {"W": r.publish, "R": r.read},
            [("W", "with self.derived_lock:"), ("R", None), ("W", None)])
        assert not out.hung, out
        outs.append(out)
    bad, good = outs
    assert isinstance(bad.errors.get("R"), TornRecord), bad
    assert not good.errors and good.results.get("R") == (1, 2), good
    return (f"a read in the first writer's gap ({buggy.WRITERS} writers): Buggy saw primary 1, "
            f"derived 0 -> TornRecord; Fixed waited and read (1, 2)")
