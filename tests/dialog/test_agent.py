"""Whole calls with the agent: what the caller hears, and what gets recorded.

The shop is a small in-test fake behind the integration protocols, on a fixed clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialog.agent import HUMAN_NUMBER, Agent
from dialog.events import CallInfo, EndCall, Event, Hints, Say, Transfer
from integrations.models import (
    Customer,
    Order,
    OrderLine,
    Shipment,
    ShipmentStatus,
    TrackingEvent,
)
from integrations.protocols import EventSink, Messenger, OrderSource, Services, Tracking

NOW = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()
SHOP = "Acme Goods"
MARIA = "+14155550101"
TOM = "+14155550104"
STRANGER = "+14155550999"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _order(number, customer, name, *, placed, fulfillment="fulfilled", carrier=None, **kw):
    line = OrderLine(sku=f"SKU-{number}", name=name, category="home", price_cents=4800)
    tracking = f"TRK{number}" if carrier else None
    return Order(
        number=number,
        customer_id=customer,
        placed_at=ago(placed),
        lines=(line,),
        fulfillment=fulfillment,
        carrier=carrier,
        tracking_number=tracking,
        **kw,
    )


CUSTOMERS = [
    Customer("c1", "Maria Lopez", MARIA, "maria.lopez@example.com", "94110"),
    Customer("c2", "James Chen", "+14155550102", "james.chen@example.com", "10001"),
    Customer("c3", "Aisha Patel", "+14155550103", "aisha.patel@example.com", "60614"),
    Customer("c4", "Tom Becker", TOM, "tom.becker@example.com", "73301"),
    Customer("c5", "Lena Novak", "+14155550105", "lena.novak@example.com", "02139"),
]
ORDERS = [
    _order("1001", "c1", "Linen shirt", placed=5, carrier="UPS", shipped_at=ago(4)),
    _order(
        "1002",
        "c1",
        "Trail running shoes",
        placed=40,
        carrier="UPS",
        shipped_at=ago(38),
        delivered_at=ago(35),
    ),
    _order(
        "1003",
        "c2",
        "Wireless earbuds",
        placed=12,
        carrier="UPS",
        shipped_at=ago(10),
        delivered_at=ago(4),
    ),
    _order("1006", "c3", "Desk lamp", placed=8, carrier="FedEx", shipped_at=ago(5)),
    _order("1007", "c4", "Espresso machine", placed=20, carrier="UPS", shipped_at=ago(18)),
    _order("1008", "c4", "Coffee grinder", placed=6, carrier="USPS", shipped_at=ago(5)),
    _order("1010", "c5", "Yoga mat", placed=1, fulfillment="unfulfilled"),
]


def _scan(days_ago: float, status: ShipmentStatus) -> TrackingEvent:
    return TrackingEvent(at=ago(days_ago), status=status, description=status.value)


def _shipment(number, carrier, status, *scans, detail="", eta=None) -> Shipment:
    return Shipment(
        carrier=carrier,
        tracking_number=f"TRK{number}",
        status=status,
        detail=detail,
        fetched_at=NOW,
        eta=eta,
        events=scans,
        tracking_url=f"https://track.example.com/{carrier.lower()}/TRK{number}",
    )


S = ShipmentStatus
SHIPMENTS = {
    s.tracking_number: s
    for s in [
        _shipment("1001", "UPS", S.IN_TRANSIT, _scan(1, S.IN_TRANSIT), eta=TODAY + timedelta(1)),
        _shipment("1003", "UPS", S.DELIVERED, _scan(4, S.DELIVERED)),
        _shipment(
            "1006",
            "FedEx",
            S.FAILED_ATTEMPT,
            _scan(1, S.FAILED_ATTEMPT),
            detail="Delivery attempted: no one available to sign",
        ),
        _shipment("1007", "UPS", S.IN_TRANSIT, _scan(18, S.PRE_TRANSIT), _scan(9, S.IN_TRANSIT)),
        _shipment(
            "1008",
            "USPS",
            S.DELAYED,
            _scan(4, S.IN_TRANSIT),
            _scan(2, S.DELAYED),
            detail="Held at customs",
        ),
    ]
}


class FakeOrders:
    """The shop's customers and orders, with a record of what was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False

    async def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise ConnectionError("order system down")

    async def customer_by_phone(self, phone: str) -> Customer | None:
        await self._call(f"customer_by_phone {phone}")
        return next((c for c in CUSTOMERS if c.phone == phone), None)

    async def customer_by_email(self, email: str) -> Customer | None:
        await self._call(f"customer_by_email {email}")
        return next((c for c in CUSTOMERS if c.email == email), None)

    async def customer(self, customer_id: str) -> Customer | None:
        await self._call(f"customer {customer_id}")
        return next((c for c in CUSTOMERS if c.id == customer_id), None)

    async def orders_of(self, customer_id: str) -> list[Order]:
        await self._call(f"orders_of {customer_id}")
        return [o for o in ORDERS if o.customer_id == customer_id]

    async def order(self, number: str) -> Order | None:
        await self._call(f"order {number}")
        return next((o for o in ORDERS if o.number == number), None)


