"""Stacks of stuck workers, for hang reports.

A hang report names every stuck worker and shows where it is blocked, as
pytest-timeout does for threads, extended to asyncio tasks.  ``blocked_at``
picks the innermost frame that belongs to the user's code (not jostle, not
the standard library's locking and loop machinery) so a report can say
"worker 2 blocked at ledger.py:31" and so distinct hangs get distinct
failure origins in Hypothesis's database.
"""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import traceback
from types import FrameType
from typing import Any

__all__ = ["blocked_at", "task_stack", "thread_stack"]

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB_DIR = sysconfig.get_paths()["stdlib"]


def _is_user_file(filename: str) -> bool:
    path = os.path.abspath(filename)
    in_stdlib = path.startswith(_STDLIB_DIR) and "site-packages" not in path
    return not (path.startswith(_JOSTLE_DIR) or in_stdlib or filename.startswith("<"))


def thread_stack(ident: int | None) -> tuple[str, tuple[str, int] | None]:
    """The formatted stack of thread ``ident`` and its innermost user frame."""
    frame = sys._current_frames().get(ident) if ident is not None else None
    if frame is None:
        return "(thread has no Python frame)", None
    return _format_frames(_walk(frame))


def task_stack(task: asyncio.Task[Any]) -> tuple[str, tuple[str, int] | None]:
    """The formatted stack of a suspended task and its innermost user frame.

    ``Task.get_stack()`` shows only the outermost coroutine of a suspended
    task; the await chain (``cr_await``) leads to where it really waits.
    """
    frames: list[FrameType] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 200:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    if not frames:
        return "(task has no suspended frame)", None
    return _format_frames(frames)


def _walk(frame: FrameType | None) -> list[FrameType]:
    frames: list[FrameType] = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return frames


def _format_frames(frames: list[FrameType]) -> tuple[str, tuple[str, int] | None]:
    summary = traceback.StackSummary.extract(
        ((f, f.f_lineno) for f in frames), lookup_lines=True
    )
    user = [fs for fs in summary if _is_user_file(fs.filename)]
    shown = [fs for fs in summary if not fs.filename.startswith(_JOSTLE_DIR)] or list(summary)
    text = "".join(traceback.StackSummary.from_list(shown).format())
    where = (user[-1].filename, user[-1].lineno or 0) if user else None
    return text, where


def blocked_at(text: str) -> tuple[str, int] | None:
    """The innermost user frame of a stack dumped as text by ``faulthandler``
    (process workers), or ``None``."""
    best: tuple[str, int] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("File "):
            continue
        try:
            name = line.split('"')[1]
            lineno = int(line.split("line ")[1].split()[0].rstrip(","))
        except (IndexError, ValueError):
            continue
        # faulthandler prints innermost first; keep the first user frame
        if best is None and _is_user_file(name):
            best = (name, lineno)
    return best
