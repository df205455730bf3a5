"""`postvoice replay --caller-voice(s)`: the spoken scenarios once per caller voice, their clips
said by that voice (`harness.caller_clips`), with figures per split against the target."""

from __future__ import annotations

import asyncio
import functools
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialog.loader import load_flows
from harness.callers import CallerVoice
from harness.checks import Checks
from harness.replay import answering, replay_scenario
from harness.scenario import Scenario, load_scenario, scenario_files
from harness.target import ReplayTarget, target_for

if TYPE_CHECKING:
    from voice.settings import Settings

__all__ = ["TARGET_RATE", "run_voices"]

TARGET_RATE = 0.95
"""The share of calls in the test voices that must reach the right outcome."""


@dataclass
class _VoiceRun:
    voice: CallerVoice
    reports: list[dict[str, Any]]
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [r["scenario"] for r in self.reports if not r["passed"]]


def _heard(report: dict[str, Any]) -> list[str]:
    """What the agent recorded of the caller's turns (a keypad or injected turn says so)."""
    heard = []
    for turn in report.get("turns", []):
        if turn["role"] == "caller":
            source = turn.get("source")
            heard.append(
                turn["text"] if source in (None, "audio") else f"[{source}] {turn['text']}"
            )
    return heard


def _calls(runs: list[_VoiceRun], split: str) -> dict[str, Any]:
    chosen = [run for run in runs if run.voice.split == split]
    calls = sum(len(run.reports) for run in chosen)
    passed = sum(len(run.reports) - len(run.failed) for run in chosen)
    return {
        "voices": [run.voice.name for run in chosen],
        "calls": calls,
        "passed": passed,
        "rate": passed / calls if calls else None,
        "target": TARGET_RATE,
        "met": bool(calls) and passed / calls >= TARGET_RATE,
    }


