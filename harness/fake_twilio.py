"""Twilio's side of one media stream: what `replay` plays and hears over the real WebSocket.

`FakeTwilio` streams caller audio in 20 ms µ-law frames, plays the agent's audio into a buffer,
echoes each `mark` when playback reaches it, and honours `clear`. Call time runs on a clock
that is the wall clock in `--realtime` mode; otherwise caller audio is sent as fast as the
socket takes it and the agent's audio counts as played as soon as it arrives, so only
processing time is spent waiting. With a `loss` set, each frame the caller speaks may be lost
on the way (`harness.simulate_loss`: sent as silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import websockets

from harness.target import ReplayTarget
from voice import twilio
from voice.audio import FRAME_MS, SAMPLE_RATE, mulaw_decode, mulaw_encode
from voice.vad import voiced_frames

if TYPE_CHECKING:
    from harness.simulate_loss import PacketLoss

__all__ = ["CallState", "FakeTwilio", "connect"]

FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
SILENCE_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)
TRAILING_SILENCE_S = 2.0  # after each clip: the server may hold a turn that trails off 1.5 s
REPLY_TIMEOUT_S = 45.0
BARGE_IN_DELAY_MS = 1000


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
class CallState:
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
    # For the benchmark's cut-offs and time to answer, all in call time: each voiced frame the
    # caller sent, with the number of the clip (caller utterance, from 1) it belongs to; the
    # last voiced frame of each clip; and when the caller began to hear each agent reply.
    caller_voiced: list[tuple[int, int]] = field(default_factory=list)
    speech_ends: dict[int, int] = field(default_factory=dict)
    reply_starts: list[int] = field(default_factory=list)


class FakeTwilio:
    """One call's media stream, from Twilio's side."""

    def __init__(self, ws: Any, params: twilio.StreamParams, realtime: bool) -> None:
        self.ws = ws
        self.params = params
        self.realtime = realtime
        self.state = CallState()
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
        self._uplink: list[tuple[np.ndarray, bool, bool, int]] = []
        self._clips = 0  # caller clips played that hold speech
        self._in_reply = False  # agent audio of a reply has arrived and the reply has not ended
        self._uplink_drained = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.loss: PacketLoss | None = None  # the caller's line loses frames (set before play)

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
                frame, last_voiced, voiced, clip = self._uplink.pop(0)
                if not self._uplink:
                    self._uplink_drained.set()
            else:
                frame, last_voiced, voiced, clip = SILENCE_FRAME, False, False, 0
            ts = self.now_ms()
            await self._send_frame(frame, ts)
            self._sent(frame, ts, voiced, clip)
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
        flags = [i == last_voiced for i in range(len(frames))]  # where the caller stopped
        speech = [i < len(voiced) and bool(voiced[i]) for i in range(len(frames))]
        clip = 0
        if last_voiced >= 0:
            self._clips += 1
            clip = self._clips
        if self.loss is not None:
            frames = self.loss.conceal(frames)
        start = self.now_ms()
        if self.realtime:
            self._uplink_drained.clear()
            self._uplink.extend(
                (f, lv, v, clip) for f, lv, v in zip(frames, flags, speech, strict=True)
            )
            # The agent may hang up while the caller is still "speaking".
            drained = asyncio.ensure_future(self._uplink_drained.wait())
            closed = asyncio.ensure_future(self.closed.wait())
            await asyncio.wait({drained, closed}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (drained, closed):
                waiter.cancel()
            return start
        self._holding = True
        try:
            for frame, is_last_voiced, is_voiced in zip(frames, flags, speech, strict=True):
                ts = self.now_ms()
                await self._send_frame(frame, ts)
                self._sent(frame, ts, is_voiced, clip)
                self._skipped_ms += FRAME_MS
                if is_last_voiced:
                    self._arm_latency()
                await self._echo_due()
                await asyncio.sleep(0)
        finally:
            self._holding = False
        await self._catch_up()
        return start

    def _sent(self, frame: np.ndarray, ts: int, voiced: bool, clip: int) -> None:
        self.state.caller.append(_Segment(ts, frame))
        if voiced and clip:
            self.state.caller_voiced.append((ts, clip))
            self.state.speech_ends[clip] = ts  # as `latency_ms` counts from it

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
        if not self._in_reply:
            self._in_reply = True
            self.state.reply_starts.append(start)
        if self._span_start is None:
            self._span_start = start
        segment = _Segment(start, pcm)
        self.state.agent.append(segment)
        self._play_cursor = segment.end_ms

    async def _on_mark(self, name: str) -> None:
        if name.startswith("r"):
            self.state.arrivals.append((time.monotonic(), 0))
            self._in_reply = False
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
        self._in_reply = False
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


def connect(target: ReplayTarget):
    """Open the media socket with the handshake signature Twilio sends."""
    headers = {}
    if target.auth_token:
        public_ws = target.public_url.rstrip("/").replace("https://", "wss://", 1)
        public_ws = public_ws.replace("http://", "ws://", 1) + "/twilio/media"
        headers["X-Twilio-Signature"] = twilio.compute_signature(target.auth_token, public_ws, {})
    return websockets.connect(
        target.ws_url, max_size=None, open_timeout=30, additional_headers=headers
    )
