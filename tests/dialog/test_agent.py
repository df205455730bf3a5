"""Whole calls with the agent: what the caller hears, and what gets recorded.

The shop is the embedded demo shop on a fixed clock (`tests.dialog.calls`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dialog.agent import Agent
from dialog.events import CallInfo, EndCall, Hints, Say, Transfer
from integrations.demo import DemoTracking
from integrations.protocols import (
    Coupons,
    Deliveries,
    EventSink,
    Helpdesk,
    Messenger,
    OrderSource,
    Refunds,
    Returns,
    Tracking,
)
from tests.dialog.calls import (
    HUMAN,
    LENA,
    MARIA,
    NOW,
    STRANGER,
    TOM,
    Events,
    call,
    demo_shop,
    hints,
    said,
    services,
    transferred,
)
from tests.dialog.wrappers import Failing, Recording


def test_the_stand_ins_honour_the_protocols():
    shop = demo_shop()
    assert isinstance(Events(), EventSink)
    for capability, protocol in [
        (shop.orders, OrderSource),
        (shop.tracking, Tracking),
        (shop.messenger, Messenger),
        (shop.coupons, Coupons),
        (shop.returns, Returns),
        (shop.refunds, Refunds),
        (shop.helpdesk, Helpdesk),
        (shop.deliveries, Deliveries),
    ]:
        assert isinstance(Failing(capability), protocol)
        assert isinstance(Recording(capability), protocol)


# --- greeting -------------------------------------------------------------------------------


async def test_known_caller_is_greeted_by_name():
    c = call(MARIA)
    events = await c.start()
    assert events[0] == Say(
        "Hi Maria, thanks for calling Acme Goods. I can help with your orders, returns "
        "and deliveries. What can I do for you?"
    )
    assert c.events.of("caller.identified") == [
        {"type": "caller.identified", "order": None, "customer_id": "cust_001"}
    ]


async def test_greeting_hints_the_callers_product_names():
    c = call(MARIA)
    (hint,) = hints(await c.start())
    assert hint.vocabulary == ("linen shirt", "trail running shoes")
    assert hint.prompt is None  # an example value in the prompt makes tiny.en drop digits


async def test_unknown_caller_is_greeted_without_a_name():
    c = call(STRANGER)
    assert said(await c.start()).startswith("Hi, thanks for calling Acme Goods.")
    assert c.events.of("caller.identified") == []


async def test_withheld_number_is_never_looked_up():
    shop = demo_shop()
    orders = Recording(shop.orders)
    c = call("anonymous", shop=shop, swapped={"orders": orders})
    await c.start()
    assert not any(x.startswith("customer_by_phone") for x in orders.calls)


# --- where is my order ----------------------------------------------------------------------


async def test_known_caller_hears_their_order_without_giving_a_number():
    c = call(MARIA)
    await c.start()
    events = await c.hear("hi, where is my order?")
    assert said(events) == (  # the demo shop answers at once: no "let me look that up"
        "Your linen shirt shipped with UPS and should arrive tomorrow. "
        "Would you like me to text you the tracking link?"
    )
    assert events[-1] == Hints(slot="yes_no")
    assert c.agent.intents == ["order_status"]
    assert c.events.of("order.looked_up") == [
        {"type": "order.looked_up", "order": "1001", "found": True, "via": "caller_id"}
    ]
    assert c.events.of("tracking.looked_up") == [
        {"type": "tracking.looked_up", "order": "1001", "status": "in_transit"}
    ]


async def test_with_filler_after_0_the_lookup_sentence_comes_before_the_lookup_runs():
    shop = demo_shop()
    orders = Recording(shop.orders)
    c = call(shop=shop, swapped={"orders": orders}, filler_after=0)
    await c.start()
    await c.hear("where is my package")
    stream = c.agent.hear("ten oh one", 0.9)
    first = await anext(stream)
    assert first == Say("Let me look that up.", filler=True)
    assert "order 1001" not in orders.calls  # the caller hears it while we look
    rest = [e async for e in stream]
    assert "order 1001" in orders.calls
    assert "should arrive tomorrow" in said(rest)


async def test_spoken_number_path():
    c = call()
    await c.start()
    events = await c.hear("Where's my package?")
    assert said(events) == (
        "What's your order number? You can say it, or type it on your keypad and then press pound."
    )
    assert hints(events) == [Hints(slot="order_number", prompt="Order number:", expect_dtmf=True)]
    events = await c.hear("It's order one zero zero three.")
    # A caller from an unknown number hears the stage and the day, not what is in it.
    assert said(events) == (
        "Order ten oh three was delivered on Tuesday the 10th. "
        "Is there anything else I can help with?"
    )
    events = await c.hear("no thanks")
    assert said(events) == "Thanks for calling Acme Goods. Goodbye."
    assert events[-1] == EndCall("caller_done")


async def test_utterance_with_a_number_goes_straight_to_the_status():
    c = call()
    await c.start()
    events = await c.hear("where is order 1010")
    assert "Order ten ten is being prepared and hasn't shipped yet." in said(events)
    assert "yoga mat" not in said(events)
    assert "text you" not in said(events)  # nothing to track yet
    assert c.agent.intents == ["order_status"]


async def test_keypad_path():
    c = call()
    await c.start()
    await c.hear("I want to track my order")
    events = await c.keypad("1006")
    assert "Order ten oh six is delayed, and should now arrive tomorrow." in said(events)
    assert "FedEx" not in said(events) and "lamp" not in said(events)
    assert c.events.of("order.looked_up")[-1] == {
        "type": "order.looked_up",
        "order": "1006",
        "found": True,
        "via": "keypad",
    }
    assert said(events).endswith("Would you like to pick a new delivery day?")


async def test_keypad_when_no_number_is_expected_is_ignored_politely():
    shop = demo_shop()
    orders = Recording(shop.orders)
    c = call(shop=shop, swapped={"orders": orders})
    await c.start()
    events = await c.keypad("5")
    assert said(events) == "Sorry, I wasn't expecting the keypad there. What can I do for you?"
    assert not any(x.startswith("order ") for x in orders.calls)


async def test_unknown_number_twice_hands_off_with_a_ticket():
    c = call()
    await c.start()
    await c.hear("where is my order")
    events = await c.hear("one zero nine nine")
    assert said(events) == (
        "I couldn't find order ten ninety-nine. Could you say it again, or type it on the keypad?"
    )
    assert hints(events)[0].slot == "order_number"
    events = await c.keypad("1098")
    assert "I still couldn't find order ten ninety-eight" in said(events)
    transfer = transferred(events)
    assert transfer is not None and transfer.number == HUMAN
    assert "1099" in transfer.summary and "1098" in transfer.summary
    assert c.agent.handoff is True
    assert [e["reason"] for e in c.events.of("handoff")] == ["order_not_found"]
    assert [e["found"] for e in c.events.of("order.looked_up")] == [False, False]
    assert c.shop.helpdesk.tickets()[0]["tags"] == ["phone", "order_not_found"]
    assert await c.hear("hello?") == []  # the call is with a person now


async def test_human_number_is_configurable():
    info = CallInfo("CA9", STRANGER, "+18005550100")
    agent = Agent(None, services(demo_shop(), Events()), info, human_number="+15550000000")
    [e async for e in agent.start()]
    out = [e async for e in agent.hear("operator please")]
    assert transferred(out).number == "+15550000000"


# --- tracking link by SMS -------------------------------------------------------------------


async def test_tracking_link_is_texted_once_and_never_read_aloud():
    c = call(MARIA)
    await c.start()
    await c.hear("where is my order")
    events = await c.hear("yes please")
    assert said(events) == (
        "Done. I've texted the tracking link to the number you're calling from. "
        "Is there anything else I can help with?"
    )
    (sms,) = c.shop.messenger.sent()
    assert (sms["to"], sms["body"], sms["idempotency_key"]) == (
        MARIA,
        "Acme Goods: tracking for order 1001 (linen shirt): "
        "https://www.ups.com/track?tracknum=1ZA8V2R70348215374",
        "CA123:sms:tracking:1001",
    )
    assert c.events.of("sms.sent") == [
        {
            "type": "sms.sent",
            "order": "1001",
            "to": MARIA,
            "message_id": sms["id"],
            "purpose": "tracking",
        }
    ]
    # Asking about the same order again does not offer (or send) another text.
    events = await c.hear("and where is order 1001 again?")
    assert "text you" not in said(events)
    assert len(c.shop.messenger.sent()) == 1
    agent_lines = [text for role, text in c.agent.transcript if role == "agent"]
    assert not any("http" in line or "ups.com" in line for line in agent_lines)


async def test_declining_the_text_sends_nothing():
    c = call(MARIA)
    await c.start()
    await c.hear("where's my package")
    events = await c.hear("nah")
    assert said(events) == "Okay. Is there anything else I can help with?"
    assert c.shop.messenger.sent() == []
    events = await c.hear("no that's all")
    assert events[-1] == EndCall("caller_done")


# --- several orders, problems ---------------------------------------------------------------


async def test_caller_with_several_open_orders_is_asked_which_one():
    c = call(TOM)
    await c.start()
    events = await c.hear("where's my stuff")
    assert said(events).endswith("Is this about the coffee grinder or the espresso machine?")
    (hint,) = hints(events)
    assert hint.slot == "order_choice" and hint.expect_dtmf
    assert set(hint.vocabulary) == {"coffee grinder", "espresso machine"}
    events = await c.hear("the grinder")
    assert (
        "Your coffee grinder is delayed: USPS says it has been held at customs since Monday."
        in said(events)
    )
    assert c.events.of("order.looked_up") == [
        {"type": "order.looked_up", "order": "1008", "found": True, "via": "choice"}
    ]


async def test_other_customers_order_gets_status_only():
    c = call(MARIA)
    await c.start()
    events = await c.hear("what about order ten oh three")
    text = said(events)
    assert "delivered on Tuesday the 10th" in text
    for private in ("James", "Chen", "@", "Mastercard", "4444", "10001"):
        assert private not in text


async def test_other_customers_refund_needs_their_second_factor():
    c = call(MARIA)
    await c.start()
    events = await c.hear("where is the refund for order 1011")
    assert "ZIP code on the order" in said(events)
    assert "refunded" not in said(events)
    events = await c.hear("nine four one one zero")  # Maria's ZIP, not Omar's
    assert "doesn't match" in said(events)
    assert c.events.of("caller.verification_failed")


# --- corrections ----------------------------------------------------------------------------


async def test_correction_after_a_status():
    c = call()
    await c.start()
    events = await c.hear("where is order 1001")
    assert "Order ten oh one is on its way" in said(events)
    events = await c.hear("no, I said 1003")
    assert "Order ten oh three was delivered" in said(events)
    assert [e["order"] for e in c.events.of("order.looked_up")] == ["1001", "1003"]


async def test_correction_after_a_miss():
    c = call()
    await c.start()
    await c.hear("where is my order")
    await c.hear("ten ninety nine")
    events = await c.hear("no, I said ten oh three")
    assert "Order ten oh three was delivered" in said(events)
    assert c.agent.handoff is False


# --- goodbye, person, misunderstanding, silence ---------------------------------------------


async def test_goodbye_ends_the_call():
    c = call()
    await c.start()
    events = await c.hear("that's it, thanks. bye!")
    assert events == [Say("Thanks for calling Acme Goods. Goodbye."), EndCall("caller_done")]
    assert await c.hear("where is my order") == []


async def test_asking_for_a_person():
    c = call()
    await c.start()
    events = await c.hear("can I talk to a real person")
    assert events[0] == Say("Sure, I'll connect you with a person now.")
    transfer = transferred(events)
    assert transfer is not None and transfer.number == HUMAN
    assert c.agent.handoff is True
    assert c.events.of("handoff")[0]["reason"] == "caller_request"


async def test_not_understood_twice_hands_off():
    c = call()
    await c.start()
    events = await c.hear("purple monkey")
    assert said(events) == (
        "I can tell you where an order is, and help with returns, exchanges, refunds, coupons "
        "and delivery problems. What would you like to do?"
    )
    events = await c.hear("purple monkey dishwasher")
    assert transferred(events) is not None
    assert c.events.of("handoff")[0]["reason"] == "not_understood"
    assert c.events.of("escalation")[0]["reason"] == "repeated_misunderstanding"


async def test_understanding_in_between_resets_the_misses():
    c = call()
    await c.start()
    await c.hear("blah blah")
    await c.hear("where is my order")
    events = await c.hear("hmm")
    assert transferred(events) is None
    assert said(events).startswith("Sorry, I didn't catch that. What's your order number?")


async def test_low_confidence_asks_again_instead_of_guessing():
    c = call()
    await c.start()
    events = await c.hear("mmf hrr", confidence=0.2)
    assert said(events) == "Sorry, I didn't catch that. What can I do for you?"


async def test_silence_reprompts_once_then_ends():
    c = call()
    await c.start()
    await c.hear("where is my order")
    events = await c.silence()
    assert said(events) == "Are you still there? What's your order number?"
    assert hints(events)[0].slot == "order_number"
    events = await c.silence()
    assert events == [
        Say("I haven't heard anything, so I'll end the call now. Goodbye."),
        EndCall("silence"),
    ]


async def test_speech_between_silences_resets_the_count():
    c = call()
    await c.start()
    await c.silence()
    await c.hear("where is my order")
    events = await c.silence()
    assert not any(isinstance(e, EndCall) for e in events)


async def test_two_requests_in_one_sentence_are_both_handled():
    c = call(MARIA)
    await c.start()
    events = await c.hear("where is my order, and also I want to return the running shoes")
    text = said(events)
    assert "linen shirt" in text
    await c.hear("no")  # no tracking text
    assert c.events.of("return.denied")[0]["reason"] == "window"


# --- failures, outbound, summary ------------------------------------------------------------


async def test_order_system_down_hands_off_instead_of_going_silent():
    shop = demo_shop()
    orders = Failing(shop.orders)
    c = call(shop=shop, swapped={"orders": orders})
    await c.start()
    orders.down = True
    events = await c.hear("where is order 1001")
    assert "can't reach our order system" in said(events)
    assert transferred(events) is not None
    assert c.events.of("escalation")[0]["reason"] == "system_error"


async def test_caller_lookup_failure_is_an_unknown_caller():
    shop = demo_shop()
    c = call(MARIA, shop=shop, swapped={"orders": Failing(shop.orders, down=True)})
    assert said(await c.start()).startswith("Hi, thanks for calling")


async def test_outbound_call_is_about_the_order():
    c = call(MARIA, direction="outbound", purpose="order_update", order_ref="1001")
    events = await c.start()
    assert said(events).startswith(
        "Hi Maria, this is Acme Goods, calling about your order ten oh one. "
        "Your linen shirt shipped with UPS"
    )


async def test_end_returns_a_summary_and_records_nothing():
    c = call(MARIA)
    await c.start()
    await c.hear("where is my order")
    await c.hear("yes")
    await c.hear("no")
    before = list(c.events.recorded)
    summary = await c.agent.end("hangup")
    assert c.events.recorded == before
    assert c.agent.summary == summary
    for part in ("Maria Lopez", "order_status", "1001 in transit", "sms.sent 1001", "caller_done"):
        assert part in summary


async def test_end_on_hangup_mid_call():
    c = call()
    await c.start()
    await c.hear("where is my order")
    summary = await c.agent.end("hangup")
    assert "Outcome: hangup" in summary
    assert await c.hear("hello") == []


async def test_transcript_and_intents():
    c = call(LENA)
    await c.start()
    await c.hear("where is my order")
    await c.keypad("1010")
    assert c.agent.intents == ["order_status"]
    roles = [role for role, _ in c.agent.transcript]
    assert roles[0] == "agent" and "caller" in roles
    assert ("caller", "where is my order") in c.agent.transcript
    assert [e["name"] for e in c.events.of("intent")] == ["order_status"]


@pytest.mark.parametrize("text", ["", "   "])
async def test_empty_transcripts_are_ignored(text):
    c = call()
    await c.start()
    assert await c.hear(text) == []


async def test_slow_events_store_never_blocks_the_call_forever():
    class StuckEvents(Events):
        async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
            await asyncio.sleep(3600)

    c = call(MARIA, events=StuckEvents(), timeout=0.5)  # ample for the shop, not the sink
    events = await c.start()
    assert said(events).startswith("Hi Maria")


async def test_transfer_ends_the_turn_and_nothing_more_is_said():
    c = call()
    await c.start()
    events = await c.hear("agent please")
    assert isinstance(events[-1], Transfer)
    assert await c.keypad("1") == []
    assert await c.silence() == []


async def test_a_request_after_a_yes_or_no_is_taken_up_next():
    c = call(MARIA)
    await c.start()
    await c.hear("where is my order")
    events = await c.hear("no, but I want to return my running shoes")
    # The "no" is taken without an "Okay." first: the answer that follows at once shows it.
    assert said(events).startswith("Now, your trail running shoes.")
    assert "thirty-five days ago" in said(events)
    assert c.events.of("return.denied")[0]["order"] == "1002"


async def test_someone_elses_tracking_link_is_never_offered():
    c = call(MARIA)
    await c.start()
    events = await c.hear("where is order ten oh eight")
    assert "Order ten oh eight is delayed." in said(events)  # Tom's order: no details
    assert "customs" not in said(events) and "text you" not in said(events)
    c = call(TOM)
    await c.start()
    events = await c.hear("where is order ten oh eight")
    assert "text you the tracking link" in said(events)


async def test_a_status_from_the_cache_says_how_old_it_is():
    from datetime import timedelta as _td

    shop = demo_shop()
    cached = DemoTracking(shop.engine, clock=lambda: NOW - _td(hours=2))  # fetched back then
    c = call(MARIA, shop=shop, swapped={"tracking": cached})
    await c.start()
    events = await c.hear("where is my order")
    text = said(events)
    assert "should arrive tomorrow" in text
    assert "last update, from two hours ago" in text


def test_ages_are_said_roughly():
    from datetime import timedelta as _td

    from dialog.speech import say_age

    assert say_age(_td(seconds=30)) == "a minute"
    assert say_age(_td(minutes=22)) == "twenty minutes"
    assert say_age(_td(minutes=70)) == "an hour"
    assert say_age(_td(hours=5)) == "five hours"
    assert say_age(_td(days=3)) == "three days"


async def test_the_agent_keeps_no_card_number_in_its_transcript_or_summary():
    c = call(MARIA)
    await c.start()
    await c.hear("my card is 4242 4242 4242 4242, where is my order")
    await c.keypad("4242424242424242")
    await c.agent.end("caller_hangup")
    kept = str(c.agent.transcript) + str(c.agent.summary)
    assert "4242" not in kept


# --- a "no" that corrects, at "anything else?" ----------------------------------------------


@pytest.mark.parametrize(
    "garbled",
    [
        "No, it's one near or near or ever",  # "no, it's ten oh eight", as tiny.en heard it
        "no I said ten or fight",
        "nope, that's the wrong order",
        "no, not that one",
    ],
)
async def test_a_no_that_corrects_something_unheard_is_not_a_goodbye(garbled):
    c = call()
    await c.start()
    events = await c.hear("where is order 1001")
    assert "anything else" in said(events)
    events = await c.hear(garbled)
    assert not any(isinstance(e, EndCall) for e in events)
    assert said(events) == "Sorry, I didn't catch that. Could you say it again?"
    events = await c.hear("no, I said 1003")
    assert "Order ten oh three was delivered" in said(events)


@pytest.mark.parametrize(
    "done",
    ["no", "no thanks", "no that's all", "no I'm good thanks", "no, that's everything, thank you"],
)
async def test_a_plain_no_at_anything_else_still_ends_the_call(done):
    c = call()
    await c.start()
    await c.hear("where is order 1001")
    events = await c.hear(done)
    assert events[-1] == EndCall("caller_done")
