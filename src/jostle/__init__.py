"""jostle: find thread-safety, asyncio and multiprocess bugs before users do.

Describe a shared resource sequentially (its operations and a model of what
they do one at a time); jostle runs them concurrently from threads, asyncio
tasks and processes, under Hypothesis, and checks every run for
linearizability, invariants, exceptions and hangs.

The public API is exactly ``__all__``; everything in underscored modules is
internal.
"""

from ._cases import (
    Case as Case,
    load_cases as load_cases,
)
from ._checker import (
    Finding as Finding,
    Verdict as Verdict,
    judge as judge,
)
from ._engine import (
    execute as execute,
)
from ._errors import (
    ConcurrencyFailure as ConcurrencyFailure,
    Deadlock as Deadlock,
    Hang as Hang,
    InvariantViolated as InvariantViolated,
    JostleError as JostleError,
    NotLinearizable as NotLinearizable,
    ResourceLeaked as ResourceLeaked,
    SpecError as SpecError,
    SpecTypeError as SpecTypeError,
    UnexpectedException as UnexpectedException,
    WorkerCrashed as WorkerCrashed,
)
from ._execution import (
    Execution as Execution,
    StuckWorker as StuckWorker,
)
from ._handles import (
    FileHandle as FileHandle,
    ManagerHandle as ManagerHandle,
    SharedMemoryHandle as SharedMemoryHandle,
    SqliteHandle as SqliteHandle,
    handle_for as handle_for,
)
from ._history import (
    History as History,
    OpRecord as OpRecord,
    Raised as Raised,
    Returned as Returned,
    Unknown as Unknown,
)
from ._linearizability import (
    LinearizabilityResult as LinearizabilityResult,
    check_linearizability as check_linearizability,
)
from ._machine import (
    from_machine as from_machine,
)
from ._profile import (
    profile as profile,
)
from ._profile_data import (
    Profile as Profile,
    ProfileRun as ProfileRun,
    Spread as Spread,
    WaitSite as WaitSite,
)
from ._profile_report import (
    write_profile_report as write_profile_report,
)
from ._report import (
    format_timeline as format_timeline,
)
from ._repro import (
    spec_of as spec_of,
)
from ._runner import (
    concurrent_test as concurrent_test,
    replay as replay,
    run as run,
)
from ._scenario import (
    Scenario as Scenario,
    Step as Step,
    WorkerPlan as WorkerPlan,
    scenarios as scenarios,
)
from ._scheduler import (
    ControlledScheduler as ControlledScheduler,
    Point as Point,
    Scheduler as Scheduler,
    StressScheduler as StressScheduler,
)
from ._spec import (
    Operation as Operation,
    Spec as Spec,
    operation as operation,
    spec as spec,
)
from ._strategies import (
    PCT as PCT,
    POS as POS,
    Preemptions as Preemptions,
    RandomWalk as RandomWalk,
)
from ._syncpoints import (
    sync_point as sync_point,
)
from ._unknown import (
    UNKNOWN as UNKNOWN,
)

__version__ = "0.1.0"

__all__ = [
    "PCT",
    "POS",
    "UNKNOWN",
    "Case",
    "ConcurrencyFailure",
    "ControlledScheduler",
    "Deadlock",
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
    "Preemptions",
    "Profile",
    "ProfileRun",
    "Raised",
    "RandomWalk",
    "ResourceLeaked",
    "Returned",
    "Scenario",
    "Scheduler",
    "SharedMemoryHandle",
    "Spec",
    "SpecError",
    "SpecTypeError",
    "SqliteHandle",
    "Spread",
    "Step",
    "StressScheduler",
    "StuckWorker",
    "UnexpectedException",
    "Unknown",
    "Verdict",
    "WaitSite",
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
    "profile",
    "replay",
    "run",
    "scenarios",
    "spec",
    "spec_of",
    "sync_point",
    "write_profile_report",
]
