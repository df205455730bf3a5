"""Scenario clips said again by a caller voice that is not the one the agent was tuned on.

`audio_fixtures/clips/` holds each clip as `audio_fixtures/make_clips.sh` made it from
`audio_fixtures/clips.tsv` (name, espeak-ng voice, wpm, text), and the callers who pause
mid-utterance as `audio_fixtures/make_pause_clips.py` made them from
`audio_fixtures/pause_clips.tsv` (name, caller voice, text). Here the same text is said by a
`harness.callers` voice instead, at the speed and noise level `harness.callers.speak` picks for it:
a " | " in the text is a one-second pause mid-sentence and a "|0.8|" one of that many seconds,
so the parts are spoken alone (at the clip's noise level) and joined with the pause from the
end of one part's speech to the start of the next, as the clip makers join them.
`postvoice replay --caller-voice NAME` replays the scenarios with these clips in place of the
committed ones:

    texts = caller_clip_texts()
    clips = render_clips(scenarios, voice_named("flite-awb"), Path(tmp), texts)
    scenario = with_clips(scenario, clips)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.callers import (
    VOICES,
    CallerVoice,
    heldout_voices,
    render,
    speak,
    test_voices,
    tuning_voices,
    voice_named,
)
from harness.scenario import Scenario
from voice.audio import SAMPLE_RATE, write_wav

__all__ = [
    "CLIPS_TSV",
    "PAUSE",
    "PAUSE_CLIPS_TSV",
    "PAUSE_S",
    "MissingClipError",
    "caller_clip_texts",
    "choose_voices",
    "clip_text",
    "clips_used",
    "is_spoken",
    "join_parts",
    "parts_of",
    "read_clip_texts",
    "render_clips",
    "renderings",
    "say_clip",
    "with_clips",
]

CLIPS_TSV = Path(__file__).resolve().parents[1] / "audio_fixtures" / "clips.tsv"
PAUSE_CLIPS_TSV = CLIPS_TSV.with_name("pause_clips.tsv")
PAUSE = " | "
PAUSE_S = 1.0
# " | " (a pause of PAUSE_S) or "|0.8|" (a pause of that many seconds).
_PAUSES = re.compile(r"\s+\|\s+|\s*\|(\d+(?:\.\d+)?)\|\s*")
# What `harness.callers` puts around each utterance (its `pad 0.3 0.5`); the line noise is
# there too.
LEAD_PAD_S, TRAIL_PAD_S = 0.3, 0.5
AUDIO_TURNS = ("say", "barge_in")

Speak = Callable[..., np.ndarray]


class MissingClipError(ValueError):
    """A scenario's clip has no line in clips.tsv, so no other voice can say it."""


def read_clip_texts(path: Path = CLIPS_TSV, columns: tuple[str, ...] = ()) -> dict[str, str]:
    """Each clip's text by name, from a clips.tsv (name, voice, wpm, text; # comments), or
    from another list whose `columns` end with the text (pause_clips.tsv: name, voice, text)."""
    columns = columns or ("name", "voice", "wpm", "text")
    texts: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(columns) or not fields[-1].strip():
            raise ValueError(f"{path}:{number}: expected {', '.join(columns)} (tab-separated)")
        texts[fields[0]] = fields[-1].strip()
    return texts


def caller_clip_texts() -> dict[str, str]:
    """The text of every committed clip a scenario can play: clips.tsv and pause_clips.tsv."""
    return read_clip_texts() | read_clip_texts(PAUSE_CLIPS_TSV, ("name", "voice", "text"))


def parts_of(text: str) -> tuple[list[str], list[float]]:
    """A clip's spoken parts and the pauses (s) between them."""
    # text, seconds, text, ...: the seconds are None for a " | ".
    pieces = _PAUSES.split(text)
    return pieces[0::2], [PAUSE_S if p is None else float(p) for p in pieces[1::2]]


def clip_text(clip: Path, texts: dict[str, str]) -> str:
    """The text a clip says (looked up by its file name without `.wav`)."""
    try:
        return texts[clip.stem]
    except KeyError:
        raise MissingClipError(
            f"clip {clip.name} has no line in clips.tsv: no other voice can say it"
        ) from None


def clips_used(scenarios: Iterable[Scenario]) -> list[Path]:
    """Every clip the scenarios' `say:`/`barge_in:` turns play, each once, in order of use."""
    seen: dict[Path, None] = {}
    for scenario in scenarios:
        for turn in scenario.turns:
            for attr in AUDIO_TURNS:
                clip = getattr(turn, attr)
                if clip is not None:
                    seen.setdefault(Path(clip), None)
    return list(seen)


