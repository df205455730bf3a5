"""Card numbers never reach a log, a transcript or the dashboard.

A run of 13-19 digits (spaces and dashes allowed between them) that passes the Luhn check is
replaced — written as digits, or spoken as words ("four two four two …", as a transcript may
hold them). Order numbers, phone numbers and ZIP codes are too short or fail Luhn, so they stay.
"""

from __future__ import annotations

import logging
import re

__all__ = ["CARD_PLACEHOLDER", "RedactingFilter", "luhn_valid", "redact_card_numbers"]

CARD_PLACEHOLDER = "[card number removed]"
_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_WORD = "(?:" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + ")"
_SPOKEN = re.compile(rf"\b{_WORD}(?:[\s,.-]+{_WORD}){{12,18}}\b", re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum used by every payment card number."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact_card_numbers(text: str) -> str:
    """Replace anything that looks like a valid card number."""

    def _swap(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return (
            CARD_PLACEHOLDER if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)
        )

    def _swap_spoken(match: re.Match[str]) -> str:
        words = re.split(r"[\s,.-]+", match.group(0).lower())
        digits = "".join(_DIGIT_WORDS[w] for w in words if w)
        return CARD_PLACEHOLDER if luhn_valid(digits) else match.group(0)

    return _SPOKEN.sub(_swap_spoken, _CANDIDATE.sub(_swap, text))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts card numbers from every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_card_numbers(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
