"""The bugzoo case format loads as a spec with no per-case code."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

import jostle

from _case_support import SUPPORT

BUGZOO = Path(__file__).resolve().parents[2] / "shared" / "bugzoo" / "cases"
needs_bugzoo = pytest.mark.skipif(not BUGZOO.is_dir(), reason=f"no bugzoo at {BUGZOO}")

CASE = '''
"""x01 -- a tiny case written by the test: a counter without a lock."""
import asyncio

from ._support import Op, CANCELLED

KIND = "{kind}"


class Buggy:
    def __init__(self):
        self.n = 0

    {async_}def incr(self):
        {body}
        self.n += 1
        return self.n


Fixed = Buggy


{async_}def incr(r):
    return {await_}r.incr()


{async_}def give_up(r, steps):
    return CANCELLED


OPERATIONS = [Op(incr, (), "add one"), Op(give_up, ((1, 2),), "cancelled")]


class Model:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n

    def give_up(self, steps):
        return None


EXPECTED_ERRORS = ("Empty",)
MINIMAL = {{"workers": 2, "ops_per_worker": 1, "prefix": [], "preemptions": 1,
            "interleaving": "..."}}


def self_check():
    return "ok"
'''



def make_folder(root: Path, name: str, kind: str) -> Path:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_support.py").write_text(SUPPORT)
    is_async = kind == "asyncio"
    (pkg / "x01_counter.py").write_text(textwrap.dedent(CASE).format(
        kind=kind, async_="async " if is_async else "",
        await_="await " if is_async else "",
        body="await asyncio.sleep(0)" if is_async else "pass"))
    return pkg


def test_any_folder_in_the_format_loads(tmp_path: Path) -> None:
    """A case package written from scratch loads with kinds, domains and errors mapped."""
    (case,) = jostle.load_cases(make_folder(tmp_path, "zoo_thread_cases", "thread"))
    assert (case.id, case.kind, case.minimal["workers"]) == ("x01_counter", "thread", 2)
    spec = case.spec("buggy")
    assert spec.op("incr").kinds == {"thread"}
    assert spec.expected_errors == ("Empty",)
    assert "tiny case" in case.doc


def test_async_case_maps_cancelled_to_pending(tmp_path: Path) -> None:
    """An async op returning the format's CANCELLED marker is recorded as pending."""
    (case,) = jostle.load_cases(make_folder(tmp_path, "zoo_async_cases", "asyncio"))
    spec = case.spec("fixed")
    assert spec.op("give_up").kinds == {"task"}
    run = jostle.execute(spec, jostle.Scenario(workers=(
        jostle.WorkerPlan("task", (jostle.Step("give_up", (1,)),)),)))
    assert run.history.ops[0].outcome == jostle.Unknown("unknown")


def test_not_a_case_folder(tmp_path: Path) -> None:
    """A folder without __init__.py is refused with what to point at instead."""
    with pytest.raises(jostle.SpecError, match="not a case package"):
        jostle.load_cases(tmp_path)


def test_two_folders_with_one_name_are_refused(tmp_path: Path) -> None:
    """Same-named case folders from two places cannot share a process: said, not guessed."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    jostle.load_cases(make_folder(tmp_path / "a", "zoo_dup_cases", "thread"))
    with pytest.raises(jostle.SpecError, match="rename one"):
        jostle.load_cases(make_folder(tmp_path / "b", "zoo_dup_cases", "thread"))


def test_bad_variant(tmp_path: Path) -> None:
    """Only 'buggy' and 'fixed' are variants."""
    (case,) = jostle.load_cases(make_folder(tmp_path, "zoo_variant_cases", "thread"))
    with pytest.raises(jostle.SpecError, match="'buggy' or 'fixed'"):
        case.spec("broken")  # type: ignore[arg-type]


@needs_bugzoo
def test_every_public_case_loads_as_a_spec() -> None:
    """All bugzoo cases load, both variants, with kinds matching KIND."""
    cases = jostle.load_cases(BUGZOO)
    assert len(cases) >= 11
    expected = {"thread": {"thread"}, "asyncio": {"task"}, "process": {"process"},
                "mixed": {"thread", "task"}}
    for case in cases:
        for variant in ("buggy", "fixed"):
            spec = case.spec(variant)  # type: ignore[arg-type]
            assert spec.kinds == expected[case.kind], case.id


@needs_bugzoo
def test_asyncio_case_is_found_and_its_twin_passes() -> None:
    """a03 (check-then-act across await) fails as Buggy and passes as Fixed."""
    (case,) = [c for c in jostle.load_cases(BUGZOO) if c.id.startswith("a03")]
    with pytest.raises(jostle.ConcurrencyFailure):
        jostle.run(case.spec("buggy"), repeats=1, settings=settings(max_examples=100))
    jostle.run(case.spec("fixed"), repeats=1, settings=settings(max_examples=30))


def test_folder_name_is_importable_by_processes(tmp_path: Path) -> None:
    """The folder's parent goes on sys.path so workers import ops by reference."""
    folder = make_folder(tmp_path, "zoo_path_cases", "thread")
    jostle.load_cases(folder)
    import sys

    assert os.fspath(tmp_path) in sys.path
