"""The example database: a local folder, optionally multiplexed with Redis.

Hypothesis replays every failure it stored for a test before generating new
examples, so the database is how a finding moves between runs and machines.
One setting (``JOSTLE_DATABASE``) chooses it:

* unset: the local folder Hypothesis uses (``.hypothesis/examples``, or
  under ``HYPOTHESIS_STORAGE_DIRECTORY``);
* a path: that folder;
* ``none``: no database (nothing is replayed or saved);
* ``redis://host:port/db`` (or ``rediss://``, ``unix://``): Hypothesis's
  ``RedisExampleDatabase`` multiplexed with the local folder, so every
  machine pointed at one Redis replays what any of them found, and the local
  folder keeps working when the server is down for a developer.  The ``ci``
  and ``fuzz`` profiles write to the shared database; the developer
  (``default``) profile reads it only (``ReadOnlyDatabase``), so a half-done
  local experiment never lands in everyone's replays.

The Redis client is an optional extra (``pip install 'jostle[redis]'``); it
is imported only when a Redis URL is given.  An unreachable server is an
error at start-up naming the setting, not a crash in the middle of a run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._errors import SpecError

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

__all__ = ["REDIS_PREFIX", "describe", "example_database", "is_redis", "local_folder"]

REDIS_PREFIX = b"jostle:"
_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis(url: str | None) -> bool:
    """Whether ``url`` names a Redis server."""
    return url is not None and url.startswith(_SCHEMES)


def local_folder() -> str:
    """The folder Hypothesis itself would use for examples."""
    root = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or ".hypothesis"
    return os.path.join(root, "examples")


def describe(url: str | None, *, shared_writable: bool) -> str:
    """One line for the report header."""
    if url is None:
        return local_folder()
    if url.lower() == "none":
        return "none (nothing replayed or saved)"
    if is_redis(url):
        mode = "read-write" if shared_writable else "read-only"
        return f"{local_folder()} + {_redact(url)} ({mode})"
    return url


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def example_database(url: str | None, *, shared_writable: bool,
                     where: str = "env JOSTLE_DATABASE") -> ExampleDatabase | None:
    """The database ``url`` names (see the module docstring).

    Args:
        url: the setting's value, ``None`` when unset.
        shared_writable: write to a shared (Redis) database, not only read it.
        where: where ``url`` came from, for errors.

    Raises:
        SpecError: the Redis client is missing or the server cannot be reached.
    """
    from hypothesis.database import (
        DirectoryBasedExampleDatabase,
        MultiplexedDatabase,
        ReadOnlyDatabase,
    )

    if url is not None and url.lower() == "none":
        return None
    if url is not None and not is_redis(url):
        return DirectoryBasedExampleDatabase(url)
    local = DirectoryBasedExampleDatabase(local_folder())
    if url is None:
        return local
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError as exc:
        raise SpecError(
            f"jostle: database={_redact(url)!r} from {where} needs the Redis client, which is "
            f"not installed ({exc}); fix: pip install 'jostle[redis]'") from None
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SpecError(
            f"jostle: cannot reach the Redis database {_redact(url)!r} from {where}: {exc}; "
            "fix: start the server, correct the URL, or unset it to use the local folder only"
        ) from None
    shared: ExampleDatabase = RedisExampleDatabase(client, key_prefix=REDIS_PREFIX)
    if not shared_writable:
        shared = ReadOnlyDatabase(shared)
    return MultiplexedDatabase(local, shared)
