"""The worked examples in fuzz/: each planted bug is found, each fix passes.

Each canary is run with its campaign's own options (controlled mode, so
every interleaving choice is data and the run is deterministic) under the
suite's derandomized Hypothesis profile, without the shrink phase (shrinking
is slow and its result is not what these tests check).  The fixed twins get
a bounded run here; long runs are ``tox -e fuzz``'s job.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

import jostle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fuzz"))

import agent_executor  # noqa: E402
import connection_pool  # noqa: E402
import flow_registry  # noqa: E402
import session_manager  # noqa: E402

FIND = settings(max_examples=300, phases=[Phase.explicit, Phase.generate])


def _run(test: Any, config: settings) -> None:
    options = {k: v for k, v in test._jostle_options.items() if k != "settings"}
    jostle.run(test._jostle_spec, **options, settings=config)


def _found(test: Any) -> jostle.ConcurrencyFailure:
    with pytest.raises(jostle.ConcurrencyFailure) as info:
        _run(test, FIND)
    return info.value


@pytest.mark.slow
def test_session_manager_canary_is_found() -> None:
    """A logout racing a request is undone: the session comes back."""
    failure = _found(session_manager.test_session_manager_canary)
    text = str(failure)
    assert "jostle.Step('get'" in text and "jostle.Step('delete'" in text
    assert isinstance(failure, (jostle.InvariantViolated, jostle.NotLinearizable))


@pytest.mark.slow
def test_flow_registry_canary_is_found() -> None:
    """Something acts on a flow while its cancel awaits (a claim, another cancel)."""
    failure = _found(flow_registry.test_flow_registry_canary)
    assert isinstance(failure, (jostle.InvariantViolated, jostle.NotLinearizable))
    assert "jostle.Step('cancel'" in str(failure)


@pytest.mark.slow
def test_agent_executor_canary_is_found() -> None:
    """A client's deadline cancels the runner and the job is lost."""
    failure = _found(agent_executor.test_agent_executor_canary)
    assert isinstance(failure, (jostle.InvariantViolated, jostle.NotLinearizable, jostle.Hang))
    assert re.search(r"jostle\.Step\('run', \('\w+', 0\.01\)\)", str(failure))  # a deadline


@pytest.mark.slow
def test_connection_pool_canary_is_found() -> None:
    """A thread opens a connection while a task awaits its own: over the limit."""
    failure = _found(connection_pool.test_connection_pool_canary)
    assert isinstance(failure, jostle.InvariantViolated)
    assert f"the limit is {connection_pool.SIZE}" in str(failure)


@pytest.mark.slow
@pytest.mark.parametrize("test", [
    session_manager.test_session_manager,
    flow_registry.test_flow_registry,
    agent_executor.test_agent_executor,
    connection_pool.test_connection_pool,
], ids=["session_manager", "flow_registry", "agent_executor", "connection_pool"])
def test_fixed_version_passes_a_bounded_run(test: Any) -> None:
    """The correct twin passes the same campaign, bounded for the suite."""
    _run(test, settings(max_examples=25))


def test_examples_follow_the_campaign_convention() -> None:
    """Each module exposes a canary and its fixed twin as jostle tests."""
    for module in (session_manager, flow_registry, agent_executor, connection_pool):
        tests = {name for name in vars(module) if name.startswith("test_")}
        canaries = {name for name in tests if name.endswith("_canary")}
        assert canaries and {name.removesuffix("_canary") for name in canaries} <= tests
        for name in tests:
            assert getattr(module, name)._jostle_spec is not None
