"""Shopify as the order source and the outbound feed, against a fake Admin GraphQL endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from integrations.models import Address
from integrations.protocols import OrderFeed, OrderSource, ProviderError
from integrations.shopify import ShopifyOrderFeed, ShopifyOrders
from tests.integrations.fakes_http import FakeShopify


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def shop() -> FakeShopify:
    return FakeShopify.with_demo_data()


@pytest.fixture
async def orders(shop: FakeShopify):
    client = ShopifyOrders(
        "northwind-goods",
        shop.token,
        transport=httpx.MockTransport(shop),
        sleep=_no_sleep,
    )
    yield client
    await client.aclose()


async def test_it_is_an_order_source(orders: ShopifyOrders):
    assert isinstance(orders, OrderSource)
    assert orders.shop_domain == "northwind-goods.myshopify.com"


async def test_customer_by_caller_id_written_any_way(orders: ShopifyOrders, shop: FakeShopify):
    maria = await orders.customer_by_phone("(415) 555-0101")
    assert maria is not None
    assert (maria.id, maria.name, maria.phone, maria.zip) == (
        "7001",
        "Maria Lopez",
        "+14155550101",
        "94110",
    )
    assert maria.email == "maria.lopez@example.com"
    assert shop.requests[-1]["variables"] == {"query": 'phone:"+14155550101"'}
    assert await orders.customer_by_phone("+1 212 555 0000") is None
    assert await orders.customer_by_phone("not a number") is None


async def test_customer_by_email_and_by_id(orders: ShopifyOrders):
    james = await orders.customer_by_email("  James.Chen@Example.com ")
    assert james is not None and james.first_name == "James"
    again = await orders.customer(james.id)
    assert again == james
    assert await orders.customer("9999") is None


async def test_orders_of_a_customer_newest_first_with_tracking_and_payment(orders: ShopifyOrders):
    found = await orders.orders_of("7001")
    assert [o.number for o in found] == ["1001", "1002"]
    shirt_order = found[0]
    assert shirt_order.fulfillment == "fulfilled"
    assert (shirt_order.carrier, shirt_order.tracking_number) == ("UPS", "1Z999AA10123456784")
    assert shirt_order.shipped_at == datetime(2025, 3, 2, 10, 0, tzinfo=UTC)
    assert shirt_order.payment_method == "your Visa ending in 4242"
    assert shirt_order.payment_ref == "pi_3Pabc"
    assert shirt_order.shipping_address is not None
    assert shirt_order.shipping_address.postal_code == "94110"
    (line,) = shirt_order.lines
    assert (line.line_id, line.name, line.category, line.price_cents) == (
        "11",
        "Linen shirt",
        "apparel",
        4800,
    )
    assert found[1].fulfillment == "refunded"


async def test_order_by_number_is_exact_though_shopify_searches_by_prefix(orders: ShopifyOrders):
    assert (await orders.order("#1001")).number == "1001"
    assert await orders.order("100") is None
    assert await orders.order("  ") is None


async def test_final_sale_comes_from_the_product_tag(orders: ShopifyOrders):
    jacket_order = await orders.order("1004")
    assert jacket_order.lines[0].final_sale
    assert jacket_order.fulfillment == "unfulfilled"
    assert jacket_order.tracking_number is None


async def test_refunds_made_in_shopify_are_read_back(orders: ShopifyOrders):
    (refund,) = await orders.refunds_of("1002")
    assert (refund.line_id, refund.amount_cents, refund.status) == ("12", 12000, "succeeded")
    assert await orders.refunds_of("1001") == []


async def test_stock_per_variant_never_negative(orders: ShopifyOrders):
    assert await orders.stock("LS-M") == {"S": 4, "M": 0, "L": 0}
    assert await orders.stock("NOPE") == {}


async def test_address_changes_while_unshipped_and_is_refused_after(
    orders: ShopifyOrders, shop: FakeShopify
):
    new = Address("1 Market St", "San Francisco", "CA", "94105")
    updated = await orders.update_shipping_address("1004", new, idempotency_key="call-1:addr")
    assert updated.shipping_address.line1 == "1 Market St"
    before = len(shop.requests)
    with pytest.raises(ProviderError) as raised:
        await orders.update_shipping_address("1001", new, idempotency_key="call-1:addr2")
    assert raised.value.code == "already_shipped"
    assert not any("mutation" in r["query"] for r in shop.requests[before:])


async def test_throttling_is_retried(orders: ShopifyOrders, shop: FakeShopify):
    shop.throttle_next = 1
    assert (await orders.order("1001")).number == "1001"


async def test_throttling_that_persists_is_reported_retryable(
    orders: ShopifyOrders, shop: FakeShopify
):
    shop.throttle_next = 10
    with pytest.raises(ProviderError) as raised:
        await orders.order("1001")
    assert raised.value.code == "rate_limited"
    assert raised.value.retryable


async def test_a_wrong_token_is_reported_as_such(shop: FakeShopify):
    client = ShopifyOrders("northwind-goods", "wrong", transport=httpx.MockTransport(shop))
    with pytest.raises(ProviderError) as raised:
        await client.customer_by_email("maria.lopez@example.com")
    assert raised.value.code == "auth"
    assert not raised.value.retryable
    await client.aclose()


async def test_shop_name_for_the_doctor(orders: ShopifyOrders):
    assert await orders.shop_name() == "Northwind Goods"


# --- the outbound scheduler's feed ------------------------------------------------------------

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)


def _fulfillment(
    created: str,
    display: str,
    *,
    delivered: str | None = None,
    status: str = "SUCCESS",
    number: str | None = "1Z999AA10123456784",
) -> dict:
    return {
        "createdAt": created,
        "deliveredAt": delivered,
        "inTransitAt": created if display != "FULFILLED" else None,
        "status": status,
        "displayStatus": display,
        "trackingInfo": [{"company": "UPS", "number": number}] if number else [],
    }


def _feed_order(name: str, *fulfillments: dict, cancelled: str | None = None) -> dict:
    return {"name": name, "cancelledAt": cancelled, "fulfillments": list(fulfillments)}


class FakeShopifyFeed:
    """Shopify's `orders` connection as documented: `first`/`after` cursors and `pageInfo`,
    serving the given orders two per page."""

    def __init__(self, orders: list[dict], page_size: int = 2) -> None:
        self.orders = orders
        self.page_size = page_size
        self.requests: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert request.headers["X-Shopify-Access-Token"] == "shpat_feed"
        assert "orders(first: $first, after: $after, query: $query" in body["query"]
        self.requests.append(body["variables"])
        start = int(body["variables"]["after"] or 0)
        page = self.orders[start : start + self.page_size]
        end = start + len(page)
        info = {"hasNextPage": end < len(self.orders), "endCursor": str(end) if page else None}
        return httpx.Response(200, json={"data": {"orders": {"nodes": page, "pageInfo": info}}})


@pytest.fixture
def feed_shop() -> FakeShopifyFeed:
    return FakeShopifyFeed(
        [
            # delivered on the 7th
            _feed_order(
                "#1001",
                _fulfillment("2025-03-04T10:00:00Z", "DELIVERED", delivered="2025-03-07T16:20:00Z"),
            ),
            # on its way
            _feed_order("#1002", _fulfillment("2025-03-08T09:00:00Z", "IN_TRANSIT")),
            # delivered on the 8th: outside the window
            _feed_order(
                "#1003",
                _fulfillment("2025-03-05T10:00:00Z", "DELIVERED", delivered="2025-03-08T00:00:00Z"),
            ),
            # first parcel delivered on the 7th, the second still out for delivery
            _feed_order(
                "#1004",
                _fulfillment("2025-03-03T10:00:00Z", "DELIVERED", delivered="2025-03-07T09:00:00Z"),
                _fulfillment("2025-03-06T10:00:00Z", "OUT_FOR_DELIVERY", number="1Z2"),
            ),
            # cancelled after a delivery was recorded: nobody is called about it
            _feed_order(
                "#1005",
                _fulfillment("2025-03-04T10:00:00Z", "DELIVERED", delivered="2025-03-07T12:00:00Z"),
                cancelled="2025-03-09T10:00:00Z",
            ),
            # the shipment was cancelled, and one without tracking is not trackable
            _feed_order(
                "#1006",
                _fulfillment(
                    "2025-03-04T10:00:00Z",
                    "CANCELED",
                    delivered="2025-03-07T12:00:00Z",
                    status="CANCELLED",
                ),
                _fulfillment("2025-03-05T10:00:00Z", "FULFILLED", number=None),
            ),
        ]
    )


@pytest.fixture
async def feed(feed_shop: FakeShopifyFeed):
    orders = ShopifyOrders(
        "northwind-goods",
        "shpat_feed",
        transport=httpx.MockTransport(feed_shop),
        sleep=_no_sleep,
    )
    yield ShopifyOrderFeed(orders, lookback_days=30, clock=lambda: NOW)
    await orders.aclose()


async def test_the_feed_is_an_order_feed(feed: ShopifyOrderFeed):
    assert isinstance(feed, OrderFeed)


async def test_orders_delivered_in_a_window_across_pages(
    feed: ShopifyOrderFeed, feed_shop: FakeShopifyFeed
):
    start = datetime(2025, 3, 7, tzinfo=UTC)
    delivered = await feed.delivered_between(start, datetime(2025, 3, 8, tzinfo=UTC))
    assert delivered == ["1001", "1004"]
    assert [r["after"] for r in feed_shop.requests] == [None, "2", "4"]
    assert feed_shop.requests[0]["query"] == (
        "(fulfillment_status:shipped OR fulfillment_status:partial) "
        "created_at:>='2025-02-05T00:00:00Z'"
    )


async def test_orders_in_flight_follow_their_latest_tracked_shipment(
    feed: ShopifyOrderFeed, feed_shop: FakeShopifyFeed
):
    assert await feed.in_flight() == ["1002", "1004"]
    assert feed_shop.requests[0]["query"].endswith("created_at:>='2025-02-08T15:00:00Z'")


async def test_an_empty_store_has_nothing_to_schedule():
    empty = FakeShopifyFeed([])
    orders = ShopifyOrders("northwind-goods", "shpat_feed", transport=httpx.MockTransport(empty))
    feed = ShopifyOrderFeed(orders, clock=lambda: NOW)
    try:
        assert await feed.in_flight() == []
        assert await feed.delivered_between(NOW - timedelta(days=1), NOW) == []
        assert len(empty.requests) == 2
    finally:
        await orders.aclose()


async def test_too_many_orders_is_an_error_not_a_silent_cut(feed_shop: FakeShopifyFeed):
    orders = ShopifyOrders(
        "northwind-goods", "shpat_feed", transport=httpx.MockTransport(feed_shop)
    )
    feed = ShopifyOrderFeed(orders, page_size=2, max_pages=2, clock=lambda: NOW)
    try:
        with pytest.raises(ProviderError) as raised:
            await feed.in_flight()
        assert raised.value.code == "too_many_orders"
    finally:
        await orders.aclose()
