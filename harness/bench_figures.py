"""The benchmark's figures, from what the replayer saw and what the server recorded.

What each figure means is in `harness.bench`. Percentiles are `integrations.stats.percentile`
(nearest rank), the same as the dashboard's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.replay import CallResult
from integrations.stats import percentile
from voice.audio import SAMPLE_RATE

__all__ = [
    "LEVELS",
    "P95_LIMIT_MS",
    "UNDERRUN_ALLOWANCE_MS",
    "CallSample",
    "count_underruns",
    "cpu_per_call_minute",
    "level_passes",
    "ramp",
    "sample_of",
    "summarize",
    "underrun_gaps",
]

UNDERRUN_ALLOWANCE_MS = 60  # one 20 ms frame plus 40 ms of jitter
P95_LIMIT_MS = 1500
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
    )
    sample.underruns = len(sample.underrun_gaps)
    source = None
    for turn in sorted(result.record.get("turns", []), key=lambda t: t.get("seq") or 0):
        if turn.get("role") == "caller":
            source = turn.get("source")
            heard = turn.get("timing")
            if source == "audio" and isinstance(heard, dict) and heard.get("stt_ms") is not None:
                sample.stt_decode_ms.append(int(heard["stt_ms"]))
            continue
        timing = turn.get("timing")
        if not isinstance(timing, dict) or "latency_ms" not in timing:
            continue
        sample.server_latency_ms.append(int(timing["latency_ms"]))
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
        "server_latency_ms_p50": _ms(percentile(server, 50)),
        "server_latency_ms_p95": _ms(percentile(server, 95)),
        "stt_ms_p50": _ms(percentile(stt, 50)),
        "stt_ms_p95": _ms(percentile(stt, 95)),
        "stt_decode_ms_p50": _ms(percentile(decode, 50)),
        "stt_decode_ms_p95": _ms(percentile(decode, 95)),
        "tts_ms_p50": _ms(percentile(tts, 50)),
        "tts_ms_p95": _ms(percentile(tts, 95)),
        "eot_wait_ms_p50": _ms(percentile(eot, 50)),
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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def level_passes(summary: dict[str, Any]) -> bool:
    """A concurrency level holds when p95 stays under the limit and nothing underran."""
    p95 = summary.get("p95_ms")
    return p95 is not None and p95 < P95_LIMIT_MS and summary.get("underruns", 0) == 0


def ramp(max_level: int) -> list[int]:
    """The concurrency levels `--find-max` tries, up to `max_level`."""
    levels = [c for c in LEVELS if c <= max_level]
    c = LEVELS[-1] + 2
    while c <= max_level:
        levels.append(c)
        c += 2
    return levels
