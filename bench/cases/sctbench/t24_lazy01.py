"""t24 -- a progress probe with no label for "finished", reached once both parts are done.

Bug: ``status()`` maps the units of work done (0-3) to a label through a
table that stops at "large part done": the author assumed the dashboard
thread polls while the job is still running.  Once both the small part (1
unit) and the large part (2 units) have finished, ``status()`` indexes past
the table and raises ``IndexError``.

Origin: SCTBench ``CS/lazy01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/lazy01_bad.c``; Fray:
``Lazy01Bad``).  Under one mutex, thread1 does
``data++``, thread2 ``data += 2``, thread3 asserts ``data < 3``.  The
assertion fails only when thread3 runs after both others: an ordering bug
needing no preemption.

Port: ``data`` is the units done; the check ``data >= 3`` became the missing
table entry (an ``IndexError`` instead of ``assert(0)``).  Finishing a part
twice counts once (a retried upload), so any sequence of operations stays
within the original's 0-3 units.  The twin's table has the "complete" entry.

Minimal failing scenario (0 preemptions):
    finish('small') and finish('large') run (prefix, or workers that run first)
    status() -> _STAGES[3] -> IndexError
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

PARTS = {"small": 1, "large": 2}
_STAGES = ("waiting", "small part done", "large part done")
_ALL_STAGES = (*_STAGES, "complete")


class JobProgress:
    """Progress of a two-part job, updated by the part workers and polled by a dashboard."""

    stages = _STAGES

    def __init__(self):
        self._lock = threading.Lock()
        self._finished = set()
        self._units = 0

    def finish(self, part):
        with self._lock:
            if part not in self._finished:
                self._finished.add(part)
                self._units += PARTS[part]

    def status(self):
        with self._lock:
            return self.stages[self._units]


class CompleteJobProgress(JobProgress):
    stages = _ALL_STAGES


Buggy, Fixed = JobProgress, CompleteJobProgress


def finish(r, part):
    r.finish(part)


def status(r):
    return r.status()


OPERATIONS = [
    Op(finish, (("small", "large"),), "mark a part finished (1 or 2 units; idempotent)"),
    Op(status, (), "the job's stage label", observer=True),
]


class Model:
    def __init__(self):
        self.finished = set()

    def finish(self, part):
        self.finished.add(part)

    def status(self):
        return _ALL_STAGES[sum(PARTS[p] for p in self.finished)]


MINIMAL = {
    "workers": 1, "ops_per_worker": 1, "prefix": ["finish('small')", "finish('large')"],
    "preemptions": 0,
    "interleaving": "both parts finish first; status() then indexes stage 3 of a "
                    "3-entry table -> IndexError (no preemption: the probe merely runs last)",
}


def _scenario(cls, order):
    r = cls()
    threads = {"S": lambda: r.finish("small"), "L": lambda: r.finish("large"),
               "P": r.status}
    out = Interleaving().run(threads, [(name, None) for name in order])
    assert not out.hung, out
    return out


def self_check():
    for cls in (Buggy, Fixed):                   # the probe first: both answer "waiting"
        first = _scenario(cls, "PSL")
        assert first.results.get("P") == "waiting", (cls.__name__, first)
    bad, good = _scenario(Buggy, "SLP"), _scenario(Fixed, "SLP")
    assert isinstance(bad.errors.get("P"), IndexError), bad
    assert good.results.get("P") == "complete", good
    return "probe last: Buggy raised IndexError; Fixed answered 'complete'"
