"""When the engines fail mid-call, or a call runs too long: never dead air, never a lost caller.

Sessions run on a fake socket with fake engines (the protocol boundaries) and, where the
handoff matters, the real agent over the embedded demo shop, so the ticket it leaves is the
outbox row a helpdesk would receive.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from dialog.events import FaultLines, Hints, Say
from integrations.demo import seed
from integrations.store import Store, make_engine
from tests.fakes import EchoAgent, FakeSocket, FakeSynthesizer, FakeTranscriber
from tests.voice.test_call import until
from voice import twilio
from voice.audio import mulaw_encode, read_wav
from voice.call import CallDeps, CallSession
from voice.services import build_shop
from voice.settings import Settings
from voice.stt import Transcript

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"
MARIA = "+14155550101"
SUPPORT = "+18005550100"
BASE = dict(twilio_auth_token="tok", allow_injection=True, silence_reprompt_s=30.0)


class ScriptedTranscriber(FakeTranscriber):
    """Each utterance gets the next item of the script: a transcript, or an exception raised."""

    def __init__(self, script: list[str | Exception]) -> None:
        super().__init__()
        self.script = list(script)

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        self.hints.append(hints)
        item = self.script.pop(0) if self.script else ""
        if isinstance(item, Exception):
            raise item
        return Transcript(item, 0.9 if item else 0.0, len(pcm) // 8, 1)


def echo_deps(tmp_path, stt=None, tts=None, **overrides) -> CallDeps:
    """Deps with a fresh `EchoAgent` per call (an agent with no handoff of its own)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/calls.db", **{**BASE, **overrides})
    store = Store(make_engine(settings.database_url))
    store.create_all()
    return CallDeps(
        settings,
        store,
        stt or FakeTranscriber(),
        tts or FakeSynthesizer(),
        lambda info, events: EchoAgent(),
    )


