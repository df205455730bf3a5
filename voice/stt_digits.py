"""The digits-only decode: a second reading of an utterance when the agent waits for a number.

tiny.en hears the agent's own voice say "one zero zero three" as "1003", but callers who do
not sound like it often come out as words that only rhyme with digits ("free", "high",
"nero"), and the number is gone from the transcript. When the hints say a number is expected
(`expects_digits`) and the transcript holds no digit and no value the dialog can read for the
question (`wants_digits`), `voice.stt` decodes the same encoder output again with every token
suppressed but digits, spaces, commas and hyphens (`digits_only_suppression`): the decoder can
then only write the number it most likely heard. Its digits are kept when the dialog reads a
value of the expected kind in them (`decode_digits`): "1, 1, 0" for a ZIP code is no better
than the words. That value is a guess the caller never saw written, so the transcript says it
is (`Transcript.digits_fallback`) and the dialog can read it back before acting on it.
"""

from __future__ import annotations

import re

from dialog.events import Hints

__all__ = [
    "DIGIT_SLOTS",
    "decode_digits",
    "digits_only_suppression",
    "expects_digits",
    "has_digit",
    "wants_digits",
]

DIGIT_SLOTS = frozenset({"order_number", "zip", "phone", "verification"})
"""The `Hints.slot`s answered with digits (`verification`, the second factor, is a ZIP code, a
phone number or an email address: an address the dialog reads is left as heard)."""

_KEPT = re.compile(r"[ ]?[0-9]+|[ ]?[,\-]")
"""The text of a token the digits-only decode may write."""

_MOST_TOKENS = 24
"""The digits-only decode's token budget: a phone number's eleven digits, each after a comma,
and two more; a decode that runs out of it is a loop ("1-0-0-0-0-0-0-0-0..."), and is dropped."""

_TIMESTAMPS = 1501  # Whisper's timestamp tokens, 0.00 to 30.00 s, after <|notimestamps|>


def expects_digits(hints: Hints | None) -> bool:
    """Whether the dialog asked for something said in digits."""
    return hints is not None and hints.slot in DIGIT_SLOTS


def has_digit(text: str) -> bool:
    """Whether the transcript already holds a digit (then it is left as heard)."""
    return any(c.isdigit() for c in text)


def wants_digits(text: str, hints: Hints | None) -> bool:
    """Whether a transcript should be decoded again in digits alone: a number was expected and
    it has no digit, nor words the dialog reads as the value ("one thousand and six", an
    email address at the second-factor question)."""
    from dialog.nlu import rescore

    return expects_digits(hints) and not has_digit(text) and rescore.fits(text, hints) < 2


def digits_only_suppression(tokenizer) -> list[int]:
    """Every token of a faster-whisper `Tokenizer`'s model but the digit, comma and hyphen
    tokens (each maybe after a space) and end-of-text: `suppress_tokens` for the decode."""
    kept = {i for i in range(tokenizer.eot) if _KEPT.fullmatch(tokenizer.decode([i]))}
    kept.add(tokenizer.eot)
    return [i for i in range(tokenizer.timestamp_begin + _TIMESTAMPS) if i not in kept]


def decode_digits(
    engine, encoded, prompt: list[int], budget: int, beam_size: int, hints: Hints
) -> str | None:
    """The digits an utterance's encoder output holds, decoded again in digits alone by a
    `voice.stt_models.Engine` with the first decode's prompt and token budget (at most
    `_MOST_TOKENS`); None where the dialog reads no value of the kind `hints` ask for in
    them, or it ran out of tokens."""
    from dialog.nlu import rescore

    budget = min(budget, _MOST_TOKENS)
    result = engine.model.model.generate(
        encoded,
        [prompt],
        beam_size=beam_size,
        max_length=len(prompt) + budget,
        suppress_blank=True,
        suppress_tokens=engine.digits_only,
        max_initial_timestamp_index=50,
    )[0]
    tokens = result.sequences_ids[0]
    text = engine.tokenizer.decode(tokens).strip(" ,-")
    return text if len(tokens) < budget and rescore.fits(text, hints) == 2 else None
