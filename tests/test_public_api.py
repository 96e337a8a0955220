"""The public API is __all__, each name exported once and documented."""

from __future__ import annotations

import doctest
import inspect

import pytest

import jostle
from jostle import _engine, _machine, _repro, _runner, _scenario, _spec


def test_every_public_name_is_exported_once_and_exists() -> None:
    """__all__ has no duplicates and every name resolves."""
    assert len(jostle.__all__) == len(set(jostle.__all__))
    for name in jostle.__all__:
        assert hasattr(jostle, name), name


def test_every_public_name_has_a_docstring() -> None:
    """Public classes and functions document themselves."""
    for name in jostle.__all__:
        obj = getattr(jostle, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), f"jostle.{name} has no docstring"


def test_public_objects_live_in_private_modules() -> None:
    """Implementation modules start with an underscore (the public face is jostle)."""
    for name in jostle.__all__:
        module = getattr(getattr(jostle, name), "__module__", "jostle") or "jostle"
        if module.startswith("jostle."):
            assert module.split(".")[1].startswith("_"), (name, module)


def test_docstring_examples_run() -> None:
    """The examples in the public docstrings are correct code."""
    for module in (_spec, _scenario, _engine, _runner, _machine, _repro):
        failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0, module.__name__


def test_errors_catchable_as_builtins() -> None:
    """Misuse errors are ValueError/TypeError; failures are AssertionError."""
    assert issubclass(jostle.SpecError, ValueError)
    assert issubclass(jostle.SpecTypeError, TypeError)
    for failure in (jostle.NotLinearizable, jostle.Hang, jostle.InvariantViolated,
                    jostle.UnexpectedException, jostle.WorkerCrashed, jostle.ResourceLeaked):
        assert issubclass(failure, AssertionError)
        assert issubclass(failure, jostle.JostleError)


def test_spec_of_names_what_it_needs() -> None:
    """spec_of refuses anything concurrent_test did not make, saying what to pass."""
    with pytest.raises(jostle.SpecTypeError, match=r"made by jostle\.concurrent_test"):
        jostle.spec_of(print)
