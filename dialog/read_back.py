"""A number the caller never heard written, read back for a yes or no before it is used.

Speech-to-text marks a transcript `guessed` when its words held no number and only a second,
digits-alone decode found one (`voice.stt_digits`); a number heard in another shape than the
shop's ("101" for ten oh one, "10003" for one zero zero three) is a guess the slot type makes
(`SlotType.guess`). Looking that order up at once would act
on a guess, and a wrong one would tell the caller about someone else's order; so the agent
says what it heard and waits for a yes or no. A yes uses it, a no asks again (the whole
question, keypad and all), and anything else is heard as an answer as usual ("no, it's ten
oh three" gives the number again, a person asked for is a person).

Only the slot types that are acted on as soon as they are heard are read back. A ZIP code,
email or phone number given as the second factor is compared exactly with the order's, so a
wrong guess can only fail; a new address is confirmed whole before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialog.engine import Engine
from dialog.events import Event
from dialog.understanding import Understanding

__all__ = ["READ_BACK_TYPES", "Guess", "ask", "needed", "settle"]

READ_BACK_TYPES = frozenset({"order_number"})
"""The slot types whose guessed value is read back before it is used."""


@dataclass(frozen=True)
class Guess:
    """A guessed value read back, waiting for the caller's yes or no."""

    value: Any


def needed(engine: Engine, guessed: bool) -> bool:
    """Whether the value just heard for the waiting question must be read back first."""
    if engine.call.on_screen:  # typed: never a guess
        return False
    if not guessed or not engine.stack or engine.stack[-1].confirming:
        return False
    return engine.waiting_type in READ_BACK_TYPES


def ask(engine: Engine, guess: Guess, lead: str | None = None) -> list[Event]:
    """ "I heard ten oh three. Is that right?", the value said the way its slot type says it."""
    return engine.read_back(guess.value, lead)


def settle(engine: Engine, guess: Guess, heard: Understanding, value: Any) -> str | None:
    """What the caller's answer to the read-back does: "use" the guess (a plain yes),
    "again" (a plain no: ask the question anew), or None (an answer of its own, heard as
    usual: a number, a correction, another request). `value` is what the answer itself gives
    for the waiting question."""
    if value is not None or engine.waiting is None:
        return None
    if heard.intent not in ("yes", "no", "unknown") or len(heard.intents) > 1:
        return None  # a request of its own
    if heard.yes_no is True:
        return "use"
    if heard.yes_no is False:
        return "again"
    return None
