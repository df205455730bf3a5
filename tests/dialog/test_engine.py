"""The flow engine, step by step, on small flows written for the test."""

from __future__ import annotations

import shutil
import textwrap
from datetime import date
from typing import Any

import pytest

from dialog.engine import Engine
from dialog.events import CallInfo, EndCall, Hints, Say, Transfer
from dialog.loader import DEFAULT_FLOWS, Flows, load_flows
from dialog.policy import load_policy
from integrations.demo import DemoShop
from tests.dialog.calls import MARIA, NOW, Events, demo_shop, said, services
from tests.dialog.wrappers import Failing, Recording, Slow

TEST_FLOWS = {
    "t_words": """
        flow: t_words
        slots: {placed: {type: date, keep: true}, days: {type: days, keep: true}}
        steps:
          - say: "{order_number}: {order_total}, paid with {payment_method}, placed {placed}
              ({days})."
    """,
    "t_ask": """
        flow: t_ask
        slots:
          wants_text: {type: yes_no, from_utterance: true}
        steps:
          - collect: wants_text
            ask: "Shall I text you?"
            reprompt: "Text you?"
            max_attempts: 2
            next:
              - if: wants_text
                then: yes_
              - else: no_
          - id: yes_
            say: "Texting."
            next: end
          - id: no_
            say: "Not texting."
    """,
    "t_number": """
        flow: t_number
        slots:
          order_number: order_number
        steps:
          - collect: order_number
            ask: "Which order?"
            keypad: true
            on_fail: gave_up
          - say: "Order {order_number}."
            next: end
          - id: gave_up
            say: "Never mind."
    """,
    "t_choice": """
        flow: t_choice
        slots:
          drink:
            type: choice
            options: {tea: [tea, a cuppa], coffee: [coffee, espresso]}
          new_size: size
        steps:
          - collect: drink
            ask: "Tea, then?"
            yes: tea
            no: coffee
            also: [new_size]
          - say: "One {drink}."
    """,
    "t_lookup": """
        flow: t_lookup
        steps:
          - set: {order_number: "1001"}
          - action: lookup_order
            say_first: "One moment."
          - action: track_order
            say_first: "Another moment."
          - say: "{status_text}"
    """,
    "t_outer": """
        flow: t_outer
        steps:
          - say: "Before."
          - call: t_inner
            next:
              - if: verified
                then: after
              - else: after
          - id: after
            say: "After."
          - end: call
            reason: done_here
    """,
    "t_inner": """
        flow: t_inner
        steps:
          - say: "Inside."
    """,
    "t_listen": """
        flow: t_listen
        steps:
          - say: "Ask me anything."
          - end: listen
    """,
    "t_handoff": """
        flow: t_handoff
        steps:
          - handoff: testing
    """,
}


