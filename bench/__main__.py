"""Command line: ``python -m bench SUBCOMMAND``.

Subcommands:

* ``findings``: finding power of each tool on folders of bug cases.

``_one`` is internal: it runs a single measurement in a child process for
``findings`` and is left out of the help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    sub = parser.add_subparsers(dest="command", required=True, metavar="{findings}")

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
                               "tools without an adapter here are skipped with a note")
    findings.add_argument("--budget", type=_positive_seconds, required=True,
                          metavar="SECONDS", help="seconds per case, tool and variant")
    findings.add_argument("--seed", type=int, default=0, metavar="N",
                          help="base seed for every random choice (default 0)")
    findings.add_argument("--json", metavar="FILE", help="write rows and summary here")

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
