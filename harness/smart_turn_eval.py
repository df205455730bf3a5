"""Does Smart Turn tell a finished caller from one who is still going, on phone audio?

Measured before it is trusted (README "Acoustic end of turn (measured)"). Each item is a
caller's speech as the server would hold it at the moment of deciding: up to the last frame
webrtcvad calls voiced, then `tail_ms` of what followed; by default 100 ms, what a `Pause`
carries (`voice.vad`). webrtcvad hears speech ~120 ms past where its sound ends, so that is
about 220 ms of quiet: pipecat's own regime (it runs the model after ~200 ms of silence). The
model's answer moves a lot with this silence (`--extra-tails`).

- **finished** (labelled complete): every fixture clip (`audio_fixtures/clips`, 8 kHz phone
  band) and a finished sentence said by each test caller voice (`harness.callers`).
- **unfinished** (labelled incomplete): the same audio cut at each pause of at least 200 ms
  inside the speech (the pause is the tail: what the line really carried), and the clips cut
  at 40, 55 and 70 % of their speech (mid-word, most of them; the tail is the clip's own
  background from before the speech, so a cut is not given away by digital silence in noisy
  audio); and sentences that trail off ("my order number is", "and also", "um"), said by the
  test voices both as written (the engines give them a sentence's falling close) and with a
  trailing comma (a continuation's pitch, the nearest these engines come to trailing off).

Each item is scored by the model and by the transcript rule `voice.turns.sounds_finished` on
tiny.en's transcript of the same audio (the project's `WhisperTranscriber`, one worker,
nice). A false "complete" is the costly error: the agent cuts the caller off.

    python -m harness.smart_turn_eval [--json out/smart_turn_eval.json] [--items out/items.tsv]
        [--tail-ms 100] [--extra-tails 0,200,500] [--model PATH] [--no-voices]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from voice.audio import FRAME_MS, SAMPLE_RATE, read_wav, resample
from voice.smart_turn import SmartTurn, SmartTurnOptions
from voice.turns import sounds_finished
from voice.vad import voiced_frames

__all__ = ["Item", "Scores", "build_items", "clip_items", "main", "scores", "sentence_items"]

CLIPS = Path(__file__).resolve().parents[1] / "audio_fixtures" / "clips"
MIN_PAUSE_MS = 200
CUT_FRACTIONS = (0.40, 0.55, 0.70)
THRESHOLDS = (0.5, 0.7, 0.9)

# (trailing off, finished): what a caller starts to say, and the same sentence said through.
SENTENCES: tuple[tuple[str, str], ...] = (
    ("My order number is", "My order number is one, zero, zero, three."),
    ("I'd like to return the", "I'd like to return the sweater."),
    ("And also", "And also, can you change my address?"),
    ("Um", "Um, no, that's all."),
    ("I was wondering if", "I was wondering if you ship to Canada."),
    ("Can you check on my", "Can you check on my package?"),
    ("The problem is that", "The problem is that it came broken."),
    ("So, uh", "So, uh, where is it?"),
)


@dataclass
class Item:
    """One decision: `pcm` ends `tail_ms` after the last voiced frame; `complete` is the label."""

    name: str
    group: str
    complete: bool
    pcm: np.ndarray = field(repr=False)
    speech: np.ndarray = field(repr=False)  # up to the last voiced frame (no tail)
    background: np.ndarray = field(repr=False)  # this audio's own silence, to build tails
    tail: np.ndarray = field(repr=False)  # what the line carried after the speech, if silent
    rate: int = SAMPLE_RATE
    probability: float = float("nan")
    transcript: str = ""
    extra: dict[int, float] = field(default_factory=dict)  # tail_ms -> probability


def _speech_span(voiced: np.ndarray) -> tuple[int, int] | None:
    """Where speech starts as the server's segmenter starts it (most of 160 ms voiced, so a
    blip of line noise is not a start), and one past the last voiced frame (None: none)."""
    window = 8  # frames: the segmenter's `min_speech_ms` (160 ms)
    runs = np.convolve(voiced.astype(int), np.ones(window, int), mode="valid")
    starts = np.flatnonzero(runs >= 0.8 * window)
    if starts.size == 0:
        return None
    return int(starts[0]), int(np.flatnonzero(voiced)[-1]) + 1


def _pauses(voiced: np.ndarray, start: int, end: int, min_frames: int) -> list[tuple[int, int]]:
    """Runs of unvoiced frames of at least `min_frames` strictly inside [start, end)."""
    runs, run_start = [], None
    for i in range(start, end):
        if not voiced[i] and run_start is None:
            run_start = i
        elif voiced[i] and run_start is not None:
            if i - run_start >= min_frames:
                runs.append((run_start, i))
            run_start = None
    return runs


def with_tail(item: Item, tail_ms: int) -> np.ndarray:
    """The item's speech followed by `tail_ms` of silence: what the line carried after it
    where that was silence, filled out with the audio's own background (or zeros)."""
    n = tail_ms * item.rate // 1000
    tail = item.tail[:n]
    missing = n - len(tail)
    if missing > 0:
        bg = item.background
        fill = np.resize(bg, missing) if len(bg) else np.zeros(missing, dtype=np.int16)
        tail = np.concatenate([tail, fill.astype(np.int16)])
    return np.concatenate([item.speech, tail])


