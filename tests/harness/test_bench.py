"""The benchmark's figures: percentiles, underruns, CPU per call-minute, the JSON it writes, and
one real run against `postvoice serve`."""

import asyncio
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.bench import default_scenarios, parse_env, persona_calls, print_result, run_calls
from harness.bench_figures import (
    CallSample,
    answer_latencies,
    capacity,
    count_underruns,
    cpu_per_call_minute,
    cut_off_turns,
    level_calls,
    level_keeps_pace,
    level_passes,
    ramp,
    sample_of,
    summarize,
    underrun_gaps,
)
from harness.bench_reports import PersonaReports
from harness.bench_server import Server, postvoice_command, server_env
from harness.fake_twilio import CallState
from harness.replay import CallResult
from harness.scenario import Scenario
from harness.simulate import TEXT
from harness.target import in_process_server
from integrations.stats import percentile
from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice.server import Engines
from voice.tts import Synthesizer

ROOT = Path(__file__).parents[2]
CHUNK = 800  # 100 ms of 8 kHz audio, as the server sends it


# --- percentiles ------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank():
    values = list(range(1, 21))  # 1..20
    assert percentile(values, 50) == 10
    assert percentile(values, 95) == 19
    assert percentile(values, 100) == 20
    assert percentile([700], 95) == 700
    assert percentile(reversed(values), 50) == 10  # order does not matter
    assert percentile([], 50) is None


def test_one_slow_reply_in_twenty_sets_the_p95():
    replies = [600] * 19 + [2400]
    assert percentile(replies, 95) == 600
    replies = [600] * 18 + [2400, 2500]
    assert percentile(replies, 95) == 2400


# --- underruns --------------------------------------------------------------------------------


def steady(start: float, n: int, every: float = 0.1) -> list[tuple[float, int]]:
    """n chunks of 100 ms, one every `every` seconds."""
    return [(start + i * every, CHUNK) for i in range(n)]


def test_each_gap_is_reported_with_when_it_came_and_how_long_it_was():
    # 100 ms of audio at 0.0; the next message 500 ms later: 400 ms of silence heard
    assert underrun_gaps([(0.0, CHUNK), (0.5, CHUNK)]) == [(0.5, 400)]


def test_audio_arriving_at_the_speed_of_speech_never_underruns():
    assert count_underruns(steady(0.0, 30)) == 0


def test_a_chunk_arriving_after_the_audio_before_it_ran_out_is_an_underrun():
    # 100 ms received at t=0; the next arrives at 0.5 s: the caller heard 400 ms of nothing.
    assert count_underruns([(0.0, CHUNK), (0.5, CHUNK)]) == 1


def test_lateness_within_a_frame_and_jitter_is_not_an_underrun():
    assert count_underruns([(0.0, CHUNK), (0.15, CHUNK)]) == 0  # 50 ms late
    assert count_underruns([(0.0, CHUNK), (0.17, CHUNK)]) == 1  # 70 ms late


def test_one_gap_counts_once_and_playback_resumes_from_it():
    arrivals = [(0.0, CHUNK), *steady(0.5, 10)]
    assert count_underruns(arrivals) == 1


def test_a_sentence_sent_ahead_covers_the_synthesis_of_the_next():
    # 2 s of audio at once, the next sentence 1.9 s later: no gap. 2.1 s later: a gap.
    first = [(0.0, CHUNK)] * 20
    assert count_underruns([*first, (1.9, CHUNK)]) == 0
    assert count_underruns([*first, (2.1, CHUNK)]) == 1


def test_silence_between_replies_is_not_an_underrun():
    arrivals = [*steady(0.0, 5), (0.6, 0), *steady(5.0, 5), (5.6, 0), (9.0, CHUNK)]
    assert count_underruns(arrivals) == 0


def test_a_clear_ends_the_reply_being_played():
    assert count_underruns([(0.0, CHUNK), (0.05, 0), (3.0, CHUNK)]) == 0


# --- CPU and the summary ----------------------------------------------------------------------


def test_cpu_per_call_minute_divides_by_the_minutes_of_all_calls():
    assert cpu_per_call_minute(30.0, 120_000) == pytest.approx(15.0)
    assert cpu_per_call_minute(3.0, 30_000) == pytest.approx(6.0)
    assert cpu_per_call_minute(None, 60_000) is None
    assert cpu_per_call_minute(5.0, 0) is None


