"""Fuzz campaign over the bundled example resources.

Run with ``jostle fuzz fuzz/`` (or ``pytest fuzz/``).  Each planted bug is a
*canary*: a campaign run that does not report it is broken.  The correct
twins must pass however long the campaign runs.
"""

from __future__ import annotations

from hypothesis import strategies as st

import jostle

from examples import (
    LockedSessionRegistry,
    LockedTicketFile,
    SessionModel,
    SessionRegistry,
    TicketFile,
    TicketModel,
    close_session,
    last,
    lookup,
    open_session,
    take,
    take_async,
)

USERS = st.sampled_from(["ann", "bob"])


def session_spec(factory: type[SessionRegistry]) -> jostle.Spec:
    """Request handlers on the loop open and close sessions; threads look them up."""
    return jostle.spec(
        factory,
        jostle.operation(open_session, USERS),
        jostle.operation(close_session, USERS),
        jostle.operation(lookup, USERS),
        model=SessionModel,
    )


def ticket_spec(factory: type[TicketFile]) -> jostle.Spec:
    """One ticket file taken from threads, loop tasks and processes at once."""
    return jostle.spec(
        factory,
        jostle.operation(take),
        jostle.operation(take_async),
        jostle.operation(last),
        model=TicketModel,
    )


# Canary: check-then-act across an await (two sessions for one user).
test_session_registry_canary = jostle.concurrent_test(session_spec(SessionRegistry))
test_session_registry = jostle.concurrent_test(session_spec(LockedSessionRegistry))

# Canary: a read-modify-write on a file without flock, raced by processes.
test_ticket_file_canary = jostle.concurrent_test(ticket_spec(TicketFile), repeats=10)
test_ticket_file = jostle.concurrent_test(ticket_spec(LockedTicketFile), repeats=10)
