"""Generated linearizable histories, and the models they are checked against.

``generate`` simulates ``workers`` workers on a virtual clock: each waits a
random gap, then runs an operation of random duration, so the intervals of
different workers overlap as they do in real runs (up to one operation per
worker at a time).  Each operation takes effect at a random instant inside its
own interval; applying the operations to the model in the order of those
instants gives every result.  That order is consistent with real time, so the
history is linearizable by construction and the checker has to find a
witness, which is the common (and, for the search, the full-length) case.

Two workloads:

* ``register`` (not partitionable): one register, ``write(v)`` and ``read()``
  with values from a small set, so that many orders reach equal states.
* ``map`` (partitionable by key): ``put(k, v)`` and ``get(k)`` on
  ``KEYS`` keys; :func:`by_key` is its ``partition=``.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

from jostle import History, OpRecord, Returned

__all__ = ["KEYS", "VALUES", "MapModel", "RegisterModel", "by_key", "generate"]

#: Keys of the ``map`` workload.
KEYS = 16
#: Distinct values written.
VALUES = 4


class RegisterModel:
    """One register holding an int (0 at first)."""

    def __init__(self) -> None:
        self.value = 0

    def write(self, value: int) -> None:
        """Set the value."""
        self.value = value

    def read(self) -> int:
        """The value."""
        return self.value

    def __jostle_state__(self) -> Hashable:
        return self.value

    def __jostle_copy__(self) -> RegisterModel:
        new = RegisterModel()
        new.value = self.value
        return new


class MapModel:
    """A map from int keys to int values (absent keys read as ``None``)."""

    def __init__(self) -> None:
        self.d: dict[int, int] = {}

    def put(self, key: int, value: int) -> None:
        """Set ``key``."""
        self.d[key] = value

    def get(self, key: int) -> int | None:
        """The value of ``key``, or ``None``."""
        return self.d.get(key)

    def __jostle_state__(self) -> Hashable:
        return frozenset(self.d.items())

    def __jostle_copy__(self) -> MapModel:
        new = MapModel()
        new.d = dict(self.d)
        return new


def by_key(op: str, args: tuple[object, ...]) -> Hashable | None:
    """The ``partition=`` of the map workload: the key each operation touches."""
    return args[0] if args else None


def _draw(rng: random.Random, partitioned: bool) -> tuple[str, tuple[int, ...]]:
    value = rng.randrange(VALUES)
    if partitioned:
        key = rng.randrange(KEYS)
        return ("put", (key, value)) if rng.random() < 0.5 else ("get", (key,))
    return ("write", (value,)) if rng.random() < 0.5 else ("read", ())


def generate(ops: int, workers: int, *, partitioned: bool, seed: int) -> History:
    """A linearizable history of ``ops`` operations spread over ``workers`` workers.

    Args:
        ops: operations in all (each worker gets ``ops // workers``, the first
            ones one more when it does not divide).
        workers: parallel workers.
        partitioned: the ``map`` workload (else the ``register``).
        seed: for every random choice; equal seeds give equal histories.

    Returns:
        The history, ordered by invoke time.
    """
    rng = random.Random(seed)
    planned: list[tuple[float, int, int, int, str, tuple[int, ...]]] = []
    index = 0
    for w in range(1, workers + 1):
        clock = rng.randrange(0, 100)
        for _ in range(ops // workers + (1 if w <= ops % workers else 0)):
            clock += rng.randrange(1, 50)  # gap before the call
            invoke = clock
            clock += rng.randrange(10, 200)  # the call's duration
            point = rng.uniform(invoke, clock)
            name, args = _draw(rng, partitioned)
            planned.append((point, invoke, clock, w, name, args))
    planned.sort()
    model: RegisterModel | MapModel = MapModel() if partitioned else RegisterModel()
    records = []
    for index, (_, invoke, response, w, name, args) in enumerate(planned):
        result = getattr(model, name)(*args)
        records.append(OpRecord(index, w, "thread", "parallel", name, args, invoke, response,
                                Returned(result)))
    records.sort(key=lambda r: (r.invoke, r.index))
    return History(tuple(records))
