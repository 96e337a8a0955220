"""t37 -- replicas synced around a ring in the wrong order never agree.

Bug: three replicas of a version number sync once each: replica 1 takes
``(v3 + 1) % 4``, replica 2 copies replica 1, replica 3 copies replica 2.
``audit()`` asserts that once all three have synced they agree.  That holds
only if each replica syncs after its upstream (ring order 1, 2, 3, or 1, 3, 2
by luck); nothing enforces it, so e.g. 2, 1, 3 leaves (2, 1, 1) and the
audit raises ``ReplicasDiverged``.

Origin: SCTBench ``CS/token_ring_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/token_ring_bad.c``; Fray:
``TokenRingBad``).  Threads t1-t3 each update their
``x_i`` from the previous one and set ``flag_i`` inside an
``__ESBMC_atomic`` block; t4 asserts ``x1 == x2 == x3`` once all flags are
set.  Each body is atomic, so the bug is an ordering bug: no preemption,
only an order other than creation order (4 of the 6 orders fail).

Port: the atomic blocks hold one lock; each replica syncs at most once, like
each thread runs once (a second ``sync`` of the same replica is a no-op).
The twin passes the token: a replica whose upstream has not synced yet skips
its turn (and may sync later), so every complete round is in ring order.

Minimal failing scenario (0 preemptions):
    sync(2) copies v1=1; sync(1) sets v1=(1+1)%4=2; sync(3) copies v2=1
    audit() sees (2, 1, 1) -> ReplicasDiverged
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

_INITIAL = {1: 1, 2: 2, 3: 1}                # x1, x2, x3 of token_ring_bad.c


class ReplicasDiverged(Exception):
    pass


class TokenRing:
    """Three replicas that pass a version number around a ring, each syncing once."""

    def __init__(self):
        self._lock = threading.Lock()
        self.versions = dict(_INITIAL)
        self.synced = set()

    def _may_sync(self, replica):
        return True

    def _pull(self, replica):
        v = self.versions
        v[replica] = (v[3] + 1) % 4 if replica == 1 else v[replica - 1]

    def sync(self, replica):
        with self._lock:
            if replica in self.synced or not self._may_sync(replica):
                return
            self._pull(replica)
            self.synced.add(replica)

    def audit(self):
        """Raise ReplicasDiverged if every replica synced and they disagree."""
        with self._lock:
            if len(self.synced) == 3:
                v = self.versions
                if not v[1] == v[2] == v[3]:
                    raise ReplicasDiverged(f"versions {v[1]}, {v[2]}, {v[3]}")

    def snapshot(self):
        with self._lock:
            return (self.versions[1], self.versions[2], self.versions[3])


class TokenPassingRing(TokenRing):
    def _may_sync(self, replica):
        return replica == 1 or replica - 1 in self.synced


Buggy, Fixed = TokenRing, TokenPassingRing


def sync(r, replica):
    r.sync(replica)


def audit(r):
    r.audit()


OPERATIONS = [
    Op(sync, ((1, 2, 3),), "sync a replica from its upstream (once per replica)"),
    Op(audit, (), "check that the replicas agree once all have synced"),
]


class Model:
    """The ring as specified: a replica takes its turn only after its upstream."""

    def __init__(self):
        self.versions = dict(_INITIAL)
        self.synced = set()

    def sync(self, replica):
        upstream_done = replica == 1 or replica - 1 in self.synced
        if replica not in self.synced and upstream_done:
            v = self.versions
            v[replica] = (v[3] + 1) % 4 if replica == 1 else v[replica - 1]
            self.synced.add(replica)

    def audit(self):
        return None


MINIMAL = {
    "workers": 1, "ops_per_worker": 1, "prefix": ["sync(2)", "sync(1)"], "preemptions": 0,
    "interleaving": "sync(2) copies v1=1; sync(1) sets v1=2; sync(3) copies v2=1; "
                    "audit() -> (2, 1, 1) -> ReplicasDiverged (an order, no preemption)",
}


def _scenario(cls, order):
    r = cls()
    threads = {f"R{n}": (lambda n=n: r.sync(n)) for n in (1, 2, 3)}
    threads["A"] = r.audit
    out = Interleaving().run(threads, [(f"R{n}", None) for n in order] + [("A", None)])
    assert not out.hung, out
    return out, r.snapshot()


def self_check():
    for cls in (Buggy, Fixed):                   # ring order: both agree
        ok, versions = _scenario(cls, (1, 2, 3))
        assert not ok.errors and versions == (2, 2, 2), (cls.__name__, ok, versions)
    (bad, bad_v), (good, good_v) = _scenario(Buggy, (2, 1, 3)), _scenario(Fixed, (2, 1, 3))
    assert isinstance(bad.errors.get("A"), ReplicasDiverged) and bad_v == (2, 1, 1), bad
    assert not good.errors and good_v == (2, 2, 1), (good, good_v)   # 2 and 3 wait their turn
    return ("order 2, 1, 3: Buggy replicas (2, 1, 1) -> ReplicasDiverged; Fixed skipped 2 "
            "and 3 (not their turn), audit passed")
