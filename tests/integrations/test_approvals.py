"""Refund approvals: each decided once, the refund queued once per line, the customer texted.

Runs on SQLite and on PostgreSQL (`db_url`), including two people deciding at the same moment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from integrations.approvals import Approvals, NotPending
from integrations.delivery import OutboxLeases
from integrations.models import Customer, Order, OrderLine, Refund
from integrations.outbox import OutboxItem, OutboxRefunds
from integrations.schema import refund_approvals
from integrations.store import CallEvents, Store, make_engine

OMAR = "+14155550106"
CALLER = "+14155550199"  # Omar calling from another phone
T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class FakeOrders:
    """The shop's order source: order 1012 belongs to Omar. Can be down."""

    down: bool = False

    async def order(self, number: str) -> Order | None:
        if self.down:
            raise TimeoutError("order source down")
        if number != "1012":
            return None
        line = OrderLine("HP-1", "Studio headphones", "electronics", 25000, line_id="1012-1")
        return Order(
            "1012", "cust_006", T0, (line,), "fulfilled", payment_method="your Visa ending in 4242"
        )

    async def customer(self, customer_id: str) -> Customer | None:
        if self.down:
            raise TimeoutError("order source down")
        return Customer(customer_id, "Omar Haddad", OMAR, "omar@example.com", "98101")


@dataclass
class FakeRefunds:
    """The refunds provider's ledger."""

    done: list[Refund] = field(default_factory=list)

    async def refund(self, order_number, line_id, amount_cents, *, idempotency_key, reason):
        raise AssertionError("approvals never refund directly: the outbox worker does")

    async def refunds_of(self, order_number: str) -> list[Refund]:
        return [r for r in self.done if r.order_number == order_number]


@pytest.fixture
def store(db_url: str):
    store = Store(make_engine(db_url))
    store.migrate()
    yield store
    store.engine.dispose()


def pending(
    store: Store, sid: str | None = "CA1", line: str = "1012-1", order: str = "1012"
) -> int:
    """What the dialog leaves for a person: the call, and `refund.pending_approval`."""
    if sid is not None:
        store.upsert_call(sid, from_number=CALLER, to_number="+18005550100", status="completed")
    data = {"amount_cents": 25000, "line_id": line, "ticket_id": "PV-7K2Q9M", "reason": "damaged"}
    return store.add_event(sid, "refund.pending_approval", order, data, 5000)


def desk(store: Store, **options) -> tuple[Approvals, list[str]]:
    woken: list[str] = []
    options = {"orders": FakeOrders(), "refunds": FakeRefunds(), **options}
    approvals = Approvals(
        store, shop_name="Northwind Goods", wake=lambda: woken.append("wake"), **options
    )
    return approvals, woken


def rows(store: Store, kind: str) -> list:
    return store.outbox.items(kind=kind, limit=None)


def types(store: Store, sid: str = "CA1") -> list[str]:
    return [e["type"] for e in store.call(sid)["events"]]


def decisions(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(refund_approvals)).scalar_one()


async def test_approving_queues_the_refund_and_a_text_and_records_it_on_the_call(store):
    event_id = pending(store)
    approvals, woken = desk(store)
    assert [p.id for p in approvals.pending()] == [event_id]

    done = await approvals.decide(event_id, "approve", decided_by="dashboard", note="ok by Sam")

    assert done.status == "approved"
    assert done.message.startswith("Approved: the refund of $250.00 for order 1012")
    assert OMAR in done.message
    (refund,) = rows(store, "refund")
    assert refund.idempotency_key == "refund:1012:1012-1"  # the key OutboxRefunds uses
    assert refund.payload["amount_cents"] == 25000 and refund.payload["line_id"] == "1012-1"
    assert refund.call_sid == "CA1" and refund.order_ref == "1012"
    (sms,) = rows(store, "sms")
    assert sms.payload["to"] == OMAR  # the order's customer, not the phone that called
    body = sms.payload["body"]
    assert body.startswith("Northwind Goods: your refund of $250.00 for order 1012")
    assert "(Studio headphones) was approved" in body and "your Visa ending in 4242" in body
    assert types(store)[-3:] == ["refund.approved", "refund.created", "sms.sent"]
    approved = store.call("CA1")["events"][-3]
    assert approved["order_ref"] == "1012"
    assert approved["data"]["note"] == "ok by Sam" and approved["data"]["approval_id"] == event_id
    assert approvals.pending() == []
    (decided,) = approvals.decided()
    assert decided.decision.decision == "approve" and decided.decision.decided_by == "dashboard"
    assert decided.refund.id == refund.id and decided.sms.id == sms.id
    assert woken == ["wake"]


async def test_a_second_decision_does_nothing_and_says_so(store):
    event_id = pending(store)
    approvals, woken = desk(store)
    await approvals.decide(event_id, "approve")
    before = types(store)

    again = await approvals.decide(event_id, "approve")
    other = await approvals.decide(event_id, "deny", note="changed my mind")

    assert again.status == other.status == "already_decided"
    assert again.message.startswith("Already approved by dashboard at ")
    assert "nothing more was done" in again.message
    assert len(rows(store, "refund")) == len(rows(store, "sms")) == 1
    assert types(store) == before and decisions(store) == 1
    assert woken == ["wake"]


