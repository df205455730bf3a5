"""The words of conversation repair: corrections, cancelling, greetings, questions, references.

A caller corrects themselves ("ten oh one, no sorry, ten oh three"), calls something off
("forget it"), says hello to a call we placed, asks something the shop may not cover, or points
back at what was discussed ("the other one", "what about the sweater?"). These tell the agent
what kind of turn it is; the values themselves are found by the slot parsers, on the part of
the sentence that replaces what came before (`corrected_part`).
"""

from __future__ import annotations

import re

from dialog.nlu.text import normalize

__all__ = [
    "asks_about",
    "asks_to_wait",
    "corrected_part",
    "corrects_something",
    "denies_and_continues",
    "is_cancel",
    "is_greeting",
    "is_question",
    "is_unavailable",
    "refers_back",
    "refers_to_other",
    "relative_phrases_removed",
    "relative_size",
    "speaks_other_language",
    "wants_both",
]

# Where a caller replaces what they just said. The value after the last of these is the one
# they mean ("Thursday, no wait, Friday instead" → "friday instead").
_CUES = re.compile(
    r"\b(?:no sorry|sorry no|no wait|wait no|i mean|i meant|i meant to say"
    r"|actually make (?:that|it)|make (?:that|it)|actually|rather|scratch that|correction"
    r"|no i said|i said|no its|sorry its"
    r"|sorry|let me correct that|oops|or rather|instead of that|change (?:that|it) to"
    r"|not that one|no not that)\b"
)


def corrected_part(text: str) -> str | None:
    """What follows the caller's last correction cue, normalised; None when there is none or
    nothing follows it. "it's 94101, sorry, 94110" → "94110"."""
    clean = normalize(text)
    last = None
    for match in _CUES.finditer(clean):
        last = match
    if last is None:
        return None
    rest = clean[last.end() :].strip()
    return rest or None


_CANCEL = re.compile(
    r"\b(forget (it|that|about it)|never ?mind|cancel (that|it|this)|dont do (anything|that|it)"
    r"|dont bother|leave it|stop that|scrap that|dont (go ahead|change anything)"
    r"|not (now|yet|right now)|hold off)\b"
)


def is_cancel(text: str) -> bool:
    """Whether the caller calls off what is under way ("forget it", "don't do anything yet")."""
    return bool(_CANCEL.search(normalize(text)))


_MOMENT = r"(?:a |one |just a |just one )?(?:second|sec|moment|minute|min|bit|tick)"
_WAIT = re.compile(
    r"\b(?:wait|hold on|hang on|hold up|bear with me"
    rf"|(?:give me|gimme|wait|hold on|hang on) {_MOMENT}|{_MOMENT}(?: please)?"
    r"|let me (?:just )?(?:find|get|grab|check|look|look for|look it up|pull up|dig out|see)"
    r"|i need to (?:find|get|grab|check|look)|(?:im|i am) (?:just )?(?:looking|getting|finding"
    r"|checking|grabbing|pulling)"
    r")\b"
)
# What may be said around a request to wait and still ask nothing else ("hang on, let me find
# my order number", "um, one second, I'm getting the receipt").
_AROUND_WAIT = {
    "um", "uh", "er", "erm", "oh", "okay", "ok", "yeah", "yes", "sure", "sorry", "so", "well",
    "please", "just", "quick", "real", "i", "it", "that", "this", "them", "my", "the", "a", "for",
    "up", "out", "here", "there", "now", "number", "order", "zip", "zipcode", "code", "email",
    "receipt", "phone", "address", "confirmation", "details", "card", "account", "postal",
    "paperwork", "invoice", "still", "on", "to", "find", "get", "grab", "check", "look",
}  # fmt: skip


def asks_to_wait(text: str) -> bool:
    """Whether the caller only asks the agent to wait ("wait, hold on", "one second", "hang on,
    let me find my order number"): no question, no request, no value, nothing called off. Not
    a failed attempt to answer: the agent says it will wait and the question stands."""
    if "?" in text or is_cancel(text):
        return False
    clean = normalize(text)
    if not _WAIT.search(clean):
        return False
    rest = _WAIT.sub(" ", clean).split()
    return all(word in _AROUND_WAIT for word in rest)


_GREETING_WORDS = {"hello", "hi", "hey", "hiya", "yes", "yeah", "yep", "speaking", "who", "is",
                   "this", "whos", "calling", "sorry", "um", "uh", "oh", "there", "it", "the",
                   "what", "who s", "good", "morning", "afternoon", "evening", "please", "again",
                   "come", "pardon", "say", "that", "was", "are", "you"}  # fmt: skip
_GREETING_CORE = {"hello", "hi", "hey", "hiya", "who", "whos", "pardon", "speaking"}


_WHO = re.compile(
    r"\b(who is this|whos this|who is calling|whos calling|who am i (speaking|talking) (to|with)"
    r"|who are you|whats this about|what is this about|what is this call about)\b"
)


def is_greeting(text: str) -> bool:
    """A pick-up or a "who is this?": words that answer no question ("hello?", "yes, hello?",
    "sorry, the line cut out, who is calling?")."""
    clean = normalize(text)
    words = clean.split()
    if words and set(words) <= _GREETING_WORDS and set(words) & _GREETING_CORE:
        return True
    return bool(_WHO.search(clean))