def is_spoken(scenario: Scenario) -> bool:
    """Whether the caller speaks in it (a `say:` or `barge_in:` turn): otherwise it is the same
    whichever voice the caller has."""
    return bool(clips_used([scenario]))


def join_parts(
    parts: Sequence[np.ndarray],
    pause_s: float | Sequence[float] = PAUSE_S,
    lead_pad_s: float = LEAD_PAD_S,
    trail_pad_s: float = TRAIL_PAD_S,
) -> np.ndarray:
    """Utterances as `harness.callers.speak` returns them (`lead_pad_s` before the speech,
    `trail_pad_s` after) joined into one, `pause_s` (one for every gap, or each gap's own)
    from the end of one's speech to the start of the next's: the padding on either side of a
    pause is kept (it carries the line noise) and silence makes up the rest; a pause shorter
    than the padding cuts the padding down to it."""
    if not parts:
        return np.zeros(0, dtype=np.int16)
    pauses = [pause_s] * (len(parts) - 1) if isinstance(pause_s, int | float) else list(pause_s)
    if len(pauses) != len(parts) - 1:
        raise ValueError(f"{len(parts)} parts need {len(parts) - 1} pauses, not {len(pauses)}")
    lead, trail = round(lead_pad_s * SAMPLE_RATE), round(trail_pad_s * SAMPLE_RATE)
    pieces = [np.asarray(part, dtype=np.int16) for part in parts]
    joined: list[np.ndarray] = [pieces[0]]
    for seconds, part in zip(pauses, pieces[1:], strict=True):
        pause = round(seconds * SAMPLE_RATE)
        excess = max(0, lead + trail - pause)
        cut_trail = min(trail, excess)
        if cut_trail:
            joined[-1] = joined[-1][: len(joined[-1]) - cut_trail]
        joined.append(np.zeros(max(0, pause - lead - trail), dtype=np.int16))
        joined.append(part[excess - cut_trail :])
    return np.concatenate(joined)


def say_clip(voice: CallerVoice, text: str, speak: Speak = speak) -> np.ndarray:
    """A clip's text said by `voice` through a phone line, with its pauses (`parts_of`). The
    whole clip has the noise level `speak` would pick for its text."""
    noise = render(voice, text).noise
    parts, pauses = parts_of(text)
    return join_parts([speak(voice, part, noise=noise) for part in parts], pauses)


def renderings(voice: CallerVoice, text: str) -> dict[str, Any]:
    """How `say_clip` says a clip: its noise level and each part's speed."""
    noise = render(voice, text).noise
    return {
        "text": text,
        "noise": noise,
        "speeds": [render(voice, part, noise).speed for part in parts_of(text)[0]],
    }


def render_clips(
    scenarios: Iterable[Scenario],
    voice: CallerVoice,
    into: Path,
    texts: dict[str, str],
    speak: Speak = speak,
) -> dict[Path, Path]:
    """Every clip the scenarios play, said by `voice`, as WAVs in `into`; the committed clip's
    path → the new one. Every clip is looked up before any is spoken (MissingClipError)."""
    wanted = {clip: clip_text(clip, texts) for clip in clips_used(scenarios)}
    into.mkdir(parents=True, exist_ok=True)
    made: dict[Path, Path] = {}
    for clip, text in wanted.items():
        path = into / f"{clip.stem}.wav"
        write_wav(path, say_clip(voice, text, speak))
        made[clip] = path
    return made


def with_clips(scenario: Scenario, clips: dict[Path, Path]) -> Scenario:
    """A copy of the scenario whose `say:`/`barge_in:` turns play the new clips instead."""
    copy = scenario.model_copy(deep=True)
    for turn in copy.turns:
        for attr in AUDIO_TURNS:
            clip = getattr(turn, attr)
            if clip is not None:
                try:
                    setattr(turn, attr, clips[Path(clip)])
                except KeyError:
                    raise MissingClipError(f"no new clip for {Path(clip).name}") from None
    return copy


def choose_voices(names: Sequence[str] = (), groups: Sequence[str] = ()) -> list[CallerVoice]:
    """The voices named, then every voice of each group (`test`, `tuning`, `heldout`, `all`),
    each once;
    ValueError for a name or group nobody knows."""
    chosen: list[CallerVoice] = [voice_named(name) for name in names]
    for group in groups:
        if group == "test":
            chosen += test_voices()
        elif group == "tuning":
            chosen += tuning_voices()
        elif group == "heldout":
            chosen += heldout_voices()
        elif group == "all":
            chosen += list(VOICES)
        else:
            raise ValueError(f"no group of caller voices {group!r}: test, tuning, heldout or all")
    unique: dict[str, CallerVoice] = {}
    for voice in chosen:
        unique.setdefault(voice.name, voice)
    return list(unique.values())
