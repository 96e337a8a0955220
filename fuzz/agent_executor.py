"""Worked example: an agent executor with timeouts and cancellation (asyncio).

An agent service runs *jobs* (a tool call, a model request) on the event
loop; it starts with a backlog restored from its store, and clients submit
more.  Each attempt has a time limit; a job that times out is retried once
and then fails.  Requests are deduplicated: a second ``run`` of a job that is
already running waits for the first one's outcome instead of starting the
job again (the job has side effects: it must run at most once).  Clients
have deadlines of their own: when a client gives up, its request is
cancelled wherever it is awaiting.  The executor must never lose a job and
never run one twice.

Planted bug (``AgentExecutor.run``): the runner marks the job running and
publishes a future for duplicate requests to wait on, but handles only the
agent's own timeout.  When the *client* cancels the runner (its deadline
passed, it disconnected), the ``CancelledError`` goes straight through: the
job stays marked running with nobody running it, and its future is never
resolved.  The job is lost, and every later request for it waits forever.
Minimal scenario: ``run('slow', 0.01)`` on the backlog the executor starts
with: the client's 10 ms deadline ends the first attempt; the job is stuck.

The fix (``FixedAgentExecutor``) gives the job back on cancellation: it
returns to the queue, the future is resolved so waiting requests take over,
and the cancellation propagates.

Timeouts are real ``asyncio`` timers.  The campaign runs in controlled mode,
where the loop keeps virtual time, so the 50 ms time limits cost nothing and
a failing schedule replays exactly.  How an attempt ends is timing (on a
loaded machine any attempt may time out), so clients see only "pending" or
"finished"; the invariant checks that nothing was lost or run twice.

Run it: ``jostle fuzz fuzz/agent_executor.py`` or see ``docs/examples.md``.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import strategies as st

import jostle

QUEUED, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
TIME_LIMIT = 0.05  # seconds per attempt
ATTEMPTS = 2  # a timed-out job is retried once
COST = {"fast": 0.0, "slow": 1.0, "new": 0.0}  # how long the agent takes, seconds
BACKLOG = ("fast", "slow")  # queued when the executor starts (restored from its store)


class AgentExecutor:
    """Jobs by name; ``run`` executes one at most once, with a time limit."""

    def __init__(self) -> None:
        self.jobs: dict[str, str] = dict.fromkeys(BACKLOG, QUEUED)
        self.inflight: dict[str, asyncio.Future[None]] = {}
        self.executed: Counter[str] = Counter()  # completed agent calls (side effects)

    async def _agent(self, job: str) -> None:
        await asyncio.sleep(COST[job])  # the model request or tool call
        self.executed[job] += 1

    async def _attempts(self, job: str) -> str:
        for _attempt in range(ATTEMPTS):
            try:
                await asyncio.wait_for(self._agent(job), TIME_LIMIT)
            except asyncio.TimeoutError:
                continue
            return DONE
        return FAILED

    async def submit(self, job: str) -> bool:
        if job in self.jobs:
            return False
        self.jobs[job] = QUEUED
        return True

    async def run(self, job: str) -> str | None:
        while True:
            state = self.jobs.get(job)
            if state is None or state in (DONE, FAILED):
                return state
            if state == RUNNING:  # deduplicate: wait for the runner's outcome
                await asyncio.shield(self.inflight[job])
                continue
            self.jobs[job] = RUNNING
            done = self.inflight[job] = asyncio.get_running_loop().create_future()
            outcome = await self._attempts(job)  # BUG: a cancelled runner loses the job
            self.jobs[job] = outcome
            del self.inflight[job]
            done.set_result(None)
            return outcome

    def status(self, job: str) -> str | None:
        state = self.jobs.get(job)
        return QUEUED if state == RUNNING else state  # clients see "pending" for both


class FixedAgentExecutor(AgentExecutor):
    """The fix: a cancelled runner puts the job back and wakes the waiters."""

    async def run(self, job: str) -> str | None:
        while True:
            state = self.jobs.get(job)
            if state is None or state in (DONE, FAILED):
                return state
            if state == RUNNING:
                await asyncio.shield(self.inflight[job])
                continue
            self.jobs[job] = RUNNING
            done = self.inflight[job] = asyncio.get_running_loop().create_future()
            try:
                outcome = await self._attempts(job)
            except BaseException:
                self.jobs[job] = QUEUED  # not run: the next request (or a waiter) takes it
                raise
            else:
                self.jobs[job] = outcome
            finally:
                del self.inflight[job]
                done.set_result(None)
            return outcome


async def submit(executor: AgentExecutor, job: str) -> bool:
    """A client submits a job: whether it was new."""
    return await executor.submit(job)


def _seen(state: str | None) -> str | None:
    """What a client sees: "pending" or "finished" (done or failed: how an
    attempt ends depends on timing, which the model does not know)."""
    return "finished" if state in (DONE, FAILED) else state


async def run(executor: AgentExecutor, job: str, deadline: float | None) -> object:
    """A client waits for the job to finish, giving up after ``deadline`` seconds."""
    try:
        return _seen(await asyncio.wait_for(executor.run(job), deadline))
    except asyncio.TimeoutError:
        return jostle.UNKNOWN  # the client cannot know whether the job ran


def status(executor: AgentExecutor, job: str) -> str | None:
    """A status endpoint: "pending", "finished" or None (no such job)."""
    return _seen(executor.status(job))


class ExecutorModel:
    """What the executor does when requests arrive one at a time, as clients see it.

    Whether a job ends done or failed depends on how long its attempts take,
    so the model says only "finished"; the invariant checks what happened.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, str] = dict.fromkeys(BACKLOG, QUEUED)

    def submit(self, job: str) -> bool:
        if job in self.jobs:
            return False
        self.jobs[job] = QUEUED
        return True

    def run(self, job: str, deadline: float | None) -> str | None:
        if job in self.jobs:
            self.jobs[job] = "finished"
        return self.jobs.get(job)

    def status(self, job: str) -> str | None:
        return self.jobs.get(job)


def no_job_lost_or_run_twice(executor: AgentExecutor) -> None:
    """At quiescence nothing is running, done jobs ran once, failed ones never
    (and nothing ran twice)."""
    for job, state in executor.jobs.items():
        assert state != RUNNING, f"job {job!r} is marked running but nothing runs it (lost)"
        ran = executor.executed[job]
        assert ran == (1 if state == DONE else 0), f"job {job!r} is {state} but ran {ran} time(s)"


JOBS = st.sampled_from(sorted(COST))
DEADLINES = st.sampled_from([None, 0.01])


def executor_spec(factory: type[AgentExecutor]) -> jostle.Spec:
    """Clients submitting jobs, waiting for them with deadlines, and polling."""
    return jostle.spec(
        factory,
        jostle.operation(submit, JOBS),
        jostle.operation(run, JOBS, DEADLINES),
        jostle.operation(status, JOBS, kinds=("thread", "task")),
        model=ExecutorModel,
        invariants=[no_job_lost_or_run_twice],
        name=factory.__name__,
    )


# Canary: a client's deadline cancels the runner and the job is lost.
# Controlled: timers run on virtual time, so nothing waits 50 ms for real.
test_agent_executor_canary = jostle.concurrent_test(
    executor_spec(AgentExecutor), mode="controlled")
test_agent_executor = jostle.concurrent_test(executor_spec(FixedAgentExecutor), mode="controlled")
