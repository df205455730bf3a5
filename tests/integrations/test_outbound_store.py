"""The outbound tables: attempts decided once, claimed once; do-not-call; alerts once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from integrations.outbound import OutboundStore
from integrations.outbound import metadata as outbound_metadata
from integrations.store import Store, make_engine

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url) -> Iterator[OutboundStore]:
    """On SQLite and on a real PostgreSQL (see conftest.py)."""
    engine = make_engine(db_url)
    Store(engine).migrate(also=[outbound_metadata])
    yield OutboundStore(engine, clock=lambda: NOW)
    engine.dispose()


def test_an_attempt_is_decided_once_and_claimed_once(store: OutboundStore):
    first = store.schedule(
        "1009", "delivery_confirmation", 1, NOW, customer_id="C5", to_number="+1"
    )
    again = store.schedule(
        "1009", "delivery_confirmation", 1, NOW, customer_id="C5", to_number="+1"
    )
    assert first is not None and again is None
    assert [a.id for a in store.due(NOW)] == [first.id]
    assert store.due(NOW - timedelta(minutes=1)) == []
    assert store.claim(first.id) is True
    assert store.claim(first.id) is False
    assert store.due(NOW) == []


def test_customers_are_counted_per_order_not_per_retry(store: OutboundStore):
    for attempt in (1, 2):
        a = store.schedule(
            "1005", "delivery_confirmation", attempt, NOW, customer_id="C3", to_number="+1"
        )
        store.update(a.id, status="no_answer", call_sid=f"CA{attempt}")
    since = NOW - timedelta(days=7)
    assert store.placed_to_customer_since("C3", since) == 1
    assert store.placed_to_customer_since("C3", since, other_than="1005") == 0
    skipped = store.schedule(
        "1006", "delivery_confirmation", 1, NOW, customer_id="C3", to_number="+1"
    )
    store.update(skipped.id, status="skipped")
    assert store.placed_to_customer_since("C3", since) == 1


def test_do_not_call_list(store: OutboundStore):
    assert store.dnc_add("+14155550105", "asked on a call")
    assert not store.dnc_add("+14155550105")
    assert store.dnc_contains("+14155550105")
    assert [e["phone"] for e in store.dnc_list()] == ["+14155550105"]
    assert store.dnc_remove("+14155550105") and not store.dnc_contains("+14155550105")
    assert not store.dnc_remove("+14155550105")


def test_an_alert_is_remembered_once_per_key(store: OutboundStore):
    assert store.alert_once("1006:failed_attempt:2025-03-02T14:35", "1006", "failed_attempt", "sms")
    assert not store.alert_once(
        "1006:failed_attempt:2025-03-02T14:35", "1006", "failed_attempt", "sms"
    )
    assert store.alert_once("1006:failed_attempt:2025-03-03T14:35", "1006", "failed_attempt", "sms")
    assert len(store.alerts_for("1006")) == 2
