"""A request the caller's words only hint at is asked about, never acted on unconfirmed.

Callers in voices speech-to-text does not know are heard saying "that is my order" for "where
is my order" or "I'm calling about my package": the words name what the call is about but
reach no request. The agent asks about the one request they hint at ("Is this about where
your order is?") instead of listing everything it does; a yes starts it, a no gets the list,
and anything else is heard as the answer it is.
"""

from __future__ import annotations

from dialog.nlu.intents import hinted_task
from tests.dialog.calls import MARIA, STRANGER, call, said, transferred

GUESS = "Is this about where your order is? If it's something else, just tell me what you need."
MENU = (
    "I can tell you where an order is, and help with returns, exchanges, refunds, coupons "
    "and delivery problems. What would you like to do?"
)


def test_a_hint_names_one_request_below_the_score_that_starts_it():
    assert hinted_task("Hi, that is my order") == "order_status"
    assert hinted_task("I'm calling about my package") == "order_status"
    assert hinted_task("purple monkey") is None
    assert hinted_task("where is my order") is None  # a request, not a hint
    assert hinted_task("") is None


def test_a_key_word_heard_as_its_neighbour_still_hints():
    # "where is my order" in an espeak voice, as tiny.en heard it
    assert hinted_task("I wear it with my orger") == "order_status"
    assert hinted_task("the weather is nice") is None
    assert hinted_task("I wear it") is None


async def test_a_yes_starts_the_request_hinted_at():
    c = call(MARIA)
    await c.start()
    events = await c.hear("Hi, that is my order")
    assert said(events) == GUESS
    assert c.agent.intents == [] and c.events.of("tracking.looked_up") == []
    events = await c.hear("Yes, please")
    assert "linen shirt" in said(events)
    assert c.agent.intents == ["order_status"]
    assert transferred(events) is None


async def test_a_no_gets_what_the_agent_can_do_and_is_no_goodbye():
    c = call(MARIA)
    await c.start()
    await c.hear("what about my package")
    events = await c.hear("no")
    assert said(events) == MENU
    assert transferred(events) is None
    events = await c.hear("I want to return my earbuds")
    assert "return" in said(events).lower() or "zip" in said(events).lower()


async def test_after_a_served_request_a_no_to_the_guess_is_not_goodbye():
    c = call(MARIA)
    await c.start()
    await c.say("where is my order", "no")  # served; no tracking link
    events = await c.hear("um, the address")
    assert said(events).startswith("Is this about the address?")
    events = await c.hear("no")
    assert said(events) == MENU
    assert "goodbye" not in c.agent.intents


async def test_another_answer_is_heard_as_itself_and_the_guess_is_dropped():
    c = call(STRANGER)
    await c.start()
    await c.hear("calling about my order")
    events = await c.hear("I want a refund")
    assert "order number" in said(events).lower()
    events = await c.hear("yes")  # the guess is gone: a yes is not "where is my order"
    assert "shipped" not in said(events).lower()


async def test_the_guess_counts_as_a_miss_so_a_person_comes_as_soon_as_before():
    c = call()
    await c.start()
    events = await c.hear("my order")
    assert said(events) == GUESS
    events = await c.hear("purple monkey dishwasher")
    assert transferred(events) is not None
    assert c.events.of("handoff")[0]["reason"] == "not_understood"


async def test_a_guess_is_asked_even_when_speech_to_text_was_unsure():
    c = call()
    await c.start()
    events = await c.hear("that is my order", confidence=0.2)
    assert said(events) == GUESS


async def test_a_whole_request_is_not_asked_about():
    c = call(MARIA)
    await c.start()
    events = await c.hear("where is my order")
    assert "linen shirt" in said(events)


async def test_a_yes_to_are_you_still_there_starts_nothing():
    c = call(MARIA)
    await c.start()
    assert said(await c.hear("about my package")) == GUESS
    assert said(await c.silence()).startswith("Are you still there?")
    events = await c.hear("yes")
    assert "linen shirt" not in said(events) and c.agent.intents == []
