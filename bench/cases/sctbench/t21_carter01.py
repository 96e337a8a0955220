"""t21 -- two lightswitches share one counter lock: waiting for the device deadlocks.

Bug: a device is used by many jobs of one class at a time (inference or
training, never both).  Each class has a "lightswitch": the first job of a
class to come in takes the device lock, the last one out releases it.  Both
lightswitches update their counters under the *same* mutex, and the first
training job waits for the device while holding that mutex.  An inference
job that holds the device then cannot get the mutex to leave: deadlock.

Origin: SCTBench ``CS/carter01_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/carter01_bad.c``; Fray:
``Carter01Bad``).  t1 (class A) and t2 (class B) each do
``lock(m); n++; if (n == 1) lock(l); unlock(m); ... lock(m); n--; if (n == 0)
unlock(l); unlock(m)``; t3 and t4 are empty.  One preemption of t1 during
its class-A operation lets t2 block on ``l`` while holding ``m``.

Port: ``m`` is the counter lock, ``l`` the device lock, A and B are inference
and training (the empty threads are left out).  The operation records which
class is using the device, so overlapping classes would show as well.  The
twin gives each lightswitch its own counter lock (the textbook lightswitch,
Downey's *Little Book of Semaphores*), so waiting for the device never holds
a lock the other class needs.

Minimal failing scenario (2 workers x 1 op, 1 preemption):
    T1: infer() counts itself in, takes the device, is preempted while using it
    T2: train() takes the counter lock, waits for the device
    T1: waits for the counter lock to count itself out  -> deadlock
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"


class DeviceConflict(Exception):
    pass


class SharedDevice:
    """A device shared by inference jobs or by training jobs, one class at a time."""

    def __init__(self):
        self.device = threading.Lock()                # l
        self.inference_counter = threading.Lock()     # m ...
        self.training_counter = self.inference_counter  # ... shared by both classes
        self.count = {"inference": 0, "training": 0}
        self.using = {"inference": 0, "training": 0}
        self.jobs_run = 0

    def _enter(self, kind, counter):
        with counter:
            self.count[kind] += 1
            if self.count[kind] == 1:
                self.device.acquire()

    def _leave(self, kind, counter):
        with counter:
            self.count[kind] -= 1
            if self.count[kind] == 0:
                self.device.release()

    def _use(self, kind):
        other = "training" if kind == "inference" else "inference"
        self.using[kind] += 1
        if self.using[other]:
            raise DeviceConflict(f"{kind} job ran while a {other} job held the device")
        self.jobs_run += 1
        self.using[kind] -= 1

    def infer(self):
        self._enter("inference", self.inference_counter)
        self._use("inference")
        self._leave("inference", self.inference_counter)

    def train(self):
        self._enter("training", self.training_counter)
        self._use("training")
        self._leave("training", self.training_counter)


class LightswitchDevice(SharedDevice):
    def __init__(self):
        super().__init__()
        self.training_counter = threading.Lock()


Buggy, Fixed = SharedDevice, LightswitchDevice


def infer(r):
    r.infer()


def train(r):
    r.train()


OPERATIONS = [
    Op(infer, (), "run an inference job on the device"),
    Op(train, (), "run a training job on the device"),
]


class Model:
    def infer(self):
        return None

    def train(self):
        return None


def invariant(r):
    assert r.count == {"inference": 0, "training": 0}, f"jobs still counted in: {r.count}"
    assert not r.device.locked(), "device lock still held with no job running"


MINIMAL = {
    "workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
    "interleaving": "T1: infer() takes the device, preempted while using it; T2: train() "
                    "takes the counter lock and waits for the device; T1 waits for the "
                    "counter lock -> deadlock",
}


def _scenario(cls):
    r = cls()
    out = Interleaving(blocked_after=0.05).run(
        {"T1": r.infer, "T2": r.train},
        [("T1", 'self._use("inference")'), ("T2", None), ("T1", None)],
        join_timeout=0.1)
    if out.hung:                               # let the deadlocked threads finish
        r.inference_counter.release()
    return out


def self_check():
    bad, good = _scenario(Buggy), _scenario(Fixed)
    assert sorted(bad.hung) == ["T1", "T2"], bad
    assert not good.hung and not good.errors, good
    return "Buggy: infer() and train() deadlocked on the shared counter lock; Fixed: both ran"
