"""t26 -- a message channel whose consumer checks messages against the wrong log entry.

Bug: a producer and a consumer take turns through two flags and a FIFO
queue.  The producer records every message it sends in a log indexed by its
*loop iteration*; the consumer compares each message it receives with the
log entry of *its* loop iteration.  Both loops poll without waiting, so the
two iteration counts drift apart as soon as one side spends an iteration
waiting for its turn: the consumer then compares a message with a log entry
that belongs to another message (or was never written) and raises
``OutOfOrder`` although the messages arrive in order.

Origin: SCTBench ``CS/queue_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/queue_bad.c``; Fray:
``QueueBad``).  t1 enqueues 0 (``stored_elements[0]``),
then loops ``i < SIZE - 1`` and, when ``enqueue_flag`` is set, enqueues
``++value`` and stores it in ``stored_elements[i + 1]``; t2 loops ``i <
SIZE`` and, when ``dequeue_flag`` is set, asserts ``dequeue() ==
stored_elements[i]``.  One preemption suffices: the consumer spends its
first iteration before anything is sent, is preempted, and then compares
message 0 with ``stored_elements[1]``.

Port: the thread bodies are the ``produce()`` and ``consume()`` operations
(SIZE = 20 as in the original, one lock hold per iteration).  The queue is a
``deque``: the original's ring wraps to index 1 and writes one past its end,
which its 20 messages never reach.  The log starts zeroed, as the C array
is.  Like the original, ``produce()`` enqueues its first message without
waiting for its turn, so a second ``produce()`` after a partly drained
session also breaks the check without any preemption (4 sequential
operations); the smallest failure is still the preempted one.  The twin logs
messages in send order and checks the n-th message received against the
n-th entry.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    C: consume() iteration 0: nothing to receive; preempted
    P: produce() sends 0 (log[0]) and 1 (log[1]); the rest is not its turn
    C: iteration 1 receives 0, compares with log[1] = 1 -> OutOfOrder
"""
import collections
import threading

from ._support import Interleaving, Op

KIND = "thread"

SIZE = 20


class OutOfOrder(Exception):
    pass


class MessageChannel:
    """A producer thread hands messages to a consumer thread, taking turns by flags."""

    def __init__(self):
        self.lock = threading.Lock()                # mutex
        self.queue = collections.deque()
        self.log = [0] * SIZE                       # stored_elements
        self.can_send = True                        # enqueue_flag
        self.can_receive = False                    # dequeue_flag
        self.sent = 0
        self.received = 0

    def _send(self, iteration, value):
        self.queue.append(value)
        self.log[iteration] = value
        self.sent += 1

    def _logged(self, iteration):
        return self.log[iteration]

    def produce(self):
        value = 0
        with self.lock:
            self._send(0, value)
        for i in range(SIZE - 1):
            with self.lock:
                if self.can_send:
                    value += 1
                    self._send(i + 1, value)
                    self.can_send, self.can_receive = False, True

    def consume(self):
        for i in range(SIZE):
            with self.lock:
                if self.can_receive:
                    message, expected = self.queue.popleft(), self._logged(i)
                    self.received += 1
                    if message != expected:
                        raise OutOfOrder(f"received {message}, log says {expected}")
                    self.can_receive, self.can_send = False, True


class SequencedMessageChannel(MessageChannel):
    def __init__(self):
        super().__init__()
        self.log = []

    def _send(self, iteration, value):
        self.queue.append(value)
        self.log.append(value)
        self.sent += 1

    def _logged(self, iteration):
        return self.log[self.received]


Buggy, Fixed = MessageChannel, SequencedMessageChannel


def produce(r):
    r.produce()


def consume(r):
    r.consume()


OPERATIONS = [
    Op(produce, (), "the producer: send 0, then poll 19 times, sending when it is its turn"),
    Op(consume, (), "the consumer: poll 20 times, checking each message against the log"),
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
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "C: consume() polls once before anything is sent, preempted; P: "
                    "produce() sends 0 and 1; C receives 0, compares with log[1] = 1 "
                    "-> OutOfOrder",
}


def _scenario(cls):
    r = cls()
    out = Interleaving().run(
        {"P": r.produce, "C": r.consume},
        [("C", ("for i in range(SIZE):", 2)), ("P", None), ("C", None)])
    assert not out.hung, out
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert isinstance(bad.errors.get("C"), OutOfOrder), bad
    assert not good.errors, good
    return "consumer polled first: Buggy compared message 0 with log[1] -> OutOfOrder; Fixed ok"
