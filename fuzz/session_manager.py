"""Worked example: an async session manager (asyncio only).

Request handlers create, read and close login sessions concurrently, as a
web service's session middleware does.  Every session lives in a store that
a real service keeps in Redis or a database; here the store's round trips
are ``await asyncio.sleep(0)``, which is where the loop runs other requests.

Planted bug (``SessionManager.get``): reading a session *touches* it (slides
its expiry) and writes it back after the store's round trip, without
checking it is still there.  A logout (``delete``) that lands during the
round trip is undone: the write resurrects the session.  This is the
"logout does not stick" bug of session middleware that saves the session at
the end of every request.  Minimal scenario (the manager starts with session
``s1`` restored from the store): ``get('s1')`` and ``delete('s1')`` as two
tasks; afterwards ``get('s1')`` still finds the closed session, and the
invariant "live sessions = created - closed" fails.

The fix (``FixedSessionManager``) writes the touched session back only if
the one it read is still the one stored (a compare-and-set after the await),
the same rule a Redis ``WATCH``/``MULTI`` gives.

Run it: ``jostle fuzz fuzz/session_manager.py`` or see ``docs/examples.md``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from hypothesis import strategies as st

import jostle


@dataclass(frozen=True)
class Session:
    """One login session; ``touches`` counts the requests that read it."""

    sid: str
    user: str
    touches: int = 0


class SessionManager:
    """Sessions by id, shared by every request handler on the loop."""

    def __init__(self) -> None:
        # Sessions survive restarts: the manager starts with those in the store.
        self.sessions: dict[str, Session] = {"s1": Session("s1", "ann")}
        self.created = 1
        self.closed = 0

    async def _store_round_trip(self) -> None:
        await asyncio.sleep(0)  # SET/GET on the session store: other requests run

    async def create(self, user: str) -> str:
        await self._store_round_trip()  # INCR the id counter in the store
        # Allocate and publish with no await between: an id handed out is
        # visible at once (reserving it before the round trip would let a
        # later login's session be seen before an earlier one's).
        self.created += 1
        session = Session(f"s{self.created}", user)
        self.sessions[session.sid] = session
        return session.sid

    async def get(self, sid: str) -> str | None:
        session = self.sessions.get(sid)
        if session is None:
            return None
        await self._store_round_trip()  # slide the expiry in the store
        self.sessions[sid] = replace(session, touches=session.touches + 1)  # BUG: may resurrect
        return session.user

    async def delete(self, sid: str) -> bool:
        if self.sessions.pop(sid, None) is None:
            return False
        self.closed += 1
        await self._store_round_trip()  # DEL in the store
        return True


class FixedSessionManager(SessionManager):
    """The fix: write the touched session back only if it is still stored."""

    async def get(self, sid: str) -> str | None:
        session = self.sessions.get(sid)
        if session is None:
            return None
        await self._store_round_trip()
        if self.sessions.get(sid) is session:  # compare-and-set after the await
            self.sessions[sid] = replace(session, touches=session.touches + 1)
        return session.user


async def create(manager: SessionManager, user: str) -> str:
    """A login request."""
    return await manager.create(user)


async def get(manager: SessionManager, sid: str) -> str | None:
    """An authenticated request: the session's user, or None when logged out."""
    return await manager.get(sid)


async def delete(manager: SessionManager, sid: str) -> bool:
    """A logout request: whether there was a session to close."""
    return await manager.delete(sid)


class SessionModel:
    """What the manager does when requests arrive one at a time."""

    def __init__(self) -> None:
        self.sessions: dict[str, str] = {"s1": "ann"}
        self.created = 1

    def create(self, user: str) -> str:
        self.created += 1
        sid = f"s{self.created}"
        self.sessions[sid] = user
        return sid

    def get(self, sid: str) -> str | None:
        return self.sessions.get(sid)

    def delete(self, sid: str) -> bool:
        return self.sessions.pop(sid, None) is not None


def live_sessions_add_up(manager: SessionManager) -> None:
    """Every session created and not closed is live, and no other."""
    live = manager.created - manager.closed
    assert len(manager.sessions) == live, (
        f"{len(manager.sessions)} live session(s) but {manager.created} created and "
        f"{manager.closed} closed")


USERS = st.sampled_from(["ann", "bob"])
SIDS = st.sampled_from(["s1", "s2"])


def session_spec(factory: type[SessionManager]) -> jostle.Spec:
    """Login, request and logout handlers on one manager."""
    return jostle.spec(
        factory,
        jostle.operation(create, USERS),
        jostle.operation(get, SIDS),
        jostle.operation(delete, SIDS),
        model=SessionModel,
        invariants=[live_sessions_add_up],
        name=factory.__name__,
    )


# Canary: a logout racing a request is undone.  Controlled: the loop's ready
# order is drawn, so either request can reach the store first.  (In stress
# mode the loop's FIFO order decides, and random runs of 100 examples found
# an earlier version of this bug 2 times in 5; controlled, 10 in 10.)
test_session_manager_canary = jostle.concurrent_test(
    session_spec(SessionManager), mode="controlled")
test_session_manager = jostle.concurrent_test(session_spec(FixedSessionManager), mode="controlled")
