"""The reorder family (SCTBench ``CS/reorder_N_bad``): a two-field flag set by N - 1 jobs.

Shared by ``t27_reorder_3`` ... ``t33_reorder_100``; each case module fixes
``SETTERS`` and ``CHECKERS`` (the original's ``iSet`` and ``iCheck``) and
carries its own docstring, ``MINIMAL`` and ``self_check``.

The original (``reorder_bad.c``, built with different ``iSet``/``iCheck``):
main creates ``iSet`` threads running ``a = 1; b = -1`` and then ``iCheck``
threads asserting ``(a, b)`` is ``(0, 0)`` or ``(1, -1)``, and joins them.
The bug is seen by a checker that runs between the first setter's two writes
(1 preemption).  What makes it hard is the thread count: the checker has to
be chosen out of N threads in that one window, before any other setter
completes ``b = -1``.

The port, and how it keeps that difficulty with at most 3 workers:

* ``RolloutFlag`` is a feature flag with two fields, ``enabled`` and
  ``percent``: off is ``(False, 0)``, on is ``(True, 100)`` (the original's
  ``(0, 0)`` and ``(1, -1)``).
* ``apply_remote_config()`` is main and the setter threads: it starts
  ``SETTERS`` watcher jobs, one loop iteration each (one scheduling point,
  the loop's back edge, as ``pthread_create`` is one for main), and then
  runs them in start order, as a non-preemptive scheduler runs the threads
  once main waits in ``join``.
  A watcher writes the fields through setter methods, so there is a
  scheduling point between the two writes on a GIL build.
* ``serve()`` is the ``CHECKERS`` checker threads: it reads both fields in
  one expression, which a GIL build cannot interrupt (plain attribute loads,
  no call: field notes), and raises ``HalfAppliedFlag`` on a torn pair.
  (In the C original the checker's two reads can be separated too; here
  only the setter's window exists, as on CPython.)
* The window is the first watcher's gap, after the ``SETTERS`` starts: a
  ``serve()`` that runs earlier sees ``(False, 0)`` and is spent, and every
  later watcher finds the flag already on.  So the one preemption has to
  land on one point about ``SETTERS + 5`` points into the operation (point
  104 of 99 starts on CPython 3.11, 105 on 3.12, measured with
  ``jostle.replay``), the counterpart of picking the checker out of N
  threads.  The mechanism differs: in the original, other setters writing
  ``a`` keep the window open, while here any earlier switch to ``serve()``
  spends it, so a random walk switching with probability p per point finds
  it with probability about p(1 - p)^SETTERS, which falls faster with N than
  in the original; a schedule that names the point finds it at once.

The twin publishes both fields as one tuple in one store.
"""
from ._support import Interleaving, Op

OFF, ON = (False, 0), (True, 100)


class HalfAppliedFlag(Exception):
    pass


class RolloutFlag:
    """A feature flag applied by watcher jobs and read by request handlers."""

    SETTERS = 2          # iSet
    CHECKERS = 1         # iCheck

    def __init__(self):
        self.enabled = False         # a
        self.percent = 0             # b

    def _set_enabled(self, value):
        self.enabled = value

    def _set_percent(self, value):
        self.percent = value

    def _watcher(self):              # setThread
        self._set_enabled(True)
        self._set_percent(100)

    def apply_remote_config(self):
        jobs = []
        for _ in range(self.SETTERS):       # pthread_create: one scheduling point each
            jobs.append(self._watcher)
        for job in jobs:
            job()

    def serve(self):                 # checkThread
        for _ in range(self.CHECKERS):
            state = (self.enabled, self.percent)
            if state not in (OFF, ON):
                raise HalfAppliedFlag(f"flag is half applied: {state}")


class AtomicRolloutFlag(RolloutFlag):
    def __init__(self):
        super().__init__()
        self.state = OFF

    def _publish(self, state):
        self.state = state

    def _watcher(self):
        self._publish(ON)

    def serve(self):
        for _ in range(self.CHECKERS):
            state = self.state
            if state not in (OFF, ON):
                raise HalfAppliedFlag(f"flag is half applied: {state}")


def apply_remote_config(r):
    r.apply_remote_config()


def serve(r):
    r.serve()


OPERATIONS = [
    Op(apply_remote_config, (), "start the SETTERS watcher jobs, then run them: flag on"),
    Op(serve, (), "CHECKERS requests, each checking the flag is fully off or fully on"),
]


class Model:
    def apply_remote_config(self):
        return None

    def serve(self):
        return None


def check(buggy, fixed):
    """The self-check every reorder case runs: a request inside the first watcher's gap."""
    outs = []
    for cls in (buggy, fixed):
        r = cls()
        marker = "self._set_percent(100)" if cls is buggy else "self._publish(ON)"
        out = Interleaving(__file__).run(
            {"S": r.apply_remote_config, "C": r.serve},
            [("S", marker), ("C", None), ("S", None)])
        assert not out.hung, out
        outs.append(out)
    bad, good = outs
    assert isinstance(bad.errors.get("C"), HalfAppliedFlag), bad
    assert not good.errors, good
    return (f"a request in the first watcher's gap ({buggy.SETTERS} watchers): Buggy saw (True, 0) "
            f"-> HalfAppliedFlag; Fixed saw the flag off")
