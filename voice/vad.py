"""Voice activity segmentation: 20 ms frames in, speech-start signals and whole utterances out.

webrtcvad classifies each frame; a small state machine turns that into turns: speech starts
when most of the last `min_speech_ms` is voiced (so a click or a cough does not count), the
pre-roll keeps the first syllable, and the utterance ends after `end_of_turn_ms` of silence.

With `pause_ms` set, a shorter silence inside an utterance is reported as a `Pause` carrying
the utterance as it would end there, so a transcription can start before the turn is over;
`end_turn` lets the caller of `feed` close the turn early once it knows enough.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from voice.audio import FRAME_MS, SAMPLE_RATE
from voice.settings import setting_default

__all__ = ["Pause", "Segmenter", "SpeechStarted", "Utterance", "VadOptions", "voiced_frames"]


@dataclass(frozen=True)
class VadOptions:
    """Segmentation settings.

    Attributes:
        aggressiveness: webrtcvad mode 0-3; higher rejects more non-speech.
        pre_roll_ms: audio kept from before speech was detected.
        min_speech_ms: voiced audio needed before speech counts as started.
        end_of_turn_ms: silence that ends the caller's turn.
        max_utterance_s: an utterance is cut here even if the caller goes on.
        pause_ms: silence inside an utterance reported as a `Pause` (0: never).
    """

    aggressiveness: int = setting_default("vad_aggressiveness")
    pre_roll_ms: int = setting_default("vad_pre_roll_ms")
    min_speech_ms: int = setting_default("vad_min_speech_ms")
    end_of_turn_ms: int = setting_default("vad_end_of_turn_ms")
    max_utterance_s: float = setting_default("vad_max_utterance_s")
    pause_ms: int = 0  # on its own, a segmenter reports no pauses; a call's uses the setting


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller has started speaking (used for barge-in). `at_ms` is stream time."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Pause:
    """The caller paused `pause_ms` inside an utterance. `pcm` is the utterance as it will be
    if they say no more (the `Utterance` that follows is then the same audio); `speech_end_ms`
    is the stream time of the last voiced frame."""

    pcm: np.ndarray
    speech_end_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class Utterance:
    """One caller turn: PCM from pre-roll to the end of speech (trailing silence trimmed).

    `speech_end_ms` is the stream time of the last voiced frame; `ended_at_ms` is when the
    end-of-turn silence elapsed (the moment the turn was handed on).
    """

    pcm: np.ndarray
    start_ms: int
    speech_end_ms: int
    ended_at_ms: int
    voiced_ms: int


class Segmenter:
    """Feeds on 20 ms int16 frames at 8 kHz; returns the events each frame produces."""

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = options or VadOptions()
        self._vad = webrtcvad.Vad(self.options.aggressiveness)
        self._start_window = max(1, self.options.min_speech_ms // FRAME_MS)
        self._end_frames = max(1, self.options.end_of_turn_ms // FRAME_MS)
        self._pause_frames = self.options.pause_ms // FRAME_MS
        self._max_frames = int(self.options.max_utterance_s * 1000 // FRAME_MS)
        pre_roll = max(self._start_window, self.options.pre_roll_ms // FRAME_MS)
        self._recent: deque[tuple[np.ndarray, bool, int]] = deque(maxlen=pre_roll)
        self._frames: list[np.ndarray] = []
        self._in_speech = False
        self._silent_run = 0
        self._voiced = 0
        self._start_ms = 0
        self._last_voiced_ms = 0
        self.last_frame_voiced = False

    @property
    def in_speech(self) -> bool:
        """True between speech start and the end of the turn."""
        return self._in_speech

    @property
    def silent_ms(self) -> int:
        """Silence since the caller's last voiced frame, inside an utterance (else 0)."""
        return self._silent_run * FRAME_MS if self._in_speech else 0

    def end_turn(self, at_ms: int) -> Utterance | None:
        """End the utterance in progress now (the caller of `feed` decided the turn is over);
        None when there is none. `at_ms` is the stream time the turn ends at."""
        if not self._in_speech:
            return None
        return self._finish(at_ms)

    def reset(self) -> None:
        """Forget any speech in progress."""
        self._recent.clear()
        self._frames = []
        self._in_speech = False
        self._silent_run = 0
        self._voiced = 0

    def is_speech(self, frame: np.ndarray) -> bool:
        """webrtcvad's verdict on one 20 ms frame."""
        return self._vad.is_speech(frame.astype("<i2").tobytes(), SAMPLE_RATE)

    def feed(self, frame: np.ndarray, at_ms: int) -> list[SpeechStarted | Utterance]:
        """Add one frame (160 samples) whose start is `at_ms` in stream time."""
        if frame.shape[0] != SAMPLE_RATE * FRAME_MS // 1000:
            raise ValueError(f"expected a 20 ms frame, got {frame.shape[0]} samples")
        voiced = self.is_speech(frame)
        self.last_frame_voiced = voiced
        if not self._in_speech:
            return self._feed_idle(frame, voiced, at_ms)
        return self._feed_speech(frame, voiced, at_ms)

    def _feed_idle(self, frame: np.ndarray, voiced: bool, at_ms: int) -> list:
        self._recent.append((frame, voiced, at_ms))
        window = list(self._recent)[-self._start_window :]
        if len(window) < self._start_window:
            return []
        if sum(v for _, v, _ in window) < 0.8 * self._start_window:
            return []
        self._in_speech = True
        self._frames = [f for f, _, _ in self._recent]
        self._start_ms = self._recent[0][2]
        self._voiced = sum(v for _, v, _ in self._recent)
        self._last_voiced_ms = at_ms + FRAME_MS
        self._silent_run = 0
        self._recent.clear()
        first_voiced = next(ts for _, v, ts in window if v)
        return [SpeechStarted(at_ms=first_voiced)]

    def _feed_speech(self, frame: np.ndarray, voiced: bool, at_ms: int) -> list:
        self._frames.append(frame)
        if voiced:
            self._voiced += 1
            self._silent_run = 0
            self._last_voiced_ms = at_ms + FRAME_MS
        else:
            self._silent_run += 1
        if self._silent_run >= self._end_frames or len(self._frames) >= self._max_frames:
            return [self._finish(at_ms + FRAME_MS)]
        if self._pause_frames and self._silent_run == self._pause_frames:
            return [Pause(self._pcm(), self._last_voiced_ms, at_ms + FRAME_MS)]
        return []

    def _pcm(self) -> np.ndarray:
        """The utterance so far without its trailing silence (but 100 ms of tail)."""
        keep = len(self._frames) - max(0, self._silent_run - 5)
        return np.concatenate(self._frames[:keep])

    def _finish(self, ended_at_ms: int) -> Utterance:
        utterance = Utterance(
            pcm=self._pcm(),
            start_ms=self._start_ms,
            speech_end_ms=self._last_voiced_ms,
            ended_at_ms=ended_at_ms,
            voiced_ms=self._voiced * FRAME_MS,
        )
        self.reset()
        return utterance


def voiced_frames(pcm: np.ndarray, aggressiveness: int = 2) -> np.ndarray:
    """Per-frame webrtcvad verdicts over a whole clip (used by replay to find end of speech)."""
    vad = webrtcvad.Vad(aggressiveness)
    n = SAMPLE_RATE * FRAME_MS // 1000
    count = len(pcm) // n
    return np.array(
        [
            vad.is_speech(pcm[i * n : (i + 1) * n].astype("<i2").tobytes(), SAMPLE_RATE)
            for i in range(count)
        ],
        dtype=bool,
    )
