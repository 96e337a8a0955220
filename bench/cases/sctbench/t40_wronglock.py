"""t40 -- a counter incremented under two different locks (7 bumpers).

Bug: ``next_checked()`` increments the counter under ``lock`` and checks
that it moved by exactly one; the legacy ``bump()`` path increments the same
counter under ``legacy_lock``.  The locks exclude nothing from each other, so
a bump between ``next_checked()``'s read and write loses an update, and a
bump between its write and check trips ``CounterMoved``.

Origin: SCTBench ``CS/wronglock_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/wronglock_bad.c``; Fray: ``WronglockBad``):
``iNum1 = 1`` funcA thread (read, increment, ``assert(dataValue == x + 1)``
under ``dataLock``) and ``iNum2 = 7`` funcB threads (``dataValue++`` under
``thisLock``).  One preemption inside funcA's section, then any funcB, fails
the assertion.

Port: see ``_wronglock`` (the shared code of the family).  The 7 funcB
threads are one ``bump()`` operation doing 7 increments, each under its own
lock hold (jostle runs at most 3 workers); any one of them inside the window
is enough, so the count does not dilute the window, as in the original,
where more funcB threads only give more chances.  The twin bumps under
``lock``.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    A: next_checked() reads 0, writes 1, is preempted before its check
    B: bump() increments to 8 under legacy_lock
    A: reads 8 != 1 -> CounterMoved
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
    BUMPERS = 7


class Fixed(LockedSequenceCounter):
    BUMPERS = 7


__all__ = ["KIND", "MINIMAL", "OPERATIONS", "Buggy", "Fixed", "Model", "invariant",
           "self_check"]

MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "A: next_checked() writes 1, preempted before its check; B: bump() "
                    "adds 7 under the other lock; A reads 8 -> CounterMoved",
}


def self_check():
    return check(Buggy, Fixed)
