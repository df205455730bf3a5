"""Scenario clips said again in other caller voices, and `replay --caller-voice`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import callers
from harness.caller_clips import (
    CLIPS_TSV,
    MissingClipError,
    caller_clip_texts,
    choose_voices,
    clip_text,
    clips_used,
    is_spoken,
    join_parts,
    parts_of,
    read_clip_texts,
    render_clips,
    say_clip,
    with_clips,
)
from harness.callers import render, voice_named
from harness.replay import run_target
from harness.scenario import Scenario, load_scenario
from voice.audio import SAMPLE_RATE, read_wav
from voice.settings import Settings

FIXTURES = Path(__file__).parents[2] / "audio_fixtures"
CLIPS = FIXTURES / "clips"
VOICE = voice_named("flite-awb")
LEAD, TRAIL = int(0.3 * SAMPLE_RATE), int(0.5 * SAMPLE_RATE)


class FakeSpeak:
    """`harness.callers.speak` as it pads: 0.3 s before the speech, 0.5 s after; the speech is
    one sample per character of the text, all 1000."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def __call__(self, voice, text, noise=None):
        self.calls.append((voice.name, text, noise))
        speech = np.full(len(text), 1000, dtype=np.int16)
        return np.concatenate([np.zeros(LEAD, np.int16), speech, np.zeros(TRAIL, np.int16)])


def scenario(*turns: dict) -> Scenario:
    return Scenario.model_validate({"name": "s", "from": "+14155550101", "turns": list(turns)})


# --- clips.tsv --------------------------------------------------------------------------------


def test_clip_texts_are_read_by_name_skipping_comments_and_blank_lines(tmp_path):
    tsv = tmp_path / "clips.tsv"
    tsv.write_text(
        "# name\tvoice\twpm\ttext\n\n"
        "yes_please\ten-us+f3\t155\tYes, please.\n"
        "order_number_pause\ten-us+f2\t145\tMy order number is | one, zero, zero, three.\n"
    )
    assert read_clip_texts(tsv) == {
        "yes_please": "Yes, please.",
        "order_number_pause": "My order number is | one, zero, zero, three.",
    }


def test_a_malformed_clips_line_names_its_line(tmp_path):
    tsv = tmp_path / "clips.tsv"
    tsv.write_text("# header\nyes_please\ten-us\tYes, please.\n")
    with pytest.raises(ValueError, match=r"clips.tsv:2"):
        read_clip_texts(tsv)


def test_a_clip_is_looked_up_by_its_file_name():
    texts = read_clip_texts()
    assert clip_text(CLIPS / "yes_please.wav", texts) == "Yes, please."


def test_a_clip_with_no_clips_line_is_an_error_naming_it():
    with pytest.raises(MissingClipError, match=r"mystery\.wav"):
        clip_text(Path("/somewhere/mystery.wav"), read_clip_texts())


def test_every_clip_the_fixture_scenarios_play_has_its_text():
    scenarios = [load_scenario(p) for p in sorted((FIXTURES / "scenarios").glob("*.yaml"))]
    texts = caller_clip_texts()
    used = clips_used(scenarios)
    assert used and all(clip_text(clip, texts) for clip in used)


def test_the_pause_clips_are_read_with_their_pauses():
    texts = caller_clip_texts()
    assert texts["pause_order_groups"] == "It's one zero |0.8| zero three."
    assert texts["yes_please"] == read_clip_texts(CLIPS_TSV)["yes_please"]
    assert parts_of(texts["pause_order_groups"]) == (["It's one zero", "zero three."], [0.8])


def test_a_line_of_the_wrong_width_names_its_columns(tmp_path):
    tsv = tmp_path / "pause_clips.tsv"
    tsv.write_text("pause_x\tflite-slt\t145\tUm, |0.9| where is it?\n")
    with pytest.raises(ValueError, match=r"pause_clips.tsv:1: expected name, voice, text"):
        read_clip_texts(tsv, ("name", "voice", "text"))


