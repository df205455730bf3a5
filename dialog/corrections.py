"""What a caller's correction does: the answers it changes, a finished yes or no turned round,
and digits that only sounded like an order number.

`dialog.repair` finds which slots a correction gives new values; here they are applied (latest
answer first, so the procedure goes on from just after the earliest), and the agent is told
whether a change came too late. The agent decides what is said.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from dialog import understanding
from dialog.engine import Engine
from dialog.nlu.intents import score_intents
from dialog.repair import Revision
from dialog.requests import NOT_PROCEDURES
from dialog.understanding import Understanding

__all__ = ["changed_mind", "misheard_digits", "revise"]

_DIGIT_ANSWERS = {"second_factor", "zip", "phone"}


async def revise(
    engine: Engine, changes: list[Revision], record: Callable[..., Awaitable[None]]
) -> str:
    """Give each slot of the first procedure a correction touches its new value, recording
    each (`record(type, **data)`): `too_late` when one was acted on already, `revised` when
    the procedure goes back to an answer, `set` when only a value for later changed."""
    frame = changes[0].frame
    mine = [c for c in changes if c.frame is frame]
    # Latest first: each revision goes back to its own answer, the earliest last.
    mine.sort(key=lambda c: frame.filled_at.get(c.slot, 10**6), reverse=True)
    outcomes = []
    for change in mine:
        outcomes.append(engine.revise(frame, change.slot, change.value))
        await record("slot.corrected", slot=change.slot, outcome=outcomes[-1])
    if "too_late" in outcomes:
        return "too_late"
    return "revised" if "revised" in outcomes else "set"


def changed_mind(engine: Engine, heard: Understanding) -> bool:
    """ "Actually, yes, text me the link after all": the caller turns round the answer to
    the last yes/no question of a procedure that has just finished."""
    last = engine.last_answer
    text = engine.heard
    if last is None or engine.stack:
        return False
    question = last[0].flow.steps[last[0].pc]
    asked = set(re.findall(r"[a-z]{4,}", getattr(question, "ask", "").lower())) - {"would"}
    echoes = len(asked & set(re.findall(r"[a-z]{4,}", text.lower()))) >= 2
    if not (heard.correction or understanding.corrected_part(text) is not None or echoes):
        return False  # "can you text me the tracking link then" says it again
    if heard.intent not in NOT_PROCEDURES:
        flow = engine.flows.for_intent(heard.intent)
        if flow is None or flow.name != last[0].flow.name:
            return False
    said = understanding.parse_yes_no(understanding.corrected_part(text) or text)
    return said is not None and said != last[1]


def misheard_digits(engine: Engine, heard: Understanding, text: str) -> bool:
    """Whether digits said at a question that wants digits (a ZIP, a phone number, a second
    factor) were taken for an order number only because they are a number: nothing else
    in the words asks about an order."""
    if engine.waiting_type not in _DIGIT_ANSWERS or heard.order_number is None:
        return False
    return score_intents(text, has_number=False).intent == "unknown"
