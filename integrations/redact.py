"""Card numbers never reach a log, a transcript, a ticket or the dashboard.

A card number is 13-19 digits that pass the Luhn check, however a person says or types them
and however speech-to-text writes them down: in groups ("4242 4242 …", "4242, 4242, …",
"4242.4242…", "4242 - 4242", double spaces), as thousands ("4,242,424,242,424,242"), as
whisper hears read-out digits ("4,24,24,24,…"), as words ("four two four two", "forty two
forty two", "double four", "oh"), or mixed. The text is read as *runs*: numbers (digit groups
or number words) separated only by punctuation, spaces or a filler ("uh", "and"). Within a run
the redactor looks for a window of whole numbers whose digits form a valid card number, so an
order number said right before a card ("order 1001 4242 4242 4242 4242") is kept while the card
goes. Order numbers, ZIP codes, phone numbers and amounts are not 13-19 Luhn-valid digits, so
they stay.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CARD_PLACEHOLDER",
    "RedactingFilter",
    "find_card_numbers",
    "luhn_valid",
    "redact_card_numbers",
    "redact_data",
]

CARD_PLACEHOLDER = "[card number removed]"

_UNITS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0",
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fourty": "4", "fifty": "5",
    "sixty": "6", "seventy": "7", "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEATS = {"double": 2, "triple": 3}
# Words that may sit between the numbers of one card as it is read out.
_FILLERS = frozenset({"uh", "um", "umm", "er", "erm", "ah", "and", "then"})
# A number right after one of these is what it names (an order, a ticket), not a card's start.
_LABELS = frozenset({"order", "number", "ticket", "rma", "ref", "reference", "zip", "#"})
# What may separate the numbers of one run: spaces (any), and , . - / : ; ' "
_GAP = re.compile(r"[\s,.\-/:;'\"]*")
_PIECE = re.compile(r"\d+|[^\W\d_]+")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum used by every payment card number."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class _Number:
    """One number of a run: its digits and where it stands in the text."""

    digits: str
    start: int
    end: int
    labelled: bool = False  # said right after "order", "ticket", …


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text)


def _runs(text: str) -> Iterator[list[_Number]]:
    """The runs of numbers in `text`, each a list of numbers in order."""
    pieces = list(_PIECE.finditer(text))
    run: list[_Number] = []
    last_end = 0
    previous_word = ""
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        word = piece.group(0)
        joined = bool(run) and _GAP.fullmatch(text, last_end, piece.start()) is not None
        if run and not joined:
            yield run
            run = []
        if word[0].isdecimal():  # what `\d` matched; "²" is a digit but no decimal
            glued = (piece.start() > 0 and text[piece.start() - 1].isalpha()) or (
                piece.end() < len(text) and text[piece.end()].isalpha()
            )
            number = _Number(
                _ascii_digits(word), piece.start(), piece.end(), previous_word in _LABELS
            )
            if glued:  # part of a code like 1Z999AA1…: a run of its own
                if run:
                    yield run
                yield [number]
                run = []
            else:
                run.append(number)
            last_end = piece.end()
            previous_word = ""
            i += 1
            continue
        lower = word.lower()
        spoken, used = _spoken(pieces, i, text)
        if spoken is not None:
            end = pieces[i + used - 1].end()
            run.append(_Number(spoken, piece.start(), end, previous_word in _LABELS))
            last_end = end
            previous_word = ""
            i += used
            continue
        if lower in _FILLERS and run:
            last_end = piece.end()
            i += 1
            continue
        if run:
            yield run
            run = []
        previous_word = lower
        last_end = piece.end()
        i += 1
    if run:
        yield run


def _spoken(pieces: list[re.Match[str]], i: int, text: str) -> tuple[str | None, int]:
    """The digits of the number words starting at piece `i`, and how many pieces they take:
    "four" → 4, "forty two" → 42, "forty" → 40, "fourteen" → 14, "double four" → 44."""
    word = pieces[i].group(0).lower()

    def next_word(k: int) -> str | None:
        if k >= len(pieces) or not _GAP.fullmatch(text, pieces[k - 1].end(), pieces[k].start()):
            return None
        return pieces[k].group(0).lower()

    if word in _UNITS:
        return _UNITS[word], 1
    if word in _TEENS:
        return _TEENS[word], 1
    if word in _TENS:
        unit = next_word(i + 1)
        if unit in _UNITS and unit not in ("zero", "oh", "o", "nought", "nil"):
            return _TENS[word] + _UNITS[unit], 2
        return _TENS[word] + "0", 1
    if word in _REPEATS:
        unit = next_word(i + 1)
        if unit in _UNITS:
            return _UNITS[unit] * _REPEATS[word], 2
    return None, 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] != "0" and luhn_valid(digits)


def _windows(run: list[_Number]) -> list[tuple[int, int]]:
    """The card numbers of a run, as (first, past-last) indexes of its numbers."""
    candidates = []
    for i in range(len(run)):
        digits = ""
        for j in range(i, len(run)):
            digits += run[j].digits
            if len(digits) > 19:
                break
            if _is_card(digits):
                candidates.append((i, j + 1, digits))
    if not candidates:
        return []

    def preference(candidate: tuple[int, int, str]) -> tuple[bool, bool, int, int]:
        # Not the number said after "order"; starting where issuers' numbers start; the
        # longest (a 19-digit card may begin with a valid 16); the later (after an order).
        first, past, digits = candidate
        labelled = any(n.labelled for n in run[first:past])
        plausible = digits[0] in "23456"
        return (labelled, not plausible, -len(digits), -first)

    first, past, _ = min(candidates, key=preference)
    return [*_windows(run[:first]), (first, past), *_shift(_windows(run[past:]), past)]


def _shift(windows: list[tuple[int, int]], by: int) -> list[tuple[int, int]]:
    return [(a + by, b + by) for a, b in windows]


def find_card_numbers(text: str) -> list[tuple[int, int]]:
    """Where the card numbers in `text` are, as (start, end) character spans."""
    spans = []
    for run in _runs(text):
        for first, past in _windows(run):
            spans.append((run[first].start, run[past - 1].end))
    return spans


def redact_card_numbers(text: str) -> str:
    """Replace every card number in `text` (see the module's docstring for what counts)."""
    if not text:
        return text
    spans = find_card_numbers(text)
    for start, end in reversed(spans):
        text = text[:start] + CARD_PLACEHOLDER + text[end:]
    return text


def redact_data(value: Any) -> Any:
    """`value` (text, or lists and dicts of it, as events and outbox payloads hold) with the
    card numbers of every string removed."""
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts card numbers from every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without card numbers."""
        message = record.getMessage()
        cleaned = redact_card_numbers(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
