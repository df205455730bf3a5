"""Understanding what a caller said: intents, order numbers, yes/no, which item they mean.

Input is speech-to-text output, so everything here is tolerant of its noise: case and
punctuation are ignored, numbers come as digits, words or a mix ("ten oh one", "1-0-0-1",
"one double oh one"), and intents are scored from weighted phrase patterns rather than
matched exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "INTENTS",
    "Understanding",
    "classify",
    "match_item",
    "normalize",
    "parse_order_number",
    "parse_yes_no",
]

INTENTS = ("order_status", "goodbye", "human", "yes", "no", "unknown")
"""Every intent `classify` can return."""

ORDER_DIGITS = 4
"""Our order numbers have this many digits."""

_MIN_SCORE = 0.5


@dataclass(frozen=True)
class Understanding:
    """What one utterance means: the best intent, how sure we are, and any slot values."""

    intent: str
    score: float
    order_number: str | None = None
    yes_no: bool | None = None


def normalize(text: str) -> str:
    """Lower-case `text`, drop apostrophes and punctuation, and split letters from digits."""
    text = text.lower()
    text = re.sub(r"['’‘`]", "", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # "1,001"
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


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
                ok = i > 0 and tokens[i - 1] in ("hundred", "thousand") and at(i + 1)
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
        cardinal = _cardinal(toks, i)
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


def parse_order_number(text: str, *, digits: int = ORDER_DIGITS) -> str | None:
    """Find an order number in any common spoken or typed form; return its digits.

    "ten oh one", "one thousand and one", "1-0-0-1", "one double oh one" and "10 01" all
    give "1001". A number the caller denies ("not 1001, 1003") is skipped when another one
    was said.
    """
    tokens = normalize(text).split()
    found: list[tuple[bool, str]] = []
    for start, run in _runs(tokens):
        number = _order_number_in(_chunks(run), digits)
        if number is not None:
            found.append((_negated(tokens, start), number))
    for negated, number in found:
        if not negated:
            return number
    return found[0][1] if found else None


# --- yes / no --------------------------------------------------------------------------------

_YES = {
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "sure", "ok", "okay", "alright",
    "all right", "please do", "go ahead", "of course", "absolutely", "definitely",
    "certainly", "correct", "right", "thats right", "i guess so", "i think so", "i guess",
    "why not", "sounds good", "that would be great", "that would be nice", "do it", "uh huh",
    "mhm", "mm hmm", "affirmative", "that works", "perfect", "great", "you bet", "sure thing",
    "send it", "text me", "i do", "thats fine", "fine", "yes please", "please go ahead",
}  # fmt: skip
_NO = {
    "no", "nope", "nah", "no thanks", "no thank you", "not really", "dont", "do not",
    "i dont think so", "negative", "not now", "not right now", "no need", "not necessary",
    "im good", "im fine", "never mind", "nevermind", "dont bother", "no way", "i guess not",
    "i think not", "not today",
}  # fmt: skip
_UNSURE = {
    "no problem", "no worries", "not sure", "im not sure", "i dont know", "dunno", "maybe",
    "thats okay", "thats ok", "thats alright", "i dont remember",
}  # fmt: skip
_POLITE = {"please", "thanks", "thank", "you", "oh", "um", "uh"}
_POLARITY = {p: True for p in _YES} | {p: False for p in _NO} | {p: None for p in _UNSURE}
_LONGEST_PHRASE = max(len(p.split()) for p in _POLARITY)


def parse_yes_no(text: str) -> bool | None:
    """Whether `text` answers yes (True), no (False), or neither (None).

    Hedges count ("I guess so", "not really"); when both are said the last one wins
    ("yeah, no" is no), and "no problem" or "not sure" decide nothing.
    """
    tokens = normalize(text).split()
    if "please" in tokens and set(tokens) <= _POLITE:
        return True  # a bare "please" answers yes; "please" inside a request does not
    answer: bool | None = None
    i = 0
    while i < len(tokens):
        for size in range(min(_LONGEST_PHRASE, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + size])
            if phrase in _POLARITY:
                if _POLARITY[phrase] is not None:
                    answer = _POLARITY[phrase]
                i += size
                break
        else:
            i += 1
    return answer


# --- intents ---------------------------------------------------------------------------------

_OBJECTS = r"(order|orders|package|packages|parcel|delivery|shipment|shipping|box|stuff)"
_PATTERNS: dict[str, list[tuple[re.Pattern[str], float]]] = {
    "order_status": [
        (re.compile(r"\bwheres?\b"), 0.6),
        (re.compile(r"\bwheres? (is |are )?(it|they|my|the|our)\b"), 0.3),
        (re.compile(rf"\b{_OBJECTS}\b"), 0.4),
        (re.compile(r"\btrack(ing|ed)?\b"), 0.7),
        (re.compile(r"\b(ship|shipped|shipping|dispatched|sent out)\b"), 0.5),
        (
            re.compile(
                r"\bwhen\b.*\b(arrive|arriving|get here|come|coming|be here|deliver|delivered"
                r"|get it|receive)\b"
            ),
            0.8,
        ),
        (re.compile(r"\bstatus\b|\beta\b|\bestimated delivery\b"), 0.7),
        (
            re.compile(
                r"\b(havent|have not|hasnt|has not|didnt|did not|never|not yet|still not)\b"
                r".*\b(receive|received|get|got|gotten|arrive|arrived|come|came|show up"
                r"|showed up|turned up)\b"
            ),
            0.8,
        ),
        (re.compile(r"\b(late|delayed|lost|missing|stuck)\b"), 0.4),
    ],
    "goodbye": [
        (re.compile(r"\b(good ?bye|bye|bye bye|see you|see ya)\b"), 1.0),
        (
            re.compile(
                r"\b(thats all|that is all|thats it|that is it|thats everything|nothing else"
                r"|nothing more|no more|im done|were done|all set|all good|that will be all"
                r"|thatll be all|that was all|that was it)\b"
            ),
            0.9,
        ),
        (re.compile(r"\bhave a (nice|good|great|lovely) (day|one|evening|night)\b"), 0.9),
        (re.compile(r"\b(thanks|thank you|cheers)\b"), 0.5),
    ],
    "human": [
        (
            re.compile(
                r"\b(human|representative|operator|agent|real person|live person|actual person"
                r"|customer service|customer support|manager|supervisor|somebody real)\b"
            ),
            0.9,
        ),
        (re.compile(r"\b(person|someone|somebody|staff)\b"), 0.5),
        (
            re.compile(
                r"\b(talk to|talk with|speak to|speak with|connect me|transfer me|put me through)\b"
            ),
            0.4,
        ),
    ],
}
_NUMBER_WEIGHT = 0.5
_YES_NO_WEIGHT = 0.8


def _score(intent: str, text: str) -> float:
    """Sum of the weights of the intent's patterns found in `text`, at most 1."""
    total = sum(weight for pattern, weight in _PATTERNS[intent] if pattern.search(text))
    return round(min(1.0, total), 2)


