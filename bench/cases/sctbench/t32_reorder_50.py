"""t32 -- a two-field feature flag applied by 49 watcher jobs, read half applied.

Bug: each watcher job turns the flag on by writing ``enabled`` and then
``percent``, with nothing making the pair atomic.  A request that reads the
flag between a watcher's two writes sees ``(True, 0)``, a state the flag is
never meant to be in, and raises ``HalfAppliedFlag``.

Origin: SCTBench ``CS/reorder_50_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/reorder_50_bad.c``, ``reorder_bad.c`` with
``iSet = 49, iCheck = 1``; Fray: ``Reorder50Bad``).  50 threads:
49 setters ``a = 1; b = -1`` and 1 checker asserting ``(a, b)`` is ``(0, 0)`` or
``(1, -1)``.  One preemption, inside the first setter's writes, with a
checker chosen before any other setter finishes.

Port: see ``_reorder`` (the family's shared code and how it keeps the
thread count's difficulty with at most 3 workers: the 49 setter starts
come first, one scheduling point each, and the window is one point after
them).  ``serve()`` is one request.  The twin publishes both fields as one
tuple.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    S: apply_remote_config() starts 49 watchers; the first writes enabled=True,
       is preempted before writing percent
    C: serve() reads (True, 0) -> HalfAppliedFlag
"""
from ._reorder import OPERATIONS, AtomicRolloutFlag, Model, RolloutFlag, check

KIND = "thread"


class Buggy(RolloutFlag):
    SETTERS, CHECKERS = 49, 1


class Fixed(AtomicRolloutFlag):
    SETTERS, CHECKERS = 49, 1


__all__ = ["KIND", "MINIMAL", "OPERATIONS", "Buggy", "Fixed", "Model", "self_check"]

MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "S: apply_remote_config() starts 49 watchers; the first sets "
                    "enabled, preempted before percent; C: serve() reads (True, 0) "
                    "-> HalfAppliedFlag",
}


def self_check():
    return check(Buggy, Fixed)
