"""CallSession against a fake socket: the Twilio protocol, bad input, keypad, barge-in."""

import asyncio
import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from integrations.store import Store, make_engine
from tests.fakes import EchoAgent, FakeSocket, FakeSynthesizer, FakeTranscriber
from voice import twilio
from voice.audio import mulaw_encode, read_wav
from voice.call import CallDeps, CallSession
from voice.pool import job_urgent
from voice.settings import Settings
from voice.stt import Transcript

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"
SECRET_SETTINGS = dict(twilio_auth_token="tok", allow_injection=True, silence_reprompt_s=2.0)


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class Harness:
    def __init__(self, tmp_path, transcripts=None, **overrides):
        self.settings = Settings(
            database_url=f"sqlite:///{tmp_path}/t.db", **{**SECRET_SETTINGS, **overrides}
        )
        self.store = Store(make_engine(self.settings.database_url))
        self.store.create_all()
        self.agent = EchoAgent()
        self.stt = FakeTranscriber(transcripts)
        self.tts = FakeSynthesizer()
        self.socket = FakeSocket()
        deps = CallDeps(self.settings, self.store, self.stt, self.tts, lambda i, e: self.agent)
        self.session = CallSession(self.socket, deps)
        self.params = {"from": "+14155550101", "to": "+18005550100", "direction": "inbound"}
        self.params["token"] = twilio.make_stream_token(self.settings.secret(), "CA1", self.params)
        self.stream = twilio.StreamParams("CA1", "MZ1", "AC1", self.params)
        self.task: asyncio.Task | None = None
        self.ts = 0
        self.seq = 1

    def put(self, raw):
        self.socket.incoming.put_nowait(raw)

    async def start(self):
        self.put(twilio.build_connected())
        self.put(twilio.build_start(self.stream))
        self.task = asyncio.create_task(self.session.run())
        await until(lambda: self.tts.spoken)

    def audio(self, pcm: np.ndarray):
        for i in range(len(pcm) // 160):
            self.seq += 1
            self.put(
                twilio.build_media(
                    "MZ1", self.seq, i, self.ts, mulaw_encode(pcm[i * 160 : (i + 1) * 160])
                )
            )
            self.ts += 20

    async def finish(self):
        self.put(twilio.build_stop(self.stream, 99))
        await asyncio.wait_for(self.task, 5)


async def test_bad_messages_are_logged_once_each_and_never_end_the_call(tmp_path, caplog):
    h = Harness(tmp_path)
    caplog.set_level(logging.WARNING, logger="voice.call")
    h.put(twilio.build_media("MZ1", 1, 1, 0, b"\xff" * 160))  # media before start
    await h.start()
    bad = [
        "{this is not json",
        json.dumps({"event": "teleport"}),
        "x" * (70 * 1024),
        b"\x00\x01\x02",
        json.dumps({"event": "media", "media": {"track": "inbound"}}),
        json.dumps({"event": "media", "media": {"payload": "@@not base64@@"}}),
    ]
    for raw in bad + bad:
        h.put(raw)
    h.put(twilio.build_inject("still there", 100))
    await until(lambda: h.agent.heard == ["still there"])
    h.put(twilio.build_inject("bye now", 200))
    await asyncio.wait_for(h.task, 5)
    assert h.agent.ended == "caller_done"
    counts = h.session.stats.bad_messages
    expected = {
        "before_start",
        "invalid_json",
        "unknown_event",
        "oversized",
        "binary_frame",
        "missing_field",
        "bad_base64",
    }
    assert set(counts) == expected
    assert counts["invalid_json"] == 2 and counts["bad_base64"] == 2
    warnings = [r.getMessage() for r in caplog.records if "ignoring bad message" in r.getMessage()]
    assert len(warnings) == len(expected)  # logged once per kind, not per message
    record = h.store.call("CA1")
    assert record["end_reason"] == "caller_done" and record["ended_at"] is not None
    assert [e["type"] for e in record["events"]][:1] == ["call.started"]
    assert record["events"][-1]["type"] == "call.ended"


@pytest.mark.parametrize("token", [None, "forged"])
async def test_media_socket_refused_without_the_issued_token(tmp_path, token):
    h = Harness(tmp_path)
    params = {k: v for k, v in h.params.items() if k != "token"}
    if token:
        params["token"] = token
    h.put(twilio.build_start(twilio.StreamParams("CA1", "MZ1", "AC1", params)))
    await asyncio.wait_for(h.session.run(), 5)
    assert h.socket.closed_with == 1008
    assert h.store.call("CA1") is None
    assert h.socket.events("media") == []


class UrgencyOfSynthesis(FakeSynthesizer):
    """Notes, per sentence, whether it was asked for as one a caller waits for in silence."""

    def __init__(self) -> None:
        super().__init__()
        self.urgent: dict[str, bool] = {}

    async def synthesize(self, text: str) -> np.ndarray:
        self.urgent[text] = job_urgent.get()
        return await super().synthesize(text)


async def test_the_first_sentence_of_a_reply_goes_first_the_next_ones_behind_it(tmp_path):
    h = Harness(tmp_path)
    h.tts = h.session.deps.synthesizer = UrgencyOfSynthesis()
    h.agent.greeting = "Hello there. This second sentence plays while the first one is heard."
    await h.start()
    await until(lambda: len(h.tts.urgent) == 2)
    h.put(twilio.build_inject("hi", 100))
    await until(lambda: "You said hi." in h.tts.urgent)
    await h.finish()
    assert h.tts.urgent == {
        "Hello there.": True,
        "This second sentence plays while the first one is heard.": False,
        "You said hi.": True,  # a new reply: the caller waits for it
    }


async def test_a_slow_store_never_holds_a_reply_and_loses_nothing_of_it(tmp_path):
    h = Harness(tmp_path)
    await h.start()
    gate = threading.Event()
    add_turn = h.store.add_turn

    def slow_add_turn(*args, **kwargs):
        if args[2] == "caller":
            gate.wait(10)  # the store is stuck while the caller's turn is written
        return add_turn(*args, **kwargs)

    h.store.add_turn = slow_add_turn
    h.put(twilio.build_inject("where is my order", 100))
    await until(lambda: "You said where is my order." in h.tts.spoken)
    await until(lambda: any(m["mark"]["name"].startswith("r2:") for m in h.socket.events("mark")))
    assert [t["role"] for t in h.store.call("CA1")["turns"]] == ["agent"]  # the greeting only
    gate.set()
    await h.finish()
    turns = h.store.call("CA1")["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("agent", "Hello. How can I help?"),
        ("caller", "where is my order"),
        ("agent", "You said where is my order."),
    ]
    # written after the turn it times, though asked for while that turn was still held up
    assert turns[2]["timing"]["latency_ms"] >= 0 and turns[2]["end_ms"] is not None


async def test_keypad_digits_reach_the_agent_on_pound(tmp_path):
    h = Harness(tmp_path)
    await h.start()
    for seq, digit in enumerate("1006#"):
        h.put(twilio.build_dtmf("MZ1", 10 + seq, digit))
    await until(lambda: h.agent.keys == ["1006"])
    await until(lambda: "You typed 1006." in h.tts.spoken)
    await h.finish()
    turns = h.store.call("CA1")["turns"]
    assert any(
        t["role"] == "caller" and t["source"] == "dtmf" and t["text"] == "1006" for t in turns
    )


async def test_keypad_digits_flush_after_a_pause(tmp_path):
    h = Harness(tmp_path, dtmf_timeout_s=0.2)
    await h.start()
    for seq, digit in enumerate("42"):
        h.put(twilio.build_dtmf("MZ1", 10 + seq, digit))
    await until(lambda: h.agent.keys == ["42"])
    await h.finish()


async def test_speech_is_transcribed_and_answered_with_marks(tmp_path):
    h = Harness(tmp_path, transcripts=["where is my order"])
    await h.start()
    clip = read_wav(CLIPS / "where_is_my_order.wav")
    h.audio(np.concatenate([clip, np.zeros(8000, np.int16)]))
    await until(lambda: "You said where is my order." in h.tts.spoken)
    await until(lambda: any(m["mark"]["name"].startswith("r2:") for m in h.socket.events("mark")))
    await h.finish()
    marks = [m["mark"]["name"] for m in h.socket.events("mark")]
    assert marks[0].startswith("s") and any(m.startswith("r1:") for m in marks)
    record = h.store.call("CA1")
    caller = [t for t in record["turns"] if t["role"] == "caller"]
    assert caller[0]["text"] == "where is my order" and caller[0]["source"] == "audio"
    reply = [t for t in record["turns"] if t["role"] == "agent" and t["timing"]]
    assert set(reply[0]["timing"]) == {"latency_ms", "eot_wait_ms", "stt_ms", "dialog_ms", "tts_ms"}


async def test_a_guessed_number_reaches_the_agent_marked_as_a_guess(tmp_path):
    guess = Transcript("1003", 0.4, 1500, 1, digits_fallback=True)
    h = Harness(tmp_path, transcripts=[guess, "where is my order"])
    await h.start()
    clip = read_wav(CLIPS / "where_is_my_order.wav")
    for _ in range(2):
        h.audio(np.concatenate([clip, np.zeros(8000, np.int16)]))
    await until(lambda: len(h.agent.heard) == 2)
    await h.finish()
    assert h.agent.heard == ["1003", "where is my order"]
    assert h.agent.guessed == [True, False]


async def test_barge_in_clears_twilio_and_the_agent_listens(tmp_path):
    h = Harness(tmp_path, transcripts=["sorry where is my order"])
    h.socket.echo_marks = False  # the greeting stays "playing" at the caller's end
    h.agent.greeting = "Thanks for calling. " * 10
    await h.start()
    await until(lambda: h.socket.events("media"))
    clip = read_wav(CLIPS / "interrupt_where_is_my_order.wav")
    h.audio(np.concatenate([clip, np.zeros(8000, np.int16)]))
    await until(lambda: h.socket.events("clear"))
    await until(lambda: h.agent.heard == ["sorry where is my order"])
    h.socket.echo_marks = True
    await h.finish()
    record = h.store.call("CA1")
    assert "barge_in" in [e["type"] for e in record["events"]]
    assert any(t["interrupted"] for t in record["turns"] if t["role"] == "agent")


async def test_silence_prompts_the_agent(tmp_path):
    h = Harness(tmp_path)
    await h.start()
    await until(lambda: any(m["mark"]["name"].startswith("r1:") for m in h.socket.events("mark")))
    await asyncio.sleep(0.05)
    h.audio(np.zeros(8000 * 3, dtype=np.int16))
    await until(lambda: h.agent.silences)
    assert h.agent.silences[0] >= 2.0
    await h.finish()


async def test_caller_hangup_records_the_end(tmp_path):
    h = Harness(tmp_path)
    await h.start()
    h.put(None)  # socket closed by the peer
    await asyncio.wait_for(h.task, 5)
    assert h.agent.ended == "caller_hangup"
    assert h.store.call("CA1")["end_reason"] == "caller_hangup"
    assert all(t.done() for t in h.session._tasks)


async def test_a_failing_turn_is_apologised_for_and_the_call_goes_on(tmp_path):
    h = Harness(tmp_path)

    class FragileAgent(EchoAgent):
        async def hear(self, text, confidence, *, guessed=False):
            if text == "boom":
                raise RuntimeError("order system exploded")
            async for event in super().hear(text, confidence):
                yield event

    h.agent = FragileAgent()
    h.session.deps.make_agent = lambda i, e: h.agent
    await h.start()
    h.put(twilio.build_inject("boom", 100))
    await until(lambda: any("went wrong" in s for s in h.tts.spoken))
    h.put(twilio.build_inject("hello again", 200))
    await until(lambda: "You said hello again." in h.tts.spoken)
    await h.finish()


async def test_a_card_number_said_on_the_call_is_never_stored_or_heard_by_the_agent(tmp_path):
    h = Harness(tmp_path)
    await h.start()
    h.put(twilio.build_inject("my card is 4242 4242 4242 4242", 100))
    await until(lambda: len(h.agent.heard) == 1)
    await h.finish()
    assert "4242" not in h.agent.heard[0]
    stored = " ".join(t["text"] for t in h.store.call("CA1")["turns"])
    assert "4242" not in stored and "[card number removed]" in stored
