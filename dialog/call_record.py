"""What a call records as it goes: its events, kept for the summary, and the intents heard.

`CallRecord` is the events sink the call's services write to: it forwards every event to the
shop's sink and keeps it, so the summary and the report can say what happened (a handoff, a
refund) without reading the store back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["CallRecord"]

_log = logging.getLogger(__name__)


class CallRecord:
    """One call's events (forwarded to `sink` and kept) and the intents recognised, in order."""

    def __init__(self, sink: Any, call_sid: str, timeout: float) -> None:
        self.sink = sink
        self.recorded: list[tuple[str, str | None, dict[str, Any]]] = []
        self.intents: list[str] = []
        self._call_sid = call_sid
        self._timeout = timeout

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