def _cuts(
    name: str, group: str, pcm: np.ndarray, complete_too: bool, rate: int = SAMPLE_RATE
) -> list[Item]:
    """The finished item of `pcm` (if `complete_too`), one cut at each inner pause, and (for
    the `clip` group) cuts at fractions of the speech. Speech is found at 8 kHz (webrtcvad's
    frames, as the server finds it) and cut at `rate`."""
    voiced = voiced_frames(pcm if rate == SAMPLE_RATE else resample(pcm, rate, SAMPLE_RATE))
    span = _speech_span(voiced)
    if span is None:
        return []
    first, last = span
    frame = rate * FRAME_MS // 1000
    bg = pcm[: max(0, first - 2) * frame]  # the line's own quiet before the speech
    items = []

    def item(label: str, kind: str, complete: bool, end_frame: int, tail: np.ndarray) -> Item:
        speech = pcm[: end_frame * frame]
        return Item(f"{name}@{label}", kind, complete, speech, speech, bg, tail, rate)

    if complete_too:
        items.append(item("end", f"{group} finished", True, last, pcm[last * frame :]))
    for start, stop in _pauses(voiced, first, last, MIN_PAUSE_MS // FRAME_MS):
        pause_audio = pcm[start * frame : stop * frame]
        items.append(
            item(f"pause{start * FRAME_MS}ms", f"{group} cut at a pause", False, start, pause_audio)
        )
    if group == "clip":
        for fraction in CUT_FRACTIONS:
            at = first + round((last - first) * fraction)
            items.append(
                item(
                    f"{int(fraction * 100)}%",
                    "clip cut 40-70 %",
                    False,
                    at,
                    np.zeros(0, dtype=np.int16),
                )
            )
    return items


def clip_items(clips: Path = CLIPS) -> list[Item]:
    """Every fixture clip finished, and cut at its pauses and at 40-70 % of its speech."""
    items = []
    for path in sorted(clips.glob("*.wav")):
        items += _cuts(path.stem, "clip", read_wav(path), complete_too=True)
    return items


def sentence_items(voices: Sequence | None = None) -> list[Item]:
    """`SENTENCES` said by each test caller voice: finished (and cut at its pauses), trailing
    off as written, and trailing off with a comma's continuation pitch."""
    from harness.callers import speak, test_voices

    items = []
    for voice in voices if voices is not None else test_voices():
        for i, (partial, finished) in enumerate(SENTENCES):
            tag = f"{voice.name}/s{i}"
            items += _cuts(f"{tag}/finished", "voice", speak(voice, finished), complete_too=True)
            for variant, text in (("as written", partial), ("with a comma", partial + ",")):
                pcm = speak(voice, text)
                whole = _cuts(f"{tag}/trailing {variant}", "voice", pcm, complete_too=True)
                for it in whole[:1]:  # the whole trailing sentence, not its pauses
                    it.group, it.complete = f"voice trailing off, {variant}", False
                    items.append(it)
    return items


CONTROL_WIDE = "control: agent's voice, full band"
CONTROL_LINE = "control: agent's voice, phone line"
CONTROLS = (CONTROL_WIDE, CONTROL_LINE)


def control_items() -> list[Item]:
    """Kept out of the phone figures: `SENTENCES` in the agent's own piper voice (the model
    hears something like it well) at its own rate (22 kHz, full band), and the same voice
    through the phone line (`harness.callers`' piper-joe-loose, a tuning voice). The first
    tells a model that cannot hear phone audio from input prepared wrongly; the second shows
    what the line alone does to it."""
    from piper import SynthesisConfig

    from harness.callers import speak
    from voice.tts import default_voice, load_voice

    voice = load_voice(default_voice())
    config = SynthesisConfig(noise_scale=0.667, noise_w_scale=0.8)
    items = []
    for i, pair in enumerate(SENTENCES):
        for complete, text in zip((False, True), pair, strict=True):
            name = f"piper/s{i}/{'finished' if complete else 'trailing'}"
            chunks = list(voice.synthesize(text, syn_config=config))
            rate = chunks[0].sample_rate
            pcm = np.frombuffer(b"".join(c.audio_int16_bytes for c in chunks), dtype=np.int16)
            quiet = [np.zeros(rate * 3 // 10, np.int16), pcm, np.zeros(rate // 2, np.int16)]
            for group, audio, r in (
                (CONTROL_WIDE, np.concatenate(quiet), rate),
                (CONTROL_LINE, speak("piper-joe-loose", text), SAMPLE_RATE),
            ):
                for it in _cuts(f"{name}/{group[-4:]}", "x", audio, complete_too=True, rate=r)[:1]:
                    it.group, it.complete = group, complete
                    items.append(it)
    return items


def build_items(voices: bool = True) -> list[Item]:
    """The labelled set: fixture clips, then (with `voices`) the caller voices' sentences."""
    return clip_items() + (sentence_items() + control_items() if voices else [])


# --- scoring ------------------------------------------------------------------------------------


@dataclass
class Scores:
    """Binary scores with "complete" as the positive class."""

    n: int
    n_complete: int
    accuracy: float
    precision: float
    recall: float
    false_complete_rate: float  # incomplete items called complete / incomplete items
    false_completes: int


def scores(labels: Sequence[bool], predicted: Sequence[bool]) -> Scores:
    """Accuracy, precision and recall of "complete", and how often an unfinished turn was
    called complete (the agent would have cut the caller off)."""
    y, p = np.asarray(labels, bool), np.asarray(predicted, bool)
    tp, fp = int(np.sum(y & p)), int(np.sum(~y & p))
    fn = int(np.sum(y & ~p))
    n_inc = int(np.sum(~y))
    return Scores(
        n=len(y),
        n_complete=int(y.sum()),
        accuracy=float(np.mean(y == p)) if len(y) else float("nan"),
        precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / (tp + fn) if tp + fn else float("nan"),
        false_complete_rate=fp / n_inc if n_inc else float("nan"),
        false_completes=fp,
    )


def _auc(labels: Sequence[bool], values: Sequence[float]) -> float:
    """Chance that a finished item scores above an unfinished one (ties half)."""
    y, v = np.asarray(labels, bool), np.asarray(values, float)
    pos, neg = v[y], v[~y]
    if not pos.size or not neg.size:
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def _pairs(items: list[Item]) -> dict[str, list[int]]:
    """How often the finished version scores above its own unfinished one: a clip's end
    against its 40-70 % cuts, a voice's finished sentence against its trailing-off ones.
    [above, pairs]."""
    p = {it.name: it.probability for it in items}
    pairs: dict[str, list[tuple[str, str]]] = {
        "clip end > its cut": [],
        "voice finished > trailing": [],
    }
    for name in p:
        if name.endswith("/finished@end"):
            for variant in ("as written", "with a comma"):
                other = name.replace("/finished@", f"/trailing {variant}@")
                pairs["voice finished > trailing"].append((name, other))
        elif name.endswith("@end") and "/" not in name:
            for fraction in CUT_FRACTIONS:
                other = name.replace("@end", f"@{int(fraction * 100)}%")
                pairs["clip end > its cut"].append((name, other))
    out = {}
    for kind, found in pairs.items():
        found = [(a, b) for a, b in found if b in p]
        out[kind] = [sum(p[a] > p[b] for a, b in found), len(found)]
    return out


def _rules(threshold: float) -> dict[str, Callable[[Item], bool]]:
    return {
        f"model >= {threshold}": lambda it: it.probability >= threshold,
        # An empty transcript ends the turn in voice.turns (nothing heard is not waited on).
        "transcript rule": lambda it: not it.transcript.strip() or sounds_finished(it.transcript),
        f"rule and model >= {threshold}": lambda it: (
            (not it.transcript.strip() or sounds_finished(it.transcript))
            and it.probability >= threshold
        ),
    }


def report(all_items: list[Item]) -> dict:
    """Every figure, overall (phone audio only) and by group."""
    items = [it for it in all_items if it.group not in CONTROLS]
    labels = [it.complete for it in items]
    out: dict = {"items": len(items), "complete": sum(labels), "by_threshold": {}, "groups": {}}
    out["auc"] = _auc(labels, [it.probability for it in items])
    for t in THRESHOLDS:
        out["by_threshold"][str(t)] = {
            name: asdict(scores(labels, [rule(it) for it in items]))
            for name, rule in _rules(t).items()
        }
    for group in CONTROLS:
        control = [it for it in all_items if it.group == group]
        if not control:
            continue
        y = [it.complete for it in control]
        out.setdefault("control", {})[group] = {
            "auc": _auc(y, [it.probability for it in control]),
            **{
                str(t): asdict(scores(y, [it.probability >= t for it in control]))
                for t in THRESHOLDS
            },
            "rule": asdict(scores(y, [_rules(0.5)["transcript rule"](it) for it in control])),
        }
    for group in dict.fromkeys(it.group for it in all_items):
        members = [it for it in all_items if it.group == group]
        probs = np.array([it.probability for it in members])
        out["groups"][group] = {
            "n": len(members),
            "label": {(True,): "complete", (False,): "incomplete"}.get(
                tuple({it.complete for it in members}), "both"
            ),
            "median_p": float(np.median(probs)),
            **{f"called_complete_at_{t}": int(np.sum(probs >= t)) for t in THRESHOLDS},
            "rule_called_complete": sum(_rules(0.5)["transcript rule"](it) for it in members),
        }
    out["pairs"] = _pairs(items)
    for tail in sorted({k for it in items for k in it.extra}):
        vals = [it.extra[tail] for it in items]
        out.setdefault("tails", {})[str(tail)] = {
            "auc": _auc(labels, vals),
            **{str(t): asdict(scores(labels, [v >= t for v in vals])) for t in THRESHOLDS},
        }
    return out


def _print(out: dict, timing: dict, tail_ms: int) -> None:
    print(
        f"{out['items']} items ({out['complete']} complete), tail {tail_ms} ms; "
        f"model AUC {out['auc']:.3f}"
    )
    print("\n| rule | accuracy | precision (complete) | recall (complete) | false complete |")
    print("|---|---|---|---|---|")
    seen = set()
    for rules in out["by_threshold"].values():
        for name, s in rules.items():
            if name in seen:
                continue
            seen.add(name)
            print(
                f"| {name} | {s['accuracy']:.2f} | {s['precision']:.2f} | {s['recall']:.2f} "
                f"| {s['false_completes']}/{s['n'] - s['n_complete']} "
                f"({s['false_complete_rate']:.0%}) |"
            )
    print("\n| group | n | label | median p | complete at 0.5 / 0.7 / 0.9 | rule: complete |")
    print("|---|---|---|---|---|---|")
    for group, g in out["groups"].items():
        at = " / ".join(str(g[f"called_complete_at_{t}"]) for t in THRESHOLDS)
        print(
            f"| {group} | {g['n']} | {g['label']} | {g['median_p']:.2f} | {at} "
            f"| {g['rule_called_complete']} |"
        )
    print()
    for kind, (above, n) in out["pairs"].items():
        print(f"{kind}: {above} of {n} pairs")
    for group, c in out.get("control", {}).items():
        row = ", ".join(
            f"{th}: acc {c[th]['accuracy']:.2f} false complete {c[th]['false_complete_rate']:.0%}"
            for th in map(str, THRESHOLDS)
        )
        rule = c["rule"]
        print(
            f"\n{group} (not in the figures above): AUC {c['auc']:.3f}; {row}; transcript rule: "
            f"acc {rule['accuracy']:.2f} false complete {rule['false_complete_rate']:.0%}"
        )
    for tail, t in out.get("tails", {}).items():
        row = ", ".join(
            f"{th}: acc {t[th]['accuracy']:.2f} false complete {t[th]['false_complete_rate']:.0%}"
            for th in map(str, THRESHOLDS)
        )
        print(f"\ntail {tail} ms: AUC {t['auc']:.3f}; {row}")
    print(
        f"\nper inference (1 thread): wall {timing['wall_ms_p50']:.0f} ms median, "
        f"{timing['wall_ms_p95']:.0f} ms p95; CPU {timing['cpu_ms_p50']:.0f} / "
        f"{timing['cpu_ms_p95']:.0f} ms ({timing['n']} inferences)"
    )


def _score_model(turn: SmartTurn, items: Iterable[Item], tail_ms: int, extra: Sequence[int]):
    wall, cpu = [], []
    for it in items:
        it.pcm = with_tail(it, tail_ms)
        w, c = time.perf_counter(), time.thread_time()
        it.probability = turn.complete_probability(it.pcm, it.rate)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
        for t in extra:
            it.extra[t] = turn.complete_probability(with_tail(it, t), it.rate)
    return {
        "n": len(wall),
        "wall_ms_p50": float(np.median(wall)),
        "wall_ms_p95": float(np.percentile(wall, 95)),
        "cpu_ms_p50": float(np.median(cpu)),
        "cpu_ms_p95": float(np.percentile(cpu, 95)),
    }


def _transcribe(items: Iterable[Item], nice: int) -> None:
    from voice.stt import WhisperOptions, WhisperTranscriber

    stt = WhisperTranscriber(WhisperOptions(workers=1, nice=nice))
    for it in items:
        pcm = it.pcm if it.rate == SAMPLE_RATE else resample(it.pcm, it.rate, SAMPLE_RATE)
        it.transcript = stt.transcribe_blocking(pcm).text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.smart_turn_eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tail-ms", type=int, default=100, help="silence after the speech")
    parser.add_argument("--extra-tails", default="", help="also score these tails (ms, a,b)")
    parser.add_argument("--model", type=Path, help="a smart-turn .onnx (default: the wheel's)")
    parser.add_argument("--no-voices", action="store_true", help="fixture clips only")
    parser.add_argument("--no-transcripts", action="store_true", help="skip the rule")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the whole run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--items", type=Path, help="write one line per item here (TSV)")
    args = parser.parse_args(argv)
    os.nice(args.nice)  # a measurement on a shared machine: everything else goes first
    extra = [int(t) for t in args.extra_tails.split(",") if t.strip()]

    items = build_items(voices=not args.no_voices)
    turn = SmartTurn(SmartTurnOptions(model=args.model))
    turn.warm()
    timing = _score_model(turn, items, args.tail_ms, extra)
    if not args.no_transcripts:
        _transcribe(items, nice=0)  # the process is already nice
    out = report(items)
    out["timing"], out["tail_ms"] = timing, args.tail_ms
    _print(out, timing, args.tail_ms)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if args.items:
        args.items.parent.mkdir(parents=True, exist_ok=True)
        lines = ["name\tgroup\tcomplete\tprobability\ttranscript\tsounds_finished"]
        for it in items:
            extras = "".join(f"\t{t}:{p:.3f}" for t, p in sorted(it.extra.items()))
            lines.append(
                f"{it.name}\t{it.group}\t{int(it.complete)}\t{it.probability:.3f}\t"
                f"{it.transcript}\t{int(sounds_finished(it.transcript))}{extras}"
            )
        args.items.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
