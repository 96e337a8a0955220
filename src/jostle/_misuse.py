"""Mistakes in using jostle, caught where they happen, each with the fix.

A testing tool that runs the user's code from threads, tasks and processes
meets mistakes no single-threaded tool would: an operation that cannot cross
to a process, a model that raises where it should answer, a thread the
operation starts behind the scheduler's back.  Each is reported as a
:class:`jostle.SpecError` or :class:`jostle.SpecTypeError` saying what was
wrong, where it came from (the operation, the argument, the line) and the
fix, as Hypothesis reports ``InvalidArgument`` and pytest-timeout names the
setting's source.  ``docs/misuse.md`` lists every one with the test that
shows it.

The checks here are the ones that need the run's context (the engines and
the checker call them); the ones a spec can be checked for when it is built
stay in ``_spec``.
"""

from __future__ import annotations

import contextlib
import copyreg
import traceback
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st
from hypothesis.errors import HypothesisException, InvalidArgument

from . import _nondeterminism
from ._errors import SpecError, SpecTypeError
from ._handles import handle_for

if TYPE_CHECKING:
    from ._history import History
    from ._linearizability import LinearizabilityResult
    from ._spec import Operation, Spec

__all__ = ["check_model_results", "collect_thread_starts", "guarded", "process_handle",
           "uncontrolled_threads_error"]


# -- threads started in a controlled run -------------------------------------------------

@contextlib.contextmanager
def collect_thread_starts() -> Iterator[list[str]]:
    """Collect a note for every thread a controlled entity starts in the
    block (across all of its executions)."""
    saved = _nondeterminism.thread_starts
    started: list[str] = []
    _nondeterminism.thread_starts = started
    try:
        yield started
    finally:
        _nondeterminism.thread_starts = saved


def uncontrolled_threads_error(started: list[str], spec: Spec) -> SpecError:
    """The error for threads an operation (or the factory) started in a
    controlled run (one line per place, however many executions did it)."""
    by_place: dict[str, tuple[str, int]] = {}
    for note in started:
        text = note.removeprefix("uncontrolled nondeterminism: ").split(": it ran")[0]
        place = text.rpartition(" at ")[2]
        first, n = by_place.get(place, (text, 0))
        by_place[place] = (first, n + 1)
    what = "; ".join(f"{text}" + (f" ({n} times)" if n > 1 else "")
                     for text, n in list(by_place.values())[:3])
    return SpecError(
        f"in a controlled run of {spec.name}, {what}. jostle schedules only the threads it "
        "starts itself, so that thread ran outside the schedule: the run was not under "
        "control and a failure in it would not replay. Fix: make the thread's work an "
        "operation of its own (jostle then runs it on a worker it controls), let the "
        "resource take the executor or thread it uses so a test can pass a synchronous "
        "one, or test this spec with mode='stress'; to run it anyway with the thread "
        "uncontrolled, pass concurrent_test(..., uncontrolled_threads='allow')")


# -- resources handed to process workers --------------------------------------------------

# In-memory containers: pickled to a process, each process mutates a copy.
_COPIES = (dict, list, set, bytearray, deque, Counter, OrderedDict, defaultdict)


def process_handle(spec: Spec, resource: object, worker: int) -> object:
    """The handle that carries ``resource`` to process worker ``worker``.

    Raises:
        SpecTypeError: the resource is an in-memory container with no
            handle: every process would work on a copy of its own.
    """
    if spec.handle is not None:
        return spec.handle(resource)
    if (getattr(type(resource), "__jostle_handle__", None) is None
            and isinstance(resource, _COPIES) and type(resource) not in copyreg.dispatch_table):
        raise SpecTypeError(
            f"scenario worker {worker} is a process worker, but the resource of "
            f"{spec.name} is a {type(resource).__qualname__} with no process handle: jostle "
            "would pickle it, and each process would change a copy of its own (the checker "
            "would then report the copies diverging, not a bug). Fix: keep the state "
            "somewhere processes share and give the resource a __jostle_handle__() returning "
            "a handle whose attach() reconnects to it (jostle.FileHandle, SqliteHandle, "
            "SharedMemoryHandle, ManagerHandle('dict')), pass jostle.spec(..., handle=...), "
            "or drop 'process' from the operations' kinds=")
    return handle_for(resource)


