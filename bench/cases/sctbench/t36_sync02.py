"""t36 -- a handoff counter that starts at 2: the producer's second item never fits.

Bug: a producer and a consumer hand items over one at a time through a
counter of pending items (capacity one: the producer waits while anything is
pending).  The counter is initialised to 2, the batch size, instead of 0, so
the consumer consumes two items nobody produced and the producer waits
behind them: the original's producer blocks forever on its second item; here
``produce()`` gives up after its timeout with ``Full``, and ``consume()``
succeeds on an empty handoff.

Origin: SCTBench ``CS/sync02_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/sync02_bad.c``; Fray:
``Sync02Bad``).  ``num = 2``; the producer loops ``N = 2`` times ``while
(num > 0) wait(empty); num++``, the consumer ``N`` times ``while (num == 0)
wait(full); num--``.  Every schedule deadlocks: no preemption needed.

Port: each operation is one item (one iteration of a thread's loop), so
that any mix of producers and consumers is meaningful; waits have a timeout
(20 ms, virtual under jostle's controlled mode) and raise ``Full`` /
``Empty``, as ``queue.Queue`` does, so the twin (counter starting at 0)
never hangs when one side is missing.

Minimal failing scenario (0 preemptions):
    produce() waits while 2 items are pending -> Full after the timeout
    (the model: the handoff is empty, the item is accepted)
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

TIMEOUT = 0.02
PENDING_AT_START = 2          # num = 2; should be 0


class Full(Exception):
    pass


class Empty(Exception):
    pass


class Handoff:
    """One-at-a-time handoff of items between a producer and a consumer thread."""

    pending_at_start = PENDING_AT_START

    def __init__(self):
        self.lock = threading.Lock()                    # m
        self.not_full = threading.Condition(self.lock)  # empty
        self.not_empty = threading.Condition(self.lock) # full
        self.pending = self.pending_at_start            # num

    def produce(self, timeout=TIMEOUT):
        with self.lock:
            if not self.not_full.wait_for(lambda: self.pending == 0, timeout):
                raise Full
            self.pending += 1
            self.not_empty.notify()

    def consume(self, timeout=TIMEOUT):
        with self.lock:
            if not self.not_empty.wait_for(lambda: self.pending > 0, timeout):
                raise Empty
            self.pending -= 1
            self.not_full.notify()


class EmptyHandoff(Handoff):
    pending_at_start = 0


Buggy, Fixed = Handoff, EmptyHandoff
EXPECTED_ERRORS = ("Full", "Empty")


def produce(r):
    r.produce()


def consume(r):
    r.consume()


OPERATIONS = [
    Op(produce, (), "hand over an item, waiting up to 20 ms for the consumer; Full if not"),
    Op(consume, (), "take an item, waiting up to 20 ms; Empty if none"),
]


class Model:
    def __init__(self):
        self.pending = 0

    def produce(self):
        if self.pending:
            raise Full
        self.pending = 1

    def consume(self):
        if not self.pending:
            raise Empty
        self.pending = 0


MINIMAL = {
    "workers": 1, "ops_per_worker": 1, "prefix": [], "preemptions": 0,
    "interleaving": "produce() waits while 2 phantom items are pending -> Full (the "
                    "original's producer waits forever on its second item)",
}


def _scenario(cls):
    r = cls()
    out = Interleaving().run(
        {"P": lambda: r.produce(timeout=0.05), "C": lambda: r.consume(timeout=0.05)},
        [("P", None), ("C", None)])
    assert not out.hung, out
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert isinstance(bad.errors.get("P"), Full) and not bad.errors.get("C"), bad
    assert not good.errors, good
    return ("produce() then consume(): Buggy producer timed out behind phantom items (Full) "
            "and the consumer took one; Fixed handed the item over")
