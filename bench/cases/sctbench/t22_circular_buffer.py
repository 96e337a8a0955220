"""t22 -- log shipping through a ring buffer, checked against the wrong counter.

Bug: a sender and a receiver take turns through two flags (``can_send``,
``can_receive``) and a ring buffer, each in a fixed number of polling rounds.
The sender ships its *round number* and the receiver checks each record
against *its* round number.  Both loops poll without waiting, so a round in
which it is not a side's turn is spent doing nothing: as soon as the sender
wastes a round while the receiver still has rounds left, the numbers drift
apart and the receiver raises ``OutOfOrder`` on records that are in fact in
order.

Origin: SCTBench ``CS/circular_buffer_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/circular_buffer_bad.c``; Fray:
``CircularBufferBad``).  t1 loops ``i < 7``: under ``m``, ``if (send)
insertLogElement(i)``; t2 loops ``i < 7``: ``if (receive)
assert(removeLogElement() == i)``.  It takes two preemptions: the sender
must be preempted after a wasted round, and the receiver after taking one
record, so that the sender ships a later round's number.

Port: the thread bodies are the ``ship()`` and ``drain()`` operations (7
rounds each, one lock hold per round).  The original's buffer never wraps its
read index and reads a wrapped write index as empty, which its 7 records
never reach; here the ring is a correct ring of 10, so repeated operations
stay meaningful.  The twin numbers records by what was actually shipped and
received (two counters) instead of by polling rounds.

Minimal failing scenario (2 workers x 1 op, 2 preemptions):
    S: ship() round 0 ships 0; round 1 is not its turn; preempted
    R: drain() round 0 receives 0 (ok); preempted
    S: round 2 ships 2; rounds 3-6 are not its turn; done
    R: round 1 receives 2, expects 1 -> OutOfOrder
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

SIZE = 10        # BUFFER_MAX / initLog(10)
ROUNDS = 7       # N


class OutOfOrder(Exception):
    pass


class LogShipper:
    """A sender thread ships log records to a receiver thread through a ring buffer."""

    def __init__(self):
        self.lock = threading.Lock()          # m
        self.buffer = [0] * SIZE
        self.first = 0                        # next slot to read
        self.count = 0
        self.can_send = True                  # send
        self.can_receive = False              # receive
        self.shipped = 0
        self.received = 0

    def _insert(self, record):
        self.buffer[(self.first + self.count) % SIZE] = record
        self.count += 1

    def _remove(self):
        record = self.buffer[self.first]
        self.first = (self.first + 1) % SIZE
        self.count -= 1
        return record

    def _next_record(self, round_no):
        return round_no

    def _expected(self, round_no):
        return round_no

    def ship(self):
        for i in range(ROUNDS):
            with self.lock:
                if self.can_send:
                    self._insert(self._next_record(i))
                    self.shipped += 1
                    self.can_send, self.can_receive = False, True

    def drain(self):
        for i in range(ROUNDS):
            with self.lock:
                if self.can_receive:
                    record, expected = self._remove(), self._expected(i)
                    self.received += 1
                    if record != expected:
                        raise OutOfOrder(f"received record {record}, expected {expected}")
                    self.can_receive, self.can_send = False, True


class SequencedLogShipper(LogShipper):
    def _next_record(self, round_no):
        return self.shipped

    def _expected(self, round_no):
        return self.received


Buggy, Fixed = LogShipper, SequencedLogShipper


def ship(r):
    r.ship()


def drain(r):
    r.drain()


OPERATIONS = [
    Op(ship, (), "the sender: 7 polling rounds, shipping a record when it is its turn"),
    Op(drain, (), "the receiver: 7 polling rounds, checking each record's number"),
]


class Model:
    def ship(self):
        return None

    def drain(self):
        return None


def invariant(r):
    assert r.shipped - r.received == r.count, (
        f"shipped {r.shipped}, received {r.received}, {r.count} in the buffer")


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 2,
    "interleaving": "S ships 0, wastes round 1, preempted; R receives 0, preempted; S ships "
                    "2; R's round 1 receives 2, expects 1 -> OutOfOrder",
}


def _scenario(cls):
    r = cls()
    out = Interleaving().run(
        {"S": r.ship, "R": r.drain},
        [("S", ("for i in range(ROUNDS):", 3)), ("R", ("for i in range(ROUNDS):", 2)), ("S", None),
         ("R", None)])
    assert not out.hung, out
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert isinstance(bad.errors.get("R"), OutOfOrder), bad
    assert not good.errors, good
    return "sender wasted a round: Buggy receiver raised OutOfOrder (2 for 1); Fixed in order"
