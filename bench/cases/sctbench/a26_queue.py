"""a26 -- async message channel whose consumer checks messages against the wrong log entry.

Bug: as in ``t26_queue``: producer and consumer tasks take turns through two
flags, polling once per loop tick; the producer logs each message under its
loop iteration and the consumer checks each message against the log entry
of *its* iteration.  When the consumer task starts ticking before the
producer has sent anything, the iteration counts are off by one from then
on and the first message received is compared with the second log entry:
``OutOfOrder``.

Origin: SCTBench ``CS/queue_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/queue_bad.c``; Fray:
``QueueBad``); see ``t26_queue``.  The polling loops become tasks that yield
once per iteration (``await asyncio.sleep(0)``, a busy poll on an event
loop), so the original's one preemption (the consumer's first iteration
before the producer's) is a task order: the consumer's first tick runs
first.  The twin logs messages in send order.

Minimal failing scenario (2 workers x 1 op, 0 preemptions):
    C: consume() ticks; P: produce() sends 0, ticks; C: nothing yet, ticks
    P: sends 1 (log[1]); C: receives 0, compares with log[1] = 1 -> OutOfOrder
"""
import asyncio
import collections

from ._support import Op, run_async

KIND = "asyncio"

SIZE = 20


class OutOfOrder(Exception):
    pass


class AsyncMessageChannel:
    """A producer task hands messages to a consumer task, taking turns by flags."""

    def __init__(self):
        self.queue = collections.deque()
        self.log = [0] * SIZE                      # stored_elements
        self.can_send = True                       # enqueue_flag
        self.can_receive = False                   # dequeue_flag
        self.sent = 0
        self.received = 0

    async def _tick(self):
        await asyncio.sleep(0)                     # poll again on the next loop iteration

    def _send(self, iteration, value):
        self.queue.append(value)
        self.log[iteration] = value
        self.sent += 1

    def _logged(self, iteration):
        return self.log[iteration]

    async def produce(self):
        value = 0
        self._send(0, value)
        for i in range(SIZE - 1):
            await self._tick()
            if self.can_send:
                value += 1
                self._send(i + 1, value)
                self.can_send, self.can_receive = False, True

    async def consume(self):
        for i in range(SIZE):
            await self._tick()
            if self.can_receive:
                message, expected = self.queue.popleft(), self._logged(i)
                self.received += 1
                if message != expected:
                    raise OutOfOrder(f"received {message}, log says {expected}")
                self.can_receive, self.can_send = False, True


class SequencedAsyncMessageChannel(AsyncMessageChannel):
    def __init__(self):
        super().__init__()
        self.log = []

    def _send(self, iteration, value):
        self.queue.append(value)
        self.log.append(value)
        self.sent += 1

    def _logged(self, iteration):
        return self.log[self.received]


Buggy, Fixed = AsyncMessageChannel, SequencedAsyncMessageChannel


async def produce(r):
    await r.produce()


async def consume(r):
    await r.consume()


OPERATIONS = [
    Op(produce, (), "the producer: send 0, then poll 19 ticks, sending when it is its turn"),
    Op(consume, (), "the consumer: poll 20 ticks, checking each message against the log"),
]


class Model:
    def produce(self):
        return None

    def consume(self):
        return None


def invariant(r):
    assert r.sent - r.received == len(r.queue), (
        f"sent {r.sent}, received {r.received}, {len(r.queue)} queued")


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 0,
    "interleaving": "the consumer task ticks first; the producer sends 0 and 1; the "
                    "consumer receives 0, compares with log[1] = 1 -> OutOfOrder",
}


def _scenario(cls, consumer_first):
    async def main():
        r = cls()
        ops = [r.consume(), r.produce()] if consumer_first else [r.produce(), r.consume()]
        results = await asyncio.gather(*ops, return_exceptions=True)
        return [x for x in results if isinstance(x, BaseException)]
    return run_async(main())


def self_check():
    for cls in (Buggy, Fixed):                   # the original's order: lockstep, fine
        assert _scenario(cls, consumer_first=False) == [], cls.__name__
    bad, good = _scenario(Buggy, consumer_first=True), _scenario(Fixed, consumer_first=True)
    assert len(bad) == 1 and isinstance(bad[0], OutOfOrder), bad
    assert good == [], good
    return "consumer task first: Buggy compared message 0 with log[1] -> OutOfOrder; Fixed ok"