def shop_deps(tmp_path, stt=None, tts=None, **overrides) -> CallDeps:
    """Deps with the real agent over the seeded demo shop."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/shop.db", **{**BASE, **overrides})
    shop = build_shop(settings)
    seed(shop.engine)
    return CallDeps(
        settings, shop.store, stt or FakeTranscriber(), tts or FakeSynthesizer(), shop.agent
    )


class Line:
    """One call over a fake socket, as Twilio would run it."""

    def __init__(
        self, deps: CallDeps, call_sid: str = "CA1", caller: str = MARIA, direction="inbound"
    ) -> None:
        self.deps = deps
        self.call_sid = call_sid
        self.socket = FakeSocket()
        self.session = CallSession(self.socket, deps)
        if direction == "inbound":
            params = {"from": caller, "to": SUPPORT, "direction": "inbound"}
        else:
            params = {"from": SUPPORT, "to": caller, "direction": "outbound-api"}
        params["token"] = twilio.make_stream_token(deps.settings.secret(), call_sid, params)
        self.stream = twilio.StreamParams(call_sid, "MZ" + call_sid, "AC1", params)
        self.task: asyncio.Task | None = None
        self.ts = 0
        self.seq = 1
        self.sent_caller: list[np.ndarray] = []

    def put(self, raw) -> None:
        self.socket.incoming.put_nowait(raw)

    def start(self) -> None:
        self.put(twilio.build_connected())
        self.put(twilio.build_start(self.stream))
        self.task = asyncio.create_task(self.session.run())

    def audio(self, pcm: np.ndarray) -> None:
        for i in range(len(pcm) // 160):
            frame = pcm[i * 160 : (i + 1) * 160]
            self.seq += 1
            self.put(
                twilio.build_media(
                    self.stream.stream_sid, self.seq, i, self.ts, mulaw_encode(frame)
                )
            )
            self.sent_caller.append(frame)
            self.ts += 20

    def speak(self) -> None:
        """One caller utterance (a real clip, then enough silence to end the turn)."""
        clip = read_wav(CLIPS / "where_is_my_order.wav")
        self.audio(np.concatenate([clip, np.zeros(8000, np.int16)]))

    def say(self, text: str) -> None:
        self.put(twilio.build_inject(text, self.ts))

    async def ended(self, timeout: float = 10.0) -> dict:
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout)
        record = self.deps.store.call(self.call_sid)
        assert record is not None
        return record

    async def hang_up(self) -> dict:
        self.put(twilio.build_stop(self.stream, 999))
        return await self.ended()

    def media(self) -> bytes:
        """Every byte of agent audio sent to the caller, in order."""
        import base64

        return b"".join(
            base64.b64decode(m["media"]["payload"]) for m in self.socket.events("media")
        )

    def agent_turns(self) -> list[str]:
        record = self.deps.store.call(self.call_sid) or {"turns": []}
        return [t["text"] for t in record["turns"] if t["role"] == "agent"]


def events_of(record: dict, kind: str) -> list[dict]:
    return [e for e in record["events"] if e["type"] == kind]


def tickets(deps: CallDeps) -> list[dict]:
    return [i for i in deps.store.outbox_items(None) if i["kind"] == "ticket"]


# --- speech to text fails -------------------------------------------------------------------


async def heard_trouble(deps: CallDeps) -> Line:
    """A call whose first utterance the transcriber fails on: up to the agent saying so."""
    line = Line(deps)
    line.start()
    await until(lambda: deps.synthesizer.spoken)
    line.speak()
    # the call log is written behind the reply: wait for the logged turn, not the audio
    await until(lambda: any("trouble hearing you" in t for t in line.agent_turns()))
    return line


async def test_a_failed_transcription_is_apologised_for_and_a_person_offered(tmp_path):
    stt = ScriptedTranscriber([RuntimeError("whisper crashed"), "no"])
    deps = shop_deps(tmp_path, stt)
    line = await heard_trouble(deps)
    offer = next(t for t in line.agent_turns() if "trouble hearing you" in t)
    assert offer.endswith("Would you like me to connect you with a person?")
    line.speak()  # "no": carry on, the open question again
    await until(lambda: any(s.startswith("Okay.") for s in deps.synthesizer.spoken))
    record = await line.hang_up()
    assert record["end_reason"] == "caller_hangup" and not record["transfer_to"]
    assert tickets(deps) == []


async def test_a_second_failed_transcription_hands_over_with_a_ticket(tmp_path):
    stt = ScriptedTranscriber([RuntimeError("whisper crashed"), TimeoutError("stuck")])
    deps = shop_deps(tmp_path, stt)
    line = await heard_trouble(deps)
    line.speak()
    record = await line.ended()  # the agent ends the stream: Twilio dials the person
    assert record["end_reason"] == "transfer"
    assert record["transfer_to"] == deps.settings.human_number
    assert any("can't hear you" in t for t in line.agent_turns())
    assert [e["data"]["reason"] for e in events_of(record, "escalation")] == ["stt_failed"]
    assert events_of(record, "handoff") and events_of(record, "ticket.created")
    (ticket,) = tickets(deps)
    assert "stt_failed" in ticket["payload"]["tags"]
    assert "CA1" in ticket["payload"]["subject"]


async def test_yes_to_the_offered_person_hands_over(tmp_path):
    stt = ScriptedTranscriber([RuntimeError("whisper crashed"), "yes please"])
    deps = shop_deps(tmp_path, stt)
    line = await heard_trouble(deps)
    line.speak()
    record = await line.ended()
    assert record["end_reason"] == "transfer"
    assert [e["data"]["reason"] for e in events_of(record, "escalation")] == ["stt_failed"]
    assert len(tickets(deps)) == 1


async def test_when_the_agent_does_not_hand_over_the_session_transfers_itself(tmp_path):
    stt = ScriptedTranscriber([RuntimeError("one"), RuntimeError("two")])
    deps = echo_deps(tmp_path, stt)
    line = await heard_trouble(deps)
    line.speak()
    record = await line.ended()
    assert record["transfer_to"] == deps.settings.human_number
    assert [e["data"]["reason"] for e in events_of(record, "escalation")] == ["stt_failed"]
    assert deps.lines.technical_problem in " ".join(deps.synthesizer.spoken)


# --- text to speech fails -------------------------------------------------------------------


async def test_a_failed_synthesis_plays_the_recorded_apology_and_hands_over(tmp_path):
    tts = FakeSynthesizer(fail_on="thanks for calling")
    deps = shop_deps(tmp_path, tts=tts)
    await deps.prepare()  # as the server does at start-up
    clip = deps.canned.ready(deps.lines.technical_problem)
    assert clip
    line = Line(deps)
    line.start()
    record = await line.ended()
    assert clip in line.media()  # the caller heard the apology, though piper could not speak
    assert record["end_reason"] == "transfer"
    assert record["transfer_to"] == deps.settings.human_number
    assert [e["data"]["reason"] for e in events_of(record, "escalation")] == ["tts_failed"]
    (ticket,) = tickets(deps)
    assert "tts_failed" in ticket["payload"]["tags"]
    assert deps.lines.technical_problem in line.agent_turns()


async def test_with_no_recorded_apology_two_beeps_fill_the_silence(tmp_path):
    tts = FakeSynthesizer(fail_on="Hello")  # EchoAgent's greeting; nothing was prepared
    deps = echo_deps(tmp_path, tts=tts)
    line = Line(deps)
    line.start()
    record = await line.ended()
    assert len(line.media()) >= 8000 // 4  # at least a beep's worth of audio
    assert record["transfer_to"] == deps.settings.human_number
    assert [e["data"]["reason"] for e in events_of(record, "escalation")] == ["tts_failed"]


async def test_the_synthesizer_failing_again_during_the_handoff_apologises_only_once(tmp_path):
    class BrokenSynthesizer(FakeSynthesizer):
        broken = False

        async def synthesize(self, text: str) -> np.ndarray:
            if self.broken:
                raise RuntimeError("piper is gone")
            return await super().synthesize(text)

    tts = BrokenSynthesizer()
    deps = shop_deps(tmp_path, tts=tts)
    await deps.prepare()
    tts.broken = True
    line = Line(deps)
    line.start()
    record = await line.ended()
    clip = deps.canned.ready(deps.lines.technical_problem)
    assert clip and line.media().count(clip) == 1
    assert record["end_reason"] == "transfer" and len(tickets(deps)) == 1


# --- the call runs too long -----------------------------------------------------------------


async def test_a_long_call_is_wrapped_up_politely_and_ended(tmp_path):
    deps = shop_deps(tmp_path, max_call_s=0.5)
    line = Line(deps)
    line.start()
    record = await line.ended()
    assert record["end_reason"] == "max_duration"
    assert events_of(record, "call.ended")[-1]["data"]["reason"] == "max_duration"
    said = " ".join(deps.synthesizer.spoken)
    assert "talking for quite a while" in said and "Goodbye" in said
    assert tickets(deps) == []  # nothing was under way: nobody needs to follow up


async def test_an_unfinished_request_at_the_time_limit_leaves_a_ticket(tmp_path):
    deps = shop_deps(tmp_path, max_call_s=1.0)
    line = Line(deps, caller="+14155550999")  # nobody the shop knows
    line.start()
    line.say("where is my order")  # the agent asks for the order number: still under way
    record = await line.ended()
    assert record["end_reason"] == "max_duration"
    assert "a person will follow up" in " ".join(deps.synthesizer.spoken)
    (ticket,) = tickets(deps)
    assert "max_duration" in ticket["payload"]["tags"]
    assert "where is my order" in json.dumps(ticket["payload"]).lower()


async def test_a_fake_agents_wrap_up_ends_the_call_at_the_limit(tmp_path):
    deps = echo_deps(tmp_path, max_call_s=0.3)
    line = Line(deps)
    line.start()
    record = await line.ended()
    assert record["end_reason"] == "max_duration"
    assert any("talking for quite a while" in s for s in deps.synthesizer.spoken)


# --- hanging up mid-reply -------------------------------------------------------------------


class SlowActionAgent(EchoAgent):
    """Its reply to speech says one thing, then waits on a lookup that never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = asyncio.Event()

    async def hear(self, text: str, confidence: float, *, guessed: bool = False):
        try:
            yield Say("One moment.")
            await asyncio.Event().wait()  # the carrier that never answers
        finally:
            self.closed.set()


