"""The tools the benchmark can measure, and what each of them supports.

A tool is a measurement function (``_measure.Tool``).  jostle's tools and
``naive`` always run.  The peers (``frontrun``, ``detangle``) run when
their package is installed (the ``bench`` tox env installs them); asking for
one that is not installed prints a note and skips it, without rows.

A peer that cannot express a case's kind gets **skipped rows** for that case
(Buggy and Fixed alike): not detected, no executions, and a ``failure``
that starts with :data:`SKIPPED` and says why.  The summary leaves skipped
rows out of every count (``_findings.summarize``), so a skip is neither a
miss nor a find.  A kind a peer runs with a stand-in (frontrun's threads for
processes) is measured as usual, with a note printed once.

:func:`prepare` runs in the measurement's child process before the case
modules are imported (frontrun must patch ``threading`` before a case
creates a lock at import time).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from . import _detangle, _frontrun
from ._measure import SKIPPED, Tool
from ._naive import measure_naive
from ._stress import measure_controlled, measure_stress

__all__ = ["KNOWN", "SKIPPED", "TOOLS", "prepare", "skip_reason", "stand_in_note", "unavailable"]

TOOLS: dict[str, Tool] = {
    "jostle-controlled": measure_controlled,
    "jostle-stress": measure_stress,
    "naive": measure_naive,
    "frontrun": _frontrun.measure_frontrun,
    "detangle": _detangle.measure_detangle,
}

#: Peers measured through adapters when they are installed (the bench tox env).
_PEERS = ("frontrun", "detangle")
#: Case kinds each tool cannot express, with the reason.
_SKIPPED_KINDS: dict[str, dict[str, str]] = {
    "frontrun": _frontrun.SKIPPED_KINDS,
    "detangle": _detangle.SKIPPED_KINDS,
}
#: Case kinds a tool runs with a stand-in, with the note printed once.
_STAND_INS: dict[str, dict[str, str]] = {
    "frontrun": _frontrun.STAND_IN_KINDS,
}
_PREPARE: dict[str, Callable[[], None]] = {
    "frontrun": _frontrun.prepare,
}

#: Every name ``--tool`` accepts.
KNOWN: tuple[str, ...] = tuple(TOOLS)


def unavailable(name: str) -> str | None:
    """Why ``name`` cannot be measured in this run, or ``None`` if it can."""
    if name in _PEERS and importlib.util.find_spec(name) is None:
        return "not installed"
    return None


def skip_reason(tool: str, kind: str) -> str | None:
    """The ``failure`` text of ``tool``'s skipped rows for a ``kind`` case,
    or ``None`` when the tool measures that kind."""
    why = _SKIPPED_KINDS.get(tool, {}).get(kind)
    return None if why is None else SKIPPED + why


def stand_in_note(tool: str, kind: str) -> str | None:
    """The note for a ``kind`` case that ``tool`` runs with a stand-in, or ``None``."""
    return _STAND_INS.get(tool, {}).get(kind)


def prepare(tool: str) -> None:
    """Ready this process for measuring with ``tool``, before cases are imported."""
    hook = _PREPARE.get(tool)
    if hook is not None:
        hook()
