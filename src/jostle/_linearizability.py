"""Linearizability checking: is there an order of the operations, consistent
with real time, that a sequential model agrees with?

A history is *linearizable* (Herlihy & Wing, 1990) if every operation can be
given a point between its invoke and its response such that, taken in that
order, a sequential model produces exactly the results that were observed.

The search is Wing & Gong's (1993, "Testing and verifying concurrent
objects"): pick an operation that may go next, apply it to the model, recurse,
and backtrack when no operation can go next.  Lowe ("Testing for
linearizability", 2017) added memoisation: a configuration, the set of
operations linearized so far together with the model state, that was already
explored cannot succeed a second time, so it is skipped.  That turns the
factorial search into one over (set, state) pairs, which is what makes
non-linearizable histories with many concurrent operations decidable.  The
implementation follows Porcupine (Anish Athalye, github.com/anishathalye/
porcupine), which does exactly this in Go:

* The history becomes a doubly linked list of call and return events sorted
  by time (a call before a return at equal times, since ``A`` precedes ``B``
  only if ``A.response < B.invoke``).  The operations that may go next are
  the calls before the first remaining return, so finding candidates is a
  walk from the head of the list, and linearizing an operation unlinks its
  two events in O(1) (Knuth's dancing links; backtracking relinks them).
  This encodes the real-time order implicitly, so no O(n^2) table of
  "must precede" sets is built.
* The search is iterative, with an explicit stack of (operation, model state
  before it), so histories of 10^5 operations do not meet the recursion
  limit.
* The linearized set is a Python ``int`` bitmask.  Memo keys store it as
  ``(lo, mask >> lo)`` where every operation below ``lo`` is linearized:
  in a long history that is a few words instead of n bits, which keeps the
  cache small.
* A small cache of moves, (operation, state fingerprint) -> (matched?, next
  state), spares the copy and the call when a hard search meets the same
  operation in the same state again; it is cleared when it reaches 4,096
  entries, since each entry keeps a model state alive.
* Candidates are tried in invoke order, as Porcupine does.  Measured on
  generated histories of counters, registers and maps, this beat trying the
  earliest response first (Lowe's "just-in-time" order) or the earliest
  midpoint first.
* P-compositionality (Horn & Kroening, 2015; Porcupine's ``Partition``): when
  the caller says which independent part (a key of a map, say) each
  operation touches, each part is checked on its own with a fresh model.
  Linearizability is local (Herlihy & Wing), so the whole history is
  linearizable iff every part is, and a witness for the whole is a merge of
  the parts' witnesses.

Operations whose outcome is ``Unknown`` (cancelled, hung, worker died) are
Jepsen/Knossos's "info" operations: they may have taken effect at any point
after their invoke, or never.  They have no return event (their response is
+infinity), any result is accepted when one is linearized, and the search
succeeds as soon as every operation with a known outcome is linearized.

The model is any object with one method per operation name; a call returns
the model's result or raises.  A model must be deep-copyable and
deterministic: each operation is applied to a copy (``copy.deepcopy``, or the
model's ``__jostle_copy__()`` if its class defines one), so a half-finished
call that raised never corrupts a state the search returns to.  The state
after a call that raised is whatever the model left, exactly as in a
sequential run.  Memoisation needs a fingerprint of the state, taken from,
in order of preference:

1. ``__jostle_state__()`` if the class defines it: any hashable value that is
   equal for equal states (the fastest and most precise choice);
2. ``pickle.dumps(vars(model))`` (or of the model itself when it has no
   ``__dict__``), digested with BLAKE2b-128 to keep the cache small; equal
   states pickled differently (dict insertion order, say) only miss the
   cache, which costs time, never correctness;
3. ``repr`` of the same, for unpicklable states, unless it shows an address
   (``" at 0x"``), since addresses are reused; then that state is not
   memoised at all, which is sound but can be slow.

A model whose pickle or repr leaves out part of its state must define
``__jostle_state__``.  So should a model whose equal states can be built in
different ways, such as a dict filled in a different order: returning
``frozenset(self.d.items())`` lets those orders share memo entries.  If the
model is faithful to a coarser ``__jostle_state__``, ``final_model`` is a
state equal under it to the witness's, not necessarily the same object graph.

Limits.  The search is exponential in the worst case (the problem is
NP-complete, Gibbons & Korach 1997).  Memoisation only helps when different
orders reach equal states; when they do not, as with overlapping ``put``s on
a FIFO queue, a wrong early guess is found out only when the items come out,
and everything between is searched first.  Lowe reports the same for queues,
and Jepsen checks queues with a dedicated checker.  Such a search stops at
``max_steps`` with ``timed_out=True``; it never gives a wrong verdict.
Partitioning, or shorter histories, are the remedy.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import pickle
import reprlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ._errors import SpecError, SpecTypeError
from ._history import History, OpRecord, Raised, Returned

__all__ = ["LinearizabilityResult", "Mismatch", "check_linearizability"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """An operation that could have gone next, and what the model did instead.

    Attributes:
        index: the operation's ``OpRecord.index``.
        expected: what the model did at that point, e.g. ``-> 2`` or
            ``raised Empty``.
    """

    index: int
    expected: str


@dataclass(frozen=True, slots=True)
class LinearizabilityResult:
    """The verdict of :func:`check_linearizability`.

    Attributes:
        ok: ``True`` if a linearization was found.  Never ``True`` when
            ``timed_out``.
        timed_out: the search hit ``max_steps`` before deciding; ``ok`` is
            then ``False`` but the history was not shown wrong.
        order: the witness, as ``OpRecord.index`` values in linearization
            order (``Unknown`` operations appear only if they were taken), or
            ``None`` if not ``ok``.
        longest_prefix: the longest linearizable sequence the search found
            (the whole ``order`` when ``ok``).
        stuck: at the end of ``longest_prefix``, each operation that could
            have gone next and what the model said instead.
        final_model: the model after applying ``order``; ``None`` unless
            ``ok`` and the history was checked whole (not partitioned).
        steps: candidates the search tried (each one model call, unless the
            same operation was tried on an equal state before).
        partition_key: the key of the part that failed or timed out, when
            the history was partitioned; else ``None``.
    """

    ok: bool
    timed_out: bool
    order: tuple[int, ...] | None
    longest_prefix: tuple[int, ...]
    stuck: tuple[Mismatch, ...]
    final_model: object | None
    steps: int
    partition_key: Hashable | None = None

    def explain(self, history: History, *, max_prefix: int = 10) -> str:
        """Say in a few lines why the history is, or is not, linearizable.

        Args:
            history: the history that was checked, to name the operations.
            max_prefix: show at most this many operations at the end of the
                longest linearizable prefix.

        Returns:
            One header line, then one line per operation shown.
        """
        recs = {rec.index: rec for rec in history.ops}

        def line(index: int) -> str:
            rec = recs.get(index)
            if rec is None:
                return f"  #{index}"
            return f"  #{index} w{rec.worker} {rec.call_repr()} {rec.outcome_repr()}"

        if self.ok:
            assert self.order is not None
            shown = ", ".join(f"#{i}" for i in self.order[:20])
            more = ", ..." if len(self.order) > 20 else ""
            return f"linearizable ({len(self.order)} ops, {self.steps} search steps): {shown}{more}"
        where = "" if self.partition_key is None else f" in part {self.partition_key!r}"
        if self.timed_out:
            lines = [
                (
                    f"undecided{where}: the search stopped after {self.steps} steps "
                    "(max_steps) without finding a linearization or ruling one out"
                )
            ]
            then = "there the model disagrees with:"
        else:
            lines = [f"not linearizable{where} ({self.steps} search steps)"]
            then = "then none of these can go next:"
        prefix = self.longest_prefix
        lines.append(f"longest linearizable prefix ({len(prefix)} ops):")
        if len(prefix) > max_prefix:
            lines.append(f"  ... {len(prefix) - max_prefix} earlier ops")
            prefix = prefix[len(prefix) - max_prefix :]
        lines.extend(line(i) for i in prefix)
        if self.stuck:
            lines.append(then)
            lines.extend(f"{line(m.index)}  (model: {m.expected})" for m in self.stuck)
        return "\n".join(lines)


def check_linearizability(
    history: History,
    model_factory: Callable[[], object],
    *,
    partition: Callable[[str, tuple[object, ...]], Hashable | None] | None = None,
    max_steps: int = 2_000_000,
) -> LinearizabilityResult:
    """Search for an order of ``history`` that the sequential model explains.

    Args:
        history: the operations to check.
        model_factory: makes a fresh sequential model: an object with one
            method per operation name.  It must be deep-copyable (or define
            ``__jostle_copy__``) and deterministic.  Exceptions from it
            propagate.
        partition: maps ``(op, args)`` to the key of an independent part of
            the state (a map's key, say).  If it returns a key for every
            operation, each part is checked on its own, which is much faster;
            if it returns ``None`` for any operation, the history is checked
            whole.
        max_steps: give up after trying this many candidates, over all
            parts; the result then has ``timed_out=True`` and ``ok=False``.

    Returns:
        The verdict, with a witness order or the longest linearizable prefix
        and what blocked it.

    Raises:
        SpecError: the model has no method for some operation, cannot be
            copied, or ``max_steps`` is not positive.
        SpecTypeError: a partition key or a ``__jostle_state__`` value is not
            hashable.

    Example:
        >>> from jostle._history import History, OpRecord, Returned
        >>> class Counter:
        ...     def __init__(self): self.n = 0
        ...     def incr(self): self.n += 1; return self.n
        >>> a = OpRecord(0, 1, "thread", "parallel", "incr", (), 0, 10, Returned(2))
        >>> b = OpRecord(1, 2, "thread", "parallel", "incr", (), 1, 9, Returned(1))
        >>> check_linearizability(History((a, b)), Counter).order
        (1, 0)
    """
    if not isinstance(max_steps, int) or max_steps < 1:
        raise SpecError(
            f"max_steps must be a positive int, got max_steps={max_steps!r} "
            f"(type={type(max_steps).__name__}); pass e.g. max_steps=2_000_000"
        )
    parts = _split(history.ops, partition) if partition is not None else None
    if parts is None or len(parts) <= 1:
        return _search(history.ops, model_factory(), max_steps, None)
    orders: list[tuple[int, ...]] = []
    steps = 0
    for key, ops in parts.items():
        res = _search(ops, model_factory(), max_steps - steps, key)
        steps += res.steps
        if not res.ok:
            return LinearizabilityResult(
                ok=False,
                timed_out=res.timed_out,
                order=None,
                longest_prefix=res.longest_prefix,
                stuck=res.stuck,
                final_model=None,
                steps=steps,
                partition_key=key,
            )
        assert res.order is not None
        orders.append(res.order)
    order = _merge(orders, {rec.index: rec for rec in history.ops})
    return LinearizabilityResult(
        ok=True,
        timed_out=False,
        order=order,
        longest_prefix=order,
        stuck=(),
        final_model=None,
        steps=steps,
    )


def _split(
    ops: Sequence[OpRecord],
    partition: Callable[[str, tuple[object, ...]], Hashable | None],
) -> dict[Hashable, list[OpRecord]] | None:
    """Group operations by key, or ``None`` if some operation has no key."""
    parts: dict[Hashable, list[OpRecord]] = {}
    for rec in ops:
        key = partition(rec.op, rec.args)
        if key is None:
            return None
        try:
            parts.setdefault(key, []).append(rec)
        except TypeError:
            raise SpecTypeError(
                f"partition returned an unhashable key {key!r} "
                f"(type={type(key).__name__}) for operation #{rec.index} "
                f"{rec.call_repr()}; return a hashable key such as a str, int or tuple"
            ) from None
    return parts


def _merge(orders: list[tuple[int, ...]], recs: dict[int, OpRecord]) -> tuple[int, ...]:
    """Interleave the parts' witnesses into one witness for the whole history.

    By locality the parts' orders together with real-time order are acyclic,
    so some part's next operation has no real-time predecessor left; "A must
    precede B" means ``A.response < B.invoke``, so if any head qualifies, the
    head with the smallest invoke does.  A heap of heads keyed by invoke is
    therefore a topological sort.
    """
    heap: list[tuple[int, int, int, int]] = []
    for part, order in enumerate(orders):
        if order:
            heap.append((recs[order[0]].invoke, order[0], part, 0))
    heapq.heapify(heap)
    out: list[int] = []
    while heap:
        _, index, part, pos = heapq.heappop(heap)
        out.append(index)
        order = orders[part]
        if pos + 1 < len(order):
            nxt = order[pos + 1]
            heapq.heappush(heap, (recs[nxt].invoke, nxt, part, pos + 1))
    return tuple(out)


# A linearized sequence as a persistent list: (position, rest), newest first,
# so that remembering the longest prefix found so far costs O(1).
_Path: TypeAlias = "tuple[int, _Path] | None"

_EQ, _RAISE, _ANY = 0, 1, 2
_MAX_MOVES = 1 << 12  # bounds the model states the move cache keeps alive
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def _search(
    ops_in: Sequence[OpRecord], model: object, max_steps: int, key: Hashable | None
) -> LinearizabilityResult:
    """Wing & Gong's search with Lowe's memoisation over one (sub)history."""
    ops = sorted(ops_in, key=lambda r: (r.invoke, r.index))
    n = len(ops)
    _check_model(model, ops)
    copy_state = _copier(model)
    fingerprint = _fingerprinter(model)

    # Per operation: how to judge a result, the expected value or exception
    # type name, its return time (None: +infinity), and its bit position,
    # counted separately for known operations (which must all be linearized)
    # and unknown ones (which are optional).
    how: list[int] = []
    want: list[object] = []
    resp: list[int | None] = []
    bit: list[int] = []
    known = unknown = 0
    for rec in ops:
        out = rec.outcome
        if isinstance(out, Returned):
            how.append(_EQ)
            want.append(out.value)
        elif isinstance(out, Raised):
            how.append(_RAISE)
            want.append(out.type_name)
        else:
            how.append(_ANY)
            want.append(None)
        if how[-1] == _ANY:
            resp.append(None)
            bit.append(unknown)
            unknown += 1
        else:
            if rec.response is not None and rec.response < rec.invoke:
                raise SpecError(
                    f"operation #{rec.index} {rec.call_repr()} responded at "
                    f"{rec.response} before its invoke at {rec.invoke}; "
                    "timestamps must come from one monotonic clock"
                )
            resp.append(rec.response)
            bit.append(known)
            known += 1

    # The event list: node i is the call of ops[i], node n + i its return.
    events = sorted(
        [(rec.invoke, 0, i) for i, rec in enumerate(ops)]
        + [(r, 1, i) for i, r in enumerate(resp) if r is not None]
    )
    head, tail = 2 * n, 2 * n + 1
    nxt = [0] * (2 * n + 2)
    prv = [0] * (2 * n + 2)
    last = head
    for _, kind, i in events:
        node = i + kind * n
        nxt[last] = node
        prv[node] = last
        last = node
    nxt[last] = tail
    prv[tail] = last

    state = model
    fp = fingerprint(model)
    stack: list[tuple[int, object, Hashable | None]] = []
    path: _Path = None
    kmask = umask = 0
    lo = 0  # every known operation below bit ``lo`` is linearized
    left = known
    cache: set[tuple[int, int, int, Hashable]] = set()
    # (operation, state fingerprint) -> (matched?, state after, its fingerprint):
    # the same operation meets the same state again and again in a hard search,
    # and this spares the copy and the call.
    moves: dict[tuple[int, Hashable], tuple[bool, object, Hashable | None]] = {}
    steps = 0
    best: tuple[int, _Path, object] = (-1, None, model)
    timed_out = False

    node = nxt[head]
    while left:
        if node < n:
            if steps >= max_steps:
                timed_out = True
                break
            steps += 1
            h = how[node]
            move = None if fp is None else moves.get((node, fp))
            if move is None:
                new, raised, value = _apply(copy_state, state, ops[node])
                if h == _EQ:
                    match = not raised and _equal(value, want[node])
                elif h == _RAISE:
                    match = raised and type(value).__qualname__ == want[node]
                else:
                    match = True
                new_fp = fingerprint(new) if match else None
                if fp is not None:
                    if len(moves) >= _MAX_MOVES:
                        moves.clear()
                    moves[node, fp] = (match, new if match else None, new_fp)
            else:
                match, new, new_fp = move
            if match:
                b = bit[node]
                if h == _ANY:
                    nk, nu, nlo = kmask, umask | (1 << b), lo
                else:
                    nk, nu, nlo = kmask | (1 << b), umask, lo
                    if b == lo:
                        nlo = ((nk + 1) & ~nk).bit_length() - 1
                memo = None if new_fp is None else (nlo, nk >> nlo, nu, new_fp)
                if memo is None or memo not in cache:
                    if memo is not None:
                        cache.add(memo)
                    stack.append((node, state, fp))
                    state, fp, kmask, umask, lo = new, new_fp, nk, nu, nlo
                    path = (node, path)
                    if h != _ANY:
                        left -= 1
                    p, q = prv[node], nxt[node]
                    nxt[p], prv[q] = q, p
                    if resp[node] is not None:
                        r = node + n
                        p, q = prv[r], nxt[r]
                        nxt[p], prv[q] = q, p
                    node = nxt[head]
                    continue
            node = nxt[node]
        else:
            # A return (or the end): nothing further may go next here.
            if len(stack) > best[0]:
                best = (len(stack), path, state)
            if not stack:
                break
            node, state, fp = stack.pop()
            assert path is not None
            path = path[1]
            b = bit[node]
            if how[node] == _ANY:
                umask &= ~(1 << b)
            else:
                kmask &= ~(1 << b)
                lo = min(lo, b)
                left += 1
            if resp[node] is not None:
                r = node + n
                nxt[prv[r]] = r
                prv[nxt[r]] = r
            nxt[prv[node]] = node
            prv[nxt[node]] = node
            node = nxt[node]

    def indices(p: _Path) -> tuple[int, ...]:
        out: list[int] = []
        while p is not None:
            out.append(ops[p[0]].index)
            p = p[1]
        return tuple(reversed(out))

    if not left:
        order = indices(path)
        return LinearizabilityResult(
            ok=True,
            timed_out=False,
            order=order,
            longest_prefix=order,
            stuck=(),
            final_model=state,
            steps=steps,
        )
    if timed_out and len(stack) > best[0]:
        best = (len(stack), path, state)
    _, best_path, best_state = best
    done: set[int] = set()
    walk = best_path
    while walk is not None:
        done.add(walk[0])
        walk = walk[1]
    horizon = min((r for i, r in enumerate(resp) if r is not None and i not in done), default=None)
    stuck: list[Mismatch] = []
    for i, rec in enumerate(ops):
        if i in done or how[i] == _ANY or (horizon is not None and rec.invoke > horizon):
            continue
        _, raised, value = _apply(copy_state, best_state, rec)
        if how[i] == _EQ and not raised and _equal(value, want[i]):
            continue
        if how[i] == _RAISE and raised and type(value).__qualname__ == want[i]:
            continue
        stuck.append(Mismatch(rec.index, _describe(raised, value)))
    return LinearizabilityResult(
        ok=False,
        timed_out=timed_out,
        order=None,
        longest_prefix=indices(best_path),
        stuck=tuple(stuck),
        final_model=None,
        steps=steps,
        partition_key=key,
    )


def _check_model(model: object, ops: Sequence[OpRecord]) -> None:
    """Fail early, and clearly, if the model lacks an operation."""
    for name in dict.fromkeys(rec.op for rec in ops):
        if not callable(getattr(model, name, None)):
            rec = next(r for r in ops if r.op == name)
            raise SpecError(
                f"model {type(model).__qualname__} has no method {name!r} for "
                f"operation #{rec.index} {rec.call_repr()}; add "
                f"`def {name}(self, ...)` to the model"
            )


def _copier(model: object) -> Callable[[object], object]:
    """The model's ``__jostle_copy__``, else ``copy.deepcopy``."""
    custom = getattr(type(model), "__jostle_copy__", None)
    base: Callable[[object], object] = copy.deepcopy if custom is None else custom

    def copy_state(state: object) -> object:
        try:
            return base(state)
        except Exception as exc:
            raise SpecError(
                f"cannot copy model {type(state).__qualname__}: "
                f"{type(exc).__name__}: {exc}; the linearizability checker copies "
                "the model before each operation: make it deep-copyable or define "
                "`__jostle_copy__(self)` returning an independent copy"
            ) from exc

    return copy_state


def _fingerprinter(model: object) -> Callable[[object], Hashable | None]:
    """The model's ``__jostle_state__``, else a digest of its pickle or repr."""
    custom = getattr(type(model), "__jostle_state__", None)
    if custom is None:
        return _default_fingerprint
    state_of: Callable[[object], object] = custom
    first = state_of(model)
    try:
        hash(first)
    except TypeError:
        raise SpecTypeError(
            f"{type(model).__qualname__}.__jostle_state__() returned an unhashable "
            f"{type(first).__name__} ({first!r}); return a hashable value such as "
            "a tuple or frozenset"
        ) from None

    def fingerprint(state: object) -> Hashable | None:
        return state_of(state)

    return fingerprint


def _default_fingerprint(state: object) -> Hashable | None:
    target = getattr(state, "__dict__", state)
    # Any exception: user objects fail to pickle or repr in arbitrary ways.
    try:
        data = b"p" + pickle.dumps(target, protocol=5)
    except Exception:
        try:
            text = repr(target)
        except Exception:
            return None
        if " at 0x" in text:
            return None
        data = b"r" + text.encode("utf-8", "backslashreplace")
    return hashlib.blake2b(data, digest_size=16).digest()


def _apply(
    copy_state: Callable[[object], object], state: object, rec: OpRecord
) -> tuple[object, bool, object]:
    """Run ``rec`` on a copy of ``state``: (new state, raised?, result or exception)."""
    new = copy_state(state)
    try:
        value: object = getattr(new, rec.op)(*rec.args)
    except Exception as exc:  # whatever the model raises is its result
        return new, True, exc
    return new, False, value


def _equal(a: object, b: object) -> bool:
    """``a == b``, where raising or a non-bool answer (numpy) counts as unequal."""
    try:
        eq = a == b
    except Exception:  # user __eq__ may raise anything
        return False
    return eq is True


def _describe(raised: bool, value: object) -> str:
    """What the model did, in the style of ``OpRecord.outcome_repr``."""
    try:
        if raised:
            msg = str(value)
            name = type(value).__qualname__
            return f"raised {name}: {_short.repr(msg)[1:-1]}" if msg else f"raised {name}"
        return f"-> {_short.repr(value)}"
    except Exception:  # user __str__/__repr__ may raise anything
        return f"raised {type(value).__qualname__}" if raised else "-> <unprintable>"
