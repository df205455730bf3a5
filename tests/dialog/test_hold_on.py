"""Turns that ask nothing: "wait, hold on", "one second, let me find it", "uh-huh". The agent
waits and the question stands; none is a miss, so a request misheard after one is not the
caller's second (a person at once). A few in a row only: then they count as any other turn."""

from __future__ import annotations

from dialog.agent import MAX_IDLE_TURNS
from tests.dialog.calls import AISHA, JAMES, MARIA, call, said, transferred

HOLD = "Sure, take your time."


async def test_hold_on_at_a_confirmation_does_nothing_and_the_question_stands():
    c = call(AISHA)
    await c.start()
    await c.say("I want to exchange the sweater for a large", "60614")
    events = await c.hear("wait, hold on")
    assert said(events) == HOLD
    assert c.events.of("exchange.created") == []
    events = await c.hear("yes")
    assert c.events.of("exchange.created") != []
    assert transferred(events) is None


async def test_hold_on_keeps_the_question_and_its_attempts():
    c = call(JAMES)
    await c.start()
    assert "ZIP code" in said(await c.hear("I want to return my earbuds"))
    for _ in range(MAX_IDLE_TURNS):
        assert said(await c.hear("one second, let me find it")) == HOLD
    events = await c.hear("10001")
    assert transferred(events) is None
    assert c.events.of("caller.verified") != []


async def test_only_a_few_idle_turns_in_a_row_go_uncounted():
    c = call(MARIA)
    await c.start()
    for _ in range(MAX_IDLE_TURNS):
        events = await c.hear("uh uh")
        assert said(events) == "I'm listening. What can I do for you?"
    events = await c.hear("uh uh")  # one more: heard as a turn that says nothing
    assert "I'm listening" not in said(events)
    events = await c.hear("purple monkey")
    assert transferred(events) is not None  # the second miss: a person, as before


async def test_a_real_turn_between_resets_the_count():
    c = call(MARIA)
    await c.start()
    for _ in range(MAX_IDLE_TURNS):
        await c.hear("hang on")
    await c.say("where is my order", "no")
    events = await c.hear("hang on")
    assert said(events) == HOLD