def test_the_summary_has_every_figure_the_readme_table_needs():
    samples = [
        CallSample(
            "wismo",
            "CA1",
            latencies_ms=[700, 900],
            server_latency_ms=[690, 880],
            stt_ms=[300, 500],
            tts_ms=[0, 120],
            eot_wait_ms=[600, 610],
            underruns=1,
            duration_ms=60_000,
        ),
        CallSample("coupon", "CA2", latencies_ms=[800], duration_ms=60_000, failures=["x"]),
        CallSample("handoff", error="ConnectError: refused"),
    ]
    s = summarize(
        samples,
        concurrency=2,
        realtime=True,
        cpu_s=24.0,
        rss_start_mb=500.0,
        rss_end_mb=510.0,
        peak_rss_mb=640.0,
        wall_s=61.0,
    )
    figures = {
        "calls",
        "concurrency",
        "replies",
        "p50_ms",
        "p95_ms",
        "max_ms",
        "stt_ms_p50",
        "stt_ms_p95",
        "stt_decode_ms_p50",
        "tts_ms_p50",
        "tts_ms_p95",
        "eot_wait_ms_p50",
        "cpu_s_per_call_min",
        "peak_rss_mb",
        "rss_start_mb",
        "rss_end_mb",
        "underruns",
        "failed_calls",
    }
    for key in figures:
        assert key in s, key
    assert (s["calls"], s["replies"], s["concurrency"]) == (3, 3, 2)
    assert (s["p50_ms"], s["p95_ms"], s["max_ms"]) == (800, 900, 900)
    assert (s["stt_ms_p50"], s["tts_ms_p95"], s["eot_wait_ms_p50"]) == (300, 120, 600)
    assert s["cpu_s_per_call_min"] == 12.0  # 24 s over two one-minute calls
    assert s["underruns"] == 1
    assert s["failed_calls"] == 2
    assert {f["scenario"] for f in s["failures"]} == {"coupon", "handoff"}
    assert json.loads(json.dumps(s)) == s  # plain JSON


def test_stt_figures_count_only_replies_to_speech():
    state = CallState(latencies=[650, 120])
    state.arrivals = [(0.0, CHUNK), (0.1, 0)]
    record = {
        "turns": [
            {"seq": 1, "role": "agent", "text": "Hi", "timing": None},
            {
                "seq": 2,
                "role": "caller",
                "text": "where is my order",
                "source": "audio",
                "timing": {"stt_ms": 280, "audio_ms": 1500},
            },
            {
                "seq": 3,
                "role": "agent",
                "text": "It's on its way.",
                "timing": {"latency_ms": 640, "stt_ms": 30, "tts_ms": 5, "eot_wait_ms": 600},
            },
            {"seq": 4, "role": "caller", "text": "1001", "source": "dtmf"},
            {
                "seq": 5,
                "role": "agent",
                "text": "Order ten oh one.",
                "timing": {"latency_ms": 110, "stt_ms": 0, "tts_ms": 100, "eot_wait_ms": 0},
            },
        ]
    }
    report = {"call_sid": "CA1", "latency_ms": [650, 120], "failures": []}
    sample = sample_of("wismo", CallResult(report, record, state))
    assert sample.latencies_ms == [650, 120]
    assert sample.server_latency_ms == [640, 110]
    assert sample.stt_ms == [30] and sample.eot_wait_ms == [600]
    assert sample.stt_decode_ms == [280]
    assert sample.tts_ms == [5, 100]
    # each reply's breakdown, with what it answered, is listed slowest first
    timings = summarize([sample], concurrency=1, realtime=True)["reply_timings"]
    assert [(t["seq"], t["after"], t["caller"], t["latency_ms"]) for t in timings] == [
        (3, "audio", "where is my order", 640),
        (5, "dtmf", "1001", 110),
    ]
    assert timings[0]["agent"] == "It's on its way." and timings[0]["eot_wait_ms"] == 600


