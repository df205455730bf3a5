"""What the agent says and when: synthesis, the audio and marks on the wire, gaps, barge-in.

The brain hands the `Speaker` each line of a reply as the agent says it (`say`) and then the
reply's end (`end_reply`); the speaker's task (`run`) synthesizes them sentence by sentence,
the next sentence while the one before is sent, and sends each as 100 ms media messages
followed by a mark `s<turn>.<n>`. Marks tell us what the caller has really heard: Twilio
echoes one once the audio before it has played. At a reply's end the speaker sends
`r<reply>:<ms>`, where `<ms>` is the stream time of the caller input it answers, so anyone
following the stream (Twilio's player, or `replay`) knows where one reply ends.

`cut` is the urgent path for a barge-in: it is called straight from the reading of caller
audio, sends `clear` at once, and drops what was left of the reply; it never waits behind
synthesis. Phrases that must play when synthesis cannot (the busy message, the technical-
problem apology) are rendered ahead by `CannedSpeech`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dialog.events import Say
from voice import twilio
from voice.audio import SAMPLE_RATE, mulaw_decode, mulaw_encode
from voice.call_log import CallLog, InputClock
from voice.pool import on_behalf_of, urgent
from voice.recorder import Tape
from voice.tts import Synthesizer, speech_chunks

__all__ = ["CannedSpeech", "Socket", "Speaker", "tone"]

log = logging.getLogger(__name__)

CHUNK_SAMPLES = SAMPLE_RATE // 10  # agent audio goes out in 100 ms media messages
CLIP_ECHO_GRACE_S = 3.0  # how much longer than a clip lasts we wait for its mark
# More late than this, the next part of a reply already playing leaves a gap the caller hears
# (one 20 ms frame plus 40 ms of network jitter; as `postvoice bench` counts underruns).
AUDIO_GAP_ALLOWANCE_MS = 60
# A line is synthesized ahead of other calls' queued sentences when less audio than this is
# left to play before it (a sentence's synthesis under load takes up to ~0.5 s).
URGENT_LEAD_S = 1.0


class Socket(Protocol):
    """The media WebSocket as a call sees it."""

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the socket is closed."""

    async def send(self, text: str) -> None:
        """Send one text frame."""

    async def close(self, code: int = 1000) -> None:
        """Close the socket."""


def tone() -> bytes:
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
                    return tone()
                clip = self._clips[text] = mulaw_encode(pcm)
        return clip


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


class _SpeakingFailed(Exception):
    """Text to speech raised or timed out."""


@dataclass(frozen=True)
class Voice:
    """How the speaker makes speech: the engine, its deadline, the phrases kept ready, and the
    apology that plays (rendered ahead) when the engine fails."""

    synthesizer: Synthesizer
    timeout_s: float
    canned: CannedSpeech
    apology: str


