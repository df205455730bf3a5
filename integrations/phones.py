"""Phone numbers as people write them, in E.164: the one normaliser."""

from __future__ import annotations

import re

__all__ = ["normalize_phone"]

_NANP_REGIONS = frozenset({"US", "CA"})
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_DIGITS = re.compile(r"[0-9]+")


def normalize_phone(raw: str, default_region: str = "US") -> str | None:
    """The E.164 form of a phone number as people write it, or None if it cannot be one.

    A number without a country code is read in `default_region`; only the North American
    numbering plan ("US", "CA") is known. "+14155550101", "4155550101", "(415) 555-0101" and
    "1-415-555-0101" all give "+14155550101". Numbers written with "+" or the "011" exit code
    keep their country code.
    """
    region = default_region.upper()
    if region not in _NANP_REGIONS:
        raise ValueError(f"unsupported default_region {default_region!r}; known: US, CA")
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    compact = _PHONE_SEPARATORS.sub("", text)
    if compact.startswith("+"):
        return _international(compact[1:])
    if compact.startswith("011"):
        return _international(compact[3:])
    if not _DIGITS.fullmatch(compact):
        return None
    if len(compact) == 11 and compact.startswith("1"):
        compact = compact[1:]
    return _nanp(compact)


def _international(digits: str) -> str | None:
    if not _DIGITS.fullmatch(digits) or digits.startswith("0"):
        return None
    if digits.startswith("1"):
        return _nanp(digits[1:])
    # E.164 allows at most 15 digits; no country's numbers are shorter than about 8 in full.
    return f"+{digits}" if 8 <= len(digits) <= 15 else None


def _nanp(national: str) -> str | None:
    """+1 and the ten digits, if they form a NANP number (area code and exchange start 2-9)."""
    if len(national) != 10 or national[0] in "01" or national[3] in "01":
        return None
    return f"+1{national}"
