"""`postvoice simulate`: callers who answer back, each a persona (`harness.persona`).

A simulated call is a replay call (`harness.replay.call_scenario`: the signed webhook, the
media socket, Twilio's part played by `FakeTwilio`) whose turns are not written in advance:
after each agent reply the caller hears what was said and answers by its rules
(`harness.caller_rules`). It hears the agent as a caller does, from the agent's audio on the
wire, transcribed by the project's own speech-to-text (the server's decoding settings, one
worker); `fast` reads the words from the live call record instead (what the agent said, never
its hints or slots) and speaks by injected text, so a whole set runs in minutes. Otherwise it
speaks through a caller voice of `harness.callers` at a noise level, over a line that may lose
packets (`harness.simulate_loss`), types keypad answers as DTMF, and leaves its persona's
pauses as silence. The same seed gives the same calls, the same lost frames included.

Each call is judged by the persona's `expect`, as replay judges a scenario; the report is
replay's, plus every caller turn with its reason (`harness.simulate_summary` adds them up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np

from harness.caller_rules import Answer, Caller
from harness.fake_twilio import FakeTwilio
from harness.persona import Persona
from harness.replay import SILENT_PICKUP_S, CallResult, call_scenario
from harness.scenario import Scenario
from harness.simulate_loss import PacketLoss
from harness.target import ReplayTarget

if TYPE_CHECKING:
    from harness.callers import CallerVoice
    from voice.stt import Transcriber

__all__ = [
    "TEXT",
    "CallPlan",
    "RecordEars",
    "SimulatedCall",
    "TextMouth",
    "VoiceMouth",
    "WireEars",
    "call_report",
    "converse",
    "plan_calls",
    "served_transcriber",
    "simulate_call",
]

TEXT = "text"  # the voice and noise of a call whose caller speaks by injected text
RECORD_POLL_S, RECORD_POLLS = 0.05, 40  # the agent's turn is stored as it is spoken


@dataclass(frozen=True)
class CallPlan:
    """One call to make: who calls, in which voice, through which noise and how lossy a line
    (the chance of each 20 ms frame being lost), with which seed."""

    index: int
    persona: Persona
    voice: str
    noise: str
    seed: str
    loss: float = 0.0

    @property
    def name(self) -> str:
        """The call's name in reports and file names."""
        return f"{self.index + 1:03d}-{self.persona.name}"


def plan_calls(
    personas: Sequence[Persona],
    calls: int | None,
    voices: Sequence[CallerVoice],
    noises: Sequence[str],
    seed: int,
    losses: Sequence[float] = (0.0,),
) -> list[CallPlan]:
    """`calls` calls (default: one per persona), personas in turn; each call's voice (the
    persona's own when it names one of `voices`), noise level and packet loss drawn from the
    seed (the loss after the others, so adding levels changes no call's voice or noise). No
    voices: every call speaks by text, which has no audio to lose."""
    plans = []
    for index in range(calls if calls is not None else len(personas)):
        persona = personas[index % len(personas)]
        call_seed = f"{seed}:{index}:{persona.name}"
        rng = random.Random(call_seed)
        names = [v.name for v in voices]
        loss = 0.0
        if not names:
            voice, noise = TEXT, TEXT
        else:
            voice = persona.voice if persona.voice in names else rng.choice(names)
            noise = rng.choice(list(noises))
            loss = rng.choice(list(losses))
        plans.append(CallPlan(index, persona, voice, noise, call_seed, loss))
    return plans


# --- hearing ------------------------------------------------------------------------------------


class Ears(Protocol):
    """How the caller learns what the agent just said."""

    async def hear(self, call: FakeTwilio) -> str:
        """The agent's words since the last time."""
        ...


