"""t41 -- a counter incremented under two different locks (1 bumper).

Bug: ``next_checked()`` increments the counter under ``lock`` and checks
that it moved by exactly one; the legacy ``bump()`` path increments the same
counter under ``legacy_lock``.  The locks exclude nothing from each other, so
a bump between ``next_checked()``'s read and write loses an update, and a
bump between its write and check trips ``CounterMoved``.

Origin: SCTBench ``CS/wronglock_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/wronglock_bad.c``) with
``iNum2 = 1``, the variant Fray's benchmark runs as ``Wronglock1Bad``: one
funcA thread (read, increment, ``assert(dataValue == x + 1)`` under
``dataLock``) and one funcB thread (``dataValue++`` under ``thisLock``).
One preemption inside funcA's section, then funcB, fails the assertion.

Port: see ``_wronglock`` (the shared code of the family).  The funcB thread
is the ``bump()`` operation, one increment under ``legacy_lock``.  The twin
bumps under ``lock``.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    A: next_checked() reads 0, writes 1, is preempted before its check
    B: bump() increments to 2 under legacy_lock
    A: reads 2 != 1 -> CounterMoved
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
    BUMPERS = 1


class Fixed(LockedSequenceCounter):
    BUMPERS = 1


__all__ = ["KIND", "MINIMAL", "OPERATIONS", "Buggy", "Fixed", "Model", "invariant",
           "self_check"]

MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "A: next_checked() writes 1, preempted before its check; B: bump() "
                    "adds 1 under the other lock; A reads 2 -> CounterMoved",
}


def self_check():
    return check(Buggy, Fixed)
