"""Corrections: whether what a caller says at a question answers it or corrects something,
what a correction changes, a finished yes or no turned round, and digits that only sounded
like an order number.

`dialog.repair` finds which slots a correction gives new values; here they are applied (latest
answer first, so the procedure goes on from just after the earliest), and the agent is told
whether a change came too late. The agent decides what is said.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dialog import understanding
from dialog.engine import Engine
from dialog.nlu.intents import score_intents
from dialog.repair import Revision, revisions
from dialog.requests import NOT_PROCEDURES, Requests
from dialog.understanding import Understanding, classify

__all__ = ["Reading", "changed_mind", "misheard_digits", "past_the_no", "read_answer", "revise"]

# Answers that an order number in the same breath overrides ("no, I said 1003").
_SWITCHABLE = {"yes_no", "choice", "text", "size", "return_reason", "coupon_code", "rating"}
_DIGIT_ANSWERS = {"second_factor", "zip", "phone"}
_LEADING_NO = re.compile(r"^\W*(?:(?:oh|um|uh|well|so)\W+)*(?:no|nope|nah)\b\W*", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """What the caller's words at a question are: another order than the one discussed
    (`switch`), new values for slots (`changes`), the procedure called off (`cancel`), or
    else the answer (`value`, None when they give none)."""

    value: Any = None
    switch: bool = False
    changes: tuple[Revision, ...] = ()
    cancel: bool = False


def read_answer(
    engine: Engine, requests: Requests, heard: Understanding, current: str | None
) -> Reading:
    """Whether the words the engine heard at its question answer it or correct something,
    `current` being the number of the order under discussion."""
    text = engine.heard
    said_number = heard.order_number
    switch = (
        said_number is not None
        and said_number != current
        and engine.waiting_type in _SWITCHABLE
        and (heard.correction or heard.intent not in ("yes", "no"))
    )
    cue = heard.correction or understanding.corrected_part(text) is not None
    other = requests.other_order_named(text, current)
    if not switch and other is not None and engine.waiting_type in _SWITCHABLE:
        # "no, not that one, I meant the espresso machine": that order instead
        switch = cue or heard.intent == "unknown"
    if switch:
        return Reading(switch=True)
    confirming = engine.confirming
    value = engine.parse(text)
    if confirming and (cue or understanding.denies_and_continues(text) or value is None):
        value = None  # "no, make it a large": a correction, not a bare no
    if value is None or cue:
        # A correction, or an answer to a question still to come ("store credit is fine"
        # when asked why): the slot it fills is changed or kept for later.
        changes = revisions(engine, text, new_values=value is None)
        if changes:
            return Reading(changes=tuple(changes))
    if value is None and understanding.is_cancel(text):
        return Reading(cancel=True)
    if confirming and value is None:
        value = engine.parse(text)  # "no, the other way": nothing to correct, so a no
    return Reading(value=value)


async def revise(
    engine: Engine, changes: tuple[Revision, ...], record: Callable[..., Awaitable[None]]
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


def past_the_no(heard: Understanding, text: str) -> Understanding:
    """ "No, I said it's too small, I need a large": at the open question, never a bare no
    when a request follows it; what the words after the no ask for, then."""
    if heard.intent != "no" or not understanding.denies_and_continues(text):
        return heard
    rest = classify(_LEADING_NO.sub("", text))
    return rest if rest.intent not in NOT_PROCEDURES else heard


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
