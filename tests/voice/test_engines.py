"""The real speech engines on the bundled models (slow: loads tiny.en and the piper voice)."""

from pathlib import Path

import numpy as np
import pytest

from dialog.events import Hints
from voice.audio import mulaw_decode, mulaw_encode, read_wav
from voice.stt import WhisperTranscriber
from voice.tts import PiperSynthesizer, speech_chunks, split_sentences

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stt():
    return WhisperTranscriber()


@pytest.fixture(scope="module")
def tts():
    return PiperSynthesizer()


def phone(name: str) -> np.ndarray:
    """A clip as the server receives it: through µ-law."""
    return mulaw_decode(mulaw_encode(read_wav(CLIPS / f"{name}.wav")))


async def test_transcribes_a_caller_over_the_phone_line(stt):
    result = await stt.transcribe(phone("where_is_my_order"))
    assert "where is my order" in result.text.lower()
    assert 0 < result.confidence <= 1 and result.audio_ms > 1000


async def test_order_number_hint_keeps_every_digit(stt):
    hints = Hints(slot="order_number", prompt="Order number:", expect_dtmf=True)
    result = await stt.transcribe(phone("order_1003_spoken"), hints)
    digits = "".join(ch for ch in result.text if ch.isdigit())
    words = result.text.lower()
    assert digits == "1003" or ("one" in words and "three" in words)


@pytest.mark.parametrize("kind", ["silence", "hiss", "hum"])
async def test_no_words_invented_on_noise(stt, kind):
    rng = np.random.default_rng(7)
    n = 8000 * 2
    if kind == "silence":
        pcm = np.zeros(n, dtype=np.int16)
    elif kind == "hiss":
        pcm = (rng.normal(0, 300, n)).astype(np.int16)
    else:
        pcm = (np.sin(2 * np.pi * 60 * np.arange(n) / 8000) * 2000).astype(np.int16)
    result = await stt.transcribe(pcm)
    assert result.text == ""


async def test_speaks_at_telephone_rate(tts):
    text = "Your linen shirt shipped with UPS and should arrive tomorrow."
    audio = await tts.synthesize(text)
    assert audio.dtype == np.int16
    seconds = len(audio) / 8000
    assert 2.0 < seconds < 6.0
    assert np.abs(audio).max() > 3000
    assert await tts.synthesize(text) is audio  # said before: served from the cache


async def test_synthesized_speech_is_understood(stt, tts):
    audio = await tts.synthesize("Would you like me to text you the tracking link?")
    result = await stt.transcribe(mulaw_decode(mulaw_encode(audio)))
    assert "tracking link" in result.text.lower()


def test_a_long_sentence_is_spoken_clause_by_clause():
    text = (
        "UPS tried to deliver your desk lamp yesterday, but nobody was available to sign "
        "for it. UPS will try again tomorrow."
    )
    assert speech_chunks(text) == [
        "UPS tried to deliver your desk lamp yesterday,",
        "but nobody was available to sign for it.",
        "UPS will try again tomorrow.",
    ]


def test_short_sentences_and_short_clauses_stay_whole():
    assert speech_chunks("Okay, Maria. Your order shipped!") == [
        "Okay, Maria.",
        "Your order shipped!",
    ]
    # No cut leaves a clause of fewer than four words on either side.
    text = "Okay, so, well, I think we can do that for you today and tomorrow, Maria."
    assert speech_chunks(text) == [text]


def test_split_sentences_keeps_abbreviations():
    assert split_sentences("Hi Maria. Your order shipped! Is that all?") == [
        "Hi Maria.",
        "Your order shipped!",
        "Is that all?",
    ]
    assert split_sentences("Dr. Chen's order is here.") == ["Dr. Chen's order is here."]
    assert split_sentences("") == []
