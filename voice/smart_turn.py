"""Smart Turn v3.2: an acoustic guess at whether the caller has finished their turn.

`voice.turns` decides the end of a turn from silence and from what the transcript says
(`sounds_finished`): a transcript only exists after a decode, and tiny.en's words carry no
intonation. Smart Turn (pipecat, BSD-2-Clause) is an 8 MB int8 ONNX model over a Whisper-style
log-mel spectrogram of the last 8 s of speech that answers "is this turn complete?" from the
sound itself: the falling pitch of a finished sentence, the held vowel of "and, uh…". It ships
inside the `pipecat-ai` wheel, which `make smart-turn` installs without its dependencies (this
module needs only onnxruntime, soxr and faster-whisper's numpy feature extractor, all already
here), so nothing else of pipecat is imported.

The input is prepared exactly as pipecat's `LocalSmartTurnAnalyzerV3` does (its code is the
specification, `tests/voice/test_smart_turn.py` compares the two numerically): at most the
last 8 s at the line's rate, resampled to 16 kHz with soxr HQ, zero-padded at the *start* to
8 s (so the end of speech always sits at the end of the window, where the model looks),
normalised to zero mean and unit variance over the padded window, then 80 log-mel bands ×
800 frames. pipecat runs it once its VAD has heard ~200 ms of silence, on the audio since
speech began (with that silence at the end); the figures for our phone audio are in README
"Acoustic end of turn (measured)" (`python -m harness.smart_turn_eval`).

Not wired into `voice.turns`: on our 8 kHz phone audio it is no better than chance (AUC 0.49
on 358 caller turns), while the same sentences full band separate (AUC 0.79); the phone band
is what it does not hear.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import SAMPLE_RATE, resample, to_float32

__all__ = [
    "MODEL_IN_WHEEL",
    "MODEL_RATE",
    "N_FRAMES",
    "N_MELS",
    "WINDOW_S",
    "SmartTurn",
    "SmartTurnMissing",
    "SmartTurnOptions",
    "default_model",
    "model_input",
]

MODEL_RATE = 16000  # the Whisper front end the model was trained on
WINDOW_S = 8  # seconds of audio the model sees; older speech is dropped
WINDOW_SAMPLES = MODEL_RATE * WINDOW_S
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // 160  # 10 ms hops: 800
_NORM_EPS = 1e-7  # as transformers' WhisperFeatureExtractor (do_normalize=True)

WHEEL = "pipecat-ai"
MODEL_IN_WHEEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
INSTALL = "pip install --no-deps pipecat-ai==1.14.0"


class SmartTurnMissing(FileNotFoundError):
    """The Smart Turn model file is not there: says where it was looked for and how to get it."""


def default_model() -> Path:
    """Where `make smart-turn` puts the model: inside the installed `pipecat-ai` wheel. Found
    from the wheel's metadata, never by importing `pipecat`: its `__init__` needs loguru (not
    installed) and, on Python < 3.12, replaces `asyncio.wait_for` for the whole process."""
    try:
        wheel = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        raise SmartTurnMissing(
            f"the Smart Turn model comes in the {WHEEL} wheel, which is not installed: run "
            f"`make smart-turn` ({INSTALL}), or give the path of a smart-turn .onnx file"
        ) from None
    return Path(str(wheel.locate_file(MODEL_IN_WHEEL)))


@dataclass(frozen=True)
class SmartTurnOptions:
    """Attributes:
    model: the .onnx file (None: the one in the pipecat-ai wheel, `default_model`); a
        merchant may point at another Smart Turn v3 export with the same input.
    threads: onnxruntime threads per inference. One: calls run side by side on two cores,
        and one inference is short (README), so splitting it would only add contention.
    """

    model: Path | None = None
    threads: int = 1


def model_input(pcm: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The model's input for the end of `pcm` (int16 or float32 in [-1, 1) at `rate`):
    float32 of shape (1, 80, 800), the steps of pipecat's `LocalSmartTurnAnalyzerV3`."""
    audio = to_float32(pcm) if pcm.dtype == np.int16 else pcm.astype(np.float32)
    audio = audio[-rate * WINDOW_S :]  # pipecat keeps the last 8 s before resampling
    audio = resample(audio, rate, MODEL_RATE)
    if audio.size >= WINDOW_SAMPLES:
        audio = audio[-WINDOW_SAMPLES:]
    else:
        audio = np.pad(audio, (WINDOW_SAMPLES - audio.size, 0))
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + _NORM_EPS)
    features = _extractor()(audio, padding=0)
    return features[np.newaxis].astype(np.float32)


@functools.cache
def _extractor():
    """faster-whisper's numpy log-mel (the same filters, window and scaling as transformers'
    Whisper extractor that pipecat vendors), for an 8 s window. Holds no state between calls."""
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=N_MELS, chunk_length=WINDOW_S)


_SESSIONS: dict[tuple[Path, int], object] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(model: Path, threads: int):
    """One onnxruntime session per model file and thread count in the process, shared by
    every call (`InferenceSession.run` may be called from several threads at once)."""
    key = (model.resolve(), threads)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            if not model.is_file():
                raise SmartTurnMissing(
                    f"no Smart Turn model at {model}: run `make smart-turn` ({INSTALL}) "
                    "or point at a smart-turn .onnx file"
                )
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = threads
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = onnxruntime.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
            _SESSIONS[key] = session
        return session


class SmartTurn:
    """The loaded model. Cheap to build after the first (the session is shared), safe to use
    from several threads; blocking, so a call runs it off the event loop."""

    def __init__(self, options: SmartTurnOptions | None = None) -> None:
        self.options = options or SmartTurnOptions()
        self.model = self.options.model or default_model()
        self._session = _session(self.model, self.options.threads)
        self._input = self._session.get_inputs()[0].name

    def complete_probability(self, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> float:
        """How likely the caller's turn is over, in [0, 1], from the last 8 s of `pcm` (8 kHz
        int16 phone audio by default): the utterance so far, ending with the silence heard
        since its last voiced frame."""
        if pcm.size == 0:
            raise ValueError("no audio to judge")
        (out,) = self._session.run(None, {self._input: model_input(pcm, rate)})
        return float(np.asarray(out).reshape(-1)[0])  # the export ends in a sigmoid

    def warm(self) -> None:
        """One inference on silence, so the first caller does not pay for onnxruntime's
        first-run allocations."""
        self.complete_probability(np.zeros(SAMPLE_RATE, dtype=np.int16))
