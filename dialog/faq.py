"""The shop's FAQ: answers to questions no procedure covers, from `faq.yaml` beside the flows.

An entry answers an utterance that holds every word of one of its `when` phrases, in any
order ("gift card*" matches "do you sell gift cards?"). When several entries match, the one
whose phrase has the most words wins, so "how long does a claim take" finds the claim entry
before the shipping one. A question that asks about the caller's own order ("when will my
order arrive?") is a request for a procedure, not an FAQ: `answers_over_request` says when an
FAQ answer should win over a recognised request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from dialog.schema import FaqEntry
from dialog.understanding import normalize

__all__ = ["answers_over_request", "match_faq", "match_faqs"]


@cache
def _phrase(phrase: str) -> tuple[re.Pattern[str], ...]:
    """One pattern per word; `word*` matches any ending, a plain word its plural too."""
    patterns = []
    for word in phrase.lower().split():
        stem = normalize(word.rstrip("*"))
        if not stem:
            continue
        for part in stem.split():
            ending = r"\w*" if word.endswith("*") else r"(s|es)?"
            patterns.append(re.compile(rf"\b{re.escape(part)}{ending}\b"))
    return tuple(patterns)


def match_faqs(text: str, entries: Sequence[FaqEntry]) -> list[FaqEntry]:
    """Every entry the utterance asks about, in the order asked ("do you have a store, and
    can I pay with PayPal?" is two)."""
    found: list[FaqEntry] = []
    for part in re.split(r"[.?!;]+|\band (?:also |can |do |does |is |are |what |how )", text):
        entry = match_faq(part, entries) if part.strip() else None
        if entry is not None and entry not in found:
            found.append(entry)
    if not found:
        whole = match_faq(text, entries)
        found = [whole] if whole is not None else []
    return found


def match_faq(text: str, entries: Sequence[FaqEntry]) -> FaqEntry | None:
    """The entry that answers `text`, or None."""
    clean = normalize(text)
    best: tuple[int, int, FaqEntry] | None = None
    for rank, entry in enumerate(entries):
        for phrase in entry.when:
            words = _phrase(phrase)
            if words and all(p.search(clean) for p in words):
                key = (len(words), -rank, entry)
                if best is None or key[:2] > best[:2]:
                    best = key
    return best[2] if best else None


_MINE = re.compile(
    r"\b(my (order|orders|package|parcel|delivery|refund|return|item|items|stuff|purchase|money"
    r"|code|coupon|account|card|\w+ order)|mine|i ordered|i bought|i got|i sent|ive sent"
    r"|i returned)\b"
)


def answers_over_request(text: str) -> bool:
    """Whether a question about the shop in general ("what's your return policy?", "how long
    does shipping take?") should get the FAQ's answer even though it names a procedure's
    words: it does not speak of the caller's own orders or items."""
    return not _MINE.search(normalize(text)) and not re.search(r"\d", normalize(text))
