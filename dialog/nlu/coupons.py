"""Coupon codes as speech-to-text hears them: "SAVE20" arrives as "save twenty" or "safe 20"."""

from __future__ import annotations

import re
from collections.abc import Iterable

from dialog.nlu.numbers import digit_runs
from dialog.nlu.text import normalize

__all__ = ["compact_code", "parse_coupon_code"]

_LONGEST_WINDOW = 5
# Sounds tiny.en swaps in short words: "save" → "safe", "same"; "ship" → "chip"; "vip" → "v i p".
_SOUND_ALIKE = str.maketrans({"f": "v", "z": "s", "k": "c", "q": "c", "j": "g"})
_FILLERS = {"um", "uh", "the", "a", "code", "coupon", "promo", "discount", "its", "is", "my"}


def compact_code(text: str) -> str:
    """A code with spaces dropped and number words as digits ("Save Twenty" → "save20")."""
    words = normalize(text).split()
    for run in reversed(digit_runs(words)):
        words[run.start : run.end] = [run.digits]
    return "".join(words)


def _letters(code: str) -> str:
    return re.sub(r"\d+", "", code)


def _digits(code: str) -> str:
    return re.sub(r"\D+", "", code)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _closeness(said: str, code: str) -> int | None:
    """Edit distance between what was said and a code, or None when they cannot be the same.

    Digits must match exactly (SAVE20 is not SAVE10); letters may differ by about one sound
    in four, compared after folding sounds tiny.en confuses.
    """
    if _digits(said) != _digits(code):
        return None
    a, b = _letters(said).translate(_SOUND_ALIKE), _letters(code).translate(_SOUND_ALIKE)
    distance = _distance(a, b)
    return distance if distance <= max(1, len(b) // 4) else None


def parse_coupon_code(text: str, known_codes: Iterable[str]) -> str | None:
    """Which of `known_codes` the caller said, tolerating how speech-to-text spells it.

    "save twenty", "safe 20" and "same 20" are all SAVE20; "free shipping" is FREESHIP.
    Returns the code as the shop writes it, or None when nothing is close enough.
    """
    codes = {compact_code(code): code for code in known_codes}
    words = [w for w in normalize(text).split() if w not in _FILLERS]
    for run in reversed(digit_runs(words)):
        words[run.start : run.end] = [run.digits]
    best: tuple[int, int, str] | None = None
    for size in range(1, _LONGEST_WINDOW + 1):
        for i in range(len(words) - size + 1):
            said = "".join(words[i : i + size])
            for compact, code in codes.items():
                if said == compact or (compact in said and said.startswith(compact)):
                    distance: int | None = 0
                else:
                    distance = _closeness(said, compact)
                if distance is not None and (best is None or (distance, -size) < best[:2]):
                    best = (distance, -size, code)
    return best[2] if best else None
