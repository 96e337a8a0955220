"""Scheduling points inside user code: where a controlled thread may be
preempted.

A controlled run switches threads only at scheduling points, so which
points exist decides which interleavings can be found, and which reports are
false alarms.  Two preemption models, chosen by the user and printed on
every report:

``gil`` (the default on GIL builds)
    Only where CPython itself can switch threads: where the eval loop checks
    its *eval breaker*.  That is function entry and generator resumption
    (``RESUME``), backward jumps, and the return of a call to a C function
    (including a class call), in any Python code a worker runs, not only the
    user's files (a namedtuple's ``__new__``, ``json.loads``), plus every
    operation of a cooperative primitive.  Measured here on stock 3.10-3.13
    with a 1 us switch interval: ``self.n = self.n + 1`` never loses an
    update (no check between the load and the store), while
    ``d[k] = d.get(k, 0) + 1`` loses tens of thousands in 40,000 (the check
    after ``dict.get`` returns), so C-call returns must be points or the
    commonest counter race is missed.  On 3.11+ the specialised calls to
    ``len``, ``isinstance``, ``type`` and ``list.append`` skip the check (0
    interleavings in 200,000 trials each, where ``abs``, ``str``,
    ``hasattr``, ``dict.get`` or a class call show tens), so their returns
    are not points there; on 3.10 every C call checks.  A race found in this
    model can happen on a stock interpreter.
``opcode``
    Every bytecode instruction of the code under test (the user's files) is
    a point, on top of the ``gil`` points elsewhere: what a free-threaded
    build can do.  It finds ``self.n = self.n + 1``; on a GIL build such a
    report is only a warning about free-threading.

Excluded everywhere: jostle's own code (the cooperative primitives, the
controller, and whatever runs inside a controller call, such as a strategy
defined in a test file: :attr:`Entity.busy`), ``threading`` and ``queue``
internals (their blocking is cooperative already), ``asyncio``'s own
machinery (it touches loop-private state only; the user's coroutines are
traced), the import system, and the test frameworks.

Mechanism.  On 3.12+ ``sys.monitoring`` with a free tool id (never 1,
coverage's, nor 3, Hypothesis's explain phase; a clear error if none is
left): global ``PY_START`` and ``PY_RESUME`` only.  Excluded code answers
``DISABLE`` (once per location, for good); any other code object, when
first seen, gets local events (``set_local_events``): ``CALL`` (which is
what enables ``C_RETURN``) and ``JUMP`` (forward jumps and
``JUMP_BACKWARD_NO_INTERRUPT`` answer ``DISABLE``), or ``INSTRUCTION`` for
user code in the opcode model.  Local events are removed when the run ends.
``DISABLE`` is only ever decided from the file or the instruction, never
from the thread or the callee, so the set of points is the same in every
run.  On 3.10 and 3.11, ``sys.settrace`` and ``sys.setprofile`` installed
in the worker thread itself for the length of one job: ``call`` events,
``line`` events at the targets of backward jumps, ``f_trace_opcodes`` for
the opcode model, ``c_return`` for C functions (settrace cannot see calls
to classes, so ``str(x)`` or ``range(n)`` are points on 3.12+ only).  On
3.12/3.13 settrace with ``f_trace_opcodes`` loses events the first time a
code object runs (field notes: 98 of 105 events), which breaks replay: that
is why monitoring is used there (interleave-test chose it for the same
reason).

Every callback first looks the calling thread up (one dict lookup): threads
that are not controlled entities pay about 0.3 us per event on 3.12/3.13,
and nothing on 3.10/3.11 (the hooks are installed on controlled threads
only).  Measured per point in a controlled thread with no switch, hook plus
controller: 1.0-1.4 us on 3.12/3.13, 1.1-1.8 us on 3.11, 1.9-2.7 us on 3.10.

Schedules are per interpreter version: the points differ between versions
(the specialisations above, calls to classes), so a recorded schedule
replays on the version that recorded it.  Code that runs only the first
time (a cache being filled, a lazy import) adds points to the first run
only; warm the scenario up once before comparing decision logs.
"""

from __future__ import annotations