# --- saying a clip ----------------------------------------------------------------------------


def test_parts_are_joined_one_second_from_speech_to_speech():
    speak = FakeSpeak()
    joined = join_parts([speak(VOICE, "abc"), speak(VOICE, "defgh")])
    voiced = np.flatnonzero(joined)
    gaps = np.diff(voiced)
    assert list(gaps[gaps > 1]) == [SAMPLE_RATE + 1]  # one second of nothing between them
    assert len(voiced) == 8
    assert voiced[0] == LEAD and len(joined) - 1 - voiced[-1] == TRAIL  # the ends keep padding


def test_a_clip_with_a_pause_is_said_in_parts_at_the_clips_noise_level():
    speak = FakeSpeak()
    text = "My order number is | one, zero, zero, three."
    pcm = say_clip(VOICE, text, speak)
    noise = render(VOICE, text).noise
    assert speak.calls == [
        (VOICE.name, "My order number is", noise),
        (VOICE.name, "one, zero, zero, three.", noise),
    ]
    speech = len("My order number is") + len("one, zero, zero, three.")
    assert len(pcm) == LEAD + speech + SAMPLE_RATE + TRAIL


def test_pauses_of_their_own_length_are_kept_even_shorter_than_the_padding():
    assert parts_of("a | b |0.6| c") == (["a", "b", "c"], [1.0, 0.6])
    speak = FakeSpeak()
    pcm = say_clip(VOICE, "abc |1.2| de |0.6| f", speak)
    voiced = np.flatnonzero(pcm)
    gaps = np.diff(voiced)
    assert list(gaps[gaps > 1]) == [round(1.2 * SAMPLE_RATE) + 1, round(0.6 * SAMPLE_RATE) + 1]
    assert voiced[0] == LEAD and len(pcm) - 1 - voiced[-1] == TRAIL


def test_a_clip_without_a_pause_is_one_utterance():
    speak = FakeSpeak()
    pcm = say_clip(VOICE, "Yes, please.", speak)
    assert speak.calls == [(VOICE.name, "Yes, please.", render(VOICE, "Yes, please.").noise)]
    assert len(pcm) == LEAD + len("Yes, please.") + TRAIL


def test_clips_are_written_for_every_clip_used_once(tmp_path):
    speak = FakeSpeak()
    s = scenario(
        {"say": CLIPS / "where_is_my_order.wav"},
        {"say": CLIPS / "yes_please.wav"},
        {"barge_in": CLIPS / "interrupt_where_is_my_order.wav"},
        {"say": CLIPS / "yes_please.wav"},
    )
    made = render_clips([s], VOICE, tmp_path / "clips", read_clip_texts(), speak)
    assert sorted(p.name for p in made) == [
        "interrupt_where_is_my_order.wav",
        "where_is_my_order.wav",
        "yes_please.wav",
    ]
    assert len(speak.calls) == 3
    assert all(path.parent == tmp_path / "clips" for path in made.values())
    assert len(read_wav(made[CLIPS / "yes_please.wav"])) == LEAD + len("Yes, please.") + TRAIL


def test_no_clip_is_spoken_when_one_is_missing(tmp_path):
    speak = FakeSpeak()
    s = scenario({"say": CLIPS / "yes_please.wav"}, {"say": tmp_path / "mystery.wav"})
    with pytest.raises(MissingClipError, match=r"mystery\.wav"):
        render_clips([s], VOICE, tmp_path / "clips", read_clip_texts(), speak)
    assert speak.calls == []


# --- scenarios --------------------------------------------------------------------------------


