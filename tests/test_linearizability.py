"""Tests for the Wing & Gong / Lowe linearizability checker."""

from __future__ import annotations

import dataclasses
import queue
import random
import threading
from collections.abc import Callable, Hashable

import pytest
from hypothesis import given, settings, strategies as st

from jostle._errors import SpecError, SpecTypeError
from jostle._history import History, OpRecord, Outcome, Raised, Returned, Unknown
from jostle._linearizability import LinearizabilityResult, Mismatch, check_linearizability

# -- models ---------------------------------------------------------------


class Register:
    """A single value, read and written."""

    def __init__(self) -> None:
        self.value = 0

    def write(self, v: int) -> None:
        self.value = v

    def read(self) -> int:
        return self.value


class Counter:
    """``incr`` returns the new count."""

    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n

    def get(self) -> int:
        return self.n


class Adder:
    """``add`` returns nothing, so concurrent adds can go in any order."""

    def __init__(self) -> None:
        self.n = 0

    def add(self, i: int) -> None:
        self.n += 1

    def get(self) -> int:
        return self.n


class LoggingAdder(Adder):
    """An adder that also logs its arguments, so every order is a new state."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[int] = []

    def add(self, i: int) -> None:
        self.n += 1
        self.log.append(i)


class HookedAdder(LoggingAdder):
    """A logging adder that says only the count matters."""

    calls = 0

    def __jostle_state__(self) -> Hashable:
        HookedAdder.calls += 1
        return self.n


class Fifo:
    """A FIFO queue whose ``get`` raises ``queue.Empty`` when empty."""

    def __init__(self) -> None:
        self.items: list[int] = []

    def put(self, x: int) -> None:
        self.items.append(x)

    def get(self) -> int:
        if not self.items:
            raise queue.Empty
        return self.items.pop(0)


class KV:
    """A map whose ``get`` raises ``KeyError`` for a missing key."""

    def __init__(self) -> None:
        self.d: dict[str, int] = {}

    def put(self, k: str, v: int) -> None:
        self.d[k] = v

    def get(self, k: str) -> int:
        return self.d[k]


# -- helpers --------------------------------------------------------------


def rec(
    index: int,
    op: str,
    args: tuple[object, ...] = (),
    *,
    at: tuple[int, int | None],
    out: Outcome,
    worker: int = 1,
) -> OpRecord:
    return OpRecord(index, worker, "thread", "parallel", op, args, at[0], at[1], out)


def hist(*ops: OpRecord) -> History:
    return History(tuple(sorted(ops, key=lambda r: (r.invoke, r.index))))


def ret(value: object) -> Returned:
    return Returned(value)


def raised(exc: BaseException) -> Raised:
    return Raised(exc)


def unknown() -> Unknown:
    return Unknown("cancelled")


def assert_witness(
    history: History, result: LinearizabilityResult, model_factory: Callable[[], object]
) -> object:
    """The order respects real time, covers every known op, and replays."""
    assert result.ok
    assert result.order is not None
    recs = {r.index: r for r in history.ops}
    known = {r.index for r in history.ops if not isinstance(r.outcome, Unknown)}
    assert known <= set(result.order)
    assert len(set(result.order)) == len(result.order)
    latest_invoke = None
    model = model_factory()
    for i in result.order:
        r = recs[i]
        if not isinstance(r.outcome, Unknown) and r.response is not None:
            assert latest_invoke is None or r.response >= latest_invoke
        latest_invoke = r.invoke if latest_invoke is None else max(latest_invoke, r.invoke)
        got = replay_one(model, r)
        if isinstance(r.outcome, Returned):
            assert got == r.outcome
        elif isinstance(r.outcome, Raised):
            assert isinstance(got, Raised)
            assert got.type_name == r.outcome.type_name
    return model


def replay_one(model: object, r: OpRecord) -> Outcome:
    """What the model does for ``r``, as an outcome."""
    try:
        return Returned(getattr(model, r.op)(*r.args))
    except Exception as exc:  # whatever the model raises is its outcome
        return Raised(exc)


# -- basics ---------------------------------------------------------------


def test_empty_history_is_linearizable() -> None:
    """An empty history is linearizable, with a fresh model as final state."""
    result = check_linearizability(History(()), Counter)
    assert result.ok
    assert not result.timed_out
    assert result.order == ()
    assert isinstance(result.final_model, Counter)


def test_sequential_history_is_linearizable_in_its_own_order() -> None:
    """Non-overlapping operations linearize in the order they ran."""
    h = hist(
        rec(0, "incr", at=(0, 1), out=ret(1)),
        rec(1, "incr", at=(2, 3), out=ret(2)),
        rec(2, "get", at=(4, 5), out=ret(2)),
    )
    result = check_linearizability(h, Counter)
    assert result.ok
    assert result.order == (0, 1, 2)
    assert result.longest_prefix == (0, 1, 2)
    assert result.stuck == ()
    assert result.explain(h).startswith("linearizable (3 ops")


def test_concurrent_register_read_may_see_an_unfinished_write() -> None:
    """A read overlapping a write may see the new value: the write goes first."""
    h = hist(
        rec(0, "write", (1,), at=(0, 10), out=ret(None), worker=1),
        rec(1, "read", at=(2, 3), out=ret(1), worker=2),
        rec(2, "read", at=(11, 12), out=ret(1), worker=2),
    )
    result = check_linearizability(h, Register)
    assert result.order == (0, 1, 2)
    assert_witness(h, result, Register)


def test_concurrent_counter_increments_reorder() -> None:
    """Overlapping increments may return their counts in either order."""
    h = hist(
        rec(0, "incr", at=(0, 10), out=ret(2), worker=1),
        rec(1, "incr", at=(1, 9), out=ret(1), worker=2),
        rec(2, "get", at=(11, 12), out=ret(2), worker=1),
    )
    result = check_linearizability(h, Counter)
    assert result.order == (1, 0, 2)
    assert_witness(h, result, Counter)


def test_lost_update_is_not_linearizable_and_explained() -> None:
    """Two increments both returning 1 is a lost update; explain names them."""
    h = hist(
        rec(0, "incr", at=(0, 10), out=ret(1), worker=1),
        rec(1, "incr", at=(0, 10), out=ret(1), worker=2),
        rec(2, "get", at=(20, 30), out=ret(1), worker=1),
    )
    result = check_linearizability(h, Counter)
    assert not result.ok
    assert not result.timed_out
    assert result.order is None
    assert result.final_model is None
    assert result.longest_prefix == (0,)
    assert result.stuck == (Mismatch(1, "-> 2"),)
    text = result.explain(h)
    assert text.splitlines() == [
        f"not linearizable ({result.steps} search steps)",
        "longest linearizable prefix (1 ops):",
        "  #0 w1 incr() -> 1",
        "then none of these can go next:",
        "  #1 w2 incr() -> 1  (model: -> 2)",
    ]


def test_real_time_order_is_respected() -> None:
    """Results valid only if the later op went first are not linearizable."""
    h = hist(
        rec(0, "incr", at=(0, 1), out=ret(2), worker=1),
        rec(1, "incr", at=(2, 3), out=ret(1), worker=2),
    )
    assert not check_linearizability(h, Counter).ok
    overlapping = hist(
        rec(0, "incr", at=(0, 2), out=ret(2), worker=1),
        rec(1, "incr", at=(2, 3), out=ret(1), worker=2),
    )
    assert check_linearizability(overlapping, Counter).order == (1, 0)


def test_register_stale_read_after_write_is_not_linearizable() -> None:
    """A read after two completed writes must not see the first one."""
    h = hist(
        rec(0, "write", (1,), at=(0, 1), out=ret(None)),
        rec(1, "write", (2,), at=(2, 3), out=ret(None)),
        rec(2, "read", at=(4, 5), out=ret(1), worker=2),
    )
    result = check_linearizability(h, Register)
    assert not result.ok
    assert result.longest_prefix == (0, 1)
    assert result.stuck == (Mismatch(2, "-> 2"),)


# -- exceptions -------------------------------------------------------------


def test_raised_outcome_matches_model_exception_by_name() -> None:
    """``get`` raising ``Empty`` on an empty queue is linearizable."""
    h = hist(
        rec(0, "get", at=(0, 1), out=raised(queue.Empty())),
        rec(1, "put", (5,), at=(2, 3), out=ret(None)),
        rec(2, "get", at=(4, 5), out=ret(5)),
    )
    assert_witness(h, check_linearizability(h, Fifo), Fifo)


def test_raised_outcome_with_other_exception_type_is_not_linearizable() -> None:
    """An op that raised ``KeyError`` where the model raises ``Empty`` mismatches."""
    h = hist(rec(0, "get", at=(0, 1), out=raised(KeyError("x"))))
    result = check_linearizability(h, Fifo)
    assert not result.ok
    assert result.stuck == (Mismatch(0, "raised Empty"),)
    assert "(model: raised Empty)" in result.explain(h)


def test_returned_where_model_raises_is_not_linearizable() -> None:
    """An op that returned where the model raises is a mismatch."""
    h = hist(rec(0, "get", at=(0, 1), out=ret(None)))
    assert check_linearizability(h, Fifo).stuck == (Mismatch(0, "raised Empty"),)


def test_raised_where_model_returns_is_not_linearizable() -> None:
    """An op that raised where the model returns is a mismatch."""
    h = hist(
        rec(0, "put", (3,), at=(0, 1), out=ret(None)),
        rec(1, "get", at=(2, 3), out=raised(queue.Empty())),
    )
    assert check_linearizability(h, Fifo).stuck == (Mismatch(1, "-> 3"),)


def test_model_exception_message_is_shown() -> None:
    """A model exception with a message is described with it."""
    h = hist(rec(0, "get", ("k",), at=(0, 1), out=ret(1)))
    assert check_linearizability(h, KV).stuck == (Mismatch(0, "raised KeyError: 'k'"),)


class Spoiler:
    """``spoil`` corrupts the state, then raises."""

    def __init__(self) -> None:
        self.n = 0

    def spoil(self) -> None:
        self.n = 99
        raise ValueError

    def get(self) -> int:
        return self.n


def test_model_exception_does_not_corrupt_the_state_the_search_reuses() -> None:
    """A call that mutated then raised leaves the state other candidates see intact."""
    h = hist(
        rec(0, "spoil", at=(0, 10), out=ret(None), worker=1),
        rec(1, "get", at=(1, 10), out=ret(0), worker=2),
    )
    result = check_linearizability(h, Spoiler)
    assert not result.ok
    assert result.longest_prefix == (1,)
    assert result.stuck == (Mismatch(0, "raised ValueError"),)


class Weird:
    """A value whose ``==`` raises or answers with a non-bool."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __eq__(self, other: object) -> bool:
        if self.how == "raise":
            raise RuntimeError("no comparing")
        return "yes"  # type: ignore[return-value]

    __hash__ = None  # type: ignore[assignment]


