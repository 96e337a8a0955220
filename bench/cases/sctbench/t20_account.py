"""t20 -- ledger reconciliation with a sign error, reached once both postings are in.

Bug: ``reconcile()`` checks the balance against ``opening - deposited -
withdrawn``: the deposits are subtracted instead of added.  The check only
runs once both a deposit and a withdrawal have been posted, so it passes
whenever the reconciler gets there first, which is the order the program's
author always saw.  Once both postings are in, it raises ``LedgerMismatch``
on a ledger that is in fact correct.

Origin: SCTBench ``CS/account_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/account_bad.c``; Fray runs it
as ``AccountBad``).  Three threads share ``balance`` under
one mutex: ``deposit`` adds y=2, ``withdraw`` subtracts z=4, and
``check_result`` asserts ``balance == (x - y) - z`` when both flags are set.
The assertion's formula is the bug; no preemption is needed, only a schedule
in which the checker (created first) runs last.  It is a logic bug that
concurrency hides, not a race.

Port: the amounts (x=1, y=2, z=4) are the original's; the done flags became
running totals so that repeated postings stay meaningful, and the twin
checks ``opening + deposited - withdrawn``.  Every operation holds the one
lock, as every thread of the original holds ``m``.

Minimal failing scenario (0 preemptions):
    deposit() and withdraw() run (prefix, or workers that run first)
    reconcile() expects 1 - 2 - 4 = -5, finds -1 -> LedgerMismatch
"""
import threading

from ._support import Interleaving, Op

KIND = "thread"

OPENING, DEPOSIT, WITHDRAWAL = 1, 2, 4      # x, y, z of account_bad.c


class LedgerMismatch(Exception):
    pass


class Ledger:
    """A single account posted to by request threads and checked by a reconciler."""

    def __init__(self):
        self._lock = threading.Lock()
        self.balance = OPENING
        self.deposited = 0
        self.withdrawn = 0

    def deposit(self):
        with self._lock:
            self.balance += DEPOSIT
            self.deposited += DEPOSIT

    def withdraw(self):
        with self._lock:
            self.balance -= WITHDRAWAL
            self.withdrawn += WITHDRAWAL

    def _expected(self):
        return (OPENING - self.deposited) - self.withdrawn

    def reconcile(self):
        """Raise LedgerMismatch if the balance disagrees with the postings."""
        with self._lock:
            if self.deposited and self.withdrawn:
                expected = self._expected()
                if self.balance != expected:
                    raise LedgerMismatch(f"balance {self.balance}, expected {expected}")

    def current(self):
        with self._lock:
            return self.balance


class CorrectLedger(Ledger):
    def _expected(self):
        return OPENING + self.deposited - self.withdrawn


Buggy, Fixed = Ledger, CorrectLedger


def deposit(r):
    r.deposit()


def withdraw(r):
    r.withdraw()


def reconcile(r):
    r.reconcile()


def balance(r):
    return r.current()


OPERATIONS = [
    Op(deposit, (), "post a deposit of 2"),
    Op(withdraw, (), "post a withdrawal of 4"),
    Op(reconcile, (), "check the balance against the postings; LedgerMismatch if off"),
    Op(balance, (), "the current balance", observer=True),
]


class Model:
    def __init__(self):
        self.amount = OPENING

    def deposit(self):
        self.amount += DEPOSIT

    def withdraw(self):
        self.amount -= WITHDRAWAL

    def reconcile(self):
        return None

    def balance(self):
        return self.amount


MINIMAL = {
    "workers": 1, "ops_per_worker": 1, "prefix": ["deposit()", "withdraw()"],
    "preemptions": 0,
    "interleaving": "deposit() and withdraw() post first; reconcile() then expects "
                    "1 - 2 - 4 = -5 and finds -1 -> LedgerMismatch (no preemption: the "
                    "checker merely runs last)",
}


def _scenario(cls, order):
    r = cls()
    threads = {"D": r.deposit, "W": r.withdraw, "C": r.reconcile}
    out = Interleaving().run(threads, [(name, None) for name in order])
    assert not out.hung, out
    return out


def self_check():
    for cls in (Buggy, Fixed):                   # the checker first: both pass
        first = _scenario(cls, "CDW")
        assert not first.errors, (cls.__name__, first)
    bad, good = _scenario(Buggy, "DWC"), _scenario(Fixed, "DWC")
    assert isinstance(bad.errors.get("C"), LedgerMismatch), bad
    assert not good.errors, good
    return "checker last: Buggy raised LedgerMismatch (expected -5, balance -1); Fixed passed"
