"""Return labels: a printable 4x6 PDF, and a link only this server could have signed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.labels import (
    DEFAULT_WAREHOUSE,
    EmbeddedLabels,
    LabelMaker,
    LabelPrinter,
    render_label_pdf,
    return_tracking_number,
    verify_label_url,
)
from integrations.models import Address, Customer, Order, OrderLine, ReturnAuthorization

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
SECRET = b"label-test-secret"

AISHA = Customer("cust_003", "Aisha Patel", "+14155550103", "aisha.patel@example.com", "60614")
ORDER = Order(
    number="1005",
    customer_id=AISHA.id,
    placed_at=NOW - timedelta(days=9),
    lines=(OrderLine("AP-WOOL-SWEATER", "Wool sweater", "apparel", 6500, line_id="1005-1"),),
    fulfillment="fulfilled",
    shipping_address=Address("2150 N Halsted St", "Chicago", "IL", "60614", line2="Unit 2"),
)
RMA = ReturnAuthorization(
    rma="RMA-50013",
    order_number="1005",
    line_ids=("1005-1",),
    reason_code="wrong_size",
    resolution="exchange",
    status="authorized",
    created_at=NOW,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def labels(clock: Clock) -> EmbeddedLabels:
    return EmbeddedLabels(SECRET, "https://shop.example/", clock=clock)


def link_parts(url: str) -> tuple[str, str, str]:
    """The RMA, `expires` and `sig` of a label link, as the server's route would read them."""
    parts = urlsplit(url)
    rma = re.fullmatch(r"/labels/(.+)\.pdf", parts.path).group(1)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return rma, query["expires"], query["sig"]


async def test_a_label_is_usps_with_a_signed_link_valid_for_thirty_days(labels):
    label = await labels.make(RMA, ORDER, AISHA)

    assert label.carrier == "USPS"
    assert label.tracking_number == return_tracking_number("RMA-50013")
    assert label.expires_at == NOW + timedelta(days=30)
    assert label.url.startswith("https://shop.example/labels/RMA-50013.pdf?expires=")
    rma, expires, sig = link_parts(label.url)
    assert int(expires) == int(label.expires_at.timestamp())
    assert labels.verify(rma, expires, sig)
    assert verify_label_url(SECRET, rma, expires, sig, NOW)


async def test_a_tampered_link_is_refused(labels):
    rma, expires, sig = link_parts((await labels.make(RMA, ORDER, AISHA)).url)
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]

    assert not labels.verify(rma, expires, flipped)
    assert not labels.verify("RMA-50014", expires, sig)
    assert not labels.verify(rma, str(int(expires) + 86400), sig)
    assert not labels.verify(rma, "soon", sig)
    assert not labels.verify(rma, expires, "")
    assert not labels.verify(rma, expires, "é" * 43)
    assert not verify_label_url(b"another-secret", rma, expires, sig, NOW)


async def test_a_link_stops_working_when_it_expires(labels, clock):
    rma, expires, sig = link_parts((await labels.make(RMA, ORDER, AISHA)).url)

    clock.now = NOW + timedelta(days=30)
    assert labels.verify(rma, expires, sig)
    clock.now = NOW + timedelta(days=30, seconds=1)
    assert not labels.verify(rma, expires, sig)


def test_return_tracking_numbers_are_stable_usps_numbers():
    number = return_tracking_number("RMA-50013")

    assert re.fullmatch(r"9202[0-9]{18}", number)
    assert number == return_tracking_number("RMA-50013")
    assert number != return_tracking_number("RMA-50014")
    # USPS's mod-10 check: weights 3 and 1 from the right of the first 21 digits.
    body = [int(d) for d in number[:-1]]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    assert (total + int(number[-1])) % 10 == 0


def test_the_pdf_is_a_4x6_label_from_the_customer_to_the_warehouse(labels):
    pdf = labels.pdf(RMA, ORDER, AISHA, compress=False)

    assert pdf.startswith(b"%PDF")
    assert b"/MediaBox [ 0 0 288 432 ]" in pdf
    for text in (
        "RMA-50013",
        "USPS",
        "Order #1005",
        "AISHA PATEL",
        "2150 N HALSTED ST",
        "CHICAGO, IL 60614",
        "NORTHWIND GOODS RETURNS",
        "1200 COMMERCE WAY",
        "RENO, NV 89502",
    ):
        assert f"({text})".encode() in pdf, text
    tracking = return_tracking_number("RMA-50013")
    grouped = " ".join(tracking[i : i + 4] for i in range(0, 22, 4))
    assert f"({grouped})".encode() in pdf


def test_the_pdf_is_the_same_every_time_and_holds_no_secret(labels):
    first = labels.pdf(RMA, ORDER, AISHA, compress=False)

    assert labels.pdf(RMA, ORDER, AISHA, compress=False) == first
    assert SECRET not in first
    assert b"sig=" not in first and b"expires=" not in first
    compressed = labels.pdf(RMA, ORDER, AISHA)
    assert compressed.startswith(b"%PDF") and len(compressed) < len(first)


def test_a_long_name_still_fits_the_label():
    pdf = render_label_pdf(
        rma="RMA-50013",
        order_number="1005",
        tracking_number=return_tracking_number("RMA-50013"),
        from_name="Maximiliana Alexandra Montgomery-Wolfeschlegelsteinhausen the Third",
        ship_from=None,
        to_name="Returns",
        ship_to=DEFAULT_WAREHOUSE,
        compress=False,
    )

    assert pdf.startswith(b"%PDF") and b"(RMA-50013)" in pdf
    assert b"MAXIMILIANA" in pdf


def test_embedded_labels_make_and_print_labels(labels):
    assert isinstance(labels, LabelMaker)
    assert isinstance(labels, LabelPrinter)
    with pytest.raises(ValueError):
        EmbeddedLabels(b"", "https://shop.example")
