"""The tools the benchmark can measure, and the ones it cannot measure yet.

A tool is a measurement function (``_measure.Tool``).  Tools issue 4 names
that have no adapter yet are known by name, so asking for one prints a note
and skips it instead of failing or inventing rows.
"""

from __future__ import annotations

import importlib.util

from ._measure import Tool
from ._naive import measure_naive
from ._stress import measure_controlled, measure_stress

__all__ = ["KNOWN", "TOOLS", "unavailable"]

TOOLS: dict[str, Tool] = {
    "jostle-controlled": measure_controlled,
    "jostle-stress": measure_stress,
    "naive": measure_naive,
}

#: Tools with an adapter still to come: the note printed when one is asked for.
_LATER: dict[str, str] = {}
#: Peers measured through adapters when they are installed (the bench tox env).
_PEERS = ("frontrun", "detangle")

#: Every name ``--tool`` accepts.
KNOWN: tuple[str, ...] = (*TOOLS, *_LATER, *_PEERS)


def unavailable(name: str) -> str | None:
    """Why ``name`` cannot be measured in this run, or ``None`` if it can."""
    if name in TOOLS:
        return None
    if name in _LATER:
        return _LATER[name]
    if importlib.util.find_spec(name) is None:
        return "not installed"
    return "installed, but its adapter is not available yet"
