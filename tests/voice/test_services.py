"""`Shop.services`: what a call's dialog is handed. A return label is bought through the outbox,
after the caller's turn, and reaches the caller in exactly one text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from dialog.events import CallInfo, Say
from dialog.policy import load_policy
from integrations.demo import seed
from integrations.store import CallEvents
from integrations.worker import Worker, deliverers_from
from voice.services import Shop, build_shop
from voice.settings import Settings

JAMES = "+14155550102"  # wireless earbuds, order 1003: returnable
SUPPORT = "+18005550100"
RETURN_EARBUDS = [
    "I want to return my wireless earbuds",
    "it's one zero zero zero one",
    "one of them doesn't charge anymore",
    "I'd just like my money back honestly",
    "yes",
]
ON_ITS_WAY = (
    "I'm sending you the prepaid return label by text now; it should arrive in a few minutes."
)


@pytest.fixture
def shop(tmp_path) -> Iterator[Shop]:
    shop = build_shop(Settings(database_url=f"sqlite:///{tmp_path}/shop.db"))
    seed(shop.engine)
    yield shop
    shop.engine.dispose()


async def _said(stream: AsyncIterator[object]) -> list[str]:
    return [event.text async for event in stream if isinstance(event, Say)]


async def _return_earbuds(
    shop: Shop,
    caller: str = JAMES,
    turns: list[str] = RETURN_EARBUDS,
    call_sid: str = "CA1",
    channel: str = "voice",
) -> str:
    """A return of James's earbuds for a refund, called in (or written, on `channel`) from
    `caller`; all the agent said."""
    shop.store.upsert_call(call_sid, from_number=caller)
    info = CallInfo(call_sid, caller, SUPPORT, channel=channel)  # type: ignore[arg-type]
    agent = shop.agent(info, CallEvents(shop.store, call_sid))
    said = await _said(agent.start())
    for text in turns:
        said += await _said(agent.hear(text))
    await agent.end("caller_hangup")
    return " ".join(said)


async def test_a_return_queues_one_label_says_it_is_on_its_way_and_the_worker_texts_it_once(
    shop: Shop,
):
    said = await _return_earbuds(shop)

    assert ON_ITS_WAY in said
    assert "texted" not in said and "http" not in said
    (label,) = shop.store.outbox.items(kind="label")
    assert label.status == "pending"  # bought after the turn, not inside it
    assert label.payload["notify_phone"] == JAMES
    assert shop.store.outbox.items(kind="sms") == []  # the worker texts the label, not the dialog
    assert shop.demo.messenger.sent(JAMES) == []
    types = [e["type"] for e in shop.store.call("CA1")["events"]]
    assert "return.created" in types and types.count("return.label_created") == 1

    await Worker(shop.store.outbox, deliverers_from(shop.providers)).drain(timeout_s=30)

    (label,) = shop.store.outbox.items(kind="label")
    assert label.status == "delivered" and label.result["url"]
    (text,) = shop.demo.messenger.sent(JAMES)
    assert label.result["url"] in text["body"] and label.payload["rma"] in text["body"]


async def test_a_return_held_on_whatsapp_gets_its_label_on_whatsapp(shop: Shop):
    await _return_earbuds(shop, channel="whatsapp")

    (label,) = shop.store.outbox.items(kind="label")
    assert label.payload["notify_phone"] == "whatsapp:" + JAMES
    await Worker(shop.store.outbox, deliverers_from(shop.providers)).drain(timeout_s=30)
    assert shop.demo.messenger.sent(JAMES) == []  # not by SMS beside the conversation
    (text,) = shop.demo.messenger.sent("whatsapp:" + JAMES)
    assert label.payload["rma"] in text["body"]


async def test_an_rma_number_a_reseeded_shop_gives_again_gets_its_own_label(shop: Shop):
    """The demo shop, seeded again, numbers returns from the start; the outbox remembers the
    first RMA-… label, delivered. The new return is a new authorization: its own label, on its
    way, never the old one's link."""
    await _return_earbuds(shop)
    await Worker(shop.store.outbox, deliverers_from(shop.providers)).drain(timeout_s=30)
    seed(shop.engine)
    said = await _return_earbuds(shop, call_sid="CA2")

    assert ON_ITS_WAY in said and "texted" not in said
    first, second = sorted(shop.store.outbox.items(kind="label"), key=lambda item: item.id)
    assert first.payload["rma"] == second.payload["rma"]  # the same number, handed out again
    assert (first.status, second.status) == ("delivered", "pending")


async def test_a_withheld_number_gets_no_label_text_and_is_told_how_to_get_one(shop: Shop):
    said = await _return_earbuds(
        shop,
        "anonymous",
        ["return the wireless earbuds from order ten oh three", *RETURN_EARBUDS[1:]],
    )

    assert ON_ITS_WAY not in said and "can't text the label" in said
    (label,) = shop.store.outbox.items(kind="label")
    assert label.payload["notify_phone"] is None


async def test_a_shop_that_does_not_text_labels_queues_them_for_nobody(shop: Shop):
    policy = load_policy()
    shop.policy = policy.model_copy(
        update={"returns": policy.returns.model_copy(update={"label_by_sms": False})}
    )

    said = await _return_earbuds(shop)

    assert ON_ITS_WAY not in said and "can't text the label" in said
    (label,) = shop.store.outbox.items(kind="label")
    assert label.payload["notify_phone"] is None


async def test_services_without_a_call_text_a_label_to_nobody(shop: Shop):
    services = shop.services(CallEvents(shop.store, None))

    await services.returns.label("RMA-9", idempotency_key="cli:label:RMA-9")

    (label,) = shop.store.outbox.items(kind="label")
    assert label.payload["notify_phone"] is None
