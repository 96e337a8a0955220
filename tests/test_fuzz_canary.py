"""The bundled fuzz campaign finds its planted races; the correct twins pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

import jostle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fuzz"))

import campaign_examples as campaign  # noqa: E402


def test_session_canary_is_found_and_shrunk() -> None:
    """The planted check-then-act is found and shrunk to two workers of one op."""
    spec = campaign.test_session_registry_canary._jostle_spec
    with pytest.raises(jostle.NotLinearizable) as info:
        jostle.run(spec, repeats=1, settings=settings(max_examples=100))
    assert info.value.verdict.execution.scenario.size == (2, 1)  # type: ignore[attr-defined]


def test_fixed_session_registry_passes() -> None:
    """The locked registry passes the same campaign."""
    spec = campaign.test_session_registry._jostle_spec
    jostle.run(spec, repeats=2, settings=settings(max_examples=30))


@pytest.mark.slow
def test_cli_campaign_reports_the_canary(tmp_path: Path) -> None:
    """`jostle fuzz` over the session campaign prints the finding and its scenario."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "JOSTLE_DIR": str(tmp_path / "j"),
           "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "h")}
    out = subprocess.run(
        [sys.executable, "-m", "jostle._cli", "fuzz", str(ROOT / "fuzz" / "campaign_examples.py"),
         "--budget", "4", "--max-examples", "50"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "test_session_registry_canary" in out.stdout
    assert "FOUND NotLinearizable" in out.stdout
    assert "jostle.Scenario(" in out.stdout
    assert "finding(s) in 4 test(s)" in out.stdout
