"""jostle's run settings: one table, read from ini, environment, command line
and markers, each value remembered with where it came from.

Precedence follows pytest-timeout, the plugin users already know: the ini
file < the environment < the command line < a ``@pytest.mark.jostle(...)``
marker.  Settings that are also :func:`jostle.concurrent_test` options
(``mode``, ``preemption_model``, ``strategy``, ``timeout``, ``leaks``) fill in only the
options the test did not write itself: a test written with
``mode="controlled"`` stays controlled whatever ``JOSTLE_MODE`` says, while
a marker, the most specific place of all, overrides even that.

A bad value is reported with its type, where it came from (the ini key, the
variable, the flag or the marker and its test) and the fix, as a
:class:`jostle.SpecError` (the plugin turns it into a pytest usage error).

``jostle fuzz`` reads the same table from the environment and its own flags
(``--mode`` for ``--jostle-mode``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import SpecError

__all__ = ["SETTINGS", "Resolved", "Setting", "parse_duration", "resolve"]

Parser = Callable[[object, str], Any]


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name, how to parse it, and where it may be given.

    Attributes:
        name: the Python name (``preemption_model``); the ini key is
            ``jostle_<name>``, the variable ``JOSTLE_<NAME>``, the flag
            ``--jostle-<name with dashes>``.
        help: one line for ``--help``.
        parse: ``(raw, where) -> value``; raises ``SpecError`` naming ``where``.
        default: the value when nothing sets it.
        per_test: may be given in a ``@pytest.mark.jostle(...)`` marker.
        option: is also a ``concurrent_test`` option.
    """

    name: str
    help: str
    parse: Parser = field(repr=False)
    default: Any = None
    per_test: bool = True
    option: bool = False

    @property
    def ini(self) -> str:
        """The ini key."""
        return f"jostle_{self.name}"

    @property
    def env(self) -> str:
        """The environment variable."""
        return f"JOSTLE_{self.name.upper()}"

    @property
    def flag(self) -> str:
        """The pytest command-line flag."""
        return "--jostle-" + self.name.replace("_", "-")

    @property
    def cli_flag(self) -> str:
        """The ``jostle fuzz`` flag."""
        return "--" + self.name.replace("_", "-")


def _bad(name: str, raw: object, where: str, want: str) -> SpecError:
    return SpecError(
        f"jostle: {name}={raw!r} (type={type(raw).__name__}) from {where}: expected {want}; "
        f"fix {where}, or remove it to use the default")


def _choice(name: str, allowed: tuple[str, ...]) -> Parser:
    def parse(raw: object, where: str) -> str:
        value = raw.strip().lower() if isinstance(raw, str) else raw
        if value not in allowed:
            raise _bad(name, raw, where, "one of " + ", ".join(map(repr, allowed)))
        return str(value)
    return parse


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")