class WeirdModel:
    """Returns a ``Weird`` value."""

    def make(self, how: str) -> Weird:
        return Weird(how)


@pytest.mark.parametrize("how", ["raise", "non-bool"])
def test_equality_that_raises_or_is_not_bool_is_a_mismatch(how: str) -> None:
    """``==`` raising or answering a non-bool counts as a mismatch."""
    h = hist(rec(0, "make", (how,), at=(0, 1), out=ret(Weird(how))))
    result = check_linearizability(h, WeirdModel)
    assert not result.ok
    assert result.stuck[0].index == 0


# -- unknown outcomes ---------------------------------------------------------


def test_unknown_op_may_take_effect() -> None:
    """A cancelled put whose value is later read was linearized."""
    h = hist(
        rec(0, "put", (1,), at=(0, None), out=unknown(), worker=1),
        rec(1, "get", at=(5, 6), out=ret(1), worker=2),
    )
    result = check_linearizability(h, Fifo)
    assert result.order == (0, 1)
    assert_witness(h, result, Fifo)


def test_unknown_op_may_be_left_out() -> None:
    """A cancelled put that nobody saw is left out of the witness."""
    h = hist(
        rec(0, "put", (1,), at=(0, None), out=unknown(), worker=1),
        rec(1, "get", at=(5, 6), out=raised(queue.Empty()), worker=2),
    )
    result = check_linearizability(h, Fifo)
    assert result.order == (1,)
    assert isinstance(result.final_model, Fifo)
    assert result.final_model.items == []


