"""A spoken reply begins with its answer: an opening acknowledgement only fills a wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dialog.agent import Agent
from dialog.answer_first import answer_first
from dialog.events import CallInfo, EndCall, Event, Hints, Say
from harness.conversations import demo_services
from tests.dialog.test_impostors import (
    NOW,
    REQUESTS,
    SHOP_LINE,
    STRANGER,
    _Events,
    new_shop,
    spoken,
    targets,
)

THANKS = Say("Thank you.")
ANSWER = Say("Your desk lamp is out for delivery today.")
WAIT = 0.3


async def steps(*events: Event | float) -> AsyncIterator[Event]:
    """The events of a turn, a number being a step that takes that many seconds."""
    for event in events:
        if isinstance(event, float):
            await asyncio.sleep(event)
        else:
            yield event


async def heard(*events: Event | float) -> list[Event]:
    return [e async for e in answer_first(steps(*events), WAIT)]


async def test_an_answer_ready_at_once_is_said_without_the_acknowledgement():
    assert await heard(THANKS, ANSWER, Say("Anything else?")) == [ANSWER, Say("Anything else?")]


async def test_an_answer_ready_inside_the_wait_is_said_first_and_hints_keep_their_place():
    hints = Hints(slot="yes_no")
    assert await heard(THANKS, hints, 0.1, ANSWER) == [hints, ANSWER]


async def test_before_the_closing_question_the_acknowledgement_stays():
    closing = Say("Is there anything else I can help with?")
    kept = answer_first(steps(Say("Okay."), closing), WAIT, keep_before=[closing.text])
    assert [e async for e in kept] == [Say("Okay."), closing]
    # A procedure's own next question shows the answer was taken, as an answer does.
    reason = Say("What's the reason for the return?")
    assert await heard(THANKS, reason) == [reason]


async def test_an_acknowledgement_alone_is_said():
    assert await heard(THANKS) == [THANKS]
    assert await heard(THANKS, EndCall("goodbye")) == [THANKS, EndCall("goodbye")]


async def test_a_slow_next_step_hears_the_acknowledgement_at_the_end_of_the_wait():
    loop = asyncio.get_running_loop()
    start = loop.time()
    times: list[tuple[Event, float]] = []
    async for event in answer_first(steps(THANKS, 1.0, ANSWER), WAIT):
        times.append((event, loop.time() - start))
    assert [e for e, _ in times] == [THANKS, ANSWER]
    assert WAIT <= times[0][1] < 1.0 <= times[1][1]


async def test_a_filler_after_the_acknowledgement_keeps_both():
    filler = Say("Let me look that up.", filler=True)
    assert await heard(THANKS, 0.1, filler, ANSWER) == [THANKS, filler, ANSWER]


async def test_only_the_opening_sentence_is_held():
    sorry = Say("Sorry about that.")
    assert await heard(sorry, THANKS, ANSWER) == [sorry, THANKS, ANSWER]


async def test_closing_the_reply_mid_wait_stops_the_step_it_waited_on():
    stopped = asyncio.Event()

    async def turn() -> AsyncIterator[Event]:
        yield THANKS
        try:
            await asyncio.sleep(5)
            yield ANSWER
        finally:
            stopped.set()

    reply = answer_first(turn(), WAIT)
    assert await anext(reply) == THANKS  # the wait ran out
    await reply.aclose()  # the caller barged in
    assert stopped.is_set()


async def test_a_failing_step_fails_the_turn_as_before():
    async def turn() -> AsyncIterator[Event]:
        yield THANKS
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        [e async for e in answer_first(turn(), WAIT)]


async def _after_the_zip(channel: str = "voice", **options: bool) -> str:
    shop = new_shop()
    (t,) = [t for t in await targets(shop) if t.order.number == "1002"]
    info = CallInfo("CA-answer-first", STRANGER, SHOP_LINE, channel=channel)  # type: ignore[arg-type]
    agent = Agent(None, demo_services(shop, _Events()), info, clock=lambda: NOW, **options)

    async def said(stream: AsyncIterator[Event]) -> str:
        return " ".join([e.text async for e in stream if isinstance(e, Say)])

    await said(agent.start())
    await said(agent.hear(REQUESTS["1002"], 1.0))
    return await said(agent.hear(spoken(t.owner.zip), 1.0))


async def test_a_call_hears_the_answer_first_a_text_and_the_setting_off_the_thanks():
    on_a_call = await _after_the_zip()
    assert on_a_call.startswith("Your trail running shoes"), on_a_call
    assert (await _after_the_zip("sms")).startswith("Thank you.")
    assert (await _after_the_zip(answer_first=False)).startswith("Thank you.")
