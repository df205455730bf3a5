"""`postvoice bench`: reply latency, capacity and memory of the real server, measured as a caller.

The benchmark starts `postvoice serve` as its own process (on a free loopback port, a freshly
seeded demo shop in a temporary SQLite database, signatures checked with a throwaway auth
token), or talks to a running server (`--url`). It waits for `/healthz`, makes one warm-up call
that is not counted, then plays scenario calls through the real webhook and the real media
WebSocket, `concurrency` at a time, in real time (a 20 ms frame every 20 ms, the agent's audio
"played" at the speed of speech) unless `fast` is set. By default the scenarios are the
fixtures' spoken inbound calls that leave the shop as they found it (`default_scenarios`), so
they can be played any number of times on one database. With `personas` the calls are simulated
callers instead (`harness.simulate`), conversations that branch on what the agent says: the
personas that leave the shop as they found it (`repeatable_personas`), each speaking through a
test caller voice in quiet (by injected text when `fast`, so STT figures are then empty) and
hearing the agent from the live call record, so the caller's own ears take none of the
server's CPU; each call's simulate report is kept under `out` (`harness.bench_reports`), and
the failures are printed with the caller turn where each went wrong.

What each figure means:

- **Reply latency** (`p50_ms`, `p95_ms`, `max_ms`): for every agent reply to a caller turn, from
  the end of the caller's last voiced frame (found by the VAD on the caller's side, so clip
  padding does not count) to the first agent `media` message received — what the caller
  waits, end-of-turn silence included (see `harness.replay`). Percentiles are nearest-rank: the
  p95 is the smallest reply latency that at least 95% of replies do not exceed.
- **STT / TTS / end-of-turn per reply**: the server's own breakdown of each reply (`timing` on
  the agent turn of the call record): `stt_ms` from the end of the turn to the transcript (the
  wait for a decoder included; 0 when a transcription started at a pause was ready),
  `tts_ms` from the dialog's sentence to its first audio sent, `eot_wait_ms` the end-of-turn
  silence; and `stt_decode_ms`, the decoding time of the utterance itself (`timing` on the
  caller's turn), wherever it fell. STT figures only count replies to speech.
- **Underruns**: gaps in the agent's audio once a reply has started. Once the first audio of a
  reply arrives, a caller's phone plays it continuously; a message that arrives more than
  `UNDERRUN_ALLOWANCE_MS` (a 20 ms frame plus 40 ms of network jitter) after the audio received
  before it has run out is one underrun — the caller hears a gap. Playback then resumes from
  that message, so one gap counts once. A reply ends at its `r<n>:<ms>` mark or a `clear`.
- **cpu_s_per_call_min**: the server process's CPU seconds (user + system, its children
  included) during the measured calls, divided by the minutes of those calls (stream time, from
  the first frame to the last audio either side sent).
- **peak_rss_mb**: the largest resident memory of the server process (children included),
  sampled every 200 ms during the measured calls; `rss_start_mb` / `rss_end_mb` around them.
- **max_concurrency** (`find_max`): calls at C = 1, 2, 4, 6, 8, 10, 12, … at a time, each
  level in whole rounds of the scenarios (`level_calls`); the last C up to which every level's
  p95 stayed at or under `P95_LIMIT_MS` with no underruns and at most `CUTOFF_LIMIT` of the
  caller turns cut off. `max_concurrency_latency` is the same without the cut-off rule: the
  ramp goes on while latency holds, since which callers pause decides the cut-offs more than
  the load does.
- **Cut-offs** (`cutoff_rate`, `cutoffs`): the agent began a reply while the caller was still
  inside the same utterance: it started playing between two voiced frames of one caller clip
  that are at most `CUTOFF_RESUME_MS` (1.5 s) apart. The rate is per caller utterance played;
  each cut-off is listed with its call and the caller turn (clip number, from 1).
- **Time to answer** (`answer_p50_ms`, `answer_p95_ms`): from the end of the caller's speech
  to the moment the first sentence that carries an answer began to play: not a filler (a
  turn the dialog marked `Say(filler=True)`, recorded with source "filler") nor a bare
  acknowledgement ("Sure.", "Okay.").

A scenario expectation that fails (the agent said something else) counts in `failed_calls` and
the benchmark goes on; only infrastructure errors (the server does not start or dies, no call
could be made) give a non-zero exit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bench_figures import (
    CUTOFF_LIMIT,
    P95_LIMIT_MS,
    CallSample,
    capacity,
    level_calls,
    level_keeps_pace,
    level_passes,
    ramp,
    sample_of,
    summarize,
)
from harness.bench_reports import PersonaReports
from harness.bench_server import (
    InfrastructureError,
    ProcessMonitor,
    Server,
    machine_info,
    running_server,
    started_server,
)
from harness.fake_twilio import FakeTwilio
from harness.persona import Persona, load_personas
from harness.replay import CallResult, call_scenario, take_turn
from harness.scenario import Scenario, Turn, load_scenarios
from harness.simulate import CallPlan, converse, plan_calls
from harness.simulate_summary import print_failures

if TYPE_CHECKING:
    from voice.settings import Settings

__all__ = [
    "BenchOptions",
    "default_scenarios",
    "long_call_drive",
    "long_call_scenario",
    "parse_env",
    "persona_calls",
    "print_result",
    "repeatable_personas",
    "run_bench",
    "run_calls",
]

CALL_TIMEOUT_S = 900.0
LONG_CALL_CLIPS = ("where_is_my_order.wav", "yes_please.wav")
ROOT = Path(__file__).resolve().parents[1]
PERSONA_REPORTS = Path("out/bench-personas")
DEFAULT_SCENARIOS = ROOT / "audio_fixtures" / "scenarios"


# --- scenarios and calls ----------------------------------------------------------------------


# Events that change the shop for good: a scenario expecting one finds its own change the
# second time it runs (the return already exists), so it cannot be repeated on one database.
LASTING_CHANGES = frozenset(
    {
        "return.created",
        "exchange.created",
        "replacement.created",
        "refund.created",
        "address.changed",
        "redirect.requested",
        "delivery.rescheduled",
    }
)


def default_scenarios(directory: Path = DEFAULT_SCENARIOS) -> list[Scenario]:
    """The audio scenarios of a directory that can be played again and again: inbound calls
    whose caller speaks (a `say:` or `barge_in:` turn), never skips speech to text with a
    `text:` turn, and leaves the shop as it found it."""
    chosen = []
    for scenario in load_scenarios(directory):
        kinds = {t.kind for t in scenario.turns}
        spoken = kinds & {"say", "barge_in"} and "text" not in kinds
        expected = {*scenario.expect.actions, *(e.get("type") for e in scenario.expect.events)}
        repeatable = not LASTING_CHANGES & expected
        if scenario.direction == "inbound" and spoken and repeatable:
            chosen.append(scenario)
    return chosen


def repeatable_personas(personas: Sequence[Persona]) -> list[Persona]:
    """The personas whose expected outcome leaves the shop as it found it (as
    `default_scenarios`), so they can call any number of times on one database."""
    chosen = []
    for persona in personas:
        expected = {*persona.expect.actions, *(e.get("type") for e in persona.expect.events)}
        if not LASTING_CHANGES & expected:
            chosen.append(persona)
    return chosen


def persona_calls(directory: Path, *, fast: bool) -> list[CallPlan]:
    """One call per repeatable persona of `directory`, seed 0: in a test voice drawn per call,
    in quiet, or by text when `fast`. The callers take turns (one persona of each number, then
    the next of each), so concurrent calls are mostly different customers, not one person
    calling four times at once."""
    from harness.callers import test_voices

    by_number: dict[str, list[Persona]] = {}
    for persona in repeatable_personas(load_personas(directory)):
        by_number.setdefault(persona.calls_from, []).append(persona)
    turns = zip_longest(*by_number.values())
    personas = [persona for turn in turns for persona in turn if persona is not None]
    return plan_calls(personas, None, [] if fast else test_voices(), ["quiet"], 0)


BenchCall = Scenario | CallPlan
"""What one bench call plays: a scenario's turns, or a simulated caller's conversation."""


async def _call(
    item: BenchCall, server: Server, realtime: bool, index: int, reports: PersonaReports | None
) -> CallResult:
    if isinstance(item, CallPlan):
        call = await converse(item, server.target, transcriber=None, realtime=realtime)
        if reports is not None:
            reports.keep(index, item, call)
        return call.result
    return await call_scenario(item, server.target, realtime)


async def run_calls(
    server: Server,
    scenarios: Sequence[BenchCall],
    calls: int,
    concurrency: int,
    *,
    realtime: bool,
    stagger_s: float = 1.0,
    on_call_done: Callable[[int], None] | None = None,
    reports: PersonaReports | None = None,
) -> list[CallSample]:
    """`calls` calls, `concurrency` at a time, cycling through `scenarios` (or planned
    simulated callers, whose reports go to `reports`). Call i plays scenario i mod n; each of
    the `concurrency` callers starts `stagger_s` after the previous."""
    queue = list(range(calls))
    samples: list[CallSample | None] = [None] * calls
    done = 0

    async def caller(index: int) -> None:
        nonlocal done
        await asyncio.sleep(index * stagger_s)
        while queue:
            i = queue.pop(0)
            scenario = scenarios[i % len(scenarios)]
            try:
                result = await asyncio.wait_for(
                    _call(scenario, server, realtime, i, reports), CALL_TIMEOUT_S
                )
                samples[i] = sample_of(scenario.name, result)
            except Exception as exc:  # one failed call is a figure, not the end of the run
                samples[i] = CallSample(scenario=scenario.name, error=_describe(exc))
                if reports is not None and isinstance(scenario, CallPlan):
                    reports.broken(i, scenario, exc)
            done += 1
            if on_call_done is not None:
                on_call_done(done)

    await asyncio.gather(*(caller(k) for k in range(min(concurrency, calls))))
    return [s for s in samples if s is not None]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"the call did not finish in {CALL_TIMEOUT_S:.0f} s"
    return f"{type(exc).__name__}: {exc}"


def long_call_scenario(seconds: float, clips: Path) -> Scenario:
    """A caller who keeps asking where their order is, for `seconds` of call time."""
    turns = []
    for _ in range(max(1, int(seconds // 4))):  # more turns than the call can hold
        turns += [Turn(say=clips / name) for name in LONG_CALL_CLIPS] + [Turn(silence=2.0)]
    return Scenario.model_validate(
        {"name": f"long_call_{int(seconds)}s", "from": "+14155550101", "turns": turns}
    )


@dataclass
class LongCallOutcome:
    """How far a long call got, and the server's memory along it."""

    seconds_reached: float = 0.0
    ended_by_agent: bool = False
    rss_samples: list[dict[str, float]] = field(default_factory=list)


