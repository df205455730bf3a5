"""Short answers: yes/no with hedges, ratings, and corrections ("no, I said 1003")."""

from __future__ import annotations

import re

from dialog.nlu.numbers import ORDER_DIGITS, digit_runs, number_value
from dialog.nlu.text import normalize

__all__ = ["is_backchannel", "is_correction", "leading_yes_no", "parse_rating", "parse_yes_no"]

_YES = {
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "yes sir", "sure", "ok", "okay", "alright",
    "all right", "please do", "go ahead", "of course", "absolutely", "definitely",
    "certainly", "correct", "right", "thats right", "thats correct", "i guess so", "i think so",
    "i guess", "why not", "sounds good", "that would be great", "that would be nice", "do it",
    "uh huh", "mhm", "mm hmm", "affirmative", "that works", "perfect", "great", "you bet",
    "sure thing", "send it", "text me", "i do", "thats fine", "fine", "yes please",
    "please go ahead", "it did", "it has", "it arrived", "i got it", "got it",
}  # fmt: skip
_NO = {
    "no", "nope", "nah", "no thanks", "no thank you", "not really", "dont", "do not",
    "i dont think so", "negative", "not now", "not right now", "no need", "not necessary",
    "im good", "im fine", "never mind", "nevermind", "dont bother", "no way", "i guess not",
    "i think not", "not today", "not yet", "thats wrong", "thats not right", "incorrect",
    "it didnt", "it hasnt", "it did not", "it has not",
}  # fmt: skip
_UNSURE = {
    "no problem", "no worries", "not sure", "im not sure", "i dont know", "dunno", "maybe",
    "thats okay", "thats ok", "thats alright", "i dont remember", "not bad", "no idea",
}  # fmt: skip
_NEGATORS = {"dont", "do not", "never"}
_POLITE = {"please", "thanks", "thank", "you", "oh", "um", "uh"}
_POLARITY = {p: True for p in _YES} | {p: False for p in _NO} | {p: None for p in _UNSURE}
_LONGEST_PHRASE = max(len(p.split()) for p in _POLARITY)
_FILLERS = {"um", "uh", "er", "erm", "ah", "oh", "well", "so", "hmm", "hm", "huh"}
# Answers that open an utterance; "great" or "fine" in the middle of a sentence answer nothing.
_LEADING = {"yes", "yeah", "yea", "yep", "yup", "ya", "yah", "sure", "ok", "okay", "alright",
            "no", "nope", "nah", "correct", "absolutely", "definitely", "right"}  # fmt: skip


def _phrases(words: list[str]) -> list[tuple[int, str]]:
    """Yes/no phrases in `words`, longest first at each position, with where each starts."""
    found = []
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST_PHRASE, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + size])
            if phrase in _POLARITY:
                found.append((i, phrase))
                i += size
                break
        else:
            i += 1
    return found


def parse_yes_no(text: str) -> bool | None:
    """Whether `text` answers yes (True), no (False), or neither (None).

    Hedges count ("I guess so", "not really"); when both are said the last one wins
    ("yeah, no" is no), and "no problem" or "not sure" decide nothing.
    """
    words = normalize(text).split()
    if "please" in words and set(words) <= _POLITE:
        return True  # a bare "please" answers yes; "please" inside a request does not
    answer: bool | None = None
    negated_until = -1  # "don't text me": a yes phrase right after "don't" is a no
    for start, phrase in _phrases(words):
        polarity = _POLARITY[phrase]
        if polarity and start == negated_until:
            polarity = False
        if phrase in _NEGATORS:
            negated_until = start + len(phrase.split())
        if polarity is not None:
            answer = polarity
    return answer


def leading_yes_no(text: str) -> bool | None:
    """The yes or no an utterance opens with ("no, I said 1003" → False), fillers skipped."""
    words = [w for w in normalize(text).split() if w not in _FILLERS]
    if not words or words[0] not in _LEADING:
        return None
    first = _phrases(words[:_LONGEST_PHRASE])
    if not first or first[0][0] != 0:
        return None
    return _POLARITY[first[0][1]]


# --- ratings ---------------------------------------------------------------------------------

