"""Who a simulated caller is: the number they call from, what they want, what they know, how
they talk, and what the call must come to.

A persona is data (YAML), so a tester writes callers without code; `harness.caller_rules`
turns one into answers and `harness.simulate` puts it on the phone. The expected outcome is
replay's `Expect`, judged by the same `check_expectations`, so a simulated call and a scenario
pass or fail by one rule.

    name: james-return-earbuds-keypad
    calls_from: "+14155550102"              # or "withheld"
    goals:
      - procedure: return
        order: "1003"
        ask: ["I'd like to return my wireless earbuds"]
        done_when: ["return number"]          # the agent said one of these: goal met
    facts: {order_number: "1003", zip: "10001", reason: "one of them stopped charging",
            resolution: refund}
    manner: {keypad: true, patience: 2}
    expect:
      events: [{type: return.created, order: "1003", resolution: refund}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.scenario import Expect, Scenario

__all__ = [
    "ANSWER_KINDS",
    "PROCEDURES",
    "WITHHELD",
    "Facts",
    "Goal",
    "Manner",
    "Outbound",
    "Persona",
    "load_personas",
    "persona_files",
]

Procedure = Literal[
    "where_is_my_order",
    "return",
    "exchange",
    "refund",
    "coupon",
    "reschedule",
    "lost",
    "not_received",
    "damaged",
    "address_change",
    "person",
    "question",
    "delivery_confirmation",
]
PROCEDURES: tuple[str, ...] = get_args(Procedure)
"""What a caller can want: the shop's procedures (`dialog/flows/*.yaml`) as callers name them."""

AnswerKind = Literal[
    "order_number",
    "zip",
    "email",
    "phone",
    "yes",
    "no",
    "size",
    "reason",
    "day",
    "coupon",
    "street",
    "city",
    "new_zip",
    "rating",
    "dont_know",
    "repeat",
    "correction",
    "done",
    "give_up",
    "filler",
]
ANSWER_KINDS: tuple[str, ...] = get_args(AnswerKind)
"""The kinds of answer a persona may word its own way (`Manner.phrasings`)."""

WITHHELD = "withheld"
ANONYMOUS = "anonymous"  # what Twilio puts in From for a withheld number


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Goal(_Strict):
    """One thing the caller wants. `ask` holds ways of putting it (one is picked per call);
    the goal is met once the agent says any phrase of `done_when` (case-insensitive), not
    denied just before it ("already been refunded" is no refund: `caller_rules.says_done`).
    When the denial is the answer the caller wants, the phrase holds it ("don't sell gift
    cards")."""

    procedure: Procedure
    order: str | None = None
    ask: list[str] = Field(min_length=1)
    done_when: list[str] = Field(default_factory=list)


class Facts(_Strict):
    """What the caller knows; anything missing they answer with "I don't know". `slips` are
    values they say wrong the first time (fact name → the wrong value) and correct when the
    agent reads them back or asks again; `size_is` is the size `size` means ("one size up" is
    L), to check the agent's read-back; `answers` are what they say to a question holding a
    phrase ("arrive in good condition": "no, it came chipped"), before any rule."""

    order_number: str | None = None
    zip: str | None = None
    email: str | None = None
    phone: str | None = None
    size: str | None = None
    size_is: str | None = None
    coupon: str | None = None
    day: str | None = None
    reason: str | None = None
    resolution: Literal["refund", "store credit", "replacement", "exchange"] | None = None
    street: str | None = None
    city: str | None = None
    new_zip: str | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    item: str | None = None
    slips: dict[str, str] = Field(default_factory=dict)
    answers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _slips_name_facts(self) -> Facts:
        unknown = [name for name in self.slips if name not in type(self).model_fields]
        if unknown or {"slips", "answers"} & set(self.slips):
            raise ValueError(f"slips name facts the persona has no field for: {unknown}")
        return self


class Manner(_Strict):
    """How the caller talks. `phrasings` word answers their own way (a `{value}` in a phrasing
    is the fact); `numbers` is how they say digits ("one zero zero three", "ten oh three",
    "1003"); `disfluency` and `verbosity` are the chances of a filler before an answer and of
    more words after it; `pause_s` is the silence before each answer; `keypad` types digits
    when the agent offers the keypad; `patience` is how many times they answer the same
    question before giving up; `upset` callers open with a complaint; `off_script` questions
    (the shop may not answer them) are asked before the goals."""

    phrasings: dict[AnswerKind, list[str]] = Field(default_factory=dict)
    numbers: Literal["digits", "pairs", "numerals"] = "digits"
    disfluency: float = Field(default=0.0, ge=0, le=1)
    verbosity: float = Field(default=0.0, ge=0, le=1)
    pause_s: float = Field(default=0.0, ge=0, le=10)
    keypad: bool = False
    patience: int = Field(default=3, ge=1)
    max_turns: int = Field(default=16, ge=1)
    upset: bool = False
    accepts_offers: bool = True
    off_script: list[str] = Field(default_factory=list)


class Outbound(_Strict):
    """A call the shop places to the persona (then `calls_from` is the persona's number)."""

    purpose: Literal["delivery_confirmation"] = "delivery_confirmation"
    order: str


class Persona(_Strict):
    """One simulated caller."""

    name: str
    calls_from: str
    goals: list[Goal] = Field(min_length=1)
    together: bool = False  # all goals in the first sentence ("two requests at once")
    facts: Facts = Field(default_factory=Facts)
    manner: Manner = Field(default_factory=Manner)
    voice: str | None = None  # a caller voice of harness.callers this persona speaks in
    outbound: Outbound | None = None
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _number(self) -> Persona:
        if self.calls_from != WITHHELD and not (
            self.calls_from.startswith("+") and self.calls_from[1:].isdigit()
        ):
            raise ValueError(f"calls_from is an E.164 number or {WITHHELD!r}")
        return self

    def scenario(self) -> Scenario:
        """The call as replay runs it: caller ID, direction and the expected outcome."""
        caller_id = ANONYMOUS if self.calls_from == WITHHELD else self.calls_from
        fields: dict[str, object] = {"name": self.name, "from": caller_id, "expect": self.expect}
        if self.outbound is not None:
            fields.update(
                direction="outbound", purpose=self.outbound.purpose, order=self.outbound.order
            )
        return Scenario.model_validate(fields)

    def touches(self) -> frozenset[str]:
        """What of the shop this call may read or change: each order it names (its goals,
        facts, outbound call and expected events) and the number it calls from (withheld
        callers share one). Two calls that touch nothing in common cannot change what the
        other finds."""
        orders = {g.order for g in self.goals} | {self.facts.order_number}
        if self.outbound is not None:
            orders.add(self.outbound.order)
        events = (*self.expect.events, *self.expect.not_events)
        orders |= {str(e["order"]) for e in events if "order" in e}
        return frozenset({f"order {o}" for o in orders if o} | {f"caller {self.calls_from}"})


def persona_files(path: Path) -> list[Path]:
    """The persona files under `path` (a file, or a directory searched for `*.yaml`)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*.yaml") if p.is_file())
    return [path]


def load_personas(path: Path) -> list[Persona]:
    """Every persona of a YAML file (one mapping, or a list of them) or a directory of such
    files, in file order; names must be unique."""
    personas: list[Persona] = []
    for file in persona_files(path):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"{file}: persona {index + 1} is not a mapping")
            try:
                personas.append(Persona.model_validate(item))
            except ValueError as exc:
                raise ValueError(f"{file}: persona {item.get('name', index + 1)}: {exc}") from exc
    names = [p.name for p in personas]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"persona names used twice: {', '.join(duplicated)}")
    return personas
