"""Outcomes: a raised exception's traceback text is formatted on demand and
survives pickling."""

from __future__ import annotations

import pickle

from jostle._calls import raised


def _fails() -> None:
    raise KeyError("k")


def _caught() -> BaseException:
    try:
        _fails()
    except KeyError as exc:
        return exc
    raise AssertionError("unreachable")


def test_the_traceback_text_names_the_raising_line() -> None:
    out = raised(_caught())
    assert "in _fails" in out.traceback and "KeyError: 'k'" in out.traceback
    assert out.type_name == "KeyError"


def test_pickling_keeps_the_text() -> None:
    out = raised(_caught())
    back = pickle.loads(pickle.dumps(out))
    assert back.exception.__traceback__ is None  # pickle drops traceback objects
    assert back.traceback == out.traceback and "in _fails" in back.traceback


def test_equal_when_the_same_exception() -> None:
    exc = _caught()
    assert raised(exc) == raised(exc)
    assert raised(exc) != raised(_caught())