def parse_duration(raw: object, where: str = "a duration") -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"8h"`` or ``"1h30m"``;
    ``None`` for ``0``, ``"none"`` or ``""`` (no budget).

    Raises:
        SpecError: not a duration; the message names ``where``.
    """
    if isinstance(raw, bool):
        raise _bad("budget", raw, where, "a duration such as 60, '90s', '5m' or '8h'")
    if isinstance(raw, (int, float)):
        if raw < 0:
            raise _bad("budget", raw, where, "a duration that is not negative")
        return float(raw) or None
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in ("", "none", "0"):
            return None
        pos, total = 0, 0.0
        while pos < len(text):
            m = _PART.match(text, pos)
            if m is None:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
            while pos < len(text) and text[pos] == " ":
                pos += 1
        if pos == len(text) and pos > 0:
            return total or None
    raise _bad("budget", raw, where, "a duration such as 60, '90s', '5m', '8h' or '1h30m'")


def _duration(name: str) -> Parser:
    def parse(raw: object, where: str) -> float | None:
        try:
            return parse_duration(raw, where)
        except SpecError as exc:
            raise SpecError(str(exc).replace("budget=", f"{name}=", 1)) from None
    return parse


def _positive_seconds(name: str) -> Parser:
    def parse(raw: object, where: str) -> float:
        value = _duration(name)(raw, where)
        if value is None:
            raise _bad(name, raw, where, "a positive number of seconds")
        return float(value)
    return parse


def _integer(name: str, low: int) -> Parser:
    def parse(raw: object, where: str) -> int:
        if isinstance(raw, bool):
            raise _bad(name, raw, where, f"an integer of at least {low}")
        try:
            value = int(raw) if isinstance(raw, (int, str)) else None
        except ValueError:
            value = None
        if value is None or value < low:
            raise _bad(name, raw, where, f"an integer of at least {low}")
        return value
    return parse


def _text(name: str) -> Parser:
    def parse(raw: object, where: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise _bad(name, raw, where, "a non-empty string")
        return raw.strip()
    return parse


def _leaks(raw: object, where: str) -> str:
    from ._leaks import LEAK_KINDS, leak_kinds, leaks_text

    try:
        return leaks_text(leak_kinds(raw, where=where))
    except (SpecError, TypeError):
        raise _bad("leaks", raw, where, "all, none, leak kinds separated by commas (from "
                   f"{', '.join(LEAK_KINDS)}), or -kind to check all but that one") from None


PROFILES = ("default", "ci", "fuzz")

SETTINGS: tuple[Setting, ...] = (
    Setting("profile", "default, ci or fuzz (default: ci when CI is set, else default)",
            _choice("profile", PROFILES), per_test=False),
    Setting("mode", "stress or controlled, for tests that do not choose",
            _choice("mode", ("stress", "controlled")), option=True),
    Setting("preemption_model", "gil or opcode (controlled), for tests that do not choose",
            _choice("preemption_model", ("gil", "opcode")), option=True),
    Setting("strategy", "random, pct, pos or exhaustive (controlled), for tests that do not "
                        "choose",
            _choice("strategy", ("portfolio", "random", "pct", "pos", "exhaustive")), option=True),
    Setting("timeout", "watchdog deadline per execution, in seconds",
            _positive_seconds("timeout"), option=True),
    Setting("leaks", "leak kinds checked after each example, for tests that do not choose: "
                     "all, none, a list (threads,fds) or all but some (-fds)",
            _leaks, option=True),
    Setting("budget", "time per jostle test: runs fresh Hypothesis rounds until it is spent "
                      "or a failure is found (60, 90s, 5m, 8h; default: one round)",
            _duration("budget")),
    Setting("seed", "base seed; each test, repetition and xdist worker derives its own "
                    "(default: from the run id)", _integer("seed", 0)),
    Setting("max_examples", "Hypothesis examples per round (default: the profile's)",
            _integer("max_examples", 1)),
    Setting("database", "example database: a folder, 'none', or redis://host:port/db "
                        "(shared, multiplexed with the local folder)",
            _text("database"), per_test=False),
    Setting("dir", "where failure folders and run state go (default .jostle)",
            _text("dir"), per_test=False),
)

BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Resolved:
    """Effective settings, each with where it came from.

    Attributes:
        values: name -> value (``None``: not set anywhere, use the default).
        sources: name -> where it came from (``"default"`` when unset).
    """

    values: Mapping[str, Any]
    sources: Mapping[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def describe(self, names: Sequence[str] | None = None) -> str:
        """``name=value (source)`` pairs, comma-separated."""
        shown = names if names is not None else [s.name for s in SETTINGS]
        return ", ".join(f"{n}={self.values[n]!r} ({self.sources[n]})" for n in shown)


Layer = tuple[Callable[[Setting], str], Mapping[str, object]]


def resolve(layers: Sequence[Layer], *, base: Resolved | None = None,
            only: Sequence[str] | None = None) -> Resolved:
    """Apply ``layers`` in order (later wins) over ``base`` or the defaults.

    Args:
        layers: ``(where, raw)`` pairs: ``where(setting)`` names the place a
            value came from (for errors and the report header); ``raw`` maps
            setting names to unparsed values (``None`` or absent: not set).
        base: what the layers apply on top of.
        only: names the layers may set (a marker may set per-test ones only).

    Raises:
        SpecError: a bad value, or a name that is not a setting, with where
            it came from and the fix.
    """
    values = dict(base.values) if base else {s.name: s.default for s in SETTINGS}
    sources = dict(base.sources) if base else {s.name: "default" for s in SETTINGS}
    for where, raw in layers:
        for name, value in raw.items():
            setting = BY_NAME.get(name)
            if setting is None or (only is not None and name not in only):
                allowed = sorted(only if only is not None else BY_NAME)
                place = where(SETTINGS[0]).split(" ")[0]
                raise SpecError(
                    f"jostle: unknown setting {name!r} from {place}: choose from {allowed}")
            if value is None:
                continue
            origin = where(setting)
            values[name] = setting.parse(value, origin)
            sources[name] = origin
    return Resolved(values, sources)


def from_environ(environ: Mapping[str, str] | None = None) -> Layer:
    """The environment's layer: ``JOSTLE_<NAME>`` variables that are set."""
    env = os.environ if environ is None else environ
    raw = {s.name: env[s.env] for s in SETTINGS if env.get(s.env, "") != ""}
    return (lambda s: f"env {s.env}", raw)
