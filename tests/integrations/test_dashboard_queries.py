"""The store's read models for the dashboard, on SQLite and PostgreSQL: the calls list with
its outcomes, filters and search; the tickets and returns queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.dashboard_queries import CallFilter
from integrations.delivery import OutboxLeases
from integrations.outbox import OutboxHelpdesk, OutboxReturns
from integrations.store import CallEvents, Store, make_engine

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
MARIA, JAMES, TOM = "+14155550101", "+14155550102", "+14155550104"


@pytest.fixture
def store(db_url: str):
    store = Store(make_engine(db_url))
    store.migrate()
    yield store
    store.engine.dispose()


def call(store: Store, sid: str, minutes: int, **fields) -> None:
    store.upsert_call(sid, from_number=fields.pop("caller", MARIA), to_number="+18005550100")
    store.upsert_call(sid, created_at=T0 + timedelta(minutes=minutes), **fields)


def listed(store: Store, **filters) -> list[str]:
    return [c.call_sid for c in store.calls_page(CallFilter(**filters)).items]


@pytest.fixture
def calls(store: Store) -> Store:
    ended = {"status": "completed", "started_at": T0, "ended_at": T0 + timedelta(seconds=95)}
    call(store, "CAdone", 0, end_reason="caller_done", **ended)
    call(store, "CAserved", 1, caller=JAMES, end_reason="caller_hangup", **ended)
    store.add_event("CAserved", "tracking.looked_up", "1003", {"status": "delivered"}, 10)
    call(store, "CAleft", 2, caller=TOM, end_reason="caller_hangup", **ended)
    call(store, "CAsilent", 3, end_reason="silence", **ended)
    call(store, "CAhandoff", 4, caller=TOM, end_reason="transfer", transfer_to="+18005550199")
    store.add_event("CAhandoff", "handoff", "1007", {"reason": "lost"}, 10)
    call(store, "CAerror", 5, end_reason="error", **ended)
    call(store, "CAbusy", 6, direction="outbound", status="busy", duration_s=0)
    call(store, "CAlive", 7, status="in-progress")
    call(store, "CAringing", 8, status="ringing")
    return store


def test_each_call_gets_its_outcome(calls: Store):
    page = calls.calls_page()
    assert page.total == 9
    assert {c.call_sid: c.outcome for c in page.items} == {
        "CAringing": "in_progress",
        "CAlive": "in_progress",
        "CAbusy": "failed",  # never connected
        "CAerror": "failed",
        "CAhandoff": "handed_off",
        "CAsilent": "abandoned",
        "CAleft": "abandoned",  # hung up before anything was done
        "CAserved": "resolved",  # hung up after being told where the parcel is
        "CAdone": "resolved",  # the agent said goodbye
    }
    by_sid = {c.call_sid: c for c in page.items}
    assert by_sid["CAhandoff"].handoff and not by_sid["CAdone"].handoff
    assert by_sid["CAdone"].duration_s == 95  # from our own start and end
    assert by_sid["CAbusy"].duration_s == 0  # Twilio's figure wins


FILTERS = [
    ({"outcome": "abandoned"}, ["CAsilent", "CAleft"]),
    ({"outcome": "failed"}, ["CAbusy", "CAerror"]),
    ({"handoff": True}, ["CAhandoff"]),
    ({"handoff": False, "outcome": "resolved"}, ["CAserved", "CAdone"]),
    ({"direction": "outbound"}, ["CAbusy"]),
    ({"since": T0 + timedelta(minutes=7)}, ["CAringing", "CAlive"]),
    ({"q": "CAlive"}, ["CAlive"]),
]


def test_filters(calls: Store):
    for filters, expected in FILTERS:
        assert listed(calls, **filters) == expected, filters


def test_search_finds_numbers_orders_and_words(store: Store):
    call(store, "CA1", 0, caller=MARIA)
    store.add_turn("CA1", 0, "caller", "My ESPRESSO machine 100% never came_back")
    call(store, "CA2", 1, caller=JAMES, order_ref="1009")
    call(store, "CA3", 2, caller=TOM)
    store.add_event("CA3", "intent", "1012", {"name": "refund_status"}, 1)
    store.add_turn("CA3", 0, "caller", "where is my refund")

    assert listed(store, q="espresso") == ["CA1"]  # any case
    assert listed(store, q="415 555 0102") == ["CA2"]  # however the number is typed
    assert listed(store, q="+14155550104") == ["CA3"]
    assert listed(store, q="1009") == ["CA2"]  # the call's order
    assert listed(store, q="#1012") == ["CA3"]  # an order an event names
    assert listed(store, q="100%") == ["CA1"]
    assert listed(store, q="e%n") == []  # % is a character here, not a wildcard
    assert listed(store, q="came_back") == ["CA1"]
    assert listed(store, q="cameXback") == []  # and so is _
    assert listed(store, q="nothing like it") == []


def test_intents_and_the_median_reply_latency(store: Store):
    call(store, "CA1", 0)
    for seq, latency in enumerate([800, None, 500, 1200, 650]):
        timing = {"latency_ms": latency, "stt_ms": 100} if latency else None
        store.add_turn("CA1", seq, "agent", "…", timing=timing)
    store.add_turn("CA1", 9, "caller", "…", timing={"latency_ms": 99999})
    for name in ("order_status", "refund_status", "order_status"):
        store.add_event("CA1", "intent", None, {"name": name, "score": 1.0}, 1)
    call(store, "CA2", 1)
    store.add_event("CA2", "intent", None, {"name": "goodbye"}, 1)

    (first, second) = store.calls_page(CallFilter()).items[::-1]
    assert first.intents == ["order_status", "refund_status"]
    assert first.median_latency_ms == 650  # of 500, 650, 800, 1200; caller turns don't count
    assert second.median_latency_ms is None
    assert second.intents == []  # saying goodbye is not what the caller called about
    assert listed(store, intent="refund_status") == ["CA1"]
    assert store.intent_names() == ["order_status", "refund_status"]


def test_pages_of_the_list(store: Store):
    for i in range(7):
        call(store, f"CA{i}", i)
    page = store.calls_page(CallFilter(), page=2, per_page=3)
    assert [c.call_sid for c in page.items] == ["CA3", "CA2", "CA1"]
    assert (page.total, page.pages) == (7, 3)
    assert store.calls_page(CallFilter(), page=9, per_page=3).items == []


async def test_tickets_with_their_state_order_and_reason(store: Store):
    call(store, "CA1", 0)
    events = CallEvents(store, "CA1")
    refs = []
    for n in range(3):
        ticket = await OutboxHelpdesk(events).create_ticket(
            f"Ticket {n}",
            "body",
            requester_phone=MARIA,
            requester_email=None,
            tags=["t"],
            priority="high",
            idempotency_key=f"CA1:{n}",
        )
        await events.record("ticket.created", order=f"100{n}", ticket_id=ticket.id, reason="lost")
        refs.append(ticket.id)
    now = datetime.now(UTC) + timedelta(seconds=5)
    leases = OutboxLeases(store.engine)
    claimed = leases.claim("w", ["ticket"], now=now, lease_s=60, limit=2)
    first, second = sorted(claimed, key=lambda e: e.id)
    leases.complete(first.id, {"id": "ZD-77", "url": "https://help.example/77"}, now=now)
    leases.fail(second.id, "w", error="HTTP 400", code="bad", now=now, retry_at=None)

    page = store.tickets_page()
    assert [t["reference"] for t in page.items] == refs[::-1]
    assert [t["state"] for t in page.items] == ["queued", "dead", "delivered"]
    delivered = page.items[-1]
    assert delivered["helpdesk_id"] == "ZD-77" and delivered["order_ref"] == "1000"
    assert delivered["reason"] == "lost" and delivered["call_sid"] == "CA1"
    assert page.items[1]["error"] == "HTTP 400"
    assert [t["state"] for t in store.tickets_page("queued").items] == ["queued"]
    assert store.tickets_page("dead").total == 1


async def test_returns_by_order_with_their_labels(store: Store):
    class Provider:
        async def label(self, rma, *, idempotency_key):
            raise AssertionError("queued, not bought here")

    call(store, "CA1", 0)
    events = CallEvents(store, "CA1")
    await events.record(
        "return.created", order="1003", rma="RMA-1", reason_code="defective", line_id="1003-1"
    )
    await OutboxReturns(events, Provider()).label("RMA-1", idempotency_key="label:RMA-1")
    await events.record("return.denied", order="1004", reason="final_sale", line_id="1004-1")
    await events.record("refund.pending_approval", order="1012", amount_cents=25000)
    await events.record("intent", order="1001", name="order_status")  # not about returns

    page = store.returns_page()
    assert [g["order_ref"] for g in page.items] == ["1012", "1004", "1003"]
    assert page.total == 3
    returned = page.items[-1]
    assert [e["type"] for e in returned["events"]] == ["return.created"]
    assert returned["labels"]["RMA-1"].kind == "label"
    assert returned["labels"]["RMA-1"].status == "pending"
    assert page.items[0]["labels"] == {}
