"""The size slot type: a size named outright ("an L", "size 9") or one relative to the
item's own ("too small"), resolved against what is in stock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dialog import understanding
from dialog.slots.base import SlotContext, SlotType
from dialog.speech import SIZE_NAMES, say_list, say_size

__all__ = ["TYPES", "resolve_size"]

_SIZE_WORDS = sorted(((v, k) for k, v in SIZE_NAMES.items()), key=lambda p: -len(p[0]))
SIZE_NAMES_BY_WORDS = {v: k for k, v in SIZE_NAMES.items()}
_OWN_SIZE = re.compile(
    r"\b(my|instead of|from|than|current|currently|its a|its an|is a)( a| an| the)? $"
)
_LETTER_NAMES = {"ex": "X", "x": "X", "s": "S", "m": "M", "l": "L"}


def _absolute_size(text: str) -> str | None:
    """A size named outright ("large", "an L", "size 9"), not "too small" or "a bigger one"."""
    clean = understanding.relative_phrases_removed(text)
    said: list[tuple[int, str]] = []  # (where, size), the longest name at each place
    for words, _code in _SIZE_WORDS:
        for m in re.finditer(rf"\b{words}\b", clean):
            if not any(at <= m.start() < at + len(w) for at, w in said):
                said.append((m.start(), words))
    found = [(at, SIZE_NAMES_BY_WORDS[w]) for at, w in sorted(said)]
    if not found:
        for m in re.finditer(r"\b[a-z]+\b", clean):
            token = m.group()
            upper = _LETTER_NAMES.get(token, token).upper()
            if upper in SIZE_NAMES and (len(token) > 1 or token in ("s", "m", "l")):
                found.append((m.start(), upper))
    # "a large instead of my medium": the size they have is not the one they want.
    wanted = [code for at, code in found if not _OWN_SIZE.search(clean[max(0, at - 16) : at])]
    if wanted or found:
        return (wanted or found)[-1]
    if m := re.search(r"\bsize (\d{1,2})\b", clean):
        return m.group(1)
    return None


def resolve_size(steps: int, current: str | None, in_stock: Sequence[str]) -> str | None:
    """The size `steps` away from `current` that is in stock: one step means the nearest size
    that way, two exactly two sizes along. None when there is none (or no current size)."""
    if not current or current.upper() not in SIZE_NAMES:
        return None
    ladder = list(SIZE_NAMES)
    here = ladder.index(current.upper())
    stocked = {s.upper() for s in in_stock}
    if abs(steps) >= 2:
        target = here + steps
        return ladder[target] if 0 <= target < len(ladder) and ladder[target] in stocked else None
    way = range(here + 1, len(ladder)) if steps > 0 else range(here - 1, -1, -1)
    return next((ladder[i] for i in way if ladder[i] in stocked), None)


def _size(text: str, ctx: SlotContext) -> str | None:
    """A size ("large", "an L", "extra large", "size 9"), or one relative to the item's own
    ("too small" → the next size up in stock); only those on offer when known. Before the
    item's size is known a relative answer is kept as "+1"/"-1", for the return to resolve."""
    found = _absolute_size(text)
    offered = ctx.values.get("size_options")
    if found is None:
        steps = understanding.relative_size(text)
        if steps is None:
            return None
        current = ctx.values.get("current_size")
        if current is None or offered is None:
            return f"{steps:+d}"
        return resolve_size(steps, str(current), [*offered, str(current)])
    if offered and found not in offered:
        return None
    return found


def _sizes_speak(value: Any, ctx: SlotContext) -> str:
    sizes = value if isinstance(value, list | tuple) else [value]
    return say_list([say_size(str(s)) for s in sizes])


TYPES: tuple[SlotType, ...] = (
    SlotType("size", _size, _sizes_speak, hint="size"),
    # Set by actions only, and said in templates.
    SlotType("sizes", speak=_sizes_speak),
)
"""A size asked for, and the sizes on offer."""