def test_unknown_op_cannot_take_effect_before_its_invoke() -> None:
    """A read that finished before an unknown write was invoked cannot see it."""
    h = hist(
        rec(0, "get", at=(0, 1), out=ret(1), worker=2),
        rec(1, "put", (1,), at=(5, None), out=unknown(), worker=1),
    )
    result = check_linearizability(h, Fifo)
    assert not result.ok
    assert result.stuck == (Mismatch(0, "raised Empty"),)


def test_unknown_op_response_time_is_ignored() -> None:
    """An unknown op may take effect after its recorded response time."""
    h = hist(
        rec(0, "put", (1,), at=(0, 2), out=unknown(), worker=1),
        rec(1, "get", at=(5, 6), out=raised(queue.Empty()), worker=2),
        rec(2, "get", at=(7, 8), out=ret(1), worker=2),
    )
    assert check_linearizability(h, Fifo).order == (1, 0, 2)


def test_only_unknown_ops_is_linearizable() -> None:
    """A history of unknown ops alone needs nothing linearized."""
    h = hist(rec(0, "incr", at=(0, None), out=unknown()))
    assert check_linearizability(h, Counter).order == ()


# -- partitions -------------------------------------------------------------


def by_key(op: str, args: tuple[object, ...]) -> Hashable | None:
    return args[0] if args else None


