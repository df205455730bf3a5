"""When the caller's turn is over: the one owner of that question in a call.

`Turns` gets every frame of caller audio and every keypad press, and decides what the brain
hears and when: a finished turn of speech (`Heard`), a keypad entry (`Keys`), a stretch of
nobody saying anything (`Silence`), and, on an outbound call, when the callee's "Hello?" has
ended. The urgent signal, the caller taking the turn while the agent talks (`BargeIn`), is
not queued with those: it goes straight to whoever stops the agent's audio. Not every sound
over the agent takes the turn: "uh-huh", "okay", "mm" say the caller is listening. Speech over
the agent stops it once it has gone on for `vad_barge_in_min_ms` (`vad_backchannel_max_ms`
when its transcript at a pause reads as a backchannel: "uh … huh" said slowly), or sooner when
the transcript at a pause is more than a backchannel ("wait", "no", a question); a short
utterance that ends while the agent still talks reaches the brain marked
(`Heard.over_agent_ms`) so that, heard as a backchannel, it is let pass, and otherwise stops
the agent then.

`Segmenter` (vad.py) only says which frames are speech; it ends an utterance itself only at
the longest wait, as a backstop, so every ordinary end of turn is decided here, by the rules
below.

A caller's turn ends after a stretch of silence; waiting for it and only then transcribing
costs both. `TurnTaker` starts transcribing at a short pause (the segmenter's `Pause`, a
quarter of a second), while the caller may still go on: if they stay silent, that transcript
*is* the turn's, and nothing is transcribed again; if they speak, it is dropped (cancelled
while queued, ignored if already running).

When the turn is over, given the silence so far, that transcript (when ready), what the agent
asked and this caller's pace, is `voice.turn_end.EndOfTurn`'s prediction: a whole order number
or a plain "yes" ends the turn after a short silence, a number read out in groups or a
sentence that trails off ("I'd like to return the…", "and also…", "um") is held for the
caller to go on, and a caller who has paused long before is given as long again where the
transcript cannot tell. With the predictor's techniques off, the rules are those it grew
from: a short answer to a yes/no question may end after `quick_end_of_turn_ms` when it reads
as finished; with the pauses inside 102 caller clips stretched to 500 ms, ending any turn
early after a finished-looking sentence cut 44-62 % of them in two, against 4 % for the plain
600 ms (README "Latency and capacity"), so other turns wait `end_of_turn_ms`, or
`long_answer_end_of_turn_ms` when a long answer is expected, and one that trails off up to
`unfinished_end_of_turn_ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from dialog.events import Hints
from dialog.understanding import is_backchannel
from voice.audio import FRAME_MS, SAMPLE_RATE
from voice.settings import Settings
from voice.stt import Transcript
from voice.turn_end import (
    LONG_ANSWERS,
    PACE_RESUME_MS,
    SHORT_ANSWERS,
    EndOfTurn,
    PredictorOptions,
    TurnOptions,
    sounds_finished,
)
from voice.vad import Pause, Segmenter, SpeechStarted, Utterance

__all__ = [
    "LONG_ANSWERS",
    "OPENING_SILENCE_S",
    "SHORT_ANSWERS",
    "BargeIn",
    "Heard",
    "Keys",
    "Silence",
    "TurnOptions",
    "TurnTaker",
    "Turns",
    "sounds_finished",
]

log = logging.getLogger(__name__)

FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
_SILENT_FRAME = np.zeros(FRAME_SAMPLES, dtype=np.int16)
MIN_UTTERANCE_VOICED_MS = 120  # less voiced speech than this is a click or a breath, not a turn
OPENING_SILENCE_S = 1.5  # an outbound callee who picks up and says nothing is greeted after this
MAX_SILENT_FRAMES = 500  # a quiet stream is heard as at most this much silence at a time

Transcribe = Callable[[np.ndarray, Hints | None], Awaitable[Transcript]]


@dataclass
class _Guess:
    task: asyncio.Task
    samples: int
    speech_end_ms: int
    hints: Hints | None
    held: bool = False


class TurnTaker:
    """One per call: runs the speculative transcription and says when the turn is over."""

    def __init__(
        self,
        options: TurnOptions,
        transcribe: Transcribe,
        predictor: PredictorOptions | None = None,
    ) -> None:
        self.options = options
        self.end = EndOfTurn(options, predictor)
        self._transcribe = transcribe
        self._guess: _Guess | None = None
        # Told when a speculative transcript comes in, so the turn can end at once rather
        # than at the next frame of audio (`Turns` sets it).
        self.on_ready: Callable[[], None] | None = None
        self.started = 0  # speculative transcriptions started
        self.dropped = 0  # ... dropped because the caller went on
        self.used = 0  # ... that became the turn's transcript
        self.held = 0  # turns held past the usual silence on what their transcript said

    def paused(self, pause: Pause, hints: Hints | None) -> None:
        """The caller paused: transcribe what they said so far, in the background."""
        if not self.options.pause_ms:
            return
        self.spoke()
        task = asyncio.get_running_loop().create_task(self._transcribe(pause.pcm, hints))
        self._guess = _Guess(task, len(pause.pcm), pause.speech_end_ms, hints)
        self.started += 1
        task.add_done_callback(self._came_in)

    def _came_in(self, task: asyncio.Task) -> None:
        guess = self._guess
        if guess is not None and guess.task is task and self.on_ready is not None:
            self.on_ready()

    def spoke(self) -> None:
        """The caller went on speaking: what was being transcribed is not the turn."""
        guess, self._guess = self._guess, None
        if guess is not None:
            self.dropped += 1
            _drop(guess.task)

    def end_of_turn_ms(self, hints: Hints | None) -> int:
        """The silence that ends a turn, given what the agent expects."""
        return self.end.usual_ms(hints)

    def turn_over(self, silent_ms: int, hints: Hints | None) -> bool:
        """After `silent_ms` of silence inside an utterance: is the caller's turn over?
        (`EndOfTurn.over`, on the speculative transcript when it is ready.)"""
        guess = self._guess
        pending = guess is not None and not guess.task.done()
        ready = self.ready()
        text = ready.text if ready is not None else None
        over = self.end.over(silent_ms, hints, text, pending)
        past_usual = silent_ms >= self.end.usual_ms(hints)
        if not over and past_usual and text is not None and guess is not None and not guess.held:
            guess.held = True  # waited past the usual silence on what was said
            self.held += 1
        return over

    def ready(self) -> Transcript | None:
        """The speculative transcript, if it has finished well."""
        guess = self._guess
        if guess is None or not guess.task.done() or guess.task.cancelled():
            return None
        if guess.task.exception() is not None:
            return None
        return guess.task.result()

    def take(self, utterance: Utterance, hints: Hints | None) -> asyncio.Task | None:
        """The transcription of exactly this utterance with these hints, if one is running or
        done (the caller now owns it); any other speculative work is dropped."""
        guess, self._guess = self._guess, None
        if guess is None:
            return None
        same = (
            guess.samples == len(utterance.pcm)
            and guess.speech_end_ms == utterance.speech_end_ms
            and guess.hints is hints
        )
        if not same:
            self.dropped += 1
            _drop(guess.task)
            return None
        self.used += 1
        return guess.task

    def close(self) -> None:
        """The call is over: drop what is still running."""
        self.spoke()


def _drop(task: asyncio.Task) -> None:
    if task.done():
        with contextlib.suppress(BaseException):
            task.exception()  # retrieved: a failed guess is nobody's error
    else:
        task.cancel()


# --- what the brain hears -----------------------------------------------------------------------


@dataclass
class Heard:
    """The caller finished a turn of speech."""

    utterance: Utterance
    speech_end_wall: float  # `time.monotonic` at the last voiced frame
    eot_wall: float  # ... when the turn was judged over
    early: asyncio.Task | None = None  # its transcription, started at a pause (`TurnTaker`)
    # When it began over the agent's audio, which was still playing when it ended (a short
    # utterance: maybe a backchannel), else None.
    over_agent_ms: int | None = None


@dataclass
class Keys:
    """A keypad entry, ended by `#` or by a pause in pressing."""

    digits: str
    at_ms: int
    wall: float


@dataclass
class Silence:
    """Nobody has said anything, and nothing was waiting, for `seconds`."""

    seconds: float
    at_ms: int


@dataclass(frozen=True)
class BargeIn:
    """The caller started speaking while the agent's audio was playing. Urgent: handed to
    the speaker at once, never queued behind what the brain is doing."""

    at_ms: int


@dataclass
class _Overlap:
    """Speech that began while the agent was talking."""

    at_ms: int
    voiced_ms: int
    cut: bool = False  # it has stopped the agent
    listening: bool = False  # its transcript at a pause read as a backchannel


class Turns:
    """One per call: caller audio and keypad presses in, turns out.

    Args:
        settings: the `VAD_*` settings, `silence_reprompt_s` and `dtmf_timeout_s`.
        transcribe: speech to text for a speculative transcription at a pause.
        emit: takes each `Heard`, `Keys` and `Silence`, in order (the brain's queue).
        barge_in: called at once with a `BargeIn` when the caller speaks over the agent.
        speaking: whether the agent's audio is playing (or about to).
        busy: whether the brain has work (a turn in hand or queued): no silence counts then.
        now_ms: stream time.
    """

    def __init__(
        self,
        settings: Settings,
        transcribe: Transcribe,
        *,
        emit: Callable[[Heard | Keys | Silence], None],
        barge_in: Callable[[BargeIn], None],
        speaking: Callable[[], bool],
        busy: Callable[[], bool],
        now_ms: Callable[[], int],
    ) -> None:
        self.hints: Hints | None = None  # what the agent last said it expects
        self.taker = TurnTaker(settings.turn_options(), transcribe, settings.predictor_options())
        self.taker.on_ready = self._transcript_came_in
        # The segmenter only ends the longest turn; `taker` ends the others (`_frame`).
        self.segmenter = Segmenter(
            settings.vad_options(end_of_turn_ms=self.taker.options.longest_ms)
        )
        self._barge_in_min_ms = settings.vad_barge_in_min_ms
        self._backchannel_max_ms = max(settings.vad_backchannel_max_ms, self._barge_in_min_ms)
        self._overlap: _Overlap | None = None
        self._silence_reprompt_s = settings.silence_reprompt_s
        self._dtmf_timeout_s = settings.dtmf_timeout_s
        self._emit = emit
        self._barge_in = barge_in
        self._speaking = speaking
        self._busy = busy
        self._now_ms = now_ms
        self._residue = np.zeros(0, dtype=np.int16)
        self._frame_end_ms = 0  # stream time at the end of the last frame heard
        self._idle_frames = 0
        self._last_voiced_wall = 0.0
        self._last_speech_end_ms: int | None = None  # stream time the last turn's speech ended
        self._dtmf = ""
        self._dtmf_task: asyncio.Task | None = None
        # Outbound calls: resolved with the stream time at which the callee's opening ended.
        self._opening: asyncio.Future[int] | None = None
        self._opening_frames = 0
        self._media_seen = False

    # --- audio -------------------------------------------------------------------------------

    def audio(self, pcm: np.ndarray, timestamp: int) -> None:
        """One media message's caller audio, starting at stream time `timestamp`."""
        self._media_seen = True
        if self._residue.size:
            pcm = np.concatenate([self._residue, pcm])
        n_frames = len(pcm) // FRAME_SAMPLES
        self._residue = pcm[n_frames * FRAME_SAMPLES :]
        for i in range(n_frames):
            self._frame(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES], timestamp + i * FRAME_MS)

    def quiet(self, gap_ms: int, until_ms: int) -> None:
        """The stream sent nothing for `gap_ms` up to stream time `until_ms`: heard as the
        silence Twilio's own silent frames would have carried (at most `MAX_SILENT_FRAMES`)."""
        frames = min(gap_ms // FRAME_MS, MAX_SILENT_FRAMES)
        for i in range(frames):
            self._frame(_SILENT_FRAME, until_ms - (frames - i) * FRAME_MS)

    def _frame(self, frame: np.ndarray, at_ms: int) -> None:
        self._frame_end_ms = at_ms + FRAME_MS
        if self._awaiting_opening():
            self._opening_frame(frame, at_ms)
            return
        gap_ms = self.segmenter.silent_ms  # silence inside the utterance before this frame
        for event in self.segmenter.feed(frame, at_ms):
            if isinstance(event, SpeechStarted):
                self._idle_frames = 0
                self._resumed(event.at_ms)
                if self._speaking():
                    self._overlap = _Overlap(event.at_ms, self.segmenter.options.min_speech_ms)
                    if not self._barge_in_min_ms:
                        self._cut()
            elif isinstance(event, Pause):
                self.taker.paused(event, self.hints)
            else:
                self._heard(event)
        if self.segmenter.last_frame_voiced:
            if gap_ms and self.segmenter.in_speech:
                self.taker.end.pace.paused(gap_ms)  # they paused that long and went on
            self._last_voiced_wall = time.monotonic()
            self.taker.spoke()
            self._overlap_goes_on()
        elif self.segmenter.in_speech:
            self._judge_pause()
        self._count_silence()

    def _judge_pause(self) -> None:
        """In a silence inside an utterance: does it stop the agent, is the turn over?"""
        self._overlap_paused()
        if self.taker.turn_over(self.segmenter.silent_ms, self.hints):
            utterance = self.segmenter.end_turn(self._frame_end_ms)
            if utterance is not None:
                self._heard(utterance)

    def _transcript_came_in(self) -> None:
        """The speculative transcript is ready between two frames: judged now, it may end
        the turn up to a frame sooner (the transcript is what most turns wait for)."""
        seg = self.segmenter
        if seg.in_speech and not seg.last_frame_voiced and not self._awaiting_opening():
            self._judge_pause()

    def _resumed(self, at_ms: int) -> None:
        """Speech starts soon after a turn we ended: the caller was not done, and this is
        how long they pause (what the next turns will wait for)."""
        last = self._last_speech_end_ms
        if last is not None and 0 <= at_ms - last <= PACE_RESUME_MS:
            self.taker.end.pace.paused(at_ms - last)

    def _cut(self) -> None:
        """The speech over the agent takes the turn: the agent stops now."""
        overlap = self._overlap
        if overlap is not None and not overlap.cut:
            overlap.cut = True
            self._barge_in(BargeIn(overlap.at_ms))

    def _overlap_goes_on(self) -> None:
        """Speech over the agent that goes on this long is no backchannel; one whose
        transcript so far is one ("uh … huh" said slowly) may go on longer."""
        overlap = self._overlap
        if overlap is not None and not overlap.cut:
            overlap.voiced_ms += FRAME_MS
            limit = self._backchannel_max_ms if overlap.listening else self._barge_in_min_ms
            if overlap.voiced_ms >= limit:
                self._cut()

    def _overlap_paused(self) -> None:
        """At a pause in speech over the agent: its transcript, once ready, shows whether it
        was only a backchannel."""
        overlap = self._overlap
        if overlap is None or overlap.cut:
            return
        ready = self.taker.ready()
        if ready is None or not ready.text.strip():
            return
        if is_backchannel(ready.text):
            overlap.listening = True
        else:
            self._cut()

    def _heard(self, utterance: Utterance) -> None:
        """The caller's turn is over: hand it on, with its transcription if one was started
        at the last pause on exactly this audio."""
        early = self.taker.take(utterance, self.hints)
        overlap, self._overlap = self._overlap, None
        self._last_speech_end_ms = utterance.speech_end_ms
        if utterance.voiced_ms < MIN_UTTERANCE_VOICED_MS:
            if early is not None:
                early.cancel()
            return
        held = overlap is not None and not overlap.cut and self._speaking()
        over_agent_ms = overlap.at_ms if held and overlap is not None else None
        self._emit(Heard(utterance, self._last_voiced_wall, time.monotonic(), early, over_agent_ms))

    def _count_silence(self) -> None:
        """Frames of silence while nobody speaks and nothing is pending become a `Silence`."""
        if self.segmenter.in_speech or self._busy() or self._speaking() or self._dtmf:
            self._idle_frames = 0
            return
        self._idle_frames += 1
        seconds = self._idle_frames * FRAME_MS / 1000
        if seconds >= self._silence_reprompt_s:
            self._idle_frames = 0
            self._emit(Silence(seconds, self._now_ms()))

    # --- the outbound opening ----------------------------------------------------------------

    async def opening(self) -> int:
        """On an outbound call, before the greeting: the stream time at which the callee's
        first words ("Hello?") ended, or `OPENING_SILENCE_S` of silence if they said nothing.
        Those words are dropped: nobody asked anything yet."""
        self._opening = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        while not self._opening.done():
            # A stream that carries no caller audio at all cannot show silence: use the clock.
            if not self._media_seen and time.monotonic() - started >= OPENING_SILENCE_S:
                self._end_opening(self._now_ms())
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._opening), timeout=0.1)
        return self._opening.result()

    def _awaiting_opening(self) -> bool:
        return self._opening is not None and not self._opening.done()

    def _end_opening(self, at_ms: int) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.set_result(at_ms)

    def _opening_frame(self, frame: np.ndarray, at_ms: int) -> None:
        for event in self.segmenter.feed(frame, at_ms):
            if isinstance(event, SpeechStarted):
                self._opening_frames = 0
            elif isinstance(event, Utterance):
                self._answered(event)
                return
        # The segmenter waits for the longest turn; a "Hello?" ends at the ordinary one.
        if self.segmenter.silent_ms >= self.taker.end_of_turn_ms(None):
            opening = self.segmenter.end_turn(at_ms + FRAME_MS)
            if opening is not None:
                self._answered(opening)
                return
        if self.segmenter.in_speech:
            self._opening_frames = 0
            return
        self._opening_frames += 1
        if self._opening_frames * FRAME_MS >= OPENING_SILENCE_S * 1000:
            self._end_opening(at_ms + FRAME_MS)

    def _answered(self, opening: Utterance) -> None:
        log.debug("the callee answered (%d ms)", opening.voiced_ms)
        self._end_opening(opening.speech_end_ms)

    # --- other caller input ------------------------------------------------------------------

    def key(self, digit: str) -> None:
        """A keypad press: digits gather until `#` or `dtmf_timeout_s` without a press."""
        self._idle_frames = 0
        if self._awaiting_opening():
            self._end_opening(self._now_ms())
            return
        if self._dtmf_task is not None:
            self._dtmf_task.cancel()
            self._dtmf_task = None
        if digit == "#":
            self._flush_keys()
            return
        self._dtmf += digit
        self._dtmf_task = asyncio.get_running_loop().create_task(self._keys_timeout())

    async def _keys_timeout(self) -> None:
        await asyncio.sleep(self._dtmf_timeout_s)
        self._dtmf_task = None
        self._flush_keys()

    def _flush_keys(self) -> None:
        if self._dtmf:
            self._emit(Keys(self._dtmf, self._now_ms(), time.monotonic()))
        self._dtmf = ""

    def typed(self, at_ms: int) -> bool:
        """The caller's input came as text (replay's injected transcripts): it breaks a
        silence like speech. False when it only ended an outbound call's opening (it answers
        nothing, so it is dropped)."""
        self._idle_frames = 0
        if self._awaiting_opening():
            self._end_opening(at_ms)
            return False
        return True

    async def close(self) -> None:
        """The call is over: drop speculative work and a keypad entry still gathering."""
        self.taker.close()
        task, self._dtmf_task = self._dtmf_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
