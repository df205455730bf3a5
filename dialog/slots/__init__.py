"""Slot types: how a value is heard (from speech or the keypad), said back, and hinted.

A flow names a type for every slot it collects (`order_number`, `zip`, `yes_no`, `choice`...).
The type knows how to find the value in a transcript, which `Hints` help the transcriber
hear it, and how to say it for the ear when a template uses it. Types that are never asked
for (`money`, `date`, `order`...) only know how to be said.

This is the registry, `SLOT_TYPES`: each family of types is a module of its own (`choices`,
`orders`, `contact`, `sizes`, `numbers`, `dates`; what a type is, in `base`). The types that
want digits get the digit repair here, so take a type from `SLOT_TYPES`, not its module.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dialog import understanding
from dialog.slots import base, choices, contact, dates, numbers, orders, sizes
from dialog.slots.base import Parser, SlotContext, SlotType, hear

__all__ = ["SLOT_TYPES", "SlotContext", "SlotType", "hear"]


def _digits_repaired(parse: Parser) -> Parser:
    """`parse`, and when it finds nothing, `parse` again with look-alike words read as the
    digits they stand for ("nine four one one year" → 94110): for questions that want digits.
    The value must still match what is on file exactly; this only reads what was said."""

    def parse_repaired(text: str, ctx: SlotContext) -> Any:
        value = parse(text, ctx)
        fixed = understanding.repair_digits(text) if value is None else None
        if fixed is not None and fixed != understanding.normalize(text):
            value = parse(fixed, ctx)
        return value

    return parse_repaired


SLOT_TYPES: dict[str, SlotType] = {
    t.name: t
    for family in (base, choices, orders, contact, sizes, numbers, dates)
    for t in family.TYPES
}
"""Every slot type a flow may name."""

for _name in ("order_number", "zip", "phone", "second_factor"):
    _type = SLOT_TYPES[_name]
    SLOT_TYPES[_name] = replace(
        _type,
        parse=_digits_repaired(_type.parse),  # type: ignore[arg-type]
        guess=_type.guess and _digits_repaired(_type.guess),
    )
