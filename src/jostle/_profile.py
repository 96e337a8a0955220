"""``jostle.profile``: how a resource performs under concurrency.

The profiler is not the tester.  It runs the spec's operations for real,
from 1, 2, 4, ... workers of each kind the operations support (threads on
the engine's thread pool, tasks on its event loop, processes from its
process pool through the spec's handle, and a mix), each configuration for a
slice of the time budget, and reports throughput against worker count,
latency percentiles per operation, and where workers were blocked.

Measured properly, following the benchmarking practice of ``pyperf`` and
JMH: every configuration gets a discarded warm-up run, then ``repeats``
measured runs, each against a fresh resource, and every figure is a median
with its spread.  Wait instrumentation (``_profile_waits``) changes what it
measures, so it is off in the runs that give throughput and latency; each
measured run has an instrumented twin, interleaved (plain, instrumented,
plain...) so drift hits both alike, and the report states the throughput the
instrumentation cost.  The harness's own cost per call (the loop, two clock
reads, the histogram) is measured with an empty operation and stated too.

Arguments are drawn before any run, from the operations' own Hypothesis
strategies, inside one ``@given(st.data())`` function run with a fixed
``@seed`` and only the generate phase (what Hypothesis recommends instead
of ``.example()``, which warns outside interactive use): each example draws
one argument tuple per operation, so the pool follows Hypothesis's own
distribution, simplest values included, and stops early when a small space
is exhausted.  Each worker cycles through a list of calls of its own, the
operations in equal shares with arguments picked from the pool, shuffled
with a seed of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from ._calls import build, default_teardown, maybe_await
from ._engine import _Gate, get_engine
from ._errors import JostleError, SpecError, SpecTypeError
from ._handles import check_picklable, handle_for
from ._history import Raised, Returned
from ._processes import ProcessJob, ProcessWorker
from ._profile_data import Profile, ProfileRun, WaitSite
from ._profile_waits import WaitTotals, instrumented, worker_kind
from ._profile_workers import (
    Assignment,
    ProfiledHandle,
    Tally,
    noop,
    process_worker,
    run_async,
    run_sync,
    thread_job,
)
from ._spec import KINDS, Spec
from ._stacks import blocked_at, thread_stack
from ._threads import PoolThread

__all__ = ["PROFILE_KINDS", "ProfileOptions", "profile", "run_profile"]

PROFILE_KINDS = (*KINDS, "mixed")
# concurrent.futures.TimeoutError is the builtin only from 3.11 on.
_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)
MIN_RUN_SECONDS = 0.02
_WARMUP_SHARE = 0.5  # a warm-up run lasts half a measured one
_job_ids = itertools.count(1 << 30)


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    """A profile's settings, checked; ``where`` says where each came from."""

    budget: float
    max_workers: int = 4
    kinds: tuple[str, ...] | None = None
    repeats: int = 5
    waits: bool = True
    seed: int = 0
    timeout: float = 5.0


_API_WHERE = {name: f"jostle.profile({name}=...)" for name in
              ("budget", "max_workers", "kinds", "repeats", "waits", "seed", "timeout")}