def test_partition_reports_the_bad_key() -> None:
    """With a partition, the failing key's operations are the ones reported."""
    h = hist(
        rec(0, "put", ("a", 1), at=(0, 1), out=ret(None), worker=1),
        rec(1, "put", ("b", 1), at=(0, 1), out=ret(None), worker=2),
        rec(2, "get", ("a",), at=(2, 3), out=ret(1), worker=1),
        rec(3, "get", ("b",), at=(2, 3), out=ret(2), worker=2),
    )
    result = check_linearizability(h, KV, partition=by_key)
    assert not result.ok
    assert not result.timed_out
    assert result.partition_key == "b"
    assert result.longest_prefix == (1,)
    assert result.stuck == (Mismatch(3, "-> 1"),)
    assert result.explain(h).startswith("not linearizable in part 'b'")


def generate(
    model: object,
    steps: list[tuple[int, str, tuple[object, ...], int, int, int]],
) -> History:
    """A linearizable history by construction: each op takes effect at a point
    inside its interval, and the model gives its outcome at that point.

    Each step is (worker, op, args, gap before it, duration, where in the
    interval it takes effect, 0-100)."""
    clock: dict[int, int] = {}
    planned = []
    for index, (worker, op, args, gap, duration, where) in enumerate(steps):
        invoke = clock.get(worker, 0) + gap
        response = invoke + duration
        clock[worker] = response
        point = invoke + duration * where // 100
        planned.append((point, index, worker, op, args, invoke, response))
    ops = []
    for _point, index, worker, op, args, invoke, response in sorted(planned):
        r = rec(index, op, args, at=(invoke, response), out=unknown(), worker=worker)
        ops.append(dataclasses.replace(r, outcome=replay_one(model, r)))
    return hist(*ops)


