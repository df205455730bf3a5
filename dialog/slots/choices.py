"""Slot types for answers picked from a few: yes or no (also by what a statement says), an
option the flow declares, a return reason, a colour. `named_item` tells which of several
names the caller said, for picking an order or an item by what it is.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from typing import Any

from dialog import understanding
from dialog.slots.base import SlotContext, SlotType

__all__ = ["TYPES", "named_item", "stated"]


def stated(text: str, ctx: SlotContext) -> bool | None:
    """What a statement says of a yes/no slot, by its declared phrases ("it came, but it's
    cracked": arrived, not in good condition); the last phrase said wins, a longer one over a
    shorter one inside it ("no damage" over "damage"). None when none is said."""
    clean = f" {understanding.normalize(text)} "
    found: list[tuple[int, int, bool]] = []
    for value, phrases in ((True, ctx.yes_when), (False, ctx.no_when)):
        for phrase in phrases:
            words = understanding.normalize(phrase)
            for m in re.finditer(rf"(?<= ){re.escape(words)}(?= )", clean):
                found.append((m.start(), m.end(), value))
    kept = [f for f in found if not any(o != f and o[0] <= f[0] and f[1] <= o[1] for o in found)]
    return max(kept)[2] if kept else None


def _yes_no(text: str, ctx: SlotContext) -> bool | None:
    said = stated(text, ctx)
    return said if said is not None else understanding.parse_yes_no(text)


def _yes_no_keys(digits: str, ctx: SlotContext) -> bool | None:
    return {"1": True, "2": False}.get(digits.strip())


def named_item(text: str, names: Sequence[str], *, positions: bool = True) -> int | None:
    """Which of `names` the caller named, also when speech-to-text split or joined a word
    ("ear buds" for "earbuds"); None when unclear. `positions` lets "the first one" count."""
    found = understanding.match_item(text, names, positions=positions)
    if found is not None:
        return found
    said = re.sub(r"[^a-z]", "", text.lower())
    hits = [
        i
        for i, name in enumerate(names)
        if any(w.rstrip("s") in said for w in re.findall(r"[a-z]{4,}", name.lower()))
    ]
    if not hits:
        hits = [i for i, name in enumerate(names) if _sounds_like(text, name)]
    return hits[0] if len(hits) == 1 else None


def _sounds_like(text: str, name: str) -> bool:
    """A product word heard slightly wrong ("ear bug" for "earbuds"): a word, or two said
    together, close to one of the name's longer words."""
    words = re.findall(r"[a-z]+", text.lower())
    heard = words + [a + b for a, b in itertools.pairwise(words)]
    for target in re.findall(r"[a-z]{5,}", name.lower()):
        target = target.rstrip("s")
        for word in heard:
            if abs(len(word) - len(target)) <= 2 and (
                difflib.SequenceMatcher(None, word, target).ratio() >= 0.8
            ):
                return True
    return False


def _product_vocabulary(ctx: SlotContext) -> tuple[str, ...]:
    return ctx.products


def _return_reason(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_return_reason(text)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


_NEGATORS = {"not", "no", "dont", "without", "instead"}


_ARTICLES = {"a", "an", "the", "my", "for", "any"}


def _negated(tokens: list[str], i: int) -> bool:
    """Whether the word at `i` is turned down ("not a refund", "no exchange")."""
    before = tokens[i - 1] if i >= 1 else ""
    if before in _ARTICLES:
        before = tokens[i - 2] if i >= 2 else ""
    return before in _NEGATORS


def _choice(text: str, ctx: SlotContext) -> str | None:
    """The option whose words were said last, skipping ones the caller turned down."""
    tokens = _tokens(text)
    best: tuple[int, str] | None = None
    for option, synonyms in ctx.options.items():
        for phrase in (option.replace("_", " "), *synonyms):
            words = _tokens(phrase)
            n = len(words)
            for i in range(len(tokens) - n + 1):
                if tokens[i : i + n] != words:
                    continue
                if _negated(tokens, i):
                    continue
                if best is None or i >= best[0]:
                    best = (i, option)
    if best is not None:
        return best[1]
    answer = understanding.parse_yes_no(text)
    if answer is None:
        return None
    return ctx.yes if answer else ctx.no


def _options_vocabulary(ctx: SlotContext) -> tuple[str, ...]:
    """How each option is usually said; as hotwords they keep tiny.en on the answer."""
    return tuple(
        words[0] if words else option.replace("_", " ") for option, words in ctx.options.items()
    )


def _choice_keys(digits: str, ctx: SlotContext) -> str | None:
    options = list(ctx.options)
    digits = digits.strip()
    if digits.isdigit() and 1 <= int(digits) <= len(options):
        return options[int(digits) - 1]
    return None


def _choice_speak(value: Any, ctx: SlotContext) -> str:
    return str(value).replace("_", " ") if value else ""


_COLOURS = re.compile(
    r"\b(black|white|grey|gray|blue|navy|red|green|yellow|orange|pink|purple|brown|beige"
    r"|cream|ivory|tan|olive|teal|maroon|burgundy|silver|gold|charcoal)\b"
)


def _colour(text: str, ctx: SlotContext) -> str | None:
    """A colour the caller asks for ("the same in blue")."""
    m = _COLOURS.search(understanding.normalize(text))
    return m.group(1) if m else None


def _bool_speak(value: Any, ctx: SlotContext) -> str:
    return "yes" if value else "no"


TYPES: tuple[SlotType, ...] = (
    SlotType("yes_no", _yes_no, _bool_speak, _yes_no_keys, hint="yes_no"),
    SlotType(
        "return_reason",
        _return_reason,
        _choice_speak,
        hint="return_reason",
        vocabulary=_product_vocabulary,
    ),
    SlotType(
        "choice",
        _choice,
        _choice_speak,
        _choice_keys,
        hint="choice",
        vocabulary=_options_vocabulary,
        needs_options=True,
    ),
    SlotType("colour", _colour),
    # Set by actions only, and said in templates.
    SlotType("bool", speak=_bool_speak),
)
"""Answers picked from a few: yes or no, an option of the flow's, a reason, a colour."""