class WireEars:
    """The agent's audio as it reached the caller, transcribed."""

    def __init__(self, transcriber: Transcriber) -> None:
        self.transcriber = transcriber
        self.cursor_ms = 0

    async def hear(self, call: FakeTwilio) -> str:
        """Everything the agent played since the last time, in one decode."""
        fresh = [s for s in call.state.agent if s.start_ms >= self.cursor_ms]
        if not fresh:
            return ""
        self.cursor_ms = max(s.end_ms for s in fresh)
        pcm = np.concatenate([s.pcm for s in fresh])
        return (await self.transcriber.transcribe(pcm)).text


class RecordEars:
    """The agent's turns as the server records them while the call runs (`--fast`)."""

    def __init__(self, client: httpx.AsyncClient, target: ReplayTarget) -> None:
        self.client = client
        self.target = target
        self.seen: set[int] = set()

    async def hear(self, call: FakeTwilio) -> str:
        """The agent turns not heard yet; waits a little for one to be stored."""
        headers = {}
        if self.target.admin_token:
            headers["Authorization"] = f"Bearer {self.target.admin_token}"
        url = f"{self.target.http_base}/api/calls/{call.params.call_sid}"
        for _ in range(RECORD_POLLS):
            response = await self.client.get(url, headers=headers)
            response.raise_for_status()
            fresh = [
                t
                for t in response.json().get("turns", [])
                if t["role"] == "agent" and t["seq"] not in self.seen
            ]
            if fresh:
                self.seen.update(t["seq"] for t in fresh)
                return " ".join(t["text"] for t in fresh)
            await asyncio.sleep(RECORD_POLL_S)
        return ""


# --- speaking -----------------------------------------------------------------------------------


class Mouth(Protocol):
    """How the caller's answer reaches the agent."""

    async def say(self, call: FakeTwilio, text: str) -> int:
        """Say `text`; the call time it started at."""
        ...


class TextMouth:
    """Words injected after speech-to-text (the server must allow injection)."""

    async def say(self, call: FakeTwilio, text: str) -> int:
        """Inject the words."""
        return await call.text(text)


class VoiceMouth:
    """A caller voice through a phone line at one noise level; each utterance rendered once."""

    def __init__(self, voice: str, noise: str) -> None:
        self.voice = voice
        self.noise = noise
        self._cache: dict[str, np.ndarray] = {}

    async def say(self, call: FakeTwilio, text: str) -> int:
        """Render (off the event loop) and play."""
        from harness.callers import speak

        if text not in self._cache:
            self._cache[text] = await asyncio.to_thread(speak, self.voice, text, self.noise)
        return await call.play(self._cache[text])


# --- one call -----------------------------------------------------------------------------------


@dataclass
class _Conversation:
    """What the caller did on one call, turn by turn."""

    turns: list[dict[str, Any]] = field(default_factory=list)
    resolved_turn: int | None = None
    resolved_ms: int | None = None


async def _answer(call: FakeTwilio, mouth: Mouth, answer: Answer) -> int:
    """Play one answer after the persona's pause; the call time to wait for a reply to."""
    if answer.pause_s:
        await call.silence(answer.pause_s)
    if answer.kind == "dtmf":
        return await call.dtmf(answer.text)
    return await mouth.say(call, answer.text)


async def _talk(
    call: FakeTwilio,
    scenario: Scenario,
    caller: Caller,
    ears: Ears,
    mouth: Mouth,
    log: _Conversation,
) -> None:
    """Hear a reply, answer it, until someone hangs up. An outbound callee picks up silently."""
    answer_to = await call.silence(SILENT_PICKUP_S) if scenario.direction == "outbound" else 0
    while True:
        answered = await call.wait_reply(answer_to)
        heard = await ears.hear(call)
        if not answered:
            if not call.closed.is_set():
                call.state.failures.append(f"turn {len(log.turns)}: the agent did not answer")
            log.turns.append({"heard": heard, "said": "", "kind": "none", "reason": "call ended"})
            return
        answer = caller.answer(heard)
        log.turns.append(
            {
                "turn": len(log.turns) + 1,
                "at_ms": call.now_ms(),
                "heard": heard,
                "said": answer.text,
                "kind": answer.kind,
                "reason": answer.reason,
                "repair": answer.repair,
            }
        )
        if caller.satisfied and log.resolved_turn is None:
            log.resolved_turn, log.resolved_ms = len(log.turns), call.now_ms()
        if answer.kind == "hangup":
            if answer.text:
                await mouth.say(call, answer.text)
            await call.hangup()
            return
        answer_to = await _answer(call, mouth, answer)