import _thread
import asyncio
import dis
import os
import queue
import sys
import sysconfig
import threading
from collections.abc import Callable
from types import CodeType, FrameType, FunctionType, MethodType
from typing import Any, Literal

from ._control import Entity
from ._errors import SpecError
from ._window import ThreadMap, Window

__all__ = ["DEFAULT_MODEL", "MONITORING", "Model", "Tracer", "check_model", "is_user_file"]

Model = Literal["gil", "opcode"]

#: ``gil`` on GIL builds, ``opcode`` on free-threaded ones.
DEFAULT_MODEL: Model = (
    "opcode" if hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled() else "gil")

#: Whether this interpreter uses ``sys.monitoring`` (3.12+) or settrace.
MONITORING = sys.version_info >= (3, 12)
# ``sys.monitoring`` (typed Any: mypy checks this module as 3.10).
_mon: Any = getattr(sys, "monitoring", None)
_DISABLE: Any = getattr(_mon, "DISABLE", None)

_EXCLUDED, _OTHER, _USER = 0, 1, 2

_JOSTLE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIRS = tuple({os.path.abspath(sysconfig.get_paths()[k]) + os.sep
                      for k in ("stdlib", "platstdlib")})
_THREADING_FILES = frozenset({
    threading.Condition.wait.__code__.co_filename,
    queue.Queue.get.__code__.co_filename,
})
# asyncio's own machinery (the loop, tasks, futures, its locks and queues)
# touches only loop-private state between the user's awaits; its switch
# points would multiply the schedule space without exposing a user race.
_ASYNCIO_DIR = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep
_FRAMEWORK_PARTS = tuple(f"{os.sep}{name}{os.sep}" for name in (
    "hypothesis", "_pytest", "pluggy", "coverage", "xdist", "execnet"))

# C functions whose specialised call does not check the eval breaker on
# 3.11+ (measured: see the module docstring).  Identity, not hashing: a
# callable object need not be hashable.
_NO_BREAKER_IDS = frozenset(
    id(f) for f in (len, isinstance, type, list.append)) if sys.version_info >= (3, 11) \
    else frozenset()


def is_user_file(filename: str) -> bool:
    """The default "code under test": not the standard library (outside
    ``site-packages``), not installed third-party packages, not jostle, not
    generated code (``<string>``)."""
    if filename.startswith(("<", _JOSTLE_DIR)):
        return False
    path = os.path.abspath(filename)
    if "-packages" + os.sep in path:
        return False
    return not path.startswith(_STDLIB_DIRS)


# filename -> kind, one table per ``user_code`` predicate.
_kind_tables: dict[Callable[[str], bool], dict[str, int]] = {}


def _classify(filename: str, user_code: Callable[[str], bool], table: dict[str, int]) -> int:
    if (filename.startswith((_JOSTLE_DIR, _ASYNCIO_DIR, "<frozen importlib"))
            or filename in _THREADING_FILES
            or any(part in filename for part in _FRAMEWORK_PARTS)):
        kind = _EXCLUDED
    elif user_code(filename):
        kind = _USER
    else:
        kind = _OTHER
    table[filename] = kind
    return kind


# Labels are cached across runs (code objects are kept alive by the cache;
# it is cleared when it grows large).
_start_labels: dict[CodeType, str] = {}
_line_labels: dict[tuple[CodeType, int], str] = {}
_base_names: dict[str, str] = {}


def _base(filename: str) -> str:
    name = _base_names.get(filename)
    if name is None:
        name = _base_names[filename] = filename.rpartition(os.sep)[2]
    return name


def _start_label(code: CodeType) -> str:
    label = _start_labels.get(code)
    if label is None:
        if len(_start_labels) > 50_000:
            _start_labels.clear()
        label = _start_labels[code] = f"{_base(code.co_filename)}:{code.co_firstlineno}"
    return label


def _offset_label(code: CodeType, offset: int) -> str:
    key = (code, offset)
    label = _line_labels.get(key)
    if label is None:
        if len(_line_labels) > 200_000:
            _line_labels.clear()
        line = code.co_firstlineno
        for start, end, ln in code.co_lines():
            if start <= offset < end:
                if ln is not None:
                    line = ln
                break
        label = _line_labels[key] = f"{_base(code.co_filename)}:{line}"
    return label


