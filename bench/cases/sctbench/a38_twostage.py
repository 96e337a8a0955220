"""a38 -- an async record published in two locked stages, read between them.

Bug: as in ``t38_twostage``: ``publish()`` sets the primary value under one
``asyncio.Lock``, awaits the replication of that stage, then sets the
derived value (primary + 1) under another.  A reader task that runs during
the replication sees primary 1 with derived 0 and raises ``TornRecord``.

Origin: SCTBench ``CS/twostage_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/twostage_bad.c``; Fray:
``TwostageBad``); see ``_twostage``.  The threads become tasks; the gap
between the stages is an await (replicating stage 1), since without one the
two stages could not be separated on an event loop.  No preemption or
cancellation: a reader task that gets the loop during the await is enough
(a cancellation during that await tears the record too).  One writer, as in
``twostage`` (the 99-writer variant is thread-only).  The twin replicates
before it writes, and writes both stages under the primary lock with no
await in between, so neither a reader nor a cancellation can see half of it.

Minimal failing scenario (2 workers x 1 op, 0 preemptions):
    W: publish() sets primary = 1, awaits replication
    R: read() sees primary 1, derived 0 -> TornRecord
"""
import asyncio

from ._support import Op, run_async

KIND = "asyncio"


class TornRecord(Exception):
    pass


class AsyncTwoStagePublisher:
    """A primary value and a value derived from it, each behind its own asyncio lock."""

    def __init__(self):
        self.primary_lock = asyncio.Lock()      # data1Lock
        self.derived_lock = asyncio.Lock()      # data2Lock
        self.primary = 0
        self.derived = 0

    async def _replicate(self):
        await asyncio.sleep(0)                  # ship stage 1 to the replicas (I/O)

    async def publish(self):
        async with self.primary_lock:
            self.primary = 1
        await self._replicate()
        async with self.derived_lock:
            self.derived = self.primary + 1

    async def read(self):
        async with self.primary_lock:
            if self.primary == 0:
                return None
            primary = self.primary
        async with self.derived_lock:
            derived = self.derived
        if derived != primary + 1:
            raise TornRecord(f"derived {derived} for primary {primary}")
        return (primary, derived)


class AtomicAsyncTwoStagePublisher(AsyncTwoStagePublisher):
    async def publish(self):
        async with self.primary_lock:
            await self._replicate()             # before anything is visible
            self.primary = 1
            async with self.derived_lock:       # free: only taken under primary_lock
                self.derived = self.primary + 1

    async def read(self):
        async with self.primary_lock:
            if self.primary == 0:
                return None
            primary = self.primary
            async with self.derived_lock:
                derived = self.derived
        if derived != primary + 1:
            raise TornRecord(f"derived {derived} for primary {primary}")
        return (primary, derived)


Buggy, Fixed = AsyncTwoStagePublisher, AtomicAsyncTwoStagePublisher


async def publish(r):
    await r.publish()


async def read(r):
    return await r.read()


OPERATIONS = [
    Op(publish, (), "publish the record in two stages: (1, 2)"),
    Op(read, (), "the record (primary, derived), or None before the first stage",
       observer=True),
]


class Model:
    def __init__(self):
        self.published = False

    def publish(self):
        self.published = True

    def read(self):
        return (1, 2) if self.published else None


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 0,
    "interleaving": "W: publish() sets primary = 1, awaits replication; R: read() sees "
                    "(1, 0) -> TornRecord",
}


def _scenario(cls):
    async def main():
        r = cls()
        stage1 = asyncio.Event()
        read_done = asyncio.Event()

        async def replicate():               # the reader runs while stage 1 replicates
            stage1.set()
            await read_done.wait()

        r._replicate = replicate
        writer = asyncio.ensure_future(r.publish())
        await stage1.wait()
        reader = asyncio.ensure_future(r.read())
        await asyncio.sleep(0)               # one step: the reader reads, or waits for a lock
        read_done.set()
        await writer
        outcome = await asyncio.gather(reader, return_exceptions=True)
        return outcome[0]
    return run_async(main())


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert isinstance(bad, TornRecord), bad
    assert good == (1, 2), good
    return "a read during stage 1's replication: Buggy raised TornRecord; Fixed read (1, 2)"
