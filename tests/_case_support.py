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
