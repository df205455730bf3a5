"""Delivery dates as callers say them: "tomorrow", "Monday", "next Tuesday", "the 24th"."""

from __future__ import annotations

import re
from datetime import date, timedelta

from dialog.nlu.numbers import digit_runs
from dialog.nlu.text import normalize

__all__ = ["parse_date"]

_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tues": 1, "tue": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thurs": 3, "thu": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
# "Monday's better", "Fridays work": the day, not every one of them.
_WEEKDAYS |= {f"{name}s": day for name, day in _WEEKDAYS.items() if name.endswith("day")}
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_ORDINAL_UNITS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_ORDINAL_TENS = {"twenty": 20, "thirty": 30}
_RELATIVE = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1}
_MONTH_NAMES = "|".join(_MONTHS)


def _day_words(words: list[str]) -> list[str]:
    """Ordinals and numbers as digits: "twenty fourth" → "24", "24 th" → "24"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in _ORDINAL_TENS and nxt in _ORDINAL_UNITS and _ORDINAL_UNITS[nxt] < 10:
            out.append(str(_ORDINAL_TENS[word] + _ORDINAL_UNITS[nxt]))
            i += 2
        elif word in _ORDINAL_UNITS:
            out.append(str(_ORDINAL_UNITS[word]))
            i += 1
        elif word in ("st", "nd", "rd", "th") and out and out[-1].isdigit():
            i += 1
        else:
            out.append(word)
            i += 1
    for run in reversed(digit_runs(out)):
        if len(run.chunks) == 1:
            out[run.start : run.end] = [run.digits]
    return out


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_day(month: int, day: int, today: date) -> date | None:
    """That day this year, or next year once it has passed."""
    found = _valid(today.year, month, day)
    if found is not None and found < today:
        found = _valid(today.year + 1, month, day)
    return found


def parse_date(text: str, today: date) -> date | None:
    """The day a caller names, relative to `today`; None when no day is named.

    A weekday is its next occurrence after today ("Monday" said on a Monday is a week on);
    "next Tuesday" is the Tuesday of next week (Monday to Sunday), so on a Monday it is eight
    days away, not tomorrow. "The 24th" is this month's, or next month's once it has passed.
    """
    words = _day_words(normalize(text).split())
    clean = " ".join(words)
    if re.search(r"\bday after tomorrow\b", clean):
        return today + timedelta(days=2)
    for word, offset in _RELATIVE.items():
        if re.search(rf"\b{word}\b", clean):
            return today + timedelta(days=offset)
    in_days = re.search(r"\bin (\d+) (day|days|week|weeks)\b", clean)
    if in_days:
        count = int(in_days.group(1))
        return today + timedelta(days=count * (7 if in_days.group(2).startswith("week") else 1))
    if re.search(r"\b(a|one) week from (today|now)\b|\bin a week\b", clean):
        return today + timedelta(days=7)
    month_first = re.search(rf"\b({_MONTH_NAMES}) (\d{{1,2}})\b", clean)
    day_first = re.search(rf"\b(\d{{1,2}}) (of )?({_MONTH_NAMES})\b", clean)
    if month_first:
        return _month_day(_MONTHS[month_first.group(1)], int(month_first.group(2)), today)
    if day_first:
        return _month_day(_MONTHS[day_first.group(3)], int(day_first.group(1)), today)
    for match in re.finditer(r"\b(next|this|on|coming)? ?(\w+)\b", clean):
        weekday = _WEEKDAYS.get(match.group(2))
        if weekday is None or (
            match.group(2) in ("sun", "sat", "mar", "wed") and not match.group(1)
        ):
            continue
        ahead = (weekday - today.weekday() - 1) % 7 + 1
        if match.group(1) == "next" and today.weekday() + ahead <= 6:
            ahead += 7
        return today + timedelta(days=ahead)
    the_day = re.search(r"\b(?:the|on) (\d{1,2})\b", clean)
    if the_day and 1 <= int(the_day.group(1)) <= 31:
        day = int(the_day.group(1))
        found = _valid(today.year, today.month, day)
        if found is None or found < today:
            month = today.month % 12 + 1
            year = today.year + (today.month == 12)
            found = _valid(year, month, day)
        return found
    return None
