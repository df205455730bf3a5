"""When the caller's turn is over, and a transcript ready the moment it is.

A caller's turn ends after a stretch of silence; waiting for it and only then transcribing
costs both. `TurnTaker` starts transcribing at a short pause (the segmenter's `Pause`, a
quarter of a second), while the caller may still go on: if they stay silent, that transcript
*is* the turn's, and nothing is transcribed again; if they speak, it is dropped (cancelled
while queued, ignored if already running).

A ready transcript also lets a short answer end sooner: when the agent asked a yes/no
question (or for a rating, a size, one of a few options) and, after `quick_end_of_turn_ms` of
silence, the transcript reads like a finished answer (it does not trail off on "and", "my",
"the", a comma, …), waiting the full `end_of_turn_ms` tells us little more. Only then: with
the pauses inside 102 caller clips stretched to 500 ms, ending any turn early after a
finished-looking sentence cut 44-62 % of them in two, against 4 % for the plain 600 ms
(README "Latency and capacity"). When the agent expects a long answer (an order number,
an email, a ZIP code, …) callers reading it out pause between groups, so those turns get
`long_answer_end_of_turn_ms`.

The other way round, a turn whose transcript trails off ("I'd like to return the…", "and
also…", "um") is not over when the usual silence has passed: callers pause mid-sentence to
think, and answering each half on its own is worse than waiting. Such a turn is held up to
`unfinished_end_of_turn_ms` for the caller to go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from dialog.events import Hints
from voice.stt import Transcript
from voice.vad import Pause, Utterance

__all__ = ["LONG_ANSWERS", "SHORT_ANSWERS", "TurnOptions", "TurnTaker", "sounds_finished"]

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

# `Hints.slot` values whose answers are a word or two: they may end early (see above).
SHORT_ANSWERS = frozenset({"yes_no", "rating", "size", "choice"})

# A sentence that ends on one of these was cut short, whatever Whisper's punctuation says.
_DANGLING = frozenset(
    [
        "a",
        "about",
        "also",
        "an",
        "and",
        "any",
        "are",
        "at",
        "because",
        "but",
        "by",
        "for",
        "from",
        "i",
        "i'm",
        "is",
        "it's",
        "my",
        "number",
        "of",
        "on",
        "or",
        "so",
        "than",
        "that",
        "the",
        "their",
        "then",
        "to",
        "uh",
        "um",
        "er",
        "erm",
        "if",
        "in",
        "like",
        "was",
        "we",
        "were",
        "with",
        "your",
    ]
)


def sounds_finished(text: str) -> bool:
    """Whether a transcript reads like a whole sentence: it does not trail off (",", "...",
    "-") and its last word can end one. (tiny.en often leaves the final full stop out, so
    punctuation alone would say too little.)"""
    text = text.strip()
    if not text or text.endswith((",", "...", "-", ";", ":")):
        return False
    words = re.findall(r"[a-z0-9']+", text.lower())
    return bool(words) and words[-1] not in _DANGLING


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

    pause_ms: int = 240
    quick_end_of_turn_ms: int = 480
    end_of_turn_ms: int = 600
    long_answer_end_of_turn_ms: int = 800
    unfinished_end_of_turn_ms: int = 1500

    @property
    def longest_ms(self) -> int:
        """The most silence any turn waits for (the segmenter's own end of turn)."""
        return max(
            self.end_of_turn_ms, self.long_answer_end_of_turn_ms, self.unfinished_end_of_turn_ms
        )


Transcribe = Callable[[np.ndarray, Hints | None], Awaitable[Transcript]]


@dataclass
class _Guess:
    task: asyncio.Task
    samples: int
    speech_end_ms: int
    hints: Hints | None
    held: bool = False


class TurnTaker:
    """One per call: runs the speculative transcription and says when the turn is over."""

    def __init__(self, options: TurnOptions, transcribe: Transcribe) -> None:
        self.options = options
        self._transcribe = transcribe
        self._guess: _Guess | None = None
        self.started = 0  # speculative transcriptions started
        self.dropped = 0  # ... dropped because the caller went on
        self.used = 0  # ... that became the turn's transcript
        self.held = 0  # turns held past the usual silence because they trailed off

    def paused(self, pause: Pause, hints: Hints | None) -> None:
        """The caller paused: transcribe what they said so far, in the background."""
        if not self.options.pause_ms:
            return
        self.spoke()
        task = asyncio.get_running_loop().create_task(self._transcribe(pause.pcm, hints))
        self._guess = _Guess(task, len(pause.pcm), pause.speech_end_ms, hints)
        self.started += 1

    def spoke(self) -> None:
        """The caller went on speaking: what was being transcribed is not the turn."""
        guess, self._guess = self._guess, None
        if guess is not None:
            self.dropped += 1
            _drop(guess.task)

    def end_of_turn_ms(self, hints: Hints | None) -> int:
        """The silence that ends a turn, given what the agent expects."""
        if hints is not None and hints.slot in LONG_ANSWERS:
            return self.options.long_answer_end_of_turn_ms
        return self.options.end_of_turn_ms

    def turn_over(self, silent_ms: int, hints: Hints | None) -> bool:
        """After `silent_ms` of silence inside an utterance: is the caller's turn over?"""
        usual = self.end_of_turn_ms(hints)
        if silent_ms >= usual:
            return not self._unfinished(silent_ms, usual)
        quick = self.options.quick_end_of_turn_ms
        if not quick or silent_ms < quick or hints is None or hints.slot not in SHORT_ANSWERS:
            return False
        ready = self.ready()
        return ready is not None and sounds_finished(ready.text)

    def _unfinished(self, silent_ms: int, usual: int) -> bool:
        """Whether to wait on past the usual end of turn: the transcript of what was said so
        far trails off, or is still being made, and the longer wait has not run out. Waiting
        for that transcript costs the reply nothing: it is the turn's own, which the reply
        would wait for anyway."""
        longest = self.options.unfinished_end_of_turn_ms
        guess = self._guess
        if longest <= usual or silent_ms >= longest or guess is None:
            return False
        if not guess.task.done():
            return True
        ready = self.ready()
        if ready is None or not ready.text.strip() or sounds_finished(ready.text):
            return False  # nothing heard (a cough) is nothing to wait for
        if not guess.held:
            guess.held = True
            self.held += 1
        return True

    def ready(self) -> Transcript | None:
        """The speculative transcript, if it has finished well."""
        guess = self._guess
        if guess is None or not guess.task.done() or guess.task.cancelled():
            return None
        if guess.task.exception() is not None:
            return None
        return guess.task.result()

    def take(self, utterance: Utterance, hints: Hints | None) -> asyncio.Task | None:
        """The transcription of exactly this utterance with these hints, if one is running or
        done (the caller now owns it); any other speculative work is dropped."""
        guess, self._guess = self._guess, None
        if guess is None:
            return None
        same = (
            guess.samples == len(utterance.pcm)
            and guess.speech_end_ms == utterance.speech_end_ms
            and guess.hints is hints
        )
        if not same:
            self.dropped += 1
            _drop(guess.task)
            return None
        self.used += 1
        return guess.task

    def close(self) -> None:
        """The call is over: drop what is still running."""
        self.spoke()


def _drop(task: asyncio.Task) -> None:
    if task.done():
        with contextlib.suppress(BaseException):
            task.exception()  # retrieved: a failed guess is nobody's error
    else:
        task.cancel()
