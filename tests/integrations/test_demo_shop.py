"""The embedded demo shop holds the data DESIGN.md promises and answers like a real shop."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select

from integrations.demo import (
    DemoShop,
    normalize_phone,
    seed,
    shop_coupon_uses,
    shop_coupons,
    shop_customers,
    shop_orders,
    shop_returns,
    shop_sms,
    shop_stock,
)
from integrations.models import ShipmentStatus
from integrations.protocols import Messenger, OrderSource, Tracking

TODAY = date(2025, 3, 10)
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
MARIA = "+14155550101"


def days(n: int) -> date:
    """The date `n` days from TODAY."""
    return TODAY + timedelta(days=n)


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory) -> Path:
    """A database file seeded once for the module; tests read it or copy it."""
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    engine = create_engine(f"sqlite:///{path}")
    seed(engine, today=TODAY)
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def engine(seeded_db: Path) -> Iterator[Engine]:
    """The shared shop, for tests that only read it."""
    engine = create_engine(f"sqlite:///{seeded_db}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def shop(engine: Engine) -> DemoShop:
    return DemoShop(engine, clock=lambda: NOW)


@pytest.fixture
def own_engine(seeded_db: Path, tmp_path: Path) -> Iterator[Engine]:
    """A shop of the test's own, for tests that send texts or reseed."""
    path = tmp_path / "shop.db"
    shutil.copyfile(seeded_db, path)
    engine = create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def own_shop(own_engine: Engine) -> DemoShop:
    return DemoShop(own_engine, clock=lambda: NOW)


def count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# --- orders and customers ------------------------------------------------------------------

# number, customer, item, category, price in cents, final sale, fulfillment, placed day
DEMO_ORDERS = [
    ("1001", "Maria Lopez", "Linen shirt", "apparel", 4800, False, "fulfilled", -5),
    ("1002", "Maria Lopez", "Trail running shoes", "apparel", 12000, False, "fulfilled", -40),
    ("1003", "James Chen", "Wireless earbuds", "electronics", 8900, False, "fulfilled", -12),
    ("1004", "James Chen", "Clearance rain jacket", "apparel", 3000, True, "fulfilled", -10),
    ("1005", "Aisha Patel", "Wool sweater", "apparel", 6500, False, "fulfilled", -9),
    ("1006", "Aisha Patel", "Desk lamp", "home", 4000, False, "fulfilled", -8),
    ("1007", "Tom Becker", "Espresso machine", "home", 49900, False, "fulfilled", -20),
    ("1008", "Tom Becker", "Coffee grinder", "home", 15000, False, "fulfilled", -6),
    ("1009", "Lena Novak", "Ceramic vase", "home", 5500, False, "fulfilled", -7),
    ("1010", "Lena Novak", "Yoga mat", "home", 3500, False, "unfulfilled", -1),
    ("1011", "Omar Haddad", "Laptop stand", "electronics", 8000, False, "refunded", -25),
    ("1012", "Omar Haddad", "Studio headphones", "electronics", 25000, False, "fulfilled", -15),
]


@pytest.mark.parametrize(
    ("number", "customer", "item", "category", "price", "final_sale", "fulfillment", "placed"),
    DEMO_ORDERS,
)
async def test_every_demo_order_is_as_designed(
    shop, number, customer, item, category, price, final_sale, fulfillment, placed
):
    order = await shop.orders.order(number)

    assert order is not None
    owner = await shop.orders.customer(order.customer_id)
    assert owner is not None and owner.name == customer
    (line,) = order.lines
    assert (line.name, line.category, line.price_cents, line.final_sale) == (
        item,
        category,
        price,
        final_sale,
    )
    assert order.total_cents == price
    assert order.fulfillment == fulfillment
    assert order.placed_at.date() == days(placed)


# number, shipped day, delivered day (None: not delivered)
SHIPPING_DATES = [
    ("1001", -4, None),
    ("1002", -39, -35),
    ("1003", -11, -8),
    ("1004", -9, -6),
    ("1005", -7, -3),
    ("1006", -6, None),
    ("1007", -18, None),
    ("1008", -5, None),
    ("1009", -5, -1),
    ("1012", -14, -11),
]


@pytest.mark.parametrize(("number", "shipped", "delivered"), SHIPPING_DATES)
async def test_shipping_dates_are_relative_to_the_seeding_day(shop, number, shipped, delivered):
    order = await shop.orders.order(number)

    assert order.shipped_at is not None and order.shipped_at.date() == days(shipped)
    if delivered is None:
        assert order.delivered_at is None
    else:
        assert order.delivered_at is not None and order.delivered_at.date() == days(delivered)


