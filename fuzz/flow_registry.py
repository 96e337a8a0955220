"""Worked example: a flow registry driven by asyncio tasks and worker threads.

A workflow service keeps a registry of *flows* (runs of a pipeline).  Async
request handlers on the event loop submit flows and cancel them; a pool of
worker threads claims pending flows, runs them and marks them finished.
Both sides change the same flow objects, so every state change must be
atomic with respect to both: an ``await`` on the loop lets the threads run,
and a thread may be switched out at any function call.

Planted bug (``FlowRegistry.cancel``): a cancel request checks that the flow
is still pending, then awaits the notification to its subscribers, and only
then marks it cancelled.  A worker thread that claims the flow during that
await starts running it, and the cancel still reports success: the flow is
both running and cancelled (the user was told it will not run; it runs).
Minimal scenario (the registry starts with flow ``f1`` pending, restored
from its store): ``cancel('f1')`` as a task and ``claim('f1')`` on a
thread; both return ``True``.  The same window lets
two cancel requests both report success.

The worker threads' transitions already take the registry's
``threading.Lock``; the loop's code was written as if the loop were the only
thread.  The fix (``FixedFlowRegistry``) makes cancel the same check-and-set
under that lock (held for the few lines of the transition, never across an
``await``) and notifies after it.

Run it: ``jostle fuzz fuzz/flow_registry.py`` or see ``docs/examples.md``.
"""

from __future__ import annotations

import asyncio
import threading

from hypothesis import strategies as st

import jostle

PENDING, RUNNING, DONE, CANCELLED = "pending", "running", "done", "cancelled"


class Flow:
    """One run of a pipeline and the subscribers to tell about it."""

    def __init__(self, fid: str) -> None:
        self.fid = fid
        self.state = PENDING
        self.runs = 0


class FlowRegistry:
    """Flows by id: submitted and cancelled on the loop, run by worker threads.

    The worker threads' transitions take ``_lock``; the loop's code was
    written as if the loop were the only thread.
    """

    def __init__(self) -> None:
        self.flows: dict[str, Flow] = {"f1": Flow("f1")}  # restored from the store
        self.notified: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    async def _notify(self, fid: str, event: str) -> None:
        await asyncio.sleep(0)  # publish to the subscribers' queue
        self.notified.append((fid, event))

    def _audit(self, fid: str, event: str) -> None:
        """The audit log: a plain call, so a thread can be switched out here."""

    def _transition(self, fid: str, before: str, after: str) -> Flow | None:
        """Move a flow from ``before`` to ``after``: check and set under the lock."""
        with self._lock:
            flow = self.flows.get(fid)
            if flow is None or flow.state != before:
                return None
            self._audit(fid, after)
            flow.state = after
            return flow

    async def submit(self, fid: str) -> bool:
        if fid in self.flows:  # only the loop adds flows: no await in between
            return False
        self.flows[fid] = Flow(fid)
        await self._notify(fid, "submitted")
        return True

    async def cancel(self, fid: str) -> bool:
        flow = self.flows.get(fid)
        if flow is None or flow.state != PENDING:
            return False
        await self._notify(fid, "cancelling")  # BUG: a worker may claim it meanwhile
        flow.state = CANCELLED
        return True

    def claim(self, fid: str) -> bool:
        flow = self._transition(fid, PENDING, RUNNING)
        if flow is None:
            return False
        flow.runs += 1  # only the claiming thread can get here for this flow
        return True

    def finish(self, fid: str) -> bool:
        return self._transition(fid, RUNNING, DONE) is not None

    def state(self, fid: str) -> str | None:
        flow = self.flows.get(fid)
        return None if flow is None else flow.state


class FixedFlowRegistry(FlowRegistry):
    """The fix: cancel is a check-and-set under the same lock; notify after."""

    async def cancel(self, fid: str) -> bool:
        if self._transition(fid, PENDING, CANCELLED) is None:
            return False
        await self._notify(fid, "cancelled")
        return True


async def submit(registry: FlowRegistry, fid: str) -> bool:
    """A request handler submits a flow."""
    return await registry.submit(fid)


async def cancel(registry: FlowRegistry, fid: str) -> bool:
    """A request handler cancels a flow that has not started."""
    return await registry.cancel(fid)


def claim(registry: FlowRegistry, fid: str) -> bool:
    """A worker thread claims a pending flow to run it."""
    return registry.claim(fid)


def finish(registry: FlowRegistry, fid: str) -> bool:
    """A worker thread marks the flow it ran as finished."""
    return registry.finish(fid)


def state(registry: FlowRegistry, fid: str) -> str | None:
    """A status endpoint (a thread) reads a flow's state."""
    return registry.state(fid)


class FlowModel:
    """What the registry does when calls arrive one at a time."""

    def __init__(self) -> None:
        self.flows: dict[str, str] = {"f1": PENDING}

    def _move(self, fid: str, before: str, after: str) -> bool:
        if self.flows.get(fid) != before:
            return False
        self.flows[fid] = after
        return True

    def submit(self, fid: str) -> bool:
        if fid in self.flows:
            return False
        self.flows[fid] = PENDING
        return True

    def cancel(self, fid: str) -> bool:
        return self._move(fid, PENDING, CANCELLED)

    def claim(self, fid: str) -> bool:
        return self._move(fid, PENDING, RUNNING)

    def finish(self, fid: str) -> bool:
        return self._move(fid, RUNNING, DONE)

    def state(self, fid: str) -> str | None:
        return self.flows.get(fid)


def cancelled_flows_never_ran(registry: FlowRegistry) -> None:
    """A flow reported cancelled was never claimed, and none ran twice."""
    for flow in registry.flows.values():
        assert flow.runs <= 1, f"flow {flow.fid} ran {flow.runs} times"
        if flow.state == CANCELLED:
            assert flow.runs == 0, f"flow {flow.fid} was cancelled but a worker ran it"


FIDS = st.sampled_from(["f1", "f2"])


def flow_spec(factory: type[FlowRegistry]) -> jostle.Spec:
    """Handlers on the loop and worker threads on one registry."""
    return jostle.spec(
        factory,
        jostle.operation(submit, FIDS),
        jostle.operation(cancel, FIDS),
        jostle.operation(claim, FIDS),
        jostle.operation(finish, FIDS),
        jostle.operation(state, FIDS),
        model=FlowModel,
        invariants=[cancelled_flows_never_ran],
        name=factory.__name__,
    )


# Canary: a worker thread claims a flow while its cancel awaits.  Threads and
# the loop interleave at OS whim, so the campaign runs controlled: every
# interleaving choice is drawn, and the failure replays exactly.
test_flow_registry_canary = jostle.concurrent_test(flow_spec(FlowRegistry), mode="controlled")
test_flow_registry = jostle.concurrent_test(flow_spec(FixedFlowRegistry), mode="controlled")
