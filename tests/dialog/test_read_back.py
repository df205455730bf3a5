"""A number the caller never heard written is read back before it is used.

When speech-to-text heard words with no number at the order-number question ("free high
nero") and only its digits-only second decode found one, the transcript is a guess
(`guessed=True`). The agent reads it back for a yes or no before looking anything up: a
wrong guess would tell the caller about someone else's order. A confident answer, a number
typed on the keypad, and the second factor (compared exactly, so a wrong guess only fails)
are used as they are.
"""

from __future__ import annotations

from dialog.events import Hints
from tests.dialog.calls import MARIA, call, hints, said


async def asked_for_the_number(caller: str | None = None):
    c = call(caller) if caller else call()
    await c.start()
    events = await c.hear("where's my package")
    assert "What's your order number?" in said(events)
    return c


async def test_a_guessed_number_is_read_back_and_nothing_looked_up_yet():
    c = await asked_for_the_number()
    events = await c.hear("1003", guessed=True)
    assert said(events) == "I heard ten oh three. Is that right?"
    assert hints(events) == [Hints(slot="yes_no")]
    assert c.events.of("order.looked_up") == []
    assert c.agent.slots.get("order") is None


async def test_yes_uses_the_guessed_number():
    c = await asked_for_the_number()
    await c.hear("1003", guessed=True)
    events = await c.hear("yeah that's right")
    assert "Order ten oh three was delivered on Tuesday the 10th." in said(events)


async def test_no_asks_again_and_offers_the_keypad():
    c = await asked_for_the_number()
    await c.hear("1003", guessed=True)
    events = await c.hear("no")
    text = said(events)
    assert "delivered" not in text
    assert "keypad" in text
    assert hints(events)[-1].slot == "order_number"
    events = await c.hear("one zero zero three")  # now heard for sure
    assert "Order ten oh three was delivered" in said(events)


async def test_no_with_the_right_number_takes_it():
    c = await asked_for_the_number()
    await c.hear("1008", guessed=True)
    events = await c.hear("no, it's one zero zero three")
    assert "Order ten oh three was delivered" in said(events)
    assert "ten oh eight" not in said(events)


async def test_the_keypad_answers_the_read_back():
    c = await asked_for_the_number()
    await c.hear("1008", guessed=True)
    events = await c.keypad("1003")
    assert "Order ten oh three was delivered" in said(events)


async def test_a_second_guess_is_read_back_too():
    c = await asked_for_the_number()
    await c.hear("1008", guessed=True)
    events = await c.hear("1003", guessed=True)  # "no, ten oh three", heard as digits alone
    assert said(events) == "I heard ten oh three. Is that right?"
    events = await c.hear("yes")
    assert "Order ten oh three was delivered" in said(events)


async def test_something_else_at_the_read_back_is_heard_as_usual():
    c = await asked_for_the_number()
    await c.hear("1008", guessed=True)
    events = await c.hear("actually I want to talk to a person")
    assert "order ten oh eight" not in said(events).lower()
    assert c.agent.handoff


async def test_a_confident_number_is_not_read_back():
    c = await asked_for_the_number()
    events = await c.hear("1003")
    assert "Is that right?" not in said(events)
    assert "Order ten oh three was delivered" in said(events)


async def test_a_guessed_second_factor_is_compared_not_read_back():
    c = call(MARIA)
    await c.start()
    events = await c.hear("where is the refund for order 1011")  # Omar's order
    assert hints(events)[-1].slot == "verification"
    events = await c.hear("94110", guessed=True)  # Maria's ZIP, not Omar's
    assert "Is that right?" not in said(events)
    assert "doesn't match" in said(events)
    assert c.events.of("caller.verification_failed")


async def test_silence_at_the_read_back_asks_it_again():
    c = await asked_for_the_number()
    await c.hear("1003", guessed=True)
    events = await c.silence()
    assert said(events) == "Are you still there? I heard ten oh three. Is that right?"
    events = await c.hear("yes")
    assert "Order ten oh three was delivered" in said(events)


# --- a number heard in another shape: "101" for "ten oh one", "10003" for "one zero zero three"


async def test_a_number_in_another_shape_is_read_back_as_the_order_it_stands_for():
    c = await asked_for_the_number()
    events = await c.hear("order number 103")  # tiny.en's "ten oh three", the oh dropped
    assert said(events) == "I heard ten oh three. Is that right?"
    assert c.events.of("order.looked_up") == []
    events = await c.hear("yes")
    assert "Order ten oh three was delivered" in said(events)


async def test_a_doubled_zero_denied_asks_again():
    c = await asked_for_the_number()
    events = await c.hear("10003")
    assert said(events) == "I heard ten oh three. Is that right?"
    events = await c.hear("no")
    assert "keypad" in said(events)
    assert c.events.of("order.looked_up") == []


async def test_two_numbers_in_other_shapes_are_no_guess():
    c = await asked_for_the_number()
    events = await c.hear("10003 or 10004")
    assert "I heard" not in said(events)
    assert c.events.of("order.looked_up") == []
