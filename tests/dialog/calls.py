"""Calls to the agent over the embedded demo shop, on a fixed clock, for dialog unit tests.

The shop is the real one (`integrations.demo.DemoShop`), seeded with the shop of docs/DESIGN.md
or a test's own `ShopSeed` on `TODAY`, its clock stopped at `NOW`; a test asserts on what the
shop then holds (texts, tickets, returns, refunds), as the customer would find it. Only the
event sink, which is no part of a shop, is the test's own (`Events`); a capability that must
fail or be watched is wrapped (`tests.dialog.wrappers`) and swapped in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from dialog.agent import Agent
from dialog.events import CallInfo, Event, Hints, Say, Transfer
from harness.conversations import demo_services
from integrations.demo import (
    DEMO_SHOP,
    SUPPORT_LINE,
    DemoShop,
    ShopSeed,
    shop_delivery_requests,
    shop_orders,
)
from integrations.models import Refund
from integrations.protocols import EventSink, Services

NOW = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()
SHOP = "Acme Goods"
HUMAN = "+18005550199"
MARIA = "+14155550101"
JAMES = "+14155550102"
AISHA = "+14155550103"
TOM = "+14155550104"
LENA = "+14155550105"
OMAR = "+14155550106"
STRANGER = "+14155550999"


def demo_shop(data: ShopSeed = DEMO_SHOP) -> DemoShop:
    """A fresh shop holding `data`, seeded on `TODAY`, its clock stopped at `NOW`."""
    return DemoShop.in_memory(today=TODAY, clock=lambda: NOW, data=data)


class Events:
    """`EventSink` keeping what was recorded."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        self.recorded.append({"type": type, "order": order, **data})

    def types(self) -> list[str]:
        return [e["type"] for e in self.recorded]

    def of(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.recorded if e["type"] == type]


async def refunds(shop: DemoShop) -> list[Refund]:
    """Every refund in `shop`, oldest first; the demo shop opens with one, 1011's."""
    with shop.engine.connect() as conn:
        numbers = conn.execute(select(shop_orders.c.number)).scalars().all()
    made = [refund for number in numbers for refund in await shop.refunds.refunds_of(number)]
    return sorted(made, key=lambda refund: refund.created_at)


def carrier_requests(shop: DemoShop, kind: str) -> list[tuple[str, Any]]:
    """What `shop` asked of the carriers, one `kind` of request, oldest first, as (order, what):
    the day of a "reschedule", the new address (JSON) of a "redirect", the kind of a "claim"."""
    detail = {"reschedule": "day", "redirect": "address", "claim": "claim_kind"}[kind]
    table = shop_delivery_requests
    with shop.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.order_number, table.c[detail])
            .where(table.c.kind == kind)
            .order_by(table.c.created_at, table.c.id)
        ).all()
    return [tuple(row) for row in rows]


def services(shop: DemoShop, events: EventSink, **swapped: Any) -> Services:
    """Every capability of `shop` as `SHOP`'s, but those `swapped` in by name ("orders": …)."""
    return replace(demo_services(shop, events), shop_name=SHOP, human_number=HUMAN, **swapped)


@dataclass
class Call:
    """One call under test: the agent, the shop behind it, and what was recorded."""

    agent: Agent
    shop: DemoShop
    events: Events

    async def start(self) -> list[Event]:
        return [e async for e in self.agent.start()]

    async def hear(
        self, text: str, confidence: float = 0.9, *, guessed: bool = False
    ) -> list[Event]:
        return [e async for e in self.agent.hear(text, confidence, guessed=guessed)]

    async def keypad(self, digits: str) -> list[Event]:
        return [e async for e in self.agent.keypad(digits)]

    async def silence(self, seconds: float = 5.0) -> list[Event]:
        return [e async for e in self.agent.silence(seconds)]

    async def say(self, *lines: str) -> list[Event]:
        """Several caller turns; the events of the last."""
        events: list[Event] = []
        for line in lines:
            events = await self.hear(line)
        return events


def call(
    caller: str = STRANGER,
    *,
    shop: DemoShop | None = None,
    events: Events | None = None,
    swapped: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    **kw: Any,
) -> Call:
    """A call from `caller`; with direction="outbound", a call we place to them.

    `events` is the sink (by default a fresh `Events`), `swapped` capabilities stand in for the
    shop's own; `policy`, `flows`, `timeout` and `filler_after` go to the agent, the rest to
    its `CallInfo`.
    """
    shop = shop or demo_shop()
    events = events or Events()
    policy = kw.pop("policy", None)
    flows = kw.pop("flows", None)
    timeout = kw.pop("timeout", 8.0)
    agent_kw = {"filler_after": kw.pop("filler_after")} if "filler_after" in kw else {}
    ends = (caller, SUPPORT_LINE)
    if kw.get("direction") == "outbound":
        ends = ends[::-1]
    info = CallInfo("CA123", *ends, **kw)
    agent = Agent(
        flows,
        services(shop, events, **(swapped or {})),
        info,
        policy=policy,
        clock=clock,
        timeout=timeout,
        **agent_kw,
    )
    return Call(agent, shop, events)


def said(events: list[Event]) -> str:
    """Everything said, as one string."""
    return " ".join(e.text for e in events if isinstance(e, Say))


def hints(events: list[Event]) -> list[Hints]:
    """The hints among the events."""
    return [e for e in events if isinstance(e, Hints)]


def transferred(events: list[Event]) -> Transfer | None:
    """The transfer among the events, if any."""
    return next((e for e in events if isinstance(e, Transfer)), None)
