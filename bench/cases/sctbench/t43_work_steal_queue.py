"""t43 -- work-stealing deque: push trusts a head a thief has just bumped.

Bug: in this THE-protocol work-stealing deque (Cilk-5), the owner pushes and
pops at the tail without a lock, and thieves steal at the head under a lock.
A thief first increments ``head`` and only then checks that an element is
there (restoring ``head`` if not).  ``push()``'s fast path checks for room
with ``t < head + mask + 1``: it counts the slot of an element a thief has
announced but not yet taken as free.  With a full array, a push in that
moment overwrites the element the thief is about to take: the thief gets the
new element, the old one is lost, and the owner later pops the new one a
second time.

Origin: SCTBench ``chess/WorkStealQueue`` (mc-imperial/sctbench,
``benchmarks/chess/WorkStealQueue.cpp`` and ``WorkStealQueue.h``, the CHESS
test of Daan Leijen's queue, built with ``BUG3``; Fray: ``WorkStealQueue``
in its ``sctbench.chess`` set).  The header says "Correct: if (t <
readV(head) + mask && t < MaxSize)"; ``BUG3`` adds ``+ 1``.  The test (one
stealer with 2 attempts, 4 items, initial size 2) checks that every item was
operated on exactly once.

Port: ``readV``/``writeV`` (interlocked reads and writes) are the
``_read_*``/``_write_*`` methods; the CRITICAL_SECTION is ``lock``.  The
original requires push and pop to be called by one bound thread; here they
hold ``owner_lock``, which stands in for that thread when several workers
call them.  Items are compared by linearizability against a deque (push and
pop at the tail, steal at the head) instead of the test's per-item counter:
a stolen element that was never the head, or one returned twice, is a
history no deque produces.  The twin is the header's "Correct" line.

Minimal failing scenario (prefix push(1), push(2): array of 2 full; 2 workers
x 1 op, 1 preemption):
    T1: steal() takes the lock, reads head 0, writes head 1, is preempted
    T2: push(3): tail 2 < head 1 + mask 1 + 1 -> writes slot 2 & 1 = 0, over item 1
    T1: head 0 < tail 3 -> returns slot 0 = 3, where a deque would give 1
"""
import collections
import threading

from ._support import Interleaving, Op

KIND = "thread"

MAX_SIZE = 1024 * 1024
INITIAL_SIZE = 1024          # the size after growing from a mask of 0
INIT_Q_SIZE = 2              # INITQSIZE of WorkStealQueue.cpp (a power of 2)


class WorkStealQueue:
    """Leijen's work-stealing deque: the owner pushes and pops, thieves steal."""

    def __init__(self, size=INIT_Q_SIZE):
        self.lock = threading.Lock()          # the SpinLock (a CRITICAL_SECTION)
        self.owner_lock = threading.Lock()    # the single bound thread
        self.head = 0                         # only updated by steal
        self.tail = 0                         # only updated by push and pop
        self.mask = size - 1
        self.elems = [None] * size

    def _read_head(self):
        return self.head

    def _write_head(self, value):
        self.head = value

    def _read_tail(self):
        return self.tail

    def _write_tail(self, value):
        self.tail = value

    def _has_room(self, t):
        return t < self._read_head() + self.mask + 1        # BUG3

    def steal(self):
        with self.lock:
            h = self._read_head()
            self._write_head(h + 1)
            if h < self._read_tail():
                return self.elems[h & self.mask]
            self._write_head(h)               # empty, or racing a pop: restore the head
            return None

    def pop(self):
        with self.owner_lock:
            t = self._read_tail() - 1
            self._write_tail(t)
            if self._read_head() <= t:
                return self.elems[t & self.mask]
            self._write_tail(t + 1)           # restore the tail
            return self._sync_pop()

    def _sync_pop(self):
        with self.lock:
            t = self._read_tail() - 1
            self._write_tail(t)
            found = None
            if self._read_head() <= t:
                found = self.elems[t & self.mask]
            else:
                self._write_tail(t + 1)
            if self._read_head() > t:         # empty: reset head and tail
                self._write_head(0)
                self._write_tail(0)
                found = None
            return found

    def push(self, item):
        with self.owner_lock:
            t = self._read_tail()
            if self._has_room(t) and t < MAX_SIZE:
                self.elems[t & self.mask] = item
                self._write_tail(t + 1)       # only once the slot is written
            else:
                self._sync_push(item)

    def _sync_push(self, item):
        with self.lock:
            h = self._read_head()
            count = self._read_tail() - h
            h &= self.mask
            self._write_head(h)
            self._write_tail(h + count)
            if count >= self.mask:            # grow
                newsize = INITIAL_SIZE if self.mask == 0 else 2 * (self.mask + 1)
                assert newsize < MAX_SIZE
                self.elems = [self.elems[(h + i) & self.mask] for i in range(count)] + [
                    None] * (newsize - count)
                self.mask = newsize - 1
                self._write_head(0)
                self._write_tail(count)
            assert count < self.mask
            t = self._read_tail()
            self.elems[t & self.mask] = item
            self._write_tail(t + 1)


class CorrectWorkStealQueue(WorkStealQueue):
    def _has_room(self, t):
        return t < self._read_head() + self.mask            # one slot kept free for a thief


Buggy, Fixed = WorkStealQueue, CorrectWorkStealQueue


def push(r, item):
    r.push(item)


def pop(r):
    return r.pop()


def steal(r):
    return r.steal()


OPERATIONS = [
    Op(push, ((1, 2, 3),), "owner: push an item at the tail"),
    Op(pop, (), "owner: pop the newest item, or None"),
    Op(steal, (), "thief: take the oldest item, or None"),
]


class Model:
    def __init__(self):
        self.items = collections.deque()

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop() if self.items else None

    def steal(self):
        return self.items.popleft() if self.items else None


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": ["push(1)", "push(2)"], "preemptions": 1,
    "interleaving": "T1: steal() writes head 1, preempted before reading tail; T2: push(3) "
                    "sees room and overwrites slot 0 (item 1); T1 steals 3 -> not a deque",
}


def _scenario(cls):
    r = cls()
    r.push(1)
    r.push(2)
    out = Interleaving().run(
        {"T1": r.steal, "T2": lambda: r.push(3)},
        [("T1", "if h < self._read_tail():"), ("T2", None), ("T1", None)])
    assert not out.hung and not out.errors, out
    return out.results["T1"], [r.pop() for _ in range(3)]


def self_check():
    (bad, bad_rest), (good, good_rest) = _scenario(Buggy), _scenario(Fixed)
    assert bad == 3 and bad_rest == [3, 2, None], (bad, bad_rest)
    assert good == 1 and good_rest == [3, 2, None], (good, good_rest)
    return ("steal() racing push(3) on a full array: Buggy stole 3 (item 1 lost, 3 popped "
            "again); Fixed stole 1")
