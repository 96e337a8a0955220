"""Example shared resources for the fuzz campaigns, each with a planted bug.

Kept in a module of its own so process workers can import the operations by
reference.  Every resource has a correct twin; the campaigns run both, and a
campaign that stops finding its planted bug (its *canary*) is broken.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
import threading

import jostle

# ---------------------------------------------------------------------------
# A session registry: async request handlers create and close sessions on the
# event loop; worker threads look them up.  Planted bug: ``open_session``
# checks for an existing session, awaits the handshake, then stores a new
# one: two concurrent requests for one user both create a session.


class SessionRegistry:
    """Sessions per user, created by request handlers on the loop."""

    def __init__(self) -> None:
        self.sessions: dict[str, int] = {}
        self.created = 0

    async def _handshake(self) -> int:
        await asyncio.sleep(0)  # TLS, auth: yields to the loop
        self.created += 1
        return self.created

    async def open_session(self, user: str) -> int:
        if user not in self.sessions:
            self.sessions[user] = await self._handshake()
        return self.sessions[user]

    async def close_session(self, user: str) -> bool:
        return self.sessions.pop(user, None) is not None

    def lookup(self, user: str) -> int | None:
        return self.sessions.get(user)


class LockedSessionRegistry(SessionRegistry):
    """The fix: one lock per registry around check, handshake and store."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = asyncio.Lock()

    async def open_session(self, user: str) -> int:
        async with self._lock:
            if user not in self.sessions:
                self.sessions[user] = await self._handshake()
            return self.sessions[user]

    async def close_session(self, user: str) -> bool:
        async with self._lock:
            return self.sessions.pop(user, None) is not None


async def open_session(registry: SessionRegistry, user: str) -> int:
    return await registry.open_session(user)


async def close_session(registry: SessionRegistry, user: str) -> bool:
    return await registry.close_session(user)


def lookup(registry: SessionRegistry, user: str) -> bool:
    return registry.lookup(user) is not None


class SessionModel:
    """What the registry does when requests arrive one at a time."""

    def __init__(self) -> None:
        self.sessions: dict[str, int] = {}
        self.created = 0

    def open_session(self, user: str) -> int:
        if user not in self.sessions:
            self.created += 1
            self.sessions[user] = self.created
        return self.sessions[user]

    def close_session(self, user: str) -> bool:
        return self.sessions.pop(user, None) is not None

    def lookup(self, user: str) -> bool:
        return user in self.sessions


def one_session_per_handshake(registry: SessionRegistry) -> None:
    """Every handshake produced a session that was stored (nothing orphaned)."""
    assert registry.created <= len(set(registry.sessions.values())) + _closed(registry), (
        f"{registry.created} handshakes for {len(registry.sessions)} session(s)")


def _closed(registry: SessionRegistry) -> int:
    return getattr(registry, "closed_count", 0)


# ---------------------------------------------------------------------------
# A ticket counter in a file, shared by threads, tasks and processes at once.
# Planted bug: ``take`` reads and rewrites the file without ``flock``.


class TicketFile:
    """Next ticket number, persisted in a small file every process opens."""

    def __init__(self, path: str | None = None) -> None:
        self._owner = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="jostle-tickets-", suffix=".txt")
            os.write(fd, b"0")
            os.close(fd)
        self.path = path
        self._threads = threading.Lock()

    def __jostle_handle__(self) -> TicketHandle:
        """Process workers get the path and open the same file (jostle's handle protocol)."""
        return TicketHandle(type(self), self.path)

    def take(self) -> int:
        with open(self.path, "r+") as f:
            current = int(f.read() or 0)
            jostle.sync_point("tickets.read")
            f.seek(0)
            f.write(str(current + 1))
            f.truncate()
        return current + 1

    def last(self) -> int:
        with open(self.path) as f:
            return int(f.read() or 0)

    def close(self) -> None:
        if self._owner:
            os.unlink(self.path)


class TicketHandle:
    """Picklable: the class and the path; attached in the worker."""

    def __init__(self, cls: type[TicketFile], path: str) -> None:
        self.cls, self.path = cls, path

    def attach(self) -> TicketFile:
        return self.cls(self.path)


class LockedTicketFile(TicketFile):
    """The fix: an exclusive flock for the whole read-modify-write."""

    def take(self) -> int:
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            current = int(f.read() or 0)
            f.seek(0)
            f.write(str(current + 1))
            f.truncate()
        return current + 1

    def last(self) -> int:
        with open(self.path) as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            return int(f.read() or 0)


def take(tickets: TicketFile) -> int:
    return tickets.take()


def last(tickets: TicketFile) -> int:
    return tickets.last()


async def take_async(tickets: TicketFile) -> int:
    """The loop's handlers take tickets too (a blocking call on the loop, as real code does)."""
    return tickets.take()


class TicketModel:
    def __init__(self) -> None:
        self.n = 0

    def take(self) -> int:
        self.n += 1
        return self.n

    def take_async(self) -> int:
        return self.take()

    def last(self) -> int:
        return self.n
