"""t25 -- a job runner leaks its phase lock; the next run blocks forever.

Bug: ``run()`` goes through two phases, each entered twice: phase 1 under
lock ``x`` (claim, then commit), phase 2 under lock ``y``.  The commit step
acquires ``x`` by hand and its ``release()`` was lost in a refactor, so ``x``
stays locked after the first run.  The next ``run()``, from any thread (or
the same one: ``x`` is not reentrant), blocks forever.

Origin: SCTBench ``CS/phase01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/phase01_bad.c``; Fray:
``Phase01Bad``).  Two threads run
``lock(x); unlock(x); lock(x); /* unlock(x) commented out */ lock(y);
unlock(y); lock(y); unlock(y)``: whichever thread comes second deadlocks on
``x``, in every schedule (no preemption needed).

Port: the phases call small steps (claim, commit, publish) so the locks guard
something; ``runs`` counts completed runs.  The twin releases ``x`` in a
``finally``.

Minimal failing scenario (0 preemptions):
    run() completes, leaving x locked (prefix, or a worker that runs first)
    run() blocks on x forever              -> deadlock
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"


class TwoPhaseJob:
    """Runs a job in two locked phases; shared by the scheduler's threads."""

    def __init__(self):
        self.x = threading.Lock()
        self.y = threading.Lock()
        self.claimed = self.committed = self.published = 0
        self.runs = 0

    def _claim(self):
        self.claimed += 1

    def _commit(self):
        self.committed += 1

    def _publish(self):
        self.published += 1

    def _commit_phase(self):
        self.x.acquire()
        self._commit()
        # self.x.release()  -- lost in a refactor

    def run(self):
        with self.x:
            self._claim()
        self._commit_phase()
        with self.y:
            self._publish()
        with self.y:
            self.runs += 1
            return self.runs


class BalancedTwoPhaseJob(TwoPhaseJob):
    def _commit_phase(self):
        self.x.acquire()
        try:
            self._commit()
        finally:
            self.x.release()


Buggy, Fixed = TwoPhaseJob, BalancedTwoPhaseJob


def run(r):
    return r.run()


OPERATIONS = [Op(run, (), "run the job once; returns the number of completed runs")]


class Model:
    def __init__(self):
        self.runs = 0

    def run(self):
        self.runs += 1
        return self.runs


MINIMAL = {
    "workers": 1, "ops_per_worker": 1, "prefix": ["run()"], "preemptions": 0,
    "interleaving": "the first run() leaves x locked; the second run() blocks on x "
                    "forever -> deadlock (every schedule)",
}


def _scenario(cls):
    r = cls()
    out = Interleaving(blocked_after=0.05).run(
        {"T1": r.run, "T2": r.run}, [("T1", None), ("T2", None)], join_timeout=0.1)
    seen = (list(out.hung), dict(out.results))
    if out.hung:                               # let the blocked thread finish
        r.x.release()
    return seen


def self_check():
    (bad_hung, bad), (good_hung, good) = _scenario(Buggy), _scenario(Fixed)
    assert bad_hung == ["T2"] and bad == {"T1": 1}, (bad_hung, bad)
    assert not good_hung and good == {"T1": 1, "T2": 2}, (good_hung, good)
    return "Buggy: the second run() blocked on the leaked lock x; Fixed: both runs completed"
