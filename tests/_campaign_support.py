"""A planted campaign module, its fixed twin, and helpers for tests that run
jostle's front ends (pytest plugin, ``jostle fuzz``) in subprocesses.

The bug is a lost update a controlled run finds in a few examples and
replays exactly: ``incr`` reads, calls a helper (a scheduling point under the
``gil`` model, as any call is), then writes.  The fix holds a lock, which
controlled mode makes cooperative.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUGGY = '''
import threading

import jostle


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def _log(self):
        return None

    def incr(self):
        value = self.n
        self._log()          # a call: the gil model may switch threads here
        self.n = value + 1   # ... so two increments can both write 1
        return value + 1


def incr(counter):
    return counter.incr()


class Model:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


test_counter = jostle.concurrent_test(
    jostle.spec(Counter, jostle.operation(incr), model=Model),
    mode="controlled", kinds=("thread",), max_workers=2, max_ops=2, max_prefix=0,
    max_suffix=0)
'''

FIXED = BUGGY.replace(
    """        value = self.n
        self._log()          # a call: the gil model may switch threads here
        self.n = value + 1   # ... so two increments can both write 1
        return value + 1""",
    """        with self.lock:
            value = self.n
            self._log()
            self.n = value + 1
            return value + 1""")

assert FIXED != BUGGY


def write_campaign(folder: Path, text: str = BUGGY, name: str = "campaign_counter.py") -> Path:
    """Write the campaign module into ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def env_for(folder: Path, **extra: str) -> dict[str, str]:
    """An environment for a subprocess run in ``folder``: jostle from this
    checkout, its own database and jostle folder, no inherited JOSTLE_*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JOSTLE_", "HYPOTHESIS_", "PYTEST_ADDOPTS", "PYTEST_XDIST"))}
    env.update(PYTHONPATH=str(ROOT / "src"), HYPOTHESIS_STORAGE_DIRECTORY=str(
        folder / ".hypothesis"), JOSTLE_DIR=str(folder / ".jostle"), **extra)
    return env


def jostle_command(*args: str) -> list[str]:
    """``jostle ARGS`` run by this interpreter from this checkout."""
    return [sys.executable, "-m", "jostle._cli", *args]
