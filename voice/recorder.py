"""A call recording, written as the call goes: a stereo 8 kHz 16-bit WAV, caller left, agent right.

The caller's audio comes with Twilio's media timestamps and is written at its stream time.
The agent's audio is placed at the stream time it was sent, or right after the agent audio
before it (Twilio plays what it is sent in order), and waits in a small queue until the
caller's clock reaches it; a `clear` (barge-in) drops what the caller never heard. Nothing
holds the whole call: the queue holds at most the reply being played, the file is written in
one-second blocks, and the header is fixed after every block, so even a recording cut short
by a crash opens in any player.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import SAMPLE_RATE

__all__ = ["CallRecorder", "Recording", "Tape"]

log = logging.getLogger(__name__)

FLUSH_FRAMES = SAMPLE_RATE  # write in one-second blocks
MAX_AGENT_AHEAD_S = 60.0  # agent audio this far ahead of the caller's clock is written anyway
MAX_GAP_S = 60.0  # a larger jump in the caller's timestamps is a discontinuity, not silence
# A jump in the caller's timestamps is silence only as far as time really passed (plus network
# jitter): timestamps that run ahead of the clock cannot make the file longer than the call.
GAP_JITTER_S = 1.0


@dataclass(frozen=True)
class Recording:
    """A finished recording: where it is and how long it lasts."""

    path: Path
    frames: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / SAMPLE_RATE


class CallRecorder:
    """Streams one call's audio to `<directory>/<CallSid>.wav`."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._caller_wall = clock()  # when the caller's audio last moved the file on
        self._wav: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115 - lives as long as the call
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self._written = 0  # stereo frames handed to the file (or its buffer)
        self._shift = 0  # frames removed from stream time by timestamp discontinuities
        self._agent: deque[tuple[int, np.ndarray]] = deque()  # (start frame, pcm), in order
        self._agent_end = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self.failed: str | None = None

    @classmethod
    def open(
        cls, directory: Path, call_sid: str, clock: Callable[[], float] = time.monotonic
    ) -> CallRecorder:
        """A recorder for `call_sid` in `directory` (created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", call_sid) or "call"
        return cls(directory / f"{name}.wav", clock)

    # --- what the session feeds ---------------------------------------------------------------

    def caller(self, at_ms: int, pcm: np.ndarray) -> None:
        """Caller audio that started at stream time `at_ms`."""
        if self._wav is None or not len(pcm):
            return
        start = self._frame(at_ms)
        now = self._clock()
        passed_s = min(MAX_GAP_S, now - self._caller_wall + GAP_JITTER_S)
        self._caller_wall = now
        if start - self._written > passed_s * SAMPLE_RATE:
            self._shift += start - self._written
            start = self._written
        if start + len(pcm) <= self._written:
            return  # a repeat of audio already written
        if start < self._written:
            pcm = pcm[self._written - start :]
            start = self._written
        if start > self._written:
            self._emit(start - self._written, None)  # a gap in the caller's audio: silence
        self._emit(len(pcm), pcm)

    def agent(self, at_ms: int, pcm: np.ndarray) -> None:
        """Agent audio sent at stream time `at_ms` (played after what was sent before it)."""
        if self._wav is None or not len(pcm):
            return
        start = max(self._frame(at_ms), self._agent_end, self._written)
        self._agent.append((start, pcm.astype(np.int16, copy=False)))
        self._agent_end = start + len(pcm)
        ahead = self._agent_end - self._written - int(MAX_AGENT_AHEAD_S * SAMPLE_RATE)
        if ahead > 0:  # no caller audio is moving the clock on (injected text): write it out
            self._emit(ahead, None)

    def clear(self, at_ms: int) -> None:
        """Twilio dropped the agent audio not yet played at `at_ms` (barge-in, hang-up)."""
        cut = max(self._frame(at_ms), self._written)
        kept: deque[tuple[int, np.ndarray]] = deque()
        for start, pcm in self._agent:
            if start < cut:
                kept.append((start, pcm[: cut - start]))
        self._agent = kept
        self._agent_end = min(self._agent_end, cut)

    def close(self) -> Recording:
        """Write what is left (the agent's last words), fix the header, close the file."""
        if self._wav is not None:
            if self._agent_end > self._written:
                self._emit(self._agent_end - self._written, None)
            self._flush()
            try:
                self._wav.close()
            except OSError as exc:
                self._fail(exc)
            self._wav = None
        return Recording(self.path, self._written)

    @property
    def closed(self) -> bool:
        """Whether `close` has run (or writing failed)."""
        return self._wav is None

    # --- writing ------------------------------------------------------------------------------

    def _frame(self, at_ms: int) -> int:
        return max(0, at_ms * SAMPLE_RATE // 1000 - self._shift)

    def _emit(self, n: int, left: np.ndarray | None) -> None:
        """Frames [written, written+n): `left` (or silence) beside the agent audio due then."""
        while n > 0:  # in blocks, so a long gap never makes one huge array
            step = min(n, FLUSH_FRAMES)
            block = np.zeros((step, 2), dtype="<i2")
            if left is not None:
                block[:, 0] = left[:step]
                left = left[step:]
            self._mix_agent(block)
            self._written += step
            self._buffer.append(block)
            self._buffered += step
            if self._buffered >= FLUSH_FRAMES:
                self._flush()
            n -= step

    def _mix_agent(self, block: np.ndarray) -> None:
        a, b = self._written, self._written + len(block)
        while self._agent and self._agent[0][0] < b:
            start, pcm = self._agent[0]
            end = start + len(pcm)
            lo, hi = max(start, a), min(end, b)
            if hi > lo:
                block[lo - a : hi - a, 1] = pcm[lo - start : hi - start]
            if end > b:
                break
            self._agent.popleft()

    def _flush(self) -> None:
        if not self._buffer or self._wav is None:
            return
        data = np.concatenate(self._buffer).tobytes()
        self._buffer, self._buffered = [], 0
        try:
            self._wav.writeframes(data)  # also fixes the header's sizes
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        """A full disk or a vanished directory ends the recording, never the call."""
        log.error("recording %s stopped: %s", self.path.name, exc)
        self.failed = str(exc)
        wav, self._wav = self._wav, None
        if wav is not None:
            with contextlib.suppress(OSError):
                wav.close()


class Tape:
    """One call's recording as the session sees it: none at all (recording is off, or the file
    could not be opened), running, or abandoned. The session and the speaker feed it without
    asking which; at the end, `finish` says what became of it."""

    def __init__(self, recorder: CallRecorder | None = None, error: str | None = None) -> None:
        self._recorder = recorder
        self.error = error  # why there is no recording, when there was meant to be one

    @classmethod
    def start(cls, enabled: bool, directory: Path, call_sid: str) -> Tape:
        """Recording `call_sid` into `directory` if `enabled`; a file that cannot be opened
        leaves the call unrecorded, never unanswered."""
        if not enabled:
            return cls()
        try:
            return cls(CallRecorder.open(directory, call_sid))
        except OSError as exc:
            log.error("call %s: cannot record (%s); the call goes on unrecorded", call_sid, exc)
            return cls(error=str(exc))

    @property
    def on(self) -> bool:
        """Whether this call is being recorded."""
        return self._recorder is not None

    def caller(self, at_ms: int, pcm: np.ndarray) -> None:
        """Caller audio that started at stream time `at_ms`."""
        if self._recorder is not None:
            self._recorder.caller(at_ms, pcm)

    def agent(self, at_ms: int, pcm: np.ndarray) -> None:
        """Agent audio sent at stream time `at_ms`."""
        if self._recorder is not None:
            self._recorder.agent(at_ms, pcm)

    def clear(self, at_ms: int) -> None:
        """The agent audio not yet played at `at_ms` was dropped."""
        if self._recorder is not None:
            self._recorder.clear(at_ms)

    def abandon(self, why: str) -> None:
        """Stop recording and delete what was written (the caller never heard the notice)."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        log.warning("recording %s abandoned: %s", recorder.path.name, why)
        self.error = why
        with contextlib.suppress(OSError):
            recorder.close()
            recorder.path.unlink()

    def finish(self, unheard_from_ms: int | None = None) -> Recording | None:
        """Close the recording (once): what it holds, or None (`error` says why, if it was
        meant to record). `unheard_from_ms`: the caller left then, so agent audio still
        queued after it was never heard."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        if unheard_from_ms is not None:
            recorder.clear(unheard_from_ms)
        try:
            recording = recorder.close()
        except Exception as exc:
            log.exception("could not finish the recording %s", recorder.path.name)
            self.error = str(exc)
            return None
        if recorder.failed:
            self.error = recorder.failed
            return None
        return recording