async def test_datetimes_come_back_timezone_aware_in_utc(shop):
    order = await shop.orders.order("1002")

    for moment in (order.placed_at, order.shipped_at, order.delivered_at):
        assert moment.utcoffset() == timedelta(0)
    assert order.placed_at == datetime(2025, 1, 29, 15, 0, tzinfo=UTC)


async def test_the_sweater_is_size_m_with_other_sizes_to_exchange_for(shop, engine):
    (line,) = (await shop.orders.order("1005")).lines
    with engine.connect() as conn:
        in_stock = (
            conn.execute(
                select(shop_stock.c.variant).where(
                    shop_stock.c.sku == line.sku, shop_stock.c.on_hand > 0
                )
            )
            .scalars()
            .all()
        )

    assert line.variant == "M"
    assert set(in_stock) >= {"S", "L"}


async def test_customers_have_the_designed_contacts(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(shop_customers).order_by(shop_customers.c.phone)).all()

    assert [(r.name, r.phone, r.email, r.zip) for r in rows] == [
        ("Maria Lopez", "+14155550101", "maria.lopez@example.com", "94110"),
        ("James Chen", "+14155550102", "james.chen@example.com", "10001"),
        ("Aisha Patel", "+14155550103", "aisha.patel@example.com", "60614"),
        ("Tom Becker", "+14155550104", "tom.becker@example.com", "73301"),
        ("Lena Novak", "+14155550105", "lena.novak@example.com", "02139"),
        ("Omar Haddad", "+14155550106", "omar.haddad@example.com", "98101"),
    ]


@pytest.mark.parametrize(
    "phone", ["+14155550101", "4155550101", "(415) 555-0101", "1-415-555-0101", "415.555.0101"]
)
async def test_a_caller_is_found_however_their_number_is_written(shop, phone):
    customer = await shop.orders.customer_by_phone(phone)

    assert customer is not None
    assert customer.name == "Maria Lopez"
    assert customer.first_name == "Maria"


@pytest.mark.parametrize("phone", ["+14155550199", "555-0101", "not a number", ""])
async def test_an_unknown_or_malformed_number_finds_nobody(shop, phone):
    assert await shop.orders.customer_by_phone(phone) is None


async def test_email_lookup_ignores_case_and_spaces(shop):
    customer = await shop.orders.customer_by_email("  Maria.Lopez@EXAMPLE.com ")

    assert customer is not None and customer.phone == MARIA
    assert await shop.orders.customer_by_email("nobody@example.com") is None
    assert await shop.orders.customer_by_email("") is None


async def test_orders_of_a_customer_are_newest_first(shop):
    maria = await shop.orders.customer_by_phone(MARIA)

    orders = await shop.orders.orders_of(maria.id)

    assert [o.number for o in orders] == ["1001", "1002"]
    assert await shop.orders.orders_of("no-such-customer") == []


@pytest.mark.parametrize("number", ["1001", "#1001", " # 1001 "])
async def test_an_order_number_may_carry_a_hash(shop, number):
    order = await shop.orders.order(number)

    assert order is not None and order.number == "1001"


@pytest.mark.parametrize("number", ["9999", "", "#"])
async def test_an_unknown_order_is_none(shop, number):
    assert await shop.orders.order(number) is None


async def test_an_unshipped_order_has_no_shipment(shop):
    order = await shop.orders.order("1010")

    assert order.fulfillment == "unfulfilled"
    assert (order.carrier, order.tracking_number, order.shipped_at) == (None, None, None)


# --- phone normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 (415) 555-0101", "+14155550101"),
        ("tel:+14155550101", "+14155550101"),
        ("011 44 20 7946 0958", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
        ("415 555 0101", "+14155550101"),
    ],
)
def test_normalize_phone_gives_e164(raw, e164):
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "5550101",  # no area code
        "0155550101",  # area codes never start with 0 or 1
        "4151550101",  # nor do exchanges
        "+0123456789",
        "+1234",
        "+1234567890123456",  # longer than E.164 allows
        "415-555-01O1",  # a letter O
        "٤١٥٥٥٥٠١٠١",  # digits, but not ASCII ones
    ],
)
def test_normalize_phone_rejects_what_cannot_be_a_number(raw):
    assert normalize_phone(raw) is None


def test_normalize_phone_refuses_a_region_it_cannot_read():
    with pytest.raises(ValueError, match="region"):
        normalize_phone("020 7946 0958", default_region="GB")


# --- tracking ----------------------------------------------------------------------------


