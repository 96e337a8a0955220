"""a34 -- an async consumer pops while a "started" flag is up, overtaking the producer.

Bug: as in ``t34_stack``: the producer task fetches each task (I/O) and pushes
it, raising ``ready`` with the first push; the consumer task makes as many
pop attempts as the batch has tasks, one per loop tick, popping whenever
``ready`` is up.  If the consumer gets two ticks while the producer waits
for its next fetch, it pops the stack empty and then pops an empty list:
``IndexError``.

Origin: SCTBench ``CS/stack_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/stack_bad.c``; Fray:
``StackBad``); see ``t34_stack``.  The threads become tasks; the original's
preemption of the producer between two pushes is the producer awaiting its
next fetch while the consumer's tick comes round twice (a choice of which
ready task the loop runs, no cancellation).  The consumer lowers ``ready``
when done, and the twin pops only a non-empty stack.

Minimal failing scenario (2 workers x 1 op, 0 preemptions):
    P: produce() pushes task 0, raises ready, awaits the fetch of task 1
    C: consume() pops 0, ticks, and runs again before P: pops [] -> IndexError
"""
import asyncio

from ._support import Op, run_async

KIND = "asyncio"

SIZE = 10


class AsyncTaskStack:
    """A batch of tasks handed from a producer task to a consumer task."""

    def __init__(self):
        self.tasks = []
        self.ready = False                     # flag
        self.pushed = 0
        self.popped = 0

    async def _fetch(self, i):
        await asyncio.sleep(0)                 # load the task (I/O)
        return i

    async def _tick(self):
        await asyncio.sleep(0)                 # handle the popped task / poll again

    def _can_pop(self):
        return self.ready

    async def produce(self):
        for i in range(SIZE):
            task = await self._fetch(i)
            self.tasks.append(task)
            self.pushed += 1
            self.ready = True

    async def consume(self):
        for _ in range(SIZE):
            if self._can_pop():
                self.tasks.pop()
                self.popped += 1
            await self._tick()
        self.ready = False


class CheckingAsyncTaskStack(AsyncTaskStack):
    def _can_pop(self):
        return self.ready and bool(self.tasks)


Buggy, Fixed = AsyncTaskStack, CheckingAsyncTaskStack


async def produce(r):
    await r.produce()


async def consume(r):
    await r.consume()


OPERATIONS = [
    Op(produce, (), "the producer: fetch and push a batch of 10 tasks"),
    Op(consume, (), "the consumer: 10 pop attempts, one per tick, while the batch is ready"),
]


class Model:
    def produce(self):
        return None

    def consume(self):
        return None


def invariant(r):
    assert r.pushed - r.popped == len(r.tasks), (
        f"pushed {r.pushed}, popped {r.popped}, {len(r.tasks)} on the stack")


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 0,
    "interleaving": "P pushes task 0 and awaits its next fetch; C pops 0, and its next "
                    "tick runs before P's fetch returns: pops [] -> IndexError",
}


def _scenario(cls):
    async def main():
        r = cls()
        ticks = 0
        consumer_ticked_twice = asyncio.Event()

        async def fetch(i):                  # task 1 arrives after two consumer ticks
            if i:
                await consumer_ticked_twice.wait()
            return i

        async def tick():
            nonlocal ticks
            ticks += 1
            if ticks == 2:
                consumer_ticked_twice.set()
            await asyncio.sleep(0)

        r._fetch, r._tick = fetch, tick
        producer = asyncio.ensure_future(r.produce())
        consumer = asyncio.ensure_future(r.consume())
        consumer.add_done_callback(lambda _: consumer_ticked_twice.set())
        results = await asyncio.gather(producer, consumer, return_exceptions=True)
        return [x for x in results if isinstance(x, BaseException)]
    return run_async(main())


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert len(bad) == 1 and isinstance(bad[0], IndexError), bad
    assert good == [], good
    return "consumer ticked twice between fetches: Buggy popped [] (IndexError); Fixed skipped"
