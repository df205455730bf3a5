"""Upset callers: empathy, a person on offer, and the courtesy code at most once."""

from __future__ import annotations

from dialog.mood import read_mood
from tests.dialog.calls import MARIA, TOM, call, said, transferred


def test_mood_reads_the_lexicon_and_the_phrases():
    assert read_mood("where is my order").upset is False
    assert read_mood("my package arrived damaged").upset is False  # a fact, not anger
    angry = read_mood("this is absolutely ridiculous, I'm furious")
    assert angry.upset and angry.reason and angry.reason.startswith("phrase:")
    assert read_mood("I will call my lawyer").upset
    assert read_mood("I hate this, worst shop ever, awful awful awful").upset
    own = read_mood("I want to complain to trading standards", phrases=["trading standards"])
    assert own.upset and own.reason == "phrase:trading standards"


async def test_an_upset_caller_hears_empathy_and_is_offered_a_person():
    c = call(MARIA)
    await c.start()
    events = await c.hear("this is ridiculous, it's the third time I'm calling about my order")
    text = said(events)
    assert text.startswith("I'm really sorry about this.")
    assert "Would you like me to connect you with a person" in text
    assert c.events.of("escalation")[0]["reason"].startswith("phrase:")
    events = await c.hear("yes, a person")
    assert transferred(events) is not None
    assert c.events.of("handoff")[0]["reason"] == "upset"
    assert c.shop.helpdesk.tickets()[0]["priority"] == "high"


async def test_the_request_is_taken_up_after_the_apology():
    c = call(MARIA)
    await c.start()
    events = await c.hear("I'm so frustrated, where is my order?")
    assert "really sorry" in said(events)
    assert "linen shirt" not in said(events)  # the person offer comes first
    events = await c.hear("no, let's carry on")
    assert "Your linen shirt shipped with UPS" in said(events)


async def test_an_interrupted_question_is_asked_again():
    c = call(MARIA)
    await c.start()
    await c.hear("where is my order")
    events = await c.hear("this is ridiculous")
    assert "really sorry" in said(events)
    events = await c.hear("carry on")
    assert said(events).endswith("Would you like me to text you the tracking link?")


async def test_the_courtesy_code_is_offered_at_most_once():
    c = call(TOM)
    await c.start()
    await c.hear("this is a joke, I'm furious")
    await c.hear("carry on")
    await c.hear("still ridiculous, the worst service ever")
    await c.hear("no")
    assert len(c.events.of("coupon.offered")) == 1
    courtesy = [m for m in c.shop.messenger.sent() if "SORRY15" in m["body"]]
    assert len(courtesy) == 1
    assert len(c.events.of("escalation")) == 2


async def test_the_courtesy_code_is_not_offered_twice_across_procedures():
    c = call(TOM)
    await c.start()
    await c.hear("this is unacceptable")
    await c.hear("carry on")
    await c.say("my espresso machine never arrived", "seven three three zero one", "no thanks")
    assert len(c.events.of("coupon.offered")) == 1


async def test_empathetic_wording_stays_once_the_caller_is_upset():
    c = call(MARIA)
    await c.start()
    await c.hear("this is ridiculous")
    await c.hear("carry on")
    events = await c.hear("bye")
    assert said(events) == "Thank you for your patience, and I'm sorry for the trouble. Goodbye."


async def test_asking_for_a_person_angrily_goes_straight_to_a_person():
    c = call(MARIA)
    await c.start()
    events = await c.hear("this is ridiculous, get me a real person now")
    assert transferred(events) is not None
    assert "really sorry" not in said(events)
