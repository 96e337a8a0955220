"""How a resource reaches process workers: handles, and four ready adapters.

The controller builds the resource in its own process; a process worker is a
different interpreter, so it gets a *handle* instead and attaches it.

The protocol:

* A **handle** is any picklable object with ``attach(self) -> object``,
  called in the worker, which returns what the operations receive as their
  first argument, and optionally ``detach(self, resource) -> None``, called in
  the worker with that object when the job ends.
* A resource opts in by defining ``__jostle_handle__(self) -> handle``.
* A resource that does not is pickled whole (:class:`PickledHandle`), and its
  own ``__getstate__``/``__setstate__`` do the attaching.  That is how most
  hand-written process-shared resources already work (a path that pickles as
  itself; a ``SharedMemory`` wrapper that pickles to the segment name and
  reattaches by name).

The adapters (:class:`FileHandle`, :class:`SqliteHandle`,
:class:`SharedMemoryHandle`, :class:`ManagerHandle`) are handles and also
building blocks: a user resource may hold one as an attribute and stay
picklable.  Those that touch shared state call :func:`jostle.sync_point`
first, so controlled mode can preempt a worker right there.

``resource_tracker`` noise.  Since Python 3.8 every ``SharedMemory`` attached
by name registers with the resource tracker, which then "cleans up" (unlinks)
and warns about segments the attaching process never owned (bpo-39959; 3.13
added ``track=False``).  jostle's workers share the controller's tracker, and
the tracker keeps a *set* of names, so the obvious fix of unregistering right
after attaching is wrong there: it drops the owner's registration and the
owner's own ``unlink()`` later makes the tracker print a ``KeyError``.  So
instead registration is never made: ``SharedMemoryHandle`` attaches with
``track=False`` (3.13+) or with registration suppressed for that one call on
the calling thread (3.10-3.12), and a process worker filters out every
``shared_memory`` registration made in it, which covers user resources that
attach in ``__setstate__``.  The cost, in workers only: a segment *created*
inside a worker and never unlinked is not cleaned up at exit.
"""

from __future__ import annotations

import atexit
import os
import pickle
import sys
import threading
from collections.abc import Sized
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ._errors import SpecError, SpecTypeError
from ._syncpoints import sync_point

if TYPE_CHECKING:
    import sqlite3
    from multiprocessing.managers import SyncManager
    from multiprocessing.shared_memory import SharedMemory

__all__ = [
    "FileHandle",
    "ManagerHandle",
    "PickledHandle",
    "SharedMemoryHandle",
    "SqliteHandle",
    "check_picklable",
    "handle_for",
]

_ADAPTERS = "jostle.FileHandle, SqliteHandle, SharedMemoryHandle, ManagerHandle"


def handle_for(resource: object) -> object:
    """The handle that carries ``resource`` to a process worker.

    A resource whose class defines ``__jostle_handle__(self)`` provides its
    own handle (any picklable object with ``attach(self) -> object`` and
    optionally ``detach(self, resource) -> None``, both called in the
    worker).  Any other resource is pickled whole, in a
    :class:`PickledHandle`.

    Args:
        resource: the resource built by the controller.

    Returns:
        A handle; pickle it to send it to a worker.

    Raises:
        SpecTypeError: ``__jostle_handle__`` returned something without an
            ``attach`` method.
    """
    make = getattr(type(resource), "__jostle_handle__", None)
    if make is None:
        return PickledHandle(resource)
    handle: object = make(resource)
    if not callable(getattr(handle, "attach", None)):
        raise SpecTypeError(
            f"{type(resource).__qualname__}.__jostle_handle__() returned "
            f"{_short_repr(handle)} (type={type(handle).__qualname__}), which has "
            "no attach() method. Fix: return a picklable object with "
            "attach(self) -> resource, and optionally detach(self, resource); "
            f"see {_ADAPTERS}."
        )
    return handle


def check_picklable(obj: object, what: str, where: str) -> None:
    """Raise a clear error if ``obj`` cannot be pickled for a process worker.

    Args:
        obj: the value to check.
        what: what it is, for the message: ``"operation 'incr'"``,
            ``"arguments of operation 'put'"``, ``"resource SharedCounters"``.
            A ``what`` starting with ``operation`` or ``resource`` selects the
            matching fix.
        where: where it came from (``"process worker 2, step 0"``).

    Raises:
        SpecTypeError: ``obj`` does not pickle; the message names ``what``,
            ``where``, the pickling error and the fix.
    """
    try:
        pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise SpecTypeError(_pickle_message(obj, what, where, exc)) from exc