async def run_voices(
    target: Path,
    voices: list[CallerVoice],
    url: str | None,
    settings: Settings,
    out: Path,
    realtime: bool,
    json_path: Path | None,
    *,
    answer_checks: bool = True,
) -> int:
    """Replay the spoken scenarios once per caller voice, their clips said by that voice; the
    caller answers the agent's checks (`harness.checks`) unless `answer_checks` is False."""
    from rich.console import Console
    from rich.markup import escape

    from harness.caller_clips import (
        MissingClipError,
        caller_clip_texts,
        clip_text,
        clips_used,
        is_spoken,
        renderings,
    )
    from harness.callers import missing_tools

    console = Console(stderr=False, highlight=False)
    if not target.exists():
        console.print(f"[red]{target} does not exist[/red]")
        return 2
    if target.suffix.lower() == ".wav":
        console.print("[red]--caller-voice replays scenarios; a WAV has its own voice[/red]")
        return 2
    paths = scenario_files(target) if target.is_dir() else [target]
    if not paths:
        console.print(f"[red]no scenarios (*.yaml) in {target}[/red]")
        return 2
    try:
        scenarios = [load_scenario(path) for path in paths]
        texts = caller_clip_texts()
    except (OSError, ValueError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 2
    spoken = [s for s in scenarios if is_spoken(s)]
    left_out = [s.name for s in scenarios if not is_spoken(s)]
    problems = []
    for scenario in spoken:
        for clip in clips_used([scenario]):
            try:
                clip_text(clip, texts)
            except MissingClipError as exc:
                problems.append(f"{scenario.name}: {exc}")
    if problems:
        for problem in problems:
            console.print(f"[red]{escape(problem)}[/red]")
        return 2
    if not spoken:
        console.print("[red]no scenario has a say:/barge_in: turn: nothing a voice changes[/red]")
        return 2
    if missing := missing_tools(voices):
        console.print(f"[red]missing {', '.join(missing)} for these voices: make voices[/red]")
        return 2
    console.print(
        f"{len(spoken)} spoken scenarios in {len(voices)} caller voice(s): "
        + ", ".join(f"{v.name} ({v.split})" for v in voices)
    )
    if left_out:
        console.print(
            f"left out, the same in every voice (no say:/barge_in: turn): {len(left_out)}: "
            + ", ".join(left_out)
        )
    out.mkdir(parents=True, exist_ok=True)
    topics = load_flows(settings.flows_dir).topics
    runs: list[_VoiceRun] = []
    async with target_for(url, settings) as server:
        for voice in voices:
            runs.append(
                await _run_voice(
                    console, voice, spoken, texts, server, out, realtime, answer_checks, topics
                )
            )
            run = runs[-1]
            console.print(
                f"[bold]{voice.name}[/bold] ({voice.split}): "
                f"{len(run.reports) - len(run.failed)}/{len(run.reports)} passed "
                f"in {run.seconds:.0f} s"
                + (f"; failed: {', '.join(run.failed)}" if run.failed else "")
            )
            for report in run.reports:
                report["clips"] = {
                    clip.stem: renderings(voice, texts[clip.stem])
                    for clip in clips_used(s for s in spoken if s.name == report["scenario"])
                }
    _print_voices(console, runs)
    if json_path is not None:
        data = {
            "target": str(target),
            "realtime": realtime,
            "left_out": left_out,
            "voices": [
                {
                    "voice": run.voice.name,
                    "split": run.voice.split,
                    "engine": run.voice.engine,
                    "description": run.voice.description,
                    "seconds": round(run.seconds, 1),
                    "total": len(run.reports),
                    "passed": len(run.reports) - len(run.failed),
                    "failed": run.failed,
                    "results": [{**r, "heard": _heard(r)} for r in run.reports],
                }
                for run in runs
            ],
            "test": _calls(runs, "test"),
            "tuning": _calls(runs, "tuning"),
            "heldout": _calls(runs, "heldout"),
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(data, indent=2, default=str))
        console.print(f"wrote {json_path}")
    return 0 if all(not run.failed for run in runs) else 1


async def _run_voice(
    console,
    voice: CallerVoice,
    spoken: list[Scenario],
    texts: dict[str, str],
    server: ReplayTarget,
    out: Path,
    realtime: bool,
    answer_checks: bool,
    topics: dict[str, str],
) -> _VoiceRun:
    from harness.caller_clips import parts_of, render_clips, say_clip, with_clips

    started = time.monotonic()
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"postvoice-{voice.name}-") as tmp:
        clips = await asyncio.to_thread(render_clips, spoken, voice, Path(tmp), texts)
        # what each clip says, its pauses left out ("It's one zero |0.8| zero three.")
        said = {str(new): " ".join(parts_of(texts[old.stem])[0]) for old, new in clips.items()}
        for scenario in spoken:
            t0 = time.monotonic()
            drive = None
            if answer_checks:
                meant = [topics[i] for i in scenario.expect.intents if i in topics]
                speak = functools.partial(say_clip, voice)
                drive = answering(Checks(server, speak, said, meant), server)
            try:
                if server.reset is not None:  # each scenario starts from the designed shop
                    await asyncio.to_thread(server.reset)
                report = await replay_scenario(
                    with_clips(scenario, clips),
                    server,
                    out / voice.name / scenario.name,
                    realtime,
                    drive=drive,
                )
            except Exception as exc:  # one broken call must not stop the others
                report = {"scenario": scenario.name, "passed": False, "turns": []}
                report["failures"] = [f"error: {exc}"]
            reports.append(report)
            console.print(
                f"  {voice.name} {scenario.name}: "
                + ("pass" if report["passed"] else "FAIL")
                + f" ({time.monotonic() - t0:.0f} s)",
                markup=False,
            )
    return _VoiceRun(voice, reports, time.monotonic() - started)


def _print_voices(console, runs: list[_VoiceRun]) -> None:
    from rich.table import Table

    table = Table(title="replay in caller voices")
    for column in ("voice", "split", "passed", "seconds", "failed"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.voice.name,
            run.voice.split,
            f"{len(run.reports) - len(run.failed)}/{len(run.reports)}",
            f"{run.seconds:.0f}",
            ", ".join(run.failed),
        )
    console.print(table)
    failures = [(run, r) for run in runs for r in run.reports if not r["passed"]]
    if failures:
        console.print("failures (voice, scenario: what was missed — what the caller was heard as):")
    for run, report in failures:
        heard = " / ".join(f'"{text}"' for text in _heard(report)) or "nothing"
        console.print(
            f"  {run.voice.name} {report['scenario']}: {'; '.join(report['failures'])}"
            f" — heard: {heard}",
            markup=False,
        )
    for split in ("test", "heldout", "tuning"):
        calls = _calls(runs, split)
        if not calls["calls"]:
            continue
        line = (
            f"{split} voices: {calls['passed']}/{calls['calls']} calls passed ({calls['rate']:.1%})"
        )
        if split == "test":
            verdict = "met" if calls["met"] else "NOT met"
            line += f", target {TARGET_RATE:.0%}: {verdict}"
        elif split == "tuning":
            line += " (tuning voices: not a reported figure)"
        else:
            line += " (voices no change has seen)"
        console.print(line, markup=False)
    if not any(run.voice.split == "test" for run in runs):
        console.print("no test voice in this run: no figure against the target", markup=False)