def long_call_drive(
    seconds: float, every_s: float, monitor: ProcessMonitor, outcome: LongCallOutcome
) -> Callable[[FakeTwilio, Scenario], Any]:
    """Turn taking for the long call: the scenario's turns until `seconds` of call time, the
    server's RSS noted every `every_s` seconds of call time."""

    async def drive(call: FakeTwilio, scenario: Scenario) -> None:
        answer_to, next_sample = 0, 0.0
        for turn in scenario.turns:
            now_s = call.now_ms() / 1000
            if now_s >= next_sample:
                rss = monitor.rss_mb()
                if rss is not None:
                    outcome.rss_samples.append({"call_s": round(now_s, 1), "rss_mb": round(rss, 1)})
                next_sample += every_s
            if answer_to >= 0:
                await call.wait_reply(answer_to)
            if call.closed.is_set():
                outcome.ended_by_agent = True
                break
            if now_s >= seconds:
                await call.hangup()
                break
            answer_to = await take_turn(call, turn)
        outcome.seconds_reached = call.now_ms() / 1000

    return drive


# --- the command ------------------------------------------------------------------------------


@dataclass
class BenchOptions:
    """What `postvoice bench` was asked to do."""

    calls: int = 6
    concurrency: int = 1
    json_path: Path | None = None
    scenarios_dir: Path | None = None
    personas_dir: Path | None = None  # simulated callers instead of scenarios
    url: str | None = None
    server_pid: int | None = None
    fast: bool = False
    find_max: bool = False
    max_level: int = 32
    min_level: int = 1  # --find-max starts its ramp here
    long_call_s: float | None = None
    rss_every: int | None = None
    stagger_s: float = 1.0
    env: dict[str, str] = field(default_factory=dict)
    server_args: list[str] = field(default_factory=list)
    log_file: Path | None = None  # keep the started server's log here
    out: Path = PERSONA_REPORTS  # with personas_dir: each call's report and summary.json


