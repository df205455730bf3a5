from pathlib import Path

import numpy as np

from voice.audio import read_wav
from voice.vad import Segmenter, SpeechStarted, Utterance, VadOptions, voiced_frames

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"


def _feed(segmenter: Segmenter, pcm: np.ndarray) -> list:
    events = []
    for i in range(len(pcm) // 160):
        events += segmenter.feed(pcm[i * 160 : (i + 1) * 160], i * 20)
    return events


def test_silence_and_hum_are_not_speech():
    seg = Segmenter()
    quiet = np.zeros(8000 * 3, dtype=np.int16)
    assert _feed(seg, quiet) == []
    t = np.arange(8000 * 2) / 8000
    hum = (np.sin(2 * np.pi * 60 * t) * 300).astype(np.int16)
    assert _feed(seg, hum) == []


def test_one_clip_is_one_utterance_with_pre_roll():
    clip = read_wav(CLIPS / "where_is_my_order.wav")
    pcm = np.concatenate([np.zeros(8000, dtype=np.int16), clip, np.zeros(8000, np.int16)])
    events = _feed(Segmenter(VadOptions(end_of_turn_ms=600, pre_roll_ms=300)), pcm)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, Utterance]
    started, utterance = events
    voiced = np.flatnonzero(voiced_frames(pcm))
    first_voiced_ms, last_voiced_ms = voiced[0] * 20, (voiced[-1] + 1) * 20
    assert abs(started.at_ms - first_voiced_ms) <= 100
    assert utterance.start_ms <= started.at_ms - 100  # pre-roll keeps the first syllable
    assert abs(utterance.speech_end_ms - last_voiced_ms) <= 40
    # The turn is handed on after the end-of-turn silence, not before.
    assert utterance.ended_at_ms - utterance.speech_end_ms >= 600
    assert utterance.voiced_ms > 500


def test_end_of_turn_setting_controls_splitting():
    clip = read_wav(CLIPS / "no_thanks.wav")
    gap = np.zeros(8000 * 4 // 10, dtype=np.int16)  # with the clips own padding: a 1.2 s pause
    pcm = np.concatenate([clip, gap, clip, np.zeros(8000 * 2, np.int16)])
    patient = [e for e in _feed(Segmenter(VadOptions(end_of_turn_ms=1600)), pcm)]
    hasty = [e for e in _feed(Segmenter(VadOptions(end_of_turn_ms=300)), pcm)]
    assert sum(isinstance(e, Utterance) for e in patient) == 1
    assert sum(isinstance(e, Utterance) for e in hasty) == 2


def test_long_speech_is_cut_at_the_maximum():
    clip = read_wav(CLIPS / "wheres_my_package.wav")
    pcm = np.concatenate([clip] * 4)
    events = _feed(Segmenter(VadOptions(max_utterance_s=2.0, end_of_turn_ms=2000)), pcm)
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert utterances and all(len(u.pcm) <= 2.0 * 8000 + 160 for u in utterances)
