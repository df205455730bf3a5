"""`postvoice chat`: the same dialog as a phone call, typed in a terminal.

Each line typed is what the caller says; the agent's replies are printed as they come. A line
starting with `#` is typed on the keypad (`#1001`), `/silence` is a caller who says nothing,
and `/quit` or end of input (Ctrl-D) hangs up. The conversation ends when the agent hangs up
or hands over to a person. Streams are injectable, so tests drive it with strings.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TextIO

from dialog.events import CallInfo, EndCall, Hints, Say, Transfer

__all__ = ["ChatAgent", "run_chat"]

SILENCE_SECONDS = 5.0
"""How long `/silence` stands for."""


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


async def _show(events: AsyncIterator[Any], output: TextIO, *, show_hints: bool) -> str | None:
    """Print what the agent says; return why the call ended, if it did."""
    ended = None
    async for event in events:
        if isinstance(event, Say):
            output.write(f"agent> {event.text}\n")
        elif isinstance(event, Hints) and show_hints:
            output.write(f"       (expecting {event.slot or 'anything'}"
                         f"{', keypad' if event.expect_dtmf else ''})\n")  # fmt: skip
        elif isinstance(event, Transfer):
            output.write(f"agent> [transferring to {event.number}]\n")
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
) -> str | None:
    """Hold one typed conversation; returns the agent's summary of it.

    `agent_factory` builds the agent for the call (the server's wiring, minus audio). For an
    outbound call (`direction="outbound"`), `from_number` is the customer being called.
    """
    source = input or sys.stdin
    sink = output or sys.stdout
    if direction == "outbound":
        info = CallInfo("CHAT", to_number, from_number, "outbound", purpose, order_ref)
    else:
        info = CallInfo("CHAT", from_number, to_number, "inbound", purpose, order_ref)
    agent = agent_factory(info)
    ended = await _show(agent.start(), sink, show_hints=show_hints)
    while ended is None:
        line = await _read_line(source)
        if line is None or line.strip() == "/quit":
            ended = "caller_hangup"
            break
        text = line.strip()
        if not text:
            continue
        if text == "/silence":
            events = agent.silence(SILENCE_SECONDS)
        elif text.startswith("#"):
            events = agent.keypad(text[1:].strip().rstrip("#"))
        else:
            events = agent.hear(text, 1.0)
        ended = await _show(events, sink, show_hints=show_hints)
    summary = await agent.end(ended)
    sink.write(f"-- call ended ({ended}). Summary: {summary}\n")
    sink.flush()
    return summary