def parse_env(pairs: Iterable[str]) -> dict[str, str]:
    """`KEY=VALUE` strings as a mapping; raises ValueError naming a malformed one."""
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--env wants KEY=VALUE, got {pair!r}")
        env[key.strip()] = value
    return env


def run_bench(options: BenchOptions, settings: Settings) -> int:
    """Run the benchmark, print its table, write its JSON; the exit code (2: infrastructure).
    A server at `options.url` is reached with the secrets of `settings`."""
    from rich.console import Console

    console = Console()
    try:
        result = asyncio.run(_bench(options, settings, console))
    except InfrastructureError as exc:
        console.print(f"[red]bench could not measure:[/red] {exc}")
        return 2
    print_result(console, result)
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(result, indent=2))
        console.print(f"written to {options.json_path}")
    return 0


def _calls_to_play(options: BenchOptions) -> Sequence[BenchCall]:
    if options.personas_dir is not None:
        try:
            return persona_calls(options.personas_dir, fast=options.fast)
        except (OSError, ValueError) as exc:
            raise InfrastructureError(str(exc)) from exc
    if options.scenarios_dir is not None:
        return load_scenarios(options.scenarios_dir)
    return default_scenarios()


async def _bench(options: BenchOptions, settings: Settings, console: Any) -> dict[str, Any]:
    scenarios = _calls_to_play(options)
    if not scenarios:
        raise InfrastructureError("no scenarios or personas to play")
    levels = ramp(options.max_level, options.min_level) if options.find_max else []
    top = max([options.concurrency, *levels])
    if options.url:
        server_cm = running_server(options.url, options.server_pid, settings)
    else:
        server_cm = started_server(options.env, options.server_args, top, options.log_file)
    async with server_cm as server:
        monitor = ProcessMonitor(server.pid)
        monitor.start()
        try:
            console.print("warming up: one call, not counted")
            warm = await run_calls(server, scenarios[:1], 1, 1, realtime=not options.fast)
            if warm[0].error:
                raise InfrastructureError(f"the warm-up call failed: {warm[0].error}")
            result: dict[str, Any] = {
                "machine": machine_info(server.env),
                "scenarios": sorted({s.name for s in scenarios}),
                "server_pid_measured": server.pid is not None,
            }
            if options.long_call_s is not None:
                result |= await _long_call(server, monitor, options, console)
            elif options.find_max:
                result |= await _find_max(server, monitor, scenarios, options, console)
            else:
                every = options.rss_every or max(1, options.calls // 10)
                result |= await _measure(
                    server,
                    monitor,
                    scenarios,
                    options.calls,
                    options.concurrency,
                    options,
                    console,
                    rss_every=every,
                    reports_dir=options.out,
                )
        finally:
            monitor.stop()
        if not monitor.alive():
            raise InfrastructureError(f"the server died during the run:\n{server.log_tail()}")
    return result


async def _measure(
    server: Server,
    monitor: ProcessMonitor,
    scenarios: Sequence[BenchCall],
    calls: int,
    concurrency: int,
    options: BenchOptions,
    console: Any,
    *,
    rss_every: int | None = None,
    reports_dir: Path | None = None,
) -> dict[str, Any]:
    """One run of `calls` calls; with persona calls, their reports written to `reports_dir`."""
    mode = "fast (processing only)" if options.fast else "real time"
    console.print(f"{calls} call(s), {concurrency} at a time, {mode}")
    rss_samples: list[dict[str, float]] = []
    personas = any(isinstance(s, CallPlan) for s in scenarios)
    reports = PersonaReports(reports_dir) if personas and reports_dir is not None else None

    def note_rss(done: int) -> None:
        if rss_every and done % rss_every == 0:
            rss = monitor.rss_mb()
            if rss is not None:
                rss_samples.append({"calls": done, "rss_mb": round(rss, 1)})

    rss_start, cpu_start, started = monitor.rss_mb(), monitor.cpu_s(), time.monotonic()
    samples = await run_calls(
        server,
        scenarios,
        calls,
        concurrency,
        realtime=not options.fast,
        stagger_s=options.stagger_s,
        on_call_done=note_rss,
        reports=reports,
    )
    cpu_end, wall = monitor.cpu_s(), time.monotonic() - started
    if samples and all(s.error for s in samples):
        raise InfrastructureError(f"no call could be made: {samples[0].error}")
    rss_end = monitor.rss_mb()
    summary = summarize(
        samples,
        concurrency=concurrency,
        realtime=not options.fast,
        cpu_s=None if cpu_start is None or cpu_end is None else cpu_end - cpu_start,
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        peak_rss_mb=_peak(monitor.peak_since(started), rss_start, rss_end),
        wall_s=wall,
    )
    if rss_every:
        summary["rss_samples"] = rss_samples
    if reports is not None:
        simulated = reports.write()
        summary["reports"] = str(reports.out)
        summary["persona_failures"] = simulated["failures"]
    return summary


def _peak(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


async def _find_max(
    server: Server,
    monitor: ProcessMonitor,
    scenarios: Sequence[BenchCall],
    options: BenchOptions,
    console: Any,
) -> dict[str, Any]:
    levels: list[dict[str, Any]] = []
    for c in ramp(options.max_level, options.min_level):
        calls = level_calls(c, options.calls, len(scenarios))
        summary = await _measure(
            server,
            monitor,
            scenarios,
            calls,
            c,
            options,
            console,
            reports_dir=options.out / f"c{c}",
        )
        summary["passed"] = level_passes(summary)
        summary["kept_pace"] = level_keeps_pace(summary)
        levels.append(summary)
        console.print(
            f"  C={c} ({calls} calls): p95 {summary['p95_ms']} ms, "
            f"underruns {summary['underruns']}, cut-offs {summary['cutoff_rate']}, "
            f"{'holds' if summary['passed'] else 'does not hold'}"
        )
        # Cut-offs depend on the callers more than on the load: the ramp goes on while the
        # latency holds, so both capacities are known.
        if not summary["kept_pace"]:
            break
    best = capacity(levels, level_passes)
    paced = capacity(levels, level_keeps_pace)
    # The figures shown are those at the highest level that held (else at C = 1).
    shown = next((level for level in levels if level["concurrency"] == best), levels[0])
    return {
        **shown,
        "levels": levels,
        "max_concurrency": best,
        "max_concurrency_latency": paced,
        "every_level_held": all(level["kept_pace"] for level in levels),  # up to --max-level
    }


async def _long_call(
    server: Server, monitor: ProcessMonitor, options: BenchOptions, console: Any
) -> dict[str, Any]:
    seconds = float(options.long_call_s or 0)
    clips = ROOT / "audio_fixtures" / "clips"
    scenario = long_call_scenario(seconds, clips)
    every_s = max(10.0, seconds / 20)
    outcome = LongCallOutcome()
    console.print(
        f"one call of {seconds:.0f} s of call time ({'fast' if options.fast else 'real time'})"
    )
    rss_start, cpu_start, started = monitor.rss_mb(), monitor.cpu_s(), time.monotonic()
    result = await call_scenario(
        scenario,
        server.target,
        not options.fast,
        drive=long_call_drive(seconds, every_s, monitor, outcome),
    )
    cpu_end, rss_end = monitor.cpu_s(), monitor.rss_mb()
    sample = sample_of(scenario.name, result)
    summary = summarize(
        [sample],
        concurrency=1,
        realtime=not options.fast,
        cpu_s=None if cpu_start is None or cpu_end is None else cpu_end - cpu_start,
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        peak_rss_mb=_peak(monitor.peak_since(started), rss_start, rss_end),
        wall_s=time.monotonic() - started,
    )
    summary["long_call"] = {
        "seconds_asked": seconds,
        "seconds_reached": round(outcome.seconds_reached, 1),
        "ended_by_agent": outcome.ended_by_agent,
        "end_reason": result.record.get("end_reason"),
    }
    summary["rss_samples"] = outcome.rss_samples
    return summary


# --- output -----------------------------------------------------------------------------------


def _held(level: dict[str, Any]) -> str:
    if level["passed"]:
        return "yes"
    return "latency only" if level.get("kept_pace") else "no"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value}{unit}"


def targets_for(result: dict[str, Any]) -> dict[str, tuple[str, Callable[[Any], bool]]]:
    """The issue's targets that apply to a run, by figure: (wording, test)."""
    if not result.get("realtime"):
        return {}  # processing time only: the latency targets do not apply
    zero = ("0", lambda v: v == 0)
    cut = (f"≤ {CUTOFF_LIMIT:.0%}", lambda v: v <= CUTOFF_LIMIT)
    if result.get("concurrency") == 1:
        return {
            "p50_ms": ("≤ 800 ms", lambda v: v <= 800),
            "p95_ms": ("≤ 1200 ms", lambda v: v <= 1200),
            "underruns": zero,
            "cutoff_rate": cut,
        }
    if result.get("concurrency") == 10 and not result.get("levels"):
        # issue 16: answer at a person's pace, ten calls at a time
        return {
            "p50_ms": ("≤ 350 ms", lambda v: v <= 350),
            "p95_ms": ("≤ 600 ms", lambda v: v <= 600),
            "answer_p50_ms": ("≤ 500 ms", lambda v: v <= 500),
            "answer_p95_ms": ("≤ 800 ms", lambda v: v <= 800),
            "underruns": zero,
            "cutoff_rate": cut,
        }
    return {
        "p95_ms": (f"≤ {P95_LIMIT_MS} ms", lambda v: v <= P95_LIMIT_MS),
        "underruns": zero,
        "cutoff_rate": cut,
    }


def print_result(console: Any, result: dict[str, Any]) -> None:
    """The run's figures as a table (and the levels of --find-max, the RSS samples)."""
    from rich.table import Table

    targets = targets_for(result)
    table = Table(title="postvoice bench")
    for column in ("figure", "value", "target"):
        table.add_column(column)
    mode = "real time" if result.get("realtime") else "fast (processing only)"
    rows = [
        ("calls", "calls", _fmt(result.get("calls"))),
        ("concurrency", "concurrency", _fmt(result.get("concurrency"))),
        ("mode", "", mode),
        ("replies", "replies", _fmt(result.get("replies"))),
        ("reply latency p50", "p50_ms", _fmt(result.get("p50_ms"), " ms")),
        ("reply latency p95", "p95_ms", _fmt(result.get("p95_ms"), " ms")),
        ("reply latency max", "max_ms", _fmt(result.get("max_ms"), " ms")),
        ("time to answer p50", "answer_p50_ms", _fmt(result.get("answer_p50_ms"), " ms")),
        ("time to answer p95", "answer_p95_ms", _fmt(result.get("answer_p95_ms"), " ms")),
        ("cut-offs", "cutoff_rate", _cutoffs(result)),
        ("server-side latency p50 / p95", "", _pair(result, "server_latency_ms")),
        ("STT after end of turn p50 / p95", "", _pair(result, "stt_ms")),
        ("STT decoding p50 / p95", "", _pair(result, "stt_decode_ms")),
        ("TTS per reply p50 / p95", "", _pair(result, "tts_ms")),
        ("end-of-turn wait p50", "", _fmt(result.get("eot_wait_ms_p50"), " ms")),
        ("underruns", "underruns", _fmt(result.get("underruns"))),
        ("CPU s per call-minute", "", _fmt(result.get("cpu_s_per_call_min"))),
        ("RSS start / end / peak", "", _rss(result)),
        ("failed calls", "", _fmt(result.get("failed_calls"))),
    ]
    for name, key, shown in rows:
        target = ""
        if key in targets and result.get(key) is not None:
            wording, test = targets[key]
            verdict = "[green]met[/green]" if test(result[key]) else "[red]missed[/red]"
            target = f"{wording} {verdict}"
        table.add_row(name, shown, target)
    console.print(table)
    if result.get("levels"):
        levels = Table(title="concurrency ramp")
        columns = ("C", "calls", "replies", "p50 ms", "p95 ms", "max ms", "answer p95 ms")
        for column in (*columns, "cut-offs", "underruns", "holds"):
            levels.add_column(column)
        for level in result["levels"]:
            levels.add_row(
                str(level["concurrency"]),
                str(level["calls"]),
                str(level["replies"]),
                _fmt(level["p50_ms"]),
                _fmt(level["p95_ms"]),
                _fmt(level["max_ms"]),
                _fmt(level.get("answer_p95_ms")),
                _fmt(level.get("cutoff_rate")),
                str(level["underruns"]),
                _held(level),
            )
        console.print(levels)
        note = " (every level held: try a higher --max-level)" if result["every_level_held"] else ""
        console.print(
            f"max_concurrency: {result.get('max_concurrency')} (latency alone, cut-offs aside: "
            f"{result.get('max_concurrency_latency')}){note}"
        )
    if result.get("long_call"):
        lc = result["long_call"]
        console.print(
            f"long call: {lc['seconds_reached']} s of {lc['seconds_asked']:.0f} s"
            + (f" (the agent ended it: {lc['end_reason']})" if lc["ended_by_agent"] else "")
        )
    if result.get("rss_samples"):
        points = [
            f"{s['calls']} calls" if "calls" in s else f"{s['call_s']} s"
            for s in result["rss_samples"]
        ]
        console.print(
            "RSS along the run: "
            + ", ".join(
                f"{p}: {s['rss_mb']} MB" for p, s in zip(points, result["rss_samples"], strict=True)
            )
        )
    if result.get("reports"):
        print_failures(console, result.get("persona_failures", []))
        console.print(f"each call's report: {result['reports']}/<n>-<persona>/report.json")
        return
    for failure in result.get("failures", [])[:10]:
        console.print(f"[yellow]{failure['scenario']}[/yellow]: {'; '.join(failure['failures'])}")


def _cutoffs(result: dict[str, Any]) -> str:
    rate = result.get("cutoff_rate")
    if rate is None:
        return "-"
    cut = result.get("cutoffs", [])
    shown = ", ".join(f"{c['scenario']} turn {c['turn']}" for c in cut[:6])
    more = f", … {len(cut) - 6} more" if len(cut) > 6 else ""
    where = f": {shown}{more}" if cut else ""
    return f"{rate:.1%} ({len(cut)} of {result.get('caller_turns')} turns{where})"


def _pair(result: dict[str, Any], key: str) -> str:
    a, b = result.get(f"{key}_p50"), result.get(f"{key}_p95")
    if a is None and b is None:
        return "-"
    return f"{_fmt(a)} / {_fmt(b)} ms"


def _rss(result: dict[str, Any]) -> str:
    values = [result.get(k) for k in ("rss_start_mb", "rss_end_mb", "peak_rss_mb")]
    if all(v is None for v in values):
        return "- (server process not visible)"
    return " / ".join(_fmt(v) for v in values) + " MB"