async def shipment_of(shop: DemoShop, number: str):
    order = await shop.orders.order(number)
    return await shop.tracking.track(order.carrier, order.tracking_number)


async def test_1001_is_in_transit_with_ups_arriving_tomorrow(shop):
    shipment = await shipment_of(shop, "1001")

    assert shipment.carrier == "UPS"
    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.eta == days(1)
    assert shipment.tracking_url == (
        f"https://www.ups.com/track?tracknum={shipment.tracking_number}"
    )
    assert shipment.fetched_at == NOW
    assert len(shipment.events) >= 3
    assert [e.at for e in shipment.events] == sorted(e.at for e in shipment.events)
    assert shipment.events[0].status is ShipmentStatus.PRE_TRANSIT
    assert shipment.detail == shipment.last_scan.description


async def test_1006_delivery_attempt_failed_yesterday(shop):
    shipment = await shipment_of(shop, "1006")

    assert shipment.carrier == "FedEx"
    assert shipment.status is ShipmentStatus.FAILED_ATTEMPT
    assert shipment.last_scan.at.date() == days(-1)
    assert shipment.tracking_url.startswith("https://www.fedex.com/fedextrack/?trknbr=")


async def test_1007_has_had_no_scan_for_nine_days_but_is_still_in_transit(shop):
    shipment = await shipment_of(shop, "1007")

    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.last_scan.at.date() == days(-9)
    assert shipment.events[0].at.date() <= days(-18)
    assert shipment.eta < TODAY


async def test_1008_is_held_at_customs_since_two_days(shop):
    shipment = await shipment_of(shop, "1008")

    assert shipment.carrier == "USPS"
    assert shipment.status is ShipmentStatus.DELAYED
    assert "customs" in shipment.detail.lower()
    assert shipment.last_scan.at.date() == days(-2)
    assert shipment.tracking_url.startswith("https://tools.usps.com/go/TrackConfirmAction?tLabels=")


@pytest.mark.parametrize("number", ["1002", "1003", "1004", "1005", "1009", "1011", "1012"])
async def test_delivered_orders_track_as_delivered_on_their_delivery_day(shop, number):
    order = await shop.orders.order(number)
    shipment = await shipment_of(shop, number)

    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.last_scan.at == order.delivered_at


TRACKING_NUMBER_SHAPES = {
    "UPS": re.compile(r"1Z[0-9A-Z]{16}"),
    "FedEx": re.compile(r"[0-9]{12}"),
    "USPS": re.compile(r"[0-9]{22}"),
}


async def test_tracking_numbers_look_like_each_carriers(shop):
    shipped = [o for o in [await shop.orders.order(row[0]) for row in DEMO_ORDERS] if o.carrier]

    assert {o.carrier for o in shipped} == set(TRACKING_NUMBER_SHAPES)
    for order in shipped:
        assert TRACKING_NUMBER_SHAPES[order.carrier].fullmatch(order.tracking_number), order


async def test_tracking_number_is_read_loosely_and_the_carrier_must_match(shop):
    order = await shop.orders.order("1001")
    spaced = " ".join(order.tracking_number.lower()[i : i + 4] for i in range(0, 18, 4))

    assert (await shop.tracking.track("ups", spaced)).tracking_number == order.tracking_number
    assert await shop.tracking.track("", order.tracking_number) is not None
    assert await shop.tracking.track("FedEx", order.tracking_number) is None
    assert await shop.tracking.track("UPS", "1Z0000000000000000") is None


async def test_the_return_of_1012_is_trackable_on_its_way_back(shop, engine):
    with engine.connect() as conn:
        ret = conn.execute(select(shop_returns).where(shop_returns.c.order_number == "1012")).one()

    shipment = await shop.tracking.track("UPS", ret.label_tracking_number)

    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.events[1].at.date() == days(-2)


# --- returns and coupons (data only for now) ---------------------------------------------


async def test_returns_of_1011_and_1012_are_where_the_design_says(engine, shop):
    with engine.connect() as conn:
        rows = {
            r.order_number: r
            for r in conn.execute(select(shop_returns).order_by(shop_returns.c.rma))
        }

    assert set(rows) == {"1011", "1012"}
    refunded, in_transit = rows["1011"], rows["1012"]
    assert refunded.status == "refunded"
    assert refunded.received_at.date() == days(-3)
    assert refunded.refunded_at.date() == days(-2)
    assert (refunded.refund_cents, refunded.refund_method) == (8000, "original_payment")
    assert in_transit.status == "in_transit_to_warehouse"
    assert in_transit.created_at.date() == days(-3)
    assert in_transit.label_used_at.date() == days(-2)
    assert in_transit.received_at is None
    order = await shop.orders.order("1012")
    assert order.fulfillment == "fulfilled"