def test_say_and_barge_in_turns_are_rewritten_to_the_new_clips(tmp_path):
    s = scenario(
        {"barge_in": CLIPS / "interrupt_where_is_my_order.wav"},
        {"say": CLIPS / "no_thanks.wav"},
        {"text": "where is my order"},
        {"dtmf": "1001"},
        {"silence": 2.0},
    )
    new = {
        CLIPS / "interrupt_where_is_my_order.wav": tmp_path / "a.wav",
        CLIPS / "no_thanks.wav": tmp_path / "b.wav",
    }
    rewritten = with_clips(s, new)
    assert rewritten.turns[0].barge_in == tmp_path / "a.wav"
    assert rewritten.turns[1].say == tmp_path / "b.wav"
    assert [t.model_dump() for t in rewritten.turns[2:]] == [t.model_dump() for t in s.turns[2:]]
    assert s.turns[1].say == CLIPS / "no_thanks.wav"  # the original is left as it was
    with pytest.raises(MissingClipError, match=r"no_thanks\.wav"):
        with_clips(s, {CLIPS / "interrupt_where_is_my_order.wav": tmp_path / "a.wav"})


def test_only_scenarios_where_the_caller_speaks_change_with_the_voice():
    assert is_spoken(scenario({"text": "hi"}, {"say": CLIPS / "yes_please.wav"}))
    assert is_spoken(scenario({"barge_in": CLIPS / "yes_please.wav"}))
    assert not is_spoken(scenario({"text": "hi"}, {"dtmf": "1001"}, {"silence": 1.0}))


def test_voices_are_chosen_by_name_and_by_split_each_once():
    assert choose_voices(groups=["test"]) == callers.test_voices()
    assert choose_voices(groups=["tuning"]) == callers.tuning_voices()
    chosen = choose_voices(["flite-awb", "espeak-us"], ["test"])
    assert [v.name for v in chosen[:2]] == ["flite-awb", "espeak-us"]
    assert len(chosen) == len(callers.test_voices()) + 1
    with pytest.raises(ValueError, match="nobody"):
        choose_voices(["nobody"])
    with pytest.raises(ValueError, match="everyone"):
        choose_voices(groups=["everyone"])


def test_replay_refuses_a_clip_nobody_can_say_again(tmp_path, capsys):
    (tmp_path / "mystery.wav").write_bytes((CLIPS / "yes_please.wav").read_bytes())
    (tmp_path / "odd.yaml").write_text(
        "name: odd\nfrom: '+14155550101'\nturns:\n  - say: mystery.wav\n"
    )
    code = run_target(
        tmp_path,
        url=None,
        out=tmp_path / "out",
        realtime=False,
        settings=Settings(),
        caller_voices=[VOICE],
    )
    assert code == 2
    assert "mystery.wav" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()  # nothing was replayed


# --- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_scenario_is_replayed_in_another_voice(tmp_path, capsys):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "spoken.yaml").write_text(
        "name: spoken\nfrom: '+14155550101'\n"
        f"turns:\n  - say: {CLIPS / 'where_is_my_order.wav'}\n"
        "expect:\n  intents: [order_status]\n"
    )
    (scenarios / "typed.yaml").write_text(
        "name: typed\nfrom: '+14155550101'\nturns:\n  - text: where is my order\n"
    )
    voice = voice_named("espeak-scotland")
    out, results = tmp_path / "out", tmp_path / "voices.json"
    code = run_target(
        scenarios,
        url=None,
        out=out,
        realtime=False,
        settings=Settings(),
        caller_voices=[voice],
        json_path=results,
    )
    printed = capsys.readouterr().out
    assert "left out" in printed and "typed" in printed
    assert "test voices:" in printed and "target 95%" in printed
    data = json.loads(results.read_text())
    assert data["left_out"] == ["typed"]
    (run,) = data["voices"]
    assert (run["voice"], run["split"], run["total"]) == ("espeak-scotland", "test", 1)
    (result,) = run["results"]
    assert result["scenario"] == "spoken" and result["heard"]  # the agent heard the caller
    assert result["clips"]["where_is_my_order"]["text"] == "Hi, where is my order?"
    assert data["test"]["calls"] == 1 and data["test"]["passed"] == int(result["passed"])
    assert code == (0 if result["passed"] else 1)
    assert (out / "espeak-scotland" / "spoken" / "call.wav").exists()
