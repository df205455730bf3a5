"""Speculative transcription and early end of turn: the policy alone, then inside a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from dialog.events import Hints, Say
from integrations.store import Store, make_engine
from tests.fakes import EchoAgent, FakeSocket, FakeSynthesizer
from tests.voice.test_call import until
from voice import twilio
from voice.audio import mulaw_encode, read_wav
from voice.call import CallDeps, CallSession
from voice.settings import Settings
from voice.stt import Transcriber, Transcript
from voice.turn_end import PredictorOptions
from voice.turns import Heard, TurnOptions, Turns, TurnTaker, sounds_finished
from voice.vad import Pause, Utterance

# The rules before the end-of-turn predictor (tests/voice/test_turn_end.py has its own).
BEFORE = PredictorOptions.off()
OFF = {
    "turn_complete_end_of_turn_ms": 0,
    "turn_request_end_of_turn_ms": 0,
    "turn_hold_partial_digits": False,
    "turn_pace": False,
}

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"
ORDER = Hints(slot="order_number", prompt="Order number:", expect_dtmf=True)
YES_NO = Hints(slot="yes_no")


class Ears(Transcriber):
    """Hears `text` in any audio; each transcription can be held until the test lets it go."""

    def __init__(self, text: str = "Where is my order?", held: bool = False) -> None:
        self.text = text
        self.heard: list[int] = []  # samples of each utterance it was asked about
        self.finished: list[int] = []
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        self.heard.append(len(pcm))
        await self.release.wait()
        self.finished.append(len(pcm))
        return Transcript(self.text, 0.9, len(pcm) // 8, 1)


def pause(samples: int, speech_end_ms: int = 1000) -> Pause:
    return Pause(np.zeros(samples, np.int16), speech_end_ms, speech_end_ms + 240)


def utterance(samples: int, speech_end_ms: int = 1000) -> Utterance:
    return Utterance(np.zeros(samples, np.int16), 0, speech_end_ms, speech_end_ms + 600, 800)


@pytest.mark.parametrize(
    ("text", "finished"),
    [
        ("Where is my order?", True),
        ("No, thanks.", True),
        ("where is my order", True),  # tiny.en often drops the last full stop
        ("Order 1, 0, 0, 3.", True),
        ("My order number is", False),
        ("I want to return my", False),
        ("It's order one, zero,", False),
        ("I was going to say that...", False),
        ("I want to talk to the.", False),
        ("", False),
    ],
)
def test_what_sounds_like_a_finished_sentence(text, finished):
    assert sounds_finished(text) is finished


async def test_the_guess_is_the_transcript_when_the_caller_stays_silent():
    ears = Ears()
    turns = TurnTaker(TurnOptions(), ears.transcribe)
    turns.paused(pause(16000), None)
    early = turns.take(utterance(16000), None)
    assert early is not None
    assert (await early).text == "Where is my order?"
    assert ears.heard == [16000] and turns.used == 1


async def test_a_guess_the_caller_talked_over_is_dropped():
    ears = Ears(held=True)
    turns = TurnTaker(TurnOptions(), ears.transcribe)
    turns.paused(pause(8000, speech_end_ms=500), None)
    await asyncio.sleep(0)
    turns.spoke()
    turns.paused(pause(16000), None)
    early = turns.take(utterance(16000), None)
    ears.release.set()
    assert early is not None and (await early).audio_ms == 2000
    assert ears.finished == [16000]  # the first guess never finished
    assert turns.dropped == 1


async def test_no_guess_for_other_audio_or_other_hints():
    ears = Ears()
    turns = TurnTaker(TurnOptions(), ears.transcribe)
    turns.paused(pause(16000), None)
    assert turns.take(utterance(16160), None) is None  # the caller said a little more
    turns.paused(pause(16000), None)
    assert turns.take(utterance(16000), ORDER) is None  # the agent asked something else since


async def test_a_finished_short_answer_ends_the_turn_early_once_transcribed():
    ears = Ears("No, thanks.", held=True)
    options = TurnOptions(quick_end_of_turn_ms=480, end_of_turn_ms=600)
    turns = TurnTaker(options, ears.transcribe, BEFORE)
    turns.paused(pause(16000), YES_NO)
    assert not turns.turn_over(480, YES_NO)  # not transcribed yet
    ears.release.set()
    await until(lambda: turns.ready() is not None)
    assert not turns.turn_over(460, YES_NO)
    assert turns.turn_over(480, YES_NO)


async def test_an_unfinished_answer_waits_for_the_full_silence():
    ears = Ears("No, but")
    options = TurnOptions(quick_end_of_turn_ms=480, end_of_turn_ms=600, unfinished_end_of_turn_ms=0)
    turns = TurnTaker(options, ears.transcribe)
    turns.paused(pause(16000), YES_NO)
    await until(lambda: turns.ready() is not None)
    assert not turns.turn_over(580, YES_NO)
    assert turns.turn_over(600, YES_NO)


@pytest.mark.parametrize("text", ["I'd like to return the", "Where is my order, and also", "um"])
async def test_a_sentence_that_trails_off_is_given_time_to_go_on(text):
    """A caller pausing mid-sentence ("I'd like to return the… wool sweater") is one turn."""
    ears = Ears(text)
    options = TurnOptions(end_of_turn_ms=600, unfinished_end_of_turn_ms=1500)
    turns = TurnTaker(options, ears.transcribe)
    turns.paused(pause(16000), None)
    await until(lambda: turns.ready() is not None)
    assert not turns.turn_over(600, None) and not turns.turn_over(1480, None)
    assert turns.turn_over(1500, None)
    assert turns.held == 1
    assert options.longest_ms == 1500  # the segmenter itself waits that long


async def test_the_turn_waits_for_a_transcript_still_being_made():
    """Ending the turn sooner would gain nothing: the reply needs this very transcript."""
    ears = Ears("My order number is", held=True)
    turns = TurnTaker(
        TurnOptions(end_of_turn_ms=600, unfinished_end_of_turn_ms=1500), ears.transcribe
    )
    turns.paused(pause(16000), None)
    assert not turns.turn_over(600, None)  # still transcribing
    ears.release.set()
    await until(lambda: turns.ready() is not None)
    assert not turns.turn_over(620, None)  # it trails off: wait on
    assert turns.turn_over(1500, None)


async def test_a_finished_sentence_is_not_held():
    ears = Ears("Where is my order?")
    turns = TurnTaker(TurnOptions(end_of_turn_ms=600), ears.transcribe)
    turns.paused(pause(16000), None)
    await until(lambda: turns.ready() is not None)
    assert turns.turn_over(600, None) and turns.held == 0


async def test_an_open_question_is_never_answered_early():
    """Callers pause mid-sentence; after "Hi." or "I ordered a lamp." more often follows."""
    ears = Ears("I ordered a lamp.")
    turns = TurnTaker(TurnOptions(quick_end_of_turn_ms=480, end_of_turn_ms=600), ears.transcribe)
    turns.paused(pause(16000), None)
    await until(lambda: turns.ready() is not None)
    assert not turns.turn_over(580, None)
    assert turns.turn_over(600, None)


async def test_a_long_answer_is_never_cut_early():
    ears = Ears("Order 1, 0.")
    options = TurnOptions(quick_end_of_turn_ms=480, end_of_turn_ms=600)
    turns = TurnTaker(options, ears.transcribe, BEFORE)
    turns.paused(pause(16000), ORDER)
    await until(lambda: turns.ready() is not None)
    assert not turns.turn_over(780, ORDER)
    assert turns.turn_over(options.long_answer_end_of_turn_ms, ORDER)


async def test_without_speculation_only_silence_ends_a_turn():
    ears = Ears()
    turns = TurnTaker(TurnOptions(pause_ms=0), ears.transcribe)
    turns.paused(pause(16000), None)
    assert ears.heard == [] and turns.take(utterance(16000), None) is None
    assert not turns.turn_over(590, None) and turns.turn_over(600, None)


# --- inside a call ------------------------------------------------------------------------------


class AskingAgent(EchoAgent):
    """Greets with a question whose hints are given; records what it hears."""

    def __init__(self, hints: Hints | None = None) -> None:
        super().__init__()
        self.hints = hints
        self.heard: list[str] = []

    async def start(self) -> AsyncIterator:
        yield Say("What can I do for you?")
        if self.hints is not None:
            yield self.hints

    async def hear(self, text: str, confidence: float, *, guessed: bool = False) -> AsyncIterator:
        self.heard.append(text)
        yield Say("Right.")

    async def keypad(self, digits: str) -> AsyncIterator:
        yield Say("Right.")

    async def silence(self, seconds: float) -> AsyncIterator:
        if False:
            yield

    async def end(self, reason: str) -> str:
        return reason


class Call:
    """A session on a fake socket, fed caller audio frame by frame."""

    def __init__(self, tmp_path, ears: Transcriber, agent: AskingAgent, **overrides) -> None:
        self.settings = Settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            twilio_auth_token="tok",
            silence_reprompt_s=30.0,
            **overrides,
        )
        store = Store(make_engine(self.settings.database_url))
        store.create_all()
        self.store = store
        self.tts = FakeSynthesizer()
        self.socket = FakeSocket()
        deps = CallDeps(self.settings, store, ears, self.tts, lambda i, e: agent)
        self.session = CallSession(self.socket, deps)
        params = {"from": "+14155550101", "to": "+18005550100", "direction": "inbound"}
        params["token"] = twilio.make_stream_token(self.settings.secret(), "CA1", params)
        self.stream = twilio.StreamParams("CA1", "MZ1", "AC1", params)
        self.ts = 0
        self.seq = 1

    async def start(self) -> None:
        self.socket.incoming.put_nowait(twilio.build_connected())
        self.socket.incoming.put_nowait(twilio.build_start(self.stream))
        self.task = asyncio.create_task(self.session.run())
        await until(lambda: self.tts.spoken)

    async def audio(self, pcm: np.ndarray) -> None:
        for i in range(len(pcm) // 160):
            self.seq += 1
            frame = mulaw_encode(pcm[i * 160 : (i + 1) * 160])
            self.socket.incoming.put_nowait(twilio.build_media("MZ1", self.seq, i, self.ts, frame))
            self.ts += 20
        await until(lambda: self.socket.incoming.empty())
        await asyncio.sleep(0.05)  # the last frames handled

    async def silence(self, ms: int) -> None:
        await self.audio(np.zeros(8 * ms, np.int16))

    async def finish(self) -> dict:
        self.socket.incoming.put_nowait(twilio.build_stop(self.stream, 99))
        await asyncio.wait_for(self.task, 5)
        return self.store.call("CA1")


def speech(name: str = "where_is_my_order") -> np.ndarray:
    """A clip without its trailing padding: the caller's last word ends the audio."""
    clip = read_wav(CLIPS / f"{name}.wav")
    return clip[: len(clip) - 8000 * 45 // 100]


async def test_a_yes_or_no_is_answered_without_the_full_end_of_turn_wait(tmp_path):
    ears, agent = Ears("No, thanks."), AskingAgent(YES_NO)
    call = Call(
        tmp_path,
        ears,
        agent,
        vad_quick_end_of_turn_ms=480,
        vad_end_of_turn_ms=600,
        vad_pause_ms=240,
        **OFF,
    )
    await call.start()
    await call.audio(speech("no_thanks"))
    await call.silence(400)  # a pause: transcribing starts
    await until(lambda: ears.finished)
    assert agent.heard == []
    # ~520 ms of silence in all (webrtcvad hears the first ~80 ms as the word's tail): short
    # of the 600 ms end of turn.
    await call.silence(200)
    await until(lambda: agent.heard)
    assert agent.heard == ["No, thanks."]
    record = await call.finish()
    caller = [t for t in record["turns"] if t["role"] == "caller"]
    assert caller[0]["timing"]["speculative"] is True
    assert len(ears.heard) == 1  # transcribed once: the guess was the answer


async def test_an_order_number_gets_the_long_end_of_turn(tmp_path):
    ears, agent = Ears("Order 1, 0, 0, 3."), AskingAgent(ORDER)
    call = Call(
        tmp_path,
        ears,
        agent,
        vad_quick_end_of_turn_ms=480,
        vad_end_of_turn_ms=600,
        vad_long_answer_end_of_turn_ms=800,
        **OFF,
    )
    await call.start()
    await call.audio(speech("order_1003_spoken"))
    await call.silence(700)
    assert agent.heard == []  # a caller reading digits may pause this long
    await call.silence(200)
    await until(lambda: agent.heard)
    assert agent.heard == ["Order 1, 0, 0, 3."]
    await call.finish()


async def test_without_speculation_the_turn_is_transcribed_after_it_ends(tmp_path):
    ears, agent = Ears(), AskingAgent()
    call = Call(tmp_path, ears, agent, vad_pause_ms=0, vad_end_of_turn_ms=600)
    await call.start()
    await call.audio(speech())
    await call.silence(500)
    assert ears.heard == [] and agent.heard == []
    await call.silence(200)
    await until(lambda: agent.heard)
    record = await call.finish()
    caller = [t for t in record["turns"] if t["role"] == "caller"]
    assert caller[0]["timing"]["speculative"] is False


async def test_a_transcript_that_comes_in_late_ends_the_turn_at_once_not_at_the_next_frame():
    ears = Ears("Where is my order?", held=True)
    heard: list = []
    turns = Turns(
        Settings(),
        ears.transcribe,
        emit=heard.append,
        barge_in=lambda b: None,
        speaking=lambda: False,
        busy=lambda: True,
        now_ms=lambda: 0,
    )
    clip = speech()
    turns.audio(clip, 0)
    silence = np.zeros(8000 * 700 // 1000, np.int16)  # past the request wait, still no text
    turns.audio(silence, len(clip) // 8)
    await until(lambda: ears.heard)
    assert heard == []  # the turn waits for the transcript it needs
    ears.release.set()
    await until(lambda: heard)  # no further frame arrives: the transcript alone ended it
    assert isinstance(heard[0], Heard) and heard[0].early is not None
    assert (await heard[0].early).text == "Where is my order?"
