"""a24 -- an async progress probe with no label for "finished".

Bug: as in ``t24_lazy01``: ``status()`` maps the units done (0-3) through a
table that stops at "large part done", assuming the dashboard task polls
while the job runs.  When both part uploads have completed first, it raises
``IndexError``.

Origin: SCTBench ``CS/lazy01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/lazy01_bad.c``; Fray:
``Lazy01Bad``); see ``t24_lazy01``.  The threads become tasks and the mutex
an ``asyncio.Lock``; each part awaits its upload before it is counted.  No
preemption or cancellation: only an order of tasks.

Minimal failing scenario (0 preemptions):
    finish('small') and finish('large') complete (prefix, or tasks that run first)
    status() -> _STAGES[3] -> IndexError
"""
import asyncio

from ._support import Op, run_async

KIND = "asyncio"

PARTS = {"small": 1, "large": 2}
_STAGES = ("waiting", "small part done", "large part done")
_ALL_STAGES = (*_STAGES, "complete")


class AsyncJobProgress:
    """Progress of a two-part upload, updated by the part tasks, polled by a dashboard."""

    stages = _STAGES

    def __init__(self):
        self._lock = asyncio.Lock()
        self._finished = set()
        self._units = 0

    async def _upload(self, part):
        await asyncio.sleep(0)              # send the part (I/O)

    async def finish(self, part):
        await self._upload(part)
        async with self._lock:
            if part not in self._finished:
                self._finished.add(part)
                self._units += PARTS[part]

    async def status(self):
        async with self._lock:
            return self.stages[self._units]


class CompleteAsyncJobProgress(AsyncJobProgress):
    stages = _ALL_STAGES


Buggy, Fixed = AsyncJobProgress, CompleteAsyncJobProgress


async def finish(r, part):
    await r.finish(part)


async def status(r):
    return await r.status()


OPERATIONS = [
    Op(finish, (("small", "large"),), "upload a part and count it (1 or 2 units; idempotent)"),
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
    "interleaving": "both uploads complete first; status() indexes stage 3 of a 3-entry "
                    "table -> IndexError (task order only)",
}


def _scenario(cls):
    async def main():
        r = cls()
        early = await asyncio.gather(r.status(), r.finish("small"), r.finish("large"))
        late = await asyncio.gather(r.status(), return_exceptions=True)
        return early[0], late[0]
    return run_async(main())


def self_check():
    (bad_early, bad_late), (good_early, good_late) = _scenario(Buggy), _scenario(Fixed)
    assert bad_early == good_early == "waiting", (bad_early, good_early)
    assert isinstance(bad_late, IndexError), bad_late
    assert good_late == "complete", good_late
    return "probe after both uploads: Buggy raised IndexError; Fixed answered 'complete'"
