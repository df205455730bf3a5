"""Key words heard as their neighbours, put back: "I want a reason" → "I want a refund".

Speech-to-text bends the words a request turns on into words that sound like them when the
voice is not one it knows: refund → "refine", send back → "hand back", person → "version",
address → "a dress". `respell` replaces a word by the key word it sounds like (the same
first sound and a close spelling, or the same sound code) and leaves every other word alone.
Understanding uses it only when nothing at all was understood from the words as heard, so a
clear sentence is never re-read; what it finds is still confirmed before anything is done.

    respell("can i get a refine")        # "can i get a refund"
"""

from __future__ import annotations

import functools
import re

import jellyfish
from rapidfuzz.distance import JaroWinkler

from dialog.nlu.text import normalize

__all__ = ["KEY_WORDS", "respell"]

KEY_WORDS = (
    "refund",
    "return",
    "exchange",
    "address",
    "person",
    "human",
    "agent",
    "representative",
    "operator",
    "delivery",
    "deliver",
    "delivered",
    "redeliver",
    "reschedule",
    "package",
    "parcel",
    "tracking",
    "coupon",
    "discount",
    "damaged",
    "broken",
    "cracked",
    "defective",
    "missing",
    "stolen",
    "shipped",
    "arrived",
    "order",
    "label",
    "late",
)
"""The words requests turn on (the intent patterns' telling words)."""

# Two-word slips no single word would catch.
_PHRASES = [
    (re.compile(r"\b(hand|bend|sand|spend|lend|tend|end|defend) (it |them |this )?back\b"),
     r"send \2back"),
    (re.compile(r"\b(mother|monkey|mummy) back\b"), "money back"),
    (re.compile(r"\b(got|been|was) locked\b"), r"\1 lost"),
    (re.compile(r"\b(a|the) dress\b"), "address"),
    (re.compile(r"\bre ?believe\b"), "redeliver"),
    (re.compile(r"\bthe active\b"), "defective"),
    (re.compile(r"\b(riff|rif|rip|ref) ?(on|and|at|with|in|it|fund)\b|\briffing\b"), "refund"),
    (re.compile(r"\bred deliver\b"), "redeliver"),
    (re.compile(r"\bthe liver(ed)?\b"), "delivered"),
    (re.compile(r"\breef ?(and|end|fund|on)\b"), "refund"),
    (re.compile(r"\bgroup ?on\b"), "coupon"),
    # "where is my order" in voices tiny.en does not know: "I wear it with my order",
    # "wherever it's my order", "I went with my order", "we are in my order"
    (
        re.compile(
            r"\b(wear|wearing|wherever|were|went|we are|when) "
            r"(it |its |is |it is |in |with |it with )*(my|the) (order|package|parcel)\b"
        ),
        r"where is \3 \4",
    ),
]  # fmt: skip

_NEIGHBOURS = {
    "reason": "refund",
    "reasons": "refund",
    "reference": "refund",
    "refine": "refund",
    "version": "person",
    "persona": "person",
    "rhythm": "refund",
    "effective": "defective",
    "refill": "refund",
    "racking": "tracking",
    "arrest": "address",
    "unrest": "address",
}
"""Words tiny.en writes for a key word that share too little spelling to be found by sound."""

_COMMON = {
    "reason", "about", "after", "again", "because", "before", "could", "would", "should",
    "there", "their", "think", "thing", "these", "those", "where", "which", "while", "other",
    "right", "really", "please", "thank", "thanks", "today", "yesterday",
}  # fmt: skip
"""Words too common to be a key word misheard, except where listed in KEY_WORDS."""

_MIN_SIMILARITY = 0.86


@functools.lru_cache(maxsize=4096)
def _key_word_for(word: str) -> str | None:
    if word in _NEIGHBOURS:
        return _NEIGHBOURS[word]
    if len(word) < 4 or word in KEY_WORDS or word in _COMMON:
        return None
    code = jellyfish.metaphone(word)
    best, best_score = None, 0.0
    for key in KEY_WORDS:
        if word[0] != key[0]:
            continue
        score = JaroWinkler.similarity(word, key)
        if code and code == jellyfish.metaphone(key):
            score = max(score, 0.95)
        if score > best_score:
            best, best_score = key, score
    return best if best_score >= _MIN_SIMILARITY else None


def respell(text: str) -> str:
    """`text` normalised, with words that sound like a key word replaced by it."""
    clean = normalize(text)
    for pattern, replacement in _PHRASES:
        clean = pattern.sub(replacement, clean)
    words = clean.split()
    return " ".join(_key_word_for(w) or w for w in words)