class Speaker:
    """One per call: everything the agent says goes out through here, in order.

    Args:
        socket: the media socket; `stream_sid` names the stream in what is sent.
        voice: the engine, its deadline and the canned phrases.
        log: where each line's timing is written.
        tape: the call's recording (the agent's side is written as it is sent).
        now_ms: stream time.
        done: set once the call is over; waits stop then.
        lost: called when sending fails (the caller hung up).
        failed: called with the turn and line synthesis failed on (never heard), and whether
            it is the call's first such failure, before the apology plays.
    """

    def __init__(
        self,
        socket: Socket,
        stream_sid: str,
        voice: Voice,
        *,
        log: CallLog,
        tape: Tape,
        now_ms: Callable[[], int],
        done: asyncio.Event,
        lost: Callable[[], None],
        failed: Callable[[int, Say, bool], None],
        sid: str = "?",
    ) -> None:
        self.socket = socket
        self.stream_sid = stream_sid
        self.voice = voice
        self.log = log
        self.tape = tape
        self.audio_gaps = 0  # a reply's audio ran out before its next part was sent
        self._now_ms = now_ms
        self._done = done
        self._lost = lost
        self._failed = failed
        self._sid = sid
        self._jobs: asyncio.Queue[_SayJob | _EndOfReply] = asyncio.Queue()
        self._pending: dict[str, _Pending] = {}
        self._speaking: _SayJob | None = None
        self._reply = 0
        self._cut_reply = -1
        self._play_end_wall = 0.0
        self._playing_reply = -1  # the reply whose audio was sent last
        self._apologised = False

    # --- what the brain hands over -----------------------------------------------------------

    def new_reply(self) -> int:
        """Number the next reply (cutting one drops the rest of it)."""
        self._reply += 1
        return self._reply

    def say(self, reply: int, seq: int, say: Say, clock: InputClock | None) -> None:
        """Queue one line of `reply` (`clock`: of the caller input it answers, on its first)."""
        self._jobs.put_nowait(_SayJob(reply, seq, say, clock, time.monotonic()))

    def end_reply(self, reply: int, input_ms: int) -> None:
        """`reply` is complete: its end mark follows its last line."""
        self._jobs.put_nowait(_EndOfReply(reply, input_ms))

    def heard(self, mark: str) -> None:
        """Twilio echoed `mark`: the caller has heard up to it."""
        self._pending.pop(mark, None)

    def audible(self) -> bool:
        """The agent is speaking: audio sent and not yet played, or a sentence on its way."""
        if self._speaking is not None:
            return True
        if time.monotonic() > self._play_end_wall + CLIP_ECHO_GRACE_S:
            return False  # long played out: a mark never echoed must not keep us "speaking"
        return any(not p.end_of_reply for p in self._pending.values())

    def cut(self) -> list[int] | None:
        """Barge-in: stop the agent's audio now and drop the rest of the reply. The turns
        interrupted, or None when what plays must be heard out (`Say.barge_in=False`)."""
        job = self._speaking
        pending_allow = all(p.barge_in for p in self._pending.values() if not p.end_of_reply)
        if (job is not None and not job.say.barge_in) or not pending_allow:
            return None
        self._cut_reply = self._reply
        cut_seqs = {p.seq for p in self._pending.values() if not p.end_of_reply}
        if job is not None:
            cut_seqs.add(job.seq)
        self._pending.clear()
        self._play_end_wall = time.monotonic()
        self.tape.clear(self._now_ms())
        asyncio.get_running_loop().create_task(self._send(twilio.clear_message(self.stream_sid)))
        return sorted(cut_seqs)

    async def finish(self) -> None:
        """Wait until everything queued has been played to the caller (or clearly won't be)."""
        while (not self._jobs.empty() or self._speaking is not None) and not self._done.is_set():
            await asyncio.sleep(0.02)
        deadline = time.monotonic() + max(0.0, self._play_end_wall - time.monotonic()) + 2.0
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # --- ready-made audio --------------------------------------------------------------------

    async def play_clip(self, clip: bytes, mark: str, seq: int = 0) -> None:
        """Send ready-made µ-law audio and a mark after it; the caller cannot interrupt it."""
        await self._send_mulaw(clip)
        self._pending[mark] = _Pending(seq=seq, barge_in=False)
        await self._send(twilio.mark_message(self.stream_sid, mark))

    async def wait_heard(self, mark: str, seconds: float) -> None:
        """Until the caller has heard up to `mark` (or clearly never will)."""
        deadline = time.monotonic() + seconds + CLIP_ECHO_GRACE_S
        while mark in self._pending and not self._done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # --- the speaker's task ------------------------------------------------------------------

    async def run(self) -> None:
        """Speak what is queued, in order, until cancelled."""
        while True:
            job = await self._jobs.get()
            if isinstance(job, _EndOfReply):
                name = f"r{job.reply}:{job.input_ms}"
                self._pending[name] = _Pending(seq=0, barge_in=True, end_of_reply=True)
                await self._send(twilio.mark_message(self.stream_sid, name))
                continue
            if job.reply <= self._cut_reply:
                continue
            self._speaking = job
            try:
                await self._speak(job)
            except asyncio.CancelledError:
                raise
            except _SpeakingFailed as exc:
                await self._tts_failed(job, exc)
            except Exception:
                log.exception("call %s: could not speak turn %d", self._sid, job.seq)
            finally:
                self._speaking = None

    async def _synthesize(self, text: str, *, waited_for: bool = False) -> np.ndarray:
        """Text to speech with a deadline; any failure becomes `_SpeakingFailed`. `waited_for`:
        the caller hears nothing until it is ready (the pool starts it before the next parts
        of replies already playing)."""
        try:
            async with asyncio.timeout(self.voice.timeout_s):
                # the TTS pool takes turns across calls
                with on_behalf_of(self._sid), urgent(waited_for):
                    return await self.voice.synthesizer.synthesize(text)
        except Exception as exc:
            raise _SpeakingFailed(repr(exc)) from exc

    async def _speak(self, job: _SayJob) -> None:
        sentences = speech_chunks(job.say.text)
        # The caller hears silence soon unless this is ready (a reply's first line, or one after
        # a short "Sure."): it goes before the next parts of replies that have audio queued.
        ahead_s = self._play_end_wall - time.monotonic()
        waited_for = self._playing_reply != job.reply or ahead_s < URGENT_LEAD_S
        first = self._synthesize(sentences[0], waited_for=waited_for) if sentences else None
        upcoming = asyncio.ensure_future(first) if first is not None else None
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
                first = started_ms is None
                if started_ms is None:
                    started_ms = self._now_ms()
                self._note_gap(job, i)
                audio_wall = time.monotonic()
                await self._send_mulaw(mulaw_encode(audio))
                if first:  # recorded once it is on its way, not before
                    self._first_audio(job, started_ms, audio_wall)
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
            self.log.spoken(job.seq, started_ms, end_ms)

    async def _tts_failed(self, job: _SayJob, exc: _SpeakingFailed) -> None:
        """The rest of the reply is dropped; the apology rendered at start-up plays (two beeps
        if there is none), once per call; `failed` tells the session first."""
        log.error("call %s: text to speech failed on turn %d", self._sid, job.seq, exc_info=exc)
        self._cut_reply = max(self._cut_reply, job.reply)
        first = not self._apologised
        self._failed(job.seq, job.say, first)
        if not first:
            return
        self._apologised = True
        apology = self.voice.apology
        clip = self.voice.canned.ready(apology)
        seq = self.log.next_seq()
        self.log.agent_turn(seq, apology if clip else "(two beeps)", "canned")
        await self.play_clip(clip or tone(), f"s{seq}.0", seq)

    def _note_gap(self, job: _SayJob, sentence: int) -> None:
        """Count (and log) a gap inside a reply: its audio sent so far has finished playing
        before this sentence is ready."""
        dry_ms = (time.monotonic() - self._play_end_wall) * 1000
        if self._playing_reply == job.reply and dry_ms > AUDIO_GAP_ALLOWANCE_MS:
            self.audio_gaps += 1
            log.warning(
                "call %s: %d ms gap before sentence %d of turn %d",
                self._sid,
                dry_ms,
                sentence,
                job.seq,
            )
        self._playing_reply = job.reply

    def _first_audio(self, job: _SayJob, started_ms: int, audio_wall: float) -> None:
        """Record where the time went between the caller's last word and our first audio."""
        if job.clock is not None:
            latency = job.clock.latency(job.said_wall, audio_wall)
            self.log.first_audio(job.seq, started_ms, latency)

    async def _send_mulaw(self, mulaw: bytes) -> None:
        self.tape.agent(self._now_ms(), mulaw_decode(mulaw))  # at the stream time it leaves
        for i in range(0, len(mulaw), CHUNK_SAMPLES):
            await self._send(twilio.media_message(self.stream_sid, mulaw[i : i + CHUNK_SAMPLES]))
        now = time.monotonic()
        self._play_end_wall = max(self._play_end_wall, now) + len(mulaw) / SAMPLE_RATE

    async def _send(self, text: str) -> None:
        try:
            await self.socket.send(text)
        except Exception as exc:  # the caller may hang up while we speak
            log.debug("call %s: send failed: %s", self._sid, exc)
            self._lost()
