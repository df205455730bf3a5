"""What the caller asked for: one request per procedure and per thing it is about.

"Where's my lamp, and can I exchange the sweater?" is two requests; so are "check FREESHIP and
WELCOME10" and "the laptop stand and the headphones". A request said in two goes ("FedEx missed
me, can they come Monday") is one. `Requests` reads them off an utterance with the call's
context (the caller's items, the active codes), and says what each is about for the ear
("Now, your desk lamp.").
"""

from __future__ import annotations

import re

from dialog import understanding
from dialog.engine import Engine
from dialog.loader import Flows
from dialog.slots import SLOT_TYPES, SlotContext
from dialog.slots.choices import named_item
from dialog.speech import say_code, say_items, say_order_number
from dialog.understanding import Understanding, classify
from integrations.models import Order

__all__ = ["NOT_PROCEDURES", "Request", "Requests"]

Request = tuple[str, str]
"""(intent, the words that ask for it)."""

NOT_PROCEDURES = frozenset({"yes", "no", "unknown", "human", "goodbye"})
"""Intents that start no procedure."""


class Requests:
    """Requests in what the caller says, against this call's memory."""

    def __init__(self, engine: Engine, flows: Flows) -> None:
        self.engine = engine
        self.flows = flows

    def _context(self) -> SlotContext:
        return SlotContext(today=self.engine.clock().date(), values=self.engine.slots)

    def split(self, heard: Understanding) -> list[Request]:
        """The requests in an utterance, each with its own words."""
        base = list(heard.requests) or [(heard.intent, self.engine.heard)]
        merged: list[Request] = []
        for intent, words in base:
            if merged and merged[-1][0] == intent:
                thing, before = self.thing(intent, words), self.thing(intent, merged[-1][1])
                if thing is None or before is None or thing == before:
                    # "FedEx missed me, can they come Monday": one request, said in two goes
                    merged[-1] = (intent, f"{merged[-1][1]} {words}")
                    continue
            merged.append((intent, words))
        if heard.correction or understanding.corrected_part(self.engine.heard) is not None:
            return merged  # "ten oh one, no sorry, ten oh three" is about one order
        found: list[Request] = []
        for intent, words in merged:
            if self.flows.for_intent(intent) is None:
                found.append((intent, words))
                continue
            pieces = [p for p in re.split(r",|\band\b|\bplus\b", words) if p.strip()]
            named = [(p, key) for p in pieces if (key := self.thing(intent, p)) is not None]
            if len(named) < 2 or len({key for _p, key in named}) < len(named):
                found.append((intent, words))
                continue
            head = words[: words.find(named[0][0])]  # "can you check" before the first one
            found.append((intent, head + named[0][0]))
            found.extend((intent, p) for p, _key in named[1:])
        return found

    def thing(self, intent: str, words: str) -> str | None:
        """What a piece of a request is about, if it names one thing: an order (a number, or
        one of the caller's items), or for a coupon question a code."""
        order = self.order_named(words)
        if order is not None:
            return f"{order[0]}:{order[1]}"
        ctx = self._context()
        names = list(ctx.products)
        index = named_item(words, names, positions=False) if names else None
        if index is not None:
            return f"item:{index}"
        if intent == "coupon_question":
            code = SLOT_TYPES["coupon_code"].parse(words, ctx)
            said = re.sub(r"[^a-z0-9]", "", words.lower())
            spoken = re.sub(r"[^a-z0-9]", "", say_code(code)) if code else ""
            if code and (code.lower() in said or spoken in said):  # said, not guessed
                return f"code:{code}"
        return None

    def order_named(self, words: str) -> tuple[str, str] | None:
        """The order a number in `words` names: ("order", its number), also for a number
        heard in another shape that is one of the caller's orders ("10003" for 1003); or
        ("unheard order", the digits) for an order whose number did not come through."""
        number = understanding.parse_order_number(words)
        if number is not None:
            return ("order", number)
        mine = {o.number for o in self.engine.memo.get("customer_orders") or ()}
        shaped = [n for n in understanding.reshaped_order_numbers(words) if n in mine]
        if shaped:
            return ("order", shaped[0])
        unheard = understanding.unheard_order_number(words)
        return None if unheard is None else ("unheard order", unheard)

    def names_an_order(self, said: str) -> bool:
        """Whether words name an order of their own (a number, or one of the caller's items,
        or an order whose number did not come through)."""
        if self.order_named(said) is not None:
            return True
        names = self._context().products
        return bool(names) and named_item(said, list(names)) is not None

    def other_order_named(self, text: str, current: str | None) -> str | None:
        """The number of another of the caller's orders their words name ("the espresso
        machine" while the grinder is discussed), if any."""
        mine = [o for o in self.engine.memo.get("customer_orders") or () if o.lines]
        index = named_item(text, [o.lines[0].name for o in mine], positions=False)
        if index is None or mine[index].number == current:
            return None
        return mine[index].number

    def follow_up(self, text: str) -> Request | None:
        """ "No, that's okay. What about the other one?": after an answer, the same procedure
        again for something else."""
        intent = str(self.engine.slots.get("trigger_intent") or "")
        if self.flows.for_intent(intent) is None:
            return None
        for sentence in re.split(r"[.?!;]+", text)[1:]:
            if understanding.asks_about(sentence) and classify(sentence).intent in NOT_PROCEDURES:
                return (intent, sentence.strip())
        return None

    def topic(self, intent: str, said: str) -> str:
        """What a request is about, for "Now, …": the item or order it names, else its kind."""
        order = self.order_named(said)
        if order is not None and order[0] == "order":
            return f"order {say_order_number(order[1])}"
        if order is not None:
            return self.flows.topics.get("other_order", "the other order")
        names = list(self._context().products)
        index = named_item(said, names) if names else None
        if index is not None:
            return f"your {names[index]}"
        return self.flows.topics.get(intent, "your next question")

    def resume_topic(self) -> str:
        """What the procedure being left was about, for "Now, back to …"."""
        slots = self.engine.slots
        order = slots.get("order")
        if isinstance(order, Order) and (slots.get("owns_order") or slots.get("verified")):
            return f"your {say_items(order)}"
        intent = str(slots.get("trigger_intent") or "")
        return self.flows.topics.get(intent, "what we were doing")
