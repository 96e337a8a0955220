"""Shared test set-up: fixture modules on sys.path, and a Hypothesis profile.

The fixture resources live in ``tests/fixtures/async/`` (the seed's layout);
``async`` is a keyword, so the folder is put on ``sys.path`` and its modules
are imported by their own names.  Process workers receive ``sys.path`` with
each job, so they import the same modules by reference.
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

HERE = os.path.dirname(os.path.abspath(__file__))
for sub in ("fixtures/async", "fixtures"):
    path = os.path.join(HERE, sub)
    if path not in sys.path:
        sys.path.insert(0, path)

# Tests pin seeds (@seed / derandomize) where the outcome depends on the
# search; this profile keeps every run of the suite fast and reproducible.
settings.register_profile(
    "jostle-tests",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("jostle-tests")
