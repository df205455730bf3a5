"""The caller voices: none is the agent's, the split was fixed before tuning, and each speaks
through a phone line at a noise level picked from the voice and the text alone."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from harness.callers import (
    NOISE_LEVELS,
    VOICES,
    missing_tools,
    render,
    speak,
    test_voices,
    tuning_voices,
    voice_named,
)
from harness.callers import _add_noise as add_noise
from voice.audio import SAMPLE_RATE

CLIPS_TSV = "audio_fixtures/clips.tsv"


def test_at_least_eight_voices_are_not_the_agents_and_the_test_set_has_eight():
    others = [v for v in VOICES if v.engine != "piper"]
    assert len(others) >= 8
    assert len(test_voices()) >= 8
    assert not any(v.engine == "piper" for v in test_voices())  # the agent's own voice tunes only
    assert {v.engine for v in test_voices()} >= {"espeak", "flite", "festival"}
    assert len({v.name for v in VOICES}) == len(VOICES)


def test_no_voice_an_earlier_tuning_used_is_a_test_voice():
    with open(CLIPS_TSV, encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    used = {row[1] for row in rows} | {"en-us", "en-us+f2", "en-us+m3", "en-us+f3", "en-gb"}
    used |= {"en-us+m1", "en-029"}  # the espeak stress set of utterances_espeak.yaml
    for voice in test_voices():
        assert not (voice.engine == "espeak" and voice.name_in_engine in used), voice.name
    assert {v.name for v in tuning_voices()} >= {"espeak-us", "espeak-us-f2", "espeak-gb"}


def test_speed_and_noise_come_from_the_voice_and_the_text_alone():
    voice = voice_named("flite-awb")
    first = render(voice, "Where is my order?")
    assert render(voice, "Where is my order?") == first
    assert first.speed in voice.speeds and first.noise in NOISE_LEVELS
    assert render(voice, "Where is my order?", "street").noise == "street"
    levels = {render(voice, f"line {i}").noise for i in range(40)}
    assert levels == set(NOISE_LEVELS)  # every level is used


def test_an_unknown_voice_names_the_known_ones():
    with pytest.raises(ValueError, match="flite-awb"):
        voice_named("nobody")


def test_noise_is_added_at_the_level_asked():
    rng = np.random.default_rng(1)
    speech = (np.sin(np.arange(8000) / 3) * 8000 + rng.normal(0, 10, 8000)).astype(np.int16)
    for level, snr in NOISE_LEVELS.items():
        noisy = add_noise(speech, level, seed=7)
        if snr is None:
            assert np.array_equal(noisy, speech)
            continue
        noise = noisy.astype(float) - speech
        measured = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean(noise**2))
        assert abs(measured - snr) < 1.5, level


@pytest.mark.skipif(bool(missing_tools()), reason="make voices installs the engines")
@pytest.mark.parametrize("name", [v.name for v in VOICES if v.engine != "piper"])
def test_every_voice_speaks_through_a_phone_line(name):
    pcm = speak(name, "Ten oh five.", "quiet")
    assert pcm.dtype == np.int16
    seconds = len(pcm) / SAMPLE_RATE
    assert 0.8 < seconds < 4.0
    assert np.abs(pcm).max() > 3000  # normalised speech, not silence
    assert np.array_equal(speak(name, "Ten oh five.", "quiet"), pcm)  # the same every time


def test_decoding_options_are_read_as_their_fields_types():
    from harness.heard import parse_options

    options = parse_options(["hypotheses=5", "second_below=0.6", "windows_s=15,30"])
    assert options == {"hypotheses": 5, "second_below": 0.6, "windows_s": (15, 30)}
    with pytest.raises(ValueError, match="name=value"):
        parse_options(["hypotheses"])
    with pytest.raises(ValueError, match="hypotheses"):
        parse_options(["loudness=11"])


def test_the_hints_of_each_answer_are_the_agents():
    from dialog.nlu.dataset import Entry
    from harness.heard import hints_for

    assert hints_for(Entry(text="ten oh five", intent="order_status", hints="order_number")).slot
    factor = hints_for(Entry(text="nine four one one oh", intent="unknown", hints="verification"))
    assert factor.slot == "verification" and factor.prompt == "ZIP code:"
    assert hints_for(Entry(text="where is it", intent="order_status")) is None


def test_the_hints_follow_the_flows_that_ask():
    import yaml

    from dialog.slots import SLOT_TYPES
    from harness.heard import HINTS

    verify = yaml.safe_load(Path("dialog/flows/verify_caller.yaml").read_text(encoding="utf-8"))
    asked = {step.get("hint") for step in verify["steps"] if step.get("collect") == "factor"}
    assert asked == {HINTS["verification"].prompt}
    assert HINTS["order_number"].prompt == SLOT_TYPES["order_number"].prompt
