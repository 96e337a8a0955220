"""Worked example: a connection pool shared by threads and asyncio tasks.

One database pool serves a service's async request handlers (on the event
loop) and its worker threads (reports, a sync ORM).  At most ``SIZE``
connections may be open: the database refuses more.  A caller reuses an
idle connection, or opens a new one while under the limit, or waits for a
connection to come back.  Opening one is slow (TCP, TLS, auth), so it
happens outside the pool's lock; the async path awaits it, and, since a task
must never block the loop on a thread's lock, it polls for a free
connection instead of waiting on the pool's condition.

Planted bug (``ConnectionPool.acheckout``): the async path checks that the
pool is under its limit, *then* awaits the connect, and only counts the new
connection once it is open.  A thread that checks out during the await sees
the pool still under its limit and opens one too: the pool ends up with
more connections than the database allows.  Minimal scenario: ``aquery()``
as a task and ``query()`` on a thread, with ``SIZE - 1`` connections
already open.

The fix (``FixedConnectionPool``) reserves the slot under the pool's lock
before connecting (and gives it back if the connect fails or is
cancelled), the way ``psycopg_pool`` and SQLAlchemy's ``QueuePool`` count
connections being opened.  The lock is held only for a few lines, never
across an ``await``.

Run it: ``jostle fuzz fuzz/connection_pool.py`` or see ``docs/examples.md``.
"""

from __future__ import annotations

import asyncio
import threading

import jostle

SIZE = 2  # the database's connection limit
POLL = 0.001  # seconds between a task's looks for a free connection


class Connection:
    """An open database connection."""

    def __init__(self, cid: int) -> None:
        self.cid = cid
        self.queries = 0

    def execute(self) -> None:
        self.queries += 1  # a round trip to the database

    async def aexecute(self) -> None:
        await asyncio.sleep(0)  # the same round trip, awaited
        self.queries += 1


class ConnectionPool:
    """At most ``SIZE`` open connections, lent to threads and tasks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()  # guards the counts; notified on checkin
        self.idle: list[Connection] = []
        self.opened = 0
        self.lent = 0

    def _connect(self) -> Connection:
        return Connection(self.opened)  # TCP + TLS + auth, on the calling thread

    async def _aconnect(self) -> Connection:
        await asyncio.sleep(0)  # the same handshake, awaited on the loop
        return Connection(self.opened)

    def _take_idle(self) -> Connection | None:
        """An idle connection, now lent; the caller holds the lock."""
        if not self.idle:
            return None
        self.lent += 1
        return self.idle.pop()

    def _lend(self, conn: Connection) -> Connection:
        with self._cond:
            self.lent += 1
        return conn

    def checkout(self) -> Connection:
        with self._cond:
            while True:
                conn = self._take_idle()
                if conn is not None:
                    return conn
                if self.opened < SIZE:
                    self.opened += 1  # reserve the slot before the slow connect
                    break
                self._cond.wait()  # every connection is lent: wait for a checkin
        return self._lend(self._connect())

    async def acheckout(self) -> Connection:
        while True:
            with self._cond:
                conn = self._take_idle()
            if conn is not None:
                return conn
            if self.opened < SIZE:
                conn = await self._aconnect()  # BUG: the slot is not reserved meanwhile
                with self._cond:
                    self.opened += 1
                return self._lend(conn)
            await asyncio.sleep(POLL)  # every connection is lent: look again soon

    def checkin(self, conn: Connection) -> None:
        with self._cond:
            self.lent -= 1
            self.idle.append(conn)
            self._cond.notify()


class FixedConnectionPool(ConnectionPool):
    """The fix: reserve the slot under the lock before awaiting the connect."""

    async def acheckout(self) -> Connection:
        while True:
            with self._cond:
                conn = self._take_idle()
                if conn is None and self.opened < SIZE:
                    self.opened += 1
                    break
            if conn is not None:
                return conn
            await asyncio.sleep(POLL)
        try:
            conn = await self._aconnect()
        except BaseException:
            with self._cond:
                self.opened -= 1  # the connect failed or was cancelled: free the slot
                self._cond.notify()
            raise
        return self._lend(conn)


def query(pool: ConnectionPool) -> bool:
    """A worker thread runs a query on a pooled connection."""
    conn = pool.checkout()
    try:
        conn.execute()
    finally:
        pool.checkin(conn)
    return True


async def aquery(pool: ConnectionPool) -> bool:
    """A request handler runs a query on a pooled connection."""
    conn = await pool.acheckout()
    try:
        await conn.aexecute()
    finally:
        pool.checkin(conn)
    return True


class PoolModel:
    """Run one at a time, every query gets a connection and gives it back.

    The results say little; the pool's contract is the invariant below,
    checked after every run.
    """

    def query(self) -> bool:
        return True

    def aquery(self) -> bool:
        return True


def within_the_limit(pool: ConnectionPool) -> None:
    """Never more connections open than the database allows; none lost."""
    assert pool.opened <= SIZE, f"{pool.opened} connections open, the limit is {SIZE}"
    assert pool.lent == 0 and len(pool.idle) == pool.opened, (
        f"{pool.opened} opened but {len(pool.idle)} idle and {pool.lent} lent at rest")


def pool_spec(factory: type[ConnectionPool]) -> jostle.Spec:
    """Threads and request handlers querying through one pool."""
    return jostle.spec(
        factory,
        jostle.operation(query),
        jostle.operation(aquery),
        model=PoolModel,
        invariants=[within_the_limit],
        name=factory.__name__,
    )


# Canary: a thread opens a connection while a task awaits its own connect.
# Threads and the loop interleave at OS whim, so the campaign runs controlled.
test_connection_pool_canary = jostle.concurrent_test(
    pool_spec(ConnectionPool), mode="controlled")
test_connection_pool = jostle.concurrent_test(pool_spec(FixedConnectionPool), mode="controlled")
