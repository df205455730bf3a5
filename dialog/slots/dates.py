"""Slot types for days: a date or a day by which something happens (heard relative to
today), and a number of days said back.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dialog import understanding
from dialog.slots.base import SlotContext, SlotType, plain
from dialog.speech import say_date, say_days

__all__ = ["TYPES"]


def _day(text: str, ctx: SlotContext) -> date | None:
    return understanding.parse_date(text, ctx.today)


def _date_speak(value: Any, ctx: SlotContext) -> str:
    return say_date(value, ctx.today) if isinstance(value, date) else plain(value, ctx)


def _day_speak(value: Any, ctx: SlotContext) -> str:
    """A day after "by", "until", "up to": "tomorrow", "Friday the 20th" (no "on")."""
    return _date_speak(value, ctx).removeprefix("on ")


def _days_speak(value: Any, ctx: SlotContext) -> str:
    return say_days(int(value)) if value is not None else ""


TYPES: tuple[SlotType, ...] = (
    SlotType("date", _day, _date_speak, hint="date"),
    SlotType("day", _day, _day_speak, hint="date"),
    # Set by actions only, and said in templates.
    SlotType("days", speak=_days_speak),
)
"""Days: a delivery date or a day to wait until; a number of days said back."""