# -- the model ------------------------------------------------------------------------------

def check_model_results(spec: Spec, result: LinearizabilityResult, history: History) -> None:
    """After a failed linearizability check: if the model raised an exception
    the spec does not declare, that is a mistake in the model or in
    ``expected_errors``, not a bug in the resource: say so.

    Raises:
        SpecError: the model raised an undeclared exception where the search
            got stuck; chained to that exception, with its traceback.
    """
    if spec.model is None:
        return
    for m in result.stuck:
        if not m.expected.startswith("raised "):
            continue
        name = m.expected[len("raised "):].split(":", 1)[0].strip()
        if any((e if isinstance(e, str) else e.__name__) == name.rpartition(".")[2]
               or (not isinstance(e, str) and e.__qualname__ == name)
               for e in spec.expected_errors):
            continue
        _model_raised(spec, result, history, m.index, name)


def _model_raised(spec: Spec, result: LinearizabilityResult, history: History, index: int,
                  name: str) -> None:
    assert spec.model is not None
    recs = {r.index: r for r in history.ops}
    model = spec.model()
    for i in result.longest_prefix:
        rec = recs[i]
        with contextlib.suppress(Exception):
            getattr(model, rec.op)(*rec.args)
    rec = recs[index]
    mname = type(model).__qualname__
    prefix = ", ".join(recs[i].call_repr() for i in result.longest_prefix) or "nothing"
    try:
        getattr(model, rec.op)(*rec.args)
    except Exception as exc:
        inner = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        tb = "".join(traceback.format_exception(type(exc), exc, inner))
        cause: BaseException | None = exc
        what = f"{type(exc).__qualname__}: {exc}"
    else:  # a model that does not raise again is not deterministic
        tb, cause, what = "", None, name
    short = name.rpartition(".")[2]
    raise SpecError(
        f"the model {mname} raised {what} for operation #{index} {rec.call_repr()} "
        f"(after {prefix}) while jostle checked a history of {spec.name}: a model must return "
        "what the operation returns when run alone, or raise an exception declared in "
        f"jostle.spec(..., expected_errors=...). Fix: if {rec.op} itself raises {short} in "
        f"that state, add expected_errors=({short},); otherwise fix {mname}.{rec.op}"
        + (f". The model's traceback:\n{tb}" if tb else "")) from cause


# -- argument strategies ----------------------------------------------------------------------

def guarded(op: Operation, position: int, strategy: st.SearchStrategy[Any]
            ) -> st.SearchStrategy[Any]:
    """``strategy``, with an error raised while drawing from it turned into
    a :class:`jostle.SpecError` naming the operation and the argument."""
    @st.composite
    def argument(draw: st.DrawFn) -> Any:
        try:
            return draw(strategy)
        except InvalidArgument as exc:
            raise SpecError(_strategy_message(op, position, strategy, exc)) from exc
        except HypothesisException:
            raise  # Hypothesis's own control flow
        except Exception as exc:
            raise SpecError(_strategy_message(op, position, strategy, exc)) from exc

    return argument()


def _strategy_message(op: Operation, position: int, strategy: st.SearchStrategy[Any],
                      exc: BaseException) -> str:
    where = ""
    tb = exc.__traceback__
    frames = traceback.extract_tb(tb) if tb is not None else []
    user = [f for f in frames if "hypothesis" not in f.filename and "jostle" not in f.filename]
    if user:
        where = f" at {user[-1].filename}:{user[-1].lineno}"
    text = repr(strategy)
    text = text if len(text) <= 120 else text[:117] + "..."
    return (f"the strategy for argument {position} of operation {op.name!r} raised "
            f"{type(exc).__name__}: {exc}{where} while Hypothesis drew from it ({text}). "
            "Fix the strategy (the function given to .map/.filter/@st.composite, or its "
            "bounds) so that every draw returns a value; jostle draws arguments before it "
            "runs anything")