def _line_label(frame: FrameType) -> str:
    return f"{_base(frame.f_code.co_filename)}:{frame.f_lineno}"


_BACKWARD_NO_INTERRUPT = dis.opmap.get("JUMP_BACKWARD_NO_INTERRUPT", -1)
_interrupting: dict[tuple[CodeType, int], bool] = {}


def _checks_breaker(code: CodeType, offset: int) -> bool:
    """Whether the jump at ``offset`` checks the eval breaker (``co_code``
    is a fresh copy on each access: look once per location)."""
    key = (code, offset)
    ok = _interrupting.get(key)
    if ok is None:
        if len(_interrupting) > 200_000:
            _interrupting.clear()
        ok = _interrupting[key] = code.co_code[offset] != _BACKWARD_NO_INTERRUPT
    return ok


_BackTargets = tuple[frozenset[int], frozenset[int]]
_back_targets: dict[CodeType, _BackTargets | None] = {}


def _backjumps(code: CodeType) -> _BackTargets | None:
    """The targets of ``code``'s backward jumps that check the eval breaker
    (settrace path), split in two: targets on the same line as the
    instruction before them, where a ``line`` event can only mean a jump
    arrived (falling through to them starts no new line), and the others.
    ``None`` if there are none."""
    if code in _back_targets:
        return _back_targets[code]
    targets: set[int] = set()
    line_of: dict[int, int | None] = {}
    prev_line: dict[int, int | None] = {}
    line: int | None = None
    last: int | None = None
    for ins in dis.get_instructions(code):
        prev_line[ins.offset] = last
        starts = ins.starts_line
        if isinstance(starts, int) and not isinstance(starts, bool):
            line = starts
        line_of[ins.offset] = line
        last = line
        if (ins.opcode in dis.hasjabs or ins.opcode in dis.hasjrel) \
                and isinstance(ins.argval, int) and ins.argval <= ins.offset \
                and ins.opcode != _BACKWARD_NO_INTERRUPT:
            targets.add(ins.argval)
    result: _BackTargets | None = None
    if targets:
        same = frozenset(t for t in targets if line_of.get(t) == prev_line.get(t))
        result = (same, frozenset(targets) - same)
    if len(_back_targets) > 50_000:
        _back_targets.clear()
    _back_targets[code] = result
    return result


def _no_breaker(fn: Any) -> bool:
    """Whether returning from a call to ``fn`` is not a switch point."""
    if id(fn) in _NO_BREAKER_IDS:
        return True
    # sys.monitoring reports a call through a bound method (a ``with``
    # statement's ``__exit__``) as a C call; the Python function it runs has
    # its own entry point, and CPython does not check the breaker after it.
    if type(fn) is MethodType and type(fn.__func__) is FunctionType:
        return True
    # settrace's c_return gives the bound method ``some_list.append``.
    return (bool(_NO_BREAKER_IDS) and type(getattr(fn, "__self__", None)) is list
            and getattr(fn, "__name__", "") == "append")


def check_model(model: object) -> None:
    """Raise :class:`SpecError` unless ``model`` is ``"gil"`` or ``"opcode"``."""
    if model not in ("gil", "opcode"):
        raise SpecError(f"Expected model 'gil' or 'opcode' but got model={model!r} "
                        f"(type={type(model).__name__}); use 'gil' for a GIL build's real "
                        f"switch points or 'opcode' for free-threaded ones")


_PREFERRED_TOOL_IDS = (4, 2, 5, 0)  # never 1 (coverage) or 3 (Hypothesis)


def _claim_tool_id() -> int:
    mon = _mon
    for tool in _PREFERRED_TOOL_IDS:
        if mon.get_tool(tool) is None:
            try:
                mon.use_tool_id(tool, "jostle")
            except ValueError:  # taken meanwhile by another thread
                continue
            return tool
    holders = ", ".join(f"{i}: {mon.get_tool(i)!r}" for i in range(6))
    raise SpecError(
        f"controlled threads need a free sys.monitoring tool id, but every id jostle may use "
        f"(4, 2, 5, 0; never 1, coverage's, or 3, Hypothesis's) is taken ({holders}). "
        f"Fix: detach the debugger or profiler holding one of them for this test run, or "
        f"run the test with mode='stress' instead of controlled mode")


