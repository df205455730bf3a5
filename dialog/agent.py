"""The agent: one call's dialog, run by the SOP flows in `dialog/flows/` (DESIGN.md contract).

`Agent(flows, services, call_info)` greets, hears, and answers through the flow engine. It
decides what each caller turn is: an answer to the question the flow asked, a new request
(an intent that starts a flow), a request for a person or a goodbye, or something not
understood; and it notices an upset caller. Everything the agent says is in the flow files;
everything it does goes through the registered actions and the integrations protocols.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any

from dialog.actions import ACTIONS, ActionContext
from dialog.engine import Engine
from dialog.events import CallInfo, EndCall, Event, Hints, Say, Transfer
from dialog.loader import Flows, load_flows
from dialog.mood import read_mood
from dialog.policy import Policy, load_policy
from dialog.slots import SlotContext
from dialog.understanding import Understanding, classify
from integrations.models import Customer, Order
from integrations.protocols import Services
from integrations.redact import redact_card_numbers

__all__ = ["HUMAN_NUMBER", "Agent"]

HUMAN_NUMBER = "+18005550199"
"""Where callers are transferred when `Services` names no human number."""

_log = logging.getLogger(__name__)

_LOW_CONFIDENCE = 0.4
_MAX_ESCALATIONS = 2  # then the caller keeps the empathetic wording (and can ask for a person)
# Answers that an order number in the same breath overrides ("no, I said 1003").
_SWITCHABLE = {"yes_no", "choice", "text", "size", "return_reason", "coupon_code", "rating"}
_OPEN_INTENTS_NOT_FLOWS = {"yes", "no", "unknown", "human", "goodbye"}

# What the agent says when the voice layer fails or the call runs too long. Not in the flow
# files: these moments are not procedures, and they must work whatever flows a shop writes.
_HEARING_TROUBLE = (
    "Sorry, I'm having trouble hearing you right now. "
    "Would you like me to connect you with a person?"
)
_OFFER_DECLINED = "Okay."
_OFFER_TAKEN = "Okay, I'll connect you with a person now."
_FAULT_LEADS = {
    "stt_failed": "I'm sorry, I still can't hear you properly, so I'll connect you with a person.",
}
_FAULT_LEAD = "I'm sorry, I'm having a technical problem, so I'll connect you with a person."
_WRAP_UP = "We've been talking for quite a while, so I need to end this call now."
_WRAP_UP_TICKET = (
    "I've passed everything we discussed to our team, and a person will follow up with you."
)
_WRAP_UP_TEXTED = "I've texted you the ticket number."
_WRAP_UP_GOODBYE = "Thank you for calling. Goodbye."


@cache
def _shipped_flows() -> Flows:
    """The shipped flows, read and checked once per process."""
    return load_flows()


@cache
def _shipped_policy() -> Policy:
    """The shipped policy, read and checked once per process."""
    return load_policy()


class _RecordingSink:
    """Forwards events to the real sink and keeps them for the call's summary."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.recorded: list[tuple[str, str | None, dict[str, Any]]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        self.recorded.append((type, order, data))
        await self.sink.record(type, order=order, **data)