def test_partitioned_large_history_is_checked_per_key() -> None:
    """2,000 ops over 20 keys from 4 workers check quickly, with a valid witness."""
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(20)]
    steps = [
        (
            rng.randrange(1, 5),
            rng.choice(["put", "get"]),
            (rng.choice(keys), rng.randrange(100)),
            rng.randrange(0, 3),
            rng.randrange(0, 8),
            rng.randrange(101),
        )
        for _ in range(2_000)
    ]
    steps = [(w, op, args if op == "put" else args[:1], g, d, p) for w, op, args, g, d, p in steps]
    h = generate(KV(), steps)
    result = check_linearizability(h, KV, partition=by_key)
    assert result.ok
    assert result.final_model is None
    assert result.order is not None
    assert len(result.order) == 2_000
    assert_witness(h, result, KV)


def test_partition_returning_none_checks_the_whole_history() -> None:
    """If any op has no key, the history is checked whole (and has a final model)."""
    h = hist(
        rec(0, "put", ("a", 1), at=(0, 1), out=ret(None)),
        rec(1, "put", ("b", 2), at=(2, 3), out=ret(None)),
    )
    result = check_linearizability(h, KV, partition=lambda op, args: None)
    assert isinstance(result.final_model, KV)
    assert result.final_model.d == {"a": 1, "b": 2}


def test_unhashable_partition_key_is_a_spec_type_error() -> None:
    """A partition function returning a list is reported as misuse."""
    h = hist(rec(0, "put", ("a", 1), at=(0, 1), out=ret(None)))
    with pytest.raises(SpecTypeError, match="unhashable key"):
        check_linearizability(h, KV, partition=lambda op, args: [args[0]])


# -- the search: memoisation, hooks, limits -----------------------------------------


def adds_then_get(k: int, final: int) -> History:
    """``k`` concurrent adds, then a get that returns ``final``."""
    ops = [rec(i, "add", (i,), at=(0, 100), out=ret(None), worker=i + 1) for i in range(k)]
    ops.append(rec(k, "get", at=(200, 300), out=ret(final), worker=1))
    return hist(*ops)


def test_memoisation_decides_a_hard_history() -> None:
    """14 concurrent adds then a wrong total: ~14! orders, 2^14 memoised configurations."""
    result = check_linearizability(adds_then_get(14, 15), Adder)
    assert not result.ok
    assert not result.timed_out
    # Measured: 14 * 2^13 + 1 = 114,689 (every subset of adds, each tried once).
    assert result.steps <= 120_000
    assert len(result.longest_prefix) == 14
    assert result.stuck == (Mismatch(14, "-> 14"),)


def test_jostle_state_hook_is_used_for_memoisation() -> None:
    """``__jostle_state__`` lets orders that differ only in a log share a memo entry."""
    h = adds_then_get(10, 11)
    HookedAdder.calls = 0
    hooked = check_linearizability(h, HookedAdder, max_steps=10_000)
    assert not hooked.ok
    assert not hooked.timed_out
    assert HookedAdder.calls > 0
    # Without the hook, the log makes every order a new state.
    assert check_linearizability(h, LoggingAdder, max_steps=10_000).timed_out


class Locked:
    """A model holding a lock, which ``copy.deepcopy`` refuses."""

    copies = 0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0

    def incr(self) -> int:
        with self.lock:
            self.n += 1
            return self.n


class CopyableLocked(Locked):
    """A locked model that knows how to copy itself."""

    def __jostle_copy__(self) -> CopyableLocked:
        CopyableLocked.copies += 1
        new = CopyableLocked()
        new.n = self.n
        return new


def test_jostle_copy_hook_is_used() -> None:
    """``__jostle_copy__`` replaces ``copy.deepcopy``."""
    h = hist(
        rec(0, "incr", at=(0, 10), out=ret(2), worker=1),
        rec(1, "incr", at=(0, 10), out=ret(1), worker=2),
    )
    CopyableLocked.copies = 0
    result = check_linearizability(h, CopyableLocked)
    assert result.order == (1, 0)
    assert CopyableLocked.copies >= 2
    assert isinstance(result.final_model, CopyableLocked)
    assert result.final_model.n == 2


