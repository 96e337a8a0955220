"""t34 -- a consumer pops while a "started" flag is up, overtaking the producer.

Bug: a producer pushes a batch of tasks onto a stack, one lock hold per push,
and raises ``ready`` with its first push.  The consumer makes as many pop
attempts as the batch has tasks and pops whenever ``ready`` is up, trusting
it to mean "there is a task".  It only means the producer has started: a
consumer that runs between two pushes pops the stack empty and then pops an
empty list (``IndexError``).

Origin: SCTBench ``CS/stack_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/stack_bad.c``; Fray:
``StackBad``).  t1 pushes 0..9, setting ``flag = TRUE`` each time; t2 makes
10 attempts, each ``if (flag) assert(pop(arr) != UNDERFLOW)``, all under
``m``.  One preemption of t1 after its first push lets t2 pop twice.

Port: the thread bodies are the ``produce()`` and ``consume()`` operations
(SIZE = 10 pushes and pop attempts).  The stack is a list, so it never
overflows when several batches are pushed (the original pushes one).  The
consumer lowers ``ready`` when it has made its attempts (the original never
needs to: it runs once), so operations in any sequential order are correct
and only an interleaving fails.  The twin pops only a non-empty stack.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    P: produce() pushes 0, raises ready, is preempted
    C: consume() pops 0; next attempt: ready is up, the stack is empty -> IndexError
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

SIZE = 10


class TaskStack:
    """A batch of tasks handed from a producer thread to a consumer thread."""

    def __init__(self):
        self.lock = threading.Lock()           # m
        self.tasks = []
        self.ready = False                     # flag
        self.pushed = 0
        self.popped = 0

    def _can_pop(self):
        return self.ready

    def produce(self):
        for i in range(SIZE):
            with self.lock:
                self.tasks.append(i)
                self.pushed += 1
                self.ready = True

    def consume(self):
        for _ in range(SIZE):
            with self.lock:
                if self._can_pop():
                    self.tasks.pop()
                    self.popped += 1
        with self.lock:
            self.ready = False


class CheckingTaskStack(TaskStack):
    def _can_pop(self):
        return self.ready and bool(self.tasks)


Buggy, Fixed = TaskStack, CheckingTaskStack


def produce(r):
    r.produce()


def consume(r):
    r.consume()


OPERATIONS = [
    Op(produce, (), "the producer: push a batch of 10 tasks"),
    Op(consume, (), "the consumer: 10 pop attempts while the batch is ready"),
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
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "P: produce() pushes 0 and raises ready, preempted; C: consume() pops "
                    "0, then pops the empty stack -> IndexError",
}


def _scenario(cls):
    r = cls()
    out = Interleaving().run(
        {"P": r.produce, "C": r.consume},
        [("P", ("for i in range(SIZE):", 2)), ("C", None), ("P", None)])
    assert not out.hung, out
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert isinstance(bad.errors.get("C"), IndexError), bad
    assert not good.errors, good
    return ("consumer between two pushes: Buggy popped an empty stack (IndexError); Fixed "
            "skipped the empty attempts")