class Agent:
    """One call's dialog: greeting, requests, procedures, handoff, goodbye.

    `flows` defaults to the shipped flows and `policy` to the shipped policy. Every public
    method is an async generator of `Say`, `Hints`, `EndCall` and `Transfer` events, each
    yielded as soon as it is known; after `EndCall` or `Transfer` nothing more is said.
    """

    def __init__(
        self,
        flows: Flows | None,
        services: Services,
        call_info: CallInfo,
        *,
        policy: Policy | None = None,
        human_number: str | None = None,
        clock: Callable[[], datetime] | None = None,
        tz: tzinfo | None = None,
        timeout: float = 8.0,
    ) -> None:
        self.flows = flows or _shipped_flows()
        self.policy = policy or _shipped_policy()
        self._call = call_info
        self._sink = _RecordingSink(services.events)
        self._services = _with_events(services, self._sink)
        self._timeout = timeout
        self._intents: list[str] = []
        self._transcript: list[tuple[str, str]] = []
        self._caller_words: list[str] = []
        self._summary: str | None = None
        self._outcome: str | None = None
        self._finished = False
        self._silences = 0
        self._misses = 0
        self._escalations = 0
        self._queued: list[tuple[str, str]] = []  # (intent, the words it was asked with)
        self._asked_anything_else = False
        self._escalate_next = False
        self._served = False
        self._offered: str | None = None  # a person was offered because of this fault
        number = human_number or services.human_number or HUMAN_NUMBER
        self._engine = Engine(
            flows=self.flows,
            services=self._services,
            policy=self.policy,
            call=call_info,
            clock=clock or (lambda: datetime.now(UTC)),
            tz=tz or services.timezone or UTC,
            timeout=timeout,
            human_number=number,
            summary=self._summarize,
            caller_words=self._caller_words,
        )

    # --- what the voice layer and the report read ---------------------------------------------

    @property
    def intents(self) -> list[str]:
        """Intents recognised so far, in order, each once."""
        return list(self._intents)

    @property
    def handoff(self) -> bool:
        """Whether the call was handed to a person."""
        return any(t == "handoff" for t, _o, _d in self._sink.recorded)

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) pairs, role "agent" or "caller", in the order they happened."""
        return list(self._transcript)

    @property
    def summary(self) -> str | None:
        """The call's summary, once `end` has been called."""
        return self._summary

    @property
    def slots(self) -> dict[str, Any]:
        """The call's memory (read-only use: tests and diagnostics)."""
        return self._engine.slots

    # --- the contract -------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Event]:
        """Greet the caller (or, on a call we placed, say why we call)."""
        start = self.flows[self.flows.conversation.roles.start]
        self._served = self._call.direction == "outbound"  # we called: there was a reason
        self._engine.begin(start)
        async for event in self._turn(self._run(), "start"):
            yield event

    async def hear(self, text: str, confidence: float = 1.0) -> AsyncIterator[Event]:
        """React to one transcribed caller utterance."""
        if self._finished or not text.strip():
            return
        text = redact_card_numbers(text)  # never kept in the transcript, a summary or a ticket
        self._transcript.append(("caller", text))
        self._caller_words.append(text.strip())
        self._silences = 0
        async for event in self._turn(self._on_speech(text, confidence), "speech"):
            yield event

    async def keypad(self, digits: str) -> AsyncIterator[Event]:
        """React to digits typed on the keypad (without the closing '#')."""
        if self._finished:
            return
        digits = redact_card_numbers(digits)
        self._offered = None
        self._transcript.append(("caller", f"[keypad] {digits}"))
        self._silences = 0
        async for event in self._turn(self._on_keypad(digits), "keypad"):
            yield event

    async def silence(self, seconds: float) -> AsyncIterator[Event]:
        """The caller said nothing for `seconds`: ask again, then say goodbye."""
        if self._finished:
            return
        self._offered = None  # the question is asked again: a "yes" now answers that
        async for event in self._turn(self._on_silence(), "silence"):
            yield event

    async def end(self, reason: str) -> str:
        """The call is over: return a short summary and keep it on `summary`."""
        self._finished = True
        self._outcome = self._outcome or reason
        self._summary = self._summarize()
        return self._summary

    # --- when the voice layer fails, or the call runs too long (beyond the base contract) -----

    async def offer_person(self, reason: str) -> AsyncIterator[Event]:
        """The caller could not be heard this once (`reason`, e.g. `stt_failed`): apologise
        and offer a person. A "yes" next hands over (with a ticket); anything else carries on."""
        if self._finished:
            return
        self._offered = reason
        yield self._seen(Say(_HEARING_TROUBLE))
        yield Hints(slot="yes_no")

    async def fail(self, reason: str, *, apologised: bool = False) -> AsyncIterator[Event]:
        """The voice layer cannot carry on (`stt_failed`, `tts_failed`): apologise (unless the
        voice layer already has), record an `escalation`, and hand over to a person with a
        ticket holding the conversation so far."""
        if self._finished:
            return
        self._offered = None
        lead = None if apologised else _FAULT_LEADS.get(reason, _FAULT_LEAD)
        async for event in self._turn(self._hand_over(reason, lead), "fault"):
            yield event

    async def wrap_up(self, reason: str) -> AsyncIterator[Event]:
        """The call has gone on too long (`reason`, e.g. `max_duration`): say so, leave a ticket
        for a person to follow up when a request is unfinished, say goodbye and end the call."""
        if self._finished:
            return
        async for event in self._turn(self._wrap_up(reason), "wrap_up"):
            yield event

    # --- plumbing -----------------------------------------------------------------------------

    async def _turn(self, events: AsyncIterator[Event], source: str) -> AsyncIterator[Event]:
        """One turn: keep the transcript; a failure hands over instead of going silent."""
        self._engine.memo["filled"] = False
        self._engine.memo["input"] = source
        try:
            async with aclosing(events):
                async for event in events:
                    yield self._seen(event)
        except Exception:
            _log.exception("turn failed on %s", self._call.call_sid)
            if self._finished:
                return
            async for event in self._engine.system_down():
                yield self._seen(event)
            async for event in self._run():
                yield self._seen(event)

    def _seen(self, event: Event) -> Event:
        if isinstance(event, Say):
            self._transcript.append(("agent", event.text))
        elif isinstance(event, EndCall):
            self._finished = True
            self._outcome = self._outcome or event.reason
        elif isinstance(event, Transfer):
            self._finished = True
            reason = self._engine.slots.get("handoff_reason") or "handoff"
            self._outcome = f"transferred to a person ({reason})"
        return event

    def _order_number(self) -> str | None:
        order = self._engine.slots.get("order")
        return order.number if isinstance(order, Order) else None

    async def _note(self, intent: str, heard: Understanding) -> None:
        if intent not in self._intents:
            self._intents.append(intent)
        await self._sink_intent(intent, heard)

    async def _sink_intent(self, intent: str, heard: Understanding) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._sink.record(
                    "intent",
                    order=heard.order_number or self._order_number(),
                    name=intent,
                    score=heard.score,
                )
        except Exception:
            _log.exception("could not record intent on %s", self._call.call_sid)

    def _maybe_escalate(self) -> None:
        """Put the escalation flow on top of whatever runs, once, for an upset caller."""
        if not self._escalate_next:
            return
        self._escalate_next = False
        engine = self._engine
        roles = self.flows.conversation.roles
        if engine.finished or (
            engine.stack and engine.stack[0].flow.name in (roles.handoff, roles.goodbye)
        ):
            return
        engine.begin(self.flows[roles.escalation], replace=False)

    async def _run(self) -> AsyncIterator[Event]:
        """Run the flows; when the procedure is over, take the next request or ask for one."""
        engine = self._engine
        self._maybe_escalate()
        async for event in engine.run():
            yield event
        if engine.finished or engine.stack:
            return
        if self._queued:
            intent, said = self._queued.pop(0)
            flow = self.flows.for_intent(intent)
            if flow is not None:
                engine.slots["trigger_intent"] = intent
                now, engine.heard = engine.heard, said  # the words that asked for it
                engine.begin(flow)
                engine.heard = now
                self._served = True
                async for event in self._run():
                    yield event
                return
        if engine.listening:
            self._asked_anything_else = False
            hints = self._open_hints()
            if hints is not None:
                yield hints
            return
        engine.listening = True
        if not self._served:  # nothing done yet (an apology, say): the open question
            self._asked_anything_else = False
            yield Say(engine.render(self.flows.conversation.open))
            hints = self._open_hints()
            if hints is not None:
                yield hints
            return
        self._asked_anything_else = True
        yield Say(engine.render(self.flows.conversation.anything_else))
        yield Hints(slot="yes_no")

    def _open_hints(self) -> Hints | None:
        """At an open question: the caller's product names.

        Not the coupon codes: as hotwords at an open question they made tiny.en hear codes
        in ordinary sentences ("where is my package" came out as "WELCOME10"); they are hinted
        when a code is asked for.
        """
        ctx = SlotContext(today=self._engine.clock().date(), values=self._engine.slots)
        return Hints(vocabulary=ctx.products) if ctx.products else None

    # --- caller turns -------------------------------------------------------------------------

    async def _on_speech(self, text: str, confidence: float) -> AsyncIterator[Event]:
        engine = self._engine
        engine.heard = text
        heard = classify(text)
        offered, self._offered = self._offered, None
        if offered and heard.intent in ("yes", "no"):  # the answer to "would you like a person?"
            events = (
                self._hand_over(offered, _OFFER_TAKEN)
                if heard.intent == "yes"
                else _listed(self._repeat(_OFFER_DECLINED))
            )
            async for event in events:
                yield event
            return
        self._escalate_next = self._notice_mood(text)
        if heard.intent == "human":
            await self._note("human", heard)
            self._escalate_next = False  # they asked for a person: no need to offer one
            engine.handoff("caller_request")
            events = self._run()
        elif engine.waiting is not None:
            events = self._answer(heard, confidence)
        else:
            events = self._request(heard, confidence)
        async for event in events:
            yield event

    def _notice_mood(self, text: str) -> bool:
        """Whether this utterance should open the escalation flow."""
        esc = self.policy.escalation
        mood = read_mood(text, threshold=esc.sentiment_below, phrases=esc.phrases)
        if not mood.upset:
            return False
        self._engine.slots["upset"] = True
        self._engine.slots["escalation_reason"] = mood.reason
        if self._escalations >= _MAX_ESCALATIONS:
            return False
        self._escalations += 1
        return True

    async def _answer(self, heard: Understanding, confidence: float) -> AsyncIterator[Event]:
        """The caller answers the question a flow asked (or changes the subject)."""
        engine = self._engine
        step = engine.waiting
        assert step is not None
        current = self._order_number()
        said_number = heard.order_number
        switch = (
            said_number is not None
            and said_number != current
            and engine.waiting_type in _SWITCHABLE
            and (heard.correction or heard.intent not in ("yes", "no"))
        )
        if switch:
            async for event in self._restart_for(heard):
                yield event
            return
        value = engine.parse(engine.heard)
        if value is not None:
            self._misses = 0
            if heard.intent != "unknown":
                await self._note(heard.intent, heard)
            if engine.waiting_type == "yes_no":
                # "No, but I want to return the shoes": the yes or no answers the question,
                # the rest is a request for afterwards. (Other answers can sound like a
                # request themselves: "they stopped working" is a reason, not a new request.)
                self._queue_others(heard)
            engine.accept(value)
            async for event in self._run():
                yield event
            return
        if heard.intent == "goodbye":
            await self._note("goodbye", heard)
            engine.begin(self.flows[self.flows.conversation.roles.goodbye])
            async for event in self._run():
                yield event
            return
        flow = self.flows.for_intent(heard.intent)
        if flow is not None and not self._related(flow.name):
            await self._note(heard.intent, heard)
            self._start_flow(flow, heard)
            async for event in self._run():
                yield event
            return
        if self._escalate_next:
            async for event in self._run():
                yield event
            return
        lead = self.flows.conversation.didnt_catch
        async for event in engine.missed(lead):
            yield event

    def _related(self, name: str) -> bool:
        """Whether flow `name` is the procedure under way, or calls it, or is called by it:
        then words that sound like it ("a refund" while returning) answer the question."""
        top = self._engine.top_flow
        if top is None:
            return False
        return name == top.name or name in self._reach(top.name) or top.name in self._reach(name)

    def _reach(self, name: str) -> set[str]:
        """Every flow `name` calls, directly or not."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            flow = self.flows.flows.get(todo.pop())
            for step in flow.steps if flow else []:
                callee = getattr(step, "call", None)
                if isinstance(callee, str) and callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
        return seen

    async def _restart_for(self, heard: Understanding) -> AsyncIterator[Event]:
        """A different order number mid-question: start the caller's procedure for that one."""
        engine = self._engine
        flow = self.flows.for_intent(heard.intent) if heard.intent not in ("yes", "no") else None
        flow = flow or engine.top_flow or self.flows.for_intent("order_status")
        assert flow is not None
        intent = next((i for i, f in self.flows.by_intent.items() if f == flow.name), flow.name)
        await self._note(intent, heard)
        engine.slots["order"] = None
        self._start_flow(flow, heard, intent)
        async for event in self._run():
            yield event

    def _start_flow(self, flow: Any, heard: Understanding, intent: str | None = None) -> None:
        """Begin a procedure for the caller's request (`intent` names why, when known)."""
        engine = self._engine
        engine.slots["trigger_intent"] = intent or next(
            (i for i in heard.intents if self.flows.by_intent.get(i) == flow.name),
            heard.intent,
        )
        engine.begin(flow)
        self._served = True
        self._asked_anything_else = False
        self._queue_others(heard, started=flow.name)

    def _queue_others(self, heard: Understanding, started: str | None = None) -> None:
        """Other requests in the same sentence ("where is it, and can I return the shoes?")."""
        for intent in heard.intents:
            flow = self.flows.for_intent(intent)
            if flow is None or flow.name == started or self._related(flow.name):
                continue
            if intent not in (queued for queued, _text in self._queued):
                self._queued.append((intent, self._engine.heard))

    async def _request(self, heard: Understanding, confidence: float) -> AsyncIterator[Event]:
        """A turn at the open question: what does the caller want?"""
        engine = self._engine
        intent = heard.intent
        if heard.order_number is not None and intent in ("unknown", "yes", "no"):
            intent = "order_status"
        flow = self.flows.for_intent(intent)
        if flow is not None:
            self._misses = 0
            await self._note(intent, heard)
            self._start_flow(flow, heard)
            async for event in self._run():
                yield event
            return
        if intent == "goodbye" or (intent == "no" and (self._asked_anything_else or self._served)):
            await self._note(intent, heard)
            engine.begin(self.flows[self.flows.conversation.roles.goodbye])
            async for event in self._run():
                yield event
            return
        if intent == "yes" and self._asked_anything_else:
            await self._note(intent, heard)
            self._asked_anything_else = False
            yield Say(engine.render(self.flows.conversation.anything_else_yes))
            hints = self._open_hints()
            if hints is not None:
                yield hints
            return
        if self._escalate_next:
            async for event in self._run():
                yield event
            return
        self._misses += 1
        engine.slots["misses"] = self._misses
        engine.slots["too_many_misses"] = (
            self._misses >= self.policy.escalation.max_misunderstandings
        )
        if confidence < _LOW_CONFIDENCE and self._misses < 2:
            text = self.flows.conversation.didnt_catch + " " + self.flows.conversation.open
            yield Say(engine.render(text))
            return
        engine.begin(self.flows[self.flows.conversation.roles.fallback])
        async for event in self._run():
            yield event

    async def _on_keypad(self, digits: str) -> AsyncIterator[Event]:
        engine = self._engine
        conv = self.flows.conversation
        digits = "".join(c for c in digits if c.isdigit())
        step = engine.waiting
        if step is None or not step.keypad:
            lead = conv.keypad_unexpected
            for event in self._repeat(lead):
                yield event
            return
        if not digits:
            for event in self._repeat(conv.keypad_empty, short=False):
                yield event
            return
        value = engine.parse(digits, keypad=True)
        if value is None:
            async for event in engine.missed(conv.didnt_catch):
                yield event
            return
        self._misses = 0
        engine.accept(value)
        async for event in self._run():
            yield event

    def _repeat(self, lead: str, *, short: bool = True) -> list[Event]:
        """Say `lead` and the question the caller is answering again."""
        engine = self._engine
        question = engine.question(short=short)
        if question:
            first = question[0]
            assert isinstance(first, Say)
            return [Say(f"{lead} {first.text}"), *question[1:]]
        conv = self.flows.conversation
        again = conv.anything_else if self._asked_anything_else else conv.open
        return [Say(engine.render(f"{lead} {again}"))]

    async def _on_silence(self) -> AsyncIterator[Event]:
        self._silences += 1
        conv = self.flows.conversation
        if self._silences >= conv.max_silences:
            self._outcome = "silence"
            self._engine.finished = True
            yield Say(self._engine.render(conv.silence_goodbye))
            yield EndCall("silence")
            return
        for event in self._repeat(conv.still_there):
            yield event

    # --- faults and the end of a long call ----------------------------------------------------

    async def _hand_over(self, reason: str, lead: str | None) -> AsyncIterator[Event]:
        """To a person, with a ticket: `lead` said first, the fault recorded as an escalation."""
        engine = self._engine
        if lead:
            yield Say(lead)
        await self._record("escalation", reason=reason)
        engine.slots["ticket_reason"] = reason
        # The handoff flow's path for a fault already announced: straight to the ticket, the
        # texted ticket number and the transfer, without a second "I'll connect you".
        engine.handoff("system_error")
        async for event in self._run():
            yield event

    async def _wrap_up(self, reason: str) -> AsyncIterator[Event]:
        engine = self._engine
        unfinished = bool(engine.stack or self._queued)  # a request was still under way
        ticket, texted = await self._leave_ticket(reason) if unfinished else (None, False)
        yield Say(_WRAP_UP, barge_in=False)
        if ticket:
            yield Say(_WRAP_UP_TICKET, barge_in=False)
            if texted:
                yield Say(_WRAP_UP_TEXTED, barge_in=False)
        yield Say(_WRAP_UP_GOODBYE, barge_in=False)
        engine.finished = True
        yield EndCall(reason)

    async def _leave_ticket(self, reason: str) -> tuple[str | None, bool]:
        """The handoff flow's ticket (and its number by SMS), outside any flow; never raises."""
        engine = self._engine
        engine.slots["ticket_reason"] = reason
        ctx = ActionContext(
            services=self._services,
            policy=self.policy,
            slots=engine.slots,
            call=self._call,
            now=engine.clock(),
            tz=engine.tz,
            emit=_drop,
            sms_templates=self.flows.sms,
            caller_words=self._caller_words,
            summary=self._summarize,
            memo=engine.memo,
            timeout=self._timeout,
            human_number=engine.human_number,
        )
        try:
            await ACTIONS["create_ticket"].run(ctx)
            if engine.slots.get("ticket_id"):
                await ACTIONS["text_ticket_number"].run(ctx)
        except Exception:
            _log.exception("could not leave a ticket on %s", self._call.call_sid)
        return engine.slots.get("ticket_id"), bool(engine.slots.get("ticket_texted"))

    async def _record(self, type: str, **data: Any) -> None:
        """Record an event about the current order; a failure is logged, never raised."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._sink.record(type, order=self._order_number(), **data)
        except Exception:
            _log.exception("could not record %s on %s", type, self._call.call_sid)

    # --- summary ------------------------------------------------------------------------------

    def _summarize(self) -> str:
        """A few lines for the person taking over, or for the call record."""
        slots = self._engine.slots
        customer = slots.get("customer")
        who = (
            f"{customer.name} (customer {customer.id})"
            if isinstance(customer, Customer)
            else ("not identified")
        )
        if slots.get("verified_customer"):
            who += f", verified by {slots.get('verified_by') or 'second factor'}"
        parts = [f"Caller {self._call.caller_number or 'unknown'}: {who}"]
        if self._call.direction == "outbound":
            parts.append(f"Outbound call ({self._call.purpose or 'no purpose'})")
        if self._intents:
            parts.append("Intents: " + ", ".join(self._intents))
        reports = self._engine.memo.get("reports", {})
        if reports:
            parts.append("Orders: " + "; ".join(_order_line(n, r) for n, r in reports.items()))
        not_found = self._engine.memo.get("not_found", [])
        if not_found:
            parts.append("Not found: " + ", ".join(not_found))
        decisions = [_decision(t, o, d) for t, o, d in self._sink.recorded if t in _DECISIONS]
        if decisions:
            parts.append("Done: " + "; ".join(decisions))
        parts.append(f"Outcome: {self._outcome or 'in progress'}")
        return ". ".join(parts) + "."


_DECISIONS = {
    "sms.sent",
    "ticket.created",
    "return.created",
    "return.denied",
    "exchange.created",
    "replacement.created",
    "refund.created",
    "refund.pending_approval",
    "refund.denied",
    "refund.held",
    "coupon.checked",
    "coupon.offered",
    "delivery.rescheduled",
    "address.changed",
    "redirect.requested",
    "claim.opened",
    "csat.recorded",
    "escalation",
}


def _decision(type: str, order: str | None, data: dict[str, Any]) -> str:
    detail = ", ".join(
        f"{k}={v}" for k, v in data.items() if k in ("reason", "rma", "purpose", "score", "code")
    )
    where = f" {order}" if order else ""
    return f"{type}{where}" + (f" ({detail})" if detail else "")


def _order_line(number: str, report: Any) -> str:
    line = f"{number} {report.kind.value.replace('_', ' ')}"
    if report.days_without_scan is not None:
        line += f", no carrier scan for {report.days_without_scan} days"
    return line


async def _listed(events: list[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event


async def _drop(event: Event) -> None:
    """Where a ticket left outside a flow would speak: it has nothing to say."""


def _with_events(services: Services, sink: Any) -> Services:
    """The same services, recording through `sink`."""
    from dataclasses import replace

    return replace(services, events=sink)
