"""``python -m bench checker``: the linearizability checker's time and memory.

For every history length in ``SIZES`` (10^2 to 10^5 operations), every
worker count in ``WORKERS`` (2, 4, 8), partitionable (a keyed map checked
with ``partition=``) and not (one register), a linearizable history is
generated (``_histories.generate``) and ``jostle.check_linearizability``
is run on it:

* ``seconds``: ``time.perf_counter()`` around one check, without tracing.
* ``peak_bytes``: ``tracemalloc``'s peak during a second, traced check (the
  history itself was allocated before tracing started, so it is not counted).
  Tracing slows the check down, which is why it is not timed.

Each case runs in its own child process with a wall-time limit
(``time_limit`` s, for the generation and both checks) and ``max_steps``.
A case stopped by either is a *timeout*: ``timed_out`` is true, ``limit``
says which (``"max_steps"`` or ``"time_limit"``), and it is counted in the
summary, never dropped.  Cases left out with ``--max-ops`` are listed as
``skipped``, also counted.

JSON (``--json FILE``)::

    {"settings": {"time_limit": s, "max_steps": n, "seed": n},
     "cases": [{"ops", "workers", "partitioned", "model" ("map"|"register"),
                "ok" (linearizable verdict, or null if not decided),
                "timed_out", "limit" (null|"max_steps"|"time_limit"),
                "skipped", "seconds" (or null), "peak_bytes" (or null),
                "steps" (or null)}, ...],
     "summary": {"cases", "ok", "timed_out", "skipped", "not_linearizable",
                 "total_seconds"}}

Every generated history is linearizable, so ``not_linearizable`` above 0
is a checker bug.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import tracemalloc
from dataclasses import asdict, dataclass
from typing import Any

import jostle

from ._histories import MapModel, RegisterModel, by_key, generate
from ._measure import derive_seed
from ._table import grid

__all__ = ["CASE_KEYS", "SIZES", "SUMMARY_KEYS", "WORKERS", "CaseResult", "check_case",
           "format_checker", "run_checker"]

SIZES = (100, 1_000, 10_000, 100_000)
WORKERS = (2, 4, 8)
CASE_KEYS = ("ops", "workers", "partitioned", "model", "ok", "timed_out", "limit", "skipped",
             "seconds", "peak_bytes", "steps")
SUMMARY_KEYS = ("cases", "ok", "timed_out", "skipped", "not_linearizable", "total_seconds")


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One row of the JSON; see the module docstring."""

    ops: int
    workers: int
    partitioned: bool
    model: str
    ok: bool | None
    timed_out: bool
    limit: str | None
    skipped: bool
    seconds: float | None
    peak_bytes: int | None
    steps: int | None


def check_case(ops: int, workers: int, partitioned: bool, *, seed: int = 0,
               max_steps: int = 10_000_000) -> CaseResult:
    """Generate one history and check it, in this process, with no time limit."""
    history = generate(ops, workers, partitioned=partitioned,
                       seed=derive_seed("checker", seed, ops, workers, partitioned))
    model = MapModel if partitioned else RegisterModel
    partition = by_key if partitioned else None
    start = time.perf_counter()
    res = jostle.check_linearizability(history, model, partition=partition, max_steps=max_steps)
    seconds = time.perf_counter() - start
    peak: int | None = None
    if not res.timed_out:
        tracemalloc.start()
        try:
            jostle.check_linearizability(history, model, partition=partition,
                                         max_steps=max_steps)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return CaseResult(ops=ops, workers=workers, partitioned=partitioned,
                      model="map" if partitioned else "register",
                      ok=None if res.timed_out else res.ok, timed_out=res.timed_out,
                      limit="max_steps" if res.timed_out else None, skipped=False,
                      seconds=round(seconds, 6), peak_bytes=peak, steps=res.steps)


def _child(conn: Any, ops: int, workers: int, partitioned: bool, seed: int,
           max_steps: int) -> None:
    conn.send(asdict(check_case(ops, workers, partitioned, seed=seed, max_steps=max_steps)))
    conn.close()


