"""jostle: find thread-safety, asyncio and multiprocess bugs before users do.

Describe a shared resource sequentially (its operations and a model of what
they do one at a time); jostle runs them concurrently from threads, asyncio
tasks and processes, under Hypothesis, and checks every run for
linearizability, invariants, exceptions and hangs.

The public API is exactly ``__all__``; everything in underscored modules is
internal.
"""

from ._cases import Case as Case
from ._cases import load_cases as load_cases
from ._checker import Finding as Finding
from ._checker import Verdict as Verdict
from ._checker import judge as judge
from ._engine import Execution as Execution
from ._engine import StuckWorker as StuckWorker
from ._engine import execute as execute
from ._errors import (
    ConcurrencyFailure as ConcurrencyFailure,
)
from ._errors import (
    Hang as Hang,
)
from ._errors import (
    InvariantViolated as InvariantViolated,
)
from ._errors import (
    JostleError as JostleError,
)
from ._errors import (
    NotLinearizable as NotLinearizable,
)
from ._errors import (
    SpecError as SpecError,
)
from ._errors import (
    SpecTypeError as SpecTypeError,
)
from ._errors import (
    UnexpectedException as UnexpectedException,
)
from ._errors import (
    WorkerCrashed as WorkerCrashed,
)
from ._handles import (
    FileHandle as FileHandle,
)
from ._handles import (
    ManagerHandle as ManagerHandle,
)
from ._handles import (
    SharedMemoryHandle as SharedMemoryHandle,
)
from ._handles import (
    SqliteHandle as SqliteHandle,
)
from ._handles import (
    handle_for as handle_for,
)
from ._history import (
    History as History,
)
from ._history import (
    OpRecord as OpRecord,
)
from ._history import (
    Raised as Raised,
)
from ._history import (
    Returned as Returned,
)
from ._history import (
    Unknown as Unknown,
)
from ._linearizability import (
    LinearizabilityResult as LinearizabilityResult,
)
from ._linearizability import (
    check_linearizability as check_linearizability,
)
from ._machine import from_machine as from_machine
from ._report import format_timeline as format_timeline
from ._runner import concurrent_test as concurrent_test
from ._runner import replay as replay
from ._runner import run as run
from ._scenario import Scenario as Scenario
from ._scenario import Step as Step
from ._scenario import WorkerPlan as WorkerPlan
from ._scenario import scenarios as scenarios
from ._scheduler import Point as Point
from ._scheduler import Scheduler as Scheduler
from ._scheduler import StressScheduler as StressScheduler
from ._spec import Operation as Operation
from ._spec import Spec as Spec
from ._spec import operation as operation
from ._spec import spec as spec
from ._syncpoints import sync_point as sync_point
from ._unknown import UNKNOWN as UNKNOWN

__version__ = "0.1.0"

__all__ = [
    "UNKNOWN",
    "Case",
    "ConcurrencyFailure",
    "Execution",
    "FileHandle",
    "Finding",
    "Hang",
    "History",
    "InvariantViolated",
    "JostleError",
    "LinearizabilityResult",
    "ManagerHandle",
    "NotLinearizable",
    "OpRecord",
    "Operation",
    "Point",
    "Raised",
    "Returned",
    "Scenario",
    "Scheduler",
    "SharedMemoryHandle",
    "Spec",
    "SpecError",
    "SpecTypeError",
    "SqliteHandle",
    "Step",
    "StressScheduler",
    "StuckWorker",
    "UnexpectedException",
    "Unknown",
    "Verdict",
    "WorkerCrashed",
    "WorkerPlan",
    "check_linearizability",
    "concurrent_test",
    "execute",
    "format_timeline",
    "from_machine",
    "handle_for",
    "judge",
    "load_cases",
    "operation",
    "replay",
    "run",
    "scenarios",
    "spec",
    "sync_point",
]
