"""One phone call: Twilio's media socket in, the agent's voice out.

A `CallSession` owns one socket. Its read loop never blocks: it decodes audio, feeds the
segmenter, and turns speech, keypad presses and silence into inputs for the *brain* task,
which transcribes, asks the agent, and hands what to say to the *speaker* task. Barge-in is the
urgent path: it bypasses the queues, sends `clear` at once, and drops what was left to say.

Marks tell us what the caller has really heard. Each spoken sentence is followed by a mark
`s<turn>.<n>`; when a reply is complete the session sends `r<reply>:<ms>`, where `<ms>` is the
stream time of the caller input it answers, so anyone following the stream (Twilio's player,
or `replay`) knows where one reply ends.

On an outbound call the callee speaks first: the agent greets once the callee's first words
("Hello?") have ended, or after `OPENING_SILENCE_S` of silence if they say nothing. Those first
words open the call; they are not an answer to anything, so the agent does not hear them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dialog.events import CallAgent, CallInfo, EndCall, Hints, Say, Transfer
from integrations.protocols import EventSink
from integrations.redact import redact_card_numbers
from integrations.store import CallEvents, Store
from voice import twilio
from voice.audio import FRAME_MS, SAMPLE_RATE, mulaw_decode, mulaw_encode
from voice.call_log import CallLog, Hearing, InputClock
from voice.capacity import Admission, CallLimiter
from voice.pool import on_behalf_of
from voice.recorder import CallRecorder, Recording
from voice.settings import Settings
from voice.speculate import TurnOptions, TurnTaker
from voice.stt import Transcriber, Transcript
from voice.tts import Synthesizer, speech_chunks
from voice.vad import Pause, Segmenter, SpeechStarted, Utterance, VadOptions

__all__ = ["CallDeps", "CallSession", "CannedSpeech", "Socket", "busy_text"]

log = logging.getLogger(__name__)

FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
CHUNK_SAMPLES = SAMPLE_RATE // 10  # agent audio goes out in 100 ms media messages
_SILENT_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)
MIN_UTTERANCE_VOICED_MS = 120
DIDNT_CATCH = "Sorry, I didn't catch that. Could you say it again?"
APOLOGY = "Sorry, something went wrong on my side."
OPENING_SILENCE_S = 1.5  # an outbound callee who picks up and says nothing is greeted after this
# When the synthesizer fails or the agent's task is gone (rendered ahead, at start-up).
TECHNICAL_PROBLEM = "I'm sorry, I'm having a technical problem, so I'll connect you with a person."
WRAP_UP_GRACE_S = 60.0  # after the wrap-up was due, a call still going is ended regardless
CLIP_ECHO_GRACE_S = 3.0  # how much longer than a clip lasts we wait for its mark
SHUTDOWN_WAIT_S = 5.0  # for the call's tasks to stop once cancelled
# Twilio streams caller audio without pause (silence too); a stream quiet this long is heard
# as silence, at most this many frames at a time.
MEDIA_GAP_S = 1.0
MAX_SILENT_FRAMES = 500
# More late than this, the next part of a reply already playing leaves a gap the caller hears
# (one 20 ms frame plus 40 ms of network jitter; as `postvoice bench` counts underruns).
AUDIO_GAP_ALLOWANCE_MS = 60


class Socket(Protocol):
    """The media WebSocket as the session sees it."""

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the socket is closed."""

    async def send(self, text: str) -> None:
        """Send one text frame."""

    async def close(self, code: int = 1000) -> None:
        """Close the socket."""


