"""t42 -- a counter incremented under two different locks (3 bumpers).

Bug: ``next_checked()`` increments the counter under ``lock`` and checks
that it moved by exactly one; the legacy ``bump()`` path increments the same
counter under ``legacy_lock``.  The locks exclude nothing from each other, so
a bump between ``next_checked()``'s read and write loses an update, and a
bump between its write and check trips ``CounterMoved``.

Origin: SCTBench ``CS/wronglock_3_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/wronglock_3_bad.c``; Fray: ``Wronglock3Bad``):
``iNum1 = 1`` funcA thread (read, increment, ``assert(dataValue == x + 1)``
under ``dataLock``) and ``iNum2 = 3`` funcB threads (``dataValue++`` under
``thisLock``).  One preemption inside funcA's section, then any funcB, fails
the assertion.

Port: see ``_wronglock`` (the shared code of the family).  The 3 funcB
threads are one ``bump()`` operation doing 3 increments, each under its own
lock hold (jostle runs at most 3 workers); any one of them inside the window
is enough, so the count does not dilute the window, as in the original,
where more funcB threads only give more chances.  The twin bumps under
``lock``.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    A: next_checked() reads 0, writes 1, is preempted before its check
    B: bump() increments to 4 under legacy_lock
    A: reads 4 != 1 -> CounterMoved
"""
from ._wronglock import (
    OPERATIONS,
    LockedSequenceCounter,
    Model,
    SequenceCounter,
    check,
    invariant,
)

KIND = "thread"


class Buggy(SequenceCounter):
    BUMPERS = 3


class Fixed(LockedSequenceCounter):
    BUMPERS = 3


__all__ = ["KIND", "MINIMAL", "OPERATIONS", "Buggy", "Fixed", "Model", "invariant",
           "self_check"]

MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "A: next_checked() writes 1, preempted before its check; B: bump() "
                    "adds 3 under the other lock; A reads 4 -> CounterMoved",
}


def self_check():
    return check(Buggy, Fixed)
