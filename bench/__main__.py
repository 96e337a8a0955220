"""Command line: ``python -m bench SUBCOMMAND``.

Subcommands:

* ``findings``: finding power of each tool on folders of bug cases.
* ``throughput``: executions/s, controlled and uncontrolled, and Hypothesis's
  own example rate, side by side (``_throughput``).
* ``checker``: the linearizability checker's time and memory against history
  length and workers (``_checker``).
* ``scaling``: fuzz-campaign executions/s under pytest ``-n 0`` and
  ``-n auto`` (``_scaling``).
* ``report``: all of the above, then the plots and ``docs/benchmark.md``
  (``_report``); ``tox -e bench`` runs it.

``--quick`` on ``throughput``, ``checker`` and ``scaling`` is for the tests: tiny sizes
and times, numbers not worth reading.  It is left out of the help.

``_one`` is internal: it runs a single measurement in a child process for
``findings`` and is left out of the help.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from ._tools import KNOWN, TOOLS

__all__ = ["main"]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}; e.g. --budget 10")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="jostle's benchmark: finding power and speed, side by side with "
                    "what users use today.")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{findings,throughput,checker,scaling,report}")

    findings = sub.add_parser(
        "findings", help="run every case with every tool, Buggy then Fixed",
        description="For each case and tool, run the Buggy variant, then the Fixed one, "
                    "each within --budget seconds in a fresh subprocess; print a table and "
                    "a per-tool summary, and write them as JSON with --json.")
    findings.add_argument("--cases", nargs="+", required=True, metavar="DIR",
                          help="case packages in the bugzoo format")
    findings.add_argument("--tool", action="append", required=True, choices=KNOWN,
                          metavar="TOOL",
                          help=f"a tool to measure (repeat for several): {', '.join(KNOWN)}; "
                               "a peer that is not installed is skipped with a note")
    findings.add_argument("--budget", type=_positive_seconds, required=True,
                          metavar="SECONDS", help="seconds per case, tool and variant")
    findings.add_argument("--seed", type=int, default=0, metavar="N",
                          help="base seed for every random choice (default 0)")
    findings.add_argument("--json", metavar="FILE", help="write rows and summary here")

    throughput = sub.add_parser(
        "throughput", help="executions/s, controlled and uncontrolled, and Hypothesis's rate",
        description="Executions per second of 2 threads x 5 ops, 3 tasks x 5 awaits and "
                    "2 processes x 5 ops, controlled and uncontrolled; Hypothesis's own "
                    "empty-test example rate and jostle's controlled example rate; the "
                    "median of several timed repetitions after a warm-up.")
    throughput.add_argument("--json", metavar="FILE", help="write the rates here")
    throughput.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)

    checker = sub.add_parser(
        "checker", help="linearizability checker time and memory against history size",
        description="Check generated linearizable histories of 10^2 to 10^5 operations "
                    "over 2, 4 and 8 workers, partitionable and not, each in a child "
                    "process with a time limit; timeouts are counted, not hidden.")
    checker.add_argument("--json", metavar="FILE", help="write the cases and summary here")
    checker.add_argument("--time-limit", type=_positive_seconds, default=60.0,
                         metavar="SECONDS", help="wall seconds per case (default 60)")
    checker.add_argument("--max-ops", type=int, default=None, metavar="N",
                         help="skip (and count as skipped) histories longer than N")
    checker.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)

    scaling = sub.add_parser(
        "scaling", help="fuzz-campaign executions/s with pytest -n 0 and -n auto",
        description="Run the fuzz campaigns under pytest with -n 0 and with -n auto "
                    "(pytest-xdist), each for --seconds of wall time, --repetitions times, "
                    "alternating; every pytest process reports the executions its jostle "
                    "engine made; print the median executions/s of each mode and their ratio.")
    scaling.add_argument("--json", metavar="FILE", help="write the rates here")
    scaling.add_argument("--seconds", type=_positive_seconds, default=20.0, metavar="S",
                         help="wall seconds per run, startup included (default 20)")
    scaling.add_argument("--repetitions", type=int, default=3, metavar="N",
                         help="runs per mode; the median is reported (default 3)")
    scaling.add_argument("--campaigns", default=None, metavar="DIR",
                         help="the campaign folder (default fuzz/)")
    scaling.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)

    report = sub.add_parser(
        "report", help="run every measurement and regenerate docs/benchmark.md",
        description="Run findings (every tool, on ../shared/bugzoo/cases and bench/cases, "
                    "those that exist), throughput, checker and scaling, write their JSON and "
                    "SVG plots under DOCS/benchmark/, and render DOCS/benchmark.md from them.")
    report.add_argument("--budget", type=_positive_seconds, default=None, metavar="SECONDS",
                        help="findings seconds per case, tool and variant (default 5)")
    report.add_argument("--seed", type=int, default=0, metavar="N",
                        help="findings base seed (default 0)")
    report.add_argument("--cases", nargs="+", default=None, metavar="DIR",
                        help="case folders instead of the default ones")
    report.add_argument("--docs", default=None, metavar="DIR",
                        help="where benchmark.md and benchmark/ go (default docs/)")
    report.add_argument("--render-only", action="store_true",
                        help="measure nothing: redraw the page from DOCS/benchmark/*.json")

    one = sub.add_parser("_one")  # internal: no help=, so it stays out of the listing
    one.add_argument("--case-dir", required=True)
    one.add_argument("--case", required=True)
    one.add_argument("--tool", required=True, choices=tuple(TOOLS))
    one.add_argument("--variant", required=True, choices=("buggy", "fixed"))
    one.add_argument("--budget", type=_positive_seconds, required=True)
    one.add_argument("--seed", type=int, required=True)
    one.add_argument("--out", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "_one":
        from ._isolate import run_one

        return run_one(args.case_dir, args.case, args.tool, args.variant, budget=args.budget,
                       seed=args.seed, out=args.out)
    if args.command == "throughput":
        from ._throughput import run_throughput

        if args.quick:
            run_throughput(json_path=args.json, seconds=0.05, repetitions=1, warmup=0.0)
        else:
            run_throughput(json_path=args.json)
        return 0
    if args.command == "report":
        from ._report import DEFAULT_BUDGET, run_report

        options: dict[str, Any] = {} if args.docs is None else {"docs": args.docs}
        budget = DEFAULT_BUDGET if args.budget is None else args.budget
        command = "python -m bench report " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])[1:])
        run_report(budget=budget, seed=args.seed, case_dirs=args.cases,
                   render_only=args.render_only, command=command.strip(), **options)
        return 0
    if args.command == "scaling":
        from ._scaling import run_scaling

        options = {} if args.campaigns is None else {"campaigns": args.campaigns}
        if args.quick:
            run_scaling(seconds=0.5, repetitions=1, json_path=args.json, **options)
        else:
            run_scaling(seconds=args.seconds, repetitions=args.repetitions, json_path=args.json,
                        **options)
        return 0
    if args.command == "checker":
        from ._checker import SIZES, WORKERS, run_checker

        sizes, workers = ((100,), (2,)) if args.quick else (SIZES, WORKERS)
        run_checker(sizes=sizes, workers=workers, json_path=args.json,
                    time_limit=args.time_limit, max_ops=args.max_ops)
        return 0
    from jostle import JostleError

    from ._findings import run_findings

    try:
        run_findings(args.cases, args.tool, budget=args.budget, seed=args.seed,
                     json_path=args.json)
    except JostleError as exc:  # a folder that is not a case package, say
        print(f"python -m bench findings: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
