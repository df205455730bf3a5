"""What a slot type is: how a value is heard, hinted and said, and what it may consult.

`hear` finds a type's value in what the caller said, minding corrections. The plain types
(`text`, `value`) are here too; the others are in their family's module of `dialog.slots`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dialog import understanding

__all__ = ["TYPES", "Parser", "SlotContext", "SlotType", "hear", "plain"]


@dataclass
class SlotContext:
    """What a slot type may consult: the day, the call's slots, and the slot's options."""

    today: date
    values: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Sequence[str]] = field(default_factory=dict)
    yes: str | None = None
    no: str | None = None
    yes_when: Sequence[str] = ()
    no_when: Sequence[str] = ()

    @property
    def products(self) -> tuple[str, ...]:
        """The caller's product names, as they would say them."""
        return tuple(self.values.get("product_names") or ())

    @property
    def codes(self) -> tuple[str, ...]:
        """The shop's active coupon codes."""
        return tuple(self.values.get("active_codes") or ())


Parser = Callable[[str, SlotContext], Any]


def plain(value: Any, ctx: SlotContext) -> str:
    """A value said as written: how a type with no way of its own says it."""
    return "" if value is None else str(value)


@dataclass(frozen=True)
class SlotType:
    """How one kind of value is heard, hinted and said.

    `parse` is None for values that are only ever set by actions. `hint` is the `Hints.slot`
    name and `prompt` primes the transcriber; a prompt never holds an example value (an
    example order number makes tiny.en drop digits). `guess` reads a value from words that
    hold none as heard (an order number written in another shape): the agent reads it back
    for a yes or no before using it.
    """

    name: str
    parse: Parser | None = None
    speak: Callable[[Any, SlotContext], str] = plain
    keypad: Parser | None = None
    hint: str | None = None
    prompt: str | None = None
    vocabulary: Callable[[SlotContext], tuple[str, ...]] | None = None
    needs_options: bool = False
    guess: Parser | None = None

    @property
    def collectable(self) -> bool:
        """Whether a flow may `collect` a slot of this type."""
        return self.parse is not None


def hear(slot_type: SlotType, text: str, ctx: SlotContext) -> Any:
    """The value of `slot_type` in what the caller said; after a correction ("Thursday, no
    wait, Friday", "94101, sorry, 94110") the value said after it."""
    if slot_type.parse is None:
        return None
    part = understanding.corrected_part(text)
    if part is not None:
        value = slot_type.parse(part, ctx)
        if value is not None:
            return value
        if slot_type.name == "order_number" and understanding.number_taken_back(part):
            return None  # "ten oh one, sorry, timing one zero zero zero three": asked again
    # "Friday, um, no, Monday's better actually": two values, the later one meant.
    said = [
        value
        for piece in _RETHINK.split(text)
        if piece and piece.strip() and (value := slot_type.parse(piece, ctx)) is not None
    ]
    if len(said) >= 2 and said[-1] != said[0]:
        return said[-1]
    return slot_type.parse(text, ctx)


_RETHINK = re.compile(r"\bno\b|\bsorry\b|\bactually\b|\bwait\b|\bor rather\b", re.I)


def _text(text: str, ctx: SlotContext) -> str | None:
    clean = text.strip()
    return clean or None


TYPES: tuple[SlotType, ...] = (
    SlotType("text", _text),
    # Set by actions only, and said in templates.
    SlotType("value"),
)
"""The plain types: what was said, as said; and a value only actions set."""
