"""`postvoice replay`: play Twilio's part over a real WebSocket and check what the agent does.

The replayer does what Twilio does: it posts the signed voice webhook, reads the TwiML, opens
the media socket with the token from `<Parameter>`, streams caller audio in 20 ms µ-law
frames, plays the agent's audio into a buffer and echoes each `mark` when playback reaches it,
and honours `clear`. Each caller turn starts once the agent's reply to the previous one has
been heard to its end (the `r<reply>:<ms>` mark of `voice.call`).

Call time runs on a clock that is the wall clock in `--realtime` mode; otherwise caller audio
is sent as fast as the socket takes it and the agent's audio counts as played as soon as it
arrives, so only processing time is spent waiting.

On an outbound scenario the callee speaks first, as a person picking up does: a first `say:` or
`silence:` turn is their opening ("Hello?", or nothing), and the agent's greeting answers it.
A scenario that starts otherwise (e.g. with `text:` answers) gets a silent pick-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import websockets

from harness.scenario import Scenario, Turn, event_matches, load_scenario
from voice import twilio
from voice.audio import FRAME_MS, SAMPLE_RATE, mulaw_decode, mulaw_encode, read_wav, write_wav
from voice.settings import Settings
from voice.vad import voiced_frames

if TYPE_CHECKING:
    from harness.callers import CallerVoice

__all__ = [
    "CallResult",
    "FakeTwilio",
    "ReplayTarget",
    "call_scenario",
    "free_port",
    "in_process_server",
    "play_turn",
    "replay_scenario",
    "run_target",
    "take_turn",
]

log = logging.getLogger(__name__)

FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
SILENCE_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)
TRAILING_SILENCE_S = 2.0  # after each clip: the server may hold a turn that trails off 1.5 s
REPLY_TIMEOUT_S = 45.0
BARGE_IN_DELAY_MS = 1000
SILENT_PICKUP_S = 2.0  # more than the agent waits (voice.call.OPENING_SILENCE_S) before greeting


@dataclass
class ReplayTarget:
    """Where the server is and how to talk to it as Twilio would."""

    http_base: str
    ws_url: str
    public_url: str
    auth_token: str | None
    admin_token: str | None
    reset: Callable[[], None] | None = None  # reseeds the demo shop (in-process server only)


@dataclass
class _Segment:
    start_ms: int
    pcm: np.ndarray

    @property
    def end_ms(self) -> int:
        return self.start_ms + len(self.pcm) * 1000 // SAMPLE_RATE


@dataclass
class _Mark:
    name: str
    at_ms: int
    span_start_ms: int


@dataclass
class _CallState:
    """Everything the replayer observed of one call."""

    caller: list[_Segment] = field(default_factory=list)
    agent: list[_Segment] = field(default_factory=list)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    latencies: list[int] = field(default_factory=list)
    reply_inputs: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # When agent audio arrived, for the benchmark's underrun count: (time.monotonic(), samples)
    # per media message; samples 0 marks the end of a reply (its `r` mark) or a `clear`.
    arrivals: list[tuple[float, int]] = field(default_factory=list)


class FakeTwilio:
    """One call's media stream, from Twilio's side."""

    def __init__(self, ws: Any, params: twilio.StreamParams, realtime: bool) -> None:
        self.ws = ws
        self.params = params
        self.realtime = realtime
        self.state = _CallState()
        self.closed = asyncio.Event()
        self._t0 = time.monotonic()
        self._skipped_ms = 0.0
        self._seq = 0
        self._chunk = 0
        self._play_cursor = 0
        self._span_start: int | None = None
        self._pending: list[_Mark] = []
        self._holding = False
        self._latency_ref: float | None = None
        self._reply_event = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._uplink: list[tuple[np.ndarray, bool]] = []
        self._uplink_drained = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # --- clock ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Call time in ms."""
        return int((time.monotonic() - self._t0) * 1000 + self._skipped_ms)

    def _advance_to(self, ms: int) -> None:
        if not self.realtime and ms > self.now_ms():
            self._skipped_ms += ms - self.now_ms()

    # --- sending -------------------------------------------------------------------------------

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            if self.closed.is_set():
                return
            try:
                await self.ws.send(text)
            except websockets.ConnectionClosed:
                self.closed.set()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send_frame(self, frame: np.ndarray, ts: int) -> None:
        self._chunk += 1
        msg = twilio.build_media(
            self.params.stream_sid, self._next_seq(), self._chunk, ts, mulaw_encode(frame)
        )
        await self._send(msg)

    async def start(self) -> None:
        """Send `connected` and `start`, and begin listening."""
        await self._send(twilio.build_connected())
        await self._send(twilio.build_start(self.params, self._next_seq()))
        self._tasks.append(asyncio.create_task(self._receive()))
        if self.realtime:
            self._tasks.append(asyncio.create_task(self._realtime_uplink()))
            self._tasks.append(asyncio.create_task(self._realtime_player()))

    async def _realtime_uplink(self) -> None:
        """Like a phone: a frame every 20 ms, caller audio when there is some, else silence."""
        try:
            await self._uplink_loop()
        finally:
            self._uplink.clear()
            self._uplink_drained.set()

    async def _uplink_loop(self) -> None:
        next_at = time.monotonic()
        while not self.closed.is_set():
            if self._uplink:
                frame, last_voiced = self._uplink.pop(0)
                if not self._uplink:
                    self._uplink_drained.set()
            else:
                frame, last_voiced = SILENCE_FRAME, False
            ts = self.now_ms()
            await self._send_frame(frame, ts)
            self.state.caller.append(_Segment(ts, frame))
            if last_voiced:
                self._arm_latency()
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _realtime_player(self) -> None:
        while not self.closed.is_set():
            await self._echo_due()
            await asyncio.sleep(0.01)

    async def play(self, pcm: np.ndarray, *, trailing_silence_s: float = TRAILING_SILENCE_S) -> int:
        """Speak a clip as the caller; returns the call time it started at."""
        frames = _frames(pcm)
        voiced = voiced_frames(pcm)
        last_voiced = int(np.flatnonzero(voiced).max()) if voiced.any() else -1
        frames += [SILENCE_FRAME] * int(trailing_silence_s * 1000 / FRAME_MS)
        flags = [i == last_voiced for i in range(len(frames))]
        start = self.now_ms()
        if self.realtime:
            self._uplink_drained.clear()
            self._uplink.extend(zip(frames, flags, strict=True))
            # The agent may hang up while the caller is still "speaking".
            drained = asyncio.ensure_future(self._uplink_drained.wait())
            closed = asyncio.ensure_future(self.closed.wait())
            await asyncio.wait({drained, closed}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (drained, closed):
                waiter.cancel()
            return start
        self._holding = True
        try:
            for frame, is_last_voiced in zip(frames, flags, strict=True):
                ts = self.now_ms()
                await self._send_frame(frame, ts)
                self.state.caller.append(_Segment(ts, frame))
                self._skipped_ms += FRAME_MS
                if is_last_voiced:
                    self._arm_latency()
                await self._echo_due()
                await asyncio.sleep(0)
        finally:
            self._holding = False
        await self._catch_up()
        return start

    def _arm_latency(self) -> None:
        self._latency_ref = time.monotonic()

    async def silence(self, seconds: float) -> int:
        """Say nothing for a while."""
        return await self.play(np.zeros(0, dtype=np.int16), trailing_silence_s=seconds)

    async def text(self, text: str) -> int:
        """Inject a transcript (the server must allow injection)."""
        at = self.now_ms()
        self._arm_latency()
        await self._send(twilio.build_inject(text, at))
        return at

    async def dtmf(self, digits: str) -> int:
        """Press keys, 150 ms apart."""
        start = await self.silence(0.1)  # lets the server's stream clock catch up with ours
        for digit in digits:
            await self._send(twilio.build_dtmf(self.params.stream_sid, self._next_seq(), digit))
            if self.realtime:
                await asyncio.sleep(0.15)
            else:
                self._skipped_ms += 150
        self._arm_latency()
        return start

    async def send_raw(self, data: str | bytes) -> None:
        """Send one frame exactly as given (malformed input, for robustness tests)."""
        async with self._send_lock:
            if self.closed.is_set():
                return
            try:
                await self.ws.send(data)
            except websockets.ConnectionClosed:
                self.closed.set()

    def drop(self) -> None:
        """Lose the line: the connection is cut with no `stop` and no closing handshake."""
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()
        self.closed.set()

    async def hangup(self) -> None:
        """Send `stop` and close the socket."""
        await self._send(twilio.build_stop(self.params, self._next_seq()))
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.closed.set()

    # --- receiving -----------------------------------------------------------------------------

    async def _receive(self) -> None:
        try:
            async for raw in self.ws:
                try:
                    msg = twilio.parse_message(raw, max_bytes=10 * 1024 * 1024)
                except twilio.ProtocolError as exc:
                    self.state.failures.append(f"server sent a malformed message: {exc}")
                    continue
                if isinstance(msg, twilio.Media):
                    self._on_media(msg.payload)
                elif isinstance(msg, twilio.Mark):
                    await self._on_mark(msg.name)
                elif isinstance(msg, twilio.Clear):
                    await self._on_clear()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self._reply_event.set()

    def _on_media(self, payload: bytes) -> None:
        now = self.now_ms()
        if self._latency_ref is not None:
            self.state.latencies.append(round((time.monotonic() - self._latency_ref) * 1000))
            self._latency_ref = None
        pcm = mulaw_decode(payload)
        self.state.arrivals.append((time.monotonic(), len(pcm)))
        start = max(now, self._play_cursor)
        if self._span_start is None:
            self._span_start = start
        segment = _Segment(start, pcm)
        self.state.agent.append(segment)
        self._play_cursor = segment.end_ms

    async def _on_mark(self, name: str) -> None:
        if name.startswith("r"):
            self.state.arrivals.append((time.monotonic(), 0))
        span_start = self._span_start if self._span_start is not None else self._play_cursor
        self._pending.append(_Mark(name, self._play_cursor, span_start))
        self._span_start = None
        await self._catch_up()

    async def _catch_up(self) -> None:
        """Without --realtime, audio counts as played the moment it arrives."""
        if not self.realtime and not self._holding and self._pending:
            self._advance_to(self._pending[-1].at_ms)
        await self._echo_due()

    async def _echo_due(self) -> None:
        now = self.now_ms()
        while self._pending and self._pending[0].at_ms <= now:
            await self._echo(self._pending.pop(0))

    async def _echo(self, mark: _Mark) -> None:
        if mark.name.startswith("s"):
            self.state.spans[mark.name] = (mark.span_start_ms, mark.at_ms)
        elif mark.name.startswith("r") and ":" in mark.name:
            with contextlib.suppress(ValueError):
                self.state.reply_inputs.append(int(mark.name.split(":", 1)[1]))
                self._reply_event.set()
        await self._send(twilio.build_mark(self.params.stream_sid, self._next_seq(), mark.name))

    async def _on_clear(self) -> None:
        """Drop unplayed agent audio; Twilio returns the marks it was holding."""
        self.state.arrivals.append((time.monotonic(), 0))
        now = self.now_ms()
        kept: list[_Segment] = []
        for seg in self.state.agent:
            if seg.start_ms >= now:
                continue
            if seg.end_ms > now:
                seg = _Segment(seg.start_ms, seg.pcm[: (now - seg.start_ms) * SAMPLE_RATE // 1000])
            kept.append(seg)
        self.state.agent = kept
        self._play_cursor = now
        self._span_start = None
        for mark in self._pending:
            mark.at_ms = min(mark.at_ms, now)
            mark.span_start_ms = min(mark.span_start_ms, now)
        await self._echo_due()

    # --- turn taking ---------------------------------------------------------------------------

    async def wait_reply(self, after_ms: int, timeout_s: float = REPLY_TIMEOUT_S) -> bool:
        """Wait until a reply to input at or after `after_ms` has been played to its end."""
        deadline = time.monotonic() + timeout_s
        while not any(ms >= after_ms for ms in self.state.reply_inputs):
            if self.closed.is_set():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._reply_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reply_event.wait(), timeout=min(remaining, 0.5))
        return True

    def reply_pending(self) -> bool:
        """Agent audio is playing, or marks are waiting to be played."""
        now = self.now_ms()
        return bool(self._pending) or any(s.end_ms > now for s in self.state.agent)

    async def wait_agent_speaking(self, timeout_s: float = REPLY_TIMEOUT_S) -> int | None:
        """Wait until the agent's audio is playing; returns the call time it started."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.closed.is_set():
            now = self.now_ms()
            current = [s for s in self.state.agent if s.end_ms > now]
            if current:
                return min(s.start_ms for s in current)
            await asyncio.sleep(0.005)
        return None

    def hold(self) -> None:
        """Stop counting agent audio as played the moment it arrives (before a barge-in)."""
        self._holding = True

    async def barge_in(self, pcm: np.ndarray) -> int:
        """Start speaking 1 s after the agent started, while it is still talking."""
        self.hold()
        started = await self.wait_agent_speaking()
        if started is None:
            self._holding = False
            self.state.failures.append("barge_in: the agent never started speaking")
            return self.now_ms()
        target = started + BARGE_IN_DELAY_MS
        if self.realtime:
            await asyncio.sleep(max(0.0, (target - self.now_ms()) / 1000))
        else:
            self._advance_to(target)
        return await self.play(pcm)

    async def finish(self, grace_s: float = 3.0) -> None:
        """Give the agent a moment to hang up; otherwise hang up ourselves."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout=grace_s)
        if not self.closed.is_set():
            await self.hangup()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _frames(pcm: np.ndarray) -> list[np.ndarray]:
    n = -(-len(pcm) // FRAME_SAMPLES)
    padded = np.zeros(n * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(pcm)] = pcm
    return [padded[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(n)]


def _connect(target: ReplayTarget):
    """Open the media socket with the handshake signature Twilio sends."""
    headers = {}
    if target.auth_token:
        public_ws = target.public_url.rstrip("/").replace("https://", "wss://", 1)
        public_ws = public_ws.replace("http://", "ws://", 1) + "/twilio/media"
        headers["X-Twilio-Signature"] = twilio.compute_signature(target.auth_token, public_ws, {})
    return websockets.connect(
        target.ws_url, max_size=None, open_timeout=30, additional_headers=headers
    )


# --- one scenario -----------------------------------------------------------------------------


async def _open_call(
    client: httpx.AsyncClient, target: ReplayTarget, scenario: Scenario
) -> twilio.StreamParams:
    """POST the voice webhook as Twilio would and read the stream from the TwiML."""
    call_sid = "CA" + uuid.uuid4().hex
    form = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": scenario.from_,
        "To": scenario.to,
        "Direction": "outbound-api" if scenario.direction == "outbound" else "inbound",
        "CallStatus": "in-progress" if scenario.direction == "outbound" else "ringing",
    }
    path = "/twilio/voice"
    if scenario.direction == "outbound":
        query = f"purpose={scenario.purpose or ''}&order={scenario.order or ''}"
        path += "?" + query
    headers = {}
    if target.auth_token:
        signed_url = target.public_url.rstrip("/") + path
        headers["X-Twilio-Signature"] = twilio.compute_signature(
            target.auth_token, signed_url, form
        )
    response = await client.post(target.http_base + path, data=form, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"voice webhook answered {response.status_code}: {response.text[:200]}")
    _url, parameters = twilio.parse_stream_twiml(response.text)
    return twilio.StreamParams(
        call_sid=call_sid,
        stream_sid="MZ" + uuid.uuid4().hex,
        account_sid=form["AccountSid"],
        custom_parameters=parameters,
    )


async def play_turn(call: FakeTwilio, turn: Turn) -> int:
    """Play one caller turn; returns the call time its input started at."""
    if turn.say is not None:
        return await call.play(read_wav(turn.say))
    if turn.barge_in is not None:
        return await call.barge_in(read_wav(turn.barge_in))
    if turn.text is not None:
        return await call.text(turn.text)
    if turn.dtmf is not None:
        return await call.dtmf(turn.dtmf)
    return await call.silence(turn.silence or 0.0)


async def take_turn(call: FakeTwilio, turn: Turn) -> int:
    """Play one caller turn; the call time to wait for a reply to (-1: none is owed). Silence
    may or may not draw a reprompt: one that has begun is waited for."""
    at = await play_turn(call, turn)
    if turn.silence is None:
        return at
    if not await call.wait_reply(at, timeout_s=1.5) and call.reply_pending():
        await call.wait_reply(at)
    return -1


async def _pick_up(call: FakeTwilio, turns: list[Turn]) -> tuple[int, list[Turn]]:
    """An outbound callee's opening: their first `say:`/`silence:` turn, or a silent pick-up.
    Returns the call time it started and the turns left."""
    if turns and (turns[0].say is not None or turns[0].silence is not None):
        first = turns[0]
        if first.say is not None:
            return await call.play(read_wav(first.say)), turns[1:]
        return await call.silence(first.silence or 0.0), turns[1:]
    return await call.silence(SILENT_PICKUP_S), turns


async def _converse(call: FakeTwilio, turns: list[Turn], *, outbound: bool = False) -> None:
    """Each turn starts once the reply to the previous one has been heard to its end, except
    a barge-in, which starts while the agent is talking. On an outbound call the callee opens."""
    answer_to, label = 0, "the greeting"
    if outbound:
        answer_to, turns = await _pick_up(call, turns)
    for index, turn in enumerate(turns):
        if turn.barge_in is not None:
            call.hold()
        elif not await call.wait_reply(answer_to) and not call.closed.is_set():
            call.state.failures.append(f"{label}: the agent did not answer")
        if call.closed.is_set():
            call.state.failures.append(
                f"turn {index + 1} ({turn.kind}): the call had already ended"
            )
            return
        if turn.hangup:
            await call.hangup()
            return
        answer_to, label = await play_turn(call, turn), f"turn {index + 1} ({turn.kind})"
        if turn.silence is not None:
            # Silence may or may not draw a reprompt: wait for one only if it has begun.
            if not await call.wait_reply(answer_to, timeout_s=1.5) and call.reply_pending():
                await call.wait_reply(answer_to)
            answer_to = -1
    if answer_to >= 0 and not await call.wait_reply(answer_to) and not call.closed.is_set():
        call.state.failures.append(f"{label}: the agent did not answer")


@dataclass
class CallResult:
    """One call as the replayer saw it, and as the server recorded it."""

    report: dict[str, Any]  # the report of docs/DESIGN.md
    record: dict[str, Any]  # the server's call record (GET /api/calls/{sid}), timings included
    state: _CallState  # what was heard and when (segments, latencies, arrival times)

    @property
    def duration_ms(self) -> int:
        """Call time from the start of the stream to the last audio either side sent."""
        return max([s.end_ms for s in self.state.caller + self.state.agent] + [0])


Drive = Callable[[FakeTwilio, Scenario], Any]


async def _drive_turns(call: FakeTwilio, scenario: Scenario) -> None:
    await _converse(call, scenario.turns, outbound=scenario.direction == "outbound")


async def call_scenario(
    scenario: Scenario, target: ReplayTarget, realtime: bool = False, *, drive: Drive | None = None
) -> CallResult:
    """Run one scenario's call against a server (no files written). `drive(call, scenario)`
    replaces the usual turn taking, e.g. to inject faults."""
    async with httpx.AsyncClient(timeout=30) as client:
        params = await _open_call(client, target, scenario)
        async with _connect(target) as ws:
            # A scenario about timing (a pause mid-sentence) is only itself at the speed of
            # speech.
            call = FakeTwilio(ws, params, realtime or scenario.realtime)
            await call.start()
            try:
                await (drive or _drive_turns)(call, scenario)
            finally:
                await call.finish()
        record = await _fetch_record(client, target, params.call_sid)
    return CallResult(_report(scenario, params.call_sid, call.state, record), record, call.state)


async def replay_scenario(
    scenario: Scenario, target: ReplayTarget, out: Path, realtime: bool = False
) -> dict[str, Any]:
    """Run one scenario against a server; write report.json, agent.wav, call.wav into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    result = await call_scenario(scenario, target, realtime)
    _write_audio(out, result.state)
    (out / "report.json").write_text(json.dumps(result.report, indent=2, default=str))
    return result.report


async def _fetch_record(
    client: httpx.AsyncClient, target: ReplayTarget, call_sid: str
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {target.admin_token}"} if target.admin_token else {}
    for _ in range(50):  # the server records the end of the call just after the socket closes
        response = await client.get(f"{target.http_base}/api/calls/{call_sid}", headers=headers)
        if response.status_code != 200:
            raise RuntimeError(
                f"could not read the call record ({response.status_code}); "
                "set POSTVOICE_ADMIN_TOKEN to the server's admin token"
            )
        record = response.json()
        if record.get("ended_at"):
            return record
        await asyncio.sleep(0.1)
    return record


def _report(
    scenario: Scenario, call_sid: str, state: _CallState, record: dict[str, Any]
) -> dict[str, Any]:
    turns = []
    for t in record.get("turns", []):
        start, end = t.get("start_ms"), t.get("end_ms")
        if t["role"] == "agent":
            spans = [v for k, v in state.spans.items() if k.split(".")[0] == f"s{t['seq']}"]
            if spans:
                start, end = min(s for s, _ in spans), max(e for _, e in spans)
        turn = {"role": t["role"], "text": t["text"], "start_ms": start, "end_ms": end}
        if t["role"] == "caller":
            turn["source"] = t.get("source")
        if t.get("interrupted"):
            turn["interrupted"] = True
        turns.append(turn)
    events = []
    for e in record.get("events", []):
        item = {"type": e["type"], **(e.get("data") or {}), "at_ms": e.get("at_ms")}
        if e.get("order_ref"):
            item["order"] = e["order_ref"]
        events.append(item)
    intents: list[str] = []
    for e in events:
        if e["type"] == "intent" and e.get("name") and e["name"] not in intents:
            intents.append(e["name"])
    handoff = bool(record.get("transfer_to")) or any(e["type"] == "handoff" for e in events)
    report = {
        "scenario": scenario.name,
        "call_sid": call_sid,
        "passed": True,
        "failures": [],
        "turns": turns,
        "latency_ms": state.latencies,
        "intents": intents,
        "events": events,
        "handoff": handoff,
    }
    failures = list(state.failures) + check_expectations(scenario, report)
    report["failures"] = failures
    report["passed"] = not failures
    return report


def check_expectations(scenario: Scenario, report: dict[str, Any]) -> list[str]:
    """Each failed expectation, in words."""
    expect = scenario.expect
    failures: list[str] = []
    agent_text = [t["text"].lower() for t in report["turns"] if t["role"] == "agent"]
    types = {e["type"] for e in report["events"]}
    for intent in expect.intents:
        if intent not in report["intents"]:
            failures.append(f"intents: {intent!r} was never recognised (got {report['intents']})")
    for phrase in expect.agent_says:
        if not any(phrase.lower() in t for t in agent_text):
            failures.append(f"agent_says: no agent turn contains {phrase!r}")
    for phrase in expect.agent_never_says:
        if any(phrase.lower() in t for t in agent_text):
            failures.append(f"agent_never_says: an agent turn contains {phrase!r}")
    for action in expect.actions:
        if action not in types:
            failures.append(f"actions: no {action!r} event")
    for action in expect.not_actions:
        if action in types:
            failures.append(f"not_actions: a {action!r} event happened")
    for wanted in expect.events:
        if not any(event_matches(e, wanted) for e in report["events"]):
            failures.append(f"events: no event matching {wanted}")
    for unwanted in expect.not_events:
        if any(event_matches(e, unwanted) for e in report["events"]):
            failures.append(f"not_events: an event matching {unwanted} happened")
    if expect.handoff is not None and report["handoff"] != expect.handoff:
        failures.append(f"handoff: expected {expect.handoff}, got {report['handoff']}")
    if expect.max_latency_ms is not None:
        slow = [ms for ms in report["latency_ms"] if ms > expect.max_latency_ms]
        if slow:
            failures.append(
                f"max_latency_ms: replies took {slow} ms (limit {expect.max_latency_ms})"
            )
    return failures


def _write_audio(out: Path, state: _CallState) -> None:
    length = max([s.end_ms for s in state.caller + state.agent] + [0])
    n = length * SAMPLE_RATE // 1000 + 1
    caller = np.zeros(n, dtype=np.int16)
    agent = np.zeros(n, dtype=np.int16)
    for track, segments in ((caller, state.caller), (agent, state.agent)):
        for seg in segments:
            i = seg.start_ms * SAMPLE_RATE // 1000
            j = min(n, i + len(seg.pcm))
            track[i:j] = seg.pcm[: j - i]
    write_wav(out / "agent.wav", agent)
    write_wav(out / "call.wav", np.stack([caller, agent], axis=1))


# --- a plain recording ------------------------------------------------------------------------


async def replay_recording(
    wav: Path, target: ReplayTarget, out: Path, from_number: str
) -> dict[str, Any]:
    """Play a whole recorded caller side in real time while the agent answers."""
    scenario = Scenario(name=wav.stem, **{"from": from_number})
    out.mkdir(parents=True, exist_ok=True)
    pcm = read_wav(wav)
    async with httpx.AsyncClient(timeout=30) as client:
        params = await _open_call(client, target, scenario)
        async with _connect(target) as ws:
            call = FakeTwilio(ws, params, realtime=True)
            await call.start()
            started = await call.play(pcm, trailing_silence_s=0.0)
            await asyncio.sleep(0.1)
            while call.reply_pending() and not call.closed.is_set():
                await asyncio.sleep(0.1)
            await call.wait_reply(started, timeout_s=10)
            await call.finish(grace_s=1.0)
        record = await _fetch_record(client, target, params.call_sid)
    report = _report(scenario, params.call_sid, call.state, record)
    _write_audio(out, call.state)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def in_process_server(
    database_url: str,
    engines: Any = None,
    *,
    overrides: dict[str, Any] | None = None,
    wrap: Callable[[Any], Any] | None = None,
):
    """Start the real app on a free loopback port in this process; yields its ReplayTarget.
    `overrides` are Settings fields; `wrap(app)` returns the ASGI app to serve (the soak wraps
    the app to inject faults)."""
    import uvicorn

    from integrations.demo import seed
    from integrations.store import Store, make_engine
    from voice.server import create_app

    port = free_port()
    auth, admin = secrets.token_hex(16), secrets.token_hex(16)
    settings = Settings(
        twilio_auth_token=auth,
        admin_token=admin,
        public_url=f"http://127.0.0.1:{port}",
        database_url=database_url,
        allow_injection=True,
        dev=False,
        **(overrides or {}),
    )
    engine = make_engine(database_url)
    Store(engine).create_all()
    seed(engine)
    app = create_app(settings, engines)
    config = uvicorn.Config(
        wrap(app) if wrap is not None else app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        ws_ping_interval=None,
        lifespan="on",
        timeout_graceful_shutdown=5,  # a connection that never closes must not hang the exit
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the in-process server did not start")
        await asyncio.sleep(0.05)
    try:
        yield ReplayTarget(
            http_base=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/twilio/media",
            public_url=settings.public_url,
            auth_token=auth,
            admin_token=admin,
            reset=lambda: seed(engine),
        )
    finally:
        server.should_exit = True
        await task
        engine.dispose()


def target_from_url(url: str) -> ReplayTarget:
    """A running server at ws(s)://host:port/twilio/media, with secrets from the environment."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"--url must be ws:// or wss://, got {url!r}")
    settings = Settings()
    http_base = urlunsplit((scheme, parts.netloc, "", "", ""))
    return ReplayTarget(
        http_base=http_base,
        ws_url=url,
        public_url=settings.public_url if settings.twilio_auth_token else http_base,
        auth_token=settings.twilio_auth_token.get_secret_value()
        if settings.twilio_auth_token
        else None,
        admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None,
    )


# --- the command ------------------------------------------------------------------------------


def run_target(
    target: Path,
    *,
    url: str | None,
    out: Path,
    realtime: bool,
    from_number: str = "+14155550101",
    caller_voices: Sequence[CallerVoice] = (),
    json_path: Path | None = None,
) -> int:
    """Replay a scenario, a directory of scenarios, or a WAV; 0 when everything passed. With
    `caller_voices`, the spoken scenarios once per voice, their clips said by that voice
    (`harness.caller_clips`); `json_path` then gets every result."""
    if caller_voices:
        return asyncio.run(_run_voices(target, list(caller_voices), url, out, realtime, json_path))
    return asyncio.run(_run_target(target, url, out, realtime, from_number))


async def _run_target(
    target: Path, url: str | None, out: Path, realtime: bool, from_number: str
) -> int:
    from rich.console import Console

    console = Console(stderr=False)
    if not target.exists():
        console.print(f"[red]{target} does not exist[/red]")
        return 2
    if target.is_dir():
        paths = sorted(target.glob("*.yaml")) + sorted(target.glob("*.yml"))
        if not paths:
            console.print(f"[red]no scenarios (*.yaml) in {target}[/red]")
            return 2
    else:
        paths = [target]
    out.mkdir(parents=True, exist_ok=True)
    async with _target(url, out) as server:
        if target.suffix.lower() == ".wav":
            report = await replay_recording(target, server, out, from_number)
            _print_report(console, report)
            return 0 if report["passed"] else 1
        if len(paths) == 1:
            report = await replay_scenario(load_scenario(paths[0]), server, out, realtime)
            _print_report(console, report)
            return 0 if report["passed"] else 1
        return await _run_many(console, paths, server, out, realtime)


@contextlib.asynccontextmanager
async def _target(url: str | None, out: Path):
    if url:
        yield target_from_url(url)
        return
    with tempfile.TemporaryDirectory(prefix="postvoice-replay-") as tmp:
        db = Path(tmp) / "replay.db"
        async with in_process_server(f"sqlite:///{db}") as server:
            yield server


async def _run_many(console, paths: list[Path], server: ReplayTarget, out: Path, realtime: bool):
    from rich.progress import Progress
    from rich.table import Table

    rows = []
    with Progress(console=console) as progress:
        task = progress.add_task("replaying", total=len(paths))
        for path in paths:
            try:
                scenario = load_scenario(path)
                if server.reset is not None:  # each scenario starts from the designed shop
                    await asyncio.to_thread(server.reset)
                report = await replay_scenario(scenario, server, out / scenario.name, realtime)
                rows.append(
                    (scenario.name, report["passed"], report["latency_ms"], report["failures"])
                )
            except Exception as exc:  # one broken scenario must not stop the others
                rows.append((path.stem, False, [], [f"error: {exc}"]))
            progress.advance(task)
    table = Table(title="replay")
    for column in ("scenario", "result", "median ms", "worst ms", "failures"):
        table.add_column(column)
    for name, passed, latencies, failures in rows:
        table.add_row(
            name,
            "[green]pass[/green]" if passed else "[red]FAIL[/red]",
            str(int(np.median(latencies))) if latencies else "-",
            str(max(latencies)) if latencies else "-",
            "; ".join(failures),
        )
    console.print(table)
    passed = sum(1 for r in rows if r[1])
    console.print(f"{passed} passed, {len(rows) - passed} failed")
    return 0 if passed == len(rows) else 1


def _print_report(console, report: dict[str, Any]) -> None:
    for turn in report["turns"]:
        who = "agent " if turn["role"] == "agent" else "caller"
        console.print(f"[dim]{turn['start_ms']!s:>6}[/dim] {who}: {turn['text']}")
    console.print(f"latency_ms: {report['latency_ms']}")
    if report["passed"]:
        console.print(f"[green]PASS[/green] {report['scenario']}")
    else:
        console.print(f"[red]FAIL[/red] {report['scenario']}")
        for failure in report["failures"]:
            console.print(f"  - {failure}")


# --- in other caller voices -------------------------------------------------------------------

TARGET_RATE = 0.95
"""The share of calls in the test voices that must reach the right outcome."""


@dataclass
class _VoiceRun:
    voice: CallerVoice
    reports: list[dict[str, Any]]
    seconds: float

    @property
    def failed(self) -> list[str]:
        return [r["scenario"] for r in self.reports if not r["passed"]]


def _heard(report: dict[str, Any]) -> list[str]:
    """What the agent recorded of the caller's turns (a keypad or injected turn says so)."""
    heard = []
    for turn in report.get("turns", []):
        if turn["role"] == "caller":
            source = turn.get("source")
            heard.append(
                turn["text"] if source in (None, "audio") else f"[{source}] {turn['text']}"
            )
    return heard


def _calls(runs: list[_VoiceRun], split: str) -> dict[str, Any]:
    chosen = [run for run in runs if run.voice.split == split]
    calls = sum(len(run.reports) for run in chosen)
    passed = sum(len(run.reports) - len(run.failed) for run in chosen)
    return {
        "voices": [run.voice.name for run in chosen],
        "calls": calls,
        "passed": passed,
        "rate": passed / calls if calls else None,
        "target": TARGET_RATE,
        "met": bool(calls) and passed / calls >= TARGET_RATE,
    }


async def _run_voices(
    target: Path,
    voices: list[CallerVoice],
    url: str | None,
    out: Path,
    realtime: bool,
    json_path: Path | None,
) -> int:
    """Replay the spoken scenarios once per caller voice, their clips said by that voice."""
    from rich.console import Console
    from rich.markup import escape

    from harness.caller_clips import (
        MissingClipError,
        clip_text,
        clips_used,
        is_spoken,
        read_clip_texts,
        renderings,
    )
    from harness.callers import missing_tools

    console = Console(stderr=False, highlight=False)
    if not target.exists():
        console.print(f"[red]{target} does not exist[/red]")
        return 2
    if target.suffix.lower() == ".wav":
        console.print("[red]--caller-voice replays scenarios; a WAV has its own voice[/red]")
        return 2
    paths = (
        sorted(target.glob("*.yaml")) + sorted(target.glob("*.yml"))
        if target.is_dir()
        else [target]
    )
    if not paths:
        console.print(f"[red]no scenarios (*.yaml) in {target}[/red]")
        return 2
    try:
        scenarios = [load_scenario(path) for path in paths]
        texts = read_clip_texts()
    except (OSError, ValueError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 2
    spoken = [s for s in scenarios if is_spoken(s)]
    left_out = [s.name for s in scenarios if not is_spoken(s)]
    problems = []
    for scenario in spoken:
        for clip in clips_used([scenario]):
            try:
                clip_text(clip, texts)
            except MissingClipError as exc:
                problems.append(f"{scenario.name}: {exc}")
    if problems:
        for problem in problems:
            console.print(f"[red]{escape(problem)}[/red]")
        return 2
    if not spoken:
        console.print("[red]no scenario has a say:/barge_in: turn: nothing a voice changes[/red]")
        return 2
    if missing := missing_tools(voices):
        console.print(f"[red]missing {', '.join(missing)} for these voices: make voices[/red]")
        return 2
    console.print(
        f"{len(spoken)} spoken scenarios in {len(voices)} caller voice(s): "
        + ", ".join(f"{v.name} ({v.split})" for v in voices)
    )
    if left_out:
        console.print(
            f"left out, the same in every voice (no say:/barge_in: turn): {len(left_out)}: "
            + ", ".join(left_out)
        )
    out.mkdir(parents=True, exist_ok=True)
    runs: list[_VoiceRun] = []
    async with _target(url, out) as server:
        for voice in voices:
            runs.append(await _run_voice(console, voice, spoken, texts, server, out, realtime))
            run = runs[-1]
            console.print(
                f"[bold]{voice.name}[/bold] ({voice.split}): "
                f"{len(run.reports) - len(run.failed)}/{len(run.reports)} passed "
                f"in {run.seconds:.0f} s"
                + (f"; failed: {', '.join(run.failed)}" if run.failed else "")
            )
            for report in run.reports:
                report["clips"] = {
                    clip.stem: renderings(voice, texts[clip.stem])
                    for clip in clips_used(s for s in spoken if s.name == report["scenario"])
                }
    _print_voices(console, runs)
    if json_path is not None:
        data = {
            "target": str(target),
            "realtime": realtime,
            "left_out": left_out,
            "voices": [
                {
                    "voice": run.voice.name,
                    "split": run.voice.split,
                    "engine": run.voice.engine,
                    "description": run.voice.description,
                    "seconds": round(run.seconds, 1),
                    "total": len(run.reports),
                    "passed": len(run.reports) - len(run.failed),
                    "failed": run.failed,
                    "results": [{**r, "heard": _heard(r)} for r in run.reports],
                }
                for run in runs
            ],
            "test": _calls(runs, "test"),
            "tuning": _calls(runs, "tuning"),
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(data, indent=2, default=str))
        console.print(f"wrote {json_path}")
    return 0 if all(not run.failed for run in runs) else 1


async def _run_voice(
    console,
    voice: CallerVoice,
    spoken: list[Scenario],
    texts: dict[str, str],
    server: ReplayTarget,
    out: Path,
    realtime: bool,
) -> _VoiceRun:
    from harness.caller_clips import render_clips, with_clips

    started = time.monotonic()
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"postvoice-{voice.name}-") as tmp:
        clips = await asyncio.to_thread(render_clips, spoken, voice, Path(tmp), texts)
        for scenario in spoken:
            t0 = time.monotonic()
            try:
                if server.reset is not None:  # each scenario starts from the designed shop
                    await asyncio.to_thread(server.reset)
                report = await replay_scenario(
                    with_clips(scenario, clips), server, out / voice.name / scenario.name, realtime
                )
            except Exception as exc:  # one broken call must not stop the others
                report = {"scenario": scenario.name, "passed": False, "turns": []}
                report["failures"] = [f"error: {exc}"]
            reports.append(report)
            console.print(
                f"  {voice.name} {scenario.name}: "
                + ("pass" if report["passed"] else "FAIL")
                + f" ({time.monotonic() - t0:.0f} s)",
                markup=False,
            )
    return _VoiceRun(voice, reports, time.monotonic() - started)


def _print_voices(console, runs: list[_VoiceRun]) -> None:
    from rich.table import Table

    table = Table(title="replay in caller voices")
    for column in ("voice", "split", "passed", "seconds", "failed"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.voice.name,
            run.voice.split,
            f"{len(run.reports) - len(run.failed)}/{len(run.reports)}",
            f"{run.seconds:.0f}",
            ", ".join(run.failed),
        )
    console.print(table)
    failures = [(run, r) for run in runs for r in run.reports if not r["passed"]]
    if failures:
        console.print("failures (voice, scenario: what was missed — what the caller was heard as):")
    for run, report in failures:
        heard = " / ".join(f'"{text}"' for text in _heard(report)) or "nothing"
        console.print(
            f"  {run.voice.name} {report['scenario']}: {'; '.join(report['failures'])}"
            f" — heard: {heard}",
            markup=False,
        )
    for split in ("test", "tuning"):
        calls = _calls(runs, split)
        if not calls["calls"]:
            continue
        line = (
            f"{split} voices: {calls['passed']}/{calls['calls']} calls passed ({calls['rate']:.1%})"
        )
        if split == "test":
            verdict = "met" if calls["met"] else "NOT met"
            line += f", target {TARGET_RATE:.0%}: {verdict}"
        else:
            line += " (tuning voices: not a reported figure)"
        console.print(line, markup=False)
    if not any(run.voice.split == "test" for run in runs):
        console.print("no test voice in this run: no figure against the target", markup=False)
