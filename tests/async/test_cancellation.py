"""Cancellation injected at await points: a resource that cleans up in
``finally`` stays consistent, one that does not is reported, and the
cancelled operation is an unknown outcome the checker may count or not."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import settings

import jostle

TOTAL = 3


class Account:
    """Moves units from ``a`` to ``b`` under a lock; a cancelled move undoes itself."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.a, self.b = TOTAL, 0

    async def move(self) -> bool:
        async with self.lock:
            if self.a == 0:
                return False
            self.a -= 1
            try:
                await asyncio.sleep(0)  # the store's round trip: a cancellation lands here
            except asyncio.CancelledError:
                self.a += 1  # undo the debit, then let the cancellation through
                raise
            self.b += 1
            await asyncio.sleep(0)  # the acknowledgement: cancelled here, the move stands
        return True


class LeakyAccount(Account):
    """Planted: the lock is released by hand and nothing is undone on cancel."""

    async def move(self) -> bool:
        await self.lock.acquire()
        if self.a == 0:
            self.lock.release()
            return False
        self.a -= 1
        await asyncio.sleep(0)  # cancelled here: a unit in flight for ever, the lock held
        self.b += 1
        self.lock.release()
        return True


async def move(account: Account) -> bool:
    return await account.move()


async def balances(account: Account) -> tuple[int, int]:
    async with account.lock:
        return account.a, account.b


class AccountModel:
    def __init__(self) -> None:
        self.a, self.b = TOTAL, 0

    def move(self) -> bool:
        if self.a == 0:
            return False
        self.a, self.b = self.a - 1, self.b + 1
        return True

    def balances(self) -> tuple[int, int]:
        return self.a, self.b


def consistent(account: Account) -> None:
    """No lock left held, no unit half moved."""
    assert not account.lock.locked(), "the lock is still held"
    assert account.a + account.b == TOTAL, (
        f"a half-done move: a={account.a} b={account.b}, total {TOTAL}")


def account_spec(factory: type[Account]) -> jostle.Spec:
    return jostle.spec(factory, jostle.operation(move), jostle.operation(balances),
                       model=AccountModel, invariants=[consistent], name=factory.__name__)


def cancelling(spec: jostle.Spec) -> None:
    jostle.run(spec, mode="controlled", inject=True, max_workers=2, max_ops=2,
               settings=settings(max_examples=60, derandomize=True, database=None,
                                     report_multiple_bugs=False))


def test_a_resource_that_cleans_up_in_finally_stays_consistent_under_cancellation() -> None:
    """Cancellations at every await of a move leave the lock free and the
    units whole; a cancelled move that stood and one that was undone both
    linearize."""
    cancelling(account_spec(Account))


@pytest.mark.slow
def test_a_lock_held_or_a_half_done_update_on_cancel_is_reported() -> None:
    """Without cleanup, an injected cancellation is found: a lock left held
    or a unit half moved, and the cancelled move is Unknown('cancelled')."""
    with pytest.raises(jostle.ConcurrencyFailure) as info:
        cancelling(account_spec(LeakyAccount))
    failure = info.value
    text = str(failure)
    assert "the lock is still held" in text or "half-done move" in text or "deadlock" in text
    history = failure.verdict.execution.history  # type: ignore[attr-defined]
    cancelled = [r for r in history.ops if r.outcome == jostle.Unknown("cancelled")]
    assert cancelled and all(r.op == "move" for r in cancelled)
    assert "? (cancelled)" in text  # the timeline shows it as unknown


def _history(*ops: tuple[str, jostle.Returned | jostle.Unknown]) -> jostle.History:
    return jostle.History(tuple(
        jostle.OpRecord(i, 1, "task", "parallel", name, (), 10 * i,
                        None if isinstance(out, jostle.Unknown) else 10 * i + 5, out)
        for i, (name, out) in enumerate(ops)))


@pytest.mark.parametrize("seen", [(TOTAL, 0), (TOTAL - 1, 1)])
def test_a_cancelled_operation_may_or_may_not_have_happened(seen: tuple[int, int]) -> None:
    """A read after a cancelled move may see it or not: both histories linearize,
    while a move that returned must be seen."""
    cancelled = _history(("move", jostle.Unknown("cancelled")), ("balances", jostle.Returned(seen)))
    assert jostle.check_linearizability(cancelled, AccountModel).ok
    returned = _history(("move", jostle.Returned(True)), ("balances", jostle.Returned(seen)))
    assert jostle.check_linearizability(returned, AccountModel).ok is (seen == (TOTAL - 1, 1))


