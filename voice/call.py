"""One phone call: Twilio's media socket in, the agent's voice out.

A `CallSession` owns one socket and routes between a few collaborators, each owning one
question:

- `voice.turns.Turns`: when the caller's turn is over. The read loop hands it every frame of
  caller audio and every keypad press; it hands back finished turns (`Heard`, `Keys`,
  `Silence`) for the *brain* and, at once, a `BargeIn` when the caller speaks over the agent.
- the brain (`_brain`, a task here): transcribes a turn (`voice.hearing.Ears`), asks the
  agent (`dialog.events.CallAgent`), and passes what it says to the speaker. One turn at a
  time, in order.
- `voice.speaker.Speaker`: what the agent says and when (synthesis, media and marks, gaps,
  the barge-in cut).
- `voice.call_log.CallLog`: what is recorded of the call (its row, its turns and their
  timing); `voice.recorder.Tape`: its audio, when it is recorded.

The session itself reads the socket (never blocking on the others), admits the call or
turns it away, and handles what is not a turn: a speech-to-text or synthesis failure, the
maximum call length, the brain dying, and the end of the call. The urgent signals do not
queue behind audio: a barge-in goes straight to the speaker, a hang-up ends the read loop.

On an outbound call the callee speaks first: the agent greets once the callee's first words
("Hello?") have ended, or after `voice.turns.OPENING_SILENCE_S` of silence (`Turns.opening`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from dialog.events import CallAgent, CallInfo, EndCall, FaultLines, Hints, Say, Transfer
from dialog.schema import Conversation
from dialog.understanding import is_backchannel
from integrations.protocols import EventSink
from integrations.redact import redact_card_numbers
from integrations.store import CallEvents, Store
from voice import twilio
from voice.audio import SAMPLE_RATE, mulaw_decode
from voice.call_log import CallLog, Hearing, InputClock
from voice.capacity import Admission, CallLimiter
from voice.hearing import Ears, HearingFailed
from voice.recorder import Tape
from voice.settings import Settings
from voice.speaker import CannedSpeech, Socket, Speaker, Voice, tone
from voice.stt import Transcriber
from voice.tts import Synthesizer
from voice.turns import BargeIn, Heard, Keys, Silence, Turns

__all__ = ["CallDeps", "CallSession", "CannedSpeech", "Socket", "busy_text"]

log = logging.getLogger(__name__)

WRAP_UP_GRACE_S = 60.0  # after the wrap-up was due, a call still going is ended regardless
SHUTDOWN_WAIT_S = 5.0  # for the call's tasks to stop once cancelled
# Twilio streams caller audio without pause (silence too); a stream quiet this long is heard
# as silence.
MEDIA_GAP_S = 1.0
SAY_AGAIN_VOICED_MS = 400  # this much speech recognised as nothing is asked for again


def busy_text(settings: Settings, direction: str) -> str:
    """What a caller hears above the caps (a callee of ours first hears who called)."""
    if direction == "outbound":
        return f"Hello, this is {settings.shop_name}. {settings.busy_message}"
    return settings.busy_message


@dataclass
class CallDeps:
    """What every call shares: settings, store, engines, how to make an agent, the call
    limiter, the lines said without the agent, and the phrases kept ready for when the
    synthesizer cannot be used."""

    settings: Settings
    store: Store
    transcriber: Transcriber
    synthesizer: Synthesizer
    make_agent: Callable[[CallInfo, EventSink], CallAgent]
    limiter: CallLimiter | None = None  # default: one from settings, shared by every session
    # default: the shipped wording; the server passes the shop's (its conversation file)
    lines: FaultLines = field(default_factory=lambda: Conversation().fault_lines())
    canned: CannedSpeech = field(default_factory=CannedSpeech)

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = CallLimiter(self.settings.max_calls, self.settings.max_calls_per_caller)

    async def prepare(self) -> None:
        """Render the phrases that must play even when the synthesizer cannot: the busy
        messages and the technical-problem apology. Once at start-up, after warming up."""
        s = self.settings
        problem = self.lines.technical_problem
        for text in (busy_text(s, "inbound"), busy_text(s, "outbound"), problem):
            await self.canned.get(self.synthesizer, text, s.tts_timeout_s)


# --- inputs to the brain that are not the caller's turns --------------------------------------


@dataclass
class _Text:
    text: str
    at_ms: int
    wall: float


@dataclass
class _Fault:
    """The speaker could not synthesize: the brain hands the caller over."""

    reason: str


@dataclass
class _WrapUp:
    """The call reached `max_call_s`."""


@dataclass
class _Stats:
    bad_messages: Counter = field(default_factory=Counter)
    barge_ins: int = 0


class CallSession:
    """Runs one Twilio Media Stream from `connected` to `stop` (or until the agent hangs up)."""

    def __init__(self, socket: Socket, deps: CallDeps) -> None:
        self.socket = socket
        self.deps = deps
        self.settings = deps.settings
        self.lines = deps.lines
        self.stats = _Stats()
        self.log: CallLog  # once the stream has claimed its call (`_begin`)
        self._inputs: asyncio.Queue = asyncio.Queue()  # what the brain handles, in order
        self.ears = Ears(deps.transcriber, deps.settings.stt_timeout_s, lambda: self._sid)
        self.turns = Turns(
            deps.settings,
            self.ears.guess,
            emit=self._inputs.put_nowait,
            barge_in=self._barge_in,
            speaking=self._audible,
            busy=lambda: self._brain_busy or not self._inputs.empty(),
            now_ms=self.now_ms,
        )
        self.speaker: Speaker | None = None  # once the stream has started
        self.tape = Tape()
        self.stream_sid = ""
        self.info: CallInfo | None = None
        self.agent: CallAgent | None = None
        self.events: CallEvents | None = None
        self.end_reason: str | None = None
        self.transfer_to: str | None = None
        self.admission: Admission | None = None
        self._turned_away = False
        self._stt_failures = 0
        self._notice: Say | None = None  # the recording notice, once it is on its way

        self._tasks: list[asyncio.Task] = []
        self._done = asyncio.Event()
        self._brain_busy = False
        self._t0 = time.monotonic()
        self._last_ts = 0
        self._last_ts_wall = self._t0
        self._injected = False  # a transcript was injected (replay's text turns): no audio comes
        self._refused = False  # closed before `start`

    # --- clock ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Stream time: the last media timestamp plus the wall time since it arrived."""
        return self._last_ts + int((time.monotonic() - self._last_ts_wall) * 1000)

    @property
    def _sid(self) -> str:
        return self.info.call_sid if self.info else "?"

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
                self.tape.finish(self._unheard_from())
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
        self._last_ts, self._last_ts_wall = self.now_ms(), time.monotonic()
        self.turns.quiet(gap_ms, self._last_ts)
        return True

    def _bad(self, kind: str, detail: str) -> None:
        """Log each kind of protocol error once per call; count every occurrence."""
        self.stats.bad_messages[kind] += 1
        if self.stats.bad_messages[kind] == 1:
            log.warning("call %s: ignoring bad message (%s): %s", self._sid, kind, detail[:200])

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
        if self.info is None or self.speaker is None:
            self._bad("before_start", f"{type(msg).__name__.lower()} before start")
            return True
        if isinstance(msg, twilio.Mark):
            self.speaker.heard(msg.name)
        elif isinstance(msg, twilio.Stop):
            self.end_reason = self.end_reason or "caller_hangup"
            return False
        elif self._turned_away:  # the busy message plays: only its echo and the end matter
            pass
        elif isinstance(msg, twilio.Media):
            self._on_media(msg)
        elif isinstance(msg, twilio.Dtmf):
            self.turns.key(msg.digit)
        elif isinstance(msg, twilio.Inject):
            self._on_inject(msg)
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
        call_log = await CallLog.claim(self.deps.store, start.call_sid, start.stream_sid)
        if call_log is None:
            log.warning("media socket for %s refused: the call has its stream", start.call_sid)
            await self.socket.close(1008)
            return False
        if start.encoding != "audio/x-mulaw" or start.sample_rate != SAMPLE_RATE:
            self._bad("media_format", f"{start.encoding}@{start.sample_rate} (expected µ-law 8k)")
        self.log = call_log
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
            self.speaker = self._speaker_for(Tape())
            return await self._turn_away(self.admission.reason or "max_calls")
        await self.log.opened(self.info)
        await self.events.record("call.started", direction=direction)
        self.agent = self.deps.make_agent(self.info, self.events)
        s = self.settings
        self.tape = Tape.start(s.recording, s.recordings_dir, start.call_sid)
        self.speaker = self._speaker_for(self.tape)
        self._tasks = [
            asyncio.create_task(self._run_brain(), name=f"brain-{start.call_sid}"),
            asyncio.create_task(self.speaker.run(), name=f"speaker-{start.call_sid}"),
            asyncio.create_task(self._call_timer(), name=f"timer-{start.call_sid}"),
        ]
        log.info("call %s started (%s from %s)", start.call_sid, direction, self.info.from_number)
        return True

    def _speaker_for(self, tape: Tape) -> Speaker:
        s = self.settings
        voice = Voice(
            self.deps.synthesizer, s.tts_timeout_s, self.deps.canned, self.lines.technical_problem
        )
        return Speaker(
            self.socket,
            self.stream_sid,
            voice,
            log=self.log,
            tape=tape,
            now_ms=self.now_ms,
            done=self._done,
            lost=self._lost,
            failed=self._tts_failed,
            sid=self._sid,
        )

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
        assert self.info is not None and self.speaker is not None
        try:
            text = busy_text(self.settings, self.info.direction)
            clip = await self.deps.canned.get(
                self.deps.synthesizer, text, self.settings.tts_timeout_s
            )
            seq = self.log.next_seq()
            await self.log.agent_turn(seq, text, source="canned")
            await self.speaker.play_clip(clip, "busy", seq)
            await self.speaker.wait_heard("busy", len(clip) / SAMPLE_RATE)
        finally:
            self._done.set()

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

    # --- from the caller -----------------------------------------------------------------------

    def _on_media(self, media: twilio.Media) -> None:
        if media.track not in ("inbound", "inbound_track"):
            return
        self._last_ts = media.timestamp
        self._last_ts_wall = time.monotonic()
        pcm = mulaw_decode(media.payload)
        self.tape.caller(media.timestamp, pcm)
        self.turns.audio(pcm, media.timestamp)

    def _on_inject(self, msg: twilio.Inject) -> None:
        if not self.settings.allow_injection:
            self._bad("injection_refused", "injected transcript while injection is off")
            return
        at_ms = msg.timestamp if msg.timestamp is not None else self.now_ms()
        self._injected = True
        if self.turns.typed(at_ms):
            self._inputs.put_nowait(_Text(msg.text, at_ms, time.monotonic()))

    def _audible(self) -> bool:
        return self.speaker is not None and self.speaker.audible()

    def _barge_in(self, barge_in: BargeIn) -> None:
        """The caller spoke over the agent: its audio stops now, unless it must be heard out."""
        cut = self.speaker.cut() if self.speaker is not None else None
        if cut is None:
            return
        self.stats.barge_ins += 1
        log.info("call %s: barge-in at %d ms", self._sid, barge_in.at_ms)
        if self.events is not None:
            self._spawn(self.events.record("barge_in", interrupted_turns=cut))
        for seq in cut:
            self.log.interrupted(seq)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks = [t for t in self._tasks if not t.done()]  # bounded over a long call
        self._tasks.append(task)

    def _lost(self) -> None:
        """Sending failed: the caller has hung up."""
        self.end_reason = self.end_reason or "socket_closed"
        self._done.set()

    def _tts_failed(self, seq: int, say: Say, first: bool) -> None:
        """The speaker could not synthesize `say` (it dropped the rest of the reply): the
        turn was never heard, the call is not recorded if that was the recording notice, and
        on the first failure the brain hands the caller to a person."""
        self.log.interrupted(seq)
        if say is self._notice:  # without the notice heard, the call must not be recorded
            self.tape.abandon("the recording notice could not be spoken")
        if first:
            self._inputs.put_nowait(_Fault("tts_failed"))

    # --- the brain -----------------------------------------------------------------------------

    async def _run_brain(self) -> None:
        """The brain, with a last resort: should it die, the caller goes to a person."""
        try:
            await self._brain()
        except Exception:
            log.exception("call %s: the agent's task failed", self._sid)
            await self._last_resort()

    async def _brain(self) -> None:
        assert self.agent is not None and self.info is not None and self.speaker is not None
        input_ms = 0
        if self.info.direction == "outbound":
            input_ms = await self.turns.opening()
            log.info("call %s: greeting the callee at %d ms", self._sid, input_ms)
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
        await self.speaker.finish()
        self._done.set()

    def _greeting(self) -> AsyncIterator[Any]:
        """The agent's greeting; on a recorded call, the recording notice first."""
        assert self.agent is not None
        if not self.tape.on:
            return self.agent.start()
        self._notice = Say(self.settings.recording_notice, barge_in=False)
        return _chain(_single(self._notice), self.agent.start())

    async def _recover(self, item: object, exc: Exception) -> None:
        """After a failed turn: the hearing-trouble path when speech to text failed, else an
        apology. Never raises: the brain must outlive any turn."""
        what = type(item).__name__ if item is not None else "the greeting"
        try:
            if isinstance(exc, HearingFailed):
                log.error("call %s: speech to text failed", self._sid, exc_info=exc)
                await self._stt_failed()
            else:
                log.error("call %s: failed to handle %s", self._sid, what, exc_info=exc)
                await self._reply_with(_single(Say(self.lines.apology)), self.now_ms(), None)
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
        lead = () if apologised else (Say(self.lines.technical_problem, barge_in=False),)
        transfer = Transfer(self.settings.human_number, f"Handed over: {reason}")
        await self._reply_with(_single(*lead, transfer), self.now_ms(), None)

    async def _wrap_up(self) -> None:
        assert self.agent is not None
        await self._reply_with(self.agent.wrap_up("max_duration"), self.now_ms(), None)
        self.end_reason = self.end_reason or "max_duration"

    async def _last_resort(self) -> None:
        """The brain is gone: apologise with the recorded clip and hand the caller to a person."""
        assert self.speaker is not None
        self.transfer_to = self.settings.human_number
        self.end_reason = "transfer"
        with contextlib.suppress(Exception):
            await self.log.transferred(self.transfer_to)
        if self.events is not None:
            with contextlib.suppress(Exception):
                await self.events.record("escalation", reason="agent_failed")
        clip = self.deps.canned.ready(self.lines.technical_problem) or tone()
        await self.speaker.play_clip(clip, "fault")
        await self.speaker.wait_heard("fault", len(clip) / SAMPLE_RATE)
        self._done.set()

    async def _process(self, item: object) -> None:
        assert self.agent is not None
        if isinstance(item, Heard):
            await self._process_heard(item)
        elif isinstance(item, _Text):
            text = redact_card_numbers(item.text)
            self.log.caller_turn(text, item.at_ms, item.at_ms, "text")
            await self._reply_with(self.agent.hear(text, 1.0), item.at_ms, InputClock.at(item.wall))
        elif isinstance(item, Keys):
            digits = redact_card_numbers(item.digits)
            self.log.caller_turn(digits, item.at_ms, item.at_ms, "dtmf")
            await self._reply_with(self.agent.keypad(digits), item.at_ms, InputClock.at(item.wall))
        elif isinstance(item, Silence):
            await self._reply_with(self.agent.silence(item.seconds), item.at_ms, None)
        elif isinstance(item, _Fault):
            await self._hand_over(item.reason, apologised=True)
        elif isinstance(item, _WrapUp):
            await self._wrap_up()

    async def _process_heard(self, item: Heard) -> None:
        assert self.agent is not None
        u = item.utterance
        transcript, speculative = await self.ears.hear(item, self.turns.hints)
        stt_done = time.monotonic()
        clock = InputClock(item.speech_end_wall or item.eot_wall, item.eot_wall, stt_done)
        hearing = Hearing(transcript.decode_ms, transcript.audio_ms, speculative)
        if not transcript.text:
            log.info("call %s: %d ms of speech, nothing recognised", self._sid, u.voiced_ms)
            if u.voiced_ms >= SAY_AGAIN_VOICED_MS:
                await self._reply_with(_single(Say(self.lines.say_again)), u.speech_end_ms, clock)
            else:
                await self._reply_with(_single(), u.speech_end_ms, None)
            return
        # A caller reading out a card number must leave no trace of it: not in the transcript,
        # not in what the agent keeps (summaries, tickets).
        text = redact_card_numbers(transcript.text)
        self.log.caller_turn(
            text, u.start_ms, u.speech_end_ms, "audio", transcript.confidence, hearing
        )
        if item.over_agent_ms is not None:  # said while the agent was still talking
            if is_backchannel(text):  # "uh-huh": the agent goes on; the input is answered
                assert self.events is not None
                await self.events.record("backchannel", text=text)
                await self._reply_with(_single(), u.speech_end_ms, None)
                return
            self._barge_in(BargeIn(item.over_agent_ms))  # it takes the turn after all
        guessed = transcript.digits_fallback  # a number read back before it is used
        heard = self.agent.hear(text, transcript.confidence, guessed=guessed)
        await self._reply_with(heard, u.speech_end_ms, clock)

    async def _reply_with(
        self, events: AsyncIterator[Any], input_ms: int, clock: InputClock | None
    ) -> None:
        """Drain one agent reply: Says go to the speaker as they come; then the end mark."""
        assert self.speaker is not None
        reply = self.speaker.new_reply()
        first = True
        # Closed however the reply ends (the call hanging up cancels us mid-reply), so an
        # action still running inside the agent is cancelled now, not left to the collector.
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Say):
                    seq = self.log.next_seq()
                    source = "filler" if event.filler else "tts"
                    self.log.agent_turn(seq, event.text, source)  # recorded behind
                    self.speaker.say(reply, seq, event, clock if first else None)
                    first = False
                elif isinstance(event, Hints):
                    self.turns.hints = event
                elif isinstance(event, EndCall):
                    self.end_reason = event.reason
                elif isinstance(event, Transfer):
                    self.transfer_to = event.number
                    self.end_reason = "transfer"
                    self.log.transferred(event.number)
        self.speaker.end_reply(reply, input_ms)

    # --- the end -------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._done.set()  # whatever still waits on the call (speech, a clip's echo) stops now
        await self.turns.close()  # a speculative transcription still queued is dropped
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
                audio_gaps=self.speaker.audio_gaps if self.speaker is not None else 0,
            )
            await self.log.closed(reason, str(summary) if summary is not None else None)
        except Exception:
            log.exception("call %s: could not record the end of the call", self._sid)
        with contextlib.suppress(Exception):
            await self.socket.close(1000)
        if self.stats.bad_messages:
            log.info("call %s: bad messages ignored: %s", self._sid, dict(self.stats.bad_messages))
        log.info("call %s ended: %s", self._sid, reason)

    def _unheard_from(self) -> int | None:
        """When the caller left (what was still queued to play then went unheard), or None."""
        return self.now_ms() if self.end_reason in ("caller_hangup", "socket_closed") else None

    async def _record_recording(self) -> None:
        assert self.events is not None
        recording = self.tape.finish(self._unheard_from())
        if recording is not None:
            await self.events.record(
                "recording.saved",
                file=recording.path.name,
                duration_s=round(recording.duration_s, 2),
            )
        elif self.tape.error is not None:
            await self.events.record("recording.failed", error=self.tape.error)


async def _single(*events: Any) -> AsyncIterator[Any]:
    for event in events:
        yield event


async def _chain(*streams: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for stream in streams:
        async for event in stream:
            yield event
