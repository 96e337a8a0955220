"""a23 -- async ABBA deadlock between adding and removing documents.

Bug: as in ``t23_deadlock01``, with ``asyncio.Lock``: ``add()`` takes the
store lock, awaits a read of the document, then takes the index lock;
``remove()`` takes the index lock, awaits a lookup, then the store lock.
When both tasks reach their await holding their first lock, each waits
forever for the other's: the loop has nothing left to run.

Origin: SCTBench ``CS/deadlock01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/deadlock01_bad.c``; Fray:
``Deadlock01Bad``); see ``t23_deadlock01``.  An ``asyncio.Lock`` that is
free is taken without yielding, so the port has an I/O await between the
two acquisitions (without one, each task would take both locks at once and
the deadlock could not happen).  Task order alone triggers it: two tasks
started together both pass their first lock before either resumes.

Minimal failing scenario (2 workers x 1 op, 0 preemptions):
    T1: add() holds the store lock, awaits the read
    T2: remove() holds the index lock, awaits the lookup
    T1 waits for the index lock, T2 for the store lock -> deadlock
"""
import asyncio

from ._support import Op, run_async

KIND = "asyncio"


class AsyncSearchIndex:
    """Documents and their index, each behind its own asyncio lock."""

    def __init__(self):
        self.store_lock = asyncio.Lock()     # a
        self.index_lock = asyncio.Lock()     # b
        self.documents = 1                   # counter

    async def _io(self):
        await asyncio.sleep(0)               # read the document / the index entry

    async def add(self):
        async with self.store_lock:
            await self._io()
            async with self.index_lock:
                self.documents += 1
                return self.documents

    async def remove(self):
        async with self.index_lock:
            await self._io()
            async with self.store_lock:
                self.documents -= 1
                return self.documents

    async def count(self):
        async with self.store_lock:
            return self.documents


class OrderedAsyncSearchIndex(AsyncSearchIndex):
    async def remove(self):
        async with self.store_lock:
            await self._io()
            async with self.index_lock:
                self.documents -= 1
                return self.documents


Buggy, Fixed = AsyncSearchIndex, OrderedAsyncSearchIndex


async def add(r):
    return await r.add()


async def remove(r):
    return await r.remove()


async def count(r):
    return await r.count()


OPERATIONS = [
    Op(add, (), "add a document; returns the new count"),
    Op(remove, (), "remove a document; returns the new count"),
    Op(count, (), "number of documents", observer=True),
]


class Model:
    def __init__(self):
        self.documents = 1

    def add(self):
        self.documents += 1
        return self.documents

    def remove(self):
        self.documents -= 1
        return self.documents

    def count(self):
        return self.documents


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 0,
    "interleaving": "T1: add() holds the store lock, awaits; T2: remove() holds the index "
                    "lock, awaits; each then waits for the other's lock -> deadlock",
}


def _scenario(cls):
    async def main():
        r = cls()                            # FIFO loop: each task reaches its I/O in turn
        tasks = [asyncio.ensure_future(r.add()), asyncio.ensure_future(r.remove())]
        for _ in range(10):                  # ample steps for both tasks to finish
            await asyncio.sleep(0)
        pending = [t for t in tasks if not t.done()]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return len(pending), [t.result() for t in tasks if t not in pending]
    return run_async(main())


def self_check():
    (bad_stuck, _), (good_stuck, good) = _scenario(Buggy), _scenario(Fixed)
    assert bad_stuck == 2, bad_stuck
    assert good_stuck == 0 and sorted(good) == [1, 2], (good_stuck, good)
    return "both tasks inside their I/O: Buggy add() and remove() deadlocked; Fixed completed"
