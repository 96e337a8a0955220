"""The per-example cost of the leak check: ``python -m bench._leak_cost``.

The check opens before each Hypothesis example and closes after it, so its
clean case (nothing leaked) is paid on every example.  This times an empty
check, all kinds and each kind alone, in a process where jostle's engine is
warm (its threads, loop and pools exist, as in a real run).
"""

from __future__ import annotations

import timeit

import jostle
from jostle import Scenario, Step, WorkerPlan
from jostle._leaks import LEAK_KINDS, LeakCheck


class _Counter:
    def __init__(self) -> None:
        self.n = 0


def _get(c: _Counter) -> int:
    return c.n


class _Model:
    def __init__(self) -> None:
        self.n = 0

    def get(self) -> int:
        return self.n


def main(number: int = 5000) -> dict[str, float]:
    """Microseconds per clean check, best of five, keyed by the kinds checked."""
    spec = jostle.spec(_Counter, jostle.operation(_get, name="get", kinds=("thread", "task")),
                       model=_Model)
    jostle.execute(spec, Scenario(workers=(WorkerPlan("thread", (Step("get"),)),
                                           WorkerPlan("task", (Step("get"),)))))

    def once(kinds: tuple[str, ...]) -> None:
        with LeakCheck(kinds):
            pass

    out = {}
    for kinds in [LEAK_KINDS, *((k,) for k in LEAK_KINDS)]:
        best = min(timeit.repeat(lambda k=kinds: once(k), number=number, repeat=5))
        out[",".join(kinds)] = best / number * 1e6
    return out


if __name__ == "__main__":
    for name, us in main().items():
        print(f"{name:45s} {us:6.1f} us")
