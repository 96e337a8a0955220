"""t38 -- a record published in two locked stages, read between them (1 writer).

Bug: ``publish()``'s writer sets the primary value under one lock and, in a
second critical section, the derived value (primary + 1) under another.
Each access is locked, but the two stages are not atomic together: a reader
that runs between them sees primary 1 with derived 0 and raises
``TornRecord``.  There is no data race to report, only an atomicity
violation.

Origin: SCTBench ``CS/twostage_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/twostage_bad.c``; Fray:
``TwostageBad``): ``iTThreads = 1`` funcA thread and ``iRThreads = 1`` funcB
thread (see ``_twostage``).  One preemption, between the writer's stages.

Port: see ``_twostage`` (the family's shared code).  ``publish()`` is main
and the writer thread.  The twin holds the primary lock across both stages.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    W: publish(): the first writer sets primary = 1, is preempted before stage 2
    R: read() sees primary 1, derived 0 -> TornRecord
"""
from ._twostage import OPERATIONS, AtomicTwoStagePublisher, Model, TwoStagePublisher, check

KIND = "thread"


class Buggy(TwoStagePublisher):
    WRITERS = 1


class Fixed(AtomicTwoStagePublisher):
    WRITERS = 1


__all__ = ["KIND", "MINIMAL", "OPERATIONS", "Buggy", "Fixed", "Model", "self_check"]

MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "W: the first writer of publish() sets primary = 1, preempted before "
                    "stage 2; R: read() sees (1, 0) -> TornRecord",
}


def self_check():
    return check(Buggy, Fixed)
