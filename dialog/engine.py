"""The flow engine: runs the steps of loaded flows over the call's slots.

A stack of frames, one per running flow (a `call` pushes, an `end` pops, a `handoff`
replaces the stack with the handoff flow). `run` executes steps until a `collect` waits for
the caller, the stack empties, or the call ends, yielding `Say`/`Hints`/`Transfer`/`EndCall`
events as they are known. The agent decides what a caller's words mean at the top level; the
engine fills the slot the waiting `collect` asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from dialog.actions import ACTIONS, ActionContext, ServiceUnavailable
from dialog.events import FILLER_AFTER_S, CallInfo, EndCall, Event, Hints, Say, Transfer
from dialog.expressions import Condition
from dialog.loader import Flow, Flows
from dialog.policy import Policy
from dialog.schema import (
    END,
    ActionStep,
    Branch,
    BranchStep,
    CallStep,
    CollectStep,
    EndStep,
    HandoffStep,
    SayStep,
    SetStep,
    Step,
)
from dialog.slots import SLOT_TYPES, SlotContext, hear
from dialog.slots.choices import stated
from dialog.speech import items_are_plural, say_carrier, say_order_number
from dialog.understanding import corrected_part
from integrations.models import Order
from integrations.protocols import ProviderError, Services

__all__ = ["Engine", "Frame"]

_log = logging.getLogger(__name__)

_MAX_STEPS_PER_TURN = 200  # a guard; the loader already rejects loops that never wait
_BUT = re.compile(r"\bbut\b", re.IGNORECASE)


@cache
def _condition(source: str) -> Condition:
    return Condition.parse(source)


@dataclass
class Frame:
    """One running flow: where it is, and whether it waits for the caller.

    `heard` is the utterance the procedure was started with (a called flow inherits it): its
    slots are filled from it, and its actions read it ("the shoes" names an order).
    """

    flow: Flow
    heard: str = ""
    pc: int = 0
    started: bool = False
    waiting: bool = False
    attempts: int = 0
    in_call: bool = False
    reask: bool = False
    # Conversation repair: where each slot was answered (or found already answered), so a
    # correction can go back there; whether the step at `pc` waits for a yes to its
    # `confirm`, or has had it; the last step that changed the world (no going back past it).
    filled_at: dict[str, int] = field(default_factory=dict)
    confirming: bool = False
    confirmed: int | None = None
    acted: int = -1
    replaying: bool = False
    reask_full: bool = False
    prefilled: set[str] = field(default_factory=set)  # said before it was asked
    guesses: dict[str, Any] = field(default_factory=dict)  # guessed before it was asked


_SINGULAR = {"it": "it", "they": "it", "its": "it's", "was": "was", "is": "is", "has": "has"}
_PLURAL = {
    "it": "them",
    "they": "they",
    "its": "they're",
    "was": "were",
    "is": "are",
    "has": "have",
}


@dataclass
class Engine:
    """Runs flows for one call. `slots` is the call's memory, shared by every flow."""

    flows: Flows
    services: Services
    policy: Policy
    call: CallInfo
    clock: Callable[[], datetime]
    tz: tzinfo
    timeout: float = 8.0
    human_number: str = ""
    filler_after: float = FILLER_AFTER_S
    summary: Callable[[], str] = lambda: ""
    caller_words: list[str] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    stack: list[Frame] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)
    heard: str = ""
    finished: bool = False
    listening: bool = False
    notes: list[str] = field(default_factory=list)
    last_answer: tuple[Frame, bool] | None = None
    offered_guess: Any = None  # a guess just read back instead of a question (`read_back`)
    _order_seen: tuple[Order, bool] | None = None
    _confirm_steps: dict[tuple[str, int], CollectStep] = field(default_factory=dict)

    # --- what is going on ---------------------------------------------------------------------

    @property
    def waiting(self) -> CollectStep | None:
        """The `collect` step waiting for the caller, if any."""
        if not self.stack:
            return None
        frame = self.stack[-1]
        if not frame.waiting:
            return None
        if frame.confirming:
            return self._confirmation(frame)
        step = frame.flow.steps[frame.pc]
        return step if isinstance(step, CollectStep) else None

    @property
    def confirming(self) -> bool:
        """Whether the caller is asked to confirm an action (yes or no)."""
        return bool(self.stack and self.stack[-1].waiting and self.stack[-1].confirming)

    def _confirmation(self, frame: Frame) -> CollectStep:
        """The yes/no question a step's `confirm` asks, as a question like any other."""
        key = (frame.flow.name, frame.pc)
        if key not in self._confirm_steps:
            step = frame.flow.steps[frame.pc]
            assert isinstance(step, ActionStep) and step.confirm
            self._confirm_steps[key] = CollectStep(collect="confirmed", ask=step.confirm)
        return self._confirm_steps[key]

    @property
    def waiting_type(self) -> str | None:
        """The slot type the waiting step asks for."""
        step = self.waiting
        return self.flows.slot_types.get(step.collect) if step else None

    @property
    def top_flow(self) -> Flow | None:
        """The procedure the caller asked for (the bottom of the stack)."""
        return self.stack[0].flow if self.stack else None

    def slot_context(
        self, flow: Flow | None = None, slot: str | None = None, step: CollectStep | None = None
    ) -> SlotContext:
        """What slot types need to hear and say values now."""
        decl = flow.slots.get(slot) if flow is not None and slot is not None else None
        today = self.clock().astimezone(self.tz).date()
        if decl is None:
            return SlotContext(today=today, values=self.slots)
        yes = step.yes if step is not None and step.yes is not None else decl.yes
        no = step.no if step is not None and step.no is not None else decl.no
        return SlotContext(
            today=today,
            values=self.slots,
            options=decl.options or {},
            yes=yes,
            no=no,
            yes_when=decl.yes_when,
            no_when=decl.no_when,
        )

    # --- templates ----------------------------------------------------------------------------

    def render(self, text: str) -> str:
        """A template with every `{slot}` said the way its type says it."""

        def speak(match: re.Match[str]) -> str:
            name = match.group(1)
            slot_type = SLOT_TYPES.get(self.flows.slot_types.get(name, "text"), SLOT_TYPES["text"])
            value = self.slots.get(name)
            if value is None:
                _log.warning("template slot %s is empty on %s", name, self.call.call_sid)
                return ""
            return slot_type.speak(value, self.slot_context())

        said = re.sub(r"\{([a-z_][a-z0-9_]*)\}", speak, text)
        said = re.sub(r"\s+([.,?!])", r"\1", re.sub(r"\s{2,}", " ", said)).strip()
        # A slot said at the start of a sentence ("summer fifteen expired") gets its capital.
        return re.sub(r"(^|[.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), said)

    def _say(self, step: SayStep | CollectStep, text: str) -> Say:
        alt = step.empathetic if self.slots.get("upset") else None
        return Say(self.render(alt or text))

    def hints_for(self, frame: Frame, step: CollectStep) -> Hints:
        """What the transcriber should expect for this question."""
        slot_type = SLOT_TYPES[self.flows.slot_types[step.collect]]
        ctx = self.slot_context(frame.flow, step.collect, step)
        vocabulary = slot_type.vocabulary(ctx) if slot_type.vocabulary else ()
        if step.yes or step.no:
            # A yes/no question between two options: only those two, as few hotwords as can be.
            said = dict(zip(ctx.options, vocabulary, strict=False))
            vocabulary = tuple(said[o] for o in (step.yes, step.no) if o in said)
        return Hints(
            slot=slot_type.hint or step.collect,
            prompt=step.hint or slot_type.prompt,
            expect_dtmf=step.keypad,
            vocabulary=tuple(vocabulary),
        )

    def question(self, *, short: bool = False) -> list[Event]:
        """The waiting question again (its reprompt when `short`), with its hints."""
        if not self.stack:
            return []
        frame = self.stack[-1]
        step = self.waiting
        if step is None:
            return []
        text = (step.reprompt or step.ask) if short else step.ask
        return [self._say(step, text), self.hints_for(frame, step)]

    # --- starting and stopping flows ----------------------------------------------------------

    def begin(self, flow: Flow, *, replace: bool = True) -> None:
        """Start `flow`: on a fresh stack, or on top of what runs (an interruption)."""
        if replace:
            self.stack.clear()
        elif self.stack and self.stack[-1].waiting:
            self.stack[-1].reask = True
        self.last_answer = None
        self.listening = False
        frame = Frame(flow, heard=self.heard)
        self.stack.append(frame)
        self._start(frame)

    def handoff(self, reason: str) -> None:
        """Replace everything with the handoff flow."""
        self.slots["handoff_reason"] = reason
        self.begin(self.flows[self.flows.conversation.roles.handoff])

    def _start(self, frame: Frame) -> None:
        frame.started = True
        for name, decl in frame.flow.slots.items():
            if not decl.keep:
                self.slots.pop(name, None)
            if decl.from_utterance and frame.heard:
                value = self.hear_also(frame.flow, name, frame.heard, opening=True)
                if value is not None:
                    self.slots[name] = value
                elif (guess := self._guess_in(frame.flow, name, frame.heard)) is not None:
                    frame.guesses[name] = guess  # "where is order 101": read back when asked
        self.sync_order()

    # --- answers ------------------------------------------------------------------------------

    def parse(self, text: str, *, keypad: bool = False) -> Any:
        """The waiting slot's value in what the caller said or typed, or None."""
        step = self.waiting
        if step is None:
            return None
        frame = self.stack[-1]
        slot_type = SLOT_TYPES[self.flows.slot_types[step.collect]]
        ctx = self.slot_context(frame.flow, step.collect, step)
        if keypad:
            return slot_type.keypad(text, ctx) if slot_type.keypad and step.keypad else None
        assert slot_type.parse is not None
        return hear(slot_type, text, ctx)

    def guess(self, text: str) -> Any:
        """A guess at the waiting slot's value from words that hold none as heard
        (`SlotType.guess`), to be read back before it is used; else None."""
        step = self.waiting
        if step is None or self.confirming:
            return None
        return self._guess_in(self.stack[-1].flow, step.collect, text, step)

    def _guess_in(self, flow: Flow, slot: str, text: str, step: Step | None = None) -> Any:
        slot_type = SLOT_TYPES[self.flows.slot_types.get(slot, "text")]
        if slot_type.guess is None or self.call.on_screen:  # typed: never a guess
            return None
        return slot_type.guess(text, self.slot_context(flow, slot, step))

    def read_back(self, value: Any, lead: str | None = None) -> list[Event]:
        """ "I heard ten oh three. Is that right?": `value` said the way the waiting slot's
        type says it, for a yes or no."""
        slot_type = SLOT_TYPES[self.waiting_type or "text"]
        self.slots["heard_value"] = slot_type.speak(value, self.slot_context())
        text = self.flows.conversation.read_back
        return [Say(self.render(f"{lead} {text}" if lead else text)), Hints(slot="yes_no")]

    def accept(self, value: Any) -> None:
        """Fill the waiting slot and move past the question (a confirmation: run the action
        on a yes, decline it on a no)."""
        frame = self.stack[-1]
        if frame.confirming:
            frame.confirming = frame.waiting = False
            frame.attempts = 0
            if value:
                frame.confirmed = frame.pc
            else:
                self._decline(frame)
            return
        step = frame.flow.steps[frame.pc]
        assert isinstance(step, CollectStep)
        if self.flows.slot_types.get(step.collect) == "yes_no":
            self.last_answer = (replace(frame, filled_at=dict(frame.filled_at)), bool(value))
        self.slots[step.collect] = value
        frame.filled_at[step.collect] = frame.pc
        for other in step.also:
            if self.slots.get(other) is None and self.heard:
                found = self.hear_also(frame.flow, other, self.heard)
                if found is not None:
                    self.slots[other] = found
                    frame.prefilled.add(other)  # said already: not asked, even `ask_always`
        frame.waiting = False
        frame.attempts = 0
        self._goto(frame, self._next(frame, step))

    def hear_also(self, flow: Flow, slot: str, text: str, *, opening: bool = False) -> Any:
        """A slot's value said in passing, while something else was asked: a yes/no slot only
        from its statements ("it came, but it's cracked"), a choice only from its options'
        words, never from a bare yes. A yes said in passing with a "but" is not taken ("yes,
        it came, but it's [misheard]"): the turn says something is not right, so it is asked;
        unless what comes before the "but" says the opposite ("dented, but the vase is fine").
        In the `opening` sentence of a flow that declares a yes/no slot `from_utterance`, a
        yes or no counts ("no thanks, I'm good")."""
        type_name = self.flows.slot_types.get(slot, "text")
        slot_type = SLOT_TYPES[type_name]
        ctx = self.slot_context(flow, slot)
        if type_name == "yes_no" and not opening:
            part = corrected_part(text)  # "fine, oh wait, no, there's a chip": the chip
            said = stated(part, ctx) if part else None
            said = said if said is not None else stated(text, ctx)
            if said and (but := _BUT.search(text)):
                # "the box was dented but the vase is fine" weighs the two: the vase is fine
                return said if stated(text[: but.start()], ctx) is False else None
            return said
        if type_name == "choice":
            ctx = replace(ctx, yes=None, no=None)
        return hear(slot_type, text, ctx)

    def _decline(self, frame: Frame) -> None:
        """The caller said no to what the step would do: its `on_decline`, else nothing done
        and the flow ends."""
        step = frame.flow.steps[frame.pc]
        assert isinstance(step, ActionStep)
        if step.on_decline is not None:
            self._goto(frame, self._target(frame, step.on_decline))
            return
        self.notes.append(self.flows.conversation.declined)
        self._goto(frame, None)

    def revise(self, frame: Frame, slot: str, value: Any) -> str:
        """A correction: give `slot` its new value and go back to just after where it was
        answered, so everything that follows from it is worked out again (and any
        confirmation asked again). "set" when the flow had not reached it yet, "revised",
        or "too_late" when something was done since that cannot be undone."""
        at = frame.filled_at.get(slot)
        if at is None:
            self.slots[slot] = value
            frame.prefilled.add(slot)  # asked later, even by an `ask_always` step: answered
            return "set"
        if at < frame.acted:
            return "too_late"
        self.slots[slot] = value
        while self.stack and self.stack[-1] is not frame:
            self.stack.pop()  # a flow it called (a question under way) is left behind
        frame.waiting = frame.confirming = frame.in_call = False
        frame.confirmed = None
        frame.attempts = 0
        frame.replaying = True
        frame.pc = at  # `_next` counts from the step it is given
        self._goto(frame, self._next(frame, frame.flow.steps[at]))
        self.sync_order()
        return "revised"

    def reopen(self, frame: Frame, value: bool) -> None:
        """The caller changed their mind about a yes/no question of a flow that has finished
        ("actually, yes, text me the link"): run that flow on from the question with the new
        answer."""
        self.stack.clear()
        self.listening = False
        frame.waiting = True
        self.stack.append(frame)
        self.accept(value)

    async def missed(self, lead: str, *, short: bool = True) -> AsyncIterator[Event]:
        """The caller's answer did not fit: ask again (its reprompt when `short`), or give up
        after `max_attempts`."""
        frame = self.stack[-1]
        step = self.waiting
        assert step is not None
        frame.attempts += 1
        if frame.confirming and frame.attempts >= step.max_attempts:
            frame.confirming = frame.waiting = False
            frame.attempts = 0
            self._decline(frame)
            async for event in self.run():
                yield event
            return
        if frame.attempts < step.max_attempts:
            events = self.question(short=short)
            if events and lead:
                first = events[0]
                assert isinstance(first, Say)
                events[0] = Say(f"{lead} {first.text}")
            for event in events:
                yield event
            return
        frame.waiting = False
        frame.attempts = 0
        if step.on_fail == "handoff":
            self.handoff(f"{step.collect}_not_understood")
        else:
            self._goto(frame, frame.flow.index[step.on_fail])
        async for event in self.run():
            yield event

    # --- running ------------------------------------------------------------------------------

    def _goto(self, frame: Frame, target: int | None) -> None:
        frame.pc = len(frame.flow.steps) if target is None else target

    def _target(self, frame: Frame, name: str) -> int | None:
        return None if name == END else frame.flow.index[name]

    def _arm(self, frame: Frame, arms: list[Branch]) -> int | None:
        for arm in arms:
            if arm.else_ is not None:
                return self._target(frame, arm.else_)
            if _condition(arm.if_ or "False").evaluate(self.slots):
                return self._target(frame, arm.then or END)
        return None

    def _next(self, frame: Frame, step: Step) -> int | None:
        if isinstance(step.next, list):
            return self._arm(frame, step.next)
        if isinstance(step.next, str):
            return self._target(frame, step.next)
        return frame.pc + 1

    async def run(self) -> AsyncIterator[Event]:
        """Execute steps until the caller must answer, the flows end, or the call ends."""
        executed = 0
        while self.notes:
            yield Say(self.render(self.notes.pop(0)))
        while self.stack and not self.finished:
            frame = self.stack[-1]
            if not frame.started:
                self._start(frame)
            if frame.waiting:
                if frame.reask:
                    frame.reask = False
                    for event in self.question(short=not frame.reask_full):
                        yield event
                    frame.reask_full = False
                return
            if frame.pc >= len(frame.flow.steps):
                self._pop()
                continue
            executed += 1
            if executed > _MAX_STEPS_PER_TURN:
                _log.error("flow %s ran %d steps in one turn", frame.flow.name, executed)
                if self.slots.get("handoff_reason") == "runaway":  # even the handoff runs away
                    self.finished = True
                    yield EndCall("error")
                    return
                self.handoff("runaway")
                executed = 0
                continue
            step = frame.flow.steps[frame.pc]
            async for event in self._step(frame, step):
                yield event

    def _pop(self) -> None:
        self.stack.pop()
        if self.stack:
            parent = self.stack[-1]
            if parent.in_call:
                parent.in_call = False
                self._goto(parent, self._next(parent, parent.flow.steps[parent.pc]))

    async def _step(self, frame: Frame, step: Step) -> AsyncIterator[Event]:
        match step:
            case SayStep():
                yield self._say(step, step.say)
                self._goto(frame, self._next(frame, step))
            case CollectStep():
                value = self.slots.get(step.collect)
                if value is not None and (
                    not step.ask_always or frame.replaying or step.collect in frame.prefilled
                ):
                    frame.prefilled.discard(step.collect)  # taken once; asked if we come back
                    frame.filled_at[step.collect] = frame.pc
                    self._goto(frame, self._next(frame, step))
                    return
                frame.waiting = True
                frame.attempts = 0
                frame.replaying = False
                guess = frame.guesses.pop(step.collect, None)
                if guess is not None:  # said in the request, in another shape: read it back
                    self.offered_guess = guess
                    for event in self.read_back(guess):
                        yield event
                    return
                yield self._say(step, step.ask)
                yield self.hints_for(frame, step)
            case ActionStep():
                if step.confirm and frame.confirmed != frame.pc and not frame.flow.spec.unattended:
                    frame.waiting = frame.confirming = True
                    frame.attempts = 0
                    frame.replaying = False
                    yield Say(self.render(step.confirm))
                    yield Hints(slot="yes_no")
                    return
                frame.confirmed = None
                at = frame.pc
                async for event in self._action(frame, step):
                    yield event
                if ACTIONS[step.action].changes_world:
                    frame.acted = max(frame.acted, at)
            case BranchStep():
                self._goto(frame, self._arm(frame, step.branch))
            case SetStep():
                self.slots.update(step.set)
                self.sync_order()
                self._goto(frame, self._next(frame, step))
            case CallStep():
                frame.in_call = True
                # The words of the request; in a flow begun without any (a call we placed),
                # the answer it was called on ("it arrived in pieces, I want my money back").
                child = Frame(self.flows[step.call], heard=frame.heard or self.heard)
                self.stack.append(child)
                self._start(child)
            case EndStep():
                if step.end == "call":
                    self.finished = True
                    yield EndCall(step.reason)
                elif step.end == "listen":
                    self.stack.clear()
                    self.listening = True
                else:
                    self._goto(frame, None)
            case HandoffStep():
                self.handoff(step.handoff)

    def action_context(self, *, heard: str = "", filler_text: str | None = None) -> ActionContext:
        """What an action sees of this call: the services, the policy, the slots and the
        call's clock; `heard`: what the caller said that led to it."""
        return ActionContext(
            services=self.services,
            policy=self.policy,
            slots=self.slots,
            call=self.call,
            now=self.clock(),
            tz=self.tz,
            emit=_no_emit,
            sms_templates=self.flows.sms,
            heard=heard,
            caller_words=self.caller_words,
            summary=self.summary,
            memo=self.memo,
            filler_text=filler_text,
            timeout=self.timeout,
            human_number=self.human_number,
            filler_after=self.filler_after,
        )

    async def _action(self, frame: Frame, step: ActionStep) -> AsyncIterator[Event]:
        spec = ACTIONS[step.action]
        ctx = self.action_context(
            heard=frame.heard,
            filler_text=self.render(step.say_first) if step.say_first else None,
        )
        try:
            async for event in _streamed(spec.run, ctx):
                if isinstance(event, EndCall | Transfer):
                    self.finished = True
                yield event
        except (ServiceUnavailable, ProviderError) as exc:
            _log.warning("action %s failed on %s: %r", step.action, self.call.call_sid, exc)
            self.sync_order()
            if step.on_error not in (None, "handoff"):
                self._goto(frame, self._target(frame, step.on_error))
                return
            async for event in self.system_down():
                yield event
            return
        self.sync_order()
        for event in self.in_reply():
            yield event
        if not self.finished:
            self._goto(frame, self._next(frame, step))

    def in_reply(self) -> list[Event]:
        """What actions put in the reply on text messages (`ActionContext.in_reply`), once."""
        return [Say(text) for text in self.memo.pop("in_reply", [])]

    async def system_down(self) -> AsyncIterator[Event]:
        """A service failed: apologise and hand over; never leave the caller in silence."""
        if self.finished:
            return
        yield Say(self.render(self.flows.conversation.system_down))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await self.services.events.record(
                    "escalation", order=self._order_number(), reason="system_error"
                )
        self.handoff("system_error")

    # --- the current order and what follows from it -------------------------------------------

    def _order_number(self) -> str | None:
        order = self.slots.get("order")
        return order.number if isinstance(order, Order) else None

    def force_sync(self) -> None:
        """Work the order's slots out again (after the call's memory was put back)."""
        self._order_seen = None
        self.sync_order()

    def sync_order(self) -> None:
        """Keep the slots derived from the current order (and who may hear about it) in step."""
        order = self.slots.get("order")
        customer = self.slots.get("customer")
        verified = self.slots.get("verified_customer")
        if not isinstance(order, Order):
            self.slots["owns_order"] = False
            self.slots["verified"] = False
            self._order_seen = None
            return
        owner = order.customer_id
        self.slots["owns_order"] = bool(customer is not None and customer.id == owner)
        self.slots["verified"] = verified == owner
        private = self.slots["owns_order"] or self.slots["verified"]
        self.slots["payment_method"] = (
            order.payment_method
            if private and order.payment_method
            else "your original payment method"
        )
        seen = self._order_seen
        if seen is not None and seen[0] is order and seen[1] == private:
            return
        self._order_seen = (order, private)
        self.slots.update(order_number=order.number, order_delivered=order.delivered_at is not None)
        if not private:
            # Before a second factor the caller hears of "order ten oh six", never what is in
            # it, who carries it or what it cost (docs/DESIGN.md, what a caller may hear).
            self.slots.update(_SINGULAR)
            self.slots.update(
                item=f"order {say_order_number(order.number)}",
                carrier="the carrier",
                order_total=None,
            )
            return
        self.slots.update(_PLURAL if items_are_plural(order) else _SINGULAR)
        self.slots.update(
            item=order,
            carrier=say_carrier(order.carrier) if order.carrier else "the carrier",
            order_total=order.total_cents,
        )


async def _no_emit(event: Event) -> None:
    raise RuntimeError("emit used outside a running action")


async def _streamed(
    run: Callable[[ActionContext], Any], ctx: ActionContext
) -> AsyncIterator[Event]:
    """Run an action, yielding what it says as it says it (it waits until each is taken)."""
    queue: asyncio.Queue[tuple[Event, asyncio.Event] | None] = asyncio.Queue()

    async def emit(event: Event) -> None:
        taken = asyncio.Event()
        await queue.put((event, taken))
        await taken.wait()

    ctx.emit = emit
    task = asyncio.ensure_future(run(ctx))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            event, taken = item
            yield event
            taken.set()
        await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
