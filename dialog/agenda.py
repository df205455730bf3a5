"""The caller's requests still to serve: those said in the same breath, and those stepped away from.

"Where is it, and can I return the shoes?" is served one procedure at a time: `Agenda` begins
the first and queues the others, each with the words that ask for it; a procedure the caller
steps away from ("wait, what's my refund?") is kept to come back to ("Now, back to your
lamp."), and a request that waited is turned to in its own words ("Now, your sweater."). When
to turn to them is the agent's business: once the procedure under way is over.
"""

from __future__ import annotations

from dialog import understanding
from dialog.engine import Engine
from dialog.events import Say
from dialog.loader import Flow, Flows
from dialog.repair import Interruption
from dialog.requests import NOT_PROCEDURES, Request, Requests
from dialog.understanding import Understanding

__all__ = ["Agenda"]


class Agenda:
    """Requests waiting their turn (`queued`) and procedures left for another (`interrupted`)."""

    def __init__(self, engine: Engine, flows: Flows, requests: Requests) -> None:
        self.engine = engine
        self.flows = flows
        self.requests = requests
        self.queued: list[Request] = []
        self.interrupted: list[Interruption] = []

    def begin(self, flow: Flow, heard: Understanding, intent: str | None = None) -> None:
        """Begin a procedure for the caller's request (`intent` names why, when known); the
        other requests in the same breath wait their turn, each with its own words."""
        engine = self.engine
        engine.slots["trigger_intent"] = intent or next(
            (i for i in heard.intents if self.flows.by_intent.get(i) == flow.name),
            heard.intent,
        )
        requests = self.requests.split(heard)
        own = next((w for i, w in requests if self.flows.for_intent(i) == flow), None)
        if own is not None and len(requests) > 1:
            now, engine.heard = engine.heard, own
            engine.begin(flow)
            engine.heard = now
        else:
            engine.begin(flow)

    def restart(self, heard: Understanding) -> tuple[Flow, str]:
        """A different order number mid-question: the procedure to start again for it (the
        one asked for, else the one under way, else the order's status), and its intent."""
        flow = self.flows.for_intent(heard.intent) if heard.intent not in ("yes", "no") else None
        flow = flow or self.engine.top_flow or self.flows.for_intent("order_status")
        assert flow is not None
        intent = next((i for i, f in self.flows.by_intent.items() if f == flow.name), flow.name)
        return flow, intent

    def again(self, heard: Understanding) -> str | None:
        """ "What about the other one?", "what about my espresso machine?": at the open
        question, the intent of the procedure to run again for another order, if that is
        what the caller asks (the last one, else the order's status)."""
        text = self.engine.heard
        follow_up = understanding.asks_about(text) or (
            (heard.correction or understanding.denies_and_continues(text))
            and self.requests.names_an_order(text)
        )
        if heard.intent not in NOT_PROCEDURES or not follow_up:
            return None
        last = str(self.engine.slots.get("trigger_intent") or "")
        if self.flows.for_intent(last) is not None:
            return last
        return "order_status" if self.requests.names_an_order(text) else None

    def resume(self) -> Say | None:
        """Put back the procedure the caller last stepped away from, if any: "Now, back to
        your desk lamp." is said next."""
        if not self.interrupted:
            return None
        back = self.interrupted.pop()
        back.restore(self.engine)
        self.engine.slots["resume_topic"] = back.topic
        return Say(self.engine.render(self.flows.conversation.resume))

    def take(self) -> tuple[str, str, Flow] | None:
        """The next request waiting its turn: its intent, its words and its procedure."""
        if not self.queued:
            return None
        intent, said = self.queued.pop(0)
        flow = self.flows.for_intent(intent)
        return None if flow is None else (intent, said, flow)

    def announce(self, intent: str, said: str) -> Say:
        """ "Now, your desk lamp.": turning to a request that waited its turn."""
        self.engine.slots["trigger_intent"] = intent
        self.engine.slots["next_topic"] = self.requests.topic(intent, said)
        return Say(self.engine.render(self.flows.conversation.next_request))

    def begin_taken(self, flow: Flow, said: str) -> None:
        """Begin a waiting request's procedure with the words that asked for it, and without
        the order discussed so far when they name one of their own."""
        engine = self.engine
        now, engine.heard = engine.heard, said
        engine.slots["order"] = (
            None if self.requests.names_an_order(said) else engine.slots.get("order")
        )
        engine.begin(flow)
        engine.heard = now

    def queue_others(self, heard: Understanding, started: str | None = None) -> None:
        """Other requests in the same breath ("where is it, and can I return the shoes?"),
        each with the words that ask for it; the caller hears they will all be served."""
        before = len(self.queued)
        requests = self.requests.split(heard)
        several = len(requests) > 1
        if not several:
            requests = [(i, self.engine.heard) for i in heard.intents]
        first = True
        for intent, words in requests:
            flow = self.flows.for_intent(intent)
            if flow is None:
                continue
            if first and flow.name == started:
                first = False
                continue
            if several:
                asked = {started} | {self.flows.for_intent(i).name for i, _w in self.queued}
                again = flow.name in asked and self.requests.thing(intent, words) is None
                if not again and (intent, words) not in self.queued:
                    self.queued.append((intent, words))
                continue
            if flow.name == started or self.related(flow.name):
                continue
            if intent not in (queued for queued, _text in self.queued):
                self.queued.append((intent, words))
        added = len(self.queued) - before
        if added and started is not None:
            conv = self.flows.conversation
            self.engine.notes.append(conv.several if added == 1 else conv.several_more)

    def queue_more_orders(self) -> None:
        """ "Where are both my orders?": the next order, for the same procedure."""
        more = self.engine.memo.pop("more_orders", None)
        intent = self.engine.slots.get("trigger_intent")
        if more and intent:
            self.queued[:0] = [(str(intent), f"order {n}") for n in more]

    def step_away(self) -> None:
        """The caller asks for something else in the middle of a procedure: keep it, to come
        back to once the other is done."""
        engine = self.engine
        roles = self.flows.conversation.roles
        top = engine.top_flow
        if top is None or top.name in (roles.start, roles.handoff, roles.goodbye, roles.fallback):
            return
        if not engine.stack[-1].waiting:
            return
        self.interrupted.append(
            Interruption(list(engine.stack), dict(engine.slots), self.requests.resume_topic())
        )

    def related(self, name: str) -> bool:
        """Whether flow `name` is the procedure under way, or calls it, or is called by it:
        then words that sound like it ("a refund" while returning) answer the question."""
        top = self.engine.top_flow
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