class Tracer:
    """Makes the code a controlled entity runs report scheduling points to
    the controller.

    Use it as a context manager around a controlled run (it claims and frees
    a ``sys.monitoring`` tool id on 3.12+), and call :meth:`thread_begin` /
    :meth:`thread_end` at the start and end of each controlled job on the
    job's own thread (they install ``sys.settrace`` there on 3.10/3.11 and
    do nothing on 3.12+).

    Args:
        window: the run's patching window (controller, entity lookup).
        model: ``"gil"`` or ``"opcode"`` (see the module docstring).
        user_code: which files are the code under test (opcode points);
            default :func:`is_user_file`.

    Raises:
        SpecError: ``model`` is not one of the two.
    """

    def __init__(self, window: Window, *, model: Model = DEFAULT_MODEL,
                 user_code: Callable[[str], bool] | None = None) -> None:
        check_model(model)
        self.window = window
        self.model = model
        self.user_code = user_code or is_user_file
        self._tool: int | None = None
        self._started = False
        # Code objects given local events this run, in the order first seen.
        self._armed: dict[CodeType, None] = {}
        self._saved: dict[int, tuple[Any, Any]] = {}
        em = window.entity_of
        if isinstance(em, ThreadMap):
            lookup = em.by_ident.get
            get_ident = _thread.get_ident

            def entity() -> Entity | None:
                return lookup(get_ident())
            self._entity: Callable[[], Entity | None] = entity
        else:
            self._entity = em
        self._trace_call, self._profile = self._settrace_hooks()

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Tracer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called (and :meth:`stop` not since)."""
        return self._started

    def start(self) -> None:
        """Start reporting points (claims a monitoring tool id on 3.12+).

        Raises:
            SpecError: no ``sys.monitoring`` tool id is free.
        """
        self._started = True
        if not MONITORING or self._tool is not None:
            return
        tool = _claim_tool_id()
        self._tool = tool
        for event, callback in self._monitoring_hooks(tool).items():
            _mon.register_callback(tool, event, callback)
        _mon.set_events(tool, _mon.events.PY_START | _mon.events.PY_RESUME)

    def stop(self) -> None:
        """Stop reporting points, clear the local events, free the tool id."""
        self._started = False
        tool, self._tool = self._tool, None
        if tool is None:
            return
        ev = _mon.events
        _mon.set_events(tool, 0)
        for code in self._armed:
            _mon.set_local_events(tool, code, 0)
        self._armed.clear()
        for event in (ev.PY_START, ev.PY_RESUME, ev.JUMP, ev.C_RETURN, ev.INSTRUCTION):
            _mon.register_callback(tool, event, None)
        _mon.free_tool_id(tool)

    def thread_begin(self) -> None:
        """Call on a controlled job's thread before it enters the controller."""
        if MONITORING:
            return
        self._saved[_thread.get_ident()] = (sys.gettrace(), sys.getprofile())
        sys.settrace(self._trace_call)
        sys.setprofile(self._profile)

    def thread_end(self) -> None:
        """Call on the job's thread when it is over (restores what was there)."""
        if MONITORING:
            return
        trace, profile = self._saved.pop(_thread.get_ident(), (None, None))
        sys.settrace(trace)
        sys.setprofile(profile)

    # The callbacks are closures over locals: they run for every function
    # entry of every thread, and attribute lookups are what they would cost.

    def _monitoring_hooks(self, tool: int) -> dict[int, Callable[..., Any]]:
        """sys.monitoring (3.12+): global PY_START/PY_RESUME; each code
        object that is not excluded gets local CALL (for C_RETURN) and JUMP
        events when first seen, or INSTRUCTION for user code in the opcode
        model; excluded code answers DISABLE once per location."""
        ev = _mon.events
        set_local = _mon.set_local_events
        disable = _DISABLE
        kinds = _kind_tables.setdefault(self.user_code, {})
        kinds_get = kinds.get
        user_code = self.user_code
        entity = self._entity
        armed = self._armed
        opcode = self.model == "opcode"
        other_events = ev.CALL | ev.JUMP
        user_events = ev.INSTRUCTION if opcode else other_events

        def on_start(code: CodeType, offset: int) -> Any:
            kind = kinds_get(code.co_filename)
            if kind is None:
                kind = _classify(code.co_filename, user_code, kinds)
            if kind == _EXCLUDED:
                return disable
            if code not in armed:
                armed[code] = None
                set_local(tool, code, user_events if kind == _USER else other_events)
            me = entity()
            if me is not None and not me.busy and not me.aborted:
                me.ctl.point(me, _start_label(code))
            return None

        def on_jump(code: CodeType, offset: int, dest: int) -> Any:
            if dest > offset or not _checks_breaker(code, offset):
                return disable
            me = entity()
            if me is not None and not me.busy and not me.aborted:
                me.ctl.point(me, _offset_label(code, offset))
            return None

        def on_c_return(code: CodeType, offset: int, fn: object, arg0: object) -> Any:
            me = entity()
            if me is not None and not me.busy and not me.aborted and not _no_breaker(fn):
                me.ctl.point(me, _offset_label(code, offset))
            return None

        def on_instruction(code: CodeType, offset: int) -> Any:
            me = entity()
            if me is not None and not me.busy and not me.aborted:
                me.ctl.point(me, _offset_label(code, offset))
            return None

        return {ev.PY_START: on_start, ev.PY_RESUME: on_start, ev.JUMP: on_jump,
                ev.C_RETURN: on_c_return, ev.INSTRUCTION: on_instruction}

    def _settrace_hooks(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """settrace and setprofile functions (3.10, 3.11), installed on the
        controlled threads only."""
        kinds = _kind_tables.setdefault(self.user_code, {})
        kinds_get = kinds.get
        user_code = self.user_code
        entity = self._entity
        opcode = self.model == "opcode"

        def point(me: Entity, label: str) -> None:
            me.ctl.point(me, label)

        def live() -> Entity | None:
            me = entity()
            if me is None or me.busy or me.aborted:
                return None
            return me

        def on_opcode(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                me = live()
                if me is not None:
                    point(me, _line_label(frame))
            return on_opcode

        def on_call(frame: FrameType, event: str, arg: Any) -> Any:
            code = frame.f_code
            kind = kinds_get(code.co_filename)
            if kind is None:
                kind = _classify(code.co_filename, user_code, kinds)
            if kind == _EXCLUDED:
                return None
            me = live()
            if me is not None:
                point(me, _start_label(code))
            if opcode and kind == _USER:
                frame.f_trace_opcodes = True
                frame.f_trace_lines = False
                return on_opcode
            targets = _backjumps(code)
            if targets is not None:
                return _BackJumps(live, point, targets)
            return None

        def on_profile(frame: FrameType, event: str, arg: Any) -> None:
            if event != "c_return":
                return
            me = live()
            if me is None or _no_breaker(arg):
                return
            code = frame.f_code
            kind = kinds_get(code.co_filename)
            if kind is None:
                kind = _classify(code.co_filename, user_code, kinds)
            if kind == _EXCLUDED or (opcode and kind == _USER):
                return
            point(me, _line_label(frame))

        return on_call, on_profile


class _BackJumps:
    """Local trace function of one frame (3.10, 3.11): a ``line`` event at
    a backward jump's target is that jump when falling through to the target
    starts no line, or when ``f_lasti`` did not move forward since the last
    ``line`` event."""

    __slots__ = ("last", "live", "other", "point", "same")

    def __init__(self, live: Callable[[], Entity | None], point: Callable[[Entity, str], None],
                 targets: _BackTargets) -> None:
        self.live = live
        self.point = point
        self.same, self.other = targets
        self.last = -1

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            lasti = frame.f_lasti
            if lasti in self.same or (lasti in self.other and lasti <= self.last):
                me = self.live()
                if me is not None:
                    self.point(me, _line_label(frame))
            self.last = lasti
        return self
