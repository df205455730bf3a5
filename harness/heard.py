"""What tiny.en hears when callers in other voices say the labelled lines.

Every line of `dialog/nlu/spoken.yaml` is said by every caller voice (`harness.callers`), at the
speed and noise level the voice and the text pick, through a telephone line, and decoded by
the transcriber exactly as the server runs it, with the hints the agent sends before that
answer. One file per voice, `dialog/nlu/heard/<voice>.yaml`, a line per utterance:

    - {said: "Ten oh five.", text: "10.05", speed: 1.0, noise: "room", confidence: 0.61}

`postvoice nlu eval --voices` scores them per voice; `postvoice nlu hear` remakes them:

    postvoice nlu hear                               # every voice, the server's decoding
    postvoice nlu hear --voice flite-awb --option hypotheses=1 --out out/heard-one
    postvoice nlu hear --voice flite-awb --option digits_fallback=false --out out/heard-words

Decoding is the server's (`POSTVOICE_STT_*` settings); `--option name=value` (a
`WhisperOptions` field) changes one, to write a technique's files elsewhere and compare them
with the served decoding before it is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dialog.events import Hints
from dialog.nlu.dataset import Entry, load_set
from dialog.nlu.heard import DEFAULT_HEARD, HEADER, SPOKEN_SET

__all__ = ["HINTS", "hear_voice", "hints_for", "main_hear", "parse_options"]

HINTS = {
    "order_number": Hints(slot="order_number", prompt="Order number:", expect_dtmf=True),
    "verification": Hints(slot="verification", prompt="ZIP code:", expect_dtmf=True),
}
"""The hints the agent sends before each kind of answer (identify_order, verify_caller)."""


def hints_for(entry: Entry) -> Hints | None:
    """The hints the agent would have sent before this answer, if any."""
    return HINTS.get(entry.hints or "")


def parse_options(pairs: Sequence[str]) -> dict[str, object]:
    """`name=value` pairs as `WhisperOptions` fields, each converted to its field's type."""
    from voice.stt import WhisperOptions

    types = {f.name: f.type for f in dataclasses.fields(WhisperOptions)}
    options: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in types:
            raise ValueError(f"--option {pair!r}: expected name=value, name one of {list(types)}")
        kind = str(types[name])
        if name == "second_model_dir":
            from voice.stt_models import resolve_second_model

            options[name] = resolve_second_model(value)
        elif "Path" in kind:
            options[name] = Path(value) if value else None
        elif kind == "bool":
            options[name] = _flag(pair, value)
        elif "tuple" in kind:
            options[name] = tuple(int(v) for v in value.split(","))
        elif "float" in kind:
            options[name] = float(value)
        elif "int" in kind:
            options[name] = int(value)
        else:
            options[name] = value
    return options


def _flag(pair: str, value: str) -> bool:
    """An option's yes or no (`digits_fallback=true`); any other word is a mistake, not yes."""
    words = {"true": True, "1": True, "yes": True, "on": True}
    words |= {"false": False, "0": False, "no": False, "off": False}
    if value.lower() not in words:
        raise ValueError(f"--option {pair!r}: expected true or false")
    return words[value.lower()]


def _line(said: str, text: str, speed: float, noise: str, confidence: float) -> str:
    fields = {"said": said, "text": text, "speed": speed, "noise": noise, "confidence": confidence}
    parts = (f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return "- {" + ", ".join(parts) + "}"


def hear_voice(
    voice_name: str,
    out_dir: str,
    options: dict[str, object] | None = None,
    spoken: str | None = None,
    noise: str | None = None,
) -> str:
    """Speak every line of the spoken set in one voice, decode it, and write the voice's file;
    returns the file's path. Runs in a worker process of its own."""
    from harness.callers import render, speak, voice_named
    from voice.settings import Settings
    from voice.stt import WhisperOptions, WhisperTranscriber

    voice = voice_named(voice_name)
    # the server's decoding (its settings), one decode at a time, with the options asked for
    served = dataclasses.asdict(Settings().whisper_options())
    transcriber = WhisperTranscriber(WhisperOptions(**{**served, "workers": 1, **(options or {})}))
    entries = load_set(spoken or SPOKEN_SET)
    lines = []

    async def run() -> None:
        for entry in entries:
            rendering = render(voice, entry.text, noise)
            pcm = speak(voice, entry.text, rendering.noise)
            heard = await transcriber.transcribe(pcm, hints_for(entry))
            lines.append(
                _line(entry.text, heard.text, rendering.speed, rendering.noise, heard.confidence)
            )

    asyncio.run(run())
    path = Path(out_dir) / f"{voice.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = [f"voice: {voice.name}", f"split: {voice.split}"]
    head += [f"description: {json.dumps(voice.description)}", "heard:"]
    path.write_text(HEADER + "\n".join(head + lines) + "\n", encoding="utf-8")
    return str(path)


def main_hear(
    voices: Sequence[str],
    out_dir: Path = DEFAULT_HEARD,
    options: dict[str, object] | None = None,
    workers: int = 2,
    noise: str | None = None,
) -> list[str]:
    """Make the heard files of `voices`, `workers` voices at a time; the paths written."""
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(hear_voice, name, str(out_dir), options, None, noise) for name in voices
        ]
        return [f.result() for f in futures]
