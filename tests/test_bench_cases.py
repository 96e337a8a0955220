"""The SCTBench ports in ``bench/cases/sctbench`` follow the case format and prove their bugs."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

import jostle

CASES = Path(__file__).resolve().parents[1] / "bench" / "cases" / "sctbench"
IDS = sorted(p.stem for p in CASES.glob("[a-z]*.py"))
KINDS = {"t": "thread", "a": "asyncio", "p": "process", "m": "mixed"}
MINIMAL_KEYS = ("workers", "ops_per_worker", "prefix", "preemptions", "interleaving")
# Self-checks that wait for threads to block (deadlocks, timeouts) take longer.
SLOW = {"t21_carter01", "t23_deadlock01", "t25_phase01"}


@pytest.fixture(scope="module")
def cases() -> dict[str, jostle.Case]:
    """``bench/cases/sctbench`` loaded with ``jostle.load_cases`` (as the
    package ``sctbench``, so it coexists with bugzoo's ``cases``)."""
    return {c.id: c for c in jostle.load_cases(CASES)}


def test_every_module_loads(cases: dict[str, jostle.Case]) -> None:
    """load_cases finds exactly the case modules of the folder, and the package agrees."""
    assert sorted(cases) == IDS
    package = sys.modules["sctbench"]
    assert package.case_ids() == IDS
    assert [m.__name__ for m in package.load_all()] == [f"sctbench.{i}" for i in IDS]


def test_ids_follow_the_format_and_leave_bugzoo_numbers_free() -> None:
    """Ids are <prefix><number>_<name>, numbered from 20 (bugzoo uses 01-11)."""
    for case_id in IDS:
        match = re.fullmatch(r"([tapm])(\d\d)_[a-z0-9_]+", case_id)
        assert match, case_id
        assert int(match.group(2)) >= 20, case_id


@pytest.mark.parametrize("case_id", IDS)
def test_module_has_the_format_names(cases: dict[str, jostle.Case], case_id: str) -> None:
    """Every format name is there, consistent with KIND and the operations' signatures."""
    case = cases[case_id]
    mod = case.module
    assert (mod.__doc__ or "").startswith(f"{case_id[:3]} -- "), "docstring: '<id> -- ...'"
    assert "Origin: SCTBench" in mod.__doc__ and "Minimal failing scenario" in mod.__doc__
    expected_kind = KINDS[case_id[0]]
    assert case.kind == expected_kind
    assert inspect.isclass(mod.Buggy) and inspect.isclass(mod.Fixed)
    assert mod.Buggy is not mod.Fixed
    assert callable(mod.self_check)
    support = sys.modules["sctbench._support"]
    assert mod.OPERATIONS and all(isinstance(op, support.Op) for op in mod.OPERATIONS)
    for op in mod.OPERATIONS:
        assert callable(getattr(mod.Model, op.name, None)), f"Model.{op.name} missing"
        assert len(op.args) == len(inspect.signature(op.fn).parameters) - 1, op.name
        assert op.is_async == (mod.KIND == "asyncio"), op.name
    assert all(key in mod.MINIMAL for key in MINIMAL_KEYS), mod.MINIMAL
    assert 1 <= mod.MINIMAL["workers"] <= 3 and 1 <= mod.MINIMAL["ops_per_worker"] <= 3
    assert len(mod.MINIMAL["prefix"]) <= 2
    for name in getattr(mod, "EXPECTED_ERRORS", ()):
        assert inspect.isclass(getattr(mod, name, None)), name
    for variant in ("buggy", "fixed"):
        assert case.spec(variant).name == f"{case_id}[{variant}]"


@pytest.mark.parametrize(
    "case_id", [pytest.param(i, marks=pytest.mark.slow) if i in SLOW else i for i in IDS])
def test_self_check_shows_the_bug_and_the_fix(cases: dict[str, jostle.Case],
                                              case_id: str) -> None:
    """Under its forced interleaving, Buggy fails and Fixed passes."""
    summary = cases[case_id].module.self_check()
    assert isinstance(summary, str) and summary
