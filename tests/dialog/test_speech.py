"""Words for the ear: numbers, money, dates, carriers, product names and order status."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialog.speech import (
    StatusKind,
    describe_order,
    product_name,
    say_carrier,
    say_date,
    say_days,
    say_items,
    say_money,
    say_number,
    say_order_number,
    say_since,
)
from integrations.models import Order, OrderLine, Shipment, ShipmentStatus, TrackingEvent

NOW = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()


def days(n: float) -> datetime:
    return NOW + timedelta(days=n)


def order(*names: str, fulfillment="fulfilled", carrier="UPS", quantity=1, **kw) -> Order:
    lines = tuple(
        OrderLine(sku=n, name=n, category="home", price_cents=1000, quantity=quantity)
        for n in names
    )
    shipped = fulfillment != "unfulfilled"
    kw.setdefault("shipped_at", days(-4) if shipped else None)
    return Order(
        number="1001",
        customer_id="c1",
        placed_at=days(-5),
        lines=lines,
        fulfillment=fulfillment,
        carrier=carrier if shipped else None,
        tracking_number="1Z999" if shipped else None,
        **kw,
    )


def shipment(status: ShipmentStatus, *scans: tuple[float, ShipmentStatus], **kw) -> Shipment:
    kw.setdefault("carrier", "UPS")
    kw.setdefault("detail", "")
    events = tuple(TrackingEvent(at=days(d), status=s, description="") for d, s in scans)
    return Shipment(tracking_number="1Z999", status=status, fetched_at=NOW, events=events, **kw)


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("1001", "ten oh one"),
        ("1003", "ten oh three"),
        ("1010", "ten ten"),
        ("1012", "ten twelve"),
        ("1045", "ten forty-five"),
        ("1100", "eleven hundred"),
        ("1000", "one thousand"),
        ("2000", "two thousand"),
        ("2005", "twenty oh five"),
        ("9999", "ninety-nine ninety-nine"),
        ("123", "one two three"),
        ("0101", "oh one oh one"),
        ("12345", "one two three four five"),
    ],
)
def test_say_order_number(number, words):
    assert say_order_number(number) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (48, "forty-eight"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (999, "nine hundred ninety-nine"),
        (1001, "one thousand one"),
        (25_000, "twenty-five thousand"),
        (2_000_003, "two million three"),
        (-5, "minus five"),
    ],
)
def test_say_number(n, words):
    assert say_number(n) == words


@pytest.mark.parametrize(
    ("cents", "words"),
    [
        (4800, "forty-eight dollars"),
        (4850, "forty-eight dollars and fifty cents"),
        (100, "one dollar"),
        (101, "one dollar and one cent"),
        (99, "ninety-nine cents"),
        (0, "zero dollars"),
        (49_900, "four hundred ninety-nine dollars"),
        (-1500, "minus fifteen dollars"),
    ],
)
def test_say_money(cents, words):
    assert say_money(cents) == words


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (0, "today"),
        (1, "tomorrow"),
        (-1, "yesterday"),
        (6, "on Tuesday the 24th"),
        (-4, "on Saturday the 14th"),
        (3, "on Saturday the 21st"),
        (4, "on Sunday the 22nd"),
        (5, "on Monday the 23rd"),
        (-7, "on Wednesday the 11th"),
        (-30, "on Monday, May 19th"),
        (16, "on Friday, July 4th"),
    ],
)
def test_say_date(offset, words):
    assert say_date(TODAY + timedelta(days=offset), TODAY) == words


@pytest.mark.parametrize(
    ("offset", "words"),
    [(0, "earlier today"), (-1, "yesterday"), (-5, "Friday"), (-9, "Monday the 9th")],
)
def test_say_since(offset, words):
    assert say_since(TODAY + timedelta(days=offset), TODAY) == words


def test_say_days():
    assert say_days(9) == "nine days"
    assert say_days(1) == "one day"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("UPS", "UPS"),
        ("ups", "UPS"),
        ("USPS", "USPS"),
        ("FedEx", "FedEx"),
        ("fedex", "FedEx"),
        ("FEDEX", "FedEx"),
        ("canada_post", "Canada Post"),
        ("Acme Couriers", "Acme Couriers"),
    ],
)
def test_say_carrier(code, name):
    assert say_carrier(code) == name


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Linen shirt", "linen shirt"),
        ("Wireless Earbuds", "wireless earbuds"),
        ("Wool sweater size M", "wool sweater size M"),
        ("AirPods Pro", "AirPods pro"),
        ("USB-C cable", "USB-C cable"),
        ("iPhone case", "iPhone case"),
    ],
)
def test_product_name(name, said):
    assert product_name(name) == said


def test_say_items():
    assert say_items(order("Linen shirt")) == "linen shirt"
    assert say_items(order("Linen shirt", "Yoga mat")) == "linen shirt and one other item"
    assert say_items(order("Linen shirt", "Yoga mat", "Desk lamp")) == (
        "linen shirt and two other items"
    )
    assert say_items(order("Linen shirt", quantity=2)) == "two linen shirts"


def test_in_transit_with_eta():
    report = describe_order(
        order("Linen shirt"),
        shipment(
            ShipmentStatus.IN_TRANSIT, (-1, ShipmentStatus.IN_TRANSIT), eta=TODAY + timedelta(1)
        ),
        NOW,
    )
    assert report.kind == StatusKind.IN_TRANSIT
    assert report.text == "Your linen shirt shipped with UPS and should arrive tomorrow."


def test_in_transit_past_eta_is_running_late():
    report = describe_order(
        order("Linen shirt"),
        shipment(
            ShipmentStatus.IN_TRANSIT,
            (-1, ShipmentStatus.IN_TRANSIT),
            eta=TODAY - timedelta(2),
        ),
        NOW,
    )
    assert "running late" in report.text
    assert "last scanned it yesterday" in report.text


def test_delivered_agrees_with_plural_items():
    report = describe_order(order("Wireless earbuds", delivered_at=days(-4)), None, NOW)
    assert report.kind == StatusKind.DELIVERED
    assert report.text == "Your wireless earbuds were delivered on Saturday the 14th."


def test_delivered_from_the_carrier_scan():
    report = describe_order(
        order("Ceramic vase"),
        shipment(ShipmentStatus.DELIVERED, (-1, ShipmentStatus.DELIVERED)),
        NOW,
    )
    assert report.text == "Your ceramic vase was delivered yesterday."


def test_failed_attempt():
    report = describe_order(
        order("Desk lamp", carrier="fedex"),
        shipment(
            ShipmentStatus.FAILED_ATTEMPT,
            (-2, ShipmentStatus.IN_TRANSIT),
            (-1, ShipmentStatus.FAILED_ATTEMPT),
            carrier="fedex",
            detail="Delivery attempted - no one available to sign",
        ),
        NOW,
    )
    assert report.kind == StatusKind.FAILED_ATTEMPT
    assert report.text.startswith(
        "FedEx tried to deliver your desk lamp yesterday, but nobody was available to sign for it."
    )
    assert "tries again on the next business day" in report.text


def test_failed_attempt_with_a_new_date():
    report = describe_order(
        order("Desk lamp", carrier="FedEx"),
        shipment(
            ShipmentStatus.FAILED_ATTEMPT,
            (-1, ShipmentStatus.FAILED_ATTEMPT),
            carrier="FedEx",
            detail="Recipient not home",
            eta=TODAY + timedelta(1),
        ),
        NOW,
    )
    assert report.text.endswith("FedEx will try again tomorrow.")


def test_delayed_at_customs():
    report = describe_order(
        order("Coffee grinder", carrier="USPS"),
        shipment(
            ShipmentStatus.DELAYED,
            (-4, ShipmentStatus.IN_TRANSIT),
            (-5, ShipmentStatus.DELAYED),  # an old delay that was resolved
            (-2, ShipmentStatus.DELAYED),
            (-1, ShipmentStatus.DELAYED),
            carrier="USPS",
            detail="Held at customs.",
        ),
        NOW,
    )
    assert report.kind == StatusKind.DELAYED
    assert report.text == (
        "Your coffee grinder is delayed: USPS says it has been held at customs since Monday."
    )


def test_no_scan_for_a_week_is_honestly_lost():
    espresso = order("Espresso machine", shipped_at=days(-18))
    report = describe_order(
        espresso,
        shipment(
            ShipmentStatus.IN_TRANSIT,
            (-18, ShipmentStatus.PRE_TRANSIT),
            (-9, ShipmentStatus.IN_TRANSIT),
        ),
        NOW,
    )
    assert report.kind == StatusKind.LOST
    assert report.days_without_scan == 9
    assert report.text == (
        "Your espresso machine shipped with UPS on Saturday, May 31st, but the carrier hasn't "
        "scanned it for nine days. That usually means it's lost."
    )


def test_not_shipped():
    report = describe_order(order("Yoga mat", fulfillment="unfulfilled"), None, NOW)
    assert report.kind == StatusKind.NOT_SHIPPED
    assert report.text == (
        "Your yoga mat hasn't shipped yet. Orders usually ship within two business days."
    )


@pytest.mark.parametrize(
    ("fulfillment", "kind", "words"),
    [
        ("refunded", StatusKind.REFUNDED, "refunded"),
        ("returned", StatusKind.RETURNED, "returned"),
        ("cancelled", StatusKind.CANCELLED, "cancelled"),
    ],
)
def test_closed_orders_are_said_plainly(fulfillment, kind, words):
    report = describe_order(order("Laptop stand", fulfillment=fulfillment), None, NOW)
    assert report.kind == kind
    assert words in report.text
    assert "laptop stand" in report.text


def test_tracking_unavailable_is_admitted():
    report = describe_order(order("Linen shirt"), None, NOW)
    assert report.kind == StatusKind.NO_TRACKING
    assert "can't get the latest tracking" in report.text


def test_exception_is_a_problem():
    report = describe_order(
        order("Linen shirt"),
        shipment(ShipmentStatus.EXCEPTION, detail="Package damaged in transit"),
        NOW,
    )
    assert report.kind == StatusKind.PROBLEM
    assert report.text == "UPS reports a problem with your linen shirt: package damaged in transit."


def test_dates_follow_the_shop_time_zone():
    late_evening = datetime(2025, 6, 19, 2, 0, tzinfo=UTC)  # still the 18th in California
    pacific = timezone(timedelta(hours=-7))
    report = describe_order(
        order("Linen shirt", delivered_at=datetime(2025, 6, 18, 1, 0, tzinfo=UTC)),
        None,
        late_evening,
        tz=pacific,
    )
    assert report.text == "Your linen shirt was delivered yesterday."
