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
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from dialog.events import CallInfo, EndCall, Hints, Say, Transfer
from integrations.protocols import EventSink
from integrations.redact import redact_card_numbers
from integrations.store import CallEvents, Store
from voice import twilio
from voice.audio import FRAME_MS, SAMPLE_RATE, mulaw_decode, mulaw_encode
from voice.settings import Settings
from voice.stt import Transcriber
from voice.tts import Synthesizer, split_sentences
from voice.vad import Segmenter, SpeechStarted, Utterance, VadOptions

__all__ = ["AgentLike", "CallDeps", "CallSession", "Socket"]

log = logging.getLogger(__name__)

FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
CHUNK_SAMPLES = SAMPLE_RATE // 10  # agent audio goes out in 100 ms media messages
MIN_UTTERANCE_VOICED_MS = 120
DIDNT_CATCH = "Sorry, I didn't catch that. Could you say it again?"
APOLOGY = "Sorry, something went wrong on my side."
OPENING_SILENCE_S = 1.5  # an outbound callee who picks up and says nothing is greeted after this


class Socket(Protocol):
    """The media WebSocket as the session sees it."""

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the socket is closed."""

    async def send(self, text: str) -> None:
        """Send one text frame."""

    async def close(self, code: int = 1000) -> None:
        """Close the socket."""


class AgentLike(Protocol):
    """What the session needs of `dialog.Agent` (DESIGN.md contract)."""

    def start(self) -> AsyncIterator[Any]: ...
    def hear(self, text: str, confidence: float) -> AsyncIterator[Any]: ...
    def keypad(self, digits: str) -> AsyncIterator[Any]: ...
    def silence(self, seconds: float) -> AsyncIterator[Any]: ...
    async def end(self, reason: str) -> Any: ...


@dataclass
class CallDeps:
    """What every call shares: settings, store, engines, and how to make an agent."""

    settings: Settings
    store: Store
    transcriber: Transcriber
    synthesizer: Synthesizer
    make_agent: Callable[[CallInfo, EventSink], AgentLike]


# --- Inputs to the brain ----------------------------------------------------------------------


@dataclass
class _Heard:
    utterance: Utterance
    speech_end_wall: float
    eot_wall: float


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


# --- Jobs for the speaker ---------------------------------------------------------------------


@dataclass
class _SayJob:
    reply: int
    seq: int
    say: Say
    timing: dict[str, Any] | None = None
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


class CallSession:
    """Runs one Twilio Media Stream from `connected` to `stop` (or until the agent hangs up)."""

    def __init__(self, socket: Socket, deps: CallDeps) -> None:
        self.socket = socket
        self.deps = deps
        self.settings = deps.settings
        s = deps.settings
        self.segmenter = Segmenter(
            VadOptions(
                aggressiveness=s.vad_aggressiveness,
                pre_roll_ms=s.vad_pre_roll_ms,
                min_speech_ms=s.vad_min_speech_ms,
                end_of_turn_ms=s.vad_end_of_turn_ms,
                max_utterance_s=s.vad_max_utterance_s,
            )
        )
        self.stats = _Stats()
        self.stream_sid = ""
        self.info: CallInfo | None = None
        self.agent: AgentLike | None = None
        self.events: CallEvents | None = None
        self.hints: Hints | None = None
        self.end_reason: str | None = None
        self.transfer_to: str | None = None

        self._inputs: asyncio.Queue = asyncio.Queue()
        self._jobs: asyncio.Queue = asyncio.Queue()
        self._pending: dict[str, _Pending] = {}
        self._tasks: list[asyncio.Task] = []
        self._done = asyncio.Event()
        self._brain_busy = False
        self._speaking_job: _SayJob | None = None
        self._cut_reply = -1
        self._reply = 0
        self._seq = 0
        self._play_end_wall = 0.0
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

    # --- clock ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Stream time: the last media timestamp plus the wall time since it arrived."""
        return self._last_ts + int((time.monotonic() - self._last_ts_wall) * 1000)

    # --- the read loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until the call ends. Never raises on bad input."""
        done_wait = asyncio.ensure_future(self._done.wait())
        try:
            while not self._done.is_set():
                receive = asyncio.ensure_future(self.socket.receive())
                await asyncio.wait({receive, done_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await receive
                    break
                raw = receive.result()
                if raw is None:
                    self.end_reason = self.end_reason or "caller_hangup"
                    break
                if not await self._handle(raw):
                    break
        finally:
            done_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await done_wait
            await self._shutdown()

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
        store = self.deps.store
        self.events = CallEvents(store, start.call_sid, self.now_ms)
        await asyncio.to_thread(
            store.upsert_call,
            start.call_sid,
            from_number=self.info.from_number,
            to_number=self.info.to_number,
            direction=direction,
            purpose=self.info.purpose,
            order_ref=self.info.order_ref,
            status="in-progress",
            started_at=datetime.now(UTC),
        )
        await self.events.record("call.started", direction=direction)
        self.agent = self.deps.make_agent(self.info, self.events)
        self._tasks = [
            asyncio.create_task(self._brain(), name=f"brain-{start.call_sid}"),
            asyncio.create_task(self._speaker(), name=f"speaker-{start.call_sid}"),
        ]
        log.info("call %s started (%s from %s)", start.call_sid, direction, self.info.from_number)
        return True

    # --- caller audio --------------------------------------------------------------------------

    def _on_media(self, media: twilio.Media) -> None:
        if media.track not in ("inbound", "inbound_track"):
            return
        self._last_ts = media.timestamp
        self._last_ts_wall = time.monotonic()
        self._media_seen = True
        pcm = mulaw_decode(media.payload)
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
            elif event.voiced_ms >= MIN_UTTERANCE_VOICED_MS:
                now = time.monotonic()
                self._inputs.put_nowait(_Heard(event, self._last_voiced_wall, now))
        if self.segmenter.last_frame_voiced:
            self._last_voiced_wall = time.monotonic()
        self._count_silence()

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
            else:
                log.info("call %s: the callee answered (%d ms)", self._sid, event.voiced_ms)
                self._end_opening(event.speech_end_ms)
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
        return self._speaking_job is not None or any(
            not p.end_of_reply for p in self._pending.values()
        )

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
        self.stats.barge_ins += 1
        asyncio.get_running_loop().create_task(self._send(twilio.clear_message(self.stream_sid)))
        log.info("call %s: barge-in at %d ms", self.info.call_sid if self.info else "?", at_ms)
        if self.events is not None:
            self._spawn(self.events.record("barge_in", interrupted_turns=sorted(cut_seqs)))
        for seq in cut_seqs:
            self._spawn(asyncio.to_thread(self._mark_interrupted, seq))

    def _mark_interrupted(self, seq: int) -> None:
        assert self.info is not None
        self.deps.store.update_turn(self.info.call_sid, seq, interrupted=1)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
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
        self._idle_frames = 0
        if self._awaiting_opening():
            self._end_opening(at_ms)
            return
        self._inputs.put_nowait(_Text(msg.text, at_ms, time.monotonic()))

    # --- the brain -----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _brain(self) -> None:
        assert self.agent is not None and self.info is not None
        input_ms = 0
        if self.info.direction == "outbound":
            input_ms = await self._await_opening()
        await self._reply_with(self.agent.start(), input_ms=input_ms, timing=None)
        while self.end_reason is None:
            item = await self._inputs.get()
            self._brain_busy = True
            try:
                await self._process(item)
            except Exception:  # one bad turn must not leave the caller in dead air
                log.exception("call %s: failed to handle %s", self._sid, type(item).__name__)
                await self._say_directly(APOLOGY)
            finally:
                self._brain_busy = False
        await self._finish_speaking()
        self._done.set()

    @property
    def _sid(self) -> str:
        return self.info.call_sid if self.info else "?"

    async def _process(self, item: object) -> None:
        assert self.agent is not None
        if isinstance(item, _Heard):
            await self._process_heard(item)
        elif isinstance(item, _Text):
            timing = {"speech_end_wall": item.wall, "eot_wall": item.wall, "stt_done": item.wall}
            text = redact_card_numbers(item.text)
            await self._caller_turn(text, item.at_ms, item.at_ms, "text", None, {})
            await self._reply_with(self.agent.hear(text, 1.0), item.at_ms, timing)
        elif isinstance(item, _Keys):
            timing = {"speech_end_wall": item.wall, "eot_wall": item.wall, "stt_done": item.wall}
            digits = redact_card_numbers(item.digits)
            await self._caller_turn(digits, item.at_ms, item.at_ms, "dtmf", None, {})
            await self._reply_with(self.agent.keypad(digits), item.at_ms, timing)
        elif isinstance(item, _Silence):
            await self._reply_with(self.agent.silence(item.seconds), item.at_ms, None)

    async def _process_heard(self, item: _Heard) -> None:
        assert self.agent is not None
        u = item.utterance
        transcript = await self.deps.transcriber.transcribe(u.pcm, self.hints)
        stt_done = time.monotonic()
        timing = {
            "speech_end_wall": item.speech_end_wall or item.eot_wall,
            "eot_wall": item.eot_wall,
            "stt_done": stt_done,
        }
        extra = {"stt_ms": transcript.decode_ms, "audio_ms": transcript.audio_ms}
        if not transcript.text:
            log.info("call %s: %d ms of speech, nothing recognised", self._sid, u.voiced_ms)
            if u.voiced_ms >= 400:
                await self._reply_with(_single(Say(DIDNT_CATCH)), u.speech_end_ms, timing)
            else:
                await self._reply_with(_single(), u.speech_end_ms, None)
            return
        # A caller reading out a card number must leave no trace of it: not in the transcript,
        # not in what the agent keeps (summaries, tickets).
        text = redact_card_numbers(transcript.text)
        await self._caller_turn(
            text, u.start_ms, u.speech_end_ms, "audio", transcript.confidence, extra
        )
        await self._reply_with(
            self.agent.hear(text, transcript.confidence), u.speech_end_ms, timing
        )

    async def _caller_turn(
        self,
        text: str,
        start_ms: int,
        end_ms: int,
        source: str,
        confidence: float | None,
        timing: dict[str, Any],
    ) -> None:
        seq = self._next_seq()
        await asyncio.to_thread(
            self.deps.store.add_turn,
            self._sid,
            seq,
            "caller",
            text,
            start_ms=start_ms,
            end_ms=end_ms,
            source=source,
            confidence=confidence,
            timing=timing or None,
        )

    async def _reply_with(
        self, events: AsyncIterator[Any], input_ms: int, timing: dict[str, Any] | None
    ) -> None:
        """Drain one agent reply: Says go to the speaker as they come; then the end mark."""
        self._reply += 1
        reply = self._reply
        first = True
        async for event in events:
            if isinstance(event, Say):
                seq = self._next_seq()
                job_timing = dict(timing) if (timing and first) else None
                first = False
                await asyncio.to_thread(
                    self.deps.store.add_turn, self._sid, seq, "agent", event.text, source="tts"
                )
                self._jobs.put_nowait(_SayJob(reply, seq, event, job_timing, time.monotonic()))
            elif isinstance(event, Hints):
                self.hints = event
            elif isinstance(event, EndCall):
                self.end_reason = event.reason
            elif isinstance(event, Transfer):
                self.transfer_to = event.number
                self.end_reason = "transfer"
                await asyncio.to_thread(
                    self.deps.store.upsert_call, self._sid, transfer_to=event.number
                )
        self._jobs.put_nowait(_EndOfReply(reply, input_ms))
        self.stats.replies += 1

    async def _say_directly(self, text: str) -> None:
        await self._reply_with(_single(Say(text)), self.now_ms(), None)

    async def _finish_speaking(self) -> None:
        """Wait until everything queued has been played to the caller (or clearly won't be)."""
        while not self._jobs.empty() or self._speaking_job is not None:
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
            except Exception:
                log.exception("call %s: could not speak turn %d", self._sid, job.seq)
            finally:
                self._speaking_job = None

    async def _speak(self, job: _SayJob) -> None:
        sentences = split_sentences(job.say.text)
        synth = self.deps.synthesizer
        upcoming = asyncio.ensure_future(synth.synthesize(sentences[0])) if sentences else None
        started_ms: int | None = None
        total_samples = 0
        try:
            for i, _ in enumerate(sentences):
                assert upcoming is not None
                audio = await upcoming
                upcoming = (
                    asyncio.ensure_future(synth.synthesize(sentences[i + 1]))
                    if i + 1 < len(sentences)
                    else None
                )
                if job.reply <= self._cut_reply:
                    return
                if started_ms is None:
                    started_ms = self.now_ms()
                    await self._first_audio(job, started_ms)
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
            await asyncio.to_thread(
                self.deps.store.update_turn, self._sid, job.seq, start_ms=started_ms, end_ms=end_ms
            )

    async def _first_audio(self, job: _SayJob, started_ms: int) -> None:
        """Record where the time went between the caller's last word and our first audio."""
        if not job.timing:
            return
        now = time.monotonic()
        t = job.timing
        breakdown = {
            "latency_ms": round((now - t["speech_end_wall"]) * 1000),
            "eot_wait_ms": round((t["eot_wall"] - t["speech_end_wall"]) * 1000),
            "stt_ms": round((t["stt_done"] - t["eot_wall"]) * 1000),
            "dialog_ms": round((job.said_wall - t["stt_done"]) * 1000),
            "tts_ms": round((now - job.said_wall) * 1000),
        }
        log.info("call %s: reply latency %s", self._sid, breakdown)
        await asyncio.to_thread(
            self.deps.store.update_turn, self._sid, job.seq, timing=breakdown, start_ms=started_ms
        )

    async def _send_audio(self, pcm: np.ndarray) -> None:
        mulaw = mulaw_encode(pcm)
        for i in range(0, len(mulaw), CHUNK_SAMPLES):
            await self._send(twilio.media_message(self.stream_sid, mulaw[i : i + CHUNK_SAMPLES]))
        now = time.monotonic()
        self._play_end_wall = max(self._play_end_wall, now) + len(pcm) / SAMPLE_RATE

    async def _send(self, text: str) -> None:
        try:
            await self.socket.send(text)
        except Exception as exc:  # the caller may hang up while we speak
            log.debug("call %s: send failed: %s", self._sid, exc)
            self.end_reason = self.end_reason or "socket_closed"
            self._done.set()

    # --- the end -------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self._dtmf_task is not None:
            self._dtmf_task.cancel()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._dtmf_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._dtmf_task
        if self.info is None:
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
            await self.events.record(
                "call.ended",
                reason=reason,
                bad_messages=dict(self.stats.bad_messages),
                barge_ins=self.stats.barge_ins,
            )
            await asyncio.to_thread(
                self.deps.store.upsert_call,
                self._sid,
                status="completed" if reason != "transfer" else "transferred",
                ended_at=datetime.now(UTC),
                end_reason=reason,
                summary=str(summary) if summary is not None else None,
            )
        except Exception:
            log.exception("call %s: could not record the end of the call", self._sid)
        with contextlib.suppress(Exception):
            await self.socket.close(1000)
        if self.stats.bad_messages:
            log.info("call %s: bad messages ignored: %s", self._sid, dict(self.stats.bad_messages))
        log.info("call %s ended: %s", self._sid, reason)


async def _single(*events: Any) -> AsyncIterator[Any]:
    for event in events:
        yield event