def test_uncopyable_model_is_a_spec_error() -> None:
    """A model deepcopy refuses is reported with the fix."""
    h = hist(rec(0, "incr", at=(0, 1), out=ret(1)))
    with pytest.raises(SpecError, match="__jostle_copy__"):
        check_linearizability(h, Locked)


class BadState(Counter):
    """``__jostle_state__`` returns an unhashable value."""

    def __jostle_state__(self) -> Hashable:
        return [self.n]  # type: ignore[return-value]


def test_unhashable_jostle_state_is_a_spec_type_error() -> None:
    """An unhashable ``__jostle_state__`` is reported as misuse."""
    with pytest.raises(SpecTypeError, match="__jostle_state__"):
        check_linearizability(hist(rec(0, "get", at=(0, 1), out=ret(0))), BadState)


class Unpicklable(Counter):
    """A counter holding a lambda, so its state cannot be pickled."""

    def __init__(self) -> None:
        super().__init__()
        self.fn = lambda: None


def test_unpicklable_model_still_checks() -> None:
    """Without a usable fingerprint the search runs unmemoised but stays correct."""
    assert check_linearizability(adds_then_get(0, 0), Unpicklable).ok
    h = hist(
        rec(0, "incr", at=(0, 10), out=ret(2), worker=1),
        rec(1, "incr", at=(0, 10), out=ret(1), worker=2),
        rec(2, "get", at=(11, 12), out=ret(3), worker=1),
    )
    result = check_linearizability(h, Unpicklable)
    assert not result.ok
    assert not result.timed_out
    assert result.stuck == (Mismatch(2, "-> 2"),)


def test_tiny_max_steps_reports_timed_out() -> None:
    """Running out of steps is reported as undecided, never as ok."""
    h = adds_then_get(6, 7)
    result = check_linearizability(h, Adder, max_steps=3)
    assert result.timed_out
    assert not result.ok
    assert result.order is None
    assert result.steps == 3
    assert result.explain(h).startswith("undecided: the search stopped after 3 steps")


def test_timed_out_in_a_part_names_the_part() -> None:
    """Running out of steps in a partitioned history names the part."""
    h = hist(
        rec(0, "put", ("a", 1), at=(0, 1), out=ret(None)),
        rec(1, "put", ("b", 1), at=(0, 1), out=ret(None)),
    )
    result = check_linearizability(h, KV, partition=by_key, max_steps=1)
    assert result.timed_out
    assert not result.ok
    assert result.partition_key == "b"


def test_final_model_reflects_the_witness() -> None:
    """The final model is the model after the witness order."""
    h = hist(
        rec(0, "put", (1,), at=(0, 10), out=ret(None), worker=1),
        rec(1, "put", (2,), at=(0, 10), out=ret(None), worker=2),
        rec(2, "get", at=(11, 12), out=ret(2), worker=1),
    )
    result = check_linearizability(h, Fifo)
    assert result.order == (1, 0, 2)
    assert isinstance(result.final_model, Fifo)
    assert result.final_model.items == [1]


def test_long_history_does_not_recurse() -> None:
    """A 3,000-op history (deeper than the recursion limit) is checked iteratively."""
    ops = [rec(i, "incr", at=(2 * i, 2 * i + 1), out=ret(i + 1)) for i in range(3_000)]
    result = check_linearizability(hist(*ops), Counter)
    assert result.ok
    assert result.steps == 3_000


def test_missing_model_method_is_a_spec_error() -> None:
    """An operation the model lacks is reported before searching."""
    with pytest.raises(SpecError, match="has no method 'pop'"):
        check_linearizability(hist(rec(0, "pop", at=(0, 1), out=ret(1))), Counter)


