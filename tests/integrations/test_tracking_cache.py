"""When the carrier is slow or down, the caller still hears the last known status, and how old."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from integrations.carrier import EasyPostTracking
from integrations.models import Shipment, ShipmentStatus, TrackingEvent
from integrations.protocols import ProviderError, Tracking
from integrations.tracking_cache import (
    CachedTracking,
    MemoryTrackingCache,
    SqlTrackingCache,
    age_of,
    shipment_from_json,
    shipment_to_json,
)
from tests.integrations.fakes_http import FakeEasyPost, easypost_tracker, hanging

TWO_HOURS_AGO = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
NOW = TWO_HOURS_AGO + timedelta(hours=2)
NUMBER = "1Z999AA10123456784"


def shipment(status: ShipmentStatus, fetched_at: datetime, detail: str = "") -> Shipment:
    return Shipment(
        carrier="UPS",
        tracking_number=NUMBER,
        status=status,
        detail=detail or status.value,
        fetched_at=fetched_at,
        eta=date(2025, 3, 5),
        events=(
            TrackingEvent(
                TWO_HOURS_AGO - timedelta(hours=5), status, "Arrived at Facility", "Oakland, CA"
            ),
        ),
        tracking_url="https://www.ups.com/track?tracknum=" + NUMBER,
    )


class FakeCarrier:
    """A `Tracking` whose answers the test releases (or never does)."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: Shipment | None = None
        self.error: Exception | None = None
        self.release = asyncio.Event()

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        self.calls += 1
        await self.release.wait()
        if self.error:
            raise self.error
        return self.answer


@pytest.fixture
def carrier() -> FakeCarrier:
    return FakeCarrier()


@pytest.fixture
async def known() -> MemoryTrackingCache:
    cache = MemoryTrackingCache()
    await cache.put("UPS", NUMBER, shipment(ShipmentStatus.IN_TRANSIT, TWO_HOURS_AGO))
    return cache


async def test_a_prompt_carrier_gives_fresh_tracking_and_it_is_remembered(carrier, known):
    carrier.answer = shipment(ShipmentStatus.OUT_FOR_DELIVERY, NOW)
    carrier.release.set()
    tracking = CachedTracking(carrier, known, deadline_s=5.0)
    assert isinstance(tracking, Tracking)
    fresh = await tracking.track("UPS", NUMBER)
    assert fresh.status == ShipmentStatus.OUT_FOR_DELIVERY
    assert (await known.get("ups", NUMBER)).fetched_at == NOW


async def test_a_carrier_that_never_answers_gets_the_last_known_status_with_its_age(carrier, known):
    tracking = CachedTracking(carrier, known, deadline_s=0.01)
    stale = await tracking.track("UPS", NUMBER)
    assert stale.status == ShipmentStatus.IN_TRANSIT
    assert stale.fetched_at == TWO_HOURS_AGO  # the dialog can say "as of two hours ago"
    assert age_of(stale, NOW) == timedelta(hours=2)
    await tracking.aclose()


async def test_the_late_answer_refreshes_the_cache_in_the_background(carrier, known):
    tracking = CachedTracking(carrier, known, deadline_s=0.01)
    await tracking.track("UPS", NUMBER)
    carrier.answer = shipment(ShipmentStatus.DELIVERED, NOW)
    carrier.release.set()
    for _ in range(100):
        if (await known.get("UPS", NUMBER)).status == ShipmentStatus.DELIVERED:
            break
        await asyncio.sleep(0)
    assert (await known.get("UPS", NUMBER)).status == ShipmentStatus.DELIVERED
    assert (await tracking.track("UPS", NUMBER)).status == ShipmentStatus.DELIVERED


async def test_a_carrier_that_is_down_gets_the_last_known_status(carrier, known):
    carrier.error = ProviderError("EasyPost is unreachable", code="unavailable", retryable=True)
    carrier.release.set()
    tracking = CachedTracking(carrier, known, deadline_s=5.0)
    stale = await tracking.track("UPS", NUMBER)
    assert stale.fetched_at == TWO_HOURS_AGO


async def test_one_refresh_at_a_time_however_many_ask(carrier, known):
    tracking = CachedTracking(carrier, known, deadline_s=0.01)
    await asyncio.gather(*(tracking.track("UPS", NUMBER) for _ in range(5)))
    assert carrier.calls == 1
    await tracking.aclose()


async def test_nothing_known_and_a_silent_carrier_is_a_retryable_timeout(carrier):
    tracking = CachedTracking(carrier, MemoryTrackingCache(), deadline_s=0.01, max_wait_s=0.02)
    with pytest.raises(ProviderError) as raised:
        await tracking.track("UPS", NUMBER)
    assert raised.value.code == "timeout"
    assert raised.value.retryable
    await tracking.aclose()


async def test_nothing_known_and_a_failing_carrier_says_why(carrier):
    carrier.error = ProviderError("EasyPost refused our API key", code="auth")
    carrier.release.set()
    tracking = CachedTracking(carrier, MemoryTrackingCache(), deadline_s=5.0)
    with pytest.raises(ProviderError) as raised:
        await tracking.track("UPS", NUMBER)
    assert raised.value.code == "auth"


async def test_a_real_client_against_a_hanging_provider(known):
    easypost = EasyPostTracking("EZTK_test", transport=httpx.MockTransport(hanging))
    tracking = CachedTracking(easypost, known, deadline_s=0.01)
    stale = await tracking.track("UPS", NUMBER)
    assert stale.status == ShipmentStatus.IN_TRANSIT
    await tracking.aclose()


async def test_a_real_client_fills_the_sql_cache():
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    cache = SqlTrackingCache(engine)
    cache.create_all()
    fake = FakeEasyPost()
    fake.trackers[("UPS", NUMBER)] = easypost_tracker(
        NUMBER,
        "UPS",
        "in_transit",
        details=[("2025-03-03T21:14:00Z", "in_transit", "", "Arrived at Facility")],
    )
    easypost = EasyPostTracking(
        fake.api_key, transport=httpx.MockTransport(fake), clock=lambda: TWO_HOURS_AGO
    )
    tracking = CachedTracking(easypost, cache, deadline_s=5.0)
    assert (await tracking.track("UPS", NUMBER)).status == ShipmentStatus.IN_TRANSIT
    remembered = await cache.get("ups", NUMBER)
    assert remembered.fetched_at == TWO_HOURS_AGO
    assert remembered.last_scan.description == "Arrived at Facility"
    await tracking.aclose()


async def test_the_sql_cache_never_replaces_newer_facts_with_older():
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    cache = SqlTrackingCache(engine)
    cache.create_all()
    await cache.put("UPS", NUMBER, shipment(ShipmentStatus.DELIVERED, NOW))
    await cache.put("UPS", NUMBER, shipment(ShipmentStatus.IN_TRANSIT, TWO_HOURS_AGO))
    assert (await cache.get("UPS", NUMBER)).status == ShipmentStatus.DELIVERED
    assert await cache.get("FedEx", NUMBER) is None


def test_shipments_survive_the_round_trip_through_json():
    original = shipment(ShipmentStatus.DELAYED, NOW, detail="Held at customs")
    assert shipment_from_json(shipment_to_json(original)) == original