async def test_hanging_up_mid_reply_closes_the_agents_reply_at_once(tmp_path):
    # The call hangs up while the session is busy with the reply's first line (storing it),
    # so the agent's reply is suspended at that line, not awaited. It must still be closed
    # when the call ends, not left pending for the garbage collector to find.
    agent = SlowActionAgent()
    deps = echo_deps(tmp_path)
    deps.make_agent = lambda info, events: agent
    store_turn = deps.store.add_turn
    storing = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_add_turn(call_sid, seq, role, text, **kw):
        if text == "One moment.":
            loop.call_soon_threadsafe(storing.set)
            time.sleep(0.3)
        return store_turn(call_sid, seq, role, text, **kw)

    deps.store.add_turn = slow_add_turn
    line = Line(deps)
    line.start()
    await until(lambda: deps.synthesizer.spoken)
    line.say("where is my order")
    await asyncio.wait_for(storing.wait(), 5)
    await line.hang_up()
    assert agent.closed.is_set()


# --- the shop's own words -----------------------------------------------------------------------


async def test_the_lines_the_voice_layer_says_alone_are_the_shops_wording(tmp_path):
    """Nothing recognised in a long utterance, then a synthesizer that fails: what the caller
    hears comes from `fault_lines`, the conversation file's wording, not from voice/."""
    lines = FaultLines(
        technical_problem="Our phone line has a fault; a colleague will take over.",
        apology="Oops.",
        say_again="Pardon? Once more, please.",
    )

    deps = echo_deps(tmp_path, stt=ScriptedTranscriber([""]), tts=FakeSynthesizer("You said"))
    deps.lines = lines
    await deps.prepare()
    line = Line(deps)
    line.start()
    await until(lambda: deps.synthesizer.spoken)
    line.speak()
    await until(lambda: "Pardon? Once more, please." in line.agent_turns())
    line.say("hello")  # its reply cannot be synthesized: the shop's apology plays, recorded
    record = await line.ended()
    assert deps.canned.ready(lines.technical_problem) in line.media()
    assert lines.technical_problem in line.agent_turns()
    assert record["end_reason"] == "transfer"


def test_the_shipped_conversation_words_the_voice_layers_lines():
    from dialog.loader import load_flows

    shipped = load_flows().conversation
    assert shipped.fault_lines() == FaultLines(shipped.fault, shipped.apology, shipped.say_again)
    assert all(shipped.fault_lines().__dict__.values())