def _isolated(ops: int, workers: int, partitioned: bool, *, seed: int, max_steps: int,
              time_limit: float) -> CaseResult:
    ctx = multiprocessing.get_context("forkserver")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, ops, workers, partitioned, seed, max_steps),
                       daemon=True)
    proc.start()
    send.close()
    row: dict[str, Any] | None = None
    if receive.poll(time_limit):
        try:
            row = receive.recv()
        except EOFError:  # the child died without an answer
            row = None
    if proc.is_alive():
        proc.kill()
    proc.join()
    receive.close()
    if row is not None:
        return CaseResult(**row)
    return CaseResult(ops=ops, workers=workers, partitioned=partitioned,
                      model="map" if partitioned else "register", ok=None, timed_out=True,
                      limit="time_limit", skipped=False, seconds=None, peak_bytes=None,
                      steps=None)


def run_checker(*, sizes: tuple[int, ...] = SIZES, workers: tuple[int, ...] = WORKERS,
                max_ops: int | None = None, time_limit: float = 60.0,
                max_steps: int = 10_000_000, seed: int = 0, isolate: bool = True,
                json_path: str | None = None) -> dict[str, Any]:
    """Run every case, print the table, and write the JSON if asked.

    Args:
        sizes: history lengths.
        workers: worker counts.
        max_ops: cases longer than this are skipped (and counted as skipped).
        time_limit: wall seconds per case (with ``isolate``).
        max_steps: the checker's own cap per case.
        seed: base seed of the generated histories.
        isolate: run each case in a child process that is killed at
            ``time_limit``; without it (tests), cases run here, unlimited.
        json_path: where to write the JSON, or ``None``.

    Returns:
        The JSON object (see the module docstring).
    """
    start = time.perf_counter()
    rows: list[CaseResult] = []
    for ops in sizes:
        for w in workers:
            for partitioned in (True, False):
                if max_ops is not None and ops > max_ops:
                    rows.append(CaseResult(ops, w, partitioned,
                                           "map" if partitioned else "register", None, False,
                                           None, True, None, None, None))
                elif isolate:
                    rows.append(_isolated(ops, w, partitioned, seed=seed, max_steps=max_steps,
                                          time_limit=time_limit))
                else:
                    rows.append(check_case(ops, w, partitioned, seed=seed,
                                           max_steps=max_steps))
    result: dict[str, Any] = {
        "settings": {"time_limit": time_limit, "max_steps": max_steps, "seed": seed},
        "cases": [asdict(r) for r in rows],
        "summary": {
            "cases": len(rows),
            "ok": sum(r.ok is True for r in rows),
            "timed_out": sum(r.timed_out for r in rows),
            "skipped": sum(r.skipped for r in rows),
            "not_linearizable": sum(r.ok is False for r in rows),
            "total_seconds": round(time.perf_counter() - start, 3),
        },
    }
    print(format_checker(result))
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return result


def _verdict(row: dict[str, Any]) -> str:
    if row["skipped"]:
        return "skipped"
    if row["timed_out"]:
        return f"TIMEOUT ({row['limit']})"
    return "ok" if row["ok"] else "NOT LINEARIZABLE"


def format_checker(result: dict[str, Any]) -> str:
    """One line per case, then the counts."""
    lines = [(f"{r['ops']:,}", str(r["workers"]), r["model"] + (" (partitioned)"
                                                                 if r["partitioned"] else ""),
              _verdict(r), "-" if r["seconds"] is None else f"{r['seconds']:.4f}",
              "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.2f}",
              "-" if r["steps"] is None else f"{r['steps']:,}")
             for r in result["cases"]]
    s = result["summary"]
    return (grid(("ops", "workers", "model", "verdict", "seconds", "peak MiB", "steps"), lines)
            + f"\n\n{s['cases']} cases: {s['ok']} linearizable, {s['timed_out']} timed out, "
              f"{s['skipped']} skipped, {s['not_linearizable']} not linearizable "
              f"({s['total_seconds']:.1f} s; limits {result['settings']['time_limit']:g} s "
              f"and {result['settings']['max_steps']:,} steps per case)")
