"""``jostle.UNKNOWN``: what an operation returns when its own outcome is unknown.

An operation that gives up on a call it started (a client-side timeout, a
cancelled sub-task) cannot say whether the call took effect.  Returning
``jostle.UNKNOWN`` records the operation as *pending* in the history: the
linearizability checker may place its effect anywhere after its start, or
nowhere.  The sentinel pickles to itself, so process workers can return it.
"""

from __future__ import annotations

__all__ = ["UNKNOWN"]


class _Unknown:
    __slots__ = ()
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "jostle.UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
