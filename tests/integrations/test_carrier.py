"""Carrier tracking through EasyPost and AfterShip, normalized into our model."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest

from integrations.carrier import (
    AfterShipTracking,
    EasyPostTracking,
    aftership_status,
    carrier_code,
    carrier_name,
    easypost_status,
)
from integrations.models import ShipmentStatus
from integrations.protocols import ProviderError, Tracking
from tests.integrations.fakes_http import (
    FakeAfterShip,
    FakeEasyPost,
    aftership_tracking,
    easypost_tracker,
)

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
UPS = "1Z999AA10123456784"
FEDEX = "449044304137821"


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def easypost() -> FakeEasyPost:
    fake = FakeEasyPost()
    fake.trackers[("UPS", UPS)] = easypost_tracker(
        UPS,
        "UPS",
        "in_transit",
        status_detail="arrived_at_facility",
        est_delivery_date="2025-03-05T00:00:00Z",
        details=[
            ("2025-03-02T10:00:00Z", "pre_transit", "label_created", "Shipping label created"),
            ("2025-03-03T21:14:00Z", "in_transit", "arrived_at_facility", "Arrived at Facility"),
            ("2025-03-03T04:30:00Z", "in_transit", "departed_facility", "Departed from Facility"),
        ],
    )
    fake.trackers[("FedEx", FEDEX)] = easypost_tracker(
        FEDEX,
        "FedEx",
        "in_transit",
        status_detail="weather_delay",
        details=[("2025-03-03T08:00:00Z", "in_transit", "weather_delay", "Delay: weather")],
    )
    fake.trackers[("DHLExpress", "1234567890")] = easypost_tracker(
        "1234567890",
        "DHLExpress",
        "available_for_pickup",
        details=[("2025-03-03T16:00:00Z", "available_for_pickup", "", "Ready for pickup")],
    )
    fake.trackers[("USPS", "9400100000000000000000")] = easypost_tracker(
        "9400100000000000000000",
        "USPS",
        "delivered",
        est_delivery_date="2025-03-03T00:00:00Z",
        details=[("2025-03-03T14:05:00Z", "delivered", "arrived_at_destination", "Delivered")],
    )
    return fake


@pytest.fixture
async def ep(easypost: FakeEasyPost):
    client = EasyPostTracking(
        easypost.api_key,
        transport=httpx.MockTransport(easypost),
        sleep=_no_sleep,
        clock=lambda: NOW,
    )
    yield client
    await client.aclose()


async def test_easypost_in_transit_with_eta_and_last_scan(ep: EasyPostTracking):
    assert isinstance(ep, Tracking)
    shipment = await ep.track("ups", "1z999aa1 0123456784")
    assert shipment.status == ShipmentStatus.IN_TRANSIT
    assert shipment.carrier == "UPS"
    assert shipment.tracking_number == UPS
    assert shipment.eta == date(2025, 3, 5)
    assert shipment.fetched_at == NOW
    assert shipment.last_scan.description == "Arrived at Facility"
    assert shipment.last_scan.location == "Oakland, CA, US"
    assert shipment.detail == "Arrived at Facility"
    assert [e.status for e in shipment.events] == [
        ShipmentStatus.PRE_TRANSIT,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.IN_TRANSIT,
    ]
    assert shipment.tracking_url.startswith("https://track.easypost.com/")


async def test_easypost_carrier_codes_are_mapped(ep: EasyPostTracking, easypost: FakeEasyPost):
    await ep.track("DHL", "1234567890")
    sent = json.loads(easypost.requests[-1].content)["tracker"]
    assert sent == {"tracking_code": "1234567890", "carrier": "DHLExpress"}
    await ep.track("", UPS)
    sent = json.loads(easypost.requests[-1].content)["tracker"]
    assert "carrier" not in sent  # EasyPost detects it


async def test_easypost_statuses_a_caller_cares_about(ep: EasyPostTracking):
    delayed = await ep.track("FedEx", FEDEX)
    assert delayed.status == ShipmentStatus.DELAYED
    pickup = await ep.track("DHL", "1234567890")
    assert pickup.status == ShipmentStatus.FAILED_ATTEMPT
    assert pickup.carrier == "DHL"
    delivered = await ep.track("USPS", "9400100000000000000000")
    assert delivered.status == ShipmentStatus.DELIVERED
    assert delivered.eta is None  # no promise once it is there


async def test_easypost_unknown_number_is_none(ep: EasyPostTracking):
    assert await ep.track("UPS", "1Z000000000000000") is None
    assert await ep.track("UPS", "  ") is None


async def test_easypost_bad_key_is_an_auth_error(easypost: FakeEasyPost):
    client = EasyPostTracking("wrong", transport=httpx.MockTransport(easypost))
    with pytest.raises(ProviderError) as raised:
        await client.track("UPS", UPS)
    assert raised.value.code == "auth"
    assert not raised.value.retryable
    await client.aclose()


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        ("pre_transit", "label_created", ShipmentStatus.PRE_TRANSIT),
        ("in_transit", "departed_facility", ShipmentStatus.IN_TRANSIT),
        ("out_for_delivery", "out_for_delivery", ShipmentStatus.OUT_FOR_DELIVERY),
        ("delivered", "", ShipmentStatus.DELIVERED),
        ("return_to_sender", "", ShipmentStatus.RETURN_TO_SENDER),
        ("failure", "delivery_exception", ShipmentStatus.FAILED_ATTEMPT),
        ("failure", "lost", ShipmentStatus.EXCEPTION),
        ("in_transit", "held", ShipmentStatus.DELAYED),
        ("cancelled", "", ShipmentStatus.EXCEPTION),
        ("unknown", "", ShipmentStatus.UNKNOWN),
        ("something_new", "", ShipmentStatus.UNKNOWN),
    ],
)
def test_easypost_status_table(status, detail, expected):
    assert easypost_status(status, detail) == expected


@pytest.mark.parametrize(
    ("tag", "message", "expected"),
    [
        ("Pending", "", ShipmentStatus.PRE_TRANSIT),
        ("InfoReceived", "", ShipmentStatus.PRE_TRANSIT),
        ("InTransit", "Departure scan", ShipmentStatus.IN_TRANSIT),
        ("InTransit", "Held at customs", ShipmentStatus.DELAYED),
        ("OutForDelivery", "", ShipmentStatus.OUT_FOR_DELIVERY),
        ("AttemptFail", "", ShipmentStatus.FAILED_ATTEMPT),
        ("Delivered", "", ShipmentStatus.DELIVERED),
        ("AvailableForPickup", "", ShipmentStatus.FAILED_ATTEMPT),
        ("Exception", "Returned to sender", ShipmentStatus.RETURN_TO_SENDER),
        ("Exception", "Damaged", ShipmentStatus.EXCEPTION),
        ("Expired", "", ShipmentStatus.UNKNOWN),
    ],
)
def test_aftership_tag_table(tag, message, expected):
    assert aftership_status(tag, message) == expected


def test_carrier_codes_both_ways():
    assert carrier_code("Fed Ex", "aftership") == "fedex"
    assert carrier_code("canada post", "easypost") == "CanadaPost"
    assert carrier_code("canada post", "aftership") == "canada-post"
    assert carrier_code("Some Local Courier", "easypost") == "Some Local Courier"
    assert carrier_code("", "easypost") is None
    assert carrier_name("DHLExpress") == "DHL"
    assert carrier_name("usps") == "USPS"
    assert carrier_name("yodel") == "yodel"


@pytest.fixture
def aftership() -> FakeAfterShip:
    fake = FakeAfterShip()
    fake.trackings.append(
        aftership_tracking(
            FEDEX,
            "fedex",
            "OutForDelivery",
            eta="2025-03-04",
            checkpoints=[
                (
                    "2025-03-03T18:00:00-08:00",
                    "InTransit",
                    "Arrived at FedEx location",
                    "OAKLAND, CA",
                ),
                (
                    "2025-03-04T07:10:00-08:00",
                    "OutForDelivery",
                    "On FedEx vehicle for delivery",
                    "SAN FRANCISCO, CA",
                ),
            ],
        )
    )
    return fake


@pytest.fixture
async def aft(aftership: FakeAfterShip):
    client = AfterShipTracking(
        aftership.api_key,
        transport=httpx.MockTransport(aftership),
        sleep=_no_sleep,
        clock=lambda: NOW,
    )
    yield client
    await client.aclose()


async def test_aftership_out_for_delivery(aft: AfterShipTracking):
    shipment = await aft.track("FedEx", FEDEX)
    assert shipment.status == ShipmentStatus.OUT_FOR_DELIVERY
    assert shipment.carrier == "FedEx"
    assert shipment.eta == date(2025, 3, 4)
    assert shipment.last_scan.description == "On FedEx vehicle for delivery"
    assert shipment.last_scan.location == "SAN FRANCISCO, CA"
    assert shipment.last_scan.at == datetime(2025, 3, 4, 15, 10, tzinfo=UTC)


async def test_aftership_registers_a_new_number(aft: AfterShipTracking, aftership: FakeAfterShip):
    shipment = await aft.track("USPS", "9400111899223456789012")
    assert shipment.status == ShipmentStatus.PRE_TRANSIT
    assert shipment.detail == "No information yet"
    assert aftership.created[0]["slug"] == "usps"


async def test_aftership_bad_key(aftership: FakeAfterShip):
    client = AfterShipTracking("wrong", transport=httpx.MockTransport(aftership))
    with pytest.raises(ProviderError) as raised:
        await client.track("FedEx", FEDEX)
    assert raised.value.code == "auth"
    await client.aclose()
