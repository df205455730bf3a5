"""Whether the caller has finished: one prediction from every signal at once.

`TurnTaker` (turns.py) asks `EndOfTurn.over` at every silent frame inside an utterance. The
answer weighs, together:

- **the silence so far** (webrtcvad), against the waits of `TurnOptions`;
- **the speculative transcript** of what was said so far, when it is ready (`reading`): a
  whole answer to what was asked (an order number of four digits, a ZIP code of five, a yes
  or no, a rating, an email, a phone number, a coupon code) is *complete*; a request that
  reads as whole ("where is my order") is a *request*; some digits of a number still being
  read out, or a sentence that trails off ("my order number is…", "and also…", "um") are
  *unfinished*;
- **what the agent asked** (`Hints.slot`): a digit string invites pauses between groups, so
  a partial one is held; a short answer may end sooner;
- **the caller's own pace** in this call (`Pace`): the longest pause this caller has made
  and then gone on (inside an utterance, or just after a turn we ended too soon) — a caller
  who thinks for a second between words gets that second, plus a margin, wherever the
  transcript cannot tell (a sentence that may or may not go on; not a whole answer or
  request, which would then wait that long every time).

Each technique has a setting that turns it off and gives back the rule before it
(`PredictorOptions`): `complete_end_of_turn_ms`, `request_end_of_turn_ms` (0: off),
`hold_partial_digits`, `pace` (False: off). The acoustic model (Smart Turn) is not among the
signals: on 8 kHz phone audio it scored as chance (README "Acoustic end of turn").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Literal

from dialog.events import Hints
from dialog.slots.numbers import whole_code
from dialog.understanding import (
    classify,
    is_backchannel,
    parse_email,
    parse_order_number,
    parse_phone,
    parse_rating,
    parse_yes_no,
    parse_zip,
)
from voice.settings import setting_default

__all__ = [
    "LONG_ANSWERS",
    "SHORT_ANSWERS",
    "EndOfTurn",
    "Pace",
    "PredictorOptions",
    "Reading",
    "TurnOptions",
    "reading",
    "sounds_finished",
]

Reading = Literal["complete", "request", "opening", "partial", "unfinished", "finished", "nothing"]
"""What a transcript so far says about the turn (see `reading`)."""

# A sentence that ends on one of these was cut short, whatever Whisper's punctuation says.
_DANGLING = frozenset(
    {
        "a", "about", "also", "an", "and", "any", "are", "at", "because", "but", "by", "for",
        "from", "i", "i'm", "is", "it's", "my", "number", "of", "on", "or", "so", "than",
        "that", "the", "their", "then", "to", "uh", "um", "er", "erm", "if", "in", "like",
        "was", "we", "were", "with", "your",
    }
)  # fmt: skip

# Phrases whose last word dangles elsewhere ("put me on…") but that are said whole.
_WHOLE_PHRASES = [["hold", "on"], ["hang", "on"], ["go", "on"], ["carry", "on"]]

# Slots whose answer is read out digit by digit, and how to tell a whole one.
_DIGIT_SLOTS = {
    "order_number": parse_order_number,
    "order_choice": parse_order_number,
    "zip": parse_zip,
    "phone": parse_phone,
}
_WHOLE = {
    **_DIGIT_SLOTS,
    "email": parse_email,
    "yes_no": parse_yes_no,
    "rating": parse_rating,
}
# "I'm calling about order 1003", "it's regarding my refund": the caller names what the call is
# about, which reads as a request to `classify` (an order and its number), and goes on to say
# what they want ("…, and order 1004", "…, it never came").
_ANNOUNCES_TOPIC = re.compile(
    r"\b(?:call(?:ing|ed)?|ringing|phoning|here|this is|it's|it is)\s+(?:about|regarding)\b"
    r"|^\s*(?:regarding|about)\b"
)
_DIGIT_WORDS = re.compile(
    r"\d|\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|double|triple)\b"
)


def sounds_finished(text: str) -> bool:
    """Whether a transcript reads like a whole sentence: it does not trail off (",", "...",
    "-") and its last word can end one. (tiny.en often leaves the final full stop out, so
    punctuation alone would say too little.)"""
    text = text.strip()
    if not text or text.endswith((",", "...", "-", ";", ":", "…")):
        return False
    words = re.findall(r"[a-z0-9']+", text.lower())
    if words[-2:] in _WHOLE_PHRASES:
        return True  # "wait, hold on": said whole, though "on" may dangle elsewhere
    return bool(words) and words[-1] not in _DANGLING


def reading(text: str, hints: Hints | None) -> Reading:
    """What the transcript of the turn so far says, given what the agent asked:

    - "complete": a whole answer of the kind asked for (`_WHOLE`), not trailing off;
    - "request": asked nothing in particular, a whole sentence that asks for something
      (an intent `dialog.understanding.classify` recognises), not a bare "okay", nor one
      that only names what the call is about ("I'm calling about order 1003": "finished");
    - "opening": asked nothing in particular, a word or two that ask for nothing ("Hi.",
      "So."): callers start so and go on;
    - "partial": holds some digits of a number asked for, and not all of them;
    - "unfinished": trails off;
    - "finished": reads as a sentence, nothing more is known;
    - "nothing": no words (a cough).
    """
    if not re.search(r"[a-z0-9]", text.lower()):
        return "nothing"
    finished = sounds_finished(text)
    slot = hints.slot if hints is not None else None
    whole = _WHOLE.get(slot or "")
    if slot == "coupon_code":  # a known code, or one said like a code, whose number is whole
        known = hints.vocabulary if hints is not None else ()
        whole = partial(whole_code, known=known)
    if whole is not None:
        if whole(text) is not None:
            return "complete" if finished or slot in _DIGIT_SLOTS else "unfinished"
        if slot in _DIGIT_SLOTS and _DIGIT_WORDS.search(text.lower()):
            return "partial"  # "one zero …": the rest of the number is coming
    if not finished:
        return "unfinished"
    if slot is None and not is_backchannel(text):
        meant = classify(text)
        asks = meant.intent not in ("unknown", "yes", "no") and meant.score >= 0.5
        if asks and not _ANNOUNCES_TOPIC.search(text.lower()):
            return "request"
        if len(re.findall(r"[a-z0-9']+", text.lower())) <= 2:
            return "opening"  # "Hi.", "So.", "Um." heard as "Some.": how people begin
    return "finished"


@dataclass(frozen=True)
class TurnOptions:
    """Turn-taking settings (the `VAD_*` settings).

    Attributes:
        pause_ms: silence after which what was said so far is transcribed (0: never).
        quick_end_of_turn_ms: silence that ends a short answer (`SHORT_ANSWERS`) whose
            transcript is ready and sounds finished (0 or >= end_of_turn_ms: never early).
        end_of_turn_ms: silence that ends a turn.
        long_answer_end_of_turn_ms: silence that ends a turn when a long answer is expected.
        unfinished_end_of_turn_ms: silence that ends a turn whose transcript trails off
            (0 or no more than the others: never held).
    """

    pause_ms: int = setting_default("vad_pause_ms")
    quick_end_of_turn_ms: int = setting_default("vad_quick_end_of_turn_ms")
    end_of_turn_ms: int = setting_default("vad_end_of_turn_ms")
    long_answer_end_of_turn_ms: int = setting_default("vad_long_answer_end_of_turn_ms")
    unfinished_end_of_turn_ms: int = setting_default("vad_unfinished_end_of_turn_ms")

    @property
    def longest_ms(self) -> int:
        """The most silence any turn waits for (the segmenter's own end of turn)."""
        return max(
            self.end_of_turn_ms, self.long_answer_end_of_turn_ms, self.unfinished_end_of_turn_ms
        )


@dataclass(frozen=True)
class PredictorOptions:
    """The end-of-turn predictor's techniques; each off gives back the rule before it.

    Attributes:
        complete_end_of_turn_ms: silence that ends a turn whose transcript is a whole answer
            to what was asked (0: off).
        request_end_of_turn_ms: silence that ends an answer to an open question that reads
            as a whole request; with it, a word or two that ask for nothing ("Hi.", "So.")
            are held like a sentence that trails off (0: off, both).
        hold_partial_digits: a number asked for and only partly read is held like a sentence
            that trails off (False: the long-answer wait alone).
        pace: learn this caller's pauses and wait them out where the transcript cannot tell
            (False: the fixed waits).
        pace_margin_ms: added to the caller's longest pause.
    """

    complete_end_of_turn_ms: int = setting_default("turn_complete_end_of_turn_ms")
    request_end_of_turn_ms: int = setting_default("turn_request_end_of_turn_ms")
    hold_partial_digits: bool = setting_default("turn_hold_partial_digits")
    pace: bool = setting_default("turn_pace")
    pace_margin_ms: int = 200

    @classmethod
    def off(cls) -> PredictorOptions:
        """Every technique off: the silence waits and the trailing-off hold alone."""
        return cls(0, 0, hold_partial_digits=False, pace=False)


# `Hints.slot` values whose answers are read out in pieces.
LONG_ANSWERS = frozenset(
    {
        "order_number",
        "order_choice",
        "zip",
        "email",
        "phone",
        "verification",
        "street",
        "city",
        "coupon_code",
    }
)

# `Hints.slot` values whose answers are a word or two: they may end early.
SHORT_ANSWERS = frozenset({"yes_no", "rating", "size", "choice"})

PACE_MIN_PAUSE_MS = 200  # shorter silences between words are not a pause in speaking
PACE_RESUME_MS = 1500  # a caller who goes on within this after a turn ended was not done


class Pace:
    """This caller's pauses: the longest silence they made and then went on in the same
    utterance, and any turn we ended that they went on with (too soon, by that much)."""

    def __init__(self) -> None:
        self.longest_ms = 0
        self.pauses = 0

    def paused(self, silent_ms: int) -> None:
        """The caller went on after `silent_ms` of silence."""
        if silent_ms >= PACE_MIN_PAUSE_MS:
            self.pauses += 1
            self.longest_ms = max(self.longest_ms, silent_ms)

    def wait_ms(self, margin_ms: int) -> int:
        """The silence this caller needs before we can say they stopped (0: nothing known)."""
        return self.longest_ms + margin_ms if self.pauses else 0


class EndOfTurn:
    """One per call: after so much silence inside an utterance, is the caller's turn over?"""

    def __init__(self, options: TurnOptions, predictor: PredictorOptions | None = None) -> None:
        self.options = options
        self.predictor = predictor or PredictorOptions()
        self.pace = Pace()

    def usual_ms(self, hints: Hints | None) -> int:
        """The plain silence that ends a turn, given what the agent expects."""
        if hints is not None and hints.slot in LONG_ANSWERS:
            return self.options.long_answer_end_of_turn_ms
        return self.options.end_of_turn_ms

    def over(self, silent_ms: int, hints: Hints | None, text: str | None, pending: bool) -> bool:
        """After `silent_ms` of silence: whether the turn is over. `text` is the transcript
        of the turn so far when it is ready (else None); `pending`, that it is being made."""
        o, p = self.options, self.predictor
        slot = hints.slot if hints is not None else None
        usual = self.usual_ms(hints)
        longest = max(o.unfinished_end_of_turn_ms, usual)  # a held turn waits this, at most
        paced = self.pace.wait_ms(p.pace_margin_ms) if p.pace else 0
        patient = min(max(usual, paced), longest)  # where the transcript cannot tell
        if text is None:
            # Waiting for the transcript costs the reply nothing: it waits for it anyway.
            return silent_ms >= (longest if pending else patient)
        said = reading(text, hints)
        complete_ms, request_ms = p.complete_end_of_turn_ms, p.request_end_of_turn_ms
        if said == "complete" and complete_ms and silent_ms >= complete_ms:
            return True
        # Not held for this caller's pace: every later request would wait their longest pause.
        if said == "request" and request_ms and silent_ms >= request_ms:
            return True
        quick = o.quick_end_of_turn_ms
        if quick and silent_ms >= quick and slot in SHORT_ANSWERS and sounds_finished(text):
            return True
        held = said == "unfinished"
        held |= said == "partial" and p.hold_partial_digits
        held |= said == "opening" and bool(request_ms)  # reading open answers, both ways
        if held:
            return silent_ms >= longest
        if said == "nothing":
            return silent_ms >= usual
        return silent_ms >= patient
