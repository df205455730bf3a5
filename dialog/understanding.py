"""Understanding what a caller said: intents, slots (order numbers, emails, phones, ZIP codes,
yes/no, return reasons, ratings, coupon codes, dates), corrections and distress.

Input is speech-to-text output, so everything here is tolerant of its noise: case and
punctuation are ignored, numbers come as digits, words or a mix ("ten oh one", "1-0-0-1",
"one double oh one", "10.05"), and intents are scored from weighted phrase patterns rather than
matched exactly. The pieces live in `dialog.nlu`; this module is the one the agent imports.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dialog.nlu.answers import (
    is_backchannel,
    is_correction,
    leading_yes_no,
    parse_rating,
    parse_yes_no,
)
from dialog.nlu.contacts import parse_email, parse_phone, parse_zip
from dialog.nlu.coupons import parse_coupon_code
from dialog.nlu.dates import parse_date
from dialog.nlu.intents import INTENTS, TASKS, IntentScores, canonical, score_intents
from dialog.nlu.numbers import (
    ORDER_DIGITS,
    digit_runs,
    parse_order_number,
    repair_digits,
    reshaped_order_numbers,
)
from dialog.nlu.reasons import RETURN_REASONS, parse_return_reason
from dialog.nlu.repair import (
    asks_about,
    asks_to_wait,
    corrected_part,
    corrects_something,
    denies_and_continues,
    is_cancel,
    is_greeting,
    is_question,
    is_unavailable,
    refers_back,
    refers_to_other,
    relative_phrases_removed,
    relative_size,
    speaks_other_language,
    wants_both,
)
from dialog.nlu.sounds_like import respell
from dialog.nlu.text import normalize
from dialog.sentiment import escalation_phrases, is_distressed, sentiment

__all__ = [
    "INTENTS",
    "ORDER_DIGITS",
    "RETURN_REASONS",
    "TASKS",
    "Understanding",
    "asks_about",
    "asks_to_wait",
    "classify",
    "corrected_part",
    "corrects_something",
    "denies_and_continues",
    "escalation_phrases",
    "is_backchannel",
    "is_cancel",
    "is_correction",
    "is_distressed",
    "is_greeting",
    "is_question",
    "is_unavailable",
    "match_item",
    "normalize",
    "number_taken_back",
    "parse_coupon_code",
    "parse_date",
    "parse_email",
    "parse_order_number",
    "parse_phone",
    "parse_rating",
    "parse_return_reason",
    "parse_yes_no",
    "parse_zip",
    "refers_back",
    "refers_to_other",
    "relative_phrases_removed",
    "relative_size",
    "repair_digits",
    "reshaped_order_numbers",
    "sentiment",
    "speaks_other_language",
    "unheard_order_number",
    "wants_both",
]


@dataclass(frozen=True)
class Understanding:
    """What one utterance means.

    `intent` is the one to act on (a request for a person wins, then the first request
    said), `score` how sure we are (0-1), `intents` every intent found in the order said
    ("where is my order and also I want to return the shoes" → order_status, return_request),
    and `requests` each with its own words when there are several.
    Slots are None when not said. `correction` says the caller is correcting something
    ("no, I said 1003"). `return_reason` is only read from returns, exchanges, refunds and
    damage reports, and `rating` only from an utterance that is no request.
    """

    intent: str
    score: float
    order_number: str | None = None
    yes_no: bool | None = None
    intents: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None
    zip: str | None = None
    return_reason: str | None = None
    rating: int | None = None
    correction: bool = False
    requests: tuple[tuple[str, str], ...] = ()


_ORDER_WORD = re.compile(r"\border\b|\bnumber\b")
_REASON_INTENTS = {"return_request", "exchange_request", "damaged_item", "refund_request"}


def _order_number(text: str) -> str | None:
    """The order number in `text`, also with look-alike digits read as digits ("order one
    near of near of three"): a run of at least three numbers that gives a whole order number,
    not one starting with a zero (that is part of a phone number or a ZIP code)."""
    number = parse_order_number(text)
    if number is None and (fixed := repair_digits(text)) != normalize(text):
        repaired = parse_order_number(fixed)
        number = repaired if repaired and not repaired.startswith("0") else None
    return number


def classify(text: str) -> Understanding:
    """The caller's intents in one utterance, with every slot value it carries."""
    part = corrected_part(text)
    corrected = _order_number(part) if part else None
    number = corrected or (None if number_taken_back(part) else _order_number(text))
    email, phone, zip_code = parse_email(text), parse_phone(text), parse_zip(text)
    # "order number 103": a number heard in another shape still names an order, where the
    # words say so (a ZIP "10001" is no order 1001)
    numbered = number is not None or (
        bool(_ORDER_WORD.search(normalize(text))) and bool(reshaped_order_numbers(text))
    )
    found = score_intents(text, has_number=numbered)
    if not (email or zip_code or phone):  # a contact detail is read as said, never respelled
        found = _sounds_like(text, found, has_number=numbered)
    intent = found.intent
    # Only a yes/no answer is read whole; elsewhere a "yes" counts where it opens the sentence.
    yes_no = parse_yes_no(text) if intent in ("yes", "no") else leading_yes_no(text)
    reason = parse_return_reason(text) if _REASON_INTENTS & set(found.intents) else None
    rating = None
    if intent == "unknown" and number is None:
        rating = parse_rating(text)
    return Understanding(
        intent=intent,
        score=found.score,
        order_number=number,
        yes_no=yes_no,
        intents=found.intents,
        email=email,
        phone=phone,
        zip=zip_code if number is None else None,
        return_reason=reason,
        rating=rating,
        correction=is_correction(text),
        # "check ten oh eight, actually make that ten oh seven" asks about one order
        requests=() if corrected else found.requests,
    )


_NOT_AN_ORDER = re.compile(r"\b(zip|zipcode|postal|post code|phone|email|mail)\b")


def number_taken_back(part: str | None) -> bool:
    """Whether what follows a correction cue is a number that did not come through ("ten oh
    one, sorry, timing one zero zero zero three"): the number before it was taken back, so it
    is not used, and the agent asks again. Not so where it names another kind of value ("…
    sorry, my zip is 94110") or holds no number ("…sorry, it's for my wife")."""
    if not part or _NOT_AN_ORDER.search(part):
        return False
    return any(3 <= len(run.digits) <= 5 for run in digit_runs(part.split()))


def unheard_order_number(words: str) -> str | None:
    """The digits of an order named whose number did not come through as one ("order one
    zero zero zero four": five digits, no order of the shop's shape), else None. A second
    order said so is a request of its own, whose number the agent asks for, never the first
    order's answer again."""
    if parse_order_number(words) is not None:
        return None
    clean = normalize(words)
    if not _ORDER_WORD.search(clean):
        return None
    runs = [run for run in digit_runs(clean.split()) if len(run.digits) >= 3]
    return runs[-1].digits if runs else None


def _sounds_like(text: str, found: IntentScores, *, has_number: bool) -> IntentScores:
    """The intents of the words with misheard key words put back ("can you just refine me"),
    a little less sure, when they say more than the words as heard: a request where nothing
    was understood, or a telling one where only a generic one was ("the status of my
    reference" is about a refund); else what was found."""
    respelled = respell(text)
    if respelled == canonical(text):
        return found
    again = score_intents(respelled, has_number=has_number)
    if again.intent == "unknown" or again.intent == found.intent:
        return found
    if found.intent != "unknown" and again.score < found.score + SOUNDS_LIKE_MARGIN:
        return found
    return dataclasses.replace(again, score=round(again.score * 0.8, 3))


SOUNDS_LIKE_MARGIN = 0.2
"""How much surer the respelled words must be to replace an intent the heard words gave."""


# --- which item ------------------------------------------------------------------------------

_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3}
_STOPWORDS = {"the", "a", "an", "my", "of", "and", "with", "for", "size", "one", "set"}


def _stem(word: str) -> str:
    """A crude singular, so "shirts" finds "shirt" and "earbud" finds "earbuds"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def match_item(text: str, names: Sequence[str], *, positions: bool = True) -> int | None:
    """Which of `names` the caller means ("the shirt", "the second one"), or None if unclear.
    Without `positions`, only by name ("quick question first" names nothing)."""
    tokens = normalize(text).split()
    for token in tokens if positions else ():
        if token in _ORDINALS and _ORDINALS[token] < len(names):
            return _ORDINALS[token]
    if positions and (
        re.search(r"\b(the|that) last\b|\blast (one|order|item|thing)\b", " ".join(tokens))
        and names
    ):
        return len(names) - 1  # "the last one", not "I moved last week"
    said = {_stem(t) for t in tokens}
    scores = []
    for name in names:
        words = {_stem(w) for w in normalize(name).split()} - _STOPWORDS
        scores.append(len(words & said))
    best = max(scores, default=0)
    if best == 0 or scores.count(best) > 1:
        return None
    return scores.index(best)
