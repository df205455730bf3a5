"""Regenerate the `tiny_en` entries of the labelled set: what tiny.en hears over a phone line.

For every entry with `source: tiny_en`, the line it `said` is spoken by a synthetic voice
(picked from the text, so reruns are identical), put through what a phone call does to it
(300-3400 Hz band at 8 kHz, then a µ-law round trip as Twilio carries it) and decoded by the
transcriber exactly as the server runs it. Entries that answer an order-number question
(`hints: order_number`) get the `Hints` the agent sends then. The transcript replaces `text`;
the labels stay, because the truth is what was said.

Two engines speak:
- `piper` (default, the shipped set): the project's neural voice at three speeds, with its
  sampling noise off so it is deterministic. It sounds like a person, and tiny.en makes the
  mistakes it makes on people: "ten oh five" → "10.05", "ten eleven" → "10-11".
- `espeak` (a stress set): espeak-ng's formant voices at four speeds. Much of what they say
  is not intelligible once band-limited to 8 kHz, so tiny.en often writes something else
  entirely; useful to see how understanding degrades, not a picture of real callers.

    .venv/bin/python -m harness.make_transcripts                       # the shipped set
    .venv/bin/python -m harness.make_transcripts --engine espeak \\
        --out dialog/nlu/utterances_espeak.yaml                          # the stress set

Needs sox (and espeak-ng for that engine) on the PATH and the bundled models.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from dialog.events import Hints
from dialog.nlu.dataset import Entry, dump_set, load_set

__all__ = ["ESPEAK_SPEEDS", "ESPEAK_VOICES", "PIPER_SPEEDS", "hints_for", "main", "phone_line"]

PIPER_SPEEDS = (0.85, 1.0, 1.15)
"""piper length scales: hurried, ordinary and careful callers."""

ESPEAK_VOICES = ("en-us", "en-us+f2", "en-us+m3", "en-us+f3", "en-gb", "en-us+m1", "en-029")
"""espeak-ng voices, American and British, male and female."""

ESPEAK_SPEEDS = (140, 150, 160, 175)
"""espeak-ng words per minute."""

_HINTS = {
    "order_number": Hints(slot="order_number", prompt="Order number:", expect_dtmf=True),
}


def hints_for(entry: Entry) -> Hints | None:
    """The hints the agent would have sent before this answer, if any."""
    return _HINTS.get(entry.hints or "")


def _key(said: str) -> int:
    """A number from the text alone, so reordering the set changes no voice or speed."""
    return zlib.crc32(said.encode("utf-8"))


def _telephone_band(source: Path, out: Path) -> None:
    """What a phone line keeps: 300-3400 Hz at 8 kHz, as `audio_fixtures/make_clips.sh` does."""
    subprocess.run(
        ["sox", "-D", "-R", "--no-show-progress", str(source), "-r", "8000", "-c", "1", "-b",
         "16", "-e", "signed-integer", str(out),
         "silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse",
         "sinc", "300-3400", "rate", "-v", "8000", "norm", "-3", "pad", "0.3", "0.5"],
        check=True,
    )  # fmt: skip


class _Piper:
    """The project's piper voice, deterministic."""

    def __init__(self) -> None:
        from voice.tts import default_voice, load_voice

        self.model = default_voice()
        self.voice = load_voice(self.model)

    def pick(self, said: str) -> tuple[str, float]:
        return f"piper {self.model.stem}", PIPER_SPEEDS[_key(said) % len(PIPER_SPEEDS)]

    def speak(self, said: str, voice: str, speed: float, wav: Path) -> None:
        from piper import SynthesisConfig

        from voice.audio import write_wav

        # Sampling noise off: piper draws it at random on every call.
        config = SynthesisConfig(length_scale=speed, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(self.voice.synthesize(said, syn_config=config))
        pcm = np.frombuffer(b"".join(c.audio_int16_bytes for c in chunks), dtype=np.int16)
        write_wav(wav, pcm, chunks[0].sample_rate)


class _Espeak:
    """espeak-ng's formant voices."""

    def pick(self, said: str) -> tuple[str, float]:
        key = _key(said)
        voice = ESPEAK_VOICES[key % len(ESPEAK_VOICES)]
        return voice, ESPEAK_SPEEDS[(key // len(ESPEAK_VOICES)) % len(ESPEAK_SPEEDS)]

    def speak(self, said: str, voice: str, speed: float, wav: Path) -> None:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(int(speed)), "-w", str(wav), "--", said],
            check=True,
        )


def phone_line(wav: Path) -> np.ndarray:
    """The caller's audio as the server receives it: 8 kHz PCM after a µ-law round trip."""
    from voice.audio import mulaw_decode, mulaw_encode, read_wav

    return mulaw_decode(mulaw_encode(read_wav(wav)))


async def _transcribe_all(entries: list[Entry], engine: _Piper | _Espeak, only: str | None) -> int:
    from voice.stt import WhisperTranscriber

    transcriber = WhisperTranscriber()
    changed = 0
    with tempfile.TemporaryDirectory() as tmp:
        raw, line = Path(tmp) / "raw.wav", Path(tmp) / "line.wav"
        for entry in entries:
            if entry.source != "tiny_en" or not entry.said:
                continue
            if only and only not in entry.said:
                continue
            entry.voice, entry.speed = engine.pick(entry.said)
            engine.speak(entry.said, entry.voice, entry.speed, raw)
            _telephone_band(raw, line)
            transcript = await transcriber.transcribe(phone_line(line), hints_for(entry))
            changed += transcript.text != entry.text
            entry.text = transcript.text
            print(f"{entry.said!r}\n    → {entry.text!r}  ({entry.voice}, {entry.speed})")
    return changed


def main(argv: list[str] | None = None) -> int:
    """Regenerate the transcripts; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="path", default=None, help="labelled set to read")
    parser.add_argument("--out", default=None, help="where to write it (default: --set)")
    parser.add_argument("--engine", choices=("piper", "espeak"), default="piper")
    parser.add_argument("--only", default=None, help="only entries whose `said` contains this")
    args = parser.parse_args(argv)
    tools = ["sox"] + (["espeak-ng"] if args.engine == "espeak" else [])
    for tool in tools:
        if shutil.which(tool) is None:
            print(f"missing {tool}: apt-get install -y espeak-ng sox", file=sys.stderr)
            return 1
    entries = load_set(args.path)
    engine = _Piper() if args.engine == "piper" else _Espeak()
    changed = asyncio.run(_transcribe_all(entries, engine, args.only))
    dump_set(entries, args.out or args.path)
    print(f"{changed} transcripts changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
