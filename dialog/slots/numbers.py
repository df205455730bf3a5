"""Slot types for numbers and codes: a rating, a coupon code (also one no longer
advertised); and amounts, counts, codes, references and payment methods said back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dialog import understanding
from dialog.slots.base import SlotContext, SlotType
from dialog.speech import say_code, say_digits, say_money, say_number, say_reference

__all__ = ["TYPES", "whole_code"]


def _rating(text: str, ctx: SlotContext) -> int | None:
    return understanding.parse_rating(text)


def _rating_keys(digits: str, ctx: SlotContext) -> int | None:
    digits = digits.strip()
    return int(digits) if digits in {"1", "2", "3", "4", "5"} else None


_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_NOT_CODE = {
    "the", "a", "its", "it", "is", "code", "coupon", "promo", "discount", "my", "i", "tried",
    "use", "using", "used", "called", "was", "um", "uh", "er", "with", "of", "for", "on",
    "and", "order", "number", "this", "that", "one", "says", "say", "said", "please",
}  # fmt: skip


def _code_shape(text: str) -> str | None:
    """Something said like a code, word then number ("summer fifteen" → SUMMER15), for codes
    the shop no longer advertises (an expired code is not among the active ones)."""
    words = [w for w in understanding.normalize(text).split() if w not in _NOT_CODE]
    out: list[str] = []
    number: int | None = None
    for word in words:
        value = int(word) if word.isdigit() else _NUMBER_WORDS.get(word)
        if value is None:
            if number is not None:
                break
            out.append(word.upper())
        elif number is not None and number % 10 == 0 and number >= 20 and value < 10:
            number += value
        elif number is None:
            number = value
        else:
            break
    if not out or number is None:
        return None
    return "".join(out[-1:]) + str(number)


def whole_code(text: str, known: Iterable[str]) -> str | None:
    """A coupon code the caller has finished saying: one of the `known` codes, or the shape of
    one ("summer fifteen") whose number cannot go on (not a round "fifty" that "five" may
    follow). The end-of-turn predictor asks, so a code is answered without the long wait."""
    if found := understanding.parse_coupon_code(text, known):
        return found
    shaped = _code_shape(text)
    if shaped is None:
        return None
    number = int(re.sub(r"\D", "", shaped) or 0)
    return None if number >= 20 and number % 10 == 0 else shaped


def _coupon(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_coupon_code(text, ctx.codes) or _code_shape(text)


def _money_speak(value: Any, ctx: SlotContext) -> str:
    return say_money(int(value)) if value is not None else ""


def _number_speak(value: Any, ctx: SlotContext) -> str:
    return say_number(int(value)) if value is not None else ""


def _code_speak(value: Any, ctx: SlotContext) -> str:
    return say_code(str(value)) if value else ""


def _payment_speak(value: Any, ctx: SlotContext) -> str:
    """ "your Visa ending in 4242" → "your Visa ending in four two four two"."""
    return re.sub(r"\d+", lambda m: say_digits(m.group()), str(value)) if value else ""


def _reference_speak(value: Any, ctx: SlotContext) -> str:
    return say_reference(str(value)) if value else ""


TYPES: tuple[SlotType, ...] = (
    SlotType("rating", _rating, _number_speak, _rating_keys, hint="rating"),
    SlotType(
        "coupon_code",
        _coupon,
        _code_speak,
        hint="coupon_code",
        prompt="Coupon code:",
        vocabulary=lambda ctx: ctx.codes,
    ),
    # Set by actions only, and said in templates.
    SlotType("money", speak=_money_speak),
    SlotType("number", speak=_number_speak),
    SlotType("code", speak=_code_speak),
    SlotType("reference", speak=_reference_speak),
    SlotType("payment", speak=_payment_speak),
)
"""Numbers and codes: a rating, a coupon code; amounts and references said back."""