def test_a_level_holds_below_the_p95_limit_with_no_underruns_and_few_cut_offs():
    assert level_passes({"p95_ms": 1000, "underruns": 0})
    assert not level_passes({"p95_ms": 1001, "underruns": 0})
    assert not level_passes({"p95_ms": 900, "underruns": 2})
    assert not level_passes({"p95_ms": None, "underruns": 0})
    assert level_passes({"p95_ms": 900, "underruns": 0, "cutoff_rate": 0.02})
    assert not level_passes({"p95_ms": 900, "underruns": 0, "cutoff_rate": 0.05})
    assert ramp(20) == [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert ramp(5) == [1, 2, 4]
    assert ramp(32, 10) == [10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32]


def test_every_level_plays_whole_rounds_of_the_scenarios():
    assert level_calls(1, 6, 15) == 15
    assert level_calls(10, 20, 15) == 30
    assert level_calls(30, 20, 15) == 60
    assert level_calls(31, 20, 15) == 75
    assert level_calls(4, 6, 1) == 8
    assert level_calls(2, 0, 0) == 4


def test_capacity_counts_levels_up_to_the_first_that_fails_each_rule():
    def level(c: int, p95: int, cut: float) -> dict[str, object]:
        return {"concurrency": c, "p95_ms": p95, "underruns": 0, "cutoff_rate": cut}

    levels = [level(10, 600, 0.01), level(12, 610, 0.026), level(14, 620, 0.0), level(16, 1100, 0)]
    assert capacity(levels, level_passes) == 10  # C = 14 held again, but C = 12 did not
    assert capacity(levels, level_keeps_pace) == 14
    assert capacity([level(1, 1200, 0)], level_keeps_pace) == 0
    assert not level_keeps_pace({"p95_ms": 600, "underruns": 1})


# --- cut-offs and the time to answer ---------------------------------------------------------


def spoken(state: CallState, clip: int, *spans_ms: tuple[int, int]) -> None:
    """The caller says clip `clip`, voiced over each (start, end) span of call time."""
    for start, end in spans_ms:
        state.caller_voiced += [(ts, clip) for ts in range(start, end, 20)]
        state.speech_ends[clip] = end - 20


def test_a_reply_that_starts_inside_a_pause_the_caller_resumes_from_is_a_cut_off():
    state = CallState()
    # "my order number is … one zero zero three": 900 ms between the halves
    spoken(state, 1, (1000, 2400), (3300, 5000))
    state.reply_starts = [0, 2900, 5600]  # the greeting, a reply into the pause, the answer
    assert cut_off_turns(state) == [1]


def test_a_reply_after_the_caller_finished_or_after_a_long_pause_is_no_cut_off():
    state = CallState()
    spoken(state, 1, (1000, 2400))
    spoken(state, 2, (6000, 7000), (8800, 9500))  # went on 1.8 s later: a new thought
    state.reply_starts = [3000, 8000, 10_000]
    assert cut_off_turns(state) == []


def test_a_barge_in_starting_soon_after_a_reply_began_is_no_cut_off():
    state = CallState()
    spoken(state, 1, (1000, 2000))
    spoken(state, 2, (3400, 4000))  # another clip: the caller interrupts the reply
    state.reply_starts = [2400]
    assert cut_off_turns(state) == []


def test_a_caller_turn_cut_off_twice_counts_once():
    state = CallState()
    spoken(state, 1, (1000, 1600), (2400, 3000), (3800, 4400))
    state.reply_starts = [1900, 3300]
    assert cut_off_turns(state) == [1]


def test_time_to_answer_skips_the_filler_and_an_acknowledgement():
    state = CallState()
    spoken(state, 1, (1000, 2000))
    spoken(state, 2, (9000, 9600))
    state.spans = {
        "s2.0": (2600, 3800),  # "Let me look that up." (the filler)
        "s3.0": (3800, 4200),  # "Sure."
        "s3.1": (4200, 6000),  # "Your order is on its way."
        "s5.0": (10_000, 11_000),  # "Goodbye." answers the second turn
    }
    record = {
        "turns": [
            {"seq": 1, "role": "agent", "text": "Hi.", "source": "tts"},
            {"seq": 2, "role": "agent", "text": "Let me look that up.", "source": "filler"},
            {"seq": 3, "role": "agent", "text": "Sure. Your order is on its way.", "source": "tts"},
            {"seq": 4, "role": "caller", "text": "thanks", "source": "audio"},
            {"seq": 5, "role": "agent", "text": "Goodbye.", "source": "tts"},
        ]
    }
    assert answer_latencies(state, record) == [4200 - 1980, 10_000 - 9580]


def test_a_reply_of_only_a_filler_gives_its_turn_no_time_to_answer():
    state = CallState()
    spoken(state, 1, (1000, 2000))
    spoken(state, 2, (5000, 5600))
    state.spans = {"s2.0": (2500, 3500), "s3.0": (6000, 7000)}
    record = {
        "turns": [
            {"seq": 2, "role": "agent", "text": "Let me look that up.", "source": "filler"},
            {"seq": 3, "role": "agent", "text": "It was delivered.", "source": "tts"},
        ]
    }
    assert answer_latencies(state, record) == [6000 - 5580]  # the first turn got none


def test_the_summary_gives_the_cut_off_rate_with_each_cut_off_and_the_time_to_answer():
    samples = [
        CallSample("pause", "CA1", latencies_ms=[400], answer_ms=[450, 900], caller_turns=3),
        CallSample("digits", "CA2", answer_ms=[700], caller_turns=2, cutoffs=[2]),
    ]
    s = summarize(samples, concurrency=10, realtime=True)
    assert s["cutoff_rate"] == 0.2  # one of five caller turns
    assert s["cutoffs"] == [{"scenario": "digits", "call_sid": "CA2", "turn": 2}]
    assert (s["answer_p50_ms"], s["answer_p95_ms"]) == (700, 900)
    assert not level_passes({**s, "p95_ms": 500, "underruns": 0})


def test_server_settings_from_the_command_line_win_and_capacity_fits_the_run():
    env = server_env(8123, "sqlite:///x.db", {"POSTVOICE_STT_THREADS": "1"}, concurrency=16)
    assert env["POSTVOICE_STT_THREADS"] == "1"
    assert env["POSTVOICE_PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert int(env["POSTVOICE_MAX_CALLS"]) >= 16
    assert int(env["POSTVOICE_MAX_CALLS_PER_CALLER"]) >= 16
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_env(["nonsense"])


def test_the_default_scenarios_are_the_spoken_inbound_ones_that_can_repeat():
    names = {s.name for s in default_scenarios()}
    assert {"wismo_caller_id", "audio_handoff", "barge_in"} <= names
    assert "text_wismo" not in names  # a text: turn skips speech to text
    assert "audio_return_earbuds" not in names  # the second run finds the return made
    assert "audio_exchange_too_small" not in names  # its exchange is expected as an event
    assert "audio_pause_mid_sentence" in names  # a caller pausing mid-sentence is measured
    assert not any(n.startswith("outbound") for n in names)


# --- over a real socket, with stand-in engines ------------------------------------------------


class SlowSynthesizer(Synthesizer):
    """Takes 0.4 s to make 0.1 s of speech: every sentence after the first arrives late."""

    async def synthesize(self, text: str) -> np.ndarray:
        await asyncio.sleep(0.4)
        return (np.sin(np.arange(CHUNK) / 3) * 3000).astype(np.int16)


WISMO = Scenario.model_validate(
    {
        "name": "typed_wismo",
        "from": "+14155550101",
        "turns": [{"text": "where is my order"}, {"text": "no thanks"}],
    }
)


async def measure(tmp_path, synthesizer) -> CallSample:
    engines = Engines(FakeTranscriber(), synthesizer)
    async with in_process_server(f"sqlite:///{tmp_path}/b.db", engines) as target:
        samples = await run_calls(Server(target, None, {}), [WISMO], 1, 1, realtime=False)
    assert samples[0].error is None, samples[0].error
    return samples[0]


async def test_replies_are_measured_and_fast_speech_has_no_underruns(tmp_path):
    sample = await measure(tmp_path, FakeSynthesizer())
    assert len(sample.latencies_ms) == 2  # one per caller turn
    assert sample.server_latency_ms and sample.tts_ms
    assert sample.duration_ms > 0
    assert sample.underruns == 0


async def test_speech_slower_than_real_time_is_counted_as_underruns(tmp_path):
    sample = await measure(tmp_path, SlowSynthesizer())
    assert sample.underruns > 0


def test_bench_personas_are_the_ones_that_leave_the_shop_as_it_was():
    plans = persona_calls(ROOT / "personas", fast=True)
    names = {p.persona.name for p in plans}
    assert "maria-wismo-shirt-plain" in names and "tom-coupon-vip-used-plain" in names
    assert not any(n.startswith(("james-return-earbuds", "lena-damaged")) for n in names)
    assert {p.voice for p in plans} == {TEXT}


async def test_simulated_callers_are_measured_like_scenarios(tmp_path):
    chosen = ("maria-wismo-shirt-plain", "tom-coupon-vip-used-plain")
    plans = [p for p in persona_calls(ROOT / "personas", fast=True) if p.persona.name in chosen]
    engines = Engines(FakeTranscriber(), FakeSynthesizer())
    async with in_process_server(f"sqlite:///{tmp_path}/b.db", engines) as target:
        samples = await run_calls(Server(target, None, {}), plans, 3, 2, realtime=False)
    assert [s.error for s in samples] == [None, None, None]
    assert [s.scenario for s in samples] == [plans[0].name, plans[1].name, plans[0].name]
    assert all(len(s.latencies_ms) >= 2 and s.server_latency_ms for s in samples)
    assert not any(s.failures for s in samples)  # the same caller again finds the same shop


async def test_each_simulated_call_keeps_its_report_and_the_summary_its_failures(tmp_path):
    chosen = ("maria-wismo-shirt-plain", "tom-coupon-vip-used-plain")
    plans = [p for p in persona_calls(ROOT / "personas", fast=True) if p.persona.name in chosen]
    reports = PersonaReports(tmp_path / "reports")
    engines = Engines(FakeTranscriber(), FakeSynthesizer())
    async with in_process_server(f"sqlite:///{tmp_path}/b.db", engines) as target:
        await run_calls(Server(target, None, {}), plans, 3, 2, realtime=False, reports=reports)
    reports.reports[2]["passed"] = False  # as if the agent had missed the third call's outcome
    reports.reports[2]["failures"] = ["code not checked"]
    summary = reports.write()
    names = sorted(p.name for p in (tmp_path / "reports").iterdir() if p.is_dir())
    first = plans[0].persona.name
    assert names == sorted([f"001-{first}", f"002-{plans[1].persona.name}", f"003-{first}"])
    report = json.loads((tmp_path / "reports" / f"001-{first}" / "report.json").read_text())
    assert report["passed"] and report["caller_turns"] and report["heard_from"] == "record"
    assert summary["calls"] == 3 and summary["passed"] == 2
    assert [f["call"] for f in summary["failures"]] == [f"003-{first}"]
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["calls"] == 3


def test_a_persona_failure_is_printed_with_the_turn_where_it_went_wrong():
    from rich.console import Console

    console = Console(record=True, width=200)
    turn = {"turn": 2, "heard": "Which code?", "said": "vip fifty", "reason": "asked for coupon"}
    failure = {"call": "002-tom-coupon", "failures": ["no coupon.checked"], "went_wrong": turn}
    print_result(
        console, {"calls": 8, "reports": "out/b", "persona_failures": [failure], "failures": []}
    )
    shown = console.export_text()
    assert "002-tom-coupon" in shown and "no coupon.checked" in shown and "vip fifty" in shown
    assert "out/b/<n>-<persona>/report.json" in shown


# --- the command, end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_bench_runs_calls_through_the_real_server_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            *postvoice_command(),
            "bench",
            "--calls",
            "2",
            "--concurrency",
            "2",
            "--fast",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reply latency p95" in result.stdout
    data = json.loads(out.read_text())
    assert (data["calls"], data["concurrency"], data["realtime"]) == (2, 2, False)
    assert data["replies"] >= 2 and data["p50_ms"] > 0 and data["max_ms"] >= data["p95_ms"]
    assert data["stt_ms_p50"] is not None and data["tts_ms_p50"] is not None
    assert data["stt_decode_ms_p50"] > 0  # tiny.en really decoded the callers' speech
    assert data["cpu_s_per_call_min"] > 0
    assert data["peak_rss_mb"] >= data["rss_start_mb"] > 0
    assert [s["calls"] for s in data["rss_samples"]] == [1, 2]
    assert data["machine"]["logical_cores"] >= 1
    assert data["machine"]["stt_model"] and "settings" in data["machine"]
    assert isinstance(data["underruns"], int) and isinstance(data["failed_calls"], int)
