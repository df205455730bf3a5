"""Typed conversations: whole calls written the way callers talk, each with its expected outcome.

A conversation file (YAML) holds one category of calls:

    category: corrections
    conversations:
      - name: number-corrected-in-one-breath
        from: "+14155550999"            # the caller ID (a demo customer's, or any)
        turns:
          - text: "where is ten oh one, no sorry, ten oh three"
            expect: {says: ["delivered"], never_says: ["linen shirt"]}
          - dtmf: "1003#"
          - silence: 5
          - hangup: true
        expect:                          # the scenario expectations of docs/DESIGN.md, and:
          events: [{type: order.looked_up, order: "1003"}]
          not_events: [{type: exchange.created}]

A turn's own `expect` is checked on the agent's reply to that turn alone (`says`,
`never_says`, `events`, `not_events`), so "nothing is created before the caller says yes" can
be written down. Each conversation runs against a fresh embedded demo shop on a fixed day, with
the shipped flows (or `flows_dir`), through the same `dialog.Agent` a phone call uses.
`postvoice conversations` runs a file or a directory of them and prints the figures per category.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dialog.agent import Agent
from dialog.events import CallInfo, EndCall, Say, Transfer
from dialog.loader import Flows, load_flows
from harness.scenario import CallHeader, Expect, Scenario, check_expectations, event_matches
from integrations.demo import DemoShop
from integrations.protocols import Services

__all__ = [
    "SHIPPED",
    "TODAY",
    "Conversation",
    "ConversationFile",
    "Outcome",
    "demo_services",
    "format_results",
    "load_conversations",
    "run_conversation",
    "run_conversations",
]

SHIPPED = Path(__file__).resolve().parents[1] / "conversations"
"""The shipped conversation set (one file per category)."""

TODAY = date(2026, 6, 17)
"""The day every conversation happens on (a Wednesday), so dates said are stable."""

_NOON = time(15, 0)
SILENCE_REPROMPT_S = 5.0
"""A silence turn this long or longer draws the agent's reprompt, as on a call."""


class TurnExpect(BaseModel):
    """What the agent's reply to one turn must (not) hold."""

    model_config = ConfigDict(extra="forbid")

    says: list[str] = Field(default_factory=list)
    never_says: list[str] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    not_events: list[dict[str, Any]] = Field(default_factory=list)


class ConversationTurn(BaseModel):
    """One caller turn: exactly one of text, dtmf, silence, hangup."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    dtmf: str | None = None
    silence: float | None = Field(default=None, ge=0)
    hangup: bool | None = None
    expect: TurnExpect = Field(default_factory=TurnExpect)

    @model_validator(mode="after")
    def _exactly_one(self) -> ConversationTurn:
        kinds = [k for k in ("text", "dtmf", "silence", "hangup") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a turn needs exactly one of text/dtmf/silence/hangup, got {kinds}")
        return self

    @property
    def kind(self) -> str:
        """Which of the turn kinds this is."""
        return next(
            k for k in ("text", "dtmf", "silence", "hangup") if getattr(self, k) is not None
        )


class Conversation(CallHeader):
    """One typed call and what must come of it."""

    turns: list[ConversationTurn]
    expect: Expect = Field(default_factory=Expect)
    category: str = ""

    def scenario(self) -> Scenario:
        """The call as a replay scenario (for the shared expectation checks)."""
        return Scenario(name=self.name, **{"from": self.from_}, expect=self.expect)


class ConversationFile(BaseModel):
    """A file of conversations of one category."""

    model_config = ConfigDict(extra="forbid")

    category: str
    conversations: list[Conversation]


def load_categorised(target: Path, file_model: type[BaseModel]) -> list[Any]:
    """Every conversation in a file, or in the `*.yaml` files of a directory (sorted), each
    file read as `file_model` (a `category` and its `conversations`).

    Names are unique across what is loaded; a mistake names its file.
    """
    paths = sorted(target.glob("*.yaml")) if target.is_dir() else [target]
    found: list[Any] = []
    seen: dict[str, Path] = {}
    for path in paths:
        data = yaml.safe_load(path.read_text())
        try:
            parsed: Any = file_model.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        for conv in parsed.conversations:
            if conv.name in seen:
                raise ValueError(f"{path}: conversation {conv.name!r} is also in {seen[conv.name]}")
            seen[conv.name] = path
            conv.category = parsed.category
            found.append(conv)
    return found


def load_conversations(target: Path) -> list[Conversation]:
    """Every conversation in a file, or in the `*.yaml` files of a directory (sorted)."""
    return load_categorised(target, ConversationFile)


class _Events:
    """The call's event sink, as replay's report lists events."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        item = {"type": type, **data}
        if order is not None:
            item["order"] = order
        self.recorded.append(item)


def demo_services(shop: DemoShop, events: Any) -> Services:
    """Every service of the embedded demo shop, recording events to `events`."""
    return Services(
        orders=shop.orders,
        tracking=shop.tracking,
        messenger=shop.messenger,
        events=events,
        shop_name="Northwind Goods",
        coupons=shop.coupons,
        returns=shop.returns,
        refunds=shop.refunds,
        helpdesk=shop.helpdesk,
        deliveries=shop.deliveries,
    )


