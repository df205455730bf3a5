"""The embedded demo shop holds the data docs/DESIGN.md promises and answers like a real shop."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import IntegrityError

from integrations.demo import (
    DemoShop,
    ensure_schema,
    seed,
    shop_address_changes,
    shop_coupon_uses,
    shop_coupons,
    shop_customers,
    shop_delivery_requests,
    shop_orders,
    shop_refunds,
    shop_return_lines,
    shop_returns,
    shop_sms,
    shop_stock,
    shop_tickets,
    shop_tracking_events,
)
from integrations.labels import EmbeddedLabels
from integrations.models import Address, ShipmentStatus
from integrations.phones import normalize_phone
from integrations.protocols import (
    Coupons,
    Deliveries,
    Helpdesk,
    Messenger,
    OrderSource,
    ProviderError,
    Refunds,
    Returns,
    Tracking,
)
from integrations.store import make_engine

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
    """A shop of the test's own, for tests that change it; set up as the server sets up its
    database (foreign keys enforced, WAL), so concurrent writers meet real locking."""
    path = tmp_path / "shop.db"
    shutil.copyfile(seeded_db, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


LABELS_SECRET = b"test-label-secret"


@pytest.fixture
def own_shop(own_engine: Engine) -> DemoShop:
    labels = EmbeddedLabels(LABELS_SECRET, "https://shop.example", clock=lambda: NOW)
    return DemoShop(own_engine, clock=lambda: NOW, labels=labels)


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
        "+15550000000",  # ten digits, but 555 is no area code
        "415-555-01O1",  # a letter O
        "٤١٥٥٥٥٠١٠١",  # digits, but not ASCII ones
    ],
)
def test_normalize_phone_rejects_what_cannot_be_a_number(raw):
    assert normalize_phone(raw) is None


def test_normalize_phone_reads_a_number_in_its_region():
    assert normalize_phone("020 7946 0958", default_region="GB") == "+442079460958"
    assert normalize_phone("020 7946 0958") is None  # not a US number


def test_normalize_phone_refuses_a_region_it_cannot_read():
    with pytest.raises(ValueError, match="region"):
        normalize_phone("020 7946 0958", default_region="XX")


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


async def test_the_return_of_1012_is_trackable_on_its_way_back(shop):
    (ret,) = await shop.returns.returns_of("1012")

    shipment = await shop.tracking.track(ret.label.carrier, ret.label.tracking_number)

    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.events[1].at.date() == days(-2)


# --- seeded returns and coupons ----------------------------------------------------------


async def test_returns_of_1011_and_1012_are_where_the_design_says(engine, shop):
    (refunded,) = await shop.returns.returns_of("1011")
    (in_transit,) = await shop.returns.returns_of("1012")

    assert (refunded.rma, refunded.line_ids, refunded.status) == (
        "RMA-50011",
        ("1011-1",),
        "refunded",
    )
    assert refunded.received_at.date() == days(-3)
    (refund,) = await shop.refunds.refunds_of("1011")
    assert (refund.line_id, refund.amount_cents, refund.method) == (
        "1011-1",
        8000,
        "original_payment",
    )
    assert refund.status == "succeeded" and refund.created_at.date() == days(-2)
    assert (in_transit.rma, in_transit.line_ids, in_transit.status) == (
        "RMA-50012",
        ("1012-1",),
        "in_transit",
    )
    assert in_transit.created_at.date() == days(-3)
    assert in_transit.received_at is None
    with engine.connect() as conn:
        used = conn.execute(
            select(shop_returns.c.label_used_at).where(shop_returns.c.rma == "RMA-50012")
        ).scalar_one()
    assert used.date() == days(-2)
    assert (await shop.orders.order("1012")).fulfillment == "fulfilled"
    assert await shop.refunds.refunds_of("1012") == []
    assert await shop.returns.returns_of("1003") == []


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


# --- addresses, payments and stock ---------------------------------------------------------

BOSTON = Address("1 Main St", "Boston", "MA", "02110", line2="Apt 5")

# customer, their city and state
HOMES = {
    "Maria Lopez": ("San Francisco", "CA"),
    "James Chen": ("New York", "NY"),
    "Aisha Patel": ("Chicago", "IL"),
    "Tom Becker": ("Austin", "TX"),
    "Lena Novak": ("Cambridge", "MA"),
    "Omar Haddad": ("Seattle", "WA"),
}
PAYMENT_METHOD = re.compile(r"your (Visa|Mastercard|American Express|Discover) ending in [0-9]{4}")


async def test_every_order_ships_to_its_customers_zip_and_says_how_it_was_paid(shop):
    refs, methods = set(), set()
    for number, *_ in DEMO_ORDERS:
        order = await shop.orders.order(number)
        customer = await shop.orders.customer(order.customer_id)

        address = order.shipping_address
        assert address.postal_code == customer.zip, number
        assert (address.city, address.region, address.country) == (*HOMES[customer.name], "US")
        assert address.line1
        assert PAYMENT_METHOD.fullmatch(order.payment_method), order.payment_method
        assert re.fullmatch(r"pi_[0-9A-Za-z]{24}", order.payment_ref)
        assert [line.line_id for line in order.lines] == [f"{number}-1"]
        refs.add(order.payment_ref)
        methods.add(order.payment_method)

    assert len(refs) == len(DEMO_ORDERS)
    assert len(methods) == len(HOMES)


async def test_stock_counts_units_per_variant(shop):
    assert await shop.orders.stock("AP-WOOL-SWEATER") == {"S": 4, "M": 2, "L": 3, "XL": 0}
    assert await shop.orders.stock("NO-SUCH-SKU") == {}


async def test_an_unshipped_order_can_be_sent_elsewhere_once_per_request(own_shop, own_engine):
    order = await own_shop.orders.update_shipping_address(
        "#1010", BOSTON, idempotency_key="call-1:address"
    )
    again = await own_shop.orders.update_shipping_address(
        "1010", Address("9 Elm St", "Austin", "TX", "73301"), idempotency_key="call-1:address"
    )

    assert order.shipping_address == BOSTON
    assert again.shipping_address == BOSTON
    assert (await own_shop.orders.order("1010")).shipping_address == BOSTON
    with own_engine.connect() as conn:
        change = conn.execute(select(shop_address_changes)).one()
    assert change.order_number == "1010"
    assert "Pearl St" in change.previous_address


@pytest.mark.parametrize(
    ("number", "address", "code"),
    [
        ("1001", BOSTON, "already_shipped"),
        ("1009", BOSTON, "already_shipped"),
        ("9999", BOSTON, "not_found"),
        ("1010", Address("1 Main St", "Boston", "MA", "2110"), "invalid_address"),
        ("1010", Address(" ", "Boston", "MA", "02110"), "invalid_address"),
    ],
)
async def test_an_address_change_is_refused_when_no_shop_could_make_it(
    own_shop, number, address, code
):
    with pytest.raises(ProviderError) as refused:
        await own_shop.orders.update_shipping_address(number, address, idempotency_key="k")

    assert refused.value.code == code
    if number in ("1001", "1010"):
        assert (await own_shop.orders.order(number)).shipping_address != address


async def test_an_idempotency_key_cannot_change_two_orders(own_shop, own_engine):
    with own_engine.begin() as conn:
        conn.execute(
            shop_orders.update()
            .where(shop_orders.c.number == "1009")
            .values(fulfillment="unfulfilled")
        )
    await own_shop.orders.update_shipping_address("1010", BOSTON, idempotency_key="same")

    with pytest.raises(ProviderError) as refused:
        await own_shop.orders.update_shipping_address("1009", BOSTON, idempotency_key="same")

    assert refused.value.code == "idempotency_key_reused"


# --- deliveries ----------------------------------------------------------------------------


async def test_1006_is_rescheduled_and_tracking_tells_the_new_day(own_shop, own_engine):
    wanted = days(2)

    agreed = await own_shop.deliveries.reschedule("1006", wanted, idempotency_key="call-1:r")
    again = await own_shop.deliveries.reschedule("1006", wanted, idempotency_key="call-1:r")

    assert agreed == again == wanted
    shipment = await shipment_of(own_shop, "1006")
    assert shipment.eta == wanted
    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert "rescheduled" in shipment.detail and "Wednesday, March 12" in shipment.detail
    assert [e.status for e in shipment.events].count(ShipmentStatus.FAILED_ATTEMPT) == 1
    assert count(own_engine, shop_delivery_requests) == 1


@pytest.mark.parametrize(
    ("number", "day", "code"),
    [
        ("1001", 2, "not_reschedulable"),  # in transit, never attempted
        ("1009", 2, "not_reschedulable"),  # delivered
        ("1010", 2, "not_reschedulable"),  # not shipped
        ("1006", -1, "invalid_date"),
        ("1006", 30, "invalid_date"),
        ("9999", 2, "not_found"),
    ],
)
async def test_a_reschedule_needs_a_failed_attempt_and_a_near_future_day(
    own_shop, own_engine, number, day, code
):
    with pytest.raises(ProviderError) as refused:
        await own_shop.deliveries.reschedule(number, days(day), idempotency_key="k")

    assert refused.value.code == code
    assert count(own_engine, shop_delivery_requests) == 0


async def test_a_moving_parcel_can_be_redirected(own_shop):
    request = await own_shop.deliveries.redirect("1001", BOSTON, idempotency_key="call-1:rd")
    again = await own_shop.deliveries.redirect("1001", BOSTON, idempotency_key="call-1:rd")

    assert re.fullmatch(r"RDR-[0-9]+", request)
    assert again == request


@pytest.mark.parametrize(
    ("number", "code"), [("1009", "already_delivered"), ("1010", "not_shipped")]
)
async def test_a_redirect_needs_a_parcel_on_its_way(own_shop, number, code):
    with pytest.raises(ProviderError) as refused:
        await own_shop.deliveries.redirect(number, BOSTON, idempotency_key="k")

    assert refused.value.code == code


async def test_claims_get_ids_and_are_opened_once_per_parcel_and_kind(own_shop, own_engine):
    lost = await own_shop.deliveries.open_claim("1007", "lost", idempotency_key="call-1:claim")
    retried = await own_shop.deliveries.open_claim("1007", "lost", idempotency_key="call-1:claim")
    asked_again = await own_shop.deliveries.open_claim("1007", "lost", idempotency_key="call-2")
    damaged = await own_shop.deliveries.open_claim("1003", "damaged", idempotency_key="call-3")

    assert re.fullmatch(r"CLM-[0-9]+", lost) and re.fullmatch(r"CLM-[0-9]+", damaged)
    assert lost == retried == asked_again
    assert damaged != lost
    assert count(own_engine, shop_delivery_requests) == 2


async def test_racing_claims_for_one_parcel_open_one(own_shop, own_engine):
    claims = await asyncio.gather(
        *(own_shop.deliveries.open_claim("1007", "lost", idempotency_key=f"k{i}") for i in range(5))
    )

    assert len(set(claims)) == 1
    assert count(own_engine, shop_delivery_requests) == 1


async def test_a_claim_is_refused_for_a_parcel_it_cannot_be_about(own_shop):
    with pytest.raises(ProviderError) as in_transit:
        await own_shop.deliveries.open_claim("1007", "damaged", idempotency_key="a")
    with pytest.raises(ProviderError) as unshipped:
        await own_shop.deliveries.open_claim("1010", "lost", idempotency_key="b")
    with pytest.raises(ValueError):
        await own_shop.deliveries.open_claim("1007", "stolen", idempotency_key="c")

    assert (in_transit.value.code, unshipped.value.code) == ("not_delivered", "not_shipped")


async def test_one_key_cannot_name_two_delivery_requests(own_shop):
    await own_shop.deliveries.open_claim("1007", "lost", idempotency_key="same")

    with pytest.raises(ProviderError) as refused:
        await own_shop.deliveries.redirect("1001", BOSTON, idempotency_key="same")

    assert refused.value.code == "idempotency_key_reused"


# --- coupons -------------------------------------------------------------------------------

# code as said, customer, order (None: no order), valid, reason, discount in cents
COUPON_CHECKS = [
    ("SAVE20", "cust_005", "1009", True, "ok", 1100),  # 20% of $55
    (" save20 ", "cust_001", "1002", True, "ok", 2400),
    ("SAVE20", "cust_001", "1001", False, "minimum_spend", 0),  # $48
    ("SAVE20", None, None, True, "ok", 0),
    ("WELCOME10", "cust_001", None, False, "first_order_only", 0),  # two orders
    ("WELCOME10", None, "1003", False, "first_order_only", 0),  # James's orders say who
    ("WELCOME10", "cust_new", None, True, "ok", 0),
    ("WELCOME10", None, None, True, "ok", 0),
    ("SUMMER15", "cust_001", "1002", False, "expired", 0),
    ("SUMMER15", None, None, False, "expired", 0),
    ("FREESHIP", "cust_005", "1010", True, "ok", 0),  # $35 reaches the minimum
    ("FREESHIP", "cust_002", "1004", False, "minimum_spend", 0),  # $30
    ("VIP50", "cust_004", "1008", False, "already_used", 0),
    ("VIP50", "cust_004", None, False, "already_used", 0),
    ("VIP50", "cust_001", "1002", True, "ok", 5000),
    ("VIP50", "cust_001", "1001", True, "ok", 4800),  # never more than the order
    ("NOPE", "cust_001", "1001", False, "unknown", 0),
    ("", None, None, False, "unknown", 0),
]


@pytest.mark.parametrize(
    ("code", "customer", "number", "valid", "reason", "discount"), COUPON_CHECKS
)
async def test_each_demo_coupon_applies_or_says_why_not(
    shop, code, customer, number, valid, reason, discount
):
    order = await shop.orders.order(number) if number else None

    check = await shop.coupons.check(code, customer, order)

    assert (check.valid, check.reason, check.discount_cents) == (valid, reason, discount)
    assert check.code == code.strip().upper()
    assert (check.coupon is None) == (reason == "unknown")


async def test_coupons_are_looked_up_ignoring_case(shop):
    coupon = await shop.coupons.coupon("save20")

    assert (coupon.code, coupon.kind, coupon.value, coupon.min_subtotal_cents) == (
        "SAVE20",
        "percent",
        20,
        5000,
    )
    assert (await shop.coupons.coupon("summer15")).expires_at == datetime(
        2025, 2, 28, 23, 59, 59, tzinfo=UTC
    )
    assert await shop.coupons.coupon("nope") is None


async def test_only_active_unexpired_codes_are_offered(own_shop, own_engine):
    assert await own_shop.coupons.active_codes() == ["FREESHIP", "SAVE20", "VIP50", "WELCOME10"]

    with own_engine.begin() as conn:
        conn.execute(
            shop_coupons.update().where(shop_coupons.c.code == "SAVE20").values(active=False)
        )

    assert await own_shop.coupons.active_codes() == ["FREESHIP", "VIP50", "WELCOME10"]
    check = await own_shop.coupons.check("SAVE20", "cust_005", await own_shop.orders.order("1009"))
    assert (check.valid, check.reason) == (False, "inactive")


# --- returns -------------------------------------------------------------------------------


async def test_a_return_is_authorized_once_per_key(own_shop, own_engine):
    first = await own_shop.returns.create(
        "1005",
        ["1005-1"],
        "wrong_size",
        "exchange",
        idempotency_key="call-1:return",
        exchange_variant="L",
    )
    again = await own_shop.returns.create(
        "1005",
        ["1005-1"],
        "wrong_size",
        "exchange",
        idempotency_key="call-1:return",
        exchange_variant="L",
    )

    assert re.fullmatch(r"RMA-[0-9]+", first.rma)
    assert again == first
    assert (first.order_number, first.line_ids, first.status) == ("1005", ("1005-1",), "authorized")
    assert (first.resolution, first.exchange_variant, first.reason_code) == (
        "exchange",
        "L",
        "wrong_size",
    )
    assert first.created_at == NOW and first.label is None
    assert await own_shop.returns.returns_of("1005") == [first]
    # The exchange holds one large sweater for the customer, once.
    assert (await own_shop.orders.stock("AP-WOOL-SWEATER"))["L"] == 2
    assert count(own_engine, shop_returns) == 3


@pytest.mark.parametrize(
    ("number", "lines", "code"),
    [
        ("1012", ["1012-1"], "already_returned"),  # on its way back
        ("1011", ["1011-1"], "already_returned"),  # refunded
        ("9999", ["9999-1"], "not_found"),
        ("1003", ["1003-2"], "not_found"),
        ("1003", ["1005-1"], "not_found"),
    ],
)
async def test_a_return_is_refused_for_a_line_that_cannot_go_back(
    own_shop, own_engine, number, lines, code
):
    with pytest.raises(ProviderError) as refused:
        await own_shop.returns.create(number, lines, "changed_mind", "refund", idempotency_key="k")

    assert refused.value.code == code
    assert count(own_engine, shop_returns) == 2


async def test_a_line_is_never_on_two_returns(own_shop, own_engine):
    await own_shop.returns.create("1003", ["1003-1"], "changed_mind", "refund", idempotency_key="a")

    with pytest.raises(ProviderError) as refused:
        await own_shop.returns.create(
            "1003", ["1003-1"], "changed_mind", "store_credit", idempotency_key="b"
        )

    assert refused.value.code == "already_returned"
    assert [r.resolution for r in await own_shop.returns.returns_of("1003")] == ["refund"]


async def test_racing_returns_of_one_line_make_exactly_one(own_shop, own_engine):
    results = await asyncio.gather(
        *(
            own_shop.returns.create("1003", ["1003-1"], "r", "refund", idempotency_key=f"k{i}")
            for i in range(5)
        ),
        return_exceptions=True,
    )

    made = [r for r in results if not isinstance(r, Exception)]
    assert len(made) == 1
    assert {r.code for r in results if isinstance(r, ProviderError)} == {"already_returned"}
    with own_engine.connect() as conn:
        lines = conn.execute(
            select(shop_return_lines.c.rma).where(shop_return_lines.c.line_id == "1003-1")
        ).all()
    assert [row.rma for row in lines] == [made[0].rma]


async def test_an_exchange_for_a_size_out_of_stock_is_refused(own_shop, own_engine):
    with pytest.raises(ProviderError) as refused:
        await own_shop.returns.create(
            "1005",
            ["1005-1"],
            "wrong_size",
            "exchange",
            idempotency_key="k",
            exchange_variant="XL",
        )

    assert refused.value.code == "out_of_stock"
    assert await own_shop.returns.returns_of("1005") == []


async def test_a_return_label_is_made_once_and_the_return_marked_sent(own_shop):
    rma = await own_shop.returns.create("1003", ["1003-1"], "r", "refund", idempotency_key="k")

    label = await own_shop.returns.label(rma.rma, idempotency_key="call-1:label")
    again = await own_shop.returns.label(rma.rma, idempotency_key="call-1:label")
    other_call = await own_shop.returns.label(rma.rma, idempotency_key="call-2:label")

    assert label == again == other_call
    assert label.carrier == "USPS" and re.fullmatch(r"[0-9]{22}", label.tracking_number)
    assert label.url.startswith(f"https://shop.example/labels/{rma.rma}.pdf?expires=")
    assert label.expires_at == NOW + timedelta(days=30)
    (sent,) = await own_shop.returns.returns_of("1003")
    assert (sent.status, sent.label) == ("label_sent", label)
    shipment = await own_shop.tracking.track("USPS", label.tracking_number)
    assert shipment.status is ShipmentStatus.PRE_TRANSIT
    assert shipment.events[0].location == "New York, NY, US"


async def test_the_label_link_opens_the_labels_pdf(own_shop):
    rma = await own_shop.returns.create("1005", ["1005-1"], "r", "refund", idempotency_key="k")
    assert await own_shop.returns.label_pdf(rma.rma) is None  # no label yet
    label = await own_shop.returns.label(rma.rma, idempotency_key="l")
    query = dict(part.split("=", 1) for part in label.url.split("?", 1)[1].split("&"))

    assert own_shop.labels.verify(rma.rma, query["expires"], query["sig"])
    pdf = await own_shop.returns.label_pdf(rma.rma)
    assert pdf.startswith(b"%PDF")
    assert await own_shop.returns.label_pdf("RMA-00000") is None


async def test_an_expired_label_link_is_replaced_by_a_fresh_one(own_engine):
    clock = MovableClock(NOW)
    labels = EmbeddedLabels(LABELS_SECRET, "https://shop.example", clock=clock)
    shop = DemoShop(own_engine, clock=clock, labels=labels)
    rma = await shop.returns.create("1003", ["1003-1"], "r", "refund", idempotency_key="k")
    old = await shop.returns.label(rma.rma, idempotency_key="call-1")

    clock.now = NOW + timedelta(days=31)
    new = await shop.returns.label(rma.rma, idempotency_key="call-2")

    assert new.tracking_number == old.tracking_number
    assert new.url != old.url and new.expires_at == clock.now + timedelta(days=30)
    assert (await shop.returns.returns_of("1003"))[0].label == new


async def test_a_used_label_is_not_sent_again(own_shop):
    with pytest.raises(ProviderError) as used:
        await own_shop.returns.label("RMA-50012", idempotency_key="k")
    with pytest.raises(ProviderError) as unknown:
        await own_shop.returns.label("RMA-00000", idempotency_key="k")

    assert (used.value.code, unknown.value.code) == ("label_used", "not_found")


async def test_receiving_a_return_delivers_its_parcel(own_shop):
    received = await own_shop.returns.receive("RMA-50012")
    again = await own_shop.returns.receive("RMA-50012")

    assert (received.status, received.received_at) == ("received", NOW)
    assert again == received
    shipment = await own_shop.tracking.track("UPS", received.label.tracking_number)
    assert shipment.status is ShipmentStatus.DELIVERED
    assert (await own_shop.returns.receive("RMA-50011")).status == "refunded"
    with pytest.raises(ProviderError) as unknown:
        await own_shop.returns.receive("RMA-00000")
    assert unknown.value.code == "not_found"


# --- refunds -------------------------------------------------------------------------------


async def test_a_refund_goes_back_once_per_key(own_shop, own_engine):
    refund = await own_shop.refunds.refund(
        "1003", "1003-1", 8900, idempotency_key="call-1:refund", reason="return received"
    )
    again = await own_shop.refunds.refund(
        "1003", "1003-1", 8900, idempotency_key="call-1:refund", reason="return received"
    )

    assert re.fullmatch(r"re_[0-9A-Za-z]{24}", refund.id)
    assert (refund.amount_cents, refund.status, refund.method) == (
        8900,
        "succeeded",
        "original_payment",
    )
    assert refund.created_at == NOW
    assert again == refund
    assert await own_shop.refunds.refunds_of("1003") == [refund]
    assert count(own_engine, shop_refunds) == 2  # with 1011's


async def test_a_line_refunded_under_another_key_is_not_refunded_again(own_shop, own_engine):
    await own_shop.refunds.refund("1003", "1003-1", 4000, idempotency_key="a", reason="damaged")

    with pytest.raises(ProviderError) as twice:
        await own_shop.refunds.refund("1003", "1003-1", 4000, idempotency_key="b", reason="damaged")
    with pytest.raises(ProviderError) as seeded:
        await own_shop.refunds.refund("1011", "1011-1", 8000, idempotency_key="c", reason="again")

    assert twice.value.code == seeded.value.code == "charge_already_refunded"
    assert count(own_engine, shop_refunds) == 2


async def test_racing_refunds_of_one_line_write_one_ledger_row(own_shop, own_engine):
    same_key = await asyncio.gather(
        *(
            own_shop.refunds.refund("1003", "1003-1", 8900, idempotency_key="same", reason="r")
            for _ in range(5)
        )
    )
    other_keys = await asyncio.gather(
        *(
            own_shop.refunds.refund("1009", "1009-1", 5500, idempotency_key=f"k{i}", reason="r")
            for i in range(5)
        ),
        return_exceptions=True,
    )

    assert len({r.id for r in same_key}) == 1
    refused = [r for r in other_keys if isinstance(r, ProviderError)]
    assert len(refused) == 4
    assert {r.code for r in refused} == {"charge_already_refunded"}
    with own_engine.connect() as conn:
        lines = conn.execute(select(shop_refunds.c.line_id).order_by(shop_refunds.c.line_id)).all()
    assert [row.line_id for row in lines] == ["1003-1", "1009-1", "1011-1"]


@pytest.mark.parametrize(
    ("number", "line", "amount", "code"),
    [
        ("1003", "1003-1", 8901, "amount_too_large"),
        ("1003", "1003-1", 0, "invalid_amount"),
        ("1003", "1003-1", -100, "invalid_amount"),
        ("1003", "1003-2", 100, "not_found"),
        ("9999", "9999-1", 100, "not_found"),
    ],
)
async def test_a_refund_that_no_card_could_take_is_refused(
    own_shop, own_engine, number, line, amount, code
):
    with pytest.raises(ProviderError) as refused:
        await own_shop.refunds.refund(number, line, amount, idempotency_key="k", reason="r")

    assert refused.value.code == code
    assert count(own_engine, shop_refunds) == 1


async def test_the_ledger_itself_refuses_a_second_refund_of_a_line(own_engine):
    with pytest.raises(IntegrityError), own_engine.begin() as conn:
        conn.execute(
            shop_refunds.insert(),
            {
                "id": "re_manual",
                "order_number": "1011",
                "line_id": "1011-1",
                "amount_cents": 100,
                "status": "succeeded",
                "method": "original_payment",
                "idempotency_key": "written-by-hand",
                "created_at": NOW,
            },
        )


async def test_a_received_return_refunded_in_full_closes_the_order(own_shop):
    await own_shop.returns.receive("RMA-50012")

    await own_shop.refunds.refund("1012", "1012-1", 25000, idempotency_key="k", reason="return")

    (ret,) = await own_shop.returns.returns_of("1012")
    assert ret.status == "refunded"
    assert (await own_shop.orders.order("1012")).fulfillment == "refunded"


async def test_a_partial_refund_leaves_the_order_as_it_was(own_shop):
    await own_shop.refunds.refund("1009", "1009-1", 1000, idempotency_key="k", reason="chipped")

    assert (await own_shop.orders.order("1009")).fulfillment == "fulfilled"


# --- helpdesk ------------------------------------------------------------------------------


async def file_ticket(shop: DemoShop, key: str, subject: str = "Espresso machine lost"):
    return await shop.helpdesk.create_ticket(
        subject,
        "Order 1007: no carrier scan for nine days. Customer asks for a replacement.",
        requester_phone="(415) 555-0104",
        requester_email="Tom.Becker@example.com",
        tags=["lost_parcel", "high_value"],
        priority="high",
        idempotency_key=key,
    )


async def test_tickets_are_filed_once_per_key_with_readable_ids(own_shop, own_engine):
    first = await file_ticket(own_shop, "call-1:ticket")
    again = await file_ticket(own_shop, "call-1:ticket")
    second = await file_ticket(own_shop, "call-2:ticket", subject="Refund approval")

    assert (first.id, second.id) == ("T-10001", "T-10002")
    assert again == first and first.status == "open"
    tickets = own_shop.helpdesk.tickets()
    assert [t["subject"] for t in tickets] == ["Espresso machine lost", "Refund approval"]
    assert tickets[0]["requester_phone"] == "+14155550104"
    assert tickets[0]["requester_email"] == "tom.becker@example.com"
    assert tickets[0]["tags"] == ["lost_parcel", "high_value"]
    assert tickets[0]["created_at"] == NOW
    assert count(own_engine, shop_tickets) == 2


async def test_racing_tickets_of_one_decision_file_one(own_shop):
    tickets = await asyncio.gather(*(file_ticket(own_shop, "same") for _ in range(5)))

    assert {t.id for t in tickets} == {"T-10001"}
    assert len(own_shop.helpdesk.tickets()) == 1


@pytest.mark.parametrize(
    ("subject", "priority", "key"), [(" ", "high", "k"), ("S", "asap", "k"), ("S", "low", "")]
)
async def test_a_ticket_that_cannot_be_filed_is_refused(own_shop, subject, priority, key):
    with pytest.raises(ValueError):
        await own_shop.helpdesk.create_ticket(
            subject,
            "b",
            requester_phone=None,
            requester_email=None,
            tags=[],
            priority=priority,
            idempotency_key=key,
        )
    assert own_shop.helpdesk.tickets() == []


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


async def test_reseeding_restores_the_designed_shop_and_keeps_texts_and_tickets(
    own_engine, own_shop
):
    first = await own_shop.messenger.send_sms(MARIA, "Hi", idempotency_key="before-reseed")
    ticket = await file_ticket(own_shop, key="before-reseed")
    await own_shop.refunds.refund("1003", "1003-1", 8900, idempotency_key="r", reason="test")
    await own_shop.returns.create("1005", ["1005-1"], "too_small", "refund", idempotency_key="k")
    await own_shop.orders.update_shipping_address("1010", BOSTON, idempotency_key="a")

    seed(own_engine, today=TODAY)
    seed(own_engine, today=TODAY + timedelta(days=1))

    assert count(own_engine, shop_orders) == 12
    assert count(own_engine, shop_customers) == 6
    assert count(own_engine, shop_coupons) == 5
    order = await own_shop.orders.order("1001")
    assert order.placed_at.date() == TODAY + timedelta(days=1 - 5)
    assert await own_shop.refunds.refunds_of("1003") == []
    assert [r.rma for r in await own_shop.returns.returns_of("1005")] == []
    assert (await own_shop.orders.order("1010")).shipping_address.city == "Cambridge"
    assert [r.line_id for r in await own_shop.refunds.refunds_of("1011")] == ["1011-1"]
    assert await own_shop.messenger.send_sms(MARIA, "Hi", idempotency_key="before-reseed") == first
    assert [t["id"] for t in own_shop.helpdesk.tickets()] == [ticket.id]


def test_seeding_is_deterministic():
    first, second = DemoShop.in_memory(today=TODAY), DemoShop.in_memory(today=TODAY)
    try:
        with first.engine.connect() as a, second.engine.connect() as b:
            for table in (shop_orders, shop_refunds, shop_returns, shop_tracking_events):
                query = select(table).order_by(*table.primary_key.columns)
                assert a.execute(query).all() == b.execute(query).all()
    finally:
        first.engine.dispose()
        second.engine.dispose()


@pytest.mark.parametrize("start", [seed, ensure_schema])
async def test_a_shop_from_an_older_version_is_rebuilt_and_keeps_its_texts(tmp_path, start):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE shop_orders (number VARCHAR(32) PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO shop_orders VALUES ('1001')")
    shop_sms.create(engine)
    shop = DemoShop(engine, clock=lambda: NOW)
    sent = await shop.messenger.send_sms(MARIA, "Hi", idempotency_key="old")
    try:
        start(engine, today=TODAY)

        assert (await shop.orders.order("1001")).shipping_address.postal_code == "94110"
        assert [m["id"] for m in shop.messenger.sent()] == [sent]
    finally:
        engine.dispose()


async def test_an_up_to_date_shop_is_left_alone_at_start_up(own_engine, own_shop):
    await own_shop.refunds.refund("1003", "1003-1", 8900, idempotency_key="k", reason="r")

    assert ensure_schema(own_engine, today=TODAY) is False
    assert len(await own_shop.refunds.refunds_of("1003")) == 1


async def test_the_demo_shop_implements_the_protocols():
    shop = DemoShop.in_memory(today=TODAY)
    try:
        assert isinstance(shop.orders, OrderSource)
        assert isinstance(shop.tracking, Tracking)
        assert isinstance(shop.deliveries, Deliveries)
        assert isinstance(shop.coupons, Coupons)
        assert isinstance(shop.returns, Returns)
        assert isinstance(shop.refunds, Refunds)
        assert isinstance(shop.messenger, Messenger)
        assert isinstance(shop.helpdesk, Helpdesk)
        # Queries run in worker threads: the in-memory database must be shared with them.
        assert (await shop.orders.order("1009")).delivered_at.date() == days(-1)
    finally:
        shop.engine.dispose()


async def test_the_shop_keeps_its_promises_on_postgresql(pg_url):
    engine = make_engine(pg_url)
    try:
        seed(engine, today=TODAY)
        seed(engine, today=TODAY)  # reseeding over itself
        shop = DemoShop(engine, clock=lambda: NOW)

        refunds = await asyncio.gather(
            *(
                shop.refunds.refund("1003", "1003-1", 8900, idempotency_key=f"k{i}", reason="r")
                for i in range(5)
            ),
            return_exceptions=True,
        )
        returns = await asyncio.gather(
            *(
                shop.returns.create("1005", ["1005-1"], "r", "refund", idempotency_key=f"k{i}")
                for i in range(5)
            ),
            return_exceptions=True,
        )

        assert sum(not isinstance(r, Exception) for r in refunds) == 1
        assert {r.code for r in refunds if isinstance(r, ProviderError)} == {
            "charge_already_refunded"
        }
        assert sum(not isinstance(r, Exception) for r in returns) == 1
        (rma,) = await shop.returns.returns_of("1005")
        label = await shop.returns.label(rma.rma, idempotency_key="l")
        assert (await shop.tracking.track("USPS", label.tracking_number)) is not None
        assert (await shop.returns.returns_of("1011"))[0].status == "refunded"
        check = await shop.coupons.check("vip50", "cust_004", None)
        assert check.reason == "already_used"
        moved = await shop.orders.update_shipping_address("1010", BOSTON, idempotency_key="a")
        assert moved.shipping_address == BOSTON
        assert await shop.deliveries.reschedule("1006", days(1), idempotency_key="r") == days(1)
        assert (await shop.orders.order("1002")).placed_at == datetime(
            2025, 1, 29, 15, 0, tzinfo=UTC
        )
    finally:
        engine.dispose()
