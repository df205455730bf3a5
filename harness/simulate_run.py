"""The `postvoice simulate` command: plan the calls, make them C at a time, write the reports.

Without `--url` the server runs in this process on a freshly seeded demo shop, reseeded before
each wave of up to C calls, its decisions forgotten (`fresh_shop`: calls return items and
change addresses, so each wave starts from the designed shop). No two calls of a wave touch
the same order or come from the same number (`waves`), so a call finds the shop as designed
whichever calls share its wave; a wave is smaller than C when the calls left all overlap.
Against `--url` they run on the server's data as it is, in the same waves. Each call writes
`DIR/<n>-<persona>/report.json`; `DIR/summary.json` holds the figures of
`harness.simulate_summary`. Exit 0 when every call reached its persona's expected outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.callers import NOISE_LEVELS, missing_tools
from harness.persona import load_personas
from harness.simulate import CallPlan, plan_calls, served_transcriber, simulate_call
from harness.simulate_summary import print_summary, summarize
from harness.target import ReplayTarget, in_process_server, target_for

if TYPE_CHECKING:
    from harness.callers import CallerVoice
    from voice.settings import Settings
    from voice.stt import Transcriber

__all__ = ["broken_report", "fresh_shop", "run_calls", "run_simulate", "waves"]


async def run_calls(
    plans: Sequence[CallPlan],
    target: ReplayTarget,
    *,
    transcriber: Transcriber | None,
    concurrency: int = 1,
    realtime: bool = False,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Every planned call, in `waves` of up to `concurrency`, the shop reseeded before each
    wave (when the target can be); one report per plan, in plan order. A call that breaks is a
    failed report, not the end of the run."""
    reports: dict[int, dict[str, Any]] = {}
    for wave in waves(plans, concurrency):
        if target.reset is not None:
            await asyncio.to_thread(target.reset)
        results = await asyncio.gather(
            *(simulate_call(p, target, transcriber=transcriber, realtime=realtime) for p in wave),
            return_exceptions=True,
        )
        for plan, result in zip(wave, results, strict=True):
            broken = isinstance(result, BaseException)
            reports[plan.index] = broken_report(plan, result) if broken else result
            if progress is not None:
                progress()
    return [reports[plan.index] for plan in plans]


def waves(plans: Sequence[CallPlan], concurrency: int) -> list[list[CallPlan]]:
    """The plans in waves of at most `concurrency` whose calls touch nothing in common
    (`Persona.touches`): each wave takes, in plan order, every call left that fits, until full.
    A call that overlaps the wave waits for a later one, so a wave may be smaller."""
    left = list(plans)
    result: list[list[CallPlan]] = []
    while left:
        wave: list[CallPlan] = []
        taken: set[str] = set()
        for plan in left:
            touches = plan.persona.touches()
            if len(wave) < concurrency and not touches & taken:
                wave.append(plan)
                taken |= touches
        placed = {plan.index for plan in wave}
        left = [plan for plan in left if plan.index not in placed]
        result.append(wave)
    return result


@contextlib.asynccontextmanager
async def fresh_shop(engines: Any = None):
    """The real app in this process on a temporary demo shop, whose `reset` reseeds it and
    empties its outbox (`harness.target`)."""
    with tempfile.TemporaryDirectory(prefix="postvoice-simulate-") as tmp:
        async with in_process_server(f"sqlite:///{Path(tmp) / 'shop.db'}", engines) as target:
            yield target


def broken_report(plan: CallPlan, error: BaseException) -> dict[str, Any]:
    """The report of a call that could not be made."""
    return {
        "scenario": plan.name,
        "persona": plan.persona.name,
        "passed": False,
        "failures": [f"error: {error!r}"],
        "goals": [g.procedure for g in plan.persona.goals],
        "voice": plan.voice,
        "noise": plan.noise,
        "loss": plan.loss,
        "frames_sent": 0,
        "frames_lost": 0,
        "share_lost": None,
        "latency_ms": [],
        "caller_turns": [],
        "repairs": 0,
        "turns_to_resolution": None,
        "seconds_to_resolution": None,
        "went_wrong": None,
    }


def run_simulate(
    personas_path: Path,
    *,
    settings: Settings,
    out: Path,
    voices: Sequence[CallerVoice],
    noises: Sequence[str] = tuple(NOISE_LEVELS),
    losses: Sequence[float] = (0.0,),
    calls: int | None = None,
    concurrency: int = 1,
    seed: int = 0,
    url: str | None = None,
    realtime: bool = False,
    fast: bool = False,
) -> int:
    """Run the personas at `personas_path`; 0 when every call passed, 1 when one failed, 2
    when nothing could run. `fast`: hear the agent from the call record, not the wire. No
    `voices`: speak by injected text. `losses`: the packet loss levels drawn per call."""
    from rich.console import Console

    console = Console()
    try:
        personas = load_personas(personas_path)
    except (OSError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    if not personas:
        console.print(f"[red]no personas in {personas_path}[/red]")
        return 2
    missing = missing_tools(voices) if voices else []
    if missing:
        console.print(f"[red]caller voices need {', '.join(missing)} (make voices)[/red]")
        return 2
    plans = plan_calls(personas, calls, voices, noises, seed, losses)
    reports = asyncio.run(
        _run(plans, url, settings, None if fast else served_transcriber(settings),
             concurrency, realtime, console)
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for report in reports:
        folder = out / report["scenario"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(report, indent=2, default=str))
    summary = summarize(reports)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print_summary(console, summary)
    return 0 if summary["passed"] == summary["calls"] else 1


async def _run(
    plans: list[CallPlan],
    url: str | None,
    settings: Settings,
    transcriber: Transcriber | None,
    concurrency: int,
    realtime: bool,
    console: Any,
) -> list[dict[str, Any]]:
    from rich.progress import Progress

    if transcriber is not None:
        await asyncio.to_thread(transcriber.warm)
    async with target_for(url, settings) if url else fresh_shop() as target:
        with Progress(console=console) as progress:
            task = progress.add_task("simulating", total=len(plans))
            return await run_calls(
                plans,
                target,
                transcriber=transcriber,
                concurrency=concurrency,
                realtime=realtime,
                progress=lambda: progress.advance(task),
            )
