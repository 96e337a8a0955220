"""t35 -- a one-slot mailbox whose get() forgets to empty the slot.

Bug: ``get()`` waits until the slot is full and returns the message, but the
line that marks the slot empty is missing (it was commented out while
debugging).  ``put()`` waits for an empty slot that never comes: the
original's producer blocks forever; here it gives up after its timeout with
``Full``, although the message it was waiting behind has been taken.  A
second ``get()`` returns the same message again.

Origin: SCTBench ``CS/sync01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/sync01_bad.c``; Fray:
``Sync01Bad``).  ``num`` starts at 1 (the slot is full); thread1 waits on
``empty`` while ``num > 0``, then ``num++``; thread2 waits on ``full``
while ``num == 0`` and has its ``num--`` commented out.  thread1 waits
forever in every schedule: no preemption needed.

Port: ``num`` is the slot's fullness and the mailbox carries a message (it
starts with ``"hello"``, as ``num`` starts at 1).  The two condition
variables share one lock, as in the original.  Waits have a timeout (20 ms,
virtual under jostle's controlled mode) and raise ``Full`` / ``Empty``, the
way ``queue.Queue`` does, so that the correct twin, which empties the slot,
never hangs in a scenario with more puts than gets.

Minimal failing scenario (0 preemptions):
    get() returns "hello" and leaves the slot full (prefix, or a worker first)
    put('a') waits for an empty slot -> Full after the timeout (the model: stored)
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

TIMEOUT = 0.02


class Full(Exception):
    pass


class Empty(Exception):
    pass


class Mailbox:
    """A one-message slot between a producer thread and a consumer thread."""

    def __init__(self):
        self.lock = threading.Lock()                    # m
        self.not_full = threading.Condition(self.lock)  # empty
        self.not_empty = threading.Condition(self.lock) # full
        self.message = "hello"
        self.full = True                                # num = 1

    def _take(self):
        return self.message                             # num-- commented out

    def put(self, message, timeout=TIMEOUT):
        with self.lock:
            if not self.not_full.wait_for(lambda: not self.full, timeout):
                raise Full
            self.message, self.full = message, True
            self.not_empty.notify()

    def get(self, timeout=TIMEOUT):
        with self.lock:
            if not self.not_empty.wait_for(lambda: self.full, timeout):
                raise Empty
            message = self._take()
            self.not_full.notify()
            return message


class ConsumingMailbox(Mailbox):
    def _take(self):
        self.full = False
        return self.message


Buggy, Fixed = Mailbox, ConsumingMailbox
EXPECTED_ERRORS = ("Full", "Empty")


def put(r, message):
    r.put(message)


def get(r):
    return r.get()


OPERATIONS = [
    Op(put, (("a", "b"),), "store a message, waiting up to 20 ms for the slot; Full if not"),
    Op(get, (), "take the message, waiting up to 20 ms; Empty if none"),
]


class Model:
    def __init__(self):
        self.message = "hello"

    def put(self, message):
        if self.message is not None:
            raise Full
        self.message = message

    def get(self):
        if self.message is None:
            raise Empty
        message, self.message = self.message, None
        return message


MINIMAL = {
    "workers": 1, "ops_per_worker": 1, "prefix": ["get()"], "preemptions": 0,
    "interleaving": "get() takes 'hello' but leaves the slot full; put('a') waits for an "
                    "empty slot -> Full (the original's producer waits forever)",
}


def _scenario(cls):
    r = cls()
    out = Interleaving().run(
        {"G": r.get, "P": lambda: r.put("a", timeout=0.05)}, [("G", None), ("P", None)])
    assert not out.hung, out
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert bad.results.get("G") == "hello" and isinstance(bad.errors.get("P"), Full), bad
    assert good.results.get("G") == "hello" and not good.errors, good
    return "get() then put(): Buggy put timed out (Full, slot never emptied); Fixed stored it"
