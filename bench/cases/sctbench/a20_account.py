"""a20 -- async ledger reconciliation with a sign error, reached once both postings are in.

Bug: as in ``t20_account``: ``reconcile()`` expects ``opening - deposited -
withdrawn`` (deposits subtracted), and only checks once both a deposit and a
withdrawal are posted.  With the reconciler task started first, as in the
original, it always passes; once the postings' journal writes complete
first, it raises ``LedgerMismatch`` on a correct ledger.

Origin: SCTBench ``CS/account_bad`` (mc-imperial/sctbench,
``benchmarks/concurrent-software-benchmarks/account_bad.c``; Fray:
``AccountBad``); see ``t20_account``.  The threads become tasks and the
mutex an ``asyncio.Lock``; each posting awaits its journal write while
holding it, as a database-backed ledger would.  The bug needs no preemption
(and no cancellation): only an order of tasks other than creation order.

Minimal failing scenario (0 preemptions):
    deposit() and withdraw() complete (prefix, or tasks that run first)
    reconcile() expects 1 - 2 - 4 = -5, finds -1 -> LedgerMismatch
"""
import asyncio

from ._support import Op, run_async

KIND = "asyncio"

OPENING, DEPOSIT, WITHDRAWAL = 1, 2, 4      # x, y, z of account_bad.c


class LedgerMismatch(Exception):
    pass


class AsyncLedger:
    """A single account posted to by request tasks and checked by a reconciler task."""

    def __init__(self):
        self._lock = asyncio.Lock()
        self.balance = OPENING
        self.deposited = 0
        self.withdrawn = 0

    async def _journal(self, entry):
        await asyncio.sleep(0)              # append to the journal (I/O)

    async def deposit(self):
        async with self._lock:
            await self._journal(("deposit", DEPOSIT))
            self.balance += DEPOSIT
            self.deposited += DEPOSIT

    async def withdraw(self):
        async with self._lock:
            await self._journal(("withdraw", WITHDRAWAL))
            self.balance -= WITHDRAWAL
            self.withdrawn += WITHDRAWAL

    def _expected(self):
        return (OPENING - self.deposited) - self.withdrawn

    async def reconcile(self):
        """Raise LedgerMismatch if the balance disagrees with the postings."""
        async with self._lock:
            if self.deposited and self.withdrawn:
                expected = self._expected()
                if self.balance != expected:
                    raise LedgerMismatch(f"balance {self.balance}, expected {expected}")

    async def current(self):
        async with self._lock:
            return self.balance


class CorrectAsyncLedger(AsyncLedger):
    def _expected(self):
        return OPENING + self.deposited - self.withdrawn


Buggy, Fixed = AsyncLedger, CorrectAsyncLedger


async def deposit(r):
    await r.deposit()


async def withdraw(r):
    await r.withdraw()


async def reconcile(r):
    await r.reconcile()


async def balance(r):
    return await r.current()


OPERATIONS = [
    Op(deposit, (), "post a deposit of 2 (journal write under the lock)"),
    Op(withdraw, (), "post a withdrawal of 4 (journal write under the lock)"),
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
    "interleaving": "deposit() and withdraw() complete first; reconcile() then expects -5 "
                    "and finds -1 -> LedgerMismatch (task order only)",
}


def _scenario(cls, checker_first):
    async def main():
        r = cls()
        if checker_first:                    # the original's creation order
            ops = [r.reconcile(), r.deposit(), r.withdraw()]
        else:
            ops = [r.deposit(), r.withdraw(), r.reconcile()]
        results = await asyncio.gather(*ops, return_exceptions=True)
        return [x for x in results if isinstance(x, BaseException)]
    return run_async(main())


def self_check():
    for cls in (Buggy, Fixed):
        assert _scenario(cls, checker_first=True) == [], cls.__name__
    bad, good = _scenario(Buggy, checker_first=False), _scenario(Fixed, checker_first=False)
    assert len(bad) == 1 and isinstance(bad[0], LedgerMismatch), bad
    assert good == [], good
    return "reconciler task last: Buggy raised LedgerMismatch; Fixed passed"
