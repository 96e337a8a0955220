"""What one measurement (one case, one tool, one variant) produces.

A measurement runs in a child process (``_isolate``) and may be killed at its
hard time limit.  So that a kill does not throw away what was already seen,
the child reports through a :class:`Progress` file of JSON lines: a ``first``
line the moment the first failure is observed, and a ``done`` line with the
final :class:`Measurement`.  The parent reads the last line it finds.

A counterexample is *minimal* (``is_minimal``) when its workers are at most
``MINIMAL["workers"]`` and its most operations per worker at most
``MINIMAL["ops_per_worker"]`` (the largest entry when that is a list such as
``[1, 2]``); a missing counterexample is not minimal.

Seeds are derived with SHA-256 from the ``--seed`` value and the names that
identify the measurement (never from ``hash()``, which is salted per
process), so a rerun with the same ``--seed`` makes the same choices.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from jostle import Case

__all__ = [
    "FAILURE_CHARS",
    "SKIPPED",
    "Measurement",
    "Progress",
    "Shrunk",
    "Tool",
    "Variant",
    "derive_seed",
    "is_minimal",
    "is_skipped",
    "largest",
    "short",
]

Variant = Literal["buggy", "fixed"]

#: Longest ``failure`` text in a row.
FAILURE_CHARS = 120
#: How the ``failure`` of a skipped row starts: the tool cannot express the
#: case's kind, so it was not run (``_tools``, ``_findings``).
SKIPPED = "skipped: "


@dataclass(frozen=True, slots=True)
class Shrunk:
    """The size of the counterexample a tool reported.

    Attributes:
        workers: parallel workers in it.
        ops: most operations of any one worker.
        preemptions: forced context switches, or ``None`` when the tool
            does not control them (stress and naive runs).
    """

    workers: int
    ops: int
    preemptions: int | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    """The outcome of one tool on one variant of one case.

    Attributes:
        detected: the tool reported a failure within the budget.
        seconds_to_first: from the start of the measurement to the first
            failing execution observed, or ``None``.
        executions: runs of the scenario (or plan) the tool made.
        failure: a short description of the failure, or why nothing could
            be measured (``harness timeout``, ``harness error: ...``).
        shrunk: the counterexample's size, or ``None``.
    """

    detected: bool
    seconds_to_first: float | None
    executions: int
    failure: str | None
    shrunk: Shrunk | None

    def to_json(self) -> dict[str, Any]:
        """The row fields this measurement fills, JSON-ready."""
        return {
            "detected": self.detected,
            "seconds_to_first": (None if self.seconds_to_first is None
                                 else round(self.seconds_to_first, 6)),
            "executions": self.executions,
            "failure": self.failure,
            "shrunk": None if self.shrunk is None else asdict(self.shrunk),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        """Inverse of :meth:`to_json`."""
        shrunk = data.get("shrunk")
        return cls(
            detected=bool(data["detected"]),
            seconds_to_first=data.get("seconds_to_first"),
            executions=int(data.get("executions", 0)),
            failure=data.get("failure"),
            shrunk=None if shrunk is None else Shrunk(**shrunk),
        )


class Tool(Protocol):
    """A tool's measurement function, as the child process calls it."""

    def __call__(self, case: Case, variant: Variant, *, budget: float, seed: int,
                 progress: Progress) -> Measurement:
        """Run ``case``'s ``variant`` for at most ``budget`` seconds."""


class Progress:
    """Appends the child's events to a JSON-lines file the parent reads.

    Args:
        path: the file; ``None`` keeps events in memory only (tests).
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = path
        self.first_seen: dict[str, Any] | None = None

    def _write(self, event: dict[str, Any]) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def first(self, seconds: float, executions: int, failure: str) -> None:
        """Record the first failure the moment it is seen (once)."""
        if self.first_seen is not None:
            return
        self.first_seen = {"event": "first", "seconds_to_first": seconds,
                           "executions": executions, "failure": failure}
        self._write(self.first_seen)

    def done(self, measurement: Measurement) -> None:
        """Record the final measurement."""
        self._write({"event": "done", **measurement.to_json()})

    @staticmethod
    def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None,
                                                  dict[str, Any] | None]:
        """The ``first`` and ``done`` events in ``path`` (each or both ``None``)."""
        first: dict[str, Any] | None = None
        done: dict[str, Any] | None = None
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None, None
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:  # a line cut short by a kill
                continue
            if event.get("event") == "first":
                first = event
            elif event.get("event") == "done":
                done = event
        return first, done


def short(text: str, limit: int = FAILURE_CHARS) -> str:
    """The first non-empty line of ``text``, at most ``limit`` characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process and run."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def largest(value: object) -> int | None:
    """``value`` if an int, the largest int in it if a list (``[1, 2]``), else ``None``."""
    if isinstance(value, (list, tuple)):
        numbers = [v for v in value if isinstance(v, int)]
        return max(numbers) if numbers else None
    return value if isinstance(value, int) else None


def is_minimal(shrunk: dict[str, Any] | None, minimal: dict[str, Any]) -> bool:
    """Whether a counterexample is no bigger than the case's ``MINIMAL``."""
    if shrunk is None:
        return False
    workers, ops = largest(minimal.get("workers")), largest(minimal.get("ops_per_worker"))
    if workers is None or ops is None:
        return False
    return bool(shrunk["workers"] <= workers and shrunk["ops"] <= ops)


def is_skipped(row: dict[str, Any]) -> bool:
    """Whether a findings row is a skipped row (the tool was not run on the case)."""
    failure = row.get("failure")
    return not row.get("detected") and isinstance(failure, str) and failure.startswith(SKIPPED)
