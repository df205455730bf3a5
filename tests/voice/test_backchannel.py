"""Speech over the agent: a backchannel ("uh-huh") lets it go on; "wait", a question, or
speech that goes on stops it. Sessions on a fake socket whose player never finishes, so the
agent is still talking when the caller speaks."""

from __future__ import annotations

import numpy as np
import pytest

from dialog.understanding import is_backchannel
from tests.voice.test_call import CLIPS, Harness, until
from voice.audio import read_wav
from voice.vad import voiced_frames

LONG_GREETING = "Thanks for calling. " * 12


def speech(ms: int, name: str = "interrupt_where_is_my_order") -> np.ndarray:
    """`ms` of a real caller clip from its first voiced frame, then a second of silence."""
    clip = read_wav(CLIPS / f"{name}.wav")
    first = int(np.argmax(voiced_frames(clip))) * 160
    return np.concatenate([clip[first : first + 8 * ms], np.zeros(8000, np.int16)])


async def talking(tmp_path, transcripts: list[str], **settings) -> Harness:
    h = Harness(tmp_path, transcripts=transcripts, **settings)
    h.socket.echo_marks = False  # the greeting stays "playing" at the caller's end
    h.agent.greeting = LONG_GREETING
    await h.start()
    await until(lambda: h.socket.events("media"))
    return h


def events(h: Harness) -> list[str]:
    return [e["type"] for e in h.store.call("CA1")["events"]]


@pytest.mark.parametrize("said", ["Uh-huh.", "Mm-hmm.", "Okay.", "Yeah, right."])
async def test_a_backchannel_over_the_agent_does_not_stop_it(tmp_path, said):
    h = await talking(tmp_path, [said, said])
    h.audio(speech(400))
    await until(lambda: "backchannel" in events(h))
    assert h.socket.events("clear") == []  # the agent went on talking
    assert h.agent.heard == []  # and the dialog was not asked to answer it
    h.socket.echo_marks = True
    await h.finish()
    record = h.store.call("CA1")
    assert not any(t["interrupted"] for t in record["turns"] if t["role"] == "agent")
    assert [t["text"] for t in record["turns"] if t["role"] == "caller"] == [said]


@pytest.mark.parametrize("said", ["Wait.", "No.", "Stop.", "Sorry, where is my order?"])
async def test_a_short_interruption_that_is_no_backchannel_stops_the_agent(tmp_path, said):
    h = await talking(tmp_path, [said, said])
    h.audio(speech(400))
    await until(lambda: h.socket.events("clear"))
    await until(lambda: h.agent.heard == [said])
    h.socket.echo_marks = True
    await h.finish()
    assert "barge_in" in events(h) and "backchannel" not in events(h)


async def test_speech_that_goes_on_over_the_agent_stops_it_before_it_ends(tmp_path):
    h = await talking(tmp_path, ["sorry where is my order"] * 3, vad_barge_in_min_ms=700)
    h.audio(speech(1200)[: 8 * 900])  # 0.9 s of speech and no end yet
    await until(lambda: h.socket.events("clear"))
    h.socket.echo_marks = True
    await h.finish()


def slow(first_ms: int, gap_ms: int, then_ms: int) -> np.ndarray:
    """Speech, a pause inside it, more speech: "uh … huh" said slowly."""
    return np.concatenate([speech(first_ms)[: 8 * first_ms], np.zeros(8 * gap_ms, np.int16),
                           speech(then_ms)])  # fmt: skip


async def test_a_slow_backchannel_with_a_pause_inside_does_not_stop_the_agent(tmp_path):
    # 900 ms of "uh … huh", past the 700 ms that stop the agent whatever is said; its
    # transcript at the pause is a backchannel, so it may go on to 1.5 s
    h = await talking(tmp_path, ["Uh.", "Uh-huh.", "Uh-huh."])
    h.audio(slow(450, 300, 450))
    await until(lambda: "backchannel" in events(h))
    assert h.socket.events("clear") == []
    h.socket.echo_marks = True
    await h.finish()


async def test_a_backchannel_that_goes_on_into_speech_stops_the_agent(tmp_path):
    h = await talking(tmp_path, ["Okay.", "Okay, where is my order?"] * 2)
    h.audio(slow(400, 300, 1300)[: 8 * 1700])  # "okay … " and then 1.3 s more, no end yet
    await until(lambda: h.socket.events("clear"))
    h.socket.echo_marks = True
    await h.finish()


async def test_with_the_backchannel_wait_off_a_slow_one_stops_the_agent(tmp_path):
    h = await talking(tmp_path, ["Uh.", "Uh-huh.", "Uh-huh."], vad_backchannel_max_ms=0)
    h.audio(slow(450, 300, 450))
    await until(lambda: h.socket.events("clear"))
    h.socket.echo_marks = True
    await h.finish()


async def test_with_the_fallback_setting_any_speech_stops_the_agent_at_once(tmp_path):
    h = await talking(tmp_path, ["Uh-huh.", "Uh-huh."], vad_barge_in_min_ms=0)
    h.audio(speech(400))
    await until(lambda: h.socket.events("clear"))
    h.socket.echo_marks = True
    await h.finish()
    assert "backchannel" not in events(h)


@pytest.mark.parametrize(
    ("text", "backchannel"),
    [
        ("Uh-huh.", True),
        ("Mm.", True),
        ("Okay, I see.", True),
        ("Got it, thanks.", True),
        ("Wait.", False),
        ("No.", False),
        ("Hold on.", False),
        ("Okay?", False),
        ("Uh-uh.", True),  # how tiny.en often writes "uh-huh" off a phone line
        ("Okay, but where is my order?", False),
        ("", False),
    ],
)
def test_what_counts_as_a_backchannel(text, backchannel):
    assert is_backchannel(text) is backchannel