@dataclass
class SimulatedCall:
    """One simulated call: the call as replay saw it, the caller, and its turns."""

    result: CallResult
    caller: Caller
    log: _Conversation
    loss: PacketLoss


async def converse(
    plan: CallPlan,
    target: ReplayTarget,
    *,
    transcriber: Transcriber | None,
    realtime: bool = False,
) -> SimulatedCall:
    """Make one planned call. Without a `transcriber` the caller reads the live call record
    (`--fast`, and `postvoice bench --personas`, whose caller must not take the server's CPU)."""
    persona = plan.persona
    scenario = persona.scenario()
    caller = Caller(persona, random.Random(plan.seed))
    mouth: Mouth = TextMouth() if plan.voice == TEXT else VoiceMouth(plan.voice, plan.noise)
    log = _Conversation()
    loss = PacketLoss(plan.loss, plan.seed)
    async with httpx.AsyncClient(timeout=30) as client:
        ears: Ears = RecordEars(client, target) if transcriber is None else WireEars(transcriber)

        async def drive(call: FakeTwilio, _scenario: Scenario) -> None:
            call.loss = loss
            await _talk(call, scenario, caller, ears, mouth, log)

        result = await call_scenario(scenario, target, realtime, drive=drive)
    return SimulatedCall(result, caller, log, loss)


async def simulate_call(
    plan: CallPlan,
    target: ReplayTarget,
    *,
    transcriber: Transcriber | None,
    realtime: bool = False,
) -> dict[str, Any]:
    """Make one planned call; its report (replay's, plus the caller's turns and figures)."""
    call = await converse(plan, target, transcriber=transcriber, realtime=realtime)
    return call_report(plan, call, heard_from="record" if transcriber is None else "audio")


def call_report(plan: CallPlan, call: SimulatedCall, *, heard_from: str) -> dict[str, Any]:
    """The report of a call made (`heard_from`: "record" or "audio", how the caller heard):
    replay's, plus the caller's turns, what its line lost and the figures of the summary."""
    persona, log = plan.persona, call.log
    report = dict(call.result.report)
    report["scenario"] = plan.name
    report.update(
        persona=persona.name,
        goals=[g.procedure for g in persona.goals],
        voice=plan.voice,
        noise=plan.noise,
        loss=plan.loss,
        frames_sent=call.loss.frames,
        frames_lost=call.loss.lost,
        share_lost=call.loss.share_lost,
        heard_from=heard_from,
        caller_turns=log.turns,
        goals_met=sorted(i + 1 for i in call.caller.met),
        repairs=sum(1 for t in log.turns if t.get("repair")),
        turns_to_resolution=log.resolved_turn,
        seconds_to_resolution=None if log.resolved_ms is None else log.resolved_ms / 1000,
        seconds=call.result.duration_ms / 1000,
    )
    report["went_wrong"] = None if report["passed"] else _went_wrong(log.turns)
    return report


def _went_wrong(turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The caller turn where a failed call went wrong: the first that had to repair, did not
    know, or gave up; else the last one."""
    answered = [t for t in turns if "turn" in t]
    for turn in answered:
        if turn["repair"] or "doesn't know" in turn["reason"] or "gave up" in turn["reason"]:
            return turn
    return answered[-1] if answered else None


def served_transcriber(settings: Any) -> Transcriber:
    """The server's speech-to-text, as its settings decode, with one worker: the caller's
    ears."""
    from voice.stt import WhisperTranscriber

    options = dataclasses.replace(settings.whisper_options(), workers=1)
    return WhisperTranscriber(options)
