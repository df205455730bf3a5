"""What a call records as it goes: its transcript, its events, the intents heard, its outcome.

`CallRecord` is also the events sink the call's services write to: it forwards every event to
the shop's sink and keeps it, so the summary and the report can say what happened (a handoff,
a refund) without reading the store back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dialog.events import EndCall, Event, Say, Transfer

__all__ = ["CallRecord"]

_log = logging.getLogger(__name__)


class CallRecord:
    """One call's transcript, the caller's words (for a ticket), its events (forwarded to
    `sink` and kept), the intents recognised in order, and how it ended (`outcome`)."""

    def __init__(self, sink: Any, call_sid: str, timeout: float) -> None:
        self.sink = sink
        self.transcript: list[tuple[str, str]] = []
        self.caller_words: list[str] = []
        self.recorded: list[tuple[str, str | None, dict[str, Any]]] = []
        self.intents: list[str] = []
        self.outcome: str | None = None
        self._call_sid = call_sid
        self._timeout = timeout

    def heard(self, text: str) -> None:
        """What the caller said."""
        self.transcript.append(("caller", text))
        self.caller_words.append(text.strip())

    def typed(self, digits: str) -> None:
        """What the caller typed on the keypad."""
        self.transcript.append(("caller", f"[keypad] {digits}"))

    def said(self, event: Event, handoff_reason: str) -> bool:
        """What the agent said, and how the call ended: whether `event` ends it."""
        if isinstance(event, Say):
            self.transcript.append(("agent", event.text))
        elif isinstance(event, EndCall):
            self.outcome = self.outcome or event.reason
        elif isinstance(event, Transfer):
            self.outcome = f"transferred to a person ({handoff_reason})"
        return isinstance(event, EndCall | Transfer)

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        """The sink's own method, for the actions: keep the event, forward it (may raise)."""
        self.recorded.append((type, order, data))
        await self.sink.record(type, order=order, **data)

    @property
    def handoff(self) -> bool:
        """Whether the call was handed to a person."""
        return any(t == "handoff" for t, _o, _d in self.recorded)

    async def note(self, intent: str, *, order: str | None, score: float) -> None:
        """An intent the caller's words were taken for: kept once, recorded each time."""
        if intent not in self.intents:
            self.intents.append(intent)
        await self.keep("intent", order=order, name=intent, score=score)

    async def keep(self, type: str, *, order: str | None, **data: Any) -> None:
        """Record an event for the agent itself: a failure is logged, never raised, since the
        caller is still on the line."""
        try:
            async with asyncio.timeout(self._timeout):
                await self.record(type, order=order, **data)
        except Exception:
            _log.exception("could not record %s on %s", type, self._call_sid)