def _tone() -> bytes:
    """Two soft beeps: what plays when not even a recorded phrase is available."""
    t = np.arange(SAMPLE_RATE // 4) / SAMPLE_RATE
    beep = (np.sin(2 * np.pi * 440 * t) * 4000).astype(np.int16)
    gap = np.zeros(SAMPLE_RATE // 6, dtype=np.int16)
    return mulaw_encode(np.concatenate([beep, gap, beep, gap]))


class CannedSpeech:
    """Phrases synthesized once and kept as µ-law, for when synthesizing is not an option: a
    full house (no synthesis per refused call) and a synthesizer that has just failed."""

    def __init__(self) -> None:
        self._clips: dict[str, bytes] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def ready(self, text: str) -> bytes | None:
        """The clip for `text` if it was rendered already."""
        return self._clips.get(text)

    async def get(self, synthesizer: Synthesizer, text: str, timeout: float) -> bytes:
        """The clip for `text`: kept, else synthesized now and kept; two beeps if that fails."""
        clip = self._clips.get(text)
        if clip is not None:
            return clip
        async with self._locks.setdefault(text, asyncio.Lock()):
            clip = self._clips.get(text)
            if clip is None:
                try:
                    async with asyncio.timeout(timeout):
                        pcm = await synthesizer.synthesize(text)
                except Exception as exc:
                    log.error("could not synthesize the phrase %r: %r", text[:40], exc)
                    return _tone()
                clip = self._clips[text] = mulaw_encode(pcm)
        return clip


def busy_text(settings: Settings, direction: str) -> str:
    """What a caller hears above the caps (a callee of ours first hears who called)."""
    if direction == "outbound":
        return f"Hello, this is {settings.shop_name}. {settings.busy_message}"
    return settings.busy_message


@dataclass
class CallDeps:
    """What every call shares: settings, store, engines, how to make an agent, the call
    limiter, and the phrases kept ready for when the synthesizer cannot be used."""

    settings: Settings
    store: Store
    transcriber: Transcriber
    synthesizer: Synthesizer
    make_agent: Callable[[CallInfo, EventSink], CallAgent]
    limiter: CallLimiter | None = None  # default: one from settings, shared by every session
    canned: CannedSpeech = field(default_factory=CannedSpeech)

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = CallLimiter(self.settings.max_calls, self.settings.max_calls_per_caller)

    async def prepare(self) -> None:
        """Render the phrases that must play even when the synthesizer cannot: the busy
        messages and the technical-problem apology. Once at start-up, after warming up."""
        s = self.settings
        for text in (busy_text(s, "inbound"), busy_text(s, "outbound"), TECHNICAL_PROBLEM):
            await self.canned.get(self.synthesizer, text, s.tts_timeout_s)


# --- Inputs to the brain ----------------------------------------------------------------------


@dataclass
class _Heard:
    utterance: Utterance
    speech_end_wall: float
    eot_wall: float
    early: asyncio.Task | None = None  # its transcription, started at a pause (speculate.py)


@dataclass
class _Text:
    text: str
    at_ms: int
    wall: float


@dataclass
class _Keys:
    digits: str
    at_ms: int
    wall: float


@dataclass
class _Silence:
    seconds: float
    at_ms: int


@dataclass
class _Fault:
    """The speaker could not synthesize: the brain hands the caller over."""

    reason: str


@dataclass
class _WrapUp:
    """The call reached `max_call_s`."""


class _HearingFailed(Exception):
    """Speech to text raised or timed out."""


class _SpeakingFailed(Exception):
    """Text to speech raised or timed out."""


# --- Jobs for the speaker ---------------------------------------------------------------------


@dataclass
class _SayJob:
    reply: int
    seq: int
    say: Say
    clock: InputClock | None = None
    said_wall: float = 0.0


@dataclass
class _EndOfReply:
    reply: int
    input_ms: int


@dataclass
class _Pending:
    """A mark sent to Twilio and not yet echoed."""

    seq: int
    barge_in: bool
    end_of_reply: bool = False


@dataclass
class _Stats:
    bad_messages: Counter = field(default_factory=Counter)
    barge_ins: int = 0
    replies: int = 0
    audio_gaps: int = 0  # a reply's audio ran out before its next part was sent


class CallSession:
    """Runs one Twilio Media Stream from `connected` to `stop` (or until the agent hangs up)."""

    def __init__(self, socket: Socket, deps: CallDeps) -> None:
        self.socket = socket
        self.deps = deps
        self.settings = deps.settings
        s = deps.settings
        turn_options = TurnOptions(
            pause_ms=s.vad_pause_ms,
            quick_end_of_turn_ms=s.vad_quick_end_of_turn_ms,
            end_of_turn_ms=s.vad_end_of_turn_ms,
            long_answer_end_of_turn_ms=s.vad_long_answer_end_of_turn_ms,
            unfinished_end_of_turn_ms=s.vad_unfinished_end_of_turn_ms,
        )
        # The segmenter only ends the longest turn; `turns` ends the others (_on_frame).
        self.segmenter = Segmenter(
            VadOptions(
                aggressiveness=s.vad_aggressiveness,
                pre_roll_ms=s.vad_pre_roll_ms,
                min_speech_ms=s.vad_min_speech_ms,
                end_of_turn_ms=turn_options.longest_ms,
                max_utterance_s=s.vad_max_utterance_s,
                pause_ms=s.vad_pause_ms,
            )
        )
        self.turns = TurnTaker(turn_options, self._transcribe_early)
        self.stats = _Stats()
        self.log = CallLog(deps.store)
        self.stream_sid = ""
        self.info: CallInfo | None = None
        self.agent: CallAgent | None = None
        self.events: CallEvents | None = None
        self.hints: Hints | None = None
        self.end_reason: str | None = None
        self.transfer_to: str | None = None
        self.admission: Admission | None = None
        self.recorder: CallRecorder | None = None
        self._recording_error: str | None = None
        self._turned_away = False
        self._stt_failures = 0
        self._tts_apologised = False
        self._notice: Say | None = None  # the recording notice, once it is on its way

        self._inputs: asyncio.Queue = asyncio.Queue()
        self._jobs: asyncio.Queue = asyncio.Queue()
        self._pending: dict[str, _Pending] = {}
        self._tasks: list[asyncio.Task] = []
        self._done = asyncio.Event()
        self._brain_busy = False
        self._speaking_job: _SayJob | None = None
        self._cut_reply = -1
        self._reply = 0
        self._play_end_wall = 0.0
        self._playing_reply = -1  # the reply whose audio was sent last
        self._idle_frames = 0
        self._last_voiced_wall = 0.0
        self._residue = np.zeros(0, dtype=np.int16)
        self._dtmf = ""
        self._dtmf_task: asyncio.Task | None = None
        self._t0 = time.monotonic()
        self._last_ts = 0
        self._last_ts_wall = self._t0
        # Outbound calls: resolved with the stream time at which the callee's opening ended.
        self._opening: asyncio.Future[int] | None = None
        self._opening_frames = 0
        self._media_seen = False
        self._injected = False  # a transcript was injected (replay's text turns): no audio comes
        self._refused = False  # closed before `start`

    # --- clock ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Stream time: the last media timestamp plus the wall time since it arrived."""
        return self._last_ts + int((time.monotonic() - self._last_ts_wall) * 1000)

    # --- the read loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until the call ends. Never raises on bad input."""
        done_wait = asyncio.ensure_future(self._done.wait())
        receive: asyncio.Future | None = None
        try:
            while not self._done.is_set():
                receive = receive or asyncio.ensure_future(self.socket.receive())
                await asyncio.wait(
                    {receive, done_wait},
                    timeout=self._quiet_limit(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not receive.done():
                    if self._done.is_set() or not self._quiet():
                        break
                    continue
                raw, receive = receive.result(), None
                if raw is None:
                    self.end_reason = self.end_reason or "caller_hangup"
                    break
                if not await self._handle(raw):
                    break
        finally:
            if receive is not None and not receive.done():
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receive
            done_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await done_wait
            try:
                await self._shutdown()
            finally:
                # However the call ended (an error, a dropped socket, cancellation mid-way
                # through the shutdown), its file is closed and its place given back.
                self._close_recording()
                if self.admission is not None:
                    self.admission.release()

    def _quiet_limit(self) -> float | None:
        """How long the socket may stay quiet before `_quiet` is asked what that means."""
        now = time.monotonic()
        if self.info is None:
            return max(0.0, self._t0 + self.settings.stream_start_timeout_s - now)
        if self._turned_away or self._injected:
            return None  # injected transcripts stand in for audio: no audio comes between them
        return max(0.05, self._last_ts_wall + MEDIA_GAP_S - now)

    def _quiet(self) -> bool:
        """Nothing came for a while; False ends the read loop. A socket that never starts is
        closed (it must not hold a connection); a started one that sends no audio is heard
        as silence, as Twilio's own silent frames would be, so the agent reprompts and then
        says goodbye instead of holding a place until the maximum call length."""
        if self.info is None:
            log.warning(
                "media socket closed: no start in %.0f s", self.settings.stream_start_timeout_s
            )
            self._refused = True
            return False
        gap_ms = int((time.monotonic() - self._last_ts_wall) * 1000)
        if gap_ms < MEDIA_GAP_S * 1000:
            return True
        frames = min(gap_ms // FRAME_MS, MAX_SILENT_FRAMES)
        self._last_ts, self._last_ts_wall = self.now_ms(), time.monotonic()
        for i in range(frames):
            self._on_frame(_SILENT_FRAME, self._last_ts - (frames - i) * FRAME_MS)
        return True

    def _bad(self, kind: str, detail: str) -> None:
        """Log each kind of protocol error once per call; count every occurrence."""
        self.stats.bad_messages[kind] += 1
        if self.stats.bad_messages[kind] == 1:
            log.warning(
                "call %s: ignoring bad message (%s): %s",
                self.info.call_sid if self.info else "?",
                kind,
                detail[:200],
            )

    async def _handle(self, raw: str | bytes) -> bool:
        """Handle one frame; False ends the read loop."""
        try:
            msg = twilio.parse_message(raw, max_bytes=self.settings.max_message_bytes)
        except twilio.ProtocolError as exc:
            self._bad(exc.kind, exc.detail)
            return True
        if isinstance(msg, twilio.Start):
            if self.info is not None:
                self._bad("duplicate_start", "a second start message")
                return True
            return await self._begin(msg)
        if isinstance(msg, twilio.Connected):
            return True
        if self.info is None:
            self._bad("before_start", f"{type(msg).__name__.lower()} before start")
            return True
        if self._turned_away:  # the busy message plays: only its echo and the end matter
            if isinstance(msg, twilio.Mark):
                self._on_mark(msg.name)
            return not isinstance(msg, twilio.Stop)
        if isinstance(msg, twilio.Media):
            self._on_media(msg)
        elif isinstance(msg, twilio.Mark):
            self._on_mark(msg.name)
        elif isinstance(msg, twilio.Dtmf):
            self._on_dtmf(msg.digit)
        elif isinstance(msg, twilio.Inject):
            self._on_inject(msg)
        elif isinstance(msg, twilio.Stop):
            self.end_reason = self.end_reason or "caller_hangup"
            return False
        else:
            self._bad("unexpected_event", f"{type(msg).__name__} is not sent by Twilio")
        return True

    async def _begin(self, start: twilio.Start) -> bool:
        params = start.custom_parameters
        if not twilio.verify_stream_token(self.settings.secret(), start.call_sid, params):
            log.warning("media socket for %s refused: bad or missing stream token", start.call_sid)
            await self.socket.close(1008)
            return False
        # A token opens one stream, once: not again after the call, not on a second socket.
        if not await self.log.claim_stream(start.call_sid, start.stream_sid):
            log.warning("media socket for %s refused: the call has its stream", start.call_sid)
            await self.socket.close(1008)
            return False
        if start.encoding != "audio/x-mulaw" or start.sample_rate != SAMPLE_RATE:
            self._bad("media_format", f"{start.encoding}@{start.sample_rate} (expected µ-law 8k)")
        direction = "outbound" if params.get("direction", "").startswith("outbound") else "inbound"
        self.stream_sid = start.stream_sid
        self.info = CallInfo(
            call_sid=start.call_sid,
            from_number=params.get("from", ""),
            to_number=params.get("to", ""),
            direction=direction,
            purpose=params.get("purpose") or None,
            order_ref=params.get("order") or None,
        )
        self.events = CallEvents(self.deps.store, start.call_sid, self.now_ms)
        assert self.deps.limiter is not None
        self.admission = self.deps.limiter.admit(self.info.caller_number)
        if not self.admission.granted:
            return await self._turn_away(self.admission.reason or "max_calls")
        await self.log.opened(self.info)
        await self.events.record("call.started", direction=direction)
        self.agent = self.deps.make_agent(self.info, self.events)
        self.recorder = self._open_recording()
        self._tasks = [
            asyncio.create_task(self._run_brain(), name=f"brain-{start.call_sid}"),
            asyncio.create_task(self._speaker(), name=f"speaker-{start.call_sid}"),
            asyncio.create_task(self._call_timer(), name=f"timer-{start.call_sid}"),
        ]
        log.info("call %s started (%s from %s)", start.call_sid, direction, self.info.from_number)
        return True

    async def _turn_away(self, cap: str) -> bool:
        """Above a cap: a polite busy message, then the socket closes and Twilio hangs up."""
        assert self.info is not None and self.events is not None
        limiter = self.deps.limiter
        assert limiter is not None
        self._turned_away = True
        self.end_reason = "busy"
        log.warning(
            "call %s turned away: %s reached (%d calls on the line)", self._sid, cap, limiter.active
        )
        await self.log.opened(self.info)
        await self.events.record("call.rejected", reason="busy", cap=cap, active=limiter.active)
        self._tasks = [asyncio.create_task(self._say_busy(), name=f"busy-{self._sid}")]
        return True

    async def _say_busy(self) -> None:
        assert self.info is not None
        try:
            text = busy_text(self.settings, self.info.direction)
            clip = await self.deps.canned.get(
                self.deps.synthesizer, text, self.settings.tts_timeout_s
            )
            seq = self.log.next_seq()
            await self.log.agent_turn(seq, text, source="canned")
            await self._play_clip(clip, "busy", seq)
            await self._wait_heard("busy", len(clip) / SAMPLE_RATE)
        finally:
            self._done.set()

    def _open_recording(self) -> CallRecorder | None:
        if not self.settings.recording:
            return None
        try:
            return CallRecorder.open(self.settings.recordings_dir, self._sid)
        except OSError as exc:
            log.error("call %s: cannot record (%s); the call goes on unrecorded", self._sid, exc)
            self._recording_error = str(exc)
            return None

    async def _call_timer(self) -> None:
        """After `max_call_s` the agent wraps up; a call still going a while later is ended."""
        await asyncio.sleep(self.settings.max_call_s)
        log.info("call %s: %.0f s on the line, wrapping up", self._sid, self.settings.max_call_s)
        self._inputs.put_nowait(_WrapUp())
        await asyncio.sleep(WRAP_UP_GRACE_S)
        if not self._done.is_set():
            log.warning("call %s: still on the line after the wrap-up; ending it", self._sid)
            self.end_reason = self.end_reason or "max_duration"
            self._done.set()

    # --- caller audio --------------------------------------------------------------------------

    def _on_media(self, media: twilio.Media) -> None:
        if media.track not in ("inbound", "inbound_track"):
            return
        self._last_ts = media.timestamp
        self._last_ts_wall = time.monotonic()
        self._media_seen = True
        pcm = mulaw_decode(media.payload)
        if self.recorder is not None:
            self.recorder.caller(media.timestamp, pcm)
        if self._residue.size:
            pcm = np.concatenate([self._residue, pcm])
        n_frames = len(pcm) // FRAME_SAMPLES
        self._residue = pcm[n_frames * FRAME_SAMPLES :]
        for i in range(n_frames):
            frame = pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            self._on_frame(frame, media.timestamp + i * FRAME_MS)

    def _on_frame(self, frame: np.ndarray, at_ms: int) -> None:
        if self._awaiting_opening():
            self._on_opening_frame(frame, at_ms)
            return
        for event in self.segmenter.feed(frame, at_ms):
            if isinstance(event, SpeechStarted):
                self._idle_frames = 0
                if self._audible():
                    self._barge_in(event.at_ms)
            elif isinstance(event, Pause):
                self.turns.paused(event, self.hints)
            else:
                self._heard(event)
        if self.segmenter.last_frame_voiced:
            self._last_voiced_wall = time.monotonic()
            self.turns.spoke()
        elif self.segmenter.in_speech and self.turns.turn_over(
            self.segmenter.silent_ms, self.hints
        ):
            utterance = self.segmenter.end_turn(at_ms + FRAME_MS)
            if utterance is not None:
                self._heard(utterance)
        self._count_silence()

    def _heard(self, utterance: Utterance) -> None:
        """The caller's turn is over: hand it to the brain, with its transcription if one was
        started at the last pause on exactly this audio."""
        early = self.turns.take(utterance, self.hints)
        if utterance.voiced_ms < MIN_UTTERANCE_VOICED_MS:
            if early is not None:
                early.cancel()
            return
        heard = _Heard(utterance, self._last_voiced_wall, time.monotonic(), early)
        self._inputs.put_nowait(heard)

    def _awaiting_opening(self) -> bool:
        return self._opening is not None and not self._opening.done()

    def _end_opening(self, at_ms: int) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.set_result(at_ms)

    def _on_opening_frame(self, frame: np.ndarray, at_ms: int) -> None:
        """Before the greeting of an outbound call: wait for the callee's first words to end,
        or for enough silence. The words themselves are dropped (nobody asked anything yet)."""
        for event in self.segmenter.feed(frame, at_ms):
            if isinstance(event, SpeechStarted):
                self._opening_frames = 0
            elif isinstance(event, Utterance):
                log.info("call %s: the callee answered (%d ms)", self._sid, event.voiced_ms)
                self._end_opening(event.speech_end_ms)
                return
        # The segmenter waits for the longest turn; a "Hello?" ends at the ordinary one.
        if self.segmenter.silent_ms >= self.turns.end_of_turn_ms(None):
            opening = self.segmenter.end_turn(at_ms + FRAME_MS)
            if opening is not None:
                log.info("call %s: the callee answered (%d ms)", self._sid, opening.voiced_ms)
                self._end_opening(opening.speech_end_ms)
                return
        if self.segmenter.in_speech:
            self._opening_frames = 0
            return
        self._opening_frames += 1
        if self._opening_frames * FRAME_MS >= OPENING_SILENCE_S * 1000:
            self._end_opening(at_ms + FRAME_MS)

    async def _await_opening(self) -> int:
        """The stream time at which an outbound callee's opening ended."""
        self._opening = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        while not self._opening.done():
            # A stream that carries no caller audio at all cannot show silence: use the clock.
            if not self._media_seen and time.monotonic() - started >= OPENING_SILENCE_S:
                self._end_opening(self.now_ms())
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._opening), timeout=0.1)
        return self._opening.result()

    def _count_silence(self) -> None:
        """Frames of silence while nobody speaks and nothing is pending become a `silence`."""
        if (
            self.segmenter.in_speech
            or self._brain_busy
            or not self._inputs.empty()
            or self._audible()
            or self._dtmf
        ):
            self._idle_frames = 0
            return
        self._idle_frames += 1
        seconds = self._idle_frames * FRAME_MS / 1000
        if seconds >= self.settings.silence_reprompt_s:
            self._idle_frames = 0
            self._inputs.put_nowait(_Silence(seconds, self.now_ms()))

    def _audible(self) -> bool:
        """The agent is speaking: audio sent and not yet played, or a sentence on its way."""
        if self._speaking_job is not None:
            return True
        if time.monotonic() > self._play_end_wall + CLIP_ECHO_GRACE_S:
            return False  # long played out: a mark never echoed must not keep us "speaking"
        return any(not p.end_of_reply for p in self._pending.values())

    def _barge_in(self, at_ms: int) -> None:
        job = self._speaking_job
        pending_allow = all(p.barge_in for p in self._pending.values() if not p.end_of_reply)
        if (job is not None and not job.say.barge_in) or not pending_allow:
            return
        self._cut_reply = self._reply
        cut_seqs = {p.seq for p in self._pending.values() if not p.end_of_reply}
        if job is not None:
            cut_seqs.add(job.seq)
        self._pending.clear()
        self._play_end_wall = time.monotonic()
        if self.recorder is not None:
            self.recorder.clear(self.now_ms())
        self.stats.barge_ins += 1
        asyncio.get_running_loop().create_task(self._send(twilio.clear_message(self.stream_sid)))
        log.info("call %s: barge-in at %d ms", self.info.call_sid if self.info else "?", at_ms)
        if self.events is not None:
            self._spawn(self.events.record("barge_in", interrupted_turns=sorted(cut_seqs)))
        for seq in cut_seqs:
            self._spawn(self.log.interrupted(seq))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks = [t for t in self._tasks if not t.done()]  # bounded over a long call
        self._tasks.append(task)

    # --- keypad, marks, injected text ----------------------------------------------------------

    def _on_dtmf(self, digit: str) -> None:
        self._idle_frames = 0
        if self._awaiting_opening():
            self._end_opening(self.now_ms())
            return
        if self._dtmf_task is not None:
            self._dtmf_task.cancel()
            self._dtmf_task = None
        if digit == "#":
            self._flush_dtmf()
            return
        self._dtmf += digit
        self._dtmf_task = asyncio.get_running_loop().create_task(self._dtmf_timeout())

    async def _dtmf_timeout(self) -> None:
        await asyncio.sleep(self.settings.dtmf_timeout_s)
        self._dtmf_task = None
        self._flush_dtmf()

    def _flush_dtmf(self) -> None:
        if self._dtmf:
            self._inputs.put_nowait(_Keys(self._dtmf, self.now_ms(), time.monotonic()))
        self._dtmf = ""

    def _on_mark(self, name: str) -> None:
        self._pending.pop(name, None)

    def _on_inject(self, msg: twilio.Inject) -> None:
        if not self.settings.allow_injection:
            self._bad("injection_refused", "injected transcript while injection is off")
            return
        at_ms = msg.timestamp if msg.timestamp is not None else self.now_ms()
        self._injected = True
        self._idle_frames = 0
        if self._awaiting_opening():
            self._end_opening(at_ms)
            return
        self._inputs.put_nowait(_Text(msg.text, at_ms, time.monotonic()))

    # --- the brain -----------------------------------------------------------------------------

    async def _run_brain(self) -> None:
        """The brain, with a last resort: should it die, the caller goes to a person."""
        try:
            await self._brain()
        except Exception:
            log.exception("call %s: the agent's task failed", self._sid)
            await self._last_resort()

    async def _brain(self) -> None:
        assert self.agent is not None and self.info is not None
        input_ms = 0
        if self.info.direction == "outbound":
            input_ms = await self._await_opening()
        try:
            await self._reply_with(self._greeting(), input_ms=input_ms, clock=None)
        except Exception as exc:
            await self._recover(None, exc)
        while self.end_reason is None:
            item = await self._inputs.get()
            self._brain_busy = True
            try:
                await self._process(item)
            except Exception as exc:  # one bad turn must not leave the caller in dead air
                await self._recover(item, exc)
            finally:
                self._brain_busy = False
        await self._finish_speaking()
        self._done.set()

    def _greeting(self) -> AsyncIterator[Any]:
        """The agent's greeting; on a recorded call, the recording notice first."""
        assert self.agent is not None
        if self.recorder is None:
            return self.agent.start()
        self._notice = Say(self.settings.recording_notice, barge_in=False)
        return _chain(_single(self._notice), self.agent.start())

    async def _recover(self, item: object, exc: Exception) -> None:
        """After a failed turn: the hearing-trouble path when speech to text failed, else an
        apology. Never raises: the brain must outlive any turn."""
        what = type(item).__name__ if item is not None else "the greeting"
        try:
            if isinstance(exc, _HearingFailed):
                log.error("call %s: speech to text failed", self._sid, exc_info=exc)
                await self._stt_failed()
            else:
                log.error("call %s: failed to handle %s", self._sid, what, exc_info=exc)
                await self._say_directly(APOLOGY)
        except Exception:
            log.exception("call %s: could not recover from a failed turn", self._sid)

    async def _stt_failed(self) -> None:
        """First time: apologise and offer a person. Second time: hand over."""
        self._stt_failures += 1
        if self._stt_failures > 1:
            await self._hand_over("stt_failed")
            return
        assert self.agent is not None
        await self._reply_with(self.agent.offer_person("stt_failed"), self.now_ms(), None)

    async def _hand_over(self, reason: str, *, apologised: bool = False) -> None:
        """To a person: through the agent's handoff (ticket, texted number, transfer); when
        that does not end the call, straight to the human number."""
        assert self.agent is not None
        try:
            events = self.agent.fail(reason, apologised=apologised)
            await self._reply_with(events, self.now_ms(), None)
        except Exception:
            log.exception("call %s: the agent could not hand over", self._sid)
        if self.end_reason is not None:
            return
        if self.events is not None:
            with contextlib.suppress(Exception):
                await self.events.record("escalation", reason=reason)
        lead = () if apologised else (Say(TECHNICAL_PROBLEM, barge_in=False),)
        transfer = Transfer(self.settings.human_number, f"Handed over: {reason}")
        await self._reply_with(_single(*lead, transfer), self.now_ms(), None)

    async def _wrap_up(self) -> None:
        assert self.agent is not None
        await self._reply_with(self.agent.wrap_up("max_duration"), self.now_ms(), None)
        self.end_reason = self.end_reason or "max_duration"

    async def _last_resort(self) -> None:
        """The brain is gone: apologise with the recorded clip and hand the caller to a person."""
        self.transfer_to = self.settings.human_number
        self.end_reason = "transfer"
        with contextlib.suppress(Exception):
            await self.log.transferred(self.transfer_to)
        if self.events is not None:
            with contextlib.suppress(Exception):
                await self.events.record("escalation", reason="agent_failed")
        clip = self.deps.canned.ready(TECHNICAL_PROBLEM) or _tone()
        await self._play_clip(clip, "fault")
        await self._wait_heard("fault", len(clip) / SAMPLE_RATE)
        self._done.set()

    @property
    def _sid(self) -> str:
        return self.info.call_sid if self.info else "?"

    async def _process(self, item: object) -> None:
        assert self.agent is not None
        if isinstance(item, _Heard):
            await self._process_heard(item)
        elif isinstance(item, _Text):
            text = redact_card_numbers(item.text)
            await self.log.caller_turn(text, item.at_ms, item.at_ms, "text")
            await self._reply_with(self.agent.hear(text, 1.0), item.at_ms, InputClock.at(item.wall))
        elif isinstance(item, _Keys):
            digits = redact_card_numbers(item.digits)
            await self.log.caller_turn(digits, item.at_ms, item.at_ms, "dtmf")
            await self._reply_with(self.agent.keypad(digits), item.at_ms, InputClock.at(item.wall))
        elif isinstance(item, _Silence):
            await self._reply_with(self.agent.silence(item.seconds), item.at_ms, None)
        elif isinstance(item, _Fault):
            await self._hand_over(item.reason, apologised=True)
        elif isinstance(item, _WrapUp):
            await self._wrap_up()

    async def _process_heard(self, item: _Heard) -> None:
        assert self.agent is not None
        u = item.utterance
        transcript = await self._early_transcript(item.early)
        speculative = transcript is not None
        if transcript is None:
            transcript = await self._transcribe(u.pcm)
        stt_done = time.monotonic()
        clock = InputClock(item.speech_end_wall or item.eot_wall, item.eot_wall, stt_done)
        hearing = Hearing(transcript.decode_ms, transcript.audio_ms, speculative)
        if not transcript.text:
            log.info("call %s: %d ms of speech, nothing recognised", self._sid, u.voiced_ms)
            if u.voiced_ms >= 400:
                await self._reply_with(_single(Say(DIDNT_CATCH)), u.speech_end_ms, clock)
            else:
                await self._reply_with(_single(), u.speech_end_ms, None)
            return
        # A caller reading out a card number must leave no trace of it: not in the transcript,
        # not in what the agent keeps (summaries, tickets).
        text = redact_card_numbers(transcript.text)
        await self.log.caller_turn(
            text, u.start_ms, u.speech_end_ms, "audio", transcript.confidence, hearing
        )
        await self._reply_with(self.agent.hear(text, transcript.confidence), u.speech_end_ms, clock)

    async def _transcribe(self, pcm: np.ndarray) -> Transcript:
        """Speech to text with a deadline; any failure becomes `_HearingFailed`."""
        try:
            return await self._transcribe_early(pcm, self.hints)
        except Exception as exc:
            raise _HearingFailed(repr(exc)) from exc

    async def _transcribe_early(self, pcm: np.ndarray, hints: Hints | None) -> Transcript:
        """Speech to text with a deadline, in this call's turn on the STT pool; also what the
        turn taker starts at a pause while the caller may go on."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        async with asyncio.timeout(self.settings.stt_timeout_s):
            with on_behalf_of(self._sid):  # the STT pool takes turns across calls
                return await self.deps.transcriber.transcribe(pcm, hints)

    async def _early_transcript(self, early: asyncio.Task | None) -> Transcript | None:
        """The transcript started at the turn's last pause (None: there was none). It is the
        transcription of this very audio: its failure is hearing's (`_HearingFailed`)."""
        if early is None:
            return None
        try:
            return await early
        except Exception as exc:
            raise _HearingFailed(repr(exc)) from exc

    async def _synthesize(self, text: str) -> np.ndarray:
        """Text to speech with a deadline; any failure becomes `_SpeakingFailed`."""
        try:
            async with asyncio.timeout(self.settings.tts_timeout_s):
                with on_behalf_of(self._sid):  # the TTS pool takes turns across calls
                    return await self.deps.synthesizer.synthesize(text)
        except Exception as exc:
            raise _SpeakingFailed(repr(exc)) from exc

    async def _reply_with(
        self, events: AsyncIterator[Any], input_ms: int, clock: InputClock | None
    ) -> None:
        """Drain one agent reply: Says go to the speaker as they come; then the end mark."""
        self._reply += 1
        reply = self._reply
        first = True
        # Closed however the reply ends (the call hanging up cancels us mid-reply), so an
        # action still running inside the agent is cancelled now, not left to the collector.
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Say):
                    seq = self.log.next_seq()
                    job_clock = clock if first else None
                    first = False
                    await self.log.agent_turn(seq, event.text)
                    self._jobs.put_nowait(_SayJob(reply, seq, event, job_clock, time.monotonic()))
                elif isinstance(event, Hints):
                    self.hints = event
                elif isinstance(event, EndCall):
                    self.end_reason = event.reason
                elif isinstance(event, Transfer):
                    self.transfer_to = event.number
                    self.end_reason = "transfer"
                    await self.log.transferred(event.number)
        self._jobs.put_nowait(_EndOfReply(reply, input_ms))
        self.stats.replies += 1

    async def _say_directly(self, text: str) -> None:
        await self._reply_with(_single(Say(text)), self.now_ms(), None)

    async def _finish_speaking(self) -> None:
        """Wait until everything queued has been played to the caller (or clearly won't be)."""
        while (
            not self._jobs.empty() or self._speaking_job is not None
        ) and not self._done.is_set():
            await asyncio.sleep(0.02)
        deadline = time.monotonic() + max(0.0, self._play_end_wall - time.monotonic()) + 2.0
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # --- the speaker ---------------------------------------------------------------------------

    async def _speaker(self) -> None:
        while True:
            job = await self._jobs.get()
            if isinstance(job, _EndOfReply):
                name = f"r{job.reply}:{job.input_ms}"
                self._pending[name] = _Pending(seq=0, barge_in=True, end_of_reply=True)
                await self._send(twilio.mark_message(self.stream_sid, name))
                continue
            if job.reply <= self._cut_reply:
                continue
            self._speaking_job = job
            try:
                await self._speak(job)
            except asyncio.CancelledError:
                raise
            except _SpeakingFailed as exc:
                await self._tts_failed(job, exc)
            except Exception:
                log.exception("call %s: could not speak turn %d", self._sid, job.seq)
            finally:
                self._speaking_job = None

    async def _tts_failed(self, job: _SayJob, exc: _SpeakingFailed) -> None:
        """The rest of the reply is dropped; the apology rendered at start-up plays (two beeps
        if there is none); the brain hands the caller to a person. Once per call."""
        log.error("call %s: text to speech failed on turn %d", self._sid, job.seq, exc_info=exc)
        self._cut_reply = max(self._cut_reply, job.reply)
        self._spawn(self.log.interrupted(job.seq))  # never heard
        if job.say is self._notice:  # without the notice heard, the call must not be recorded
            self._abandon_recording("the recording notice could not be spoken")
        if self._tts_apologised:
            return
        self._tts_apologised = True
        clip = self.deps.canned.ready(TECHNICAL_PROBLEM)
        seq = self.log.next_seq()
        await self.log.agent_turn(seq, TECHNICAL_PROBLEM if clip else "(two beeps)", "canned")
        await self._play_clip(clip or _tone(), f"s{seq}.0", seq)
        self._inputs.put_nowait(_Fault("tts_failed"))

    async def _play_clip(self, clip: bytes, mark: str, seq: int = 0) -> None:
        """Send ready-made µ-law audio and a mark after it; the caller cannot interrupt it."""
        await self._send_mulaw(clip)
        self._pending[mark] = _Pending(seq=seq, barge_in=False)
        await self._send(twilio.mark_message(self.stream_sid, mark))

    async def _wait_heard(self, mark: str, seconds: float) -> None:
        """Until the caller has heard up to `mark` (or clearly never will)."""
        deadline = time.monotonic() + seconds + CLIP_ECHO_GRACE_S
        while mark in self._pending and not self._done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _speak(self, job: _SayJob) -> None:
        sentences = speech_chunks(job.say.text)
        upcoming = asyncio.ensure_future(self._synthesize(sentences[0])) if sentences else None
        started_ms: int | None = None
        total_samples = 0
        try:
            for i, _ in enumerate(sentences):
                assert upcoming is not None
                audio = await upcoming
                upcoming = (
                    asyncio.ensure_future(self._synthesize(sentences[i + 1]))
                    if i + 1 < len(sentences)
                    else None
                )
                if job.reply <= self._cut_reply:
                    return
                if started_ms is None:
                    started_ms = self.now_ms()
                    await self._first_audio(job, started_ms)
                self._note_gap(job, i)
                await self._send_audio(audio)
                total_samples += len(audio)
                name = f"s{job.seq}.{i}"
                self._pending[name] = _Pending(seq=job.seq, barge_in=job.say.barge_in)
                await self._send(twilio.mark_message(self.stream_sid, name))
        finally:
            if upcoming is not None:
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await upcoming
        if started_ms is not None:
            end_ms = started_ms + total_samples * 1000 // SAMPLE_RATE
            await self.log.spoken(job.seq, started_ms, end_ms)

    def _note_gap(self, job: _SayJob, sentence: int) -> None:
        """Count (and log) a gap inside a reply: its audio sent so far has finished playing
        before this sentence is ready."""
        dry_ms = (time.monotonic() - self._play_end_wall) * 1000
        if self._playing_reply == job.reply and dry_ms > AUDIO_GAP_ALLOWANCE_MS:
            self.stats.audio_gaps += 1
            log.warning(
                "call %s: %d ms gap before sentence %d of turn %d",
                self._sid,
                dry_ms,
                sentence,
                job.seq,
            )
        self._playing_reply = job.reply

    async def _first_audio(self, job: _SayJob, started_ms: int) -> None:
        """Record where the time went between the caller's last word and our first audio."""
        if job.clock is None:
            return
        latency = job.clock.latency(job.said_wall, time.monotonic())
        await self.log.first_audio(job.seq, started_ms, latency)

    async def _send_audio(self, pcm: np.ndarray) -> None:
        await self._send_mulaw(mulaw_encode(pcm))

    async def _send_mulaw(self, mulaw: bytes) -> None:
        if self.recorder is not None:  # placed at the stream time it leaves, as it will play
            self.recorder.agent(self.now_ms(), mulaw_decode(mulaw))
        for i in range(0, len(mulaw), CHUNK_SAMPLES):
            await self._send(twilio.media_message(self.stream_sid, mulaw[i : i + CHUNK_SAMPLES]))
        now = time.monotonic()
        self._play_end_wall = max(self._play_end_wall, now) + len(mulaw) / SAMPLE_RATE

    async def _send(self, text: str) -> None:
        try:
            await self.socket.send(text)
        except Exception as exc:  # the caller may hang up while we speak
            log.debug("call %s: send failed: %s", self._sid, exc)
            self.end_reason = self.end_reason or "socket_closed"
            self._done.set()

    # --- the end -------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._done.set()  # whatever still waits on the call (speech, a clip's echo) stops now
        self.turns.close()  # a speculative transcription still queued is dropped, not decoded
        if self._dtmf_task is not None:
            self._dtmf_task.cancel()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a task that ignores its cancellation must not keep the call's place
            _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
            for task in stuck:
                log.error("call %s: task %s did not stop", self._sid, task.get_name())
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a failure was logged where it happened
        if self._dtmf_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._dtmf_task
        if self.info is None:
            if self._refused:
                with contextlib.suppress(Exception):
                    await self.socket.close(1008)
            return
        reason = self.end_reason or "caller_hangup"
        summary = None
        if self.agent is not None:
            try:
                summary = await self.agent.end(reason)
            except Exception:
                log.exception("call %s: agent.end failed", self._sid)
        try:
            assert self.events is not None
            await self._record_recording()
            await self.events.record(
                "call.ended",
                reason=reason,
                bad_messages=dict(self.stats.bad_messages),
                barge_ins=self.stats.barge_ins,
                audio_gaps=self.stats.audio_gaps,
            )
            await self.log.closed(reason, str(summary) if summary is not None else None)
        except Exception:
            log.exception("call %s: could not record the end of the call", self._sid)
        with contextlib.suppress(Exception):
            await self.socket.close(1000)
        if self.stats.bad_messages:
            log.info("call %s: bad messages ignored: %s", self._sid, dict(self.stats.bad_messages))
        log.info("call %s ended: %s", self._sid, reason)

    def _close_recording(self) -> Recording | None:
        """Close the recording (once); what it holds, or None."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        if self.end_reason in ("caller_hangup", "socket_closed"):
            recorder.clear(self.now_ms())  # the caller left: what was still queued went unheard
        try:
            recording = recorder.close()
        except Exception as exc:
            log.exception("call %s: could not finish the recording", self._sid)
            self._recording_error = str(exc)
            return None
        if recorder.failed:
            self._recording_error = recorder.failed
            return None
        return recording

    def _abandon_recording(self, why: str) -> None:
        """Stop recording and delete what was written."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        log.warning("call %s: recording abandoned: %s", self._sid, why)
        self._recording_error = why
        with contextlib.suppress(OSError):
            recorder.close()
            recorder.path.unlink()

    async def _record_recording(self) -> None:
        assert self.events is not None
        recording = self._close_recording()
        if recording is not None:
            await self.events.record(
                "recording.saved",
                file=recording.path.name,
                duration_s=round(recording.duration_s, 2),
            )
        elif self._recording_error is not None:
            await self.events.record("recording.failed", error=self._recording_error)


async def _single(*events: Any) -> AsyncIterator[Any]:
    for event in events:
        yield event


async def _chain(*streams: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for stream in streams:
        async for event in stream:
            yield event
