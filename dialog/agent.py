"""The agent: one call's dialog, run by the SOP flows in `dialog/flows/` (docs/DESIGN.md contract).

`Agent(flows, services, call_info)` greets, hears, and answers through the flow engine. It
decides what each caller turn is: an answer to the question the flow asked, a new request
(an intent that starts a flow), a request for a person or a goodbye, or something not
understood; and it notices an upset caller. Everything the agent says is in the flow files;
everything it does goes through the registered actions and the integrations protocols.

The parts with a job of their own are beside it: the requests waiting their turn
(`dialog.agenda`), corrections (`dialog.corrections`), the FAQ (`dialog.off_script`), the open
question (`dialog.open_question`), an upset caller (`dialog.escalation`), tickets outside a
flow (`dialog.handover`) and what the call records (`dialog.call_record`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any

from dialog import handover, read_back, understanding
from dialog.agenda import Agenda
from dialog.answer_first import answer_first
from dialog.call_record import CallRecord
from dialog.corrections import changed_mind, misheard_digits, past_the_no, read_answer, revise
from dialog.engine import Engine
from dialog.escalation import Escalation
from dialog.events import FILLER_AFTER_S, CallInfo, EndCall, Event, Hints, Say
from dialog.faq import match_faqs
from dialog.loader import Flows, load_flows
from dialog.nlu.intents import hinted_task
from dialog.off_script import faq_first, faq_reply
from dialog.open_question import OpenQuestion
from dialog.policy import Policy, load_policy
from dialog.repair import Revision
from dialog.requests import NOT_PROCEDURES, Requests
from dialog.speech import written
from dialog.summary import summarize
from dialog.understanding import Understanding, classify
from integrations.models import Order
from integrations.protocols import Services
from integrations.redact import redact_card_numbers

__all__ = ["Agent"]

"""Where callers are transferred when `Services` names no human number."""

_log = logging.getLogger(__name__)

_LOW_CONFIDENCE = 0.4
MAX_IDLE_TURNS = 3
"""Turns in a row that ask nothing ("hang on", "uh-huh") and are not counted as misses; the
next one is heard as any other turn, so a line of noise still reaches a person."""


@cache
def _shipped_flows() -> Flows:
    """The shipped flows, read and checked once per process."""
    return load_flows()


@cache
def _shipped_policy() -> Policy:
    """The shipped policy, read and checked once per process."""
    return load_policy()


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
        filler_after: float = FILLER_AFTER_S,
        answer_first: bool = True,
    ) -> None:
        self.flows = flows or _shipped_flows()
        if call_info.on_screen:  # read, not heard: every line in its text wording
            self.flows = self.flows.on_screen
        self.policy = policy or _shipped_policy()
        self._call = call_info
        # On a call, an opening "Thank you." is left out when the answer is ready in time.
        self._answer_first = answer_first and not call_info.on_screen
        self._filler_after = filler_after
        self._call_record = CallRecord(services.events, call_info.call_sid, timeout)
        self._services = replace(services, events=self._call_record)
        self._summary: str | None = None
        self._finished = False
        self._silences = 0
        self._misses = 0
        self._idle_turns = 0  # "hang on", "uh-huh" in a row (`MAX_IDLE_TURNS`)
        # A person was offered: ("fault", reason) when the voice layer failed, ("faq", id)
        # when the FAQ's answer offers one (another language); a yes hands over.
        self._offered: tuple[str, str] | None = None
        # A number only guessed from the audio, read back and waiting for its yes or no.
        self._guess: read_back.Guess | None = None
        self._hinted: str | None = None  # the request asked about: "Is this about …?"
        number = human_number or services.human_number
        self._engine = Engine(
            flows=self.flows,
            services=self._services,
            policy=self.policy,
            call=call_info,
            clock=clock or (lambda: datetime.now(UTC)),
            tz=tz or services.timezone or UTC,
            timeout=timeout,
            human_number=number,
            filler_after=filler_after,
            summary=self._summarize,
            caller_words=self._call_record.caller_words,
        )
        self._requests = Requests(self._engine, self.flows)
        self._agenda = Agenda(self._engine, self.flows, self._requests)
        self._escalation = Escalation(self._engine)
        self._asking = OpenQuestion(self._engine)

    # --- what the voice layer and the report read ---------------------------------------------

    @property
    def intents(self) -> list[str]:
        """Intents recognised so far, in order, each once."""
        return list(self._call_record.intents)

    @property
    def handoff(self) -> bool:
        """Whether the call was handed to a person."""
        return self._call_record.handoff

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) pairs, role "agent" or "caller", in the order they happened."""
        return list(self._call_record.transcript)

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
        self._asking.served = self._call.direction == "outbound"  # we called: there was a reason
        self._engine.begin(start)
        async for event in self._turn(self._run(), "start"):
            yield event

    async def hear(
        self, text: str, confidence: float = 1.0, *, guessed: bool = False
    ) -> AsyncIterator[Event]:
        """React to one transcribed caller utterance; `guessed` when its number is the
        recogniser's guess (`dialog.read_back`)."""
        if self._finished or not text.strip():
            return
        text = redact_card_numbers(text)  # never kept in the transcript, a summary or a ticket
        self._call_record.heard(text)
        self._silences = 0
        async for event in self._turn(self._on_speech(text, confidence, guessed), "speech"):
            yield event

    async def keypad(self, digits: str) -> AsyncIterator[Event]:
        """React to digits typed on the keypad (without the closing '#')."""
        if self._finished:
            return
        digits = redact_card_numbers(digits)
        self._offered = None
        self._call_record.typed(digits)
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
        self._call_record.outcome = self._call_record.outcome or reason
        self._summary = self._summarize()
        return self._summary

    # --- when the voice layer fails, or the call runs too long -------------------------------

    async def offer_person(self, reason: str) -> AsyncIterator[Event]:
        """The caller could not be heard this once (`reason`, e.g. `stt_failed`): apologise
        and offer a person. A "yes" next hands over (with a ticket); anything else carries on."""
        if self._finished:
            return
        self._offered = ("fault", reason)
        yield self._seen(Say(self.flows.conversation.hearing_trouble))
        yield Hints(slot="yes_no")

    async def fail(self, reason: str, *, apologised: bool = False) -> AsyncIterator[Event]:
        """The voice layer cannot carry on (`stt_failed`, `tts_failed`): apologise (unless the
        voice layer already has), record an `escalation`, and hand over to a person with a
        ticket holding the conversation so far."""
        if self._finished:
            return
        self._offered = None
        conv = self.flows.conversation
        lead = None if apologised else (conv.cannot_hear if reason == "stt_failed" else conv.fault)
        async for event in self._turn(self._hand_over(reason, lead), "fault"):
            yield event

    async def wrap_up(self, reason: str) -> AsyncIterator[Event]:
        """The call has gone on too long (`reason`, e.g. `max_duration`): say so, leave a ticket
        for a person to follow up when a request is unfinished, say goodbye and end the call."""
        if self._finished:
            return
        unfinished = bool(self._engine.stack or self._agenda.queued)  # a request under way
        async for event in self._turn(
            handover.wrap_up(self._engine, reason, unfinished=unfinished), "wrap_up"
        ):
            yield event

    # --- plumbing -----------------------------------------------------------------------------

    async def _turn(self, events: AsyncIterator[Event], source: str) -> AsyncIterator[Event]:
        """One turn: keep the transcript; a failure hands over instead of going silent."""
        self._engine.memo["filled"] = False
        self._engine.memo["input"] = source
        self._engine.memo["turn"] = self._engine.memo.get("turn", 0) + 1
        try:
            async with aclosing(events), aclosing(self._spoken(self._worded(events))) as reply:
                async for event in reply:
                    yield self._seen(event)
            for event in self._engine.in_reply():  # a message no step has shown yet
                yield self._seen(event)
        except Exception:
            _log.exception("turn failed on %s", self._call.call_sid)
            if self._finished:
                return
            async for event in self._worded(self._engine.system_down()):
                yield self._seen(event)
            async for event in self._worded(self._run()):
                yield self._seen(event)

    async def _worded(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """`events`, each worked out with facts written for a screen on text messages
        (`dialog.speech.written`): set around each step only, never left set in the caller's
        code between them."""
        while True:
            with written(self._call.on_screen):
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
            yield event

    def _spoken(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        """A turn's events as the caller hears them: its answer first (`dialog.answer_first`)."""
        if not self._answer_first:
            return events
        closing = self._engine.render(self.flows.conversation.anything_else)
        return answer_first(events, self._filler_after, keep_before=(closing,))

    def _seen(self, event: Event) -> Event:
        reason = self._engine.slots.get("handoff_reason") or "handoff"
        if self._call_record.said(event, reason):
            self._finished = True
        return event

    def _names_own_order(self, text: str) -> bool:
        """ "I'm calling about 10003": a number in another shape that is one of the caller's
        orders (their 1003), which `classify`, knowing no orders, cannot see."""
        named = self._requests.order_named(text)
        return named is not None and named[0] == "order"

    def _order_number(self) -> str | None:
        order = self._engine.slots.get("order")
        return order.number if isinstance(order, Order) else None

    async def _note(self, intent: str, heard: Understanding) -> None:
        order = heard.order_number or self._order_number()
        await self._call_record.note(intent, order=order, score=heard.score)

    async def _run(self) -> AsyncIterator[Event]:
        """Run the flows; when the procedure is over, come back to one the caller stepped away
        from, take the next request, or ask for one."""
        engine = self._engine
        self._escalation.begin_if_pending()
        async for event in engine.run():
            yield event
        if engine.offered_guess is not None:  # read back in place of its question
            self._guess, engine.offered_guess = read_back.Guess(engine.offered_guess), None
        if engine.finished or engine.stack:
            return
        self._agenda.queue_more_orders()
        resumed = self._agenda.resume()
        if resumed is not None:
            yield resumed
            async for event in self._run():
                yield event
            return
        taken = self._agenda.take()
        if taken is not None:
            intent, said, flow = taken
            await self._note(intent, classify(said))
            yield self._agenda.announce(intent, said)
            self._agenda.begin_taken(flow, said)
            self._asking.served = True
            async for event in self._run():
                yield event
            return
        for event in self._asking.ask():
            yield event

    # --- caller turns -------------------------------------------------------------------------

    async def _on_speech(self, text: str, confidence: float, guessed: bool) -> AsyncIterator[Event]:
        engine = self._engine
        engine.heard = text
        heard = classify(text)
        waits = understanding.asks_to_wait(text)
        if not (waits or understanding.is_backchannel(text)):
            self._idle_turns = 0
        offered, self._offered = self._offered, None
        guess, self._guess = self._guess, None
        if offered and heard.intent in ("yes", "no"):  # the answer to "would you like a person?"
            kind, reason = offered
            if heard.intent == "no":
                events = _listed(self._asking.repeat(self.flows.conversation.offer_declined))
            elif kind == "fault":
                events = self._hand_over(reason, self.flows.conversation.offer_taken)
            else:
                await self._note("human", heard)
                engine.handoff(reason)
                events = self._run()
            async for event in events:
                yield event
            return
        # A complaint about the item, asked why it goes back, is a reason, not anger.
        self._escalation.notice(text, phrases_only=engine.waiting_type == "return_reason")
        if heard.intent == "human" and not faq_first(text, heard, self.flows.faq):
            await self._note("human", heard)
            self._escalation.pending = False  # they asked for a person: no need to offer one
            engine.handoff("caller_request")
            events = self._run()
        elif understanding.is_greeting(text):
            events = _listed(self._hello())
        elif waits and self._idle():
            # "Hang on, let me find it": the question stands, nothing is counted against them.
            self._guess, self._offered = guess, offered
            events = _listed([Say(engine.render(self.flows.conversation.hold_on))])
        elif self._call.direction == "outbound" and understanding.is_unavailable(text):
            events = self._unavailable()
        elif engine.waiting is not None:
            events = self._answer(heard, guessed, guess)
        else:
            events = self._request(heard, confidence)
        async for event in events:
            yield event

    def _hello(self) -> list[Event]:
        """ "Hello?", "who is this?": who we are (on a call we placed, why we call), and the
        question again."""
        conv = self.flows.conversation
        engine = self._engine
        if self._call.direction == "outbound" and engine.slots.get("order_number"):
            lead = conv.reintroduce
        else:
            lead = conv.hello_back
        return self._asking.repeat(engine.render(lead), short=False)

    def _idle(self) -> bool:
        """Another turn that asks nothing may pass uncounted (`MAX_IDLE_TURNS`)."""
        self._idle_turns += 1
        return self._idle_turns <= MAX_IDLE_TURNS

    async def _unavailable(self) -> AsyncIterator[Event]:
        """The person we called cannot talk now: no questions, a polite goodbye."""
        self._engine.finished = True
        self._call_record.outcome = "callee_unavailable"
        yield Say(self._engine.render(self.flows.conversation.unavailable))
        yield EndCall("callee_unavailable")

    # --- an answer to the question a flow asked -----------------------------------------------

    async def _answer(
        self, heard: Understanding, guessed: bool, guess: read_back.Guess | None
    ) -> AsyncIterator[Event]:
        """The caller answers the question a flow asked (or the read-back of a guess at its
        answer), corrects something, steps away from it (another request, a question on the
        side) or calls it off."""
        engine = self._engine
        step = engine.waiting
        assert step is not None
        text = engine.heard
        reading = read_answer(engine, self._requests, heard, self._order_number())
        settled = guess and read_back.settle(engine, guess, heard, reading.value)
        if settled == "again":
            async for event in engine.missed(self.flows.conversation.read_back_wrong, short=False):
                yield event
            return
        if guess and settled == "use":
            reading = replace(reading, value=guess.value)
        if reading.switch:
            async for event in self._restart_for(heard):
                yield event
            return
        if reading.changes:
            async for event in self._revise(reading.changes):
                yield event
            return
        if reading.cancel:
            async for event in self._cancel():
                yield event
            return
        value = reading.value
        if value is None and (shaped := engine.guess(text)) is not None:
            value, guessed = shaped, True  # "101" for "ten oh one": read back, never looked up
        if value is not None and read_back.needed(engine, guessed):
            self._guess = read_back.Guess(value)
            for event in read_back.ask(engine, self._guess):
                yield event
            return
        if value is not None:
            self._misses = 0
            if heard.intent != "unknown":
                await self._note(heard.intent, heard)
            if engine.waiting_type == "yes_no":
                # "No, but I want to return the shoes": the yes or no answers the question,
                # the rest is a request for afterwards. (Other answers can sound like a
                # request themselves: "they stopped working" is a reason, not a new request.)
                self._agenda.queue_others(heard)
                follow = self._requests.follow_up(text)
                if follow is not None:
                    self._agenda.queued.insert(0, follow)
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
        if faq_first(text, heard, self.flows.faq):
            async for event in self._faq(text):
                yield event
            return
        flow = self.flows.for_intent(heard.intent)
        if flow is not None and misheard_digits(engine, heard, text):
            flow = None  # "nine four one one" at the ZIP question: a short ZIP, not an order
        if flow is not None and not self._agenda.related(flow.name):
            await self._note(heard.intent, heard)
            self._agenda.step_away()
            self._start_flow(flow, heard)
            async for event in self._run():
                yield event
            return
        if understanding.is_question(text) and heard.intent in NOT_PROCEDURES:
            for event in self._asking.repeat(self.flows.conversation.cannot_handle, short=False):
                yield event
            return
        if self._escalation.pending:
            async for event in self._run():
                yield event
            return
        lead = self.flows.conversation.didnt_catch
        async for event in engine.missed(lead):
            yield event

    async def _revise(self, changes: tuple[Revision, ...]) -> AsyncIterator[Event]:
        """A correction: each slot it gives takes its new value ("no, it's 40 Prospect Street,
        Somerville, 02143" is three), and the procedure goes on from just after the earliest
        (asking its confirmation again); said done already, a person follows up."""
        engine = self._engine
        outcome = await revise(engine, changes, self._keep)
        if outcome == "too_late":
            ticket, _texted = await handover.leave_ticket(engine, "change_after_action")
            yield Say(engine.render(self.flows.conversation.too_late_to_change))
            shown = engine.in_reply()  # on text messages, the ticket number's own message
            for event in shown:
                yield event
            if ticket and not shown:
                yield Say(engine.render("Your ticket number is {ticket_id}."))
            for event in self._asking.repeat(self.flows.conversation.changed):
                yield event
            return
        if outcome == "set":
            for event in self._asking.repeat(self.flows.conversation.changed):
                yield event
            return
        async for event in self._run():
            yield event

    async def _cancel(self) -> AsyncIterator[Event]:
        """ "Forget it": the procedure under way stops; nothing it had not done yet is done."""
        engine = self._engine
        engine.stack.clear()
        yield Say(engine.render(self.flows.conversation.cancelled))
        async for event in self._run():
            yield event

    # --- questions the procedures do not cover ------------------------------------------------

    async def _faq(self, text: str) -> AsyncIterator[Event]:
        """The shop's answer; then the call goes on where it was, a person is offered, or it
        ends."""
        entries = match_faqs(text, self.flows.faq)
        for entry in entries:
            await self._keep("faq.answered", faq=entry.id)
        if entries[-1].then == "offer_person":
            self._offered = ("faq", entries[-1].id)
        for event in faq_reply(self._engine, entries, self._asking):
            yield event

    async def _restart_for(self, heard: Understanding) -> AsyncIterator[Event]:
        """A different order number mid-question: start the caller's procedure for that one."""
        flow, intent = self._agenda.restart(heard)
        await self._note(intent, heard)
        self._engine.slots["order"] = None
        self._start_flow(flow, heard, intent)
        async for event in self._run():
            yield event

    def _start_flow(self, flow: Any, heard: Understanding, intent: str | None = None) -> None:
        """Begin a procedure for the caller's request (`intent` names why, when known); the
        other requests in the same breath wait their turn, each with its own words."""
        self._agenda.begin(flow, heard, intent)
        self._asking.served = True
        self._asking.anything_else_asked = False
        self._agenda.queue_others(heard, started=flow.name)

    # --- a new request, at the open question --------------------------------------------------

    async def _request(self, heard: Understanding, confidence: float) -> AsyncIterator[Event]:
        """A turn at the open question: what does the caller want?"""
        engine = self._engine
        text = engine.heard
        heard = past_the_no(heard, text)
        intent = heard.intent
        hinted, self._hinted = self._hinted, None
        if hinted is not None and intent == "yes":
            intent = hinted  # "Is this about where your order is?" "Yes."
        elif hinted is not None and intent == "no" and not understanding.corrects_something(text):
            engine.begin(self.flows[self.flows.conversation.roles.fallback])
            async for event in self._run():
                yield event
            return
        if changed_mind(engine, heard):
            frame, answer = engine.last_answer  # type: ignore[misc]
            await self._note(intent, heard)
            engine.reopen(frame, not answer)
            async for event in self._run():
                yield event
            return
        intent = self._agenda.again(heard) or intent
        if faq_first(text, heard, self.flows.faq):
            tasks = [i for i in heard.intents if self.flows.for_intent(i) is not None]
            if not tasks or len(heard.requests) + len(set(heard.intents)) < 3:
                async for event in self._faq(text):
                    yield event
                return
            # "did my refund go through, and what are your hours?": both, the answer first
            for entry in match_faqs(text, self.flows.faq):
                await self._keep("faq.answered", faq=entry.id)
                yield Say(engine.render(entry.answer))
            intent = tasks[0]
        if intent in ("unknown", "yes", "no") and (
            heard.order_number is not None or self._names_own_order(text)
        ):
            intent = "order_status"
        flow = self.flows.for_intent(intent)
        if flow is not None:
            self._misses = 0
            await self._note(intent, heard)
            self._start_flow(flow, heard, intent)
            async for event in self._run():
                yield event
            return
        if intent == "no" and understanding.corrects_something(text):
            # "No, it's <a number not heard>": a correction, not a goodbye; say it again.
            yield Say(engine.render(self.flows.conversation.say_again))
            hints = self._asking.hints()
            if hints is not None:
                yield hints
            return
        if intent == "goodbye" or (
            intent == "no" and (self._asking.anything_else_asked or self._asking.served)
        ):
            await self._note(intent, heard)
            engine.begin(self.flows[self.flows.conversation.roles.goodbye])
            async for event in self._run():
                yield event
            return
        if understanding.is_question(text) and intent in NOT_PROCEDURES:
            self._asking.anything_else_asked = False
            yield Say(engine.render(self.flows.conversation.cannot_handle))
            async for event in self._run():
                yield event
            return
        if intent == "yes" and self._asking.anything_else_asked:
            await self._note(intent, heard)
            self._asking.anything_else_asked = False
            yield Say(engine.render(self.flows.conversation.anything_else_yes))
            hints = self._asking.hints()
            if hints is not None:
                yield hints
            return
        if self._escalation.pending:
            async for event in self._run():
                yield event
            return
        if understanding.is_backchannel(text) and self._idle():
            # "Uh-huh" at the open question (the agent stopped for it): listening, not a miss.
            for event in self._asking.repeat(self.flows.conversation.listening):
                yield event
            return
        self._misses += 1
        engine.slots["misses"] = self._misses
        engine.slots["too_many_misses"] = (
            self._misses >= self.policy.escalation.max_misunderstandings
        )
        hint = None if engine.slots["too_many_misses"] else hinted_task(text)
        topic = self.flows.topics.get(hint or "")
        if topic:
            # Words that only hint at one request: asked about, never acted on unconfirmed.
            self._hinted = hint
            engine.slots["guess_topic"] = topic
            yield Say(engine.render(self.flows.conversation.guess_request))
            return
        if confidence < _LOW_CONFIDENCE and self._misses < 2:
            text = self.flows.conversation.didnt_catch + " " + self.flows.conversation.open
            yield Say(engine.render(text))
            return
        engine.begin(self.flows[self.flows.conversation.roles.fallback])
        async for event in self._run():
            yield event

    async def _on_keypad(self, digits: str) -> AsyncIterator[Event]:
        self._guess = None  # typed: no guess left to read back
        self._hinted = None  # nor a request asked about
        engine = self._engine
        conv = self.flows.conversation
        digits = "".join(c for c in digits if c.isdigit())
        step = engine.waiting
        if step is None or not step.keypad:
            lead = conv.keypad_unexpected
            for event in self._asking.repeat(lead):
                yield event
            return
        if not digits:
            for event in self._asking.repeat(conv.keypad_empty, short=False):
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

    async def _on_silence(self) -> AsyncIterator[Event]:
        self._silences += 1
        self._hinted = None  # a yes to "Are you still there?" starts nothing
        conv = self.flows.conversation
        if self._silences >= conv.max_silences:
            self._call_record.outcome = "silence"
            self._engine.finished = True
            yield Say(self._engine.render(conv.silence_goodbye))
            yield EndCall("silence")
            return
        if self._guess is not None:  # the read-back again, the guess kept
            for event in read_back.ask(self._engine, self._guess, conv.still_there):
                yield event
            return
        for event in self._asking.repeat(conv.still_there):
            yield event

    # --- faults and the end of a long call ----------------------------------------------------

    async def _hand_over(self, reason: str, lead: str | None) -> AsyncIterator[Event]:
        """To a person, with a ticket: `lead` said first, the fault recorded as an escalation."""
        engine = self._engine
        if lead:
            yield Say(lead)
        await self._keep("escalation", reason=reason)
        engine.slots["ticket_reason"] = reason
        # The handoff flow's path for a fault already announced: straight to the ticket, the
        # texted ticket number and the transfer, without a second "I'll connect you".
        engine.handoff("system_error")
        async for event in self._run():
            yield event

    async def _keep(self, type: str, **data: Any) -> None:
        """Record an event about the current order; a failure is logged, never raised."""
        await self._call_record.keep(type, order=self._order_number(), **data)

    def _summarize(self) -> str:
        """A few lines for the person taking over, or for the call record."""
        record = self._call_record
        return summarize(self._engine, self._call, record.intents, record.recorded, record.outcome)


async def _listed(events: list[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event
