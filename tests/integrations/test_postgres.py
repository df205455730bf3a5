"""On PostgreSQL, instances sharing one database take turns where they must and never wait
where they need not: racing decisions, and claims."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from integrations.delivery import OutboxLeases
from integrations.outbox import OutboxItem, outbox
from integrations.store import Store, make_engine

MARIA = "+14155550101"


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    store = Store(make_engine(pg_url))
    store.migrate()
    yield store
    store.engine.dispose()


def _together(n: int, work) -> list:
    """Run `work(i)` in n threads released at the same moment; their results or errors."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_instances_deciding_the_same_refund_at_once_queue_it_once(store: Store):
    store.upsert_call("CA1", from_number=MARIA)
    stores = [Store(make_engine(store.engine.url.render_as_string(False))) for _ in range(6)]
    item = OutboxItem(
        "refund",
        "refund:1003:L1",
        {"order_number": "1003", "line_id": "L1", "amount_cents": 8900},
        order_ref="1003",
    )

    decisions = _together(
        6, lambda i: stores[i].record_decision("CA1", "refund.created", "1003", {}, [item])
    )

    assert not [d for d in decisions if isinstance(d, Exception)]
    assert len({d.entries[0].id for d in decisions}) == 1
    assert len(store.outbox_items()) == 1
    assert [e["type"] for e in store.call("CA1")["events"]] == ["refund.created"]
    for other in stores:
        other.engine.dispose()


async def test_a_claim_skips_rows_another_worker_is_claiming_instead_of_waiting(store: Store):
    for n in range(4):
        store.outbox.enqueue(OutboxItem("sms", f"sms:{n}", {"to": MARIA, "body": "hi"}))
    with store.engine.connect() as other:
        # Another worker's claim, caught mid-transaction holding the first row's lock.
        first = other.execute(
            sa.select(outbox.c.id).order_by(outbox.c.id).limit(1).with_for_update()
        ).scalar_one()
        claimer = Store(make_engine(store.engine.url.render_as_string(False)))
        async with asyncio.timeout(20):  # a claim that waited on the lock would never return
            claimed = await asyncio.to_thread(
                OutboxLeases(claimer.engine).claim, "w2", ["sms"], now=datetime.now(UTC), lease_s=30
            )
        other.rollback()
        claimer.engine.dispose()

    assert first not in [e.id for e in claimed]
    assert len(claimed) == 3 and all(e.locked_by == "w2" for e in claimed)


async def test_a_refund_decided_three_times_and_two_workers_at_once_refund_once(store: Store):
    """Through the demo shop's refund ledger: a Twilio retry, the caller again on another
    call, and two workers polling together."""
    from integrations.demo import seed, shop_refunds
    from integrations.outbox import OutboxRefunds
    from integrations.store import CallEvents
    from integrations.worker import Worker, demo_deliverers, demo_providers

    seed(store.engine)
    for sid in ("CA1", "CA2"):
        store.upsert_call(sid, from_number="+14155550102")
    ledger = demo_providers(store.engine).refunds
    decisions = [("CA1", "CA1:refund:1003-1"), ("CA1", "CA1:refund:1003-1"), ("CA2", "CA2:r")]
    for sid, key in decisions:
        refunds = OutboxRefunds(CallEvents(store, sid), ledger)
        told = await refunds.refund("1003", "1003-1", 8900, idempotency_key=key, reason="return")
        assert told.status == "pending"
    url = store.engine.url.render_as_string(False)
    workers = [
        Worker(Store(make_engine(url)).outbox, demo_deliverers(store.engine), worker_id=w)
        for w in ("w1", "w2")
    ]

    await asyncio.gather(*(w.drain() for w in workers))

    with store.engine.connect() as conn:
        rows = (
            conn.execute(sa.select(shop_refunds).where(shop_refunds.c.order_number == "1003"))
            .mappings()
            .all()
        )
    assert [(r["order_number"], r["line_id"], r["amount_cents"]) for r in rows] == [
        ("1003", "1003-1", 8900)
    ]
    (refund,) = await OutboxRefunds(CallEvents(store, "CA2"), ledger).refunds_of("1003")
    assert refund.status == "succeeded" and refund.id == rows[0]["id"]
    for worker in workers:
        worker.outbox.engine.dispose()