@pytest.mark.parametrize("second", ["approve", "deny"])
async def test_two_people_deciding_at_the_same_moment_decide_once(store, second):
    event_id = pending(store)
    first_desk, _ = desk(store)
    second_desk, _ = desk(store)

    results = await asyncio.gather(
        first_desk.decide(event_id, "approve", decided_by="ana"),
        second_desk.decide(event_id, second, decided_by="ben"),
    )

    statuses = sorted(r.status for r in results)
    assert statuses.count("already_decided") == 1
    assert decisions(store) == 1
    made = next(r for r in results if r.status != "already_decided")
    if made.status == "approved":
        assert len(rows(store, "refund")) == 1
        assert types(store).count("refund.approved") == 1
        assert "refund.approval_denied" not in types(store)
    else:
        assert rows(store, "refund") == []
        assert types(store).count("refund.approval_denied") == 1
    assert len(rows(store, "sms")) == 1  # one text, whichever decision won


async def test_denying_texts_the_reason_and_refunds_nothing(store):
    event_id = pending(store)
    approvals, woken = desk(store)

    done = await approvals.decide(
        event_id, "deny", note="the parcel came back empty. Card 4242 4242 4242 4242"
    )

    assert done.status == "denied" and done.message.startswith("Denied:")
    assert rows(store, "refund") == []
    (sms,) = rows(store, "sms")
    body = sms.payload["body"]
    assert "a person on our team reviewed your refund request of $250.00 for order 1012" in body
    assert "could not approve it: the parcel came back empty" in body
    assert "We'll be in touch" in body and "PV-7K2Q9M" in body
    assert "4242 4242" not in body and "[card number removed]" in body
    assert types(store)[-2:] == ["refund.approval_denied", "sms.sent"]
    denied = store.call("CA1")["events"][-2]
    assert denied["data"]["reason"].startswith("the parcel came back empty")
    assert woken == ["wake"]


async def test_a_line_the_outbox_already_refunds_is_not_refunded_twice(store):
    # The caller asked again on another call, and that time the line went below the line.
    store.upsert_call("CA0", from_number=OMAR)
    await OutboxRefunds(CallEvents(store, "CA0")).refund(
        "1012", "1012-1", 25000, idempotency_key="CA0:refund", reason="damaged"
    )
    event_id = pending(store)
    approvals, _ = desk(store)

    done = await approvals.decide(event_id, "approve")

    assert done.status == "approved"
    assert "was already refunded (outbox #1, pending)" in done.message
    assert len(rows(store, "refund")) == 1 and rows(store, "sms") == []
    assert "refund.created" not in types(store)
    assert store.call("CA1")["events"][-1]["data"]["outcome"] == "already_refunded"


async def test_a_line_the_provider_has_refunded_is_not_refunded_again(store):
    event_id = pending(store)
    earlier = Refund("re_1", "1012", "1012-1", 25000, "succeeded", T0)
    approvals, _ = desk(store, refunds=FakeRefunds([earlier]))

    done = await approvals.decide(event_id, "approve")

    assert "the refunds provider has re_1, succeeded" in done.message
    assert rows(store, "refund") == [] and rows(store, "sms") == []
    assert approvals.decided()[0].decision.outcome == "already_refunded"


async def test_approving_again_retries_a_refund_that_died(store):
    store.outbox.enqueue(
        OutboxItem(
            "refund",
            "refund:1012:1012-1",
            {"order_number": "1012", "line_id": "1012-1", "amount_cents": 25000},
        ),
    )
    (dead,) = OutboxLeases(store.engine).claim("w", ["refund"], now=datetime.now(UTC), lease_s=60)
    OutboxLeases(store.engine).fail(
        dead.id, "w", error="timeout", code="timeout", now=datetime.now(UTC), retry_at=None
    )
    event_id = pending(store)
    approvals, _ = desk(store)

    done = await approvals.decide(event_id, "approve")

    assert "earlier failed attempt is retried" in done.message
    (refund,) = rows(store, "refund")
    assert refund.status == "pending" and refund.attempts == 0
    assert len(rows(store, "sms")) == 1


async def test_without_the_order_source_the_number_that_called_is_texted(store):
    event_id = pending(store)
    approvals, _ = desk(store, orders=FakeOrders(down=True))

    await approvals.decide(event_id, "approve")

    (sms,) = rows(store, "sms")
    assert sms.payload["to"] == CALLER
    assert "for order 1012 was approved" in sms.payload["body"]  # no item name to add


async def test_a_request_from_the_returns_desk_has_no_call_and_still_texts_the_customer(store):
    event_id = pending(store, sid=None)
    approvals, _ = desk(store)

    done = await approvals.decide(event_id, "approve")

    assert done.approval.call_sid is None and done.approval.caller is None
    (refund,) = rows(store, "refund")
    assert refund.call_sid is None
    assert rows(store, "sms")[0].payload["to"] == OMAR


async def test_unknown_ids_and_decisions_are_refused(store):
    approvals, _ = desk(store)
    with pytest.raises(NotPending):
        await approvals.decide(999, "approve")
    not_a_request = store.add_event(None, "refund.created", "1012", {"line_id": "1012-1"}, None)
    with pytest.raises(NotPending):
        await approvals.decide(not_a_request, "approve")
    event_id = pending(store)
    with pytest.raises(ValueError, match="approve"):
        await approvals.decide(event_id, "maybe")
    nameless = store.add_event("CA1", "refund.pending_approval", None, {"amount_cents": 100}, 1)
    with pytest.raises(ValueError, match="no order line"):
        await approvals.decide(nameless, "approve")
    assert decisions(store) == 0 and rows(store, "refund") == []
