"""Regenerate the clips of `pause_clips.tsv`: callers who pause 0.5-1.2 s mid-utterance.

Each part of a line is said by its caller voice (`harness.callers.speak`, in quiet: the
telephone band at 8 kHz and a µ-law round trip), its padding cut, and the parts joined by the
silence the line names; the whole gets the fixtures' 0.3 s of silence before and 0.5 s after.
The voices are deterministic engines, so reruns give the same audio.

    python audio_fixtures/make_pause_clips.py          # needs flite, festival, espeak-ng, sox
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from harness.callers import speak  # noqa: E402
from voice.audio import SAMPLE_RATE, write_wav  # noqa: E402

PAD_BEFORE_S, PAD_AFTER_S = 0.3, 0.5  # what `speak` and the other fixtures pad with
_PAUSE = re.compile(r"\s*\|(\d+(?:\.\d+)?)\|\s*")


def parts_of(text: str) -> tuple[list[str], list[float]]:
    """The spoken parts of a line and the pauses (s) between them."""
    pieces = _PAUSE.split(text)
    return pieces[0::2], [float(p) for p in pieces[1::2]]


def make(voice: str, text: str) -> np.ndarray:
    """One caller clip: the parts said by `voice`, the pauses between them."""
    parts, pauses = parts_of(text)
    before, after = int(PAD_BEFORE_S * SAMPLE_RATE), int(PAD_AFTER_S * SAMPLE_RATE)
    pieces = [np.zeros(before, dtype=np.int16)]
    for i, part in enumerate(parts):
        pcm = speak(voice, part, noise="quiet")
        pieces.append(pcm[before : len(pcm) - after])
        if i < len(pauses):
            pieces.append(np.zeros(int(pauses[i] * SAMPLE_RATE), dtype=np.int16))
    pieces.append(np.zeros(after, dtype=np.int16))
    return np.concatenate(pieces)


def main() -> None:
    """Write every clip of the list into `clips/`."""
    count = 0
    for line in (HERE / "pause_clips.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, voice, text = line.split("\t")
        write_wav(HERE / "clips" / f"{name}.wav", make(voice, text))
        count += 1
    print(f"wrote {count} clips to {HERE / 'clips'}")


if __name__ == "__main__":
    main()