def _pickle_message(obj: object, what: str, where: str, exc: BaseException) -> str:
    if what.startswith("operation"):
        qualname = getattr(obj, "__qualname__", "")
        if "<lambda>" in qualname:
            kind = "a lambda cannot be pickled"
        elif "<locals>" in qualname:
            kind = "a function defined inside another cannot be pickled"
        else:
            kind = "it is pickled by reference to its module and name"
        fix = (
            f"{kind}; define the operation at module level of an importable "
            "module, as a plain `def` taking the resource first"
        )
    elif what.startswith("resource"):
        fix = f"give the resource a __jostle_handle__ or make it picklable; see {_ADAPTERS}"
    else:
        fix = (
            "pass values that pickle (numbers, strings, tuples, instances of "
            "module-level classes), not locks, open files or lambdas"
        )
    return (
        f"{what} cannot be sent to a process worker ({where}): got "
        f"{_short_repr(obj)} (type={type(obj).__qualname__}); pickling failed "
        f"with {type(exc).__name__}: {exc}. Fix: {fix}."
    )


def _short_repr(obj: object, limit: int = 80) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__qualname__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class PickledHandle:
    """The fallback handle: the resource itself, pickled whole.

    Its class's ``__getstate__``/``__setstate__`` (or default pickling) must
    make the unpickled copy work in another process, e.g. by storing a path
    or a shared-memory name and reattaching by it.
    """

    resource: object

    def attach(self) -> object:
        """Return the unpickled resource."""
        return self.resource


class FileHandle:
    """A file shared by processes, named by its path.

    Picklable as its path; :meth:`attach` returns the handle itself, so
    operations receive it.  The helpers call :func:`jostle.sync_point`
    (``"file.read"`` / ``"file.write"``) before touching the file.

    Args:
        path: the file's path (it need not exist yet).

    Example:
        >>> from jostle import FileHandle
        >>> def bump(f):                 # an operation, at module level
        ...     n = int(f.read_text() or 0)
        ...     f.write_text(str(n + 1))
        ...     return n + 1
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: str = os.fspath(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def __fspath__(self) -> str:
        return self.path

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (type(self), (self.path,))

    def __jostle_handle__(self) -> FileHandle:
        return self

    def attach(self) -> FileHandle:
        """Return the handle itself (a path needs no attaching)."""
        return self

    def read_text(self, *, encoding: str = "utf-8") -> str:
        """The file's whole text, after a ``"file.read"`` sync point."""
        sync_point("file.read")
        with open(self.path, encoding=encoding) as f:
            return f.read()

    def write_text(self, text: str, *, encoding: str = "utf-8") -> None:
        """Replace the file's text, after a ``"file.write"`` sync point."""
        sync_point("file.write")
        with open(self.path, "w", encoding=encoding) as f:
            f.write(text)

    def open(self, mode: str = "r", *, encoding: str | None = None) -> IO[Any]:
        """Open the file, after a ``"file.read"`` or ``"file.write"`` sync point.

        Args:
            mode: as for :func:`open`; text modes default to UTF-8.
            encoding: the text encoding; ``None`` for binary modes.
        """
        writes = any(c in mode for c in "wax+")
        sync_point("file.write" if writes else "file.read")
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        return open(self.path, mode, encoding=encoding)


