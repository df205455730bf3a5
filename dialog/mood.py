"""Whether a caller is upset: `dialog.sentiment`'s score and phrases, plus the shop's own.

The policy file sets the score below which a caller counts as upset and may add phrases of
its own; the escalation flow decides what to do about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dialog.sentiment import escalation_phrases, sentiment

__all__ = ["Mood", "read_mood"]


@dataclass(frozen=True)
class Mood:
    """How one utterance sounds: its score, the escalation phrases in it, and the verdict."""

    score: float
    phrases: tuple[str, ...]
    upset: bool

    @property
    def reason(self) -> str | None:
        """Why the caller counts as upset ("phrase:lawyer", "sentiment"), or None."""
        if not self.upset:
            return None
        return f"phrase:{self.phrases[0]}" if self.phrases else "sentiment"


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower().replace("'", "")).strip() + " "


def read_mood(text: str, *, threshold: float = -0.6, phrases: Sequence[str] = ()) -> Mood:
    """Whether `text` sounds angry or distressed: a score at or below `threshold`, a phrase
    `dialog.sentiment` knows, or one of the shop's `phrases`."""
    score = sentiment(text)
    found = list(escalation_phrases(text))
    said = _words(text)
    for phrase in phrases:
        if _words(phrase).strip() and _words(phrase) in said and phrase not in found:
            found.append(phrase)
    return Mood(
        score=round(score, 3), phrases=tuple(found), upset=bool(found) or score <= threshold
    )
