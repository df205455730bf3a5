"""The benchmark's figures, from what the replayer saw and what the server recorded.

What each figure means is in `harness.bench`. Percentiles are `integrations.stats.percentile`
(nearest rank), the same as the dashboard's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dialog.understanding import is_backchannel
from harness.fake_twilio import CallState
from harness.replay import CallResult
from integrations.stats import percentile
from voice.audio import SAMPLE_RATE
from voice.tts import speech_chunks

__all__ = [
    "CUTOFF_LIMIT",
    "CUTOFF_RESUME_MS",
    "LEVELS",
    "P95_LIMIT_MS",
    "UNDERRUN_ALLOWANCE_MS",
    "CallSample",
    "answer_latencies",
    "capacity",
    "carries_answer",
    "count_underruns",
    "cpu_per_call_minute",
    "cut_off_turns",
    "level_calls",
    "level_keeps_pace",
    "level_passes",
    "ramp",
    "sample_of",
    "summarize",
    "underrun_gaps",
]

UNDERRUN_ALLOWANCE_MS = 60  # one 20 ms frame plus 40 ms of jitter
P95_LIMIT_MS = 1000  # issue 16: capacity is counted at p95 ≤ 1 s (it was < 1.5 s)
CUTOFF_RESUME_MS = 1500  # a caller who goes on within this was still in the same utterance
CUTOFF_LIMIT = 0.02  # the share of caller turns a level of --find-max may cut off
LEVELS = (1, 2, 4, 6, 8, 10, 12, 14, 16)  # then on in steps of 2 up to `max_level`


def underrun_gaps(
    arrivals: Sequence[tuple[float, int]], allowance_ms: float = UNDERRUN_ALLOWANCE_MS
) -> list[tuple[float, int]]:
    """Gaps a caller would hear inside replies, as `(arrival time s, gap ms)`, from
    `(arrival time s, samples)` per media message (samples 0: the reply ended). See the module
    docstring of `harness.bench` for the definition."""
    gaps: list[tuple[float, int]] = []
    play_start: float | None = None  # when playback of the reply (re)started, seconds
    buffered_ms = 0.0  # audio of the reply received so far
    for at, samples in arrivals:
        if samples <= 0:
            play_start = None
            continue
        if play_start is None:
            play_start, buffered_ms = at, 0.0
        else:
            late_ms = (at - play_start) * 1000 - buffered_ms
            if late_ms > allowance_ms:
                gaps.append((at, round(late_ms)))
                play_start = at - buffered_ms / 1000  # the player stalled and resumes now
        buffered_ms += samples * 1000 / SAMPLE_RATE
    return gaps


def count_underruns(
    arrivals: Sequence[tuple[float, int]], allowance_ms: float = UNDERRUN_ALLOWANCE_MS
) -> int:
    """How many gaps a caller would hear inside replies (see `underrun_gaps`)."""
    return len(underrun_gaps(arrivals, allowance_ms))


def cut_off_turns(state: CallState, resume_ms: int = CUTOFF_RESUME_MS) -> list[int]:
    """The caller utterances (clip numbers, from 1) the agent cut off: a reply began to play
    between two voiced frames of the same clip less than `resume_ms` apart, so the caller was
    still in the middle of what they were saying."""
    voiced = sorted(state.caller_voiced)
    cut: list[int] = []
    i = 0
    for start in sorted(state.reply_starts):
        while i < len(voiced) and voiced[i][0] < start:
            i += 1
        if i == 0 or i == len(voiced):
            continue
        (before, clip), (after, next_clip) = voiced[i - 1], voiced[i]
        if clip == next_clip and after - before <= resume_ms and clip not in cut:
            cut.append(clip)
    return cut


def carries_answer(sentence: str, source: str | None) -> bool:
    """Whether an agent sentence answers: not a filler (a turn the dialog marked so, recorded
    with source "filler") nor a bare acknowledgement ("Sure.", "Okay.", "Got it.")."""
    return source != "filler" and not is_backchannel(sentence)


def answer_latencies(state: CallState, record: dict[str, Any]) -> list[int]:
    """Per caller utterance that got an answer: its last voiced frame to the moment the first
    agent sentence that carries an answer (`carries_answer`) began to play, before the
    caller's next utterance (call time, ms)."""
    turns = {t.get("seq"): t for t in record.get("turns", []) if t.get("role") == "agent"}
    sentences: list[tuple[int, bool]] = []  # (start ms, carries an answer)
    for name, (start, _end) in state.spans.items():
        seq, _, index = name[1:].partition(".")
        turn = turns.get(int(seq)) if seq.isdigit() else None
        if turn is None or not index.isdigit():
            continue
        chunks = speech_chunks(turn.get("text") or "")
        text = chunks[int(index)] if int(index) < len(chunks) else ""
        sentences.append((start, carries_answer(text, turn.get("source"))))
    sentences.sort()
    firsts = {
        clip: min(ts for ts, c in state.caller_voiced if c == clip) for clip in state.speech_ends
    }
    clips = sorted(state.speech_ends)
    latencies = []
    for k, clip in enumerate(clips):
        end = state.speech_ends[clip]
        until = firsts[clips[k + 1]] if k + 1 < len(clips) else None
        for start, answers in sentences:
            if start < end or (until is not None and start >= until):
                continue
            if answers:
                latencies.append(start - end)
                break
    return latencies