def _number(value: object, name: str, where: Mapping[str, str], fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecTypeError(
            f"Expected a number of seconds but got {name}={value!r} "
            f"(type={type(value).__name__}) from {where[name]}; {fix}")
    if not value > 0:
        raise SpecError(f"{name}={value!r} from {where[name]} must be more than 0 seconds; {fix}")
    return float(value)


def _integer(value: object, name: str, where: Mapping[str, str], low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecTypeError(
            f"Expected an int but got {name}={value!r} (type={type(value).__name__}) "
            f"from {where[name]}; {fix}")
    if value < low:
        raise SpecError(f"{name}={value!r} from {where[name]} must be at least {low}; {fix}")
    return value


def check_options(spec: Spec, options: ProfileOptions, where: Mapping[str, str]
                  ) -> tuple[ProfileOptions, tuple[str, ...]]:
    """The options with defaults filled in, and the kinds to profile.

    Raises:
        SpecTypeError, SpecError: a bad value, naming where it came from
            and the fix.
    """
    if options.budget is None:
        raise SpecError(
            f"no time budget: give {where['budget']} the seconds the whole profile of "
            f"{spec.name!r} may take, e.g. 20")
    budget = _number(options.budget, "budget", where,
                     "give the seconds the whole profile may take, e.g. 20")
    timeout = _number(options.timeout, "timeout", where,
                      "give the seconds a worker may overrun its run before it counts as stuck")
    max_workers = _integer(options.max_workers, "max_workers", where, 1,
                           "profile 1, 2, 4 ... up to this many workers, e.g. 4")
    repeats = _integer(options.repeats, "repeats", where, 1,
                       "give the measured runs per configuration, e.g. 5 (3 or more for a spread)")
    seed = _integer(options.seed, "seed", where, 0, "give any non-negative int")
    possible: list[str] = [k for k in KINDS if k in spec.kinds]
    if len(possible) > 1:
        possible.append("mixed")
    kinds: tuple[str, ...]
    if options.kinds is None:
        kinds = tuple(k for k in possible if k != "mixed" or max_workers >= 2)
    else:
        if isinstance(options.kinds, str):
            raise SpecTypeError(
                f"Expected a collection of kinds but got kinds={options.kinds!r} from "
                f"{where['kinds']}; write kinds=({options.kinds!r},)")
        kinds = tuple(dict.fromkeys(options.kinds))
        for k in kinds:
            if k not in PROFILE_KINDS:
                raise SpecError(
                    f"unknown worker kind {k!r} (type={type(k).__name__}) from "
                    f"{where['kinds']}; choose from {', '.join(PROFILE_KINDS)}")
            if k not in possible:
                ops = "; ".join(f"{op.name}: {'/'.join(sorted(op.kinds))}"
                                for op in spec.operations)
                why = ("mixed needs operations that run on two kinds or more"
                       if k == "mixed" else f"no operation of {spec.name!r} runs on a {k}")
                hint = (" (give the spec handle=..., or the resource __jostle_handle__, "
                        "to run plain functions in processes)" if k == "process" else "")
                raise SpecError(
                    f"kind {k!r} from {where['kinds']} cannot be profiled: {why}; the "
                    f"operations run on {ops}{hint}. Profile "
                    f"{', '.join(possible)} instead")
        if "mixed" in kinds and max_workers < 2:
            raise SpecError(
                f"kind 'mixed' needs at least 2 workers but max_workers={max_workers} from "
                f"{where['max_workers']}; raise it or drop 'mixed' from {where['kinds']}")
        if not kinds:
            raise SpecError(f"kinds from {where['kinds']} is empty; give one of {possible}")
    checked = ProfileOptions(budget=budget, max_workers=max_workers, kinds=kinds,
                             repeats=repeats, waits=bool(options.waits), seed=seed,
                             timeout=timeout)
    return checked, kinds


def worker_counts(kind: str, max_workers: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``max_workers`` (and it); from 2 for ``mixed``."""
    counts = [n for n in (1 << i for i in range(max_workers.bit_length())) if n <= max_workers]
    if counts[-1] != max_workers:
        counts.append(max_workers)
    return tuple(n for n in counts if kind != "mixed" or n >= 2)


def draw_arguments(spec: Spec, seed: int, examples: int = 32) -> dict[str, list[tuple[Any, ...]]]:
    """Argument tuples per operation from its strategies (see the module notes)."""
    from hypothesis import (
        HealthCheck,
        Phase,
        Verbosity,
        given,
        seed as hseed,
        settings,
        strategies as st,
    )

    pools: dict[str, list[tuple[Any, ...]]] = {op.name: [] for op in spec.operations}
    tuples = [(op.name, st.tuples(*op.args)) for op in spec.operations]

    @settings(database=None, max_examples=examples, phases=[Phase.generate], deadline=None,
              derandomize=False, suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.quiet)
    @hseed(seed)
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        for name, strategy in tuples:
            pools[name].append(data.draw(strategy))

    draw()
    return pools


def _calls_for(spec: Spec, names: tuple[str, ...], pools: Mapping[str, list[tuple[Any, ...]]],
               seed: int) -> tuple[tuple[int, Callable[..., Any], tuple[Any, ...]], ...]:
    rng = random.Random(seed)
    slots = {op.name: i for i, op in enumerate(spec.operations)}
    length = max(64, 8 * len(names))
    calls = []
    for i in range(length):
        name = names[i % len(names)]
        pool = pools[name] or [()]
        calls.append((slots[name], spec.op(name).fn, rng.choice(pool)))
    rng.shuffle(calls)
    return tuple(calls)


def _environment() -> dict[str, str]:
    env = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "cpus": str(os.cpu_count() or "?"),
    }
    if hasattr(os, "sched_getaffinity"):
        env["cpus usable"] = str(len(os.sched_getaffinity(0)))
    if hasattr(os, "getloadavg"):
        env["load average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    gil = getattr(sys, "_is_gil_enabled", None)
    env["GIL"] = "on" if gil is None or gil() else "off"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        env["pytest-xdist"] = (f"worker {worker} of "
                               f"{os.environ.get('PYTEST_XDIST_WORKER_COUNT', '?')}")
    return env


class _Profiler:
    def __init__(self, spec: Spec, options: ProfileOptions, kinds: tuple[str, ...],
                 progress: Callable[[str], None] | None) -> None:
        self.spec = spec
        self.opt = options
        self.kinds = kinds
        self.progress = progress or (lambda _line: None)
        self.engine = get_engine()
        self.ops_by_kind: dict[str, tuple[str, ...]] = {
            k: tuple(op.name for op in spec.operations if k in op.kinds) for k in KINDS}
        self.is_async = tuple(op.is_async for op in spec.operations)
        self.pools = draw_arguments(spec, options.seed)

    # -- one run ---------------------------------------------------------
    def plan(self, kind: str, n: int, duration_ns: int) -> list[Assignment]:
        available = [k for k in KINDS if self.ops_by_kind[k]]
        out = []
        for w in range(1, n + 1):
            wk = available[(w - 1) % len(available)] if kind == "mixed" else kind
            calls = _calls_for(self.spec, self.ops_by_kind[wk], self.pools, self.opt.seed + w)
            out.append(Assignment(wk, w, calls, self.is_async, duration_ns))
        return out

    def run(self, kind: str, n: int, repeat: int, *, warmup: bool, instrument: bool,
            seconds: float) -> ProfileRun:
        plans = self.plan(kind, n, int(seconds * 1e9))
        loop = self.engine.loop
        with instrumented() if instrument else nullcontext() as totals:
            resource = self._build(loop)
            # No teardown after a failed run: a stuck worker may still hold the resource.
            tallies = self._workers(resource, plans, int(seconds * 1e9), instrument)
            self._teardown(loop, resource)
            waits, acquired = totals() if totals is not None else ({}, {})
        for t in tallies:
            waits = _merge_waits(waits, t.waits)
            for key, count in t.acquired.items():
                acquired[key] = acquired.get(key, 0) + count
        return self._record(kind, plans, repeat, warmup, instrument, tallies, waits, acquired)

    def _build(self, loop: Any) -> object:
        try:
            resource = loop.call(build(self.spec.factory), self.opt.timeout)
        except TimeoutError:
            raise SpecError(
                f"the resource factory {self.spec.name} did not return within "
                f"{self.opt.timeout} s while profiling") from None
        except Exception as exc:
            raise SpecError(
                f"the resource factory {self.spec.name} raised {type(exc).__name__}: {exc} "
                "while profiling; it is called with no arguments on jostle's loop thread"
            ) from exc
        return resource

    def _teardown(self, loop: Any, resource: object) -> None:
        teardown = self.spec.teardown or default_teardown
        try:
            loop.call(maybe_await(teardown, resource), self.opt.timeout)
        except Exception as exc:
            raise SpecError(
                f"the teardown of {self.spec.name} raised {type(exc).__name__}: {exc} "
                "while profiling") from exc

    def _workers(self, resource: object, plans: list[Assignment], duration_ns: int,
                 instrument: bool) -> list[Tally]:
        engine, timeout = self.engine, self.opt.timeout
        by_kind: dict[str, list[Assignment]] = {k: [] for k in KINDS}
        for a in plans:
            by_kind[a.kind].append(a)
        procs = self._start_processes(resource, by_kind["process"], instrument)
        # The engine's start gate (raw locks: never instrumented); the run's
        # end goes in ``end`` before it opens.
        gate = _Gate(len(by_kind["thread"]) + len(by_kind["task"]))
        end = [0]
        threads: list[tuple[Assignment, PoolThread, list[Any], list[int]]] = []
        for a, pt in zip(by_kind["thread"], engine.threads.acquire(len(by_kind["thread"])),
                         strict=True):
            out: list[Any] = []
            current = [-1]
            pt.submit(partial(thread_job, resource, a, gate, end, out, current))
            threads.append((a, pt, out, current))
        loop = engine.loop
        go = asyncio.Event()
        tasks = []
        for a in by_kind["task"]:
            current = [-1]
            tasks.append((a, loop.submit(_task_worker(resource, a, gate, end, go, current)),
                          current))
        if not gate.wait_arrived(timeout):
            gate.open()  # end[0] is 0: whoever did arrive makes no call and returns
            loop.loop.call_soon_threadsafe(go.set)
            for _a, pw in procs:
                engine.processes.discard(pw)
            raise JostleError(f"profiling {self.spec.name}: workers did not start within "
                              f"{timeout} s (is the machine overloaded?)")
        end[0] = time.monotonic_ns() + duration_ns
        gate.open()
        loop.loop.call_soon_threadsafe(go.set)
        for _a, pw in procs:
            pw.go()
        deadline = time.monotonic() + duration_ns / 1e9 + timeout
        tallies: list[Tally] = []
        stuck: list[str] = []
        done: list[PoolThread] = []
        for a, pt, out, current in threads:
            if pt.wait(deadline - time.monotonic()):
                done.append(pt)
                tallies.append(self._tally(a, out[0]))
            else:
                _stack, where = thread_stack(pt.ident)
                engine.threads.abandon(pt)
                stuck.append(self._stuck_line(a, current, where))
        engine.threads.release(done)
        for a, fut, current in tasks:
            try:
                tallies.append(self._tally(a, fut.result(max(deadline - time.monotonic(), 0))))
            except _TIMEOUTS:
                if loop.responsive(0.2):
                    fut.cancel()
                else:
                    loop.abandoned = True
                stuck.append(self._stuck_line(a, current, None))
        for a, pw in procs:
            records = pw.collect(max(deadline - time.monotonic(), 0))
            if records is None:
                stack = pw.dump_stacks()
                engine.processes.discard(pw)
                stuck.append(self._stuck_line(a, None, blocked_at(stack)))
                continue
            if not pw.alive or not records:
                engine.processes.discard(pw)
                raise JostleError(
                    f"profiling {self.spec.name}: process worker {a.worker} died (exit "
                    f"status {pw.exitcode}); an operation may have crashed the interpreter")
            engine.processes.release([pw])
            outcome = records[0].outcome
            tallies.append(self._tally(a, outcome.value if isinstance(outcome, Returned)
                                       else outcome))
        if stuck:
            raise JostleError(
                f"profiling {self.spec.name}: {len(stuck)} worker(s) did not finish within "
                f"{timeout} s after the end of the run (a deadlock, or a wait for something "
                "no one provides; test the spec with jostle.concurrent_test, whose hang "
                "report shows every stack):\n" + "\n".join(stuck))
        return tallies

    def _start_processes(self, resource: object, plans: list[Assignment], instrument: bool
                         ) -> list[tuple[Assignment, ProcessWorker]]:
        if not plans:
            return []
        handle = self.spec.handle(resource) if self.spec.handle is not None else handle_for(
            resource)
        try:
            wrapped = ProfiledHandle(handle, instrument=instrument)
        except Exception:
            check_picklable(handle, f"the handle of {self.spec.name}", "a profiling run")
            raise
        pool = self.engine.processes
        workers = pool.acquire(len(plans))
        try:
            for a, pw in zip(plans, workers, strict=True):
                pw.submit(ProcessJob(
                    job_id=next(_job_ids), worker=a.worker, phase="parallel", handle=wrapped,
                    steps=((0, "jostle-profile", process_worker, (a,)),), wait_for_go=True))
            for pw in workers:
                if not pw.wait_ready(self.opt.timeout):
                    raise JostleError(f"profiling {self.spec.name}: a process worker did not "
                                      f"attach within {self.opt.timeout} s")
        except BaseException:
            for pw in workers:
                pool.discard(pw)
            raise
        return list(zip(plans, workers, strict=True))

    def _tally(self, plan: Assignment, value: object) -> Tally:
        if isinstance(value, Tally):
            return value
        if isinstance(value, Raised):
            raise JostleError(f"profiling {self.spec.name}: {plan.kind} worker {plan.worker} "
                              f"failed:\n{value.traceback}")
        if isinstance(value, BaseException):
            raise JostleError(f"profiling {self.spec.name}: {plan.kind} worker {plan.worker} "
                              f"failed: {type(value).__name__}: {value}") from value
        raise JostleError(f"profiling {self.spec.name}: {plan.kind} worker {plan.worker} "
                          f"returned {value!r}")

    def _stuck_line(self, plan: Assignment, current: list[int] | None,
                    where: tuple[str, int] | None) -> str:
        what = "an operation"
        if current is not None and current[0] >= 0:
            slot, _fn, args = plan.calls[current[0]]
            what = f"{self.spec.operations[slot].name}({', '.join(map(repr, args))})"
        at = f" at {os.path.basename(where[0])}:{where[1]}" if where else ""
        return f"  {plan.kind} worker {plan.worker}: stuck in {what}{at}"

    def _record(self, kind: str, plans: list[Assignment], repeat: int, warmup: bool,
                instrument: bool, tallies: list[Tally], waits: WaitTotals,
                acquired: dict[tuple[str, str], int]) -> ProfileRun:
        names = [op.name for op in self.spec.operations]
        calls: dict[str, int] = {}
        raised: dict[str, dict[str, int]] = {}
        hists: dict[str, dict[int, int]] = {}
        for t in tallies:
            for slot, hist in t.latency.items():
                merged = hists.setdefault(names[slot], {})
                for b, c in hist.items():
                    merged[b] = merged.get(b, 0) + c
                calls[names[slot]] = calls.get(names[slot], 0) + sum(hist.values())
            for slot, errors in t.raised.items():
                seen = raised.setdefault(names[slot], {})
                for e, c in errors.items():
                    seen[e] = seen.get(e, 0) + c
        start = min(t.start_ns for t in tallies)
        end = max(t.end_ns for t in tallies)
        sites = tuple(WaitSite(p, c, w, k, n, total / 1e9, most / 1e9)
                      for (p, c, w, k), (n, total, most) in waits.items())
        return ProfileRun(
            kind=kind, workers=len(plans), worker_kinds=tuple(a.kind for a in plans),
            repeat=repeat, warmup=warmup, instrumented=instrument, seconds=(end - start) / 1e9,
            calls=calls, raised=raised,
            latency={op: tuple(sorted(h.items())) for op, h in hists.items()},
            waits=sites, acquired=acquired)

    # -- the harness's own cost ------------------------------------------
    def harness_cost(self, seconds: float = 0.01, runs: int = 5) -> dict[str, float]:
        """ns per call of the loop itself (an empty operation), the fastest of
        ``runs`` (the floor, as ``timeit`` reports: slower runs measure the
        machine's other load, not the loop)."""
        out = {}
        plan = Assignment("thread", 0, ((0, noop, ()),), (False,), 0)
        wanted = {"thread"} if set(self.kinds) - {"task"} else set()
        if {"task", "mixed"} & set(self.kinds):
            wanted.add("task")
        for kind in sorted(wanted, reverse=True):
            per_call = []
            for _ in range(runs):
                if kind == "thread":
                    tally = run_sync(None, plan, time.monotonic_ns() + int(seconds * 1e9), [0])
                else:
                    tally = self.engine.loop.call(_harness_task(plan, seconds), self.opt.timeout)
                calls = sum(tally.latency.get(0, {}).values())
                per_call.append((tally.end_ns - tally.start_ns) / max(calls, 1))
            out[kind] = min(per_call)
        return out

    # -- the whole profile -----------------------------------------------
    def configurations(self) -> list[tuple[str, int]]:
        return [(k, n) for k in self.kinds for n in worker_counts(k, self.opt.max_workers)]

    def run_seconds(self, configs: int, where: Mapping[str, str]) -> float:
        per_config = _WARMUP_SHARE + self.opt.repeats * (2 if self.opt.waits else 1)
        seconds = self.opt.budget / (configs * per_config)
        if seconds < MIN_RUN_SECONDS:
            need = math.ceil(MIN_RUN_SECONDS * configs * per_config * 10) / 10
            raise SpecError(
                f"budget={self.opt.budget:g} s from {where['budget']} is too small for "
                f"{configs} configuration(s) x {per_config:g} run(s) each: "
                f"{seconds * 1e3:.1f} ms a run, and a run needs at least "
                f"{MIN_RUN_SECONDS * 1e3:.0f} ms; raise the budget to {need:.1f} s or more, "
                f"or lower {where['max_workers']}, {where['repeats']} or {where['kinds']}")
        return seconds

    def profile(self, where: Mapping[str, str]) -> Profile:
        configs = self.configurations()
        seconds = self.run_seconds(len(configs), where)
        harness = self.harness_cost()
        runs: list[ProfileRun] = []
        for kind, n in configs:
            t0 = time.monotonic()
            runs.append(self.run(kind, n, 0, warmup=True, instrument=False,
                                 seconds=seconds * _WARMUP_SHARE))
            for r in range(1, self.opt.repeats + 1):
                for instrument in (False, True) if self.opt.waits else (False,):
                    runs.append(self.run(kind, n, r, warmup=False, instrument=instrument,
                                         seconds=seconds))
            done = [x for x in runs if x.kind == kind and x.workers == n and not x.warmup
                    and not x.instrumented]
            rates = sorted(x.throughput for x in done)
            self.progress(f"  {kind:<7} x{n:<3} {rates[len(rates) // 2]:>12,.0f} calls/s  "
                          f"({time.monotonic() - t0:.1f} s)")
        notes = []
        if self.opt.waits:
            notes.append("waits are timed only on primitives created by the operations' own "
                         "code while profiling (not on module-level ones made at import, nor "
                         "on multiprocessing locks)")
        if "task" in self.kinds or "mixed" in self.kinds:
            notes.append("a task worker yields to the loop between calls "
                         "(await asyncio.sleep(0)), as a task serving successive requests "
                         "would; that yield is counted in the harness cost, not in latency")
        ops: dict[str, tuple[str, ...]] = {k: self.ops_by_kind[k] for k in KINDS
                                           if self.ops_by_kind[k]}
        return Profile(
            spec_name=self.spec.name, runs=tuple(runs), operations=ops, run_seconds=seconds,
            budget=self.opt.budget, repeats=self.opt.repeats, seed=self.opt.seed,
            harness_ns=harness, environment=_environment(), notes=tuple(notes))


async def _task_worker(resource: object, plan: Assignment, gate: _Gate, end: list[int],
                       go: asyncio.Event, current: list[int]) -> Tally:
    gate.arrive()
    await go.wait()
    with worker_kind("task"):
        return await run_async(resource, plan, end[0], current)


async def _harness_task(plan: Assignment, seconds: float) -> Tally:
    return await run_async(None, plan, time.monotonic_ns() + int(seconds * 1e9), [0])


def _merge_waits(a: WaitTotals, b: WaitTotals) -> WaitTotals:
    if not b:
        return a
    out = {k: list(v) for k, v in a.items()}
    for key, (n, total, most) in b.items():
        row = out.setdefault(key, [0, 0, 0])
        row[0] += n
        row[1] += total
        row[2] = max(row[2], most)
    return out


def run_profile(spec: Spec, options: ProfileOptions, *, where: Mapping[str, str] = _API_WHERE,
                progress: Callable[[str], None] | None = None) -> Profile:
    """:func:`profile` with options from elsewhere (the CLI, the pytest plugin):
    ``where`` names each option's source for error messages."""
    if not isinstance(spec, Spec):
        raise SpecTypeError(
            f"Expected a jostle.Spec but got {spec!r} (type={type(spec).__name__}); "
            "build one with jostle.spec(...), jostle.from_machine(...) or jostle.load_cases(...)")
    checked, kinds = check_options(spec, options, where)
    return _Profiler(spec, checked, kinds, progress).profile(where)


def profile(
    spec: Spec,
    *,
    budget: float,
    max_workers: int = 4,
    kinds: Iterable[str] | None = None,
    repeats: int = 5,
    waits: bool = True,
    seed: int = 0,
    timeout: float = 5.0,
) -> Profile:
    """Measure how ``spec``'s resource performs under concurrency.

    Runs the operations for real from 1, 2, 4, ... ``max_workers`` workers of
    each kind (thread, task, process, and mixed when the operations support
    two kinds or more), each configuration a warm-up run and ``repeats``
    measured runs against a fresh resource, and returns every run with
    throughput, latency percentiles and wait sites to read off them.

    Args:
        spec: the resource, as for :func:`jostle.concurrent_test`; the model
            is not used.
        budget: seconds the measured runs may take in all (set-up, such as
            starting process workers, comes on top).
        max_workers: the most workers of a configuration.
        kinds: among ``"thread"``, ``"task"``, ``"process"``, ``"mixed"``
            (default: every kind the operations support, and mixed).
        repeats: measured runs per configuration (their median and spread
            are reported).
        waits: also run each measured run with wait instrumentation, to see
            where workers were blocked (it roughly doubles the runs; its
            cost is measured and reported).
        seed: seeds the arguments drawn from the operations' strategies.
        timeout: seconds a worker may overrun its run (or the factory take)
            before the profile stops with the stuck workers' places.

    Returns:
        A :class:`jostle.Profile`; print ``profile.table()`` or write the page
        with :func:`jostle.write_profile_report`.

    Raises:
        SpecTypeError, SpecError: a bad option or a kind the operations cannot
            run on; the message names the fix.
        JostleError: a worker got stuck or died while profiling.

    Example:
        >>> import jostle
        >>> from hypothesis import strategies as st
        >>> def add(s, x): s.add(x)
        >>> spec = jostle.spec(set, jostle.operation(add, st.integers()), model=None)
        >>> result = jostle.profile(spec, budget=0.2, max_workers=2, repeats=1, waits=False)
        >>> [(r.kind, r.workers) for r in result.runs if not r.warmup]
        [('thread', 1), ('thread', 2)]
    """
    return run_profile(spec, ProfileOptions(
        budget=budget, max_workers=max_workers,
        kinds=tuple(kinds) if kinds is not None and not isinstance(kinds, str) else kinds,  # type: ignore[arg-type]
        repeats=repeats, waits=waits, seed=seed, timeout=timeout))
