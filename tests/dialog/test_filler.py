"""A step's "one moment" (`say_first`) is said only when its lookup is slow.

A filler before a lookup that answers in milliseconds only puts its own length between the
caller and the answer; so it waits `filler_after` (0.3 s by default) for the lookup, and says
the filler only if the answer is not there yet. The demo shop answers at once; a `Slow`
wrapper makes a lookup take 0.5 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dialog.events import Event, Say
from integrations.demo import DemoShop
from tests.dialog.calls import call, demo_shop, said, transferred
from tests.dialog.wrappers import Failing, Slow

FILLER = Say("Let me look that up.", filler=True)  # marked: it answers nothing
ANSWER = "Order ten oh one is on its way and should arrive tomorrow."


def slow_orders(seconds: float = 0.5, inner: object | None = None) -> tuple[DemoShop, Slow]:
    """A demo shop, and its orders (`inner` in their place if given) finding an order by its
    number `seconds` late (the caller ID's lookup at the start answers at once)."""
    shop = demo_shop()
    return shop, Slow(inner or shop.orders, seconds, "order")


async def test_a_fast_lookup_is_answered_without_a_filler():
    c = call()
    await c.start()
    events = await c.hear("where is order 1001")
    assert FILLER not in events
    assert said(events).startswith(ANSWER)


async def test_a_slow_lookup_says_the_filler_while_it_runs_then_the_answer():
    shop, orders = slow_orders()
    c = call(shop=shop, swapped={"orders": orders})
    await c.start()
    stream = c.agent.hear("where is order 1001", 0.9)
    assert await anext(stream) == FILLER
    assert orders.started == ["order"] and orders.finished == []  # said while it looks
    rest = [e async for e in stream]
    assert said(rest).startswith(ANSWER)
    assert FILLER not in rest


async def test_with_filler_after_0_the_filler_comes_first_as_before():
    c = call(filler_after=0)
    await c.start()
    events = await c.hear("where is order 1001")
    assert events[0] == FILLER
    assert said(events[1:]).startswith(ANSWER)


async def test_the_filler_is_said_once_a_turn_over_several_slow_lookups():
    shop = demo_shop()
    orders, tracking = Slow(shop.orders, 0.5, "order"), Slow(shop.tracking, 0.5)
    c = call(shop=shop, swapped={"orders": orders, "tracking": tracking})
    await c.start()
    events = await c.hear("where is order 1001")
    assert orders.finished and tracking.finished  # both steps waited past the threshold
    assert events.count(FILLER) == 1 and events[0] == FILLER
    assert said(events[1:]).startswith(ANSWER)


async def test_a_lookup_failing_after_the_filler_is_told_as_before():
    shop = demo_shop()
    c = call(shop=shop, swapped={"orders": Failing(shop.orders, down=True)})
    await c.start()
    at_once = await c.hear("where is order 1001")

    shop, orders = slow_orders(inner=Failing(demo_shop().orders, down=True))
    c = call(shop=shop, swapped={"orders": orders})
    await c.start()
    late = await c.hear("where is order 1001")
    assert late[0] == FILLER
    assert late[1:] == at_once
    assert "can't reach our order system" in said(late) and transferred(late) is not None
    assert c.events.of("escalation")[0]["reason"] == "system_error"


async def test_the_timeout_counts_from_the_start_of_the_lookup_not_from_the_filler():
    # 0.7 s would be in time for a timeout of 0.5 s started after the filler (0.3 + 0.5).
    shop, orders = slow_orders(0.7)
    c = call(shop=shop, swapped={"orders": orders}, timeout=0.5)
    await c.start()
    events = await c.hear("where is order 1001")
    assert events[0] == FILLER
    assert "can't reach our order system" in said(events)
    assert orders.cancelled == ["order"]


async def consume_until(
    stream: AsyncIterator[Event], first: int
) -> tuple[asyncio.Task[None], list[Event]]:
    """A task reading `stream` (as the call does), once it has read `first` events."""
    got: list[Event] = []
    enough = asyncio.Event()

    async def read() -> None:
        async for event in stream:
            got.append(event)
            if len(got) >= first:
                enough.set()

    task = asyncio.create_task(read())
    if first:
        await enough.wait()
    return task, got


async def test_a_call_ending_after_the_filler_cancels_the_lookup():
    shop, orders = slow_orders(30)
    c = call(shop=shop, swapped={"orders": orders})
    await c.start()
    task, got = await consume_until(c.agent.hear("where is order 1001", 0.9), 1)
    assert got == [FILLER]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert orders.cancelled == ["order"] and orders.finished == []


async def test_a_call_ending_before_the_filler_cancels_the_lookup_and_says_nothing():
    shop, orders = slow_orders(30)
    c = call(shop=shop, swapped={"orders": orders}, filler_after=10)  # cancelled well before
    await c.start()
    task, got = await consume_until(c.agent.hear("where is order 1001", 0.9), 0)
    await asyncio.sleep(0.1)
    assert orders.started == ["order"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert got == [] and orders.cancelled == ["order"]