class FakeTracking:
    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        return SHIPMENTS.get(tracking_number)


@dataclass
class FakeMessenger:
    sent: list[dict[str, str]] = field(default_factory=list)

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        self.sent.append({"to": to, "body": body, "idempotency_key": idempotency_key})
        return f"SM{len(self.sent)}"


@dataclass
class FakeEvents:
    recorded: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        self.recorded.append({"type": type, "order": order, **data})

    def types(self) -> list[str]:
        return [e["type"] for e in self.recorded]

    def of(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.recorded if e["type"] == type]


@dataclass
class Call:
    """One call under test: the agent, its fakes, and helpers to drive it."""

    agent: Agent
    orders: FakeOrders
    messenger: FakeMessenger
    events: FakeEvents

    async def start(self) -> list[Event]:
        return [e async for e in self.agent.start()]

    async def hear(self, text: str, confidence: float = 0.9) -> list[Event]:
        return [e async for e in self.agent.hear(text, confidence)]

    async def keypad(self, digits: str) -> list[Event]:
        return [e async for e in self.agent.keypad(digits)]

    async def silence(self, seconds: float = 5.0) -> list[Event]:
        return [e async for e in self.agent.silence(seconds)]


def call(caller: str = STRANGER, **kw: Any) -> Call:
    """A call from `caller`; with direction="outbound", a call we place to them."""
    orders, messenger, events = FakeOrders(), FakeMessenger(), FakeEvents()
    services = Services(orders, FakeTracking(), messenger, events, shop_name=SHOP)
    ends = (caller, "+18005550100")
    if kw.get("direction") == "outbound":
        ends = ends[::-1]
    info = CallInfo("CA123", *ends, **kw)
    agent = Agent(None, services, info, clock=lambda: NOW)
    return Call(agent, orders, messenger, events)


def said(events: list[Event]) -> str:
    return " ".join(e.text for e in events if isinstance(e, Say))


def hints(events: list[Event]) -> list[Hints]:
    return [e for e in events if isinstance(e, Hints)]


def test_fakes_honour_the_protocols():
    assert isinstance(FakeOrders(), OrderSource)
    assert isinstance(FakeTracking(), Tracking)
    assert isinstance(FakeMessenger(), Messenger)
    assert isinstance(FakeEvents(), EventSink)


# --- greeting -------------------------------------------------------------------------------


async def test_known_caller_is_greeted_by_name():
    c = call(MARIA)
    events = await c.start()
    assert events == [
        Say(
            "Hi Maria, thanks for calling Acme Goods. I can help with your orders, returns "
            "and deliveries. What can I do for you?"
        )
    ]
    assert c.events.of("caller.identified") == [
        {"type": "caller.identified", "order": None, "customer_id": "c1"}
    ]


async def test_unknown_caller_is_greeted_without_a_name():
    c = call(STRANGER)
    assert said(await c.start()).startswith("Hi, thanks for calling Acme Goods.")
    assert c.events.of("caller.identified") == []


# --- where is my order ----------------------------------------------------------------------


