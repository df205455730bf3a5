"""The first-milestone agent: greet the caller, find their order, say where it is.

The turn logic is written by hand here; a later milestone declares it as YAML flows behind the
same contract (`start`, `hear`, `keypad`, `silence`, `end`; DESIGN.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, TypeVar

from dialog.events import CallInfo, EndCall, Event, Hints, Say, Transfer
from dialog.speech import (
    StatusKind,
    StatusReport,
    describe_order,
    say_items,
    say_order_number,
)
from dialog.understanding import Understanding, classify, match_item
from integrations.models import Customer, Order, Shipment
from integrations.protocols import Services

__all__ = ["HUMAN_NUMBER", "Agent"]

HUMAN_NUMBER = "+18005550199"
"""Where callers are transferred when they need a person."""

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_OPEN = "What can I do for you?"
_ASK_NUMBER = (
    "What's your order number? You can say it, or type it on your keypad and then press pound."
)
_ASK_NUMBER_SHORT = "What's your order number?"
_ANYTHING_ELSE = "Is there anything else I can help with?"
_CAPABILITIES = "I can tell you where an order is, and help with returns and deliveries."
_OFFER_SMS = "Would you like me to text you the tracking link?"
_SYSTEM_DOWN = (
    "I'm sorry, I can't reach our order system right now, so I'll connect you with a person."
)
_OFFER_PERSON = "Would you like me to connect you with a person who can look into it?"
# A neutral prompt: an example number ("Order number 1001.") makes tiny.en drop digits.
_ORDER_NUMBER_HINTS = Hints(slot="order_number", prompt="Order number:", expect_dtmf=True)
_YES_NO_HINTS = Hints(slot="yes_no")
_LOW_CONFIDENCE = 0.4
_MAX_MISSES = 2

# Situations where a tracking link helps, and ones a person has to sort out.
_TEXTABLE = {
    StatusKind.PRE_TRANSIT,
    StatusKind.IN_TRANSIT,
    StatusKind.OUT_FOR_DELIVERY,
    StatusKind.FAILED_ATTEMPT,
    StatusKind.DELAYED,
}
_NEEDS_PERSON = {StatusKind.LOST, StatusKind.PROBLEM}


class _Expect(StrEnum):
    """What the agent's last question asked for."""

    OPEN = "open"
    ORDER_NUMBER = "order_number"
    ORDER_CHOICE = "order_choice"
    SEND_SMS = "send_sms"
    HANDOFF = "handoff"
    ANYTHING_ELSE = "anything_else"


_YES_NO = {_Expect.SEND_SMS, _Expect.HANDOFF, _Expect.ANYTHING_ELSE}


@dataclass(frozen=True)
class _Question:
    """The question the caller is answering: in full, short for reprompts, and its hints."""

    text: str
    short: str
    expect: _Expect
    hints: Hints | None = None


class _Unavailable(Exception):
    """A service the answer depends on failed or timed out."""


def _is_open(order: Order) -> bool:
    """Still on its way to the customer, going by the shop's own records."""
    return order.fulfillment in ("unfulfilled", "fulfilled") and order.delivered_at is None


def _trackable(order: Order) -> bool:
    """Shipped with a carrier and a tracking number we can ask about."""
    return order.fulfillment == "fulfilled" and bool(order.carrier and order.tracking_number)


def _or_list(items: list[str]) -> str:
    """Join choices the way they are said: "a or b", "a, b, or c"."""
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + f", or {items[-1]}"