_QUESTION_START = {
    "what", "whats", "when", "whens", "where", "how", "hows", "why", "who", "which", "do",
    "does", "did", "can", "could", "is", "are", "will", "would", "should", "may", "have",
    "has", "am", "any", "anything",
}  # fmt: skip
_FILLERS = {
    "um", "uh", "er", "oh", "well", "so", "hey", "hi", "okay", "ok", "yes", "yeah", "and",
    "also", "wait", "quick", "question", "sorry", "hmm", "hello", "then", "but",
}  # fmt: skip


def is_question(text: str) -> bool:
    """Whether the caller asks something ("do you sell gift cards?", "what time do you open")."""
    if "?" in text:
        return True
    words = [w for w in normalize(text).split() if w not in _FILLERS]
    return bool(words) and words[0] in _QUESTION_START


_OTHER = re.compile(r"\b(the |my )?other (one|order|item|thing|package|parcel)\b")


def refers_to_other(text: str) -> bool:
    """ "the other one", "my other order": the order that is not the one being discussed."""
    return bool(_OTHER.search(normalize(text)))


_BACK = re.compile(
    r"\b(it|them|that one|this one|that order|this order|the same one|those|these|that)\b"
)


def refers_back(text: str) -> bool:
    """Whether the caller points at what was just discussed ("can I return it?")."""
    return bool(_BACK.search(normalize(text)))


_ABOUT = re.compile(
    r"^(?:\w+ ){0,3}?(?:what|how) about\b|^(?:okay |ok |great |so |oh )*and (?:the|my)\b"
)


def asks_about(text: str) -> bool:
    """A follow-up that carries on the last topic about something else ("what about the other
    one?", "and the headphones?")."""
    return bool(_ABOUT.search(normalize(text)))


_BOTH = re.compile(r"\b(both (of )?(my |the )?(orders|of them|packages|parcels)|all (of )?my orders"
                   r"|both orders)\b")  # fmt: skip


def wants_both(text: str) -> bool:
    """ "where are both of my orders?": every order that fits, one after the other."""
    return bool(_BOTH.search(normalize(text)))


_BUSY = re.compile(
    r"\b(cant talk|can not talk|cannot talk|im driving|i am driving|bad time|not a good time"
    r"|call (me )?back later|in a meeting|im busy|i am busy|no time)\b"
)


def is_unavailable(text: str) -> bool:
    """The person we called cannot talk now ("sorry, I'm driving")."""
    return bool(_BUSY.search(normalize(text)))


_OTHER_LANGUAGE = re.compile(
    r"\b(spanish|espanol|español|habla|hablas|hablar|hola|french|francais|français|parlez"
    r"|german|deutsch|chinese|mandarin|cantonese|portuguese|portugues|vietnamese|korean"
    r"|tagalog|arabic|russian|italian|japanese|hindi|polish|another language"
    r"|other language|different language)\b"
)


def speaks_other_language(text: str) -> bool:
    """The caller asks for, or speaks, another language."""
    lowered = text.lower()
    return bool(_OTHER_LANGUAGE.search(lowered) or _OTHER_LANGUAGE.search(normalize(text)))


_DENY_PLUS = re.compile(
    r"^(?:(?:oh|um|uh|well|so) )*(?:no|nope|nah)\b(?! thanks\b| thank you\b)\s*(\w+ ){2,}"
)


_WRONG = re.compile(
    r"\b(?:wrong (?:order|one|number|item|package)|not (?:that|the right|my) (?:one|order|number)"
    r"|(?:thats|that is|its|it is) not (?:it|right|mine|my order|the one))\b"
)


def corrects_something(text: str) -> bool:
    """A "no" that corrects what the agent just said ("no, it's ten oh eight", "nope, wrong
    order"): never a goodbye, even when what follows it was not understood."""
    clean = normalize(text)
    if not re.match(r"^(?:(?:oh|um|uh|well|so) )*(?:no|nope|nah)\b", clean):
        return False
    return corrected_part(text) is not None or bool(_WRONG.search(clean))


def denies_and_continues(text: str) -> bool:
    """A "no" that goes on to say something ("no, I said it's too small, I need a large"):
    never a bare no."""
    return bool(_DENY_PLUS.match(normalize(text)))


_UP = re.compile(
    r"\b(too (small|tight|short|snug|narrow)|bigger|larger|a size up|one size up|size up"
    r"|next size up|runs small|up a size|a bit small|little small|tight|snug)\b"
)
_DOWN = re.compile(
    r"\b(too (big|large|loose|long|baggy|wide)|smaller|a size down|one size down|size down"
    r"|next size down|runs (big|large)|down a size|a bit big|little big|loose|baggy)\b"
)
_TWO = re.compile(r"\b(two|2) sizes\b")
_NOT_SIZE = re.compile(r"\b(not|no|dont want a|never) (a |one )?(too )?\w+(er|est)?\b")


def relative_size(text: str) -> int | None:
    """How many sizes up (+) or down (-) the caller wants ("too small" → +1, "two sizes
    smaller" → -2); None when they name no direction."""
    clean = _NOT_SIZE.sub(" ", normalize(text))  # "bigger, not smaller": not smaller
    up, down = _UP.search(clean), _DOWN.search(clean)
    if up and down:  # "it's too big, I need a smaller one": the last said wins
        direction = 1 if up.start() > down.start() else -1
    elif up:
        direction = 1
    elif down:
        direction = -1
    else:
        return None
    return direction * (2 if _TWO.search(clean) else 1)


def relative_phrases_removed(text: str) -> str:
    """`normalize(text)` without "too small", "a size up" and the like, so the sizes left are
    the ones named outright ("too small, I need a large" → "… i need a large")."""
    clean = normalize(text)
    return _DOWN.sub(" ", _UP.sub(" ", clean))
