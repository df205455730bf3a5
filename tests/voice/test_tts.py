"""Text to speech on the bundled piper voice (slow: loads the voice, and tiny.en to listen)."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from voice.audio import mulaw_decode, mulaw_encode
from voice.pool import on_behalf_of
from voice.stt import WhisperTranscriber
from voice.tts import PiperOptions, PiperSynthesizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stt():
    return WhisperTranscriber()


async def test_one_sentence_comes_out_once_resampled_at_the_telephone_rate():
    tts = PiperSynthesizer(PiperOptions(threads=1))
    audio = await tts.synthesize("Your return label is on its way.")
    assert audio.dtype == np.int16
    assert 1.0 < len(audio) / 8000 < 4.0
    peak = int(np.abs(audio.astype(np.int32)).max())
    assert 20000 < peak <= 32767  # piper's full scale, no wrap-around on the way to int16


async def test_calls_speaking_at_once_each_get_their_own_words(stt):
    """Two workers synthesize at once; piper's phonemizer (espeak-ng) is not thread-safe, so
    this would mix sentences up if it were not serialised."""
    tts = PiperSynthesizer(PiperOptions(workers=2, threads=1))
    sentences = {
        "CA1": "Your linen shirt arrives tomorrow.",
        "CA2": "I have texted you the tracking link.",
        "CA3": "Would you like a refund or store credit?",
        "CA4": "Your order number is ten oh three.",
    }

    async def speak(call: str, text: str) -> np.ndarray:
        with on_behalf_of(call):
            return await tts.synthesize(text)

    audios = await asyncio.gather(*(speak(c, t) for c, t in sentences.items()))
    said = {call: _words(text) for call, text in sentences.items()}
    for call, audio in zip(sentences, audios, strict=True):
        heard = _words((await stt.transcribe(mulaw_decode(mulaw_encode(audio)))).text)
        # tiny.en slips on a word here and there; a mix-up would match another sentence best.
        closest = max(said, key=lambda other: len(heard & said[other]))
        assert closest == call, (sentences[call], heard)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))