def cpu_per_call_minute(cpu_s: float | None, call_ms: float) -> float | None:
    """Server CPU seconds per minute of call; None when either is unknown or zero."""
    if cpu_s is None or call_ms <= 0:
        return None
    return cpu_s / (call_ms / 60_000)


@dataclass
class CallSample:
    """What the benchmark keeps of one call."""

    scenario: str
    call_sid: str = ""
    latencies_ms: list[int] = field(default_factory=list)
    server_latency_ms: list[int] = field(default_factory=list)
    stt_ms: list[int] = field(default_factory=list)
    stt_decode_ms: list[int] = field(default_factory=list)
    tts_ms: list[int] = field(default_factory=list)
    eot_wait_ms: list[int] = field(default_factory=list)
    # Each reply's server-side breakdown (`timing` of its first agent turn) and what it said
    replies: list[dict[str, Any]] = field(default_factory=list)
    answer_ms: list[int] = field(default_factory=list)
    caller_turns: int = 0  # caller utterances played
    cutoffs: list[int] = field(default_factory=list)  # those the agent cut off (clip numbers)
    underruns: int = 0
    # Each underrun: seconds into the call (from the first agent audio) and the gap, ms
    underrun_gaps: list[tuple[float, int]] = field(default_factory=list)
    duration_ms: int = 0
    failures: list[str] = field(default_factory=list)
    error: str | None = None  # the call could not be made or did not finish


def sample_of(scenario: str, result: CallResult) -> CallSample:
    """The figures of one replayed call: client latencies and underruns, server timings."""
    sample = CallSample(
        scenario=scenario,
        call_sid=result.report.get("call_sid", ""),
        latencies_ms=list(result.report.get("latency_ms", [])),
        underrun_gaps=_gaps_from_start(result.state.arrivals),
        duration_ms=result.duration_ms,
        failures=list(result.report.get("failures", [])),
        answer_ms=answer_latencies(result.state, result.record),
        caller_turns=len(result.state.speech_ends),
        cutoffs=cut_off_turns(result.state),
    )
    sample.underruns = len(sample.underrun_gaps)
    source = caller = None
    for turn in sorted(result.record.get("turns", []), key=lambda t: t.get("seq") or 0):
        if turn.get("role") == "caller":
            source, caller = turn.get("source"), turn.get("text")
            heard = turn.get("timing")
            if source == "audio" and isinstance(heard, dict) and heard.get("stt_ms") is not None:
                sample.stt_decode_ms.append(int(heard["stt_ms"]))
            continue
        timing = turn.get("timing")
        if not isinstance(timing, dict) or "latency_ms" not in timing:
            continue
        sample.server_latency_ms.append(int(timing["latency_ms"]))
        sample.replies.append(
            {"seq": turn.get("seq"), "after": source, "caller": (caller or "")[:60]}
            | {"agent": (turn.get("text") or "")[:60]}
            | {k: v for k, v in timing.items() if isinstance(v, int)}
        )
        if source == "audio" and timing.get("stt_ms") is not None:
            sample.stt_ms.append(int(timing["stt_ms"]))
        if timing.get("tts_ms") is not None:
            sample.tts_ms.append(int(timing["tts_ms"]))
        if source == "audio" and timing.get("eot_wait_ms") is not None:
            sample.eot_wait_ms.append(int(timing["eot_wait_ms"]))
    return sample


