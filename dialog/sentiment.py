"""Anger and distress in what a caller says: a lexicon score plus phrases that mean "escalate".

VADER scores the words (-1 very negative to 1 very positive); on top of it, phrases such as
"real person", "lawyer", "this is the third time" or swearing say a caller wants out of the
automated line whatever the score. Repeated misunderstanding is counted by the agent, which
passes it in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from dialog.nlu.text import normalize

__all__ = [
    "DISTRESS_THRESHOLD",
    "Mood",
    "escalation_phrases",
    "is_distressed",
    "read_mood",
    "sentiment",
]

DISTRESS_THRESHOLD = -0.5
"""A compound sentiment at or below this is distress on its own."""

_MISUNDERSTANDINGS = 2
"""This many turns in a row the agent did not understand is distress too."""

# name → pattern on normalised text; the name is what `escalation_phrases` reports.
_PHRASES: dict[str, str] = {
    "real person": r"real (person|human|people)|live (person|agent)|actual (person|human)"
    r"|talk to (a )?(human|person|someone)|speak to (a )?(human|person|someone)",
    "manager": r"manager|supervisor",
    "lawyer": r"lawyers?|attorneys?|legal action|my solicitor",
    "sue": r"sue|suing|court|small claims",
    "report": r"better business bureau|bbb|report you|consumer protection",
    "chargeback": r"chargeback|charge back|dispute (the|this) charge|call my bank",
    "cancel account": r"cancel (my|the) (account|membership|subscription)|close my account",
    "ridiculous": r"ridiculous|unacceptable|outrageous|absurd|insane|pathetic|useless"
    r"|incompetent|joke|worst|terrible|horrible|awful|disgusting|scam|rip ?off|fraud",
    "repeated": r"(third|fourth|fifth|3rd|4th|5th|\w+ times?) (time|call)|(called|calling|call)"
    r" (\w+ ){0,2}(times|again)|keep (calling|telling|asking|saying)|already (told|said|explained)"
    r"|for the last time|how many times|over and over|again and again",
    "not listening": r"(not|arent|you dont|youre not) (listening|understanding|getting it)"
    r"|you dont understand|stupid (machine|robot|bot|thing)|listen to me",
    "swearing": r"damn|dammit|hell|crap|shit\w*|fuck\w*|bullshit|ass|asshole|bastard|bloody"
    r"|piss\w*|wtf",
    "upset": r"(so|very|really|extremely) (angry|upset|frustrated|mad|annoyed|disappointed)"
    r"|fed up|sick (of|and tired)|had enough|im furious|furious",
}
_COMPILED = {name: re.compile(rf"\b({pattern})\b") for name, pattern in _PHRASES.items()}


@cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of `text`: -1 (very negative) to 1 (very positive)."""
    if not text.strip():
        return 0.0
    return float(_analyzer().polarity_scores(text)["compound"])


def escalation_phrases(text: str) -> list[str]:
    """The escalation signals in `text` ("real person", "lawyer", "swearing", ...), in order."""
    clean = normalize(text)
    return [name for name, pattern in _COMPILED.items() if pattern.search(clean)]


def is_distressed(text: str, misunderstandings: int = 0) -> bool:
    """Whether the caller sounds angry or distressed enough that a person should take over.

    Any escalation phrase, a compound sentiment at or below `DISTRESS_THRESHOLD`, or
    `misunderstandings` turns in a row the agent could not understand (two or more).
    """
    if misunderstandings >= _MISUNDERSTANDINGS:
        return True
    return bool(escalation_phrases(text)) or sentiment(text) <= DISTRESS_THRESHOLD


@dataclass(frozen=True)
class Mood:
    """How an utterance sounds: the sentiment score, the escalation phrases, and the verdict.

    `reason` names what made the caller count as upset: the first escalation phrase found,
    or "sentiment" when the score alone did; None when they are not upset.
    """

    score: float
    phrases: tuple[str, ...]
    upset: bool
    reason: str | None


def read_mood(
    text: str, *, threshold: float = DISTRESS_THRESHOLD, phrases: Iterable[str] = ()
) -> Mood:
    """Read `text` for distress, with a shop's own `phrases` (policy) on top of ours."""
    clean = normalize(text)
    found = escalation_phrases(text)
    for phrase in phrases:
        said = normalize(phrase)
        if said and said not in found and re.search(rf"\b{re.escape(said)}\b", clean):
            found.append(said)
    score = sentiment(text)
    if found:
        return Mood(score, tuple(found), True, found[0])
    if score <= threshold:
        return Mood(score, (), True, "sentiment")
    return Mood(score, (), False, None)
