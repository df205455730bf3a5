"""What is recorded of one call: its turns with their timing, and its row in the store.

The session decides what happens; `CallLog` writes it down. Timings are typed records
(`InputClock`, `ReplyLatency`, `Hearing`) rather than string-keyed dicts; what reaches the
store keeps the field names the dashboard, `bench`, `replay` and `soak` read (`latency_ms`,
`eot_wait_ms`, `stt_ms`, `dialog_ms`, `tts_ms`; `stt_ms`, `audio_ms`, `speculative`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dialog.events import CallInfo
from integrations.clock import utc_now
from integrations.store import Store

__all__ = ["CallLog", "Hearing", "InputClock", "ReplyLatency"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplyLatency:
    """Where the time went between the caller's last word and our first audio (ms)."""

    latency_ms: int
    eot_wait_ms: int
    stt_ms: int
    dialog_ms: int
    tts_ms: int

    def record(self) -> dict[str, int]:
        """The turn's `timing` as stored."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class InputClock:
    """Wall-clock moments (`time.monotonic`) of one caller input on its way to a reply:
    the end of speech, the end of the turn, and the transcript ready."""

    speech_end_wall: float
    eot_wall: float
    stt_done: float

    @classmethod
    def at(cls, wall: float) -> InputClock:
        """An input that needs no waiting and no transcribing (typed text, the keypad)."""
        return cls(wall, wall, wall)

    def latency(self, said_wall: float, audio_wall: float) -> ReplyLatency:
        """The breakdown, given when the agent said its line and when its audio left."""
        return ReplyLatency(
            latency_ms=round((audio_wall - self.speech_end_wall) * 1000),
            eot_wait_ms=round((self.eot_wall - self.speech_end_wall) * 1000),
            stt_ms=round((self.stt_done - self.eot_wall) * 1000),
            dialog_ms=round((said_wall - self.stt_done) * 1000),
            tts_ms=round((audio_wall - said_wall) * 1000),
        )


@dataclass(frozen=True, slots=True)
class Hearing:
    """How a caller's spoken turn was transcribed (stored on the caller's turn)."""

    stt_ms: int
    audio_ms: int
    speculative: bool

    def record(self) -> dict[str, Any]:
        """The turn's `timing` as stored."""
        return asdict(self)


class CallLog:
    """One call's writes to the store: blocking work off the event loop, in one place.

    The writes of a call in progress are made in the order they were asked for, each after
    the one before, on a thread, and nothing on a reply's way waits for them: each returns a
    future that a caller may await (`closed`, the last, so a call's record is whole when it is
    done) or leave. A write that fails is logged and loses only what it wrote."""

    def __init__(self, store: Store, call_sid: str) -> None:
        self.store = store
        self.call_sid = call_sid
        self._seq = 0
        self._last: asyncio.Future | None = None  # the write asked for last

    @classmethod
    async def claim(cls, store: Store, call_sid: str, stream_sid: str) -> CallLog | None:
        """The log of the call this stream carries, or None if it may not carry it: a token
        opens one stream, once (not again after the call, not on a second socket)."""
        if not await asyncio.to_thread(store.claim_stream, call_sid, stream_sid):
            return None
        return cls(store, call_sid)

    def next_seq(self) -> int:
        """The next turn number of this call."""
        self._seq += 1
        return self._seq

    def _write(
        self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.Future:
        """`fn(*args, **kwargs)` on a thread once every write asked for before it is done."""
        before = self._last

        async def write() -> None:
            if before is not None:
                await asyncio.wait({before})
            try:
                await asyncio.to_thread(fn, *args, **kwargs)
            except Exception:
                log.exception("call %s: could not store %s", self.call_sid, what)

        self._last = asyncio.ensure_future(write())
        return self._last

    async def opened(self, info: CallInfo) -> None:
        """The call's row, in progress (also for a call turned away)."""
        await asyncio.to_thread(
            self.store.upsert_call,
            info.call_sid,
            from_number=info.from_number,
            to_number=info.to_number,
            direction=info.direction,
            purpose=info.purpose,
            order_ref=info.order_ref,
            status="in-progress",
            started_at=utc_now(),
        )

    def caller_turn(
        self,
        text: str,
        start_ms: int,
        end_ms: int,
        source: str,
        confidence: float | None = None,
        hearing: Hearing | None = None,
    ) -> asyncio.Future:
        """What the caller said (or typed)."""
        return self._write(
            "a caller turn",
            self.store.add_turn,
            self.call_sid,
            self.next_seq(),
            "caller",
            text,
            start_ms=start_ms,
            end_ms=end_ms,
            source=source,
            confidence=confidence,
            timing=hearing.record() if hearing is not None else None,
        )

    def agent_turn(self, seq: int, text: str, source: str = "tts") -> asyncio.Future:
        """A line the agent says; a failure loses the line from the transcript only."""
        return self._write(
            f"agent turn {seq}",
            self.store.add_turn,
            self.call_sid,
            seq,
            "agent",
            text,
            source=source,
        )

    def first_audio(self, seq: int, started_ms: int, latency: ReplyLatency) -> asyncio.Future:
        """A reply's first audio left: when, and how long it took."""
        log.info("call %s: reply latency %s", self.call_sid, latency.record())
        return self._write(
            f"the timing of turn {seq}",
            self.store.update_turn,
            self.call_sid,
            seq,
            timing=latency.record(),
            start_ms=started_ms,
        )

    def spoken(self, seq: int, start_ms: int, end_ms: int) -> asyncio.Future:
        """The stream time a line's audio spans."""
        return self._write(
            f"the span of turn {seq}",
            self.store.update_turn,
            self.call_sid,
            seq,
            start_ms=start_ms,
            end_ms=end_ms,
        )

    def interrupted(self, seq: int) -> asyncio.Future:
        """A line the caller did not hear to its end (barged in on, or never synthesized)."""
        return self._write(
            f"turn {seq} interrupted", self.store.update_turn, self.call_sid, seq, interrupted=1
        )

    def transferred(self, number: str) -> asyncio.Future:
        """The call goes to a person at `number`."""
        return self._write(
            "the transfer", self.store.upsert_call, self.call_sid, transfer_to=number
        )

    async def closed(self, reason: str, summary: str | None) -> None:
        """The call's row, finished: once every write before it is done."""
        await self._write(
            "the end of the call",
            self.store.upsert_call,
            self.call_sid,
            status="completed" if reason != "transfer" else "transferred",
            ended_at=utc_now(),
            end_reason=reason,
            summary=summary,
        )
