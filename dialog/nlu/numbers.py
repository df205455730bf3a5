"""Numbers as callers say them and speech-to-text writes them: order numbers and digit strings.

"ten oh one", "one thousand and one", "1-0-0-1", "one double oh one" and "10 01" are all 1001;
"four one five, five five five, zero one zero one" is a string of ten digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialog.nlu.text import normalize

__all__ = [
    "ORDER_DIGITS",
    "DigitRun",
    "digit_runs",
    "number_value",
    "parse_order_number",
    "repair_digits",
    "reshaped_order_numbers",
]

ORDER_DIGITS = 4
"""Our order numbers have this many digits."""

# --- order numbers ---------------------------------------------------------------------------

_UNITS = {
    "zero": 0,
    "nought": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ZERO_LETTERS = {"oh": 0, "o": 0}  # a number only next to other numbers ("ten oh one")
_HOMOPHONES = {"to": 2, "too": 2, "for": 4, "won": 1, "ate": 8}  # only between numbers
_REPEATS = {"double": 2, "triple": 3}
_FILLERS = {"uh", "um", "er", "ah", "erm", "hmm"}
_NEGATIONS = {"not", "isnt", "wasnt", "never"}
_ORDER_WORDS = {"order", "number", "no", "num", "its", "it", "is"}
_STRONG = _UNITS.keys() | _TEENS.keys() | _TENS.keys() | {"hundred", "thousand"}


def _value(token: str) -> int | None:
    """The numeric value of a single number token, whatever its form."""
    if token.isdigit():
        return int(token)
    for table in (_UNITS, _TEENS, _TENS, _ZERO_LETTERS, _HOMOPHONES):
        if token in table:
            return table[token]
    return None


def _number_mask(tokens: list[str]) -> list[bool]:
    """Which tokens belong to a spoken number, weak words only when numbers surround them."""
    n = len(tokens)
    inside = [t.isdigit() or t in _STRONG for t in tokens]

    def at(i: int) -> bool:
        return 0 <= i < n and inside[i]

    changed = True
    while changed:
        changed = False
        for i, tok in enumerate(tokens):
            if inside[i]:
                continue
            nxt = tokens[i + 1] if i + 1 < n else ""
            if tok in _ZERO_LETTERS:
                ok = at(i - 1) or at(i + 1)
            elif tok in _REPEATS:
                ok = at(i + 1) or nxt in _ZERO_LETTERS
            elif tok in _HOMOPHONES:
                ok = at(i - 1) and (at(i + 1) or i == n - 1)
            elif tok == "and":
                ok = i > 0 and _round(tokens[i - 1]) is not None and at(i + 1)
            elif tok == "a":
                ok = nxt in ("hundred", "thousand")
            elif tok in _FILLERS:
                ok = at(i - 1) and at(i + 1)
            else:
                ok = False
            if ok:
                inside[i] = changed = True
    return inside


def _runs(tokens: list[str]) -> list[tuple[int, list[str]]]:
    """Maximal stretches of number tokens, each with the index where it starts."""
    mask = _number_mask(tokens)
    runs: list[tuple[int, list[str]]] = []
    for i, tok in enumerate(tokens):
        if not mask[i]:
            continue
        if i > 0 and mask[i - 1]:
            runs[-1][1].append(tok)
        else:
            runs.append((i, [tok]))
    return runs


def _round(token: str) -> int | None:
    """The place a number word or a round figure stands for before "and": "hundred" 100,
    "thousand" 1000, and the figures speech-to-text writes for them ("1000 and 8", "300 and
    5"); None for any other token."""
    if token in ("hundred", "thousand"):
        return 100 if token == "hundred" else 1000
    if token.isdigit() and not token.startswith("0") and len(token) <= 4 and int(token) % 100 == 0:
        return int(token)
    return None


def _figure_and(toks: list[str], i: int) -> tuple[int, int] | None:
    """A round figure, "and", and a smaller number at `i` ("1000 and 8" → 1008), as Whisper
    writes "one thousand and eight"; None where the number after "and" is not below the
    figure's place ("1000 and 1000" is two numbers)."""
    figure = _round(toks[i]) if toks[i].isdigit() else None
    if figure is None or i + 2 >= len(toks) or toks[i + 1] != "and":
        return None
    rest = _below_thousand(toks, i + 2)
    place = 1000 if figure % 1000 == 0 else 100
    if rest is None or rest[0] >= place:
        return None
    return figure + rest[0], rest[1]


def _below_hundred(toks: list[str], i: int) -> tuple[int, int] | None:
    """Parse 0-99 at `i` ("forty two", "12", "seven"); return (value, next index)."""
    if i >= len(toks):
        return None
    tok = toks[i]
    if tok == "a" and i + 1 < len(toks) and toks[i + 1] in ("hundred", "thousand"):
        return 1, i + 1
    if tok.isdigit():
        return (int(tok), i + 1) if len(tok) <= 2 and not tok.startswith("0") else None
    if tok in _TENS:
        unit = _value(toks[i + 1]) if i + 1 < len(toks) else None
        if unit is not None and 1 <= unit <= 9 and toks[i + 1] not in _ZERO_LETTERS:
            return _TENS[tok] + unit, i + 2
        return _TENS[tok], i + 1
    value = _value(tok)
    if value is None or tok in _ZERO_LETTERS:
        return None
    return value, i + 1


def _below_thousand(toks: list[str], i: int) -> tuple[int, int, bool] | None:
    """Parse 0-999 at `i`; the flag says whether "hundred" was used."""
    first = _below_hundred(toks, i)
    if first is None:
        return None
    value, j = first
    if j < len(toks) and toks[j] == "hundred":
        value, j = value * 100, j + 1
        if j < len(toks) and toks[j] == "and":
            j += 1
        rest = _below_hundred(toks, j)
        if rest is not None:
            value, j = value + rest[0], rest[1]
        return value, j, True
    return value, j, False


def _cardinal(toks: list[str], i: int) -> tuple[int, int] | None:
    """Parse a number said with "hundred" or "thousand" at `i` ("one thousand and one")."""
    first = _below_thousand(toks, i)
    if first is None:
        return None
    value, j, used = first
    if j < len(toks) and toks[j] == "thousand":
        value, j, used = value * 1000, j + 1, True
        if j < len(toks) and toks[j] == "and":
            j += 1
        rest = _below_thousand(toks, j)
        if rest is not None:
            value, j = value + rest[0], rest[1]
    return (value, j) if used else None


def _digit_group(toks: list[str], i: int) -> tuple[str, int]:
    """Read one group said digit-wise at `i` ("10", "ten", "oh", "double oh", "forty two")."""
    tok = toks[i]
    if tok.isdigit():
        return tok, i + 1
    if tok in _REPEATS and i + 1 < len(toks):
        digits, j = _digit_group(toks, i + 1)
        return digits * _REPEATS[tok], j
    if tok in _TENS:
        value, j = _below_hundred(toks, i) or (_TENS[tok], i + 1)
        return str(value), j
    value = _value(tok)
    return ("" if value is None else str(value)), i + 1


def _chunks(tokens: list[str]) -> list[str]:
    """Turn one run of number tokens into digit strings, in the order they were said."""
    toks = [t for t in tokens if t not in _FILLERS]
    chunks: list[str] = []
    i = 0
    while i < len(toks):
        cardinal = _cardinal(toks, i) or _figure_and(toks, i)
        if cardinal is not None:
            chunks.append(str(cardinal[0]))
            i = cardinal[1]
            continue
        digits, i = _digit_group(toks, i)
        if digits:
            chunks.append(digits)
    return chunks


def _order_number_in(chunks: list[str], size: int) -> str | None:
    """The order number a run holds: all of it, one whole chunk, or a number said twice."""
    digits = "".join(chunks)
    if len(digits) == size:
        return digits
    for chunk in chunks:
        if len(chunk) == size:
            return chunk
    if digits and len(digits) % size == 0 and digits == digits[:size] * (len(digits) // size):
        return digits[:size]
    return None


def _negated(tokens: list[str], start: int) -> bool:
    """Whether the run at `start` is being denied ("not 1001", "it's not order 1001")."""
    i = start - 1
    while i >= 0 and tokens[i] in _ORDER_WORDS:
        i -= 1
    return i >= 0 and tokens[i] in _NEGATIONS


@dataclass(frozen=True)
class DigitRun:
    """A stretch of tokens that says a number: where it is and the digit groups it holds."""

    start: int
    end: int
    chunks: tuple[str, ...]

    @property
    def digits(self) -> str:
        """Every digit said, in order ("four one five 555" → "415555")."""
        return "".join(self.chunks)


def digit_runs(words: list[str]) -> list[DigitRun]:
    """Every number said in the normalised `words`, in order."""
    found = []
    for start, run in _runs(words):
        chunks = _chunks(run)
        if chunks:
            found.append(DigitRun(start, start + len(run), tuple(chunks)))
    return found


def number_value(token: str) -> int | None:
    """The value of one number word or digit string ("seven" → 7, "forty" → 40, "12" → 12)."""
    if token in _ZERO_LETTERS or token in _HOMOPHONES:
        return None
    return _value(token)


def _is_phone_like(chunks: list[str]) -> bool:
    """Seven, ten or eleven digits that are not one number said twice: a phone number."""
    digits = "".join(chunks)
    if len(digits) not in (7, 10, 11):
        return False
    return digits != digits[:ORDER_DIGITS] * (len(digits) // ORDER_DIGITS)


def parse_order_number(text: str, *, digits: int = ORDER_DIGITS) -> str | None:
    """Find an order number in any common spoken or typed form; return its digits.

    "ten oh one", "one thousand and one", "1-0-0-1", "one double oh one" and "10 01" all
    give "1001". A number the caller denies ("not 1001, 1003") is skipped when another one
    was said.
    """
    tokens = normalize(text).split()
    found: list[tuple[bool, str]] = []
    for start, run in _runs(tokens):
        chunks = _chunks(run)
        if _is_phone_like(chunks):
            continue  # "415 555 0101" holds a four-digit group, but it is not an order
        negated = _negated(tokens, start)
        said = "".join(chunks)
        if negated and len(said) == 2 * digits and said[:digits] != said[digits:]:
            # "not one zero zero one, one zero zero three": one run once commas are gone
            found += [(True, said[:digits]), (False, said[digits:])]
            continue
        number = _order_number_in(chunks, digits)
        if number is not None:
            found.append((negated, number))
    for negated, number in found:
        if not negated:
            return number
    return found[0][1] if found else None


# --- order numbers written in another shape ---------------------------------------------------

_OH_WORDS = {"or", "of", "o"}  # "ten oh eight" written "10 or 8"


def reshaped_order_numbers(text: str, *, digits: int = ORDER_DIGITS) -> list[str]:
    """Order numbers that numbers heard in the wrong shape stand for, as speech-to-text writes
    some spoken ones: "ten oh one" as "101" (the oh dropped), "one zero zero three" as
    "10003" (a zero doubled), "ten oh eight" as "10 or 8". Guesses: a caller's own order
    they match, or a value read back for a yes or no, never an order looked up as heard.
    Empty when the words hold an order number of the right shape."""
    if parse_order_number(text, digits=digits) is not None:
        return []
    words = normalize(text).split()
    found: list[str] = []
    for i in range(len(words) - 2):
        head, oh, last = words[i : i + 3]
        ten, digit = len(head) == digits - 2 and head.isdigit(), len(last) == 1 and last.isdigit()
        if oh in _OH_WORDS and ten and digit and head[0] != "0":
            found.append(f"{head}0{last}")
    for run in digit_runs(words):
        said = run.digits
        if len(said) == digits - 1 and len(run.chunks) == 1 and said[0] != "0":
            found.append(said[: digits - 2] + "0" + said[digits - 2 :])
        elif len(said) == digits + 1 and (zeros := re.search("00+", said)) and said[0] != "0":
            found.append(said[: zeros.start()] + said[zeros.start() + 1 :])
    return list(dict.fromkeys(found))


# --- digits heard as other words -------------------------------------------------------------

LOOKALIKES = {
    "near": "zero",
    "nero": "zero",
    "hero": "zero",
    "mirror": "zero",
    "year": "zero",
    "won": "one",
    "tu": "two",
    "free": "three",
    "tree": "three",
    "or": "four",
    "fore": "four",
    "far": "four",
    "fife": "five",
    "sex": "six",
    "sicks": "six",
    "big": "six",
    "thick": "six",
    "aid": "eight",
    "ate": "eight",
    "high": "nine",
    "nein": "nine",
    "eyes": "nine",
    "eye": "nine",
}
"""Words speech-to-text writes for a digit said in a voice it does not know ("one near zero",
"nine four one one year", "oh two one three eyes"); read as the digit only next to numbers,
and only where the agent asked for one."""


_ZERO_TAILS = {"or", "of"}  # "one near of near of three": espeak's "zero" heard in two words


def _zeros_joined(tokens: list[str]) -> list[str]:
    """`tokens` with the "or"/"of" after a zero heard as another word dropped: espeak's
    "zero" comes out as "near of" or "near or" ("one near or near or three" is 1003)."""
    kept: list[str] = []
    for tok in tokens:
        if tok in _ZERO_TAILS and kept and LOOKALIKES.get(kept[-1]) == "zero":
            continue
        kept.append(tok)
    return kept


def _oh(tokens: list[str], i: int) -> bool:
    """Whether the "or" at `i` is an "oh": after ten and before a digit ("10 or 8", ten oh
    eight); elsewhere it is a four ("9 or 1 1 0")."""
    before, after = tokens[i - 1] if i else "", tokens[i + 1] if i + 1 < len(tokens) else ""
    return len(before) == 2 and before.isdigit() and len(after) == 1 and after.isdigit()


def repair_digits(text: str) -> str:
    """`text` normalised, with look-alike words read as the digits they stand for where they
    sit next to a number and the stretch holds at least three numbers ("time for 1 1 year" →
    "time four 1 1 zero"); unchanged elsewhere. For answers to a question that wants digits."""
    tokens = _zeros_joined(normalize(text).split())
    number = [t.isdigit() or t in _STRONG or t in _ZERO_LETTERS for t in tokens]
    changed = True
    while changed:
        changed = False
        for i, tok in enumerate(tokens):
            if number[i] or tok not in LOOKALIKES:
                continue
            if (i > 0 and number[i - 1]) or (i + 1 < len(tokens) and number[i + 1]):
                digit = "zero" if tok == "or" and _oh(tokens, i) else LOOKALIKES[tok]
                tokens[i], number[i], changed = digit, True, True
    runs, length = [], 0
    for flag in number:
        length = length + 1 if flag else 0
        runs.append(length)
    if max(runs, default=0) < 3:
        return normalize(text)
    return " ".join(tokens)
