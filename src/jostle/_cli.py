"""The ``jostle`` command.

``jostle fuzz [PATH ...]`` runs every jostle test found in the Python files
under the paths (default ``fuzz/``) for a time budget, prints progress, and
prints each finding with its minimal scenario.  Findings are the output of a
fuzz run, so the exit status is 0 unless ``--fail-on-finding`` is given (for
CI) or the run itself broke (2).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["main"]


def _python_files(paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        if not os.path.isdir(path):
            raise SystemExit(f"jostle: no such file or folder: {path!r}")
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
            for f in sorted(files):
                if f.endswith(".py") and not f.startswith("_"):
                    yield os.path.join(root, f)


def _load(path: str) -> Any:
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # process workers import ops by module name
    name = os.path.splitext(os.path.basename(path))[0]
    loaded = sys.modules.get(name)
    if loaded is not None and os.path.abspath(getattr(loaded, "__file__", "") or "") == (
            os.path.abspath(path)):
        return loaded  # imported already by another campaign: one module object
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"jostle: cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _tests(paths: Sequence[str]) -> list[tuple[str, Callable[[], None]]]:
    found = []
    for path in _python_files(paths):
        module = _load(path)
        for attr, value in sorted(vars(module).items()):
            if callable(value) and getattr(value, "_jostle_spec", None) is not None:
                found.append((f"{path}::{attr}", value))
    return found


def _fuzz(args: argparse.Namespace) -> int:
    from hypothesis import settings

    from ._engine import get_engine
    from ._errors import ConcurrencyFailure
    from ._runner import concurrent_test

    tests = _tests(args.paths)
    if not tests:
        print(f"jostle: no jostle tests found under {', '.join(args.paths)}")
        return 2
    engine = get_engine()
    per_test = args.budget / len(tests)
    print(f"jostle fuzz: {len(tests)} test(s), {args.budget:g} s budget "
          f"({per_test:.1f} s each)", flush=True)
    findings: list[tuple[str, ConcurrencyFailure]] = []
    for test_id, test in tests:
        start, runs0 = time.monotonic(), engine.executions
        found: ConcurrencyFailure | None = None
        spec = test._jostle_spec  # type: ignore[attr-defined]
        options = dict(test._jostle_options)  # type: ignore[attr-defined]
        base = options.pop("settings") or settings()
        while time.monotonic() - start < per_test and found is None:
            fn = concurrent_test(spec, **options, settings=settings(
                base, max_examples=args.max_examples, database=None, derandomize=False))
            try:
                fn()
            except ConcurrencyFailure as exc:
                found = exc
            except Exception as exc:
                # Hypothesis groups distinct failures of one test; keep them all.
                inner = [e for e in getattr(exc, "exceptions", ())
                         if isinstance(e, ConcurrencyFailure)]
                if not inner:
                    raise
                found = inner[0]
                findings.extend((test_id, e) for e in inner[1:])
        took = time.monotonic() - start
        execs = engine.executions - runs0
        status = f"FOUND {type(found).__name__}" if found else "ok"
        print(f"  {test_id:<60} {execs:>7} executions {execs / max(took, 1e-9):8.0f}/s  "
              f"{took:6.1f} s  {status}", flush=True)
        if found is not None:
            findings.append((test_id, found))
    for test_id, failure in findings:
        print(f"\n=== {test_id}: {type(failure).__name__} ===\n{failure}")
    print(f"\njostle fuzz: {len(findings)} finding(s) in {len(tests)} test(s)")
    return 1 if findings and args.fail_on_finding else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jostle`` console script."""
    parser = argparse.ArgumentParser(prog="jostle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fuzz = sub.add_parser("fuzz", help="run jostle tests for a time budget and print findings")
    fuzz.add_argument("paths", nargs="*", default=["fuzz"], help="files or folders (default fuzz/)")
    fuzz.add_argument("--budget", type=float, default=60.0, help="seconds in all (default 60)")
    fuzz.add_argument("--max-examples", type=int, default=100,
                      help="Hypothesis examples per round (default 100)")
    fuzz.add_argument("--fail-on-finding", action="store_true",
                      help="exit with status 1 when anything was found")
    args = parser.parse_args(argv)
    try:
        return _fuzz(args)
    except KeyboardInterrupt:
        print("\njostle: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