class SqliteHandle:
    """An SQLite database shared by processes, named by its path.

    Picklable as its path; each process (and each thread in it) opens its own
    connection on first use, in autocommit mode (``isolation_level=None``),
    so concurrent workers are separate clients, as in production.
    :meth:`execute` calls :func:`jostle.sync_point` (``"sqlite.execute"``)
    first.

    Args:
        path: the database file.
        timeout: seconds a connection waits on a locked database.

    Example:
        >>> from jostle import SqliteHandle
        >>> def add(db, name):
        ...     db.execute("INSERT INTO users(name) VALUES (?)", (name,))
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path: str = os.fspath(path)
        self.timeout = timeout
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_new_sqlite_handle, (type(self), self.path, self.timeout))

    def __jostle_handle__(self) -> SqliteHandle:
        return self

    def attach(self) -> SqliteHandle:
        """Return the handle itself; the connection opens on first use."""
        return self

    def detach(self, resource: object) -> None:
        """Close this process's connections."""
        self.close()

    def connect(self) -> sqlite3.Connection:
        """This process's and this thread's connection, opened on first use."""
        if self._pid != os.getpid():
            # A forked copy: the parent's connections are not ours to use.
            self._reset()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            import sqlite3

            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Run one statement, after a ``"sqlite.execute"`` sync point.

        Returns:
            The cursor, as ``sqlite3.Connection.execute`` returns it.
        """
        sync_point("sqlite.execute")
        return self.connect().execute(sql, params)

    def close(self) -> None:
        """Close every connection this handle opened in this process."""
        with self._lock:
            conns, self._conns = self._conns, []
        self._local = threading.local()
        for conn in conns:
            conn.close()


def _new_sqlite_handle(cls: type[SqliteHandle], path: str, timeout: float) -> SqliteHandle:
    return cls(path, timeout=timeout)


class SharedMemoryHandle:
    """A block of POSIX shared memory, created here or attached by name.

    ``SharedMemoryHandle(size)`` creates a segment and owns it;
    ``SharedMemoryHandle(name=...)`` attaches an existing one.  It pickles to
    the name only, and unpickling attaches, without registering the segment
    with ``resource_tracker`` (so no spurious "leaked shared_memory"
    warnings and no unlinking of a segment this process does not own).

    Args:
        size: bytes to create; omit to attach.
        name: the segment to attach, or the name to create it under when
            ``size`` is given too.

    Raises:
        SpecError: neither ``size`` nor ``name`` was given, or ``size < 1``.

    Example:
        >>> from jostle import SharedMemoryHandle
        >>> shm = SharedMemoryHandle(8)
        >>> shm.buf[0] = 1
        >>> shm.close()                  # the owner also unlinks
    """

    def __init__(self, size: int | None = None, *, name: str | None = None) -> None:
        from multiprocessing import shared_memory

        if size is None:
            if name is None:
                raise SpecError(
                    "SharedMemoryHandle() needs size= to create a segment or name= "
                    "to attach one. Fix: SharedMemoryHandle(64) or "
                    "SharedMemoryHandle(name='psm_...')."
                )
            self._shm = _attach_untracked(name)
            self._owner = False
        else:
            if size < 1:
                raise SpecError(
                    f"Expected size >= 1 but got size={size!r} (type={type(size).__name__}) "
                    "in SharedMemoryHandle(). Fix: pass the number of bytes to create."
                )
            self._shm = shared_memory.SharedMemory(name=name, create=True, size=size)
            self._owner = True
        self._closed = False

    def __repr__(self) -> str:
        role = "owner" if self._owner else "attached"
        return f"{type(self).__name__}(name={self._shm.name!r}, {role})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_attach_shared_memory_handle, (type(self), self._shm.name))

    def __enter__(self) -> SharedMemoryHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __jostle_handle__(self) -> SharedMemoryHandle:
        return self

    def attach(self) -> SharedMemoryHandle:
        """Return the handle itself (unpickling already attached it)."""
        return self

    def detach(self, resource: object) -> None:
        """Unmap the segment in this process (never unlinks an attached one)."""
        if not self._owner:
            self.close()

    @property
    def name(self) -> str:
        """The segment's name, to attach it elsewhere."""
        return self._shm.name

    @property
    def owner(self) -> bool:
        """Whether this handle created the segment (and unlinks it on close)."""
        return self._owner

    @property
    def size(self) -> int:
        """The segment's size in bytes (the OS may round it up)."""
        return self._shm.size

    @property
    def buf(self) -> memoryview:
        """The segment's bytes, writable and shared with every process.

        Raises:
            SpecError: the handle was closed.
        """
        buf = self._shm.buf
        if buf is None:
            raise SpecError(f"{self!r} is closed. Fix: use .buf before .close().")
        return buf

    def close(self) -> None:
        """Unmap the segment; the owner also unlinks it.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._shm.close()
        except BufferError:
            pass  # a caller still holds a slice of buf; the mapping goes with it
        if self._owner:
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass


def _attach_shared_memory_handle(cls: type[SharedMemoryHandle], name: str) -> SharedMemoryHandle:
    return cls(name=name)


# -- resource_tracker filtering (see the module docstring) -------------------

_filter_lock = threading.Lock()
_filter_installed = False
_untrack_all_shared_memory = False
_suppress = threading.local()


def _attach_untracked(name: str) -> SharedMemory:
    """Attach segment ``name`` without registering it with resource_tracker."""
    from multiprocessing import shared_memory

    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    _install_tracker_filter()
    _suppress.active = True
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        _suppress.active = False


def untrack_shared_memory() -> None:
    """Stop this process registering any SharedMemory with resource_tracker.

    Called once at the start of every process worker: segments that user
    resources attach there belong to the controller, which tracks them.
    """
    global _untrack_all_shared_memory
    _untrack_all_shared_memory = True
    _install_tracker_filter()


def _install_tracker_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if _filter_installed:
            return
        from multiprocessing import resource_tracker

        register, unregister = resource_tracker.register, resource_tracker.unregister

        def filtered_register(name: Sized, rtype: str) -> None:
            if rtype == "shared_memory" and (
                _untrack_all_shared_memory or getattr(_suppress, "active", False)
            ):
                return
            register(name, rtype)

        def filtered_unregister(name: Sized, rtype: str) -> None:
            if rtype == "shared_memory" and _untrack_all_shared_memory:
                return
            unregister(name, rtype)

        filtered_register.__jostle_filter__ = True  # type: ignore[attr-defined]  # marker for tests
        resource_tracker.register = filtered_register
        resource_tracker.unregister = filtered_unregister
        _filter_installed = True


# -- Manager ------------------------------------------------------------------

_MANAGER_KINDS = (
    "dict",
    "list",
    "Namespace",
    "Value",
    "Array",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Barrier",
    "Queue",
    "JoinableQueue",
)
_manager: SyncManager | None = None
_manager_pid = 0
_manager_lock = threading.Lock()


def _shared_manager() -> SyncManager:
    """This process's one ``multiprocessing.Manager``, started on first use."""
    global _manager, _manager_pid
    with _manager_lock:
        if _manager is None or _manager_pid != os.getpid():
            import multiprocessing

            # forkserver, not fork: forking a process with live threads can
            # deadlock and warns from 3.12 on.
            ctx = multiprocessing.get_context("forkserver")
            _manager = ctx.Manager()
            _manager_pid = os.getpid()
            atexit.register(_shutdown_manager, _manager)
        return _manager


