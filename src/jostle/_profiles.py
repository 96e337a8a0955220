"""The three Hypothesis profiles jostle ships: ``default``, ``ci``, ``fuzz``.

* ``default`` (a developer's run): the active Hypothesis profile, with
  jostle's database (the shared one read-only).
* ``ci``: replays the database first (Hypothesis's reuse phase runs every
  stored failure before anything new), a bounded 50 examples a round, the
  ``@reproduce_failure`` blob printed, and the shared database written.
  Not derandomized: under pytest-xdist each worker and each ``--count``
  repetition gets its own seed (derived from the run id and its own id), so
  they explore different parts of the schedule space instead of one.
* ``fuzz`` (overnight): 1,000 examples a round, randomized, database on.

Hypothesis switches its own ``ci`` profile on whenever ``CI`` is set (tox
sets a variable it reads too), and a profile registered without ``parent=``
inherits it: ``derandomize=True, database=None``, so an overnight run would
replay the same inputs every night and save nothing (field notes).  ``fuzz``
therefore names Hypothesis's built-in ``default`` profile as its parent and
sets its database and ``derandomize`` explicitly.

They are registered with Hypothesis as ``jostle-default``, ``jostle-ci`` and
``jostle-fuzz`` (so ``settings.load_profile("jostle-fuzz")`` works for any
Hypothesis test), prefixed so they never replace a project's own ``ci``.
The settings a jostle test runs with are built per run by
:func:`hypothesis_settings`, on top of the test's own ``settings=`` if it
gave one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis import settings as hsettings
    from hypothesis.database import ExampleDatabase

__all__ = ["HYPOTHESIS_NAMES", "choose", "hypothesis_settings", "register"]

HYPOTHESIS_NAMES = {"default": "jostle-default", "ci": "jostle-ci", "fuzz": "jostle-fuzz"}

CI_EXAMPLES = 50
FUZZ_EXAMPLES = 1000


def choose(profile: str | None) -> str:
    """The profile to use: the setting, else ``ci`` when ``CI`` is set (as
    Hypothesis decides), else ``default``."""
    if profile is not None:
        return profile
    return "ci" if os.environ.get("CI") else "default"


def _overlay(profile: str, database: ExampleDatabase | None) -> dict[str, Any]:
    common: dict[str, Any] = {"database": database, "deadline": None}
    if profile == "ci":
        return {**common, "derandomize": False, "max_examples": CI_EXAMPLES, "print_blob": True}
    if profile == "fuzz":
        return {**common, "derandomize": False, "max_examples": FUZZ_EXAMPLES,
                "print_blob": True}
    return common


def hypothesis_settings(profile: str, *, database: ExampleDatabase | None,
                        parent: hsettings | None = None,
                        max_examples: int | None = None) -> hsettings:
    """The Hypothesis settings of one jostle run.

    Args:
        profile: ``default``, ``ci`` or ``fuzz``.
        database: from :func:`jostle._database.example_database`.
        parent: the test's own ``settings=``, if it gave one; else the
            active profile (``default``, ``ci``) or Hypothesis's built-in
            ``default`` (``fuzz``).
        max_examples: overrides the profile's.
    """
    from hypothesis import settings

    if parent is None:
        parent = settings.get_profile("default") if profile == "fuzz" else settings()
    overlay = _overlay(profile, database)
    if max_examples is not None:
        overlay["max_examples"] = max_examples
    return settings(parent, **overlay)


def register(database: ExampleDatabase | None) -> None:
    """Register ``jostle-default``, ``jostle-ci`` and ``jostle-fuzz`` with Hypothesis."""
    from hypothesis import settings

    for name, registered in HYPOTHESIS_NAMES.items():
        parent = settings.get_profile("default")
        settings.register_profile(registered, parent=parent, **_overlay(name, database))
