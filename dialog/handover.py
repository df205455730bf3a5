"""A person follows up outside any flow: the ticket left for them, and the wrap-up of a long call.

The handoff flow leaves a ticket when a procedure hands over; a call that runs too long, or a
correction of something already done, needs one with no flow running. `leave_ticket` runs
the same actions the handoff flow does, and never raises: the caller still hears a goodbye.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from dialog.actions import ACTIONS
from dialog.engine import Engine
from dialog.events import EndCall, Event, Say

__all__ = ["leave_ticket", "wrap_up"]

_log = logging.getLogger(__name__)


async def leave_ticket(engine: Engine, reason: str) -> tuple[str | None, bool]:
    """The handoff flow's ticket (and its number by SMS), outside any flow: the ticket id,
    if one was made, and whether its number was texted."""
    engine.slots["ticket_reason"] = reason
    ctx = engine.action_context()
    try:
        await ACTIONS["create_ticket"].run(ctx)
        if engine.slots.get("ticket_id"):
            await ACTIONS["text_ticket_number"].run(ctx)
    except Exception:
        _log.exception("could not leave a ticket on %s", engine.call.call_sid)
    return engine.slots.get("ticket_id"), bool(engine.slots.get("ticket_texted"))


async def wrap_up(engine: Engine, reason: str, *, unfinished: bool) -> AsyncIterator[Event]:
    """End a call that has gone on too long: say so, leave a ticket when a request is
    `unfinished` (and say it was left, and texted), say goodbye and hang up. Nothing here
    can be interrupted: the call ends whatever the caller says."""
    ticket, texted = await leave_ticket(engine, reason) if unfinished else (None, False)
    conv = engine.flows.conversation
    yield Say(conv.wrap_up, barge_in=False)
    if ticket:
        yield Say(conv.wrap_up_ticket, barge_in=False)
        for event in engine.in_reply():  # on text messages, the ticket number's own message
            yield event
        if texted:
            yield Say(conv.wrap_up_texted, barge_in=False)
    yield Say(conv.wrap_up_goodbye, barge_in=False)
    engine.finished = True
    yield EndCall(reason)
