"""The outbox delivers every decided side effect once: through outages, refusals and crashes."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from integrations.delivery import OutboxLeases, deliverers_for
from integrations.models import Label, Refund, Ticket
from integrations.outbox import (
    OutboxHelpdesk,
    OutboxItem,
    OutboxMessenger,
    OutboxRefunds,
    OutboxReturns,
)
from integrations.protocols import ProviderError
from integrations.store import CallEvents, Store, make_engine
from integrations.worker import RetryPolicy, Worker, start_in_process

MARIA = "+14155550101"
T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).parents[2]


# --- fakes at the protocol boundary -----------------------------------------------------------


@dataclass
class Clock:
    """The worker's clock, moved by hand; it starts a little after the real time at which the
    adapters queue rows, so what a test queues is due."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(seconds=5))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeHelpdesk:
    """A helpdesk that can be down; acts once per idempotency key, like the real ones."""

    down: bool = False
    calls: list[str] = field(default_factory=list)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)

    async def create_ticket(
        self, subject, body, *, requester_phone, requester_email, tags, priority, idempotency_key
    ) -> Ticket:
        self.calls.append(idempotency_key)
        if self.down:
            raise ProviderError("helpdesk returned 503", code="unavailable", retryable=True)
        if idempotency_key not in self.tickets:
            n = len(self.tickets) + 1
            self.tickets[idempotency_key] = Ticket(f"T{n}", subject, "open", f"https://help/T{n}")
            self.bodies[self.tickets[idempotency_key].id] = body
        return self.tickets[idempotency_key]


@dataclass
class FakeRefunds:
    """A payment provider: one refund per key; a second key for a refunded line is refused."""

    refused: str | None = None  # a code to refuse every refund with
    calls: list[str] = field(default_factory=list)
    refunds: dict[str, Refund] = field(default_factory=dict)

    async def refund(self, order_number, line_id, amount_cents, *, idempotency_key, reason):
        self.calls.append(idempotency_key)
        await asyncio.sleep(0.005)  # a network round trip, so concurrent workers interleave
        if self.refused:
            raise ProviderError("refused", code=self.refused, retryable=False)
        if idempotency_key in self.refunds:
            return self.refunds[idempotency_key]
        if any(
            r.order_number == order_number and r.line_id == line_id for r in self.refunds.values()
        ):
            raise ProviderError("already refunded", code="charge_already_refunded")
        refund = Refund(
            f"re_{len(self.refunds) + 1}", order_number, line_id, amount_cents, "succeeded", T0
        )
        self.refunds[idempotency_key] = refund
        return refund

    async def refunds_of(self, order_number: str) -> list[Refund]:
        return [r for r in self.refunds.values() if r.order_number == order_number]