@pytest.fixture(scope="module")
def flows(tmp_path_factory) -> Flows:
    target = tmp_path_factory.mktemp("engine") / "flows"
    shutil.copytree(DEFAULT_FLOWS, target)
    for name, text in TEST_FLOWS.items():
        (target / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
    return load_flows(target)


def engine_for(
    flows: Flows,
    shop: DemoShop | None = None,
    events: Events | None = None,
    caller: str = MARIA,
    **swapped: Any,
) -> Engine:
    """An engine over `shop` (a fresh demo shop), recording to `events`, `swapped` swapped in."""
    return Engine(
        flows=flows,
        services=services(shop or demo_shop(), events or Events(), **swapped),
        policy=load_policy(),
        call=CallInfo("CA1", caller, "+18005550100"),
        clock=lambda: NOW,
        tz=NOW.tzinfo,
        human_number="+18005550199",
    )


async def run(engine: Engine) -> list:
    return [e async for e in engine.run()]


async def test_say_speaks_each_slot_the_way_its_type_is_said(flows):
    engine = engine_for(flows)
    shop = engine.services.orders
    engine.slots["order"] = await shop.order("1002")
    engine.slots["customer"] = await shop.customer("cust_001")
    engine.sync_order()
    engine.slots.update(placed=date(2025, 6, 17), days=3)
    engine.begin(flows["t_words"])
    assert await run(engine) == [
        Say(
            "Ten oh two: one hundred twenty dollars, paid with your Visa ending in four two "
            "four two, placed yesterday (three days)."
        )
    ]


async def test_collect_asks_with_hints_and_waits(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_ask"])
    events = await run(engine)
    assert events == [Say("Shall I text you?"), Hints(slot="yes_no")]
    assert engine.waiting is not None and engine.waiting.collect == "wants_text"
    engine.accept(engine.parse("yes please"))
    assert said(await run(engine)) == "Texting."
    assert engine.stack == []


async def test_a_miss_reprompts_then_gives_up_to_the_handoff(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_ask"])
    await run(engine)
    assert engine.parse("the weather is nice") is None
    events = [e async for e in engine.missed("Sorry?")]
    assert events == [Say("Sorry? Text you?"), Hints(slot="yes_no")]
    events = [e async for e in engine.missed("Sorry?")]
    assert "connect you with a person" in said(events)
    assert isinstance(events[-1], Transfer)
    assert engine.slots["handoff_reason"] == "wants_text_not_understood"


async def test_on_fail_goes_to_the_named_step(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_number"])
    await run(engine)
    [e async for e in engine.missed("Sorry?")]
    events = [e async for e in engine.missed("Sorry?")]
    assert said(events) == "Never mind."


async def test_keypad_answers_only_where_the_keypad_is_allowed(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_number"])
    events = await run(engine)
    assert events[-1] == Hints(slot="order_number", prompt="Order number:", expect_dtmf=True)
    assert engine.parse("1003", keypad=True) == "1003"
    engine.begin(flows["t_ask"])
    await run(engine)
    assert engine.parse("1", keypad=True) is None  # this question takes no keypad


async def test_a_slot_said_in_the_opening_sentence_skips_its_question(flows):
    engine = engine_for(flows)
    engine.heard = "no thanks, I'm good"
    engine.begin(flows["t_ask"])
    assert said(await run(engine)) == "Not texting."


async def test_slots_of_a_flow_are_cleared_when_it_starts_again(flows):
    engine = engine_for(flows)
    engine.slots["wants_text"] = True
    engine.begin(flows["t_ask"])
    assert said(await run(engine)) == "Shall I text you?"


async def test_a_choice_takes_yes_or_no_and_fills_other_slots_from_the_same_answer(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_choice"])
    await run(engine)
    engine.heard = "yes, a large one"
    engine.accept(engine.parse(engine.heard))
    assert engine.slots["drink"] == "tea" and engine.slots["new_size"] == "L"
    engine.begin(flows["t_choice"])
    await run(engine)
    assert engine.parse("no thanks") == "coffee"
    assert engine.parse("actually an espresso") == "coffee"
    assert engine.parse("not coffee, tea") == "tea"


async def test_with_filler_after_0_the_filler_comes_before_the_lookup_once_per_turn(flows):
    shop = demo_shop()
    orders = Recording(shop.orders)
    engine = engine_for(flows, shop, orders=orders)
    engine.filler_after = 0
    engine.begin(flows["t_lookup"])
    stream = engine.run()
    first = await anext(stream)
    assert first == Say("One moment.", filler=True)
    assert "order 1001" not in orders.calls
    rest = [e async for e in stream]
    assert "order 1001" in orders.calls
    assert said(rest) == "Order ten oh one is on its way and should arrive tomorrow."


async def test_only_the_first_slow_steps_filler_is_said_in_a_turn(flows):
    shop = demo_shop()
    slow = {"orders": Slow(shop.orders, 0.5), "tracking": Slow(shop.tracking, 0.5)}
    engine = engine_for(flows, shop, **slow)
    engine.begin(flows["t_lookup"])
    events = await run(engine)
    assert said(events) == (
        "One moment. Order ten oh one is on its way and should arrive tomorrow."
    )


async def test_fast_steps_say_no_filler(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_lookup"])
    assert said(await run(engine)) == "Order ten oh one is on its way and should arrive tomorrow."


async def test_a_failing_service_apologises_and_hands_over(flows):
    shop, recorded = demo_shop(), Events()
    engine = engine_for(flows, shop, recorded, orders=Failing(shop.orders, down=True))
    engine.begin(flows["t_lookup"])
    events = await run(engine)
    assert "can't reach our order system" in said(events)
    assert isinstance(events[-1], Transfer)
    assert "escalation" in recorded.types()


async def test_call_runs_the_other_flow_then_carries_on(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_outer"])
    events = await run(engine)
    assert said(events) == "Before. Inside. After."
    assert events[-1] == EndCall("done_here")
    assert engine.finished


async def test_end_listen_waits_for_a_new_request(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_listen"])
    assert said(await run(engine)) == "Ask me anything."
    assert engine.stack == [] and engine.listening


async def test_handoff_step_runs_the_handoff_flow(flows):
    shop, recorded = demo_shop(), Events()
    engine = engine_for(flows, shop, recorded)
    engine.begin(flows["t_handoff"])
    events = await run(engine)
    assert isinstance(events[-1], Transfer)
    assert [t["tags"] for t in shop.helpdesk.tickets()] == [["phone", "testing"]]
    assert recorded.of("handoff")[0]["reason"] == "testing"


async def test_an_interruption_asks_the_waiting_question_again_afterwards(flows):
    engine = engine_for(flows)
    engine.begin(flows["t_ask"])
    await run(engine)
    engine.begin(flows["t_inner"], replace=False)
    events = await run(engine)
    assert said(events) == "Inside. Text you?"
    assert engine.waiting is not None