def test_model_factory_errors_propagate() -> None:
    """An exception from the model factory reaches the caller unchanged."""

    def broken() -> object:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        check_linearizability(History(()), broken)


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_max_steps_is_a_spec_error(bad: object) -> None:
    """``max_steps`` must be a positive int."""
    with pytest.raises(SpecError, match="max_steps"):
        check_linearizability(History(()), Counter, max_steps=bad)  # type: ignore[arg-type]


def test_response_before_invoke_is_a_spec_error() -> None:
    """A record that responded before it was invoked is reported."""
    with pytest.raises(SpecError, match="before its invoke"):
        check_linearizability(hist(rec(0, "get", at=(5, 1), out=ret(0))), Counter)


def test_explain_elides_a_long_prefix() -> None:
    """Only the last few ops of a long prefix are shown."""
    ops = [rec(i, "incr", at=(2 * i, 2 * i + 1), out=ret(i + 1)) for i in range(30)]
    ops.append(rec(30, "get", at=(100, 101), out=ret(0)))
    h = hist(*ops)
    lines = check_linearizability(h, Counter).explain(h, max_prefix=5).splitlines()
    assert lines[1:3] == ["longest linearizable prefix (30 ops):", "  ... 25 earlier ops"]
    assert lines[3] == "  #25 w1 incr() -> 26"
    assert lines[-1] == "  #30 w1 get() -> 0  (model: -> 30)"


# -- properties -------------------------------------------------------------

queue_steps = st.lists(
    st.tuples(
        st.integers(1, 3),
        st.sampled_from(["put", "get"]),
        st.integers(0, 9).map(lambda x: (x,)),
        st.integers(0, 4),
        st.integers(0, 10),
        st.integers(0, 100),
    ).map(lambda s: (s[0], s[1], s[2] if s[1] == "put" else (), *s[3:])),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(queue_steps)
def test_generated_histories_are_linearizable(
    steps: list[tuple[int, str, tuple[object, ...], int, int, int]],
) -> None:
    """Histories whose results come from the model at points inside their intervals pass."""
    h = generate(Fifo(), steps)
    assert_witness(h, check_linearizability(h, Fifo), Fifo)


@settings(max_examples=100, deadline=None)
@given(queue_steps, st.data())
def test_unknown_outcomes_keep_histories_linearizable(
    steps: list[tuple[int, str, tuple[object, ...], int, int, int]], data: st.DataObject
) -> None:
    """Turning outcomes of a linearizable history into ``Unknown`` keeps it linearizable."""
    h = generate(Fifo(), steps)
    hidden = data.draw(
        st.sets(st.sampled_from([r.index for r in h.ops])) if h.ops else st.just(set())
    )
    h = History(
        tuple(
            rec(r.index, r.op, r.args, at=(r.invoke, None), out=unknown(), worker=r.worker)
            if r.index in hidden
            else r
            for r in h.ops
        )
    )
    assert_witness(h, check_linearizability(h, Fifo), Fifo)


@settings(max_examples=100, deadline=None)
@given(queue_steps, st.data())
def test_an_impossible_result_is_not_linearizable(
    steps: list[tuple[int, str, tuple[object, ...], int, int, int]], data: st.DataObject
) -> None:
    """Perturbing one returned value to one the model never returns is caught."""
    h = generate(Fifo(), [(1, "put", (0,), 0, 1, 0), *steps])
    returned = [r.index for r in h.ops if isinstance(r.outcome, Returned)]
    victim = data.draw(st.sampled_from(returned))
    h = History(
        tuple(
            rec(
                r.index,
                r.op,
                r.args,
                at=(r.invoke, r.response),
                out=ret("impossible"),
                worker=r.worker,
            )
            if r.index == victim
            else r
            for r in h.ops
        )
    )
    result = check_linearizability(h, Fifo)
    assert not result.ok
    assert not result.timed_out
    assert victim not in result.longest_prefix
    assert result.stuck  # the deepest dead end always has a rejected candidate