def _shutdown_manager(manager: SyncManager) -> None:
    if _manager_pid == os.getpid():
        manager.shutdown()


class ManagerHandle:
    """An object served by a ``multiprocessing.Manager``, reached by proxy.

    The controller process starts one manager on first use and shuts it down
    at exit.  The handle pickles as its proxy, which reconnects in the worker
    (workers inherit the controller's authkey); :meth:`attach` returns the
    proxy, so operations receive it directly.

    Args:
        kind: the managed type: ``"dict"``, ``"list"``, ``"Namespace"``,
            ``"Value"``, ``"Array"``, ``"Lock"``, ``"RLock"``,
            ``"Semaphore"``, ``"BoundedSemaphore"``, ``"Condition"``,
            ``"Event"``, ``"Barrier"``, ``"Queue"`` or ``"JoinableQueue"``.
        *args: passed to the manager's constructor for ``kind``
            (``ManagerHandle("Value", "i", 0)``).

    Raises:
        SpecError: ``kind`` is not one of the above.

    Example:
        >>> from jostle import ManagerHandle
        >>> def put(d, key, value):      # d is the dict proxy
        ...     d[key] = value
        >>> shared = ManagerHandle("dict")
    """

    def __init__(self, kind: str, /, *args: object) -> None:
        if kind not in _MANAGER_KINDS:
            raise SpecError(
                f"Expected a multiprocessing.Manager type but got kind={kind!r} "
                f"(type={type(kind).__name__}) in ManagerHandle(). Fix: use one of "
                f"{', '.join(_MANAGER_KINDS)}."
            )
        self.kind = kind
        self.proxy: Any = getattr(_shared_manager(), kind)(*args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r})"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (_rebuild_manager_handle, (type(self), self.kind, self.proxy))

    def __jostle_handle__(self) -> ManagerHandle:
        return self

    def attach(self) -> Any:
        """Return the proxy: what operations receive."""
        return self.proxy


def _rebuild_manager_handle(cls: type[ManagerHandle], kind: str, proxy: Any) -> ManagerHandle:
    handle = cls.__new__(cls)
    handle.kind = kind
    handle.proxy = proxy
    return handle
