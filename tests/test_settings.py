"""Settings: parsing, precedence ini < env < command line < marker, errors that
name where a bad value came from, and the profiles' database and randomness."""

from __future__ import annotations

import pytest
from hypothesis import settings as hsettings

import jostle
from jostle._database import describe, example_database
from jostle._profiles import choose, hypothesis_settings
from jostle._settings import from_environ, parse_duration, resolve


@pytest.mark.parametrize(("raw", "seconds"), [
    (60, 60.0), ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("8h", 28800.0),
    ("1h30m", 5400.0), ("0", None), ("none", None), ("", None), (0.5, 0.5),
])
def test_durations_parse(raw: object, seconds: float | None) -> None:
    """Budgets read as seconds, minutes or hours; zero means no budget."""
    assert parse_duration(raw) == seconds


def test_bad_duration_names_its_source_and_fix() -> None:
    """A bad budget says what it was, where it came from and how to fix it."""
    with pytest.raises(jostle.SpecError, match=r"budget='8 hours'.*env JOSTLE_BUDGET.*fix"):
        resolve([from_environ({"JOSTLE_BUDGET": "8 hours"})])


def test_leak_kinds_setting_parses_and_names_its_source() -> None:
    """JOSTLE_LEAKS takes all, none, a list or '-kind'; a bad kind names the
    variable and the kinds there are."""
    assert resolve([from_environ({"JOSTLE_LEAKS": "-fds"})])["leaks"] == (
        "threads,tasks,coroutines,processes,shm")
    assert resolve([from_environ({"JOSTLE_LEAKS": "none"})])["leaks"] == "none"
    with pytest.raises(jostle.SpecError,
                       match=r"leaks='fd'.*env JOSTLE_LEAKS.*threads, tasks.*fix env"):
        resolve([from_environ({"JOSTLE_LEAKS": "fd"})])


def test_later_layers_win_and_remember_their_source() -> None:
    """ini < env < command line; each value keeps where it came from."""
    r = resolve([
        (lambda s: f"ini {s.ini}", {"mode": "stress", "seed": "1"}),
        from_environ({"JOSTLE_MODE": "controlled"}),
        (lambda s: f"command line {s.flag}", {"seed": "7", "mode": None}),
    ])
    assert (r["mode"], r.sources["mode"]) == ("controlled", "env JOSTLE_MODE")
    assert (r["seed"], r.sources["seed"]) == (7, "command line --jostle-seed")
    assert r.sources["budget"] == "default"


def test_unknown_or_not_per_test_setting_is_refused() -> None:
    """A marker may set per-test settings only, and only real ones."""
    with pytest.raises(jostle.SpecError, match="unknown setting 'database'"):
        resolve([(lambda s: "@pytest.mark.jostle", {"database": "none"})],
                only=("mode", "budget"))
    with pytest.raises(jostle.SpecError, match="unknown setting 'modes'"):
        resolve([(lambda s: "@pytest.mark.jostle", {"modes": "x"})])


def test_fuzz_profile_escapes_hypothesis_ci_profile() -> None:
    """fuzz is randomized and keeps its database even when the active profile
    is derandomized and database-less (Hypothesis's automatic ci profile)."""
    db = example_database(None, shared_writable=True)
    hsettings.register_profile("looks-like-ci", derandomize=True, database=None)
    previous = hsettings._current_profile
    hsettings.load_profile("looks-like-ci")
    try:
        fuzz = hypothesis_settings("fuzz", database=db)
        ci = hypothesis_settings("ci", database=db)
    finally:
        hsettings.load_profile(previous or "default")
    assert fuzz.derandomize is False and fuzz.database is db
    assert ci.derandomize is False and ci.database is db and ci.print_blob
    assert fuzz.max_examples > ci.max_examples


def test_profile_follows_ci_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like Hypothesis, jostle picks ci when CI is set, unless told otherwise."""
    monkeypatch.setenv("CI", "true")
    assert choose(None) == "ci"
    assert choose("fuzz") == "fuzz"
    monkeypatch.delenv("CI")
    assert choose(None) == "default"


def test_database_settings() -> None:
    """'none' turns the database off; a folder is a folder; Redis is described
    without its password and says whether it is written."""
    assert example_database("none", shared_writable=True) is None
    assert "read-only" in describe("redis://u:secret@h:1/0", shared_writable=False)
    assert "secret" not in describe("redis://u:secret@h:1/0", shared_writable=True)


def test_unreachable_redis_is_an_error_naming_the_setting() -> None:
    """A Redis URL nobody answers fails at start-up, naming where it came from."""
    pytest.importorskip("redis")
    with pytest.raises(jostle.SpecError, match=r"cannot reach.*env JOSTLE_DATABASE.*fix"):
        example_database("redis://127.0.0.1:1/0", shared_writable=True)


def test_choices_match_concurrent_test() -> None:
    """The settings offer exactly the modes, models and strategies concurrent_test takes."""
    from jostle import _runner
    from jostle._settings import BY_NAME

    for name, allowed in (("mode", _runner.MODES), ("preemption_model", _runner.MODELS),
                          ("strategy", _runner.STRATEGIES)):
        for value in allowed:
            assert BY_NAME[name].parse(value, "test") == value
        with pytest.raises(jostle.SpecError):
            BY_NAME[name].parse("nonsense", "test")
