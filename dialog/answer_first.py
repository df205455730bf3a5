"""A spoken reply begins with its answer: an opening acknowledgement is said only to fill a wait.

Some steps open a reply with a bare acknowledgement ("Thank you." once the second factor
matches, "Okay." after a correction or a declined offer) and the step after it says what the
caller asked for. On a call the caller hears the answer only once the acknowledgement has
been played, about 0.7 s later, for nothing it tells them that the answer does not: the
agent reads an order only to a caller it accepted, and answers for the value they corrected.
`answer_first` holds such an opening for up to `wait` seconds. If the next sentence is ready
by then, the acknowledgement is left out and the caller hears that sentence first: the
answer, or the procedure's next question ("What's the reason for the return?", which shows
the ZIP code was taken). It is said as before when the reply is the acknowledgement alone,
when only the closing question comes next ("Okay. Is there anything else I can help with?":
there the "Okay." is all the answer the caller's "no thanks" gets), and when the next step is
slow (a provider still answering: it fills the wait, and the filler after it if one is due).

Only the first sentence of a reply is held, only on a call (a text message arrives whole, so
an acknowledgement costs its reader nothing); `POSTVOICE_ANSWER_FIRST=false` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection

from dialog.events import Event, Say
from dialog.understanding import is_backchannel

__all__ = ["answer_first", "is_acknowledgement"]


def is_acknowledgement(event: Event) -> bool:
    """Whether `event` is a sentence that only acknowledges ("Thank you.", "Okay.", "Got it."):
    the test the bench uses for a sentence that carries no answer
    (`harness.bench_figures.carries_answer`)."""
    return isinstance(event, Say) and not event.filler and is_backchannel(event.text)


def _same(text: str) -> str:
    return " ".join(text.split()).casefold()


async def _next(events: AsyncIterator[Event]) -> Event | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def answer_first(
    events: AsyncIterator[Event], wait: float, keep_before: Collection[str] = ()
) -> AsyncIterator[Event]:
    """`events`, an opening acknowledgement left out when another sentence follows it within
    `wait` seconds, unless that sentence is one of `keep_before` (the shop's "Is there
    anything else I can help with?"); the events between them (`Hints`) are passed on in order.

    The next event is awaited as a task of its own so the wait can end while a step is still
    running; closing this generator cancels that task and waits for it, so nothing of the
    turn outlives it."""
    loop = asyncio.get_running_loop()
    closing = {_same(text) for text in keep_before}
    pending: asyncio.Future[Event | None] | None = None
    said = False
    try:
        while (event := await _next(events)) is not None:
            if said or not is_acknowledgement(event):
                said = said or isinstance(event, Say)
                yield event
                continue
            said = True
            held: list[Event] = []  # what comes between it and the next sentence (`Hints`)
            following: Event | None = None
            deadline = loop.time() + wait
            while True:
                pending = asyncio.ensure_future(_next(events))
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, deadline - loop.time()))
                if not done:  # the next step is slow: `pending` is awaited once this is said
                    break
                following, pending = pending.result(), None
                if following is None or isinstance(following, Say):
                    break
                held.append(following)
            # Said as before when it fills a wait, is the whole reply, comes before a filler
            # or before only the closing question.
            if (
                pending is not None
                or not isinstance(following, Say)
                or following.filler
                or _same(following.text) in closing
            ):
                yield event
            for h in held:
                yield h
            if pending is not None:
                following, pending = await pending, None
            if following is None:
                return
            yield following
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
