"""Resources that count their own calls, for the profiler's consistency tests.

Module level of an importable module, so process workers import them by
reference.  Every resource built is kept in ``made``, in build order (the
profiler builds one per run, in the order of ``Profile.runs``), and keeps
its final counts when it is torn down.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections import Counter
from typing import ClassVar


class Counted:
    """Counts calls by operation name, under its own lock."""

    made: ClassVar[list[Counted]] = []

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        Counted.made.append(self)

    def bump(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1


def incr(r: Counted, key: int) -> None:
    r.bump("incr")


async def aincr(r: Counted, key: int) -> None:
    await asyncio.sleep(0)
    r.bump("aincr")


def boom(r: Counted) -> None:
    r.bump("boom")
    raise KeyError("boom")


class FileCounted:
    """Counts calls from any process: one byte appended per call, a file per op."""

    made: ClassVar[list[FileCounted]] = []

    def __init__(self, folder: str | None = None) -> None:
        self.owner = folder is None
        self.folder = folder or tempfile.mkdtemp(prefix="jostle-profile-test-")
        self.final: dict[str, int] = {}
        if self.owner:
            FileCounted.made.append(self)

    def __jostle_handle__(self) -> FileCountedHandle:
        return FileCountedHandle(self.folder)

    def bump(self, name: str) -> None:
        with open(os.path.join(self.folder, name), "ab") as f:  # O_APPEND: one write each
            f.write(b".")

    def counts(self) -> dict[str, int]:
        return {name: os.path.getsize(os.path.join(self.folder, name))
                for name in os.listdir(self.folder)}

    def close(self) -> None:
        if self.owner:
            self.final = self.counts()
            shutil.rmtree(self.folder, ignore_errors=True)


class FileCountedHandle:
    """Picklable: the folder; attached in the process worker."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def attach(self) -> FileCounted:
        return FileCounted(self.folder)


def fincr(r: FileCounted) -> None:
    r.bump("fincr")


def fother(r: FileCounted) -> None:
    r.bump("fother")


class Stuck:
    """A resource whose ``wait_forever`` blocks until the test releases it."""

    made: ClassVar[list[Stuck]] = []

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        Stuck.made.append(self)


def wait_forever(r: Stuck) -> None:
    r.lock.acquire()
    r.lock.release()
