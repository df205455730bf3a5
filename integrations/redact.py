"""Card numbers never reach a log, a transcript or the dashboard.

A run of 13-19 digits (spaces and dashes allowed between them) that passes the Luhn check is
replaced. Order numbers, phone numbers and ZIP codes are too short or fail Luhn, so they stay.
"""

from __future__ import annotations

import logging
import re

__all__ = ["CARD_PLACEHOLDER", "RedactingFilter", "luhn_valid", "redact_card_numbers"]

CARD_PLACEHOLDER = "[card number removed]"
_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


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

    return _CANDIDATE.sub(_swap, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts card numbers from every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_card_numbers(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