def classify(text: str) -> Understanding:
    """The caller's intent in one utterance, with any order number and yes/no it carries."""
    clean = normalize(text)
    number = parse_order_number(text)
    yes_no = parse_yes_no(text)
    scores = {intent: _score(intent, clean) for intent in _PATTERNS}
    if number is not None:
        scores["order_status"] = min(1.0, scores["order_status"] + _NUMBER_WEIGHT)
    if yes_no is not None:
        scores["yes" if yes_no else "no"] = _YES_NO_WEIGHT
    # On a tie the earlier intent wins: asking for a person beats everything else.
    order = ("human", "goodbye", "order_status", "yes", "no")
    intent = max(order, key=lambda name: (scores.get(name, 0.0), -order.index(name)))
    score = scores.get(intent, 0.0)
    if score < _MIN_SCORE:
        intent, score = "unknown", round(1.0 - score, 2)
    return Understanding(intent=intent, score=score, order_number=number, yes_no=yes_no)


# --- which item ------------------------------------------------------------------------------

_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3}
_STOPWORDS = {"the", "a", "an", "my", "of", "and", "with", "for", "size", "one", "set"}


def _stem(word: str) -> str:
    """A crude singular, so "shirts" finds "shirt" and "earbud" finds "earbuds"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def match_item(text: str, names: Sequence[str]) -> int | None:
    """Which of `names` the caller means ("the shirt", "the second one"), or None if unclear."""
    tokens = normalize(text).split()
    for token in tokens:
        if token in _ORDINALS and _ORDINALS[token] < len(names):
            return _ORDINALS[token]
    if "last" in tokens and names:
        return len(names) - 1
    said = {_stem(t) for t in tokens}
    scores = []
    for name in names:
        words = {_stem(w) for w in normalize(name).split()} - _STOPWORDS
        scores.append(len(words & said))
    best = max(scores, default=0)
    if best == 0 or scores.count(best) > 1:
        return None
    return scores.index(best)
