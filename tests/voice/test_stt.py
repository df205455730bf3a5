"""Speech to text: the encoder window chosen per utterance, and what tiny.en hears in it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

from dialog.events import Hints
from voice.audio import mulaw_decode, mulaw_encode, read_wav
from voice.pool import on_behalf_of
from voice.stt import WhisperOptions, WhisperTranscriber, _compression_ratio
from voice.vad import Segmenter, Utterance

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_WORDS = {word: str(i) for i, word in enumerate(_NUMBERS)}


@pytest.mark.parametrize(
    ("seconds", "window"), [(1.5, 15), (10.9, 15), (11.5, 20), (16.0, 20), (20.0, 30), (45.0, 30)]
)
def test_an_utterance_gets_the_shortest_window_with_room_after_it(seconds, window):
    assert WhisperOptions().window_for(seconds) == window


def test_whispers_own_window_only_when_asked():
    assert WhisperOptions(windows_s=(30,)).window_for(1.0) == 30


def test_repetition_is_what_the_compression_ratio_catches():
    assert _compression_ratio("Yes, please. " * 8) > 2.4
    assert _compression_ratio("It's order one, zero, zero, three.") < 2.4


async def test_line_silence_is_nothing_without_waking_the_model():
    stt = WhisperTranscriber(WhisperOptions(model_dir=Path("/nonexistent-model")))
    result = await stt.transcribe(np.zeros(8000, dtype=np.int16))
    assert result.text == "" and result.audio_ms == 1000


# --- the real model -----------------------------------------------------------------------------


def as_the_server_hears(name: str) -> np.ndarray:
    """A clip through µ-law, cut by the segmenter into the one utterance the server decodes."""
    pcm = mulaw_decode(mulaw_encode(read_wav(CLIPS / f"{name}.wav")))
    pcm = np.concatenate([np.zeros(4000, np.int16), pcm, np.zeros(12000, np.int16)])
    segmenter = Segmenter()
    utterances = [
        event
        for i in range(len(pcm) // 160)
        for event in segmenter.feed(pcm[i * 160 : (i + 1) * 160], i * 20)
        if isinstance(event, Utterance)
    ]
    assert len(utterances) == 1
    return utterances[0].pcm


def digits(text: str) -> str:
    words = re.findall(r"[a-z]+|\d", text.lower())
    return "".join(_DIGIT_WORDS.get(w, w) for w in words if w.isdigit() or w in _DIGIT_WORDS)


@pytest.fixture(scope="module")
def stt():
    transcriber = WhisperTranscriber()
    transcriber.warm()
    return transcriber


@pytest.mark.slow
@pytest.mark.parametrize(
    ("clip", "number", "hints"),
    [
        ("order_1001_spoken", "1001", None),
        ("order_1003_spoken", "1003", Hints(slot="order_number", prompt="Order number:")),
        ("order_1234_spoken", "1234", None),
        ("order_1235_spoken", "1235", None),
        ("zip_10001_spoken", "10001", Hints(slot="zip", prompt="ZIP code:")),
        ("zip_94110_spoken", "94110", Hints(slot="zip", prompt="ZIP code:")),
    ],
)
async def test_numbers_read_out_survive_the_short_window(stt, clip, number, hints):
    pcm = as_the_server_hears(clip)
    assert stt.options.window_for(len(pcm) / 8000) == 15
    result = await stt.transcribe(pcm, hints)
    assert digits(result.text) == number, result.text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("clip", "words"),
    [
        ("where_is_my_order", "order"),
        ("wheres_my_package", "where is my package"),
        ("talk_to_person", "talk to a real person"),
        # tiny.en's int8 decode differs by CPU: "ear buds", "earbuds" or "ear bug" (this
        # machine); the dialog matches the item either way.
        ("return_earbuds", "return my ear"),
        ("coupon_not_working", "coupon"),
        ("refund_instead", "refund"),
        ("changed_my_mind", "changed my mind"),
        ("reschedule_delivery", "reschedule my delivery"),
        ("yes_please", "yes"),
        ("no_thanks", "no"),
    ],
)
async def test_what_callers_say_in_the_scenarios_is_heard(stt, clip, words):
    result = await stt.transcribe(as_the_server_hears(clip))
    assert words in result.text.lower(), result.text


@pytest.mark.slow
async def test_a_long_utterance_gets_a_longer_window_and_keeps_every_part(stt):
    clips = ("wheres_my_package", "return_earbuds", "talk_to_person", "order_1001_spoken")
    pcm = np.concatenate([as_the_server_hears(clip) for clip in clips])
    assert stt.options.window_for(len(pcm) / 8000) == 20
    text = (await stt.transcribe(pcm)).text.lower()
    assert "package" in text and "return my" in text and "real person" in text, text
    assert "order number" in text, text


@pytest.mark.slow
async def test_calls_transcribing_at_once_each_get_their_own_words(stt):
    async def hear(call: str, clip: str) -> str:
        with on_behalf_of(call):
            return (await stt.transcribe(as_the_server_hears(clip))).text.lower()

    texts = await asyncio.gather(
        hear("CA1", "talk_to_person"), hear("CA2", "return_earbuds"), hear("CA1", "yes_please")
    )
    assert "real person" in texts[0] and "return my ear" in texts[1] and "yes" in texts[2]
