"""A minimal ``_support`` module for case folders written by tests.

Tests that check the bugzoo format build tiny case packages in a temporary
folder; this is the ``_support.py`` those packages get (the ``Op`` record and
the ``CANCELLED`` marker, as the format defines them).
"""

SUPPORT = '''
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

CANCELLED = "<cancelled>"


@dataclass(frozen=True)
class Op:
    fn: Callable[..., Any]
    args: Tuple[tuple, ...] = ()
    doc: str = ""
    where: Optional[str] = None
    observer: bool = False

    @property
    def name(self):
        return self.fn.__name__

    @property
    def is_async(self):
        return inspect.iscoroutinefunction(self.fn)
'''


#: An asyncio case in the bugzoo format: check-then-act across an await, so
#: two concurrent first calls create two sessions (the Fixed twin holds a
#: lock across the await).
ASYNC_CASE = '''
"""x01 -- check-then-act across an await: concurrent first calls create two sessions."""
import asyncio

from ._support import Op

KIND = "asyncio"


class Buggy:
    def __init__(self):
        self.session = None
        self.created = 0

    async def _create(self):
        await asyncio.sleep(0)
        self.created += 1
        return self.created

    async def get(self):
        if self.session is None:
            self.session = await self._create()
        return self.session


class Fixed(Buggy):
    def __init__(self):
        super().__init__()
        self._lock = asyncio.Lock()

    async def get(self):
        async with self._lock:
            if self.session is None:
                self.session = await self._create()
        return self.session


async def get(r):
    return await r.get()


OPERATIONS = [Op(get, (), "the shared session")]


class Model:
    def get(self):
        return 1


def invariant(r):
    assert r.created <= 1, f"{r.created} sessions created"


MINIMAL = {"workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 0,
           "interleaving": "both see no session, both create one"}


def self_check():
    return "ok"
'''