@dataclass
class Outcome:
    """One conversation's result: whether it passed, why not, and the call as it went."""

    name: str
    category: str
    failures: list[str] = field(default_factory=list)
    turns: list[dict[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No expectation failed."""
        return not self.failures

    def transcript(self) -> str:
        """The call, a line a turn."""
        return "\n".join(f"{t['role']:>6}: {t['text']}" for t in self.turns)


def _turn_failures(expect: TurnExpect, said: list[str], events: list[dict[str, Any]], n: int):
    text = " ".join(said).lower()
    where = f"turn {n}"
    for phrase in expect.says:
        if phrase.lower() not in text:
            yield f"{where}: the reply does not contain {phrase!r} (said: {' '.join(said)!r})"
    for phrase in expect.never_says:
        if phrase.lower() in text:
            yield f"{where}: the reply contains {phrase!r}"
    for wanted in expect.events:
        if not any(event_matches(e, wanted) for e in events):
            yield f"{where}: no event matching {wanted}"
    for unwanted in expect.not_events:
        if any(event_matches(e, unwanted) for e in events):
            yield f"{where}: an event matching {unwanted} happened"


async def run_conversation(
    conv: Conversation, *, flows: Flows | None = None, today: date = TODAY
) -> Outcome:
    """Play one conversation against a fresh demo shop; check what it must come to."""
    now = datetime.combine(today, _NOON, tzinfo=UTC)
    shop = DemoShop.in_memory(today=today, clock=lambda: now)
    events = _Events()
    services = demo_services(shop, events)
    if conv.direction == "outbound":
        info = CallInfo(
            f"CA-{conv.name}", conv.to, conv.from_, "outbound", conv.purpose, conv.order
        )
    else:
        info = CallInfo(f"CA-{conv.name}", conv.from_, conv.to, "inbound", conv.purpose, conv.order)
    agent = Agent(flows, services, info, clock=lambda: now)
    outcome = Outcome(conv.name, conv.category)
    ended = False

    async def drain(stream: AsyncIterator[Any]) -> list[str]:
        nonlocal ended
        said = []
        async for event in stream:
            if isinstance(event, Say):
                outcome.turns.append({"role": "agent", "text": event.text})
                said.append(event.text)
            elif isinstance(event, EndCall | Transfer):
                ended = True
        return said

    await drain(agent.start())
    for n, turn in enumerate(conv.turns, 1):
        if turn.kind == "hangup":
            break
        if ended:
            outcome.failures.append(f"turn {n}: the agent had already ended the call")
            break
        before = len(events.recorded)
        if turn.kind == "text":
            outcome.turns.append({"role": "caller", "text": turn.text or ""})
            said = await drain(agent.hear(turn.text or "", 1.0))
        elif turn.kind == "dtmf":
            digits = (turn.dtmf or "").rstrip("#")
            outcome.turns.append({"role": "caller", "text": f"[keypad] {digits}"})
            said = await drain(agent.keypad(digits))
        else:
            outcome.turns.append({"role": "caller", "text": f"[silence {turn.silence} s]"})
            said = []
            if (turn.silence or 0) >= SILENCE_REPROMPT_S:
                said = await drain(agent.silence(turn.silence or 0))
        outcome.failures.extend(_turn_failures(turn.expect, said, events.recorded[before:], n))
    await agent.end("caller_hangup")
    outcome.events = events.recorded
    intents: list[str] = []
    for event in events.recorded:
        if event["type"] == "intent" and event.get("name") not in intents:
            intents.append(event["name"])
    report = {
        "turns": outcome.turns,
        "events": events.recorded,
        "intents": intents,
        "handoff": agent.handoff,
        "latency_ms": [],
    }
    outcome.failures.extend(check_expectations(conv.scenario(), report))
    return outcome


async def run_conversations(
    convs: list[Conversation], *, flows_dir: Path | None = None, today: date = TODAY
) -> list[Outcome]:
    """Run every conversation, one after the other (each on its own shop)."""
    flows = load_flows(flows_dir) if flows_dir is not None else None
    return [await run_conversation(c, flows=flows, today=today) for c in convs]


def format_results(outcomes: list[Outcome], *, verbose: bool = False) -> str:
    """A table per category, the total, and each failure (with its transcript when verbose)."""
    by_category: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_category.setdefault(o.category, []).append(o)
    width = max([len(c) for c in by_category] + [len("category")])
    lines = [f"{'category':<{width}}  passed  total  rate"]
    for category, group in sorted(by_category.items()):
        passed = sum(o.passed for o in group)
        lines.append(
            f"{category:<{width}}  {passed:>6}  {len(group):>5}  {passed / len(group):6.1%}"
        )
    total = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    rate = passed / total if total else 1.0
    lines.append(f"{'all':<{width}}  {passed:>6}  {total:>5}  {rate:6.1%}")
    for o in outcomes:
        if o.passed:
            continue
        lines.append("")
        lines.append(f"FAILED {o.category}/{o.name}")
        lines.extend(f"  - {f}" for f in o.failures)
        if verbose:
            lines.extend("    " + line for line in o.transcript().splitlines())
    return "\n".join(lines)


def results_json(outcomes: list[Outcome]) -> str:
    """The results as JSON: per conversation, passed, failures and the transcript."""
    return json.dumps(
        [
            {
                "name": o.name,
                "category": o.category,
                "passed": o.passed,
                "failures": o.failures,
                "turns": o.turns,
                "events": o.events,
            }
            for o in outcomes
        ],
        indent=2,
        default=str,
    )


def run(target: Path, *, flows_dir: Path | None = None, category: str | None = None):
    """Load and run (the CLI's entry): the outcomes, in file order."""
    convs = load_conversations(target)
    if category:
        convs = [c for c in convs if c.category == category]
    return asyncio.run(run_conversations(convs, flows_dir=flows_dir))
