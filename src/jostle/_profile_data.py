"""What a profile measured, and the statistics read off it.

A :class:`Profile` holds every run it made, warm-ups included (flagged), so
whatever the report says can be recomputed from the runs and checked
against what the resource itself counted.  Figures over repeated runs are
medians with their spread (:class:`Spread`: min, quartiles, max), never a
single run's number: one run on a shared machine says little.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Profile", "ProfileRun", "Spread", "WaitSite", "percentile_of"]

# A wait site's primitive names what was called on it ("asyncio.Queue.get");
# acquisitions are counted per primitive ("asyncio.Queue").
_WAIT_SUFFIXES = (".wait", ".get", ".put")


@dataclass(frozen=True, slots=True)
class Spread:
    """A median over repeated runs, with the spread around it.

    Attributes:
        median: the median of the values.
        low: the smallest value.
        high: the largest value.
        q1: the first quartile (the median of the lower half).
        q3: the third quartile.
        n: how many values.
    """

    median: float
    low: float
    high: float
    q1: float
    q3: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """The spread of ``values`` (NaN everywhere when there are none)."""
        xs = sorted(values)
        if not xs:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, 0)
        half = len(xs) // 2
        lower, upper = xs[:half] or xs, xs[-half:] if half else xs
        return cls(statistics.median(xs), xs[0], xs[-1], statistics.median(lower),
                   statistics.median(upper), len(xs))

    @property
    def relative_range(self) -> float:
        """(high - low) / median: how far apart the runs were."""
        return (self.high - self.low) / self.median if self.median else float("nan")


def percentile_of(hist: Sequence[tuple[int, int]], q: float) -> float:
    """The ``q``-th percentile (0-100) of a latency histogram, in seconds.

    ``hist`` is ``(bucket lower bound in ns, count)`` pairs in increasing
    order; a bucket stands for its midpoint.
    """
    total = sum(c for _, c in hist)
    if not total:
        return float("nan")
    rank = q / 100 * total
    seen = 0
    for low, count in hist:
        seen += count
        if seen >= rank:
            width = 1 << max(low.bit_length() - 6, 0)
            return (low + (width - 1) / 2) / 1e9
    return hist[-1][0] / 1e9


@dataclass(frozen=True, slots=True)
class WaitSite:
    """Time workers spent blocked at one place, on one kind of primitive.

    Attributes:
        primitive: what was waited on: ``"threading.Lock"``,
            ``"threading.Condition.wait"``, ``"asyncio.Queue.get"``,
            ``"fcntl.flock"``...
        created_at: ``file:line`` of the user's code that created it.
        waited_at: ``file:line`` of the user's code that waited.
        kind: the kind of worker that waited (``"other"``: a thread the
            operations started themselves).
        waits: how many acquisitions or waits blocked.
        total_s: the time they were blocked, summed over workers.
        max_s: the longest single wait.
    """

    primitive: str
    created_at: str
    waited_at: str
    kind: str
    waits: int
    total_s: float
    max_s: float

    @property
    def mean_s(self) -> float:
        """The mean blocked time per wait."""
        return self.total_s / self.waits if self.waits else 0.0


@dataclass(frozen=True, slots=True)
class ProfileRun:
    """One timed run of one configuration against a fresh resource.

    Attributes:
        kind: ``"thread"``, ``"task"``, ``"process"`` or ``"mixed"``.
        workers: how many workers ran at once.
        worker_kinds: each worker's kind (all the same unless mixed).
        repeat: which repetition of its configuration (0 for a warm-up).
        warmup: a warm-up run: not counted in any figure.
        instrumented: wait instrumentation was on.
        seconds: from the first worker's start to the last one's end.
        calls: completed calls by operation name.
        raised: by operation name, how many calls raised each exception type.
        latency: by operation name, the latency histogram as ``(bucket lower
            bound in ns, calls)`` pairs, in increasing order.
        waits: where workers were blocked (instrumented runs only).
        acquired: instrumented runs: acquisitions by (primitive, created_at).
    """

    kind: str
    workers: int
    worker_kinds: tuple[str, ...]
    repeat: int
    warmup: bool
    instrumented: bool
    seconds: float
    calls: Mapping[str, int]
    raised: Mapping[str, Mapping[str, int]]
    latency: Mapping[str, tuple[tuple[int, int], ...]]
    waits: tuple[WaitSite, ...] = ()
    acquired: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        """Completed calls of every operation."""
        return sum(self.calls.values())

    @property
    def throughput(self) -> float:
        """Completed calls per second."""
        return self.total_calls / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, op: str, q: float) -> float:
        """The ``q``-th percentile latency of ``op`` in this run, in seconds."""
        return percentile_of(self.latency.get(op, ()), q)


@dataclass(frozen=True)
class Profile:
    """How a resource performed under concurrency: every run, and summaries.

    Built by :func:`jostle.profile`; rendered by :meth:`table` and
    :func:`jostle.write_profile_report`.

    Attributes:
        spec_name: the profiled spec's name.
        runs: every run, in the order made (warm-ups included, flagged).
        operations: by worker kind, the operations that kind ran.
        run_seconds: the time budget of each measured run.
        budget: the budget the whole profile was given, in seconds.
        repeats: measured runs per configuration (each with and without
            wait instrumentation, if on).
        seed: the seed the operations' arguments were drawn with.
        harness_ns: by worker kind, what the profiler's loop costs per call
            (measured with an empty operation), in nanoseconds.
        environment: Python version, CPU count, platform, pytest-xdist.
        notes: what the reader should know about this profile.
    """

    spec_name: str
    runs: tuple[ProfileRun, ...]
    operations: Mapping[str, tuple[str, ...]]
    run_seconds: float
    budget: float
    repeats: int
    seed: int
    harness_ns: Mapping[str, float]
    environment: Mapping[str, str]
    notes: tuple[str, ...] = ()

    # -- selections ------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds profiled, in order."""
        return tuple(dict.fromkeys(r.kind for r in self.runs))

    def worker_counts(self, kind: str) -> tuple[int, ...]:
        """The worker counts profiled for ``kind``, increasing."""
        return tuple(sorted({r.workers for r in self.runs if r.kind == kind}))

    def measured(self, kind: str, workers: int, *, instrumented: bool = False
                 ) -> tuple[ProfileRun, ...]:
        """The measured (not warm-up) runs of one configuration."""
        return tuple(r for r in self.runs if r.kind == kind and r.workers == workers
                     and not r.warmup and r.instrumented == instrumented)

    # -- figures ---------------------------------------------------------
    def throughput(self, kind: str, workers: int) -> Spread:
        """Calls per second over the uninstrumented runs of a configuration."""
        return Spread.of(r.throughput for r in self.measured(kind, workers))

    def latency(self, kind: str, workers: int, op: str, q: float) -> Spread:
        """``op``'s ``q``-th percentile latency (s) over a configuration's runs."""
        return Spread.of(r.percentile(op, q) for r in self.measured(kind, workers)
                         if r.calls.get(op))

    def calls(self, kind: str, workers: int, op: str) -> int:
        """Completed calls of ``op`` summed over a configuration's measured runs."""
        return sum(r.calls.get(op, 0) for r in self.measured(kind, workers))

    def peak(self, kind: str) -> tuple[int, Spread]:
        """The worker count with the highest median throughput, and it."""
        best = max(self.worker_counts(kind), key=lambda n: self.throughput(kind, n).median)
        return best, self.throughput(kind, best)

    def scaling_limit(self, kind: str, *, gain: float = 0.1) -> int | None:
        """The worker count past which adding workers gains less than ``gain``.

        Returns the smallest count ``n`` such that no larger count's median
        throughput reaches ``(1 + gain)`` times ``n``'s, or ``None`` if even
        the largest count but one was beaten by that much (still scaling).
        """
        counts = self.worker_counts(kind)
        medians = [self.throughput(kind, n).median for n in counts]
        for i, n in enumerate(counts[:-1]):
            if max(medians[i + 1:]) < (1 + gain) * medians[i]:
                return n
        return None

    def instrumentation_cost(self, kind: str, workers: int) -> float | None:
        """The throughput lost to wait instrumentation in one configuration:
        ``1 - median(instrumented) / median(plain)`` (negative: within noise),
        or ``None`` if it was not measured."""
        inst = Spread.of(r.throughput for r in self.measured(kind, workers, instrumented=True))
        plain = self.throughput(kind, workers)
        if not inst.n or not plain.n or not plain.median:
            return None
        return 1 - inst.median / plain.median

    def waits(self) -> tuple[WaitSite, ...]:
        """Every wait site over the instrumented runs, most blocked time first."""
        merged: dict[tuple[str, str, str, str], list[float]] = {}
        for r in self.runs:
            if r.warmup or not r.instrumented:
                continue
            for w in r.waits:
                row = merged.setdefault((w.primitive, w.created_at, w.waited_at, w.kind),
                                        [0, 0.0, 0.0])
                row[0] += w.waits
                row[1] += w.total_s
                row[2] = max(row[2], w.max_s)
        sites = [WaitSite(p, c, wa, k, int(n), t, m) for (p, c, wa, k), (n, t, m) in
                 merged.items()]
        return tuple(sorted(sites, key=lambda s: (-s.total_s, s.waited_at)))

    def acquisitions(self, primitive: str, created_at: str) -> int:
        """Acquisitions of primitives made at ``created_at`` over the instrumented runs."""
        base = primitive.rsplit(".", 1)[0] if primitive.endswith(_WAIT_SUFFIXES) else primitive
        return sum(r.acquired.get((base, created_at), 0)
                   for r in self.runs if r.instrumented and not r.warmup)

    def worker_seconds(self) -> float:
        """Workers x seconds over the instrumented runs (the time waits are a share of)."""
        return sum(r.workers * r.seconds for r in self.runs if r.instrumented and not r.warmup)

    # -- output ----------------------------------------------------------
    def table(self) -> str:
        """The terminal table: throughput and latency per configuration, top waits."""
        from ._profile_report import format_table

        return format_table(self)

    def to_json(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (``profile.json`` in the report)."""
        return {
            "spec": self.spec_name, "budget": self.budget, "run_seconds": self.run_seconds,
            "repeats": self.repeats, "seed": self.seed,
            "operations": {k: list(v) for k, v in self.operations.items()},
            "harness_ns": dict(self.harness_ns), "environment": dict(self.environment),
            "notes": list(self.notes),
            "runs": [{
                "kind": r.kind, "workers": r.workers, "worker_kinds": list(r.worker_kinds),
                "repeat": r.repeat, "warmup": r.warmup, "instrumented": r.instrumented,
                "seconds": r.seconds, "calls": dict(r.calls),
                "raised": {k: dict(v) for k, v in r.raised.items()},
                "latency": {k: [list(p) for p in v] for k, v in r.latency.items()},
                "waits": [{"primitive": w.primitive, "created_at": w.created_at,
                           "waited_at": w.waited_at, "kind": w.kind, "waits": w.waits,
                           "total_s": w.total_s, "max_s": w.max_s} for w in r.waits],
                "acquired": [[p, c, n] for (p, c), n in r.acquired.items()],
            } for r in self.runs],
        }
