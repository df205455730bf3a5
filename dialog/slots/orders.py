"""Slot types for which order: its number (heard or typed), or one of the caller's orders
picked by number, by what is in it or by position; and orders and their items said back.
"""

from __future__ import annotations

from typing import Any

from dialog import understanding
from dialog.slots.base import SlotContext, SlotType, plain
from dialog.slots.choices import named_item
from dialog.speech import product_name, say_items, say_list, say_order_number
from integrations.models import Order

__all__ = ["TYPES"]


def _order_number(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_order_number(text)


def _order_number_guess(text: str, ctx: SlotContext) -> str | None:
    """ "101" for "ten oh one", "10003" for "one zero zero three": one order number guessed."""
    guesses = understanding.reshaped_order_numbers(text)
    return guesses[0] if len(guesses) == 1 else None


def _order_number_keys(digits: str, ctx: SlotContext) -> str | None:
    digits = "".join(c for c in digits if c.isdigit())
    return digits or None


def _choices(ctx: SlotContext) -> list[Order]:
    return list(ctx.values.get("order_choices") or [])


def _order_choice(text: str, ctx: SlotContext) -> Order | None:
    choices = _choices(ctx)
    number = understanding.parse_order_number(text)
    if number is not None:
        return next((o for o in choices if o.number == number), None)
    index = named_item(text, [o.lines[0].name if o.lines else "" for o in choices])
    return None if index is None else choices[index]


def _order_choice_keys(digits: str, ctx: SlotContext) -> Order | None:
    choices = _choices(ctx)
    digits = digits.strip()
    if digits.isdigit() and 1 <= int(digits) <= len(choices) and len(digits) == 1:
        return choices[int(digits) - 1]
    return next((o for o in choices if o.number == digits), None)


def _say_order_choices(value: Any, ctx: SlotContext) -> str:
    orders = value if isinstance(value, list) else [value]
    return say_list([f"the {say_items(o)}" for o in orders if isinstance(o, Order)], "or")


def _choice_vocabulary(ctx: SlotContext) -> tuple[str, ...]:
    return tuple(product_name(o.lines[0].name) for o in _choices(ctx) if o.lines)


def _order_speak(value: Any, ctx: SlotContext) -> str:
    if isinstance(value, Order):
        return say_order_number(value.number)
    return say_order_number(str(value)) if value else ""


def _items_speak(value: Any, ctx: SlotContext) -> str:
    return say_items(value) if isinstance(value, Order) else plain(value, ctx)


TYPES: tuple[SlotType, ...] = (
    SlotType(
        "order_number",
        _order_number,
        _order_speak,
        _order_number_keys,
        hint="order_number",
        prompt="Order number:",
        guess=_order_number_guess,
    ),
    SlotType(
        "order_choice",
        _order_choice,
        _say_order_choices,
        _order_choice_keys,
        hint="order_choice",
        vocabulary=_choice_vocabulary,
    ),
    # Set by actions only, and said in templates.
    SlotType("order", speak=_order_speak),
    SlotType("items", speak=_items_speak),
    SlotType("orders", speak=_say_order_choices),
)
"""Which order: its number, or one of the caller's picked by what is in it."""