async def test_known_caller_hears_their_order_without_giving_a_number():
    c = call(MARIA)
    await c.start()
    events = await c.hear("hi, where is my order?")
    assert isinstance(events[0], Say) and events[0].text == "Let me check your orders."
    assert said(events[1:]) == (
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


async def test_lookup_sentence_comes_before_the_lookup_runs():
    c = call()
    await c.start()
    await c.hear("where is my package")
    stream = c.agent.hear("ten oh one", 0.9)
    first = await anext(stream)
    assert first == Say("Let me look that up.")
    assert "order 1001" not in c.orders.calls  # the caller hears it while we look
    rest = [e async for e in stream]
    assert "order 1001" in c.orders.calls
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
    assert said(events) == (
        "Let me look that up. Your wireless earbuds were delivered on Saturday the 14th. "
        "Is there anything else I can help with?"
    )
    assert c.events.of("order.looked_up")[-1]["found"] is True
    events = await c.hear("no thanks")
    assert said(events) == "Thanks for calling Acme Goods. Goodbye."
    assert events[-1] == EndCall("caller_done")
    assert c.agent.intents == ["order_status", "no"]


async def test_utterance_with_a_number_goes_straight_to_the_status():
    c = call()
    await c.start()
    events = await c.hear("where is order 1010")
    assert "Your yoga mat hasn't shipped yet. Orders usually ship within two business days." in (
        said(events)
    )
    assert "text you" not in said(events)  # nothing to track yet
    assert c.agent.intents == ["order_status"]


async def test_keypad_path():
    c = call()
    await c.start()
    await c.hear("I want to track my order")
    events = await c.keypad("1006")
    text = said(events)
    assert (
        "FedEx tried to deliver your desk lamp yesterday, but nobody was available to sign "
        "for it." in text
    )
    assert "tries again" in text
    assert c.events.of("order.looked_up")[-1] == {
        "type": "order.looked_up",
        "order": "1006",
        "found": True,
        "via": "keypad",
    }


async def test_keypad_when_no_number_is_expected_is_ignored_politely():
    c = call()
    await c.start()
    events = await c.keypad("5")
    assert said(events) == "Sorry, I wasn't expecting the keypad there. What can I do for you?"
    assert not any(call.startswith("order ") for call in c.orders.calls)


async def test_unknown_number_twice_hands_off():
    c = call()
    await c.start()
    await c.hear("where is my order")
    events = await c.hear("one zero nine nine")
    assert said(events) == (
        "Let me look that up. I couldn't find order ten ninety-nine. Could you say it again, "
        "or type it on the keypad?"
    )
    assert hints(events)[0].slot == "order_number"
    events = await c.keypad("1098")
    assert "I still couldn't find order ten ninety-eight" in said(events)
    transfer = events[-1]
    assert isinstance(transfer, Transfer)
    assert transfer.number == HUMAN_NUMBER
    assert "1099" in transfer.summary and "1098" in transfer.summary
    assert c.agent.handoff is True
    assert c.events.of("handoff") == [
        {"type": "handoff", "order": None, "reason": "order_not_found"}
    ]
    assert [e["found"] for e in c.events.of("order.looked_up")] == [False, False]
    assert await c.hear("hello?") == []  # the call is with a person now


async def test_human_number_is_configurable():
    orders, events = FakeOrders(), FakeEvents()
    services = Services(orders, FakeTracking(), FakeMessenger(), events, shop_name=SHOP)
    info = CallInfo("CA9", STRANGER, "+18005550100")
    agent = Agent(None, services, info, human_number="+15550000000", clock=lambda: NOW)
    [e async for e in agent.start()]
    out = [e async for e in agent.hear("operator please")]
    assert out[-1].number == "+15550000000"


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
    assert c.messenger.sent == [
        {
            "to": MARIA,
            "body": (
                "Acme Goods: tracking for order 1001 (linen shirt): "
                "https://track.example.com/ups/TRK1001"
            ),
            "idempotency_key": "CA123:tracking:1001",
        }
    ]
    assert c.events.of("sms.sent") == [
        {"type": "sms.sent", "order": "1001", "to": MARIA, "message_id": "SM1"}
    ]
    # Asking about the same order again does not offer (or send) another text.
    events = await c.hear("and where is order 1001 again?")
    assert "text you" not in said(events)
    assert len(c.messenger.sent) == 1
    agent_lines = [text for role, text in c.agent.transcript if role == "agent"]
    assert not any("http" in line or "track.example" in line for line in agent_lines)


async def test_declining_the_text_sends_nothing():
    c = call(MARIA)
    await c.start()
    await c.hear("where's my package")
    events = await c.hear("nah")
    assert said(events) == "Okay. Is there anything else I can help with?"
    assert c.messenger.sent == []
    events = await c.hear("no that's all")
    assert events[-1] == EndCall("caller_done")


# --- several orders, problems ---------------------------------------------------------------


async def test_caller_with_several_open_orders_is_asked_which_one():
    c = call(TOM)
    await c.start()
    events = await c.hear("where's my stuff")
    assert said(events).endswith("Is this about the coffee grinder or the espresso machine?")
    assert hints(events)[0].slot == "order_choice"
    assert set(hints(events)[0].vocabulary) == {"coffee grinder", "espresso machine"}
    events = await c.hear("the grinder")
    assert (
        "Your coffee grinder is delayed: USPS says it has been held at customs since Monday."
        in said(events)
    )
    assert c.events.of("order.looked_up") == [
        {"type": "order.looked_up", "order": "1008", "found": True, "via": "choice"}
    ]


async def test_lost_parcel_is_said_honestly_and_a_person_offered():
    c = call(TOM)
    await c.start()
    await c.hear("where is my order")
    events = await c.hear("the espresso machine")
    assert said(events) == (
        "Let me look that up. Your espresso machine shipped with UPS on Saturday, May 31st, but "
        "the carrier hasn't scanned it for nine days. That usually means it's lost. "
        "I'm sorry about that. Would you like me to connect you with a person who can look "
        "into it?"
    )
    assert hints(events) == [Hints(slot="yes_no")]
    assert c.events.of("escalation") == [{"type": "escalation", "order": "1007", "reason": "lost"}]
    events = await c.hear("yes")
    assert isinstance(events[-1], Transfer)
    assert "1007 lost, no carrier scan for 9 days" in events[-1].summary
    assert c.events.of("handoff") == [{"type": "handoff", "order": "1007", "reason": "lost"}]


async def test_other_customers_order_gets_status_only():
    c = call(MARIA)
    await c.start()
    events = await c.hear("what about order ten oh three")
    text = said(events)
    assert "delivered on Saturday the 14th" in text
    assert "James" not in text and "Chen" not in text and "@" not in text


# --- corrections ----------------------------------------------------------------------------


async def test_correction_after_a_status():
    c = call()
    await c.start()
    events = await c.hear("where is order 1001")
    assert "linen shirt" in said(events)
    events = await c.hear("no, I said 1003")
    assert "Your wireless earbuds were delivered" in said(events)
    assert [e["order"] for e in c.events.of("order.looked_up")] == ["1001", "1003"]


async def test_correction_after_a_miss():
    c = call()
    await c.start()
    await c.hear("where is my order")
    await c.hear("ten ninety nine")
    events = await c.hear("no, I said ten oh three")
    assert "Your wireless earbuds were delivered" in said(events)
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
    assert isinstance(events[1], Transfer) and events[1].number == HUMAN_NUMBER
    assert c.agent.handoff is True
    assert c.events.of("handoff")[0]["reason"] == "caller_request"


async def test_not_understood_twice_hands_off():
    c = call()
    await c.start()
    events = await c.hear("what's the weather like")
    assert said(events) == (
        "I can tell you where an order is, and help with returns and deliveries. "
        "What would you like to do?"
    )
    events = await c.hear("purple monkey dishwasher")
    assert isinstance(events[-1], Transfer)
    assert c.events.of("handoff")[0]["reason"] == "not_understood"


async def test_understanding_in_between_resets_the_misses():
    c = call()
    await c.start()
    await c.hear("blah blah")
    await c.hear("where is my order")
    events = await c.hear("hmm")
    assert not any(isinstance(e, Transfer) for e in events)
    assert said(events).startswith("Sorry, I didn't catch that. What's your order number?")


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


# --- failures, outbound, summary ------------------------------------------------------------


async def test_order_system_down_hands_off_instead_of_going_silent():
    c = call()
    await c.start()
    c.orders.down = True
    events = await c.hear("where is order 1001")
    assert events[0] == Say("Let me look that up.")
    assert "can't reach our order system" in said(events)
    assert isinstance(events[-1], Transfer)
    assert c.events.of("escalation")[0]["reason"] == "system_error"


async def test_caller_lookup_failure_is_an_unknown_caller():
    c = call(MARIA)
    c.orders.down = True
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
    for part in (
        "Maria Lopez",
        "order_status",
        "1001 in transit",
        "Tracking texted",
        "caller_done",
    ):
        assert part in summary


async def test_end_on_hangup_mid_call():
    c = call()
    await c.start()
    await c.hear("where is my order")
    summary = await c.agent.end("hangup")
    assert "Outcome: hangup" in summary
    assert await c.hear("hello") == []


async def test_transcript_and_intents():
    c = call(MARIA)
    await c.start()
    await c.hear("where is my order")
    await c.hear("where is my order")
    await c.keypad("1001")
    assert c.agent.intents == ["order_status"]
    roles = [role for role, _ in c.agent.transcript]
    assert roles[0] == "agent" and "caller" in roles
    assert ("caller", "[keypad] 1001") in c.agent.transcript
    assert [e["name"] for e in c.events.of("intent")] == ["order_status", "order_status"]


@pytest.mark.parametrize("text", ["", "   "])
async def test_empty_transcripts_are_ignored(text):
    c = call()
    await c.start()
    assert await c.hear(text) == []


async def test_slow_events_store_never_blocks_the_call_forever():
    class StuckEvents(FakeEvents):
        async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
            await asyncio.sleep(3600)

    services = Services(FakeOrders(), FakeTracking(), FakeMessenger(), StuckEvents())
    agent = Agent(None, services, CallInfo("CA1", MARIA, "+1800"), timeout=0.01)
    events = [e async for e in agent.start()]
    assert said(events).startswith("Hi Maria")