def _gaps_from_start(arrivals: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    first = next((at for at, samples in arrivals if samples > 0), 0.0)
    return [(round(at - first, 2), gap) for at, gap in underrun_gaps(arrivals)]


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


def summarize(
    samples: Sequence[CallSample],
    *,
    concurrency: int,
    realtime: bool,
    cpu_s: float | None = None,
    rss_start_mb: float | None = None,
    rss_end_mb: float | None = None,
    peak_rss_mb: float | None = None,
    wall_s: float | None = None,
) -> dict[str, Any]:
    """The figures of one run of calls (the JSON the benchmark writes, less machine info)."""
    latencies = [ms for s in samples for ms in s.latencies_ms]
    stt = [ms for s in samples for ms in s.stt_ms]
    decode = [ms for s in samples for ms in s.stt_decode_ms]
    tts = [ms for s in samples for ms in s.tts_ms]
    eot = [ms for s in samples for ms in s.eot_wait_ms]
    server = [ms for s in samples for ms in s.server_latency_ms]
    answers = [ms for s in samples for ms in s.answer_ms]
    caller_turns = sum(s.caller_turns for s in samples)
    cut = [(s, clip) for s in samples for clip in s.cutoffs]
    call_ms = sum(s.duration_ms for s in samples)
    cpu_min = cpu_per_call_minute(cpu_s, call_ms)
    failed = [s for s in samples if s.failures or s.error]
    return {
        "calls": len(samples),
        "concurrency": concurrency,
        "realtime": realtime,
        "replies": len(latencies),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(percentile(latencies, 95)),
        "max_ms": max(latencies) if latencies else None,
        "answers": len(answers),
        "answer_p50_ms": _ms(percentile(answers, 50)),
        "answer_p95_ms": _ms(percentile(answers, 95)),
        "caller_turns": caller_turns,
        "cutoff_rate": round(len(cut) / caller_turns, 4) if caller_turns else None,
        "cutoffs": [
            {"scenario": s.scenario, "call_sid": s.call_sid, "turn": clip} for s, clip in cut
        ],
        "server_latency_ms_p50": _ms(percentile(server, 50)),
        "server_latency_ms_p95": _ms(percentile(server, 95)),
        "stt_ms_p50": _ms(percentile(stt, 50)),
        "stt_ms_p95": _ms(percentile(stt, 95)),
        "stt_decode_ms_p50": _ms(percentile(decode, 50)),
        "stt_decode_ms_p95": _ms(percentile(decode, 95)),
        "tts_ms_p50": _ms(percentile(tts, 50)),
        "tts_ms_p95": _ms(percentile(tts, 95)),
        "eot_wait_ms_p50": _ms(percentile(eot, 50)),
        "reply_timings": _reply_timings(samples),
        "cpu_s": None if cpu_s is None else round(cpu_s, 2),
        "call_minutes": round(call_ms / 60_000, 2),
        "cpu_s_per_call_min": None if cpu_min is None else round(cpu_min, 2),
        "peak_rss_mb": _round(peak_rss_mb),
        "rss_start_mb": _round(rss_start_mb),
        "rss_end_mb": _round(rss_end_mb),
        "underruns": sum(s.underruns for s in samples),
        "underrun_calls": [
            {
                "scenario": s.scenario,
                "call_sid": s.call_sid,
                "gaps": [{"at_s": at, "gap_ms": gap} for at, gap in s.underrun_gaps],
            }
            for s in samples
            if s.underrun_gaps
        ],
        "failed_calls": len(failed),
        "failures": [
            {
                "scenario": s.scenario,
                "call_sid": s.call_sid,
                "failures": ([f"error: {s.error}"] if s.error else []) + s.failures,
            }
            for s in failed
        ],
        "wall_s": None if wall_s is None else round(wall_s, 1),
    }


def _reply_timings(samples: Sequence[CallSample]) -> list[dict[str, Any]]:
    """Every reply with where its time went, as the server measured it, slowest first."""
    replies = [{"scenario": s.scenario} | r for s in samples for r in s.replies]
    return sorted(replies, key=lambda r: -r.get("latency_ms", 0))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def level_passes(summary: dict[str, Any]) -> bool:
    """A concurrency level holds when p95 stays under the limit, nothing underran and at
    most `CUTOFF_LIMIT` of the caller turns were cut off."""
    cut = summary.get("cutoff_rate") or 0.0
    return level_keeps_pace(summary) and cut <= CUTOFF_LIMIT


def level_keeps_pace(summary: dict[str, Any]) -> bool:
    """A level's latency held: p95 under the limit and nothing underran (cut-offs aside)."""
    p95 = summary.get("p95_ms")
    return p95 is not None and p95 <= P95_LIMIT_MS and summary.get("underruns", 0) == 0


def level_calls(concurrency: int, calls: int, scenarios: int) -> int:
    """The calls one level of `--find-max` plays: at least `calls` and two per line, in whole
    rounds of the `scenarios`, so every level hears each caller as often as the others and a
    level's cut-off rate is not one clip more or less (one clip in the default set pauses a
    second after a whole request)."""
    rounds = -(-max(calls, 2 * concurrency, 1) // max(scenarios, 1))
    return rounds * max(scenarios, 1)


def capacity(levels: Sequence[dict[str, Any]], rule: Callable[[dict[str, Any]], bool]) -> int:
    """The highest concurrency of `levels` (in ramp order) below which every level kept
    `rule`, or 0."""
    best = 0
    for level in levels:
        if not rule(level):
            break
        best = level["concurrency"]
    return best


def ramp(max_level: int, min_level: int = 1) -> list[int]:
    """The concurrency levels `--find-max` tries, from `min_level` up to `max_level`."""
    levels = [c for c in LEVELS if c <= max_level]
    c = LEVELS[-1] + 2
    while c <= max_level:
        levels.append(c)
        c += 2
    return [c for c in levels if c >= min_level]
