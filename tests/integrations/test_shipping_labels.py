"""Return labels bought from EasyPost: the parcel goes back to the warehouse, bought once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from integrations.labels import LabelMaker
from integrations.models import Address, Customer, Order, OrderLine, ReturnAuthorization
from integrations.protocols import ProviderError
from integrations.shipping_labels import EasyPostLabels, ReturnAddress
from tests.integrations.fakes_http import FakeEasyPost

WAREHOUSE = ReturnAddress(
    name="Northwind Goods Returns",
    phone="+17755550100",
    address=Address("1200 Commerce Way", "Reno", "NV", "89502", line2="Dock 4"),
)
JAMES = Customer("7002", "James Chen", "+14155550102", "james.chen@example.com", "10001")
ORDER = Order(
    number="1003",
    customer_id="7002",
    placed_at=datetime(2025, 2, 20, tzinfo=UTC),
    lines=(OrderLine("EB-1", "Wireless earbuds", "electronics", 8900, line_id="L1"),),
    fulfillment="fulfilled",
    shipping_address=Address("55 Water St", "New York", "NY", "10001"),
)
RMA = ReturnAuthorization(
    rma="RMA-1003-A",
    order_number="1003",
    line_ids=("L1",),
    reason_code="changed_mind",
    resolution="refund",
    status="authorized",
    created_at=datetime(2025, 3, 3, tzinfo=UTC),
)


async def _no_sleep(_seconds: float) -> None:
    return None


def engine():
    return create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )


def labels(fake: FakeEasyPost, handler=None, db=None, **options) -> EasyPostLabels:
    maker = EasyPostLabels(
        fake.api_key,
        db or engine(),
        WAREHOUSE,
        transport=httpx.MockTransport(handler or fake),
        sleep=_no_sleep,
        **options,
    )
    maker.create_all()
    return maker


@pytest.fixture
def easypost() -> FakeEasyPost:
    return FakeEasyPost()


async def test_a_prepaid_return_label_is_bought_at_the_cheapest_rate(easypost: FakeEasyPost):
    maker = labels(easypost)
    assert isinstance(maker, LabelMaker)
    label = await maker.make(RMA, ORDER, JAMES)
    assert label.carrier == "USPS"
    assert label.tracking_number.startswith("9434600208303")
    assert label.url.endswith(".pdf")
    (shipment,) = easypost.shipments.values()
    assert shipment["is_return"] is True
    assert shipment["reference"] == "RMA-1003-A"
    assert shipment["to_address"]["zip"] == "10001"  # the customer; is_return sends it back
    assert shipment["from_address"]["city"] == "Reno"
    assert shipment["selected_rate"]["service"] == "GroundAdvantage"
    await maker.aclose()


async def test_a_chosen_carrier_and_service(easypost: FakeEasyPost):
    maker = labels(easypost, carrier="ups", service="ground")
    label = await maker.make(RMA, ORDER, JAMES)
    assert label.carrier == "UPS"
    await maker.aclose()
    impossible = labels(easypost, carrier="FedEx")
    with pytest.raises(ProviderError) as raised:
        await impossible.make(ReturnAuthorization(**{**RMA.__dict__, "rma": "RMA-2"}), ORDER, JAMES)
    assert raised.value.code == "no_rate"
    await impossible.aclose()


async def test_the_same_rma_is_bought_once(easypost: FakeEasyPost):
    maker = labels(easypost)
    first = await maker.make(RMA, ORDER, JAMES)
    again = await maker.make(RMA, ORDER, JAMES)
    assert again == first
    assert easypost.purchases == 1
    assert len(easypost.shipments) == 1
    await maker.aclose()


async def test_a_purchase_whose_answer_was_lost_is_not_bought_again(easypost: FakeEasyPost):
    class LostBuy:
        def __init__(self) -> None:
            self.lose = True

        def __call__(self, request: httpx.Request) -> httpx.Response:
            response = easypost(request)
            if request.url.path.endswith("/buy") and self.lose:
                self.lose = False
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    db = engine()
    maker = labels(easypost, LostBuy(), db)
    with pytest.raises(ProviderError) as raised:
        await maker.make(RMA, ORDER, JAMES)
    assert raised.value.retryable
    assert easypost.purchases == 1  # EasyPost did buy it
    label = await maker.make(RMA, ORDER, JAMES)
    assert easypost.purchases == 1  # read back, not bought twice
    assert label.tracking_number == next(iter(easypost.shipments.values()))["tracking_code"]
    await maker.aclose()


async def test_easypost_refusals_keep_easyposts_code(easypost: FakeEasyPost):
    def address_refused(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v2/shipments":
            return httpx.Response(
                422,
                json={
                    "error": {
                        "code": "ADDRESS.VERIFY.FAILURE",
                        "message": "Unable to verify address.",
                        "errors": [],
                    }
                },
            )
        return easypost(request)

    maker = labels(easypost, address_refused)
    with pytest.raises(ProviderError) as raised:
        await maker.make(RMA, ORDER, JAMES)
    assert raised.value.code == "address.verify.failure"
    assert not raised.value.retryable
    await maker.aclose()


async def test_an_order_without_an_address_has_no_label(easypost: FakeEasyPost):
    maker = labels(easypost)
    with pytest.raises(ProviderError) as raised:
        await maker.make(RMA, Order(**{**ORDER.__dict__, "shipping_address": None}), JAMES)
    assert raised.value.code == "no_address"
    assert easypost.requests == []
    await maker.aclose()


async def test_the_request_is_what_easypost_documents(easypost: FakeEasyPost):
    maker = labels(easypost)
    await maker.make(RMA, ORDER, JAMES)
    create = json.loads(easypost.requests[0].content)["shipment"]
    assert create["parcel"] == {"length": 12.0, "width": 10.0, "height": 4.0, "weight": 32.0}
    assert create["options"]["label_format"] == "PDF"
    buy = json.loads(easypost.requests[1].content)
    assert buy == {"rate": {"id": next(iter(easypost.shipments)) + "_usps"}} or buy["rate"][
        "id"
    ].endswith("_usps")
    await maker.aclose()