@dataclass
class FakeMessenger:
    sent: dict[str, tuple[str, str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        self.calls.append(idempotency_key)
        self.sent.setdefault(idempotency_key, (to, body))
        return f"SM{list(self.sent).index(idempotency_key)}"


@dataclass
class FakeReturns:
    labels: dict[str, Label] = field(default_factory=dict)

    async def label(self, rma: str, *, idempotency_key: str) -> Label:
        return self.labels.setdefault(
            idempotency_key, Label(f"https://labels/{rma}.pdf", "UPS", f"1Z{rma}")
        )


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    store = Store(make_engine(f"sqlite:///{tmp_path}/calls.db"))
    store.migrate()
    store.upsert_call("CA1", from_number=MARIA)
    yield store
    store.engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _worker(store: Store, clock: Clock, policy: RetryPolicy | None = None, **deliverers) -> Worker:
    return Worker(
        store.outbox,
        deliverers_for(**deliverers),
        worker_id="w1",
        clock=clock,
        policy=policy or RetryPolicy(max_attempts=8, base_s=2, cap_s=60),
        rng=random.Random(7),
        lease_s=30,
        timeout_s=5,
    )


def _url(db: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if db == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_url")


def _row(store: Store, key: str) -> dict:
    return next(r for r in store.outbox_items() if r["idempotency_key"] == key)


# --- retries, outages, refusals ---------------------------------------------------------------


async def test_a_helpdesk_outage_delays_tickets_but_loses_none(store: Store, clock: Clock):
    helpdesk = FakeHelpdesk(down=True)
    worker = _worker(store, clock, helpdesk=helpdesk)
    queued = OutboxHelpdesk(CallEvents(store, "CA1"))
    tickets = [
        await queued.create_ticket(
            f"Lost parcel {n}",
            "Espresso machine, no scan for 9 days",
            requester_phone=MARIA,
            requester_email=None,
            tags=["lost"],
            priority="high",
            idempotency_key=f"CA1:lost:{n}",
        )
        for n in range(3)
    ]
    # The caller is told at once, with a reference they can quote.
    assert [t.status for t in tickets] == ["queued"] * 3
    assert len({t.id for t in tickets}) == 3 and all(t.id.startswith("PV-") for t in tickets)

    for _ in range(4):  # the helpdesk stays down for four rounds of attempts
        assert await worker.run_once() == 3
        assert await worker.run_once() == 0  # nobody hammers it: each waits out its backoff
        clock.advance(60)
    pending = store.outbox_items("pending")
    assert len(pending) == 3
    assert all(r["attempts"] == 4 and r["error_code"] == "unavailable" for r in pending)
    assert "503" in pending[0]["last_error"]  # what operators see

    helpdesk.down = False
    assert await worker.run_once() == 3

    assert store.outbox_items("pending") == [] and len(store.outbox_items("delivered")) == 3
    assert sorted(t.subject for t in helpdesk.tickets.values()) == [
        f"Lost parcel {n}" for n in range(3)
    ]
    assert all(r["attempts"] == 5 for r in store.outbox_items("delivered"))
    assert all(r["result"]["url"].startswith("https://help/") for r in store.outbox_items())
    bodies = " ".join(helpdesk.bodies.values())
    assert all(t.id in bodies for t in tickets)  # support can find what the caller was given


def test_backoff_grows_with_each_failure_is_jittered_and_never_passes_its_cap():
    policy = RetryPolicy(max_attempts=10, base_s=2, cap_s=60)
    rng = random.Random(1)
    for attempt in range(1, 11):
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.9 and min(delays) < ceiling * 0.1  # full jitter


async def test_a_refused_refund_goes_to_dead_with_its_reason_until_an_operator_retries(
    store: Store, clock: Clock
):
    provider = FakeRefunds(refused="amount_too_large")
    worker = _worker(store, clock, refunds=provider)
    refunds = OutboxRefunds(CallEvents(store, "CA1"), provider)
    pending = await refunds.refund("1003", "L1", 8900, idempotency_key="CA1:refund", reason="x")
    assert pending.status == "pending"

    await worker.run_once()

    (dead,) = store.outbox_items("dead")
    assert (dead["attempts"], dead["error_code"]) == (1, "amount_too_large")  # never retried
    (told,) = await refunds.refunds_of("1003")
    assert (told.status, told.failure_reason) == ("failed", "amount_too_large")

    provider.refused = None  # the operator fixed the cause
    assert store.outbox.retry_dead(dead["id"])
    await worker.run_once()

    assert _row(store, "refund:1003:L1")["status"] == "delivered"
    assert [(r.line_id, r.status) for r in await refunds.refunds_of("1003")] == [
        ("L1", "succeeded")
    ]


async def test_retries_that_run_out_end_in_dead(store: Store, clock: Clock):
    worker = _worker(
        store, clock, RetryPolicy(max_attempts=3, base_s=1, cap_s=5), helpdesk=FakeHelpdesk(True)
    )
    await OutboxHelpdesk(CallEvents(store, "CA1")).create_ticket(
        "s",
        "b",
        requester_phone=None,
        requester_email=None,
        tags=[],
        priority="normal",
        idempotency_key="k",
    )

    for _ in range(5):
        await worker.run_once()
        clock.advance(5)

    (dead,) = store.outbox_items("dead")
    assert dead["attempts"] == 3 and dead["error_code"] == "unavailable"


async def test_a_delivery_that_hangs_times_out_and_is_tried_again(store: Store, clock: Clock):
    calls = []

    async def flaky(payload, key):
        calls.append(key)
        if len(calls) == 1:
            await asyncio.sleep(3600)
        return {"message_id": "SM1"}

    worker = Worker(
        store.outbox, {"sms": flaky}, worker_id="w1", clock=clock, lease_s=1, timeout_s=0.05
    )
    store.outbox.enqueue(OutboxItem("sms", "sms:k", {"to": MARIA, "body": "hi"}), now=clock.now)

    await worker.run_once()
    assert _row(store, "sms:k")["error_code"] == "timeout"
    clock.advance(300)
    await worker.run_once()

    assert _row(store, "sms:k")["status"] == "delivered" and calls == ["sms:k", "sms:k"]


async def test_a_row_whose_worker_vanished_is_taken_over_once_its_lease_runs_out(
    store: Store, clock: Clock
):
    messenger = FakeMessenger()
    store.outbox.enqueue(OutboxItem("sms", "sms:k", {"to": MARIA, "body": "hi"}), now=clock.now)
    leases = OutboxLeases(store.engine)
    assert leases.claim("ghost", ["sms"], now=clock.now, lease_s=30)  # then it died
    worker = _worker(store, clock, messenger=messenger)

    assert await worker.run_once() == 0  # its lease still holds
    clock.advance(31)
    assert await worker.run_once() == 1

    row = _row(store, "sms:k")
    assert (row["status"], row["attempts"], row["locked_by"]) == ("delivered", 2, None)
    assert messenger.calls == ["sms:k"]


async def test_a_worker_claims_only_the_kinds_it_can_deliver(store: Store, clock: Clock):
    store.outbox.enqueue(OutboxItem("refund", "refund:1:L1", {"order_number": "1"}))
    worker = _worker(store, clock, messenger=FakeMessenger())

    assert await worker.run_once() == 0
    assert _row(store, "refund:1:L1")["status"] == "pending"  # left for a worker that can


# --- a refund decided twice is made once ------------------------------------------------------


async def test_a_refund_decided_again_by_a_retry_or_a_repeating_caller_refunds_once(
    store: Store, clock: Clock
):
    provider = FakeRefunds()
    store.upsert_call("CA2", from_number=MARIA)
    first_call = OutboxRefunds(CallEvents(store, "CA1"), provider)
    twilio_retry = OutboxRefunds(CallEvents(store, "CA1"), provider)
    second_call = OutboxRefunds(CallEvents(store, "CA2"), provider)

    a = await first_call.refund("1003", "L1", 8900, idempotency_key="CA1:refund:1003", reason="r")
    b = await twilio_retry.refund("1003", "L1", 8900, idempotency_key="CA1:refund:1003", reason="r")
    c = await second_call.refund("1003", "L1", 8900, idempotency_key="CA2:refund:1003", reason="r")
    await _worker(store, clock, refunds=provider).run_once()
    d = await second_call.refund("1003", "L1", 8900, idempotency_key="CA2:refund:x", reason="r")

    assert a.id == b.id == c.id and a.status == "pending"
    assert (d.id, d.status) == ("re_1", "succeeded")  # once delivered, the provider's refund
    assert len(provider.refunds) == 1 and provider.calls == ["refund:1003:L1"]
    assert [e["type"] for e in store.call("CA1")["events"]] == ["refund.created"]
    assert [e["type"] for e in store.call("CA2")["events"]] == []


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
async def test_two_workers_at_once_deliver_each_item_once(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
):
    url = _url(db, tmp_path, request)
    store = Store(make_engine(url))
    store.migrate()
    provider = FakeRefunds()  # counts every call: a double delivery would show
    for n in range(40):
        for _ in range(2):  # every decision arrives twice
            store.outbox.enqueue(
                OutboxItem(
                    "refund",
                    f"refund:{n}:L1",
                    {"order_number": str(n), "line_id": "L1", "amount_cents": 100},
                )
            )
    workers = [
        Worker(
            Store(make_engine(url)).outbox, deliverers_for(refunds=provider), worker_id=w, batch=3
        )
        for w in ("w1", "w2")
    ]

    await asyncio.gather(*(w.drain() for w in workers))

    assert Counter(provider.calls) == {f"refund:{n}:L1": 1 for n in range(40)}
    rows = store.outbox_items(limit=None)
    assert len(rows) == 40 and all(r["status"] == "delivered" for r in rows)
    assert all(r["attempts"] == 1 for r in rows)  # never claimed twice
    for worker in workers:
        worker.outbox.engine.dispose()
    store.engine.dispose()


# --- what the dialog gets back ----------------------------------------------------------------


async def test_a_return_label_is_bought_then_texted_and_the_dialog_learns_its_url(
    store: Store, clock: Clock
):
    messenger, returns = FakeMessenger(), FakeReturns()
    queued = OutboxReturns(
        CallEvents(store, "CA1"), returns, notify_phone=MARIA, shop_name="Northwind Goods"
    )

    first = await queued.label("RMA-1", idempotency_key="CA1:label:RMA-1")
    await _worker(store, clock, messenger=messenger, returns=returns).run_once()
    again = await queued.label("RMA-1", idempotency_key="CA1:label:RMA-1")

    assert first.url == ""  # on its way
    assert again.url == "https://labels/RMA-1.pdf"
    ((to, body),) = messenger.sent.values()
    assert to == MARIA and "https://labels/RMA-1.pdf" in body and "Northwind Goods" in body
    assert [e["type"] for e in store.call("CA1")["events"]] == ["return.label_created"]


async def test_the_in_process_worker_sends_a_queued_text_without_waiting_to_poll(store: Store):
    messenger = FakeMessenger()
    handle = start_in_process(store.outbox, deliverers_for(messenger=messenger), poll_s=3600)
    await asyncio.sleep(0.05)  # its first look found nothing; next poll in an hour
    texts = OutboxMessenger(CallEvents(store, "CA1"), wake=handle.wake)

    await texts.send_sms(MARIA, "Your tracking link", idempotency_key="CA1:tracking:1001")
    async with asyncio.timeout(10):
        while not messenger.sent:
            await asyncio.sleep(0.01)
    await handle.stop()

    assert messenger.sent == {"sms:CA1:tracking:1001": (MARIA, "Your tracking link")}
    assert handle.task.done()


# --- a crash between commit and send ----------------------------------------------------------

# A process of its own: queues texts and dies, or delivers them and dies at a chosen moment.
# The "provider" is a SQLite file that logs every call and acts once per key, as Twilio and
# Stripe do with an idempotency key: what reaches the customer is its `effects` table.
_PROVIDER = """\
url, provider, mode = sys.argv[1:4]
store = Store(make_engine(url))

def provider_call(key, to):
    with sqlite3.connect(provider, timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT UNIQUE, to_number TEXT)")
        db.execute("INSERT INTO calls VALUES (?)", (key,))
        db.execute("INSERT OR IGNORE INTO effects VALUES (?, ?)", (key, to))
"""
"""The provider both processes call: a SQLite file that logs every call and acts once per key."""

_PROCESS = textwrap.dedent(
    """
    import asyncio, os, sqlite3, sys
    from integrations.outbox import OutboxMessenger
    from integrations.store import CallEvents, Store, make_engine
    from integrations.worker import Worker

    {provider}
    async def deliver(payload, key):
        if mode == "die-after-claim":
            os._exit(9)
        provider_call(key, payload["to"])
        if mode == "die-after-send":
            os._exit(9)
        return {"message_id": "SM-" + key}

    async def main():
        if mode == "decide-then-die":
            texts = OutboxMessenger(CallEvents(store, "CA1"))
            for n in range(3):
                await texts.send_sms("+14155550101", f"text {n}", idempotency_key=f"CA1:{n}")
            os._exit(9)  # committed, and nothing sent yet
        lease = 0.5 if mode.startswith("die") else 60
        worker = Worker(store.outbox, {"sms": deliver}, worker_id=mode, batch=1,
                        lease_s=lease, timeout_s=0.4)
        await worker.drain(timeout_s=60)

    asyncio.run(main())
    """
).replace("{provider}\n", _PROVIDER)


def _process(tmp_path: Path, url: str, mode: str, source: str = _PROCESS) -> int:
    script = tmp_path / "outbox_process.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script), url, str(tmp_path / "provider.db"), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 9), done.stderr
    return done.returncode


def _provider(tmp_path: Path) -> tuple[Counter, Counter]:
    import sqlite3

    with sqlite3.connect(tmp_path / "provider.db") as db:
        calls = Counter(k for (k,) in db.execute("SELECT key FROM calls"))
        effects = Counter(k for (k,) in db.execute("SELECT key FROM effects"))
    return calls, effects


@pytest.mark.parametrize(
    ("db", "mode"),
    [
        ("sqlite", "decide-then-die"),
        ("sqlite", "die-after-claim"),
        ("sqlite", "die-after-send"),
        ("postgresql", "die-after-send"),
    ],
)
def test_a_process_killed_between_commit_and_send_delivers_each_text_once_after_restart(
    db: str, mode: str, tmp_path: Path, request: pytest.FixtureRequest
):
    db_url = _url(db, tmp_path, request)
    store = Store(make_engine(db_url))
    store.migrate()
    store.upsert_call("CA1", from_number=MARIA)
    if mode != "decide-then-die":
        texts = OutboxMessenger(CallEvents(store, "CA1"))
        for n in range(3):
            asyncio.run(texts.send_sms(MARIA, f"text {n}", idempotency_key=f"CA1:{n}"))

    assert _process(tmp_path, db_url, mode) == 9  # killed mid-way
    assert _process(tmp_path, db_url, "restart") == 0

    keys = [f"sms:CA1:{n}" for n in range(3)]
    calls, effects = _provider(tmp_path)
    assert effects == dict.fromkeys(keys, 1)  # each text reached the customer once
    rows = {r["idempotency_key"]: r for r in store.outbox_items()}
    assert all(rows[k]["status"] == "delivered" for k in keys)
    if mode == "die-after-send":
        # The provider was asked twice for the first text; its key made the second a no-op.
        assert calls == {keys[0]: 2, keys[1]: 1, keys[2]: 1}
        assert rows[keys[0]]["attempts"] == 2
    else:
        assert calls == dict.fromkeys(keys, 1)
    store.engine.dispose()


# The worker delivering a queued label through the real label deliverer, over a label provider
# and a messenger that, like _PROCESS's provider, log every call and act once per key; it dies
# after buying the label, before texting it or after, and in either case before the row is
# marked delivered.
_LABEL_PROCESS = textwrap.dedent(
    """
    import asyncio, os, sqlite3, sys
    from integrations.delivery import deliverers_for
    from integrations.models import Label
    from integrations.store import Store, make_engine
    from integrations.worker import Worker

    {provider}
    class Labels:
        async def label(self, rma, *, idempotency_key):
            provider_call(idempotency_key, None)
            if mode == "die-after-label":
                os._exit(9)
            return Label(f"https://labels/{rma}.pdf", "UPS", f"1Z{rma}")

    class Texts:
        async def send_sms(self, to, body, *, idempotency_key):
            provider_call(idempotency_key, to)
            if mode == "die-after-text":
                os._exit(9)
            return "SM-" + idempotency_key

    async def main():
        lease = 0.5 if mode.startswith("die") else 60
        deliverers = deliverers_for(returns=Labels(), messenger=Texts())
        worker = Worker(store.outbox, deliverers, worker_id=mode, lease_s=lease, timeout_s=0.4)
        await worker.drain(timeout_s=60)

    asyncio.run(main())
    """
).replace("{provider}\n", _PROVIDER)


@pytest.mark.parametrize(
    ("db", "mode"),
    [
        ("sqlite", "die-after-label"),
        ("sqlite", "die-after-text"),
        ("postgresql", "die-after-text"),
    ],
)
def test_a_worker_killed_after_buying_a_label_buys_and_texts_it_once_after_restart(
    db: str, mode: str, tmp_path: Path, request: pytest.FixtureRequest
):
    db_url = _url(db, tmp_path, request)
    store = Store(make_engine(db_url))
    store.migrate()
    store.upsert_call("CA1", from_number=MARIA)
    queued = OutboxReturns(
        CallEvents(store, "CA1"), FakeReturns(), notify_phone=MARIA, shop_name="Northwind Goods"
    )
    asyncio.run(queued.label("RMA-1", idempotency_key="CA1:label:RMA-1"))

    assert _process(tmp_path, db_url, mode, _LABEL_PROCESS) == 9  # killed mid-way
    assert _process(tmp_path, db_url, "restart", _LABEL_PROCESS) == 0

    label, text = "label:CA1:label:RMA-1", "label:CA1:label:RMA-1:sms"
    calls, effects = _provider(tmp_path)
    assert effects == {label: 1, text: 1}  # one label bought, one text to the customer
    # Both were asked again after the restart (the text only if it had been sent); their keys
    # made the second asking a no-op.
    assert calls == {label: 2, text: 2 if mode == "die-after-text" else 1}
    row = _row(store, label)
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    assert row["result"]["url"] == "https://labels/RMA-1.pdf"
    assert row["result"]["message_id"] == f"SM-{text}"
    store.engine.dispose()


def test_the_worker_command_delivers_through_the_demo_shop_and_exits_when_drained(tmp_path):
    from sqlalchemy import select

    from integrations.demo import seed, shop_sms, shop_tickets

    url = f"sqlite:///{tmp_path}/calls.db"
    store = Store(make_engine(url))
    store.migrate()
    seed(store.engine)
    store.outbox.enqueue(OutboxItem("sms", "sms:CA1:1001", {"to": MARIA, "body": "On its way"}))
    store.outbox.enqueue(
        OutboxItem(
            "ticket",
            "ticket:CA1:lost",
            {
                "subject": "Lost espresso machine",
                "body": "No scan for 9 days",
                "tags": ["lost"],
                "priority": "high",
                "requester_phone": MARIA,
                "requester_email": None,
            },
        )
    )

    done = subprocess.run(
        [sys.executable, "-m", "integrations.worker", "--database-url", url, "--drain"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in store.outbox_items()] == ["delivered", "delivered"]
    with store.engine.connect() as conn:
        assert conn.execute(select(shop_sms.c.body)).scalars().all() == ["On its way"]
        assert conn.execute(select(shop_tickets.c.subject)).scalars().all() == [
            "Lost espresso machine"
        ]
    store.engine.dispose()