class Agent:
    """One call's dialog for "where is my order": greeting, lookup, status, SMS, handoff.

    Every public method is an async generator of events (`Say`, `Hints`, `EndCall`,
    `Transfer`), each yielded as soon as it is known. After `EndCall` or `Transfer` the agent
    yields nothing more.
    """

    def __init__(
        self,
        flows: object | None,
        services: Services,
        call_info: CallInfo,
        *,
        human_number: str = HUMAN_NUMBER,
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo = UTC,
        timeout: float = 8.0,
    ) -> None:
        self.flows = flows  # unused until flows are declared in YAML
        self._services = services
        self._call = call_info
        self._human_number = human_number
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tz = tz
        self._timeout = timeout

        self._question = _Question(_OPEN, _OPEN, _Expect.OPEN)
        self._customer: Customer | None = None
        self._choices: list[Order] = []
        self._current: Order | None = None
        self._shipment: Shipment | None = None
        self._offer_reason = ""
        self._reports: dict[str, StatusReport] = {}
        self._not_found: list[str] = []
        self._texted: list[str] = []
        self._order_misses = 0
        self._misses = 0
        self._silences = 0
        self._filled = False
        self._finished = False
        self._outcome: str | None = None
        self._summary: str | None = None
        self._intents: list[str] = []
        self._handoff = False
        self._transcript: list[tuple[str, str]] = []

    # --- what the voice layer and the report read ---------------------------------------------

    @property
    def intents(self) -> list[str]:
        """Intents recognised so far, in order, each once."""
        return list(self._intents)

    @property
    def handoff(self) -> bool:
        """Whether the call was handed to a person."""
        return self._handoff

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) pairs, role "agent" or "caller", in the order they happened."""
        return list(self._transcript)

    @property
    def summary(self) -> str | None:
        """The call's summary, once `end` has been called."""
        return self._summary

    # --- the contract -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Event]:
        """Greet the caller, by name when caller ID matches a customer."""
        async for event in self._turn(self._greet()):
            yield event

    async def hear(self, text: str, confidence: float = 1.0) -> AsyncIterator[Event]:
        """React to one transcribed caller utterance."""
        if self._finished or not text.strip():
            return
        self._transcript.append(("caller", text))
        self._silences = 0
        async for event in self._turn(self._on_speech(text, confidence)):
            yield event

    async def keypad(self, digits: str) -> AsyncIterator[Event]:
        """React to digits typed on the keypad (without the closing '#')."""
        if self._finished:
            return
        self._transcript.append(("caller", f"[keypad] {digits}"))
        self._silences = 0
        async for event in self._turn(self._on_keypad(digits)):
            yield event

    async def silence(self, seconds: float) -> AsyncIterator[Event]:
        """The caller said nothing for `seconds`: reprompt once, then say goodbye."""
        if self._finished:
            return
        async for event in self._turn(self._on_silence()):
            yield event

    async def end(self, reason: str) -> str:
        """The call is over: return a short summary and keep it on `summary`."""
        self._finished = True
        self._outcome = self._outcome or reason
        self._summary = self._summarize()
        return self._summary

    # --- plumbing -----------------------------------------------------------------------------

    async def _turn(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """Run one turn: keep the transcript, and hand off if the order system is down."""
        self._filled = False
        try:
            async with aclosing(events):
                async for event in events:
                    yield self._seen(event)
        except Exception as exc:
            if not isinstance(exc, _Unavailable):
                _log.exception("turn failed on %s", self._call.call_sid)
            if self._finished:
                return
            # Never leave a caller in silence: a person can pick the call up.
            await self._record("escalation", order=self._order_ref(), reason="system_error")
            async for event in self._transfer(_SYSTEM_DOWN, "system_error"):
                yield self._seen(event)

    def _seen(self, event: Event) -> Event:
        if isinstance(event, Say):
            self._transcript.append(("agent", event.text))
        elif isinstance(event, EndCall | Transfer):
            self._finished = True
        return event

    async def _fetch(self, awaitable: Awaitable[_T]) -> _T:
        """Await a service call with a timeout; any failure becomes `_Unavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                return await awaitable
        except Exception as exc:
            _log.warning("service call failed on %s: %r", self._call.call_sid, exc)
            raise _Unavailable from exc

    async def _record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        """Record an event; a failing store never breaks the call."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._services.events.record(type, order=order, **data)
        except Exception:
            _log.exception("could not record %s on %s", type, self._call.call_sid)

    async def _note(self, intent: str, order: str | None) -> None:
        if intent not in self._intents:
            self._intents.append(intent)
        await self._record("intent", order=order, name=intent)

    def _order_ref(self) -> str | None:
        return self._current.number if self._current else None

    def _filler(self, text: str = "Let me look that up.") -> list[Event]:
        """Something to say before the first slow lookup of a turn, once per turn."""
        if self._filled:
            return []
        self._filled = True
        return [Say(text)]

    def _ask(
        self,
        lead: str,
        question: str,
        expect: _Expect,
        hints: Hints | None = None,
        short: str | None = None,
    ) -> list[Event]:
        """Say `lead` and ask `question`, remembering it for reprompts."""
        self._question = _Question(question, short or question, expect, hints)
        events: list[Event] = [Say(f"{lead} {question}" if lead else question)]
        if hints is not None:
            events.append(hints)
        return events

    def _repeat(self, lead: str, *, short: bool = False) -> list[Event]:
        """Ask the last question again after `lead`."""
        q = self._question
        events: list[Event] = [Say(f"{lead} {q.short if short else q.text}")]
        if q.hints is not None:
            events.append(q.hints)
        return events

    def _ask_number(self, lead: str = "") -> list[Event]:
        return self._ask(
            lead, _ASK_NUMBER, _Expect.ORDER_NUMBER, _ORDER_NUMBER_HINTS, _ASK_NUMBER_SHORT
        )

    async def _transfer(self, lead: str, reason: str) -> AsyncIterator[Event]:
        """Tell the caller, record the handoff, and transfer them to a person."""
        self._handoff = True
        self._outcome = f"transferred to a person ({reason})"
        yield Say(lead)
        await self._record("handoff", order=self._order_ref(), reason=reason)
        yield Transfer(number=self._human_number, summary=self._summarize())

    async def _goodbye(self) -> AsyncIterator[Event]:
        self._outcome = "caller_done"
        yield Say(f"Thanks for calling {self._services.shop_name}. Goodbye.")
        yield EndCall("caller_done")

    # --- greeting -----------------------------------------------------------------------------

    async def _identify(self) -> None:
        number = self._call.caller_number
        if not number.startswith("+"):
            return  # withheld or anonymous
        try:
            customer = await self._fetch(self._services.orders.customer_by_phone(number))
        except _Unavailable:
            return  # carry on as an unknown caller
        if customer is not None:
            self._customer = customer
            await self._record("caller.identified", customer_id=customer.id)

    async def _greet(self) -> AsyncIterator[Event]:
        await self._identify()
        shop = self._services.shop_name
        hi = f"Hi {self._customer.first_name}" if self._customer else "Hi"
        if self._call.direction == "outbound":
            async for event in self._greet_outbound(hi, shop):
                yield event
            return
        yield Say(
            f"{hi}, thanks for calling {shop}. "
            f"I can help with your orders, returns and deliveries. {_OPEN}"
        )

    async def _greet_outbound(self, hi: str, shop: str) -> AsyncIterator[Event]:
        """We called them: say who we are and why, then the order's status."""
        ref = self._call.order_ref
        if not ref:
            yield Say(f"{hi}, this is {shop}. {_OPEN}")
            return
        self._filled = True  # no "let me look that up" on a call we placed
        yield Say(f"{hi}, this is {shop}, calling about your order {say_order_number(ref)}.")
        order = await self._fetch(self._services.orders.order(ref))
        await self._record("order.looked_up", order=ref, found=order is not None, via="outbound")
        if order is None:
            for event in self._ask("", _OPEN, _Expect.OPEN):
                yield event
            return
        async for event in self._report(order):
            yield event

    # --- caller turns -------------------------------------------------------------------------

    async def _on_speech(self, text: str, confidence: float) -> AsyncIterator[Event]:
        understood = classify(text)
        routed = self._route(understood, text)
        if routed is None:
            events = self._not_understood(confidence)
        else:
            self._misses = 0
            intent, events = routed
            if intent is not None:
                await self._note(intent, understood.order_number or self._order_ref())
        async for event in events:
            yield event

    def _route(self, u: Understanding, text: str) -> tuple[str | None, AsyncIterator[Event]] | None:
        """Pick what to do with an utterance; None when it was not understood."""
        expect = self._question.expect
        if u.order_number is not None:
            # Also covers corrections: "no, I said 1003".
            return "order_status", self._lookup(u.order_number, via="speech")
        if u.intent == "human":
            lead = "Sure, I'll connect you with a person now."
            return "human", self._transfer(lead, "caller_request")
        if u.intent == "goodbye":
            return "goodbye", self._goodbye()
        if expect == _Expect.ORDER_CHOICE and (order := self._chosen(text)) is not None:
            return None, self._report_known(order, via="choice")
        if expect in _YES_NO and u.intent in ("yes", "no"):
            return u.intent, self._answer(expect, u.intent == "yes")
        if expect == _Expect.ORDER_NUMBER and u.intent == "no":
            return "no", self._offer_person_without_number()
        if u.intent == "order_status":
            return "order_status", self._where_is_my_order()
        return None

    async def _answer(self, expect: _Expect, yes: bool) -> AsyncIterator[Event]:
        """A yes or no to the agent's last yes/no question."""
        if expect == _Expect.SEND_SMS and yes:
            async for event in self._send_tracking():
                yield event
        elif expect == _Expect.HANDOFF and yes:
            async for event in self._transfer(
                "Okay, I'll connect you with a person now.", self._offer_reason
            ):
                yield event
        elif expect == _Expect.ANYTHING_ELSE and not yes:
            async for event in self._goodbye():
                yield event
        elif expect == _Expect.ANYTHING_ELSE:
            for event in self._ask("Sure.", "What can I help you with?", _Expect.OPEN):
                yield event
        else:
            for event in self._ask("Okay.", _ANYTHING_ELSE, _Expect.ANYTHING_ELSE):
                yield event

    async def _offer_person_without_number(self) -> AsyncIterator[Event]:
        self._offer_reason = "no_order_number"
        lead = "No problem. A person can find your order by your name or email."
        question = "Would you like me to connect you?"
        for event in self._ask(lead, question, _Expect.HANDOFF, _YES_NO_HINTS):
            yield event

    async def _not_understood(self, confidence: float) -> AsyncIterator[Event]:
        self._misses += 1
        if self._misses >= _MAX_MISSES:
            lead = "I'm sorry, I'm having trouble understanding. Let me connect you with a person."
            async for event in self._transfer(lead, "not_understood"):
                yield event
            return
        open_question = self._question.expect in (_Expect.OPEN, _Expect.ANYTHING_ELSE)
        if open_question and confidence >= _LOW_CONFIDENCE:
            events = self._ask(_CAPABILITIES, "What would you like to do?", _Expect.OPEN)
        else:
            events = self._repeat("Sorry, I didn't catch that.")
        for event in events:
            yield event

    async def _on_keypad(self, digits: str) -> AsyncIterator[Event]:
        digits = "".join(c for c in digits if c.isdigit())
        if self._question.expect not in (_Expect.ORDER_NUMBER, _Expect.ORDER_CHOICE):
            for event in self._repeat("Sorry, I wasn't expecting the keypad there.", short=True):
                yield event
            return
        if not digits:
            for event in self._repeat("I didn't get any digits."):
                yield event
            return
        self._misses = 0
        async for event in self._lookup(digits, via="keypad"):
            yield event

    async def _on_silence(self) -> AsyncIterator[Event]:
        self._silences += 1
        if self._silences >= _MAX_MISSES:
            self._outcome = "silence"
            yield Say("I haven't heard anything, so I'll end the call now. Goodbye.")
            yield EndCall("silence")
            return
        for event in self._repeat("Are you still there?", short=True):
            yield event

    # --- orders -------------------------------------------------------------------------------

    async def _where_is_my_order(self) -> AsyncIterator[Event]:
        """Find the order the caller means: from caller ID when we know them, else ask."""
        if self._customer is None:
            for event in self._ask_number():
                yield event
            return
        for event in self._filler("Let me check your orders."):
            yield event
        orders = await self._fetch(self._services.orders.orders_of(self._customer.id))
        newest_first = sorted(orders, key=lambda o: o.placed_at, reverse=True)
        pending = [o for o in newest_first if _is_open(o) and o.number not in self._reports]
        if len(pending) > 1:
            for event in self._ask_choice(pending):
                yield event
        elif pending or (newest_first and not self._reports):
            # The most recent order still on its way; if none is, the most recent one.
            order = (pending or newest_first)[0]
            async for event in self._report_known(order, via="caller_id"):
                yield event
        else:
            other = "another open order" if self._reports else "any orders"
            for event in self._ask_number(f"I don't see {other} for this phone number."):
                yield event

    def _ask_choice(self, orders: list[Order]) -> list[Event]:
        self._choices = orders
        names = [say_items(o) for o in orders]
        question = f"Is this about {_or_list([f'the {n}' for n in names])}?"
        hints = Hints(
            slot="order_choice",
            prompt=" ".join(f"The {n}." for n in names),
            expect_dtmf=True,
            vocabulary=tuple(names),
        )
        return self._ask("", question, _Expect.ORDER_CHOICE, hints)

    def _chosen(self, text: str) -> Order | None:
        index = match_item(text, [o.lines[0].name if o.lines else "" for o in self._choices])
        return None if index is None else self._choices[index]

    async def _report_known(self, order: Order, *, via: str) -> AsyncIterator[Event]:
        """Report an order found from caller ID, without the caller giving its number."""
        await self._record("order.looked_up", order=order.number, found=True, via=via)
        async for event in self._report(order):
            yield event

    async def _lookup(self, number: str, *, via: str) -> AsyncIterator[Event]:
        """Look an order up by the number the caller gave and say where it is."""
        for event in self._filler():
            yield event
        order = await self._fetch(self._services.orders.order(number))
        await self._record("order.looked_up", order=number, found=order is not None, via=via)
        if order is None:
            events = self._order_not_found(number)
        else:
            self._order_misses = 0
            events = self._report(order)
        async for event in events:
            yield event

    async def _order_not_found(self, number: str) -> AsyncIterator[Event]:
        self._order_misses += 1
        self._not_found.append(number)
        spoken = say_order_number(number)
        if self._order_misses >= _MAX_MISSES:
            lead = f"I still couldn't find order {spoken}, so I'll connect you with a person."
            async for event in self._transfer(lead, "order_not_found"):
                yield event
            return
        for event in self._ask(
            f"I couldn't find order {spoken}.",
            "Could you say it again, or type it on the keypad?",
            _Expect.ORDER_NUMBER,
            _ORDER_NUMBER_HINTS,
            _ASK_NUMBER_SHORT,
        ):
            yield event

    async def _track(self, order: Order) -> Shipment | None:
        """The carrier's view of a shipped order; None when there is none or it can't be had."""
        if not _trackable(order):
            return None
        try:
            shipment = await self._fetch(
                self._services.tracking.track(order.carrier, order.tracking_number)
            )
        except _Unavailable:
            shipment, status = None, "unavailable"
        else:
            status = shipment.status.value if shipment else "not_found"
        await self._record("tracking.looked_up", order=order.number, status=status)
        return shipment

    async def _report(self, order: Order) -> AsyncIterator[Event]:
        """Say where `order` is, then offer what fits: a tracking text or a person."""
        self._current = order
        if _trackable(order):
            for event in self._filler():
                yield event
        shipment = await self._track(order)
        self._shipment = shipment
        report = describe_order(order, shipment, self._clock(), tz=self._tz)
        self._reports[order.number] = report
        if report.kind in _NEEDS_PERSON:
            self._offer_reason = report.kind.value
            await self._record("escalation", order=order.number, reason=report.kind.value)
            events = self._ask(
                f"{report.text} I'm sorry about that.",
                _OFFER_PERSON,
                _Expect.HANDOFF,
                _YES_NO_HINTS,
            )
        elif self._can_text(order, shipment, report):
            events = self._ask(report.text, _OFFER_SMS, _Expect.SEND_SMS, _YES_NO_HINTS)
        else:
            events = self._ask(report.text, _ANYTHING_ELSE, _Expect.ANYTHING_ELSE)
        for event in events:
            yield event

    def _can_text(self, order: Order, shipment: Shipment | None, report: StatusReport) -> bool:
        return (
            report.kind in _TEXTABLE
            and shipment is not None
            and bool(shipment.tracking_url)
            and order.number not in self._texted
            and self._call.caller_number.startswith("+")
        )

    async def _send_tracking(self) -> AsyncIterator[Event]:
        """Text the tracking link of the order just discussed to the caller's phone."""
        order, shipment = self._current, self._shipment
        if order is None or shipment is None or not shipment.tracking_url:
            return
        to = self._call.caller_number
        body = (
            f"{self._services.shop_name}: tracking for order {order.number} "
            f"({say_items(order)}): {shipment.tracking_url}"
        )
        key = f"{self._call.call_sid}:tracking:{order.number}"
        try:
            message_id = await self._fetch(
                self._services.messenger.send_sms(to=to, body=body, idempotency_key=key)
            )
        except _Unavailable:
            lead = "Sorry, I couldn't send the text just now."
        else:
            self._texted.append(order.number)
            await self._record("sms.sent", order=order.number, to=to, message_id=message_id)
            lead = "Done. I've texted the tracking link to the number you're calling from."
        for event in self._ask(lead, _ANYTHING_ELSE, _Expect.ANYTHING_ELSE):
            yield event

    # --- summary ------------------------------------------------------------------------------

    def _summarize(self) -> str:
        """A few lines for the person taking over, or for the call record."""
        c = self._customer
        who = f"{c.name} (customer {c.id})" if c else "not identified"
        parts = [f"Caller {self._call.caller_number or 'unknown'}: {who}"]
        if self._intents:
            parts.append("Intents: " + ", ".join(self._intents))
        if self._reports:
            parts.append(
                "Orders: " + "; ".join(_order_line(n, r) for n, r in self._reports.items())
            )
        if self._not_found:
            parts.append("Not found: " + ", ".join(self._not_found))
        if self._texted:
            parts.append("Tracking texted for: " + ", ".join(self._texted))
        parts.append(f"Outcome: {self._outcome or 'in progress'}")
        return ". ".join(parts) + "."


def _order_line(number: str, report: StatusReport) -> str:
    line = f"{number} {report.kind.value.replace('_', ' ')}"
    if report.days_without_scan is not None:
        line += f", no carrier scan for {report.days_without_scan} days"
    return line
