"""Campaigns: failure folders written as found, repro.py failing on its own and
passing once fixed, `jostle fuzz` / `replay` / `report`, Ctrl-C writing the
campaign report, and two campaigns sharing findings through a real Redis."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import jostle
from jostle._campaign import TestWatch, run_test
from jostle._findings import FailureStore, TestRef, failure_id
from jostle._timeline import timeline_svg

from _campaign_support import FIXED, env_for, jostle_command, write_campaign


def _load(path: Path) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem + "_t", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_in_process(tmp_path: Path) -> tuple[TestWatch, object]:
    path = write_campaign(tmp_path)
    module = _load(path)
    test = module.test_counter  # type: ignore[attr-defined]
    options = {k: v for k, v in test._jostle_options.items() if k != "settings"}
    ref = TestRef("campaign_counter.py::test_counter", path.stem, str(path), "test_counter",
                  str(tmp_path), (str(tmp_path),), options)
    watch = TestWatch(ref, FailureStore(tmp_path / ".jostle"))
    outcome = run_test(test, watch, options=options,
                       settings=settings(database=None, max_examples=50), seed_base=1)
    return watch, outcome


def test_folder_is_written_when_found_then_final(tmp_path: Path) -> None:
    """The folder exists from the first failure on (status shrinking), and ends
    final with every file, one folder for the bug."""
    statuses: list[str] = []

    class Recording(TestWatch):
        def on_failure(self, failure: jostle.ConcurrencyFailure) -> None:
            super().on_failure(failure)
            report = json.loads(next(iter(self.found.values())).folder.joinpath(
                "report.json").read_text())
            statuses.append(report["status"])

    path = write_campaign(tmp_path)
    test = _load(path).test_counter  # type: ignore[attr-defined]
    options = {k: v for k, v in test._jostle_options.items() if k != "settings"}
    ref = TestRef("c::t", path.stem, str(path), "test_counter", str(tmp_path), (), options)
    watch = Recording(ref, FailureStore(tmp_path / ".jostle"))
    outcome = run_test(test, watch, options=options,
                       settings=settings(database=None, max_examples=50), seed_base=1)
    assert isinstance(outcome.error, jostle.NotLinearizable)
    assert statuses and statuses[0] == "shrinking"
    (found,) = watch.found.values()
    report = json.loads((found.folder / "report.json").read_text())
    assert report["status"] == "final" and report["reproduces"] == "exact (controlled)"
    assert report["executions_before_found"] >= 0 and report["found_by"] == "generation"
    assert report["schedule"]["switches"] and report["preemption_model"] == "gil"
    assert sorted(p.name for p in found.folder.iterdir() if not p.name.startswith(".")) == [
        "report.html", "report.json", "repro.py", "timeline.svg"]
    assert found.id == failure_id("c::t", outcome.error, str(tmp_path))


def test_timeline_svg_marks_preemption_and_the_break(tmp_path: Path) -> None:
    """The SVG parses, has a lane per worker, a preemption mark and the point
    where linearizability breaks."""
    _watch, outcome = _run_in_process(tmp_path)
    verdict = outcome.error.verdict  # type: ignore[union-attr]
    svg = timeline_svg(verdict.execution, verdict.linearizability)
    ET.fromstring(svg)
    assert "worker 1 (thread)" in svg and "worker 2 (thread)" in svg
    assert "preempted at campaign_counter.py:" in svg
    assert "linearizability breaks here" in svg and "model: -&gt; 2" in svg


@pytest.mark.slow
def test_repro_fails_alone_and_passes_when_fixed(tmp_path: Path) -> None:
    """repro.py, run by a fresh interpreter from another folder, fails with the
    same failure; after the bug is fixed in the module it passes."""
    watch, _ = _run_in_process(tmp_path)
    (found,) = watch.found.values()
    repro = found.folder / "repro.py"
    env = env_for(tmp_path)
    failed = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True,
                            env=env, cwd="/", timeout=120, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "jostle._errors.NotLinearizable" in failed.stderr
    write_campaign(tmp_path, FIXED)
    passed = subprocess.run([sys.executable, str(repro)], capture_output=True, text=True,
                            env=env, cwd="/", timeout=120, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "did not reproduce in 1 run(s)" in passed.stdout


@pytest.mark.slow
def test_fuzz_writes_folders_report_and_replays(tmp_path: Path) -> None:
    """`jostle fuzz` finds the planted bug and writes its folder and the
    campaign report; `jostle report` lists it; `jostle replay` reruns it."""
    write_campaign(tmp_path)
    env = env_for(tmp_path)
    out = subprocess.run(jostle_command("fuzz", "campaign_counter.py", "--budget", "30",
                                        "--jobs", "1", "--seed", "1"),
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FOUND NotLinearizable in campaign_counter.py::test_counter" in out.stdout
    assert "jostle fuzz: 1 finding(s) in 1 test(s)" in out.stdout
    (campaign,) = (tmp_path / ".jostle" / "campaigns").glob("*/campaign.json")
    report = json.loads(campaign.read_text())
    assert report["interrupted"] is False and len(report["findings"]) == 1
    fid = report["findings"][0]["id"]
    listed = subprocess.run(jostle_command("report"), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert fid in listed.stdout and "controlled (gil)" in listed.stdout
    assert (tmp_path / ".jostle" / "index.html").is_file()
    replayed = subprocess.run(jostle_command("replay", fid[:6]), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert replayed.returncode == 1 and "NotLinearizable" in replayed.stderr


@pytest.mark.slow
def test_ctrl_c_writes_the_campaign_report(tmp_path: Path) -> None:
    """SIGINT during a long campaign stops it with status 130 and a report."""
    write_campaign(tmp_path, FIXED)
    proc = subprocess.Popen(jostle_command("fuzz", "campaign_counter.py", "--budget", "1h",
                                           "--jobs", "1"),
                            cwd=tmp_path, env=env_for(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed once the workers are being started
    assert first.startswith("jostle fuzz: 1 test(s) on 1 worker(s)"), first
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "(interrupted)" in rest
    (campaign,) = (tmp_path / ".jostle" / "campaigns").glob("*/campaign.json")
    assert json.loads(campaign.read_text())["interrupted"] is True


# --- Redis -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on loopback, started and stopped here."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs Debian's package")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            bufsize=0)  # unbuffered: select() must see every line
    assert proc.stdout is not None
    try:
        # Wait for the server's own "ready" line: no sleeping, bounded by select.
        lines = []
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            line = proc.stdout.readline() if ready else b""
            if not line:
                pytest.fail(f"redis-server did not start: {b''.join(lines).decode()}")
            lines.append(line)
            if b"Ready to accept connections" in line:
                break
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.mark.slow
def test_two_campaigns_share_a_finding_through_redis(tmp_path: Path, redis_url: str) -> None:
    """Campaign A finds the bug and stores it in Redis; campaign B, on another
    folder with an empty local database, replays it first."""
    runs = {}
    for name, seed in (("a", "1"), ("b", "2")):
        folder = tmp_path / name
        write_campaign(folder)
        out = subprocess.run(
            jostle_command("fuzz", "campaign_counter.py", "--budget", "30", "--jobs", "1",
                           "--seed", seed),
            cwd=folder, env=env_for(folder, JOSTLE_DATABASE=redis_url), capture_output=True,
            text=True, timeout=180, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "+ redis://127.0.0.1" in out.stdout and "(read-write)" in out.stdout
        (report,) = (folder / ".jostle" / "failures").glob("*/report.json")
        runs[name] = json.loads(report.read_text())
    assert runs["a"]["found_by"] == "generation"
    assert runs["b"]["found_by"] == "database replay"
    assert runs["b"]["id"] == runs["a"]["id"]
    assert runs["b"]["scenario"] == runs["a"]["scenario"]
