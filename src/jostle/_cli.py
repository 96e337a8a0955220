"""The ``jostle`` command: one function pair per subcommand, one table.

* ``jostle fuzz [PATH ...] --budget 8h``: run every jostle test found in the
  Python files under the paths (default ``fuzz/``) on all cores for a time
  budget, with live progress; each finding gets a folder under
  ``.jostle/failures/`` and the run ends with a campaign report.  Findings
  are the output of a fuzz run, so the exit status is 0 unless
  ``--fail-on-finding`` is given (1), the run broke (2) or was interrupted
  (130).
* ``jostle replay ID|PATH``: rerun one finding's ``repro.py`` in a fresh
  interpreter; its exit status is the repro's.
* ``jostle report``: list every finding as a table and write the index page.
* ``jostle profile [PATH ...]``: measure how the resource of each jostle test
  found there performs under concurrency (``jostle.profile``), print the
  table and write a report page per test under ``--report``.  Exit status
  0, 1 if a profile could not be made (a worker got stuck or crashed), 2
  for bad arguments or no tests found.

Each subcommand is an ``(add_arguments, run)`` pair in :data:`COMMANDS`; a
new one is a new entry.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["COMMANDS", "main"]


def _directory(args: argparse.Namespace) -> Path:
    return Path(args.dir or os.environ.get("JOSTLE_DIR") or ".jostle")


# --- jostle fuzz -------------------------------------------------------------

def _fuzz_arguments(parser: argparse.ArgumentParser) -> None:
    from ._settings import SETTINGS

    parser.add_argument("paths", nargs="*", default=["fuzz"],
                        help="files or folders (default fuzz/)")
    # Under pytest the budget is each test's; here the campaign's wall time.
    own = {"budget": "wall time of the whole campaign, shared out among its tests; a test "
                     "that found a failure gives its rest to the others (60, 90s, 5m, 8h; "
                     "default 60 s)"}
    for s in SETTINGS:
        default = " (default fuzz)" if s.name == "profile" else ""
        parser.add_argument(s.cli_flag, dest=s.name, default=None,
                            help=f"{own.get(s.name, s.help + default)} [env {s.env}]")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="worker processes (default: one per core, at most one per test)")
    parser.add_argument("--fail-on-finding", action="store_true",
                        help="exit with status 1 when anything was found")
    parser.add_argument("--progress", choices=("auto", "rich", "plain"), default="auto",
                        help="live table on a terminal (auto), always, or plain lines")


def _fuzz(args: argparse.Namespace) -> int:
    from ._errors import SpecError
    from ._fuzz import run_campaign
    from ._settings import SETTINGS, from_environ, resolve

    flags = {s.name: getattr(args, s.name) for s in SETTINGS}
    try:
        resolved = resolve([from_environ(), (lambda s: f"command line {s.cli_flag}", flags)])
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return run_campaign(paths=args.paths, resolved=resolved, jobs=args.jobs,
                        fail_on_finding=args.fail_on_finding, progress=args.progress)


# --- jostle replay -----------------------------------------------------------

def _replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("finding", help="a failure id (or its first digits), or the path of "
                                        "its folder, repro.py or report.json")
    parser.add_argument("repro_args", nargs="*",
                        help="passed to repro.py (a stress repro takes the number of runs)")
    parser.add_argument("--dir", default=None, help="the jostle folder (default .jostle)")


def _find_repro(finding: str, directory: Path) -> Path:
    path = Path(finding)
    if path.is_dir():
        path = path / "repro.py"
    elif path.name == "report.json":
        path = path.with_name("repro.py")
    if path.is_file():
        return path
    failures = directory / "failures"
    matches = sorted(p for p in failures.glob(f"{finding}*") if p.is_dir()) if (
        failures.is_dir() and finding) else []
    if len(matches) == 1:
        return matches[0] / "repro.py"
    if len(matches) > 1:
        raise SystemExit(f"jostle replay: {finding!r} matches {len(matches)} findings "
                         f"({', '.join(p.name for p in matches)}); give more digits")
    raise SystemExit(f"jostle replay: no finding {finding!r} in {failures} (and no such path); "
                     "`jostle report` lists them")


def _replay(args: argparse.Namespace) -> int:
    repro = _find_repro(args.finding, _directory(args))
    print(f"jostle replay: python {repro}", flush=True)
    return subprocess.call([sys.executable, str(repro), *args.repro_args])


# --- jostle report -----------------------------------------------------------

def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default=None, help="the jostle folder (default .jostle)")


def _report(args: argparse.Namespace) -> int:
    from ._findings import FailureStore
    from ._index import findings_table, write_index

    store = FailureStore(_directory(args))
    print(findings_table(store))
    print(f"\nindex page: {write_index(store)}")
    return 0


# --- jostle profile ----------------------------------------------------------

def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["fuzz"],
                        help="files or folders (default fuzz/)")
    parser.add_argument("-k", metavar="REGEX", default=None,
                        help="only tests whose id (path::name) matches this regex")
    parser.add_argument("--exclude", metavar="REGEX", default=None,
                        help="skip tests whose id matches this regex (e.g. canary)")
    parser.add_argument("--budget", type=float, default=20.0, metavar="SECONDS",
                        help="seconds of measured runs per test (default 20)")
    parser.add_argument("--max-workers", type=int, default=4, metavar="N",
                        help="profile 1, 2, 4 ... up to this many workers (default 4)")
    parser.add_argument("--kinds", default=None, metavar="KIND,...",
                        help="among thread,task,process,mixed (default: all the "
                             "operations support)")
    parser.add_argument("--repeats", type=int, default=5, metavar="N",
                        help="measured runs per configuration (default 5)")
    parser.add_argument("--no-waits", action="store_true",
                        help="skip the instrumented runs that time lock and queue waits")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the operations' arguments (default 0)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="seconds a worker may overrun its run before it counts as "
                             "stuck (default 5)")
    parser.add_argument("--report", default=os.path.join(".jostle", "profile"), metavar="DIR",
                        help="where the report pages go (default .jostle/profile/)")


def _profile(args: argparse.Namespace) -> int:
    import re

    from ._errors import JostleError, SpecError, SpecTypeError
    from ._fuzz import discover
    from ._profile import ProfileOptions, run_profile
    from ._profile_report import (
        PLOTS_HINT,
        _pyplot,
        report_dir,
        write_index,
        write_profile_report,
    )

    where = {"budget": "--budget", "max_workers": "--max-workers", "kinds": "--kinds",
             "repeats": "--repeats", "waits": "--no-waits", "seed": "--seed",
             "timeout": "--timeout"}
    try:
        select = re.compile(args.k) if args.k else None
        exclude = re.compile(args.exclude) if args.exclude else None
    except re.error as exc:
        print(f"jostle profile: -k/--exclude must be a regular expression: {exc}",
              file=sys.stderr)
        return 2
    tests = [(test_id, test) for test_id, _module, _attr, test in discover(args.paths)
             if (select is None or select.search(test_id))
             and (exclude is None or not exclude.search(test_id))]
    if not tests:
        print(f"jostle profile: no jostle tests found under {', '.join(args.paths)}"
              + (" matching -k/--exclude" if select or exclude else ""))
        return 2
    options = ProfileOptions(
        budget=args.budget, max_workers=args.max_workers,
        kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        if args.kinds is not None else None,
        repeats=args.repeats, waits=not args.no_waits, seed=args.seed, timeout=args.timeout)
    plots = _pyplot() is not None
    print(f"jostle profile: {len(tests)} test(s), {args.budget:g} s budget each"
          + ("" if plots else f"; no plots ({PLOTS_HINT})"), flush=True)
    failed = 0
    pages = []
    for test_id, test in tests:
        print(f"\n{test_id}", flush=True)
        try:
            result = run_profile(test._jostle_spec, options, where=where,
                                 progress=lambda line: print(line, flush=True))
        except (SpecError, SpecTypeError) as exc:
            print(f"jostle profile: {exc}", file=sys.stderr)
            return 2
        except JostleError as exc:
            print(f"  profile failed: {exc}", flush=True)
            failed += 1
            continue
        print("\n" + result.table(), flush=True)
        page = write_profile_report(result, report_dir(args.report, test_id))
        pages.append((test_id, page, result))
        print(f"\nreport: {page}", flush=True)
    if len(pages) > 1:
        index = write_index(args.report, pages)
        print(f"\njostle profile: {len(pages)} report(s); all of them: {index}")
    return 1 if failed else 0


Command = tuple[str, Callable[[argparse.ArgumentParser], None],
                Callable[[argparse.Namespace], int]]

#: ``name -> (help, add_arguments, run)``.
COMMANDS: dict[str, Command] = {
    "fuzz": ("run jostle tests on all cores for a time budget; write each finding's folder",
             _fuzz_arguments, _fuzz),
    "replay": ("rerun one finding's repro.py", _replay_arguments, _replay),
    "report": ("list all findings and write the index page", _report_arguments, _report),
    "profile": ("measure throughput, latency and waits under concurrency",
                _profile_arguments, _profile),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jostle`` console script."""
    parser = argparse.ArgumentParser(prog="jostle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _run) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        print("\njostle: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
