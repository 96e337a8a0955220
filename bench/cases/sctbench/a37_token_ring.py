"""a37 -- async replicas synced around a ring in the wrong order never agree.

Bug: as in ``t37_token_ring``: replica 1 takes ``(v3 + 1) % 4``, replica 2
copies replica 1, replica 3 copies replica 2, each once, each after
fetching its upstream's value; ``audit()`` asserts they agree once all have
synced.  Sync tasks that complete out of ring order leave them disagreeing.

Origin: SCTBench ``CS/token_ring_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/token_ring_bad.c``; Fray:
``TokenRingBad``); see ``t37_token_ring``.  The atomic blocks become the
code after each task's await (a coroutine is not interrupted between
awaits), so only the order of tasks matters, as in the original.  The twin
passes the token: a replica whose upstream has not synced skips its turn.

Minimal failing scenario (0 preemptions):
    sync(2), sync(1), sync(3) complete in that order
    audit() sees (2, 1, 1) -> ReplicasDiverged
"""
import asyncio

from ._support import Op, run_async

KIND = "asyncio"

_INITIAL = {1: 1, 2: 2, 3: 1}


class ReplicasDiverged(Exception):
    pass


class AsyncTokenRing:
    """Three replicas that pass a version number around a ring, each syncing once."""

    def __init__(self):
        self.versions = dict(_INITIAL)
        self.synced = set()

    async def _fetch(self, replica):
        await asyncio.sleep(0)              # ask the upstream replica (I/O)

    def _may_sync(self, replica):
        return True

    async def sync(self, replica):
        await self._fetch(replica)
        if replica in self.synced or not self._may_sync(replica):
            return
        v = self.versions
        v[replica] = (v[3] + 1) % 4 if replica == 1 else v[replica - 1]
        self.synced.add(replica)

    async def audit(self):
        if len(self.synced) == 3:
            v = self.versions
            if not v[1] == v[2] == v[3]:
                raise ReplicasDiverged(f"versions {v[1]}, {v[2]}, {v[3]}")


class TokenPassingAsyncRing(AsyncTokenRing):
    def _may_sync(self, replica):
        return replica == 1 or replica - 1 in self.synced


Buggy, Fixed = AsyncTokenRing, TokenPassingAsyncRing


async def sync(r, replica):
    await r.sync(replica)


async def audit(r):
    await r.audit()


OPERATIONS = [
    Op(sync, ((1, 2, 3),), "sync a replica from its upstream (once per replica)"),
    Op(audit, (), "check that the replicas agree once all have synced"),
]


class Model:
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
    "interleaving": "sync(2), sync(1), sync(3) complete in that order; audit() -> "
                    "(2, 1, 1) -> ReplicasDiverged (task order only)",
}


def _scenario(cls, order):
    async def main():
        r = cls()
        for replica in order:
            await r.sync(replica)
        outcome = await asyncio.gather(r.audit(), return_exceptions=True)
        return outcome[0], (r.versions[1], r.versions[2], r.versions[3])
    return run_async(main())


def self_check():
    for cls in (Buggy, Fixed):
        assert _scenario(cls, (1, 2, 3)) == (None, (2, 2, 2)), cls.__name__
    (bad, bad_v), (good, good_v) = _scenario(Buggy, (2, 1, 3)), _scenario(Fixed, (2, 1, 3))
    assert isinstance(bad, ReplicasDiverged) and bad_v == (2, 1, 1), (bad, bad_v)
    assert good is None and good_v == (2, 2, 1), (good, good_v)
    return "order 2, 1, 3: Buggy (2, 1, 1) -> ReplicasDiverged; Fixed skipped 2 and 3"