def test_order_1012_notes_the_used_return_label(engine):
    with engine.connect() as conn:
        note = conn.execute(
            select(shop_orders.c.note).where(shop_orders.c.number == "1012")
        ).scalar_one()

    assert f"label used on {days(-2).isoformat()}" in note


def test_coupons_are_seeded_as_designed(engine):
    with engine.connect() as conn:
        coupons = {c.code: c for c in conn.execute(select(shop_coupons))}
        uses = conn.execute(
            select(shop_coupon_uses.c.code, shop_customers.c.name).join(shop_customers)
        ).all()

    assert set(coupons) == {"SAVE20", "WELCOME10", "SUMMER15", "FREESHIP", "VIP50"}
    save20 = coupons["SAVE20"]
    assert (save20.kind, save20.value, save20.min_subtotal_cents) == ("percent", 20, 5000)
    assert coupons["WELCOME10"].first_order_only
    assert coupons["SUMMER15"].expires_at.date() == date(2025, 2, 28)
    assert (coupons["FREESHIP"].kind, coupons["FREESHIP"].min_subtotal_cents) == (
        "free_shipping",
        3500,
    )
    vip = coupons["VIP50"]
    assert (vip.kind, vip.value, vip.single_use) == ("amount", 5000, True)
    assert [tuple(u) for u in uses] == [("VIP50", "Tom Becker")]


# --- SMS ----------------------------------------------------------------------------------


async def test_an_sms_is_recorded_with_a_twilio_like_id(own_shop):
    message_id = await own_shop.messenger.send_sms(
        "(415) 555-0101", "Your order is on its way.", idempotency_key="call-1:wismo"
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message_id)
    (sms,) = own_shop.messenger.sent()
    assert (sms["id"], sms["to"], sms["body"]) == (message_id, MARIA, "Your order is on its way.")
    assert sms["created_at"] == NOW


async def test_the_same_decision_never_texts_twice(own_shop):
    first = await own_shop.messenger.send_sms(MARIA, "Tracking link", idempotency_key="k1")
    again = await own_shop.messenger.send_sms(MARIA, "Tracking link", idempotency_key="k1")
    other = await own_shop.messenger.send_sms(MARIA, "Return label", idempotency_key="k2")

    assert again == first
    assert other != first
    assert [m["body"] for m in own_shop.messenger.sent(to="4155550101")] == [
        "Tracking link",
        "Return label",
    ]
    assert own_shop.messenger.sent(to="+14155550102") == []


async def test_concurrent_retries_of_one_decision_send_once(own_shop, own_engine):
    ids = await asyncio.gather(
        *(own_shop.messenger.send_sms(MARIA, "Hi", idempotency_key="same") for _ in range(5))
    )

    assert len(set(ids)) == 1
    assert count(own_engine, shop_sms) == 1


@pytest.mark.parametrize(
    ("to", "body", "key"),
    [("555", "Hi", "k"), (MARIA, "  ", "k"), (MARIA, "x" * 1601, "k"), (MARIA, "Hi", "")],
)
async def test_an_sms_that_cannot_be_sent_is_refused(own_shop, to, body, key):
    with pytest.raises(ValueError):
        await own_shop.messenger.send_sms(to, body, idempotency_key=key)
    assert own_shop.messenger.sent() == []


# --- seeding and wiring -------------------------------------------------------------------


async def test_reseeding_replaces_the_demo_rows_and_keeps_sent_texts(own_engine, own_shop):
    first = await own_shop.messenger.send_sms(MARIA, "Hi", idempotency_key="before-reseed")

    seed(own_engine, today=TODAY)
    seed(own_engine, today=TODAY + timedelta(days=1))

    assert count(own_engine, shop_orders) == 12
    assert count(own_engine, shop_customers) == 6
    assert count(own_engine, shop_coupons) == 5
    order = await own_shop.orders.order("1001")
    assert order.placed_at.date() == TODAY + timedelta(days=1 - 5)
    assert await own_shop.messenger.send_sms(MARIA, "Hi", idempotency_key="before-reseed") == first


async def test_the_demo_shop_implements_the_protocols():
    shop = DemoShop.in_memory(today=TODAY)
    try:
        assert isinstance(shop.orders, OrderSource)
        assert isinstance(shop.tracking, Tracking)
        assert isinstance(shop.messenger, Messenger)
        # Queries run in worker threads: the in-memory database must be shared with them.
        assert (await shop.orders.order("1009")).delivered_at.date() == days(-1)
    finally:
        shop.engine.dispose()