_OUT_OF = re.compile(r"\b(\w+) (?:out of|outta|of|over|on a scale of) (\w+)\b")
_STARS = re.compile(r"\b(\w+) stars?\b")
_NOT_A_RATING = {"oh", "o", "to", "too", "for", "won", "ate"}
_AFTER_A_RATING = {
    "i", "please", "thanks", "thank", "maybe", "probably", "overall", "i guess", "then",
    "definitely", "for", "honestly", "really", "is", "id", "would", "because", "since", "but",
    "it", "its", "that", "though", "as",
}  # fmt: skip


def _small(word: str) -> int | None:
    if word in _NOT_A_RATING or word == "a":
        return None
    return number_value(word)


def parse_rating(text: str) -> int | None:
    """A 1-5 rating ("five", "a four", "three out of five", "4 stars").

    A rating on a ten-point scale is halved and rounded up ("ten out of ten" → 5, "seven out
    of ten" → 4), because callers answer "out of ten" out of habit. A lone number above five,
    or several different numbers, is not a rating.
    """
    clean = normalize(text).replace(" slash ", " out of ")
    clean = re.sub(r"\b(\d+) (\d+)\b", r"\1 out of \2", clean) if "/" in text else clean
    scaled = _OUT_OF.search(clean)
    if scaled:
        said, scale = _small(scaled.group(1)), _small(scaled.group(2))
        if said is not None and scale in (5, 10) and 0 < said <= scale:
            return said if scale == 5 else max(1, -(-said // 2))
    stars = _STARS.search(clean)
    if stars:
        said = _small(stars.group(1))
        if said is not None and 1 <= said <= 5:
            return said
    words = clean.split()
    said = [(i, v) for i, v in enumerate(_small(w) for w in words) if v is not None]
    if len({v for _, v in said}) != 1:
        return None
    i, value = said[-1]
    if i + 1 < len(words) and words[i + 1] not in _AFTER_A_RATING:
        return None  # "two orders", "five days": a count, not a rating
    return value if 1 <= value <= 5 else None


# --- corrections -----------------------------------------------------------------------------

_CORRECTION = re.compile(
    r"\b(i said|i meant|i mean|i meant to say|what i said|thats not what i said"
    r"|thats wrong|thats not right|thats not it|thats incorrect|not what i said|you misheard"
    r"|you heard wrong|you got it wrong|let me correct|correction|i misspoke|scratch that"
    r"|no wait|wait no|sorry i|let me repeat|i mean it|actually its|actually it is)\b"
)


def is_correction(text: str) -> bool:
    """Whether the caller is correcting what they said or what we understood."""
    clean = normalize(text)
    return bool(_CORRECTION.search(clean)) or _denies_a_number(clean.split())


def _denies_a_number(words: list[str]) -> bool:
    """ "not 1001, 1003" and "1006 not 1005": a number denied next to another one said."""
    runs = digit_runs(words)
    for i, word in enumerate(words):
        if word not in ("not", "isnt"):
            continue
        after = [r for r in runs if 0 < r.start - i <= 3]
        if after and (len(runs) > 1 or len(after[0].digits) == 2 * ORDER_DIGITS):
            return True
    return False


# What a listener says to show they are following, not to take the turn. "No", "wait",
# "stop" and any question are not among them: said over the agent, those do stop it.
# tiny.en writes a phone line's "uh-huh" as "uh-uh" as often as not, so that passes too:
# stopping the agent for a listener's "uh-huh" is the commoner mistake by far.
_BACKCHANNEL_WORDS = {
    "uh", "huh", "um", "mm", "mhm", "hmm", "hm", "mmm", "ah", "oh", "okay", "ok", "yeah",
    "yep", "yes", "right", "sure", "alright", "all", "got", "it", "i", "see", "cool", "great",
    "good", "fine", "thanks", "thank", "you",
}  # fmt: skip


def is_backchannel(text: str) -> bool:
    """Whether `text`, said while the agent talks, only shows the caller is listening
    ("uh-huh", "mm", "okay", "yeah, right", "I see") rather than taking the turn."""
    if "?" in text:
        return False
    words = normalize(text).split()
    return 0 < len(words) <= 4 and all(w in _BACKCHANNEL_WORDS for w in words)
