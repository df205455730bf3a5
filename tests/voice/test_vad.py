from pathlib import Path

import numpy as np

from voice.audio import read_wav
from voice.vad import Pause, Segmenter, SpeechStarted, Utterance, VadOptions, voiced_frames

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


def test_a_pause_carries_the_utterance_that_follows_if_the_caller_says_no_more():
    clip = read_wav(CLIPS / "where_is_my_order.wav")
    pcm = np.concatenate([np.zeros(4000, np.int16), clip, np.zeros(8000, np.int16)])
    events = _feed(Segmenter(VadOptions(end_of_turn_ms=600, pause_ms=240)), pcm)
    pauses = [e for e in events if isinstance(e, Pause)]
    utterance = next(e for e in events if isinstance(e, Utterance))
    last = pauses[-1]
    assert np.array_equal(last.pcm, utterance.pcm)
    assert last.speech_end_ms == utterance.speech_end_ms
    assert last.at_ms - last.speech_end_ms == 240
    assert utterance.ended_at_ms - utterance.speech_end_ms == 600


def test_speech_after_a_pause_makes_one_longer_utterance():
    clip = read_wav(CLIPS / "no_thanks.wav")
    pcm = np.concatenate([clip, clip, np.zeros(16000, np.int16)])  # ~0.8 s gap between them
    events = _feed(Segmenter(VadOptions(end_of_turn_ms=1200, pause_ms=240)), pcm)
    pauses = [e for e in events if isinstance(e, Pause)]
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) == 1 and len(pauses) >= 2
    assert len(pauses[0].pcm) < len(utterances[0].pcm)  # the first guess was too early
    assert np.array_equal(pauses[-1].pcm, utterances[0].pcm)


def test_the_turn_can_be_ended_early_with_the_same_audio():
    clip = read_wav(CLIPS / "yes_please.wav")
    seg = Segmenter(VadOptions(end_of_turn_ms=800, pause_ms=240))
    events = _feed(seg, np.concatenate([clip, np.zeros(8000 * 3 // 10, np.int16)]))
    assert not any(isinstance(e, Utterance) for e in events)
    pause = [e for e in events if isinstance(e, Pause)][-1]
    assert seg.in_speech and seg.silent_ms >= 240
    utterance = seg.end_turn(12345)
    assert utterance is not None and utterance.ended_at_ms == 12345
    assert np.array_equal(utterance.pcm, pause.pcm)
    assert not seg.in_speech and seg.end_turn(12400) is None


def test_no_pauses_reported_unless_asked():
    clip = read_wav(CLIPS / "where_is_my_order.wav")
    events = _feed(Segmenter(), np.concatenate([clip, np.zeros(8000, np.int16)]))
    assert not any(isinstance(e, Pause) for e in events)
