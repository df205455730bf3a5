"""`postvoice chat`: the same dialog as a phone call, typed in a terminal.

Each line typed is what the caller says; the agent's replies are printed as they come. A line
starting with `#` is typed on the keypad (`#1001`), `/silence` is a caller who says nothing,
and `/quit` or end of input (Ctrl-D) hangs up. The conversation ends when the agent hangs up
or hands over to a person. Streams are injectable, so tests drive it with strings.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from dialog.events import CallInfo, EndCall, Hints, Say, Transfer
from integrations.redact import redact_card_numbers

__all__ = ["ChatAgent", "ChatRecord", "StoredChat", "run_chat"]

SILENCE_SECONDS = 5.0
"""How long `/silence` stands for."""


class ChatRecord(Protocol):
    """Where the conversation is kept (the call store): `postvoice chat` calls are calls."""

    def started(self, info: CallInfo) -> None: ...
    def turn(self, role: str, text: str, source: str) -> None: ...
    def ended(self, reason: str, summary: str | None, transfer_to: str | None) -> None: ...


class StoredChat:
    """Writes a typed conversation to the call store as a call of channel "typed": its
    turns, `call.started` and `call.ended`, its end; so the dashboard and the metrics count it
    like any call (and can leave typed calls out)."""

    def __init__(self, store: Any, call_sid: str) -> None:
        self.store = store
        self.call_sid = call_sid
        self._seq = 0
        self._t0 = time.monotonic()

    def _ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def _event(self, type: str, **data: Any) -> None:
        self.store.add_event(self.call_sid, type, None, data, self._ms())

    def started(self, info: CallInfo) -> None:
        """The call is answered."""
        self.store.upsert_call(
            self.call_sid,
            from_number=info.from_number,
            to_number=info.to_number,
            direction=info.direction,
            purpose=info.purpose,
            order_ref=info.order_ref,
            status="in-progress",
            started_at=datetime.now(UTC),
            channel="typed",
        )
        self._event("call.started", direction=info.direction, channel="typed")

    def turn(self, role: str, text: str, source: str) -> None:
        """One line of the transcript."""
        self._seq += 1
        at = self._ms()
        self.store.add_turn(
            self.call_sid, self._seq, role, text, start_ms=at, end_ms=at, source=source
        )

    def ended(self, reason: str, summary: str | None, transfer_to: str | None) -> None:
        """The conversation is over."""
        self._event("call.ended", reason=reason, channel="typed")
        self.store.upsert_call(
            self.call_sid,
            status="transferred" if reason == "transfer" else "completed",
            ended_at=datetime.now(UTC),
            end_reason=reason,
            summary=summary,
            transfer_to=transfer_to,
        )


class ChatAgent(Protocol):
    """What the chat needs of `dialog.Agent`."""

    def start(self) -> AsyncIterator[Any]: ...
    def hear(self, text: str, confidence: float) -> AsyncIterator[Any]: ...
    def keypad(self, digits: str) -> AsyncIterator[Any]: ...
    def silence(self, seconds: float) -> AsyncIterator[Any]: ...
    async def end(self, reason: str) -> Any: ...


async def _read_line(stream: TextIO) -> str | None:
    """The next line, without blocking the event loop; None at end of input."""
    line = await asyncio.to_thread(stream.readline)
    return None if line == "" else line.rstrip("\r\n")


class _Nowhere:
    """No record kept (tests of the conversation alone)."""

    def started(self, info: CallInfo) -> None: ...
    def turn(self, role: str, text: str, source: str) -> None: ...
    def ended(self, reason: str, summary: str | None, transfer_to: str | None) -> None: ...


async def _show(
    events: AsyncIterator[Any],
    output: TextIO,
    *,
    show_hints: bool,
    record: ChatRecord,
    transfer: list[str],
) -> str | None:
    """Print what the agent says (and keep it); return why the call ended, if it did."""
    ended = None
    async for event in events:
        if isinstance(event, Say):
            await asyncio.to_thread(record.turn, "agent", event.text, "text")
            output.write(f"agent> {event.text}\n")
        elif isinstance(event, Hints) and show_hints:
            output.write(f"       (expecting {event.slot or 'anything'}"
                         f"{', keypad' if event.expect_dtmf else ''})\n")  # fmt: skip
        elif isinstance(event, Transfer):
            output.write(f"agent> [transferring to {event.number}]\n")
            transfer.append(event.number)
            ended = "transfer"
        elif isinstance(event, EndCall):
            output.write(f"agent> [hangs up: {event.reason}]\n")
            ended = event.reason
        output.flush()
    return ended


async def run_chat(
    agent_factory: Callable[[CallInfo], ChatAgent],
    from_number: str = "anonymous",
    *,
    to_number: str = "+18005550100",
    direction: str = "inbound",
    purpose: str | None = None,
    order_ref: str | None = None,
    input: TextIO | None = None,
    output: TextIO | None = None,
    show_hints: bool = False,
    record: ChatRecord | None = None,
) -> str | None:
    """Hold one typed conversation; returns the agent's summary of it.

    `agent_factory` builds the agent for the call (the server's wiring, minus audio). For an
    outbound call (`direction="outbound"`), `from_number` is the customer being called.
    `record` keeps the call (`StoredChat`); card numbers typed are removed before anything
    hears or keeps them, as on a phone call.
    """
    keep: ChatRecord = record or _Nowhere()
    transfer: list[str] = []
    source = input or sys.stdin
    sink = output or sys.stdout
    if direction == "outbound":
        info = CallInfo("CHAT", to_number, from_number, "outbound", purpose, order_ref)
    else:
        info = CallInfo("CHAT", from_number, to_number, "inbound", purpose, order_ref)
    agent = agent_factory(info)
    await asyncio.to_thread(keep.started, info)

    def show(events: AsyncIterator[Any]):
        return _show(events, sink, show_hints=show_hints, record=keep, transfer=transfer)

    ended = await show(agent.start())
    while ended is None:
        line = await _read_line(source)
        if line is None or line.strip() == "/quit":
            ended = "caller_hangup"
            break
        text = redact_card_numbers(line.strip())
        if not text:
            continue
        if text == "/silence":
            events = agent.silence(SILENCE_SECONDS)
        elif text.startswith("#"):
            digits = text[1:].strip().rstrip("#")
            await asyncio.to_thread(keep.turn, "caller", digits, "dtmf")
            events = agent.keypad(digits)
        else:
            await asyncio.to_thread(keep.turn, "caller", text, "typed")
            events = agent.hear(text, 1.0)
        ended = await show(events)
    summary = await agent.end(ended)
    await asyncio.to_thread(
        keep.ended,
        ended,
        None if summary is None else str(summary),
        transfer[-1] if transfer else None,
    )
    sink.write(f"-- call ended ({ended}). Summary: {summary}\n")
    sink.flush()
    return summary
