"""The demo shop's data: the shape of a seed and the shop docs/DESIGN.md describes (`DEMO_SHOP`).

Days are relative to the day the shop is seeded ("placed_day=-5" is five days before), so the
demo tells the same story whenever it runs. A test may seed a shop of its own, or `DEMO_SHOP`
with a change (`dataclasses.replace`), through the same `seed()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations.demo.carriers import WAREHOUSE
from integrations.models import Address, ShipmentStatus

SUPPORT_LINE = "+18005550100"
"""The demo shop's support phone number (E.164)."""


@dataclass(frozen=True)
class Scan:
    """A carrier scan: `day` relative to the seed day, at `hhmm` UTC."""

    day: int
    hhmm: str
    status: ShipmentStatus
    description: str
    location: str


@dataclass(frozen=True)
class ShipmentSeed:
    """A parcel and its scans; it shipped at its first moving scan, arrived at "delivered"."""

    order: str
    carrier: str
    tracking_number: str
    eta_day: int | None
    scans: tuple[Scan, ...]
    direction: str = "outbound"


@dataclass(frozen=True)
class LineSeed:
    """The one line of a seeded order."""

    sku: str
    name: str
    category: str
    price_cents: int
    final_sale: bool = False
    variant: str | None = None


@dataclass(frozen=True)
class OrderSeed:
    """An order of one line, placed `placed_day` days from the seed day."""

    number: str
    customer_id: str
    placed_day: int
    line: LineSeed
    fulfillment: str = "fulfilled"


@dataclass(frozen=True)
class ReturnSeed:
    """A return already under way (and, with `refunded_day`, refunded) when the shop opens."""

    rma: str
    order: str
    line_id: str
    reason_code: str
    status: str
    created_day: int
    label_tracking_number: str  # its scans say when the label was used and the parcel received
    refunded_day: int | None = None
    refund_cents: int | None = None


@dataclass(frozen=True)
class CouponSeed:
    """A coupon code and who has used it already."""

    code: str
    kind: str
    value: int
    min_subtotal_cents: int = 0
    first_order_only: bool = False
    single_use: bool = False
    expired_last_month: bool = False
    used_by: tuple[tuple[str, str, int], ...] = field(default_factory=tuple)  # customer, order, day


@dataclass(frozen=True)
class CustomerSeed:
    """A customer, their home (where their orders go) and how they pay, as the agent says it."""

    id: str
    name: str
    phone: str  # E.164
    email: str
    zip: str
    address: Address
    payment_method: str


@dataclass(frozen=True)
class ShopSeed:
    """Everything a seed writes; days are relative to the day it runs."""

    customers: tuple[CustomerSeed, ...]
    orders: tuple[OrderSeed, ...]
    shipments: tuple[ShipmentSeed, ...] = ()
    returns: tuple[ReturnSeed, ...] = ()
    coupons: tuple[CouponSeed, ...] = ()
    stock: tuple[tuple[str, str, int], ...] = ()  # sku, variant, units on hand
    placed_at: str = "15:00"  # the time of day orders were placed and coupons used


_CUSTOMERS = (
    # Each customer's orders go to their home, in the ZIP code they give on the phone, and are
    # paid the way the agent says it.
    CustomerSeed(
        "cust_001", "Maria Lopez", "+14155550101", "maria.lopez@example.com", "94110",
        Address("742 Valencia St", "San Francisco", "CA", "94110", line2="Apt 3"),
        "your Visa ending in 4242",
    ),
    CustomerSeed(
        "cust_002", "James Chen", "+14155550102", "james.chen@example.com", "10001",
        Address("350 W 31st St", "New York", "NY", "10001", line2="Apt 12B"),
        "your Mastercard ending in 4444",
    ),
    CustomerSeed(
        "cust_003", "Aisha Patel", "+14155550103", "aisha.patel@example.com", "60614",
        Address("2150 N Halsted St", "Chicago", "IL", "60614", line2="Unit 2"),
        "your American Express ending in 8431",
    ),
    CustomerSeed(
        "cust_004", "Tom Becker", "+14155550104", "tom.becker@example.com", "73301",
        Address("1100 E 6th St", "Austin", "TX", "73301"),
        "your Visa ending in 1881",
    ),
    CustomerSeed(
        "cust_005", "Lena Novak", "+14155550105", "lena.novak@example.com", "02139",
        Address("88 Pearl St", "Cambridge", "MA", "02139", line2="Apt 4"),
        "your Discover ending in 1117",
    ),
    CustomerSeed(
        "cust_006", "Omar Haddad", "+14155550106", "omar.haddad@example.com", "98101",
        Address("1420 5th Ave", "Seattle", "WA", "98101", line2="Apt 1807"),
        "your Mastercard ending in 5100",
    ),
)  # fmt: skip

_ORDERS = (
    OrderSeed("1001", "cust_001", -5, LineSeed("AP-LINEN-SHIRT", "Linen shirt", "apparel", 4800)),
    OrderSeed(
        "1002",
        "cust_001",
        -40,
        LineSeed("AP-TRAIL-SHOE", "Trail running shoes", "apparel", 12000),
    ),
    OrderSeed(
        "1003",
        "cust_002",
        -12,
        LineSeed("EL-EARBUDS", "Wireless earbuds", "electronics", 8900),
    ),
    OrderSeed(
        "1004",
        "cust_002",
        -10,
        LineSeed("AP-RAIN-JACKET", "Clearance rain jacket", "apparel", 3000, final_sale=True),
    ),
    OrderSeed(
        "1005",
        "cust_003",
        -9,
        LineSeed("AP-WOOL-SWEATER", "Wool sweater", "apparel", 6500, variant="M"),
    ),
    OrderSeed("1006", "cust_003", -8, LineSeed("HO-DESK-LAMP", "Desk lamp", "home", 4000)),
    OrderSeed(
        "1007",
        "cust_004",
        -20,
        LineSeed("HO-ESPRESSO", "Espresso machine", "home", 49900),
    ),
    OrderSeed("1008", "cust_004", -6, LineSeed("HO-GRINDER", "Coffee grinder", "home", 15000)),
    OrderSeed("1009", "cust_005", -7, LineSeed("HO-VASE", "Ceramic vase", "home", 5500)),
    OrderSeed(
        "1010",
        "cust_005",
        -1,
        LineSeed("HO-YOGA-MAT", "Yoga mat", "home", 3500),
        fulfillment="unfulfilled",
    ),
    OrderSeed(
        "1011",
        "cust_006",
        -25,
        LineSeed("EL-LAPTOP-STAND", "Laptop stand", "electronics", 8000),
        fulfillment="refunded",
    ),
    OrderSeed(
        "1012",
        "cust_006",
        -15,
        LineSeed("EL-STUDIO-HEADPHONES", "Studio headphones", "electronics", 25000),
    ),
)

_S = ShipmentStatus

_SHIPMENTS = (
    ShipmentSeed(
        "1001",
        "UPS",
        "1ZA8V2R70348215374",
        eta_day=1,
        scans=(
            Scan(-5, "21:10", _S.PRE_TRANSIT, "Shipper created a label", WAREHOUSE),
            Scan(-4, "19:40", _S.IN_TRANSIT, "Pickup Scan", WAREHOUSE),
            Scan(-4, "23:55", _S.IN_TRANSIT, "Departed from Facility", WAREHOUSE),
            Scan(-3, "06:20", _S.IN_TRANSIT, "Arrived at Facility", "Sacramento, CA, US"),
            Scan(-2, "04:15", _S.IN_TRANSIT, "Departed from Facility", "Sacramento, CA, US"),
            Scan(-1, "22:30", _S.IN_TRANSIT, "Arrived at Facility", "San Pablo, CA, US"),
        ),
    ),
    ShipmentSeed(
        "1002",
        "USPS",
        "9400111899223810456722",
        eta_day=-35,
        scans=(
            Scan(-40, "20:05", _S.PRE_TRANSIT, "Shipping Label Created", WAREHOUSE),
            Scan(-39, "17:30", _S.IN_TRANSIT, "USPS in possession of item", WAREHOUSE),
            Scan(
                -37, "03:12", _S.IN_TRANSIT, "Arrived at USPS Regional Facility", "Oakland, CA, US"
            ),
            Scan(-35, "08:05", _S.OUT_FOR_DELIVERY, "Out for Delivery", "San Francisco, CA, US"),
            Scan(-35, "13:42", _S.DELIVERED, "Delivered, In/At Mailbox", "San Francisco, CA, US"),
        ),
    ),
    ShipmentSeed(
        "1003",
        "FedEx",
        "774381952601",
        eta_day=-8,
        scans=(
            Scan(-12, "19:45", _S.PRE_TRANSIT, "Shipment information sent to FedEx", WAREHOUSE),
            Scan(-11, "18:20", _S.IN_TRANSIT, "Picked up", WAREHOUSE),
            Scan(-10, "02:50", _S.IN_TRANSIT, "Departed FedEx hub", "Memphis, TN, US"),
            Scan(
                -8,
                "07:35",
                _S.OUT_FOR_DELIVERY,
                "On FedEx vehicle for delivery",
                "New York, NY, US",
            ),
            Scan(-8, "15:10", _S.DELIVERED, "Delivered, left at front door", "New York, NY, US"),
        ),
    ),
    ShipmentSeed(
        "1004",
        "UPS",
        "1ZA8V2R70351930460",
        eta_day=-6,
        scans=(
            Scan(-10, "20:30", _S.PRE_TRANSIT, "Shipper created a label", WAREHOUSE),
            Scan(-9, "19:05", _S.IN_TRANSIT, "Pickup Scan", WAREHOUSE),
            Scan(-7, "11:40", _S.IN_TRANSIT, "Arrived at Facility", "Secaucus, NJ, US"),
            Scan(-6, "08:15", _S.OUT_FOR_DELIVERY, "Out For Delivery Today", "New York, NY, US"),
            Scan(-6, "12:25", _S.DELIVERED, "Delivered, front desk", "New York, NY, US"),
        ),
    ),
    ShipmentSeed(
        "1005",
        "USPS",
        "9400111899223844178300",
        eta_day=-3,
        scans=(
            Scan(-8, "18:50", _S.PRE_TRANSIT, "Shipping Label Created", WAREHOUSE),
            Scan(-7, "17:15", _S.IN_TRANSIT, "USPS in possession of item", WAREHOUSE),
            Scan(
                -5, "04:40", _S.IN_TRANSIT, "Arrived at USPS Regional Facility", "Chicago, IL, US"
            ),
            Scan(-3, "08:30", _S.OUT_FOR_DELIVERY, "Out for Delivery", "Chicago, IL, US"),
            Scan(-3, "14:05", _S.DELIVERED, "Delivered, Front Door/Porch", "Chicago, IL, US"),
        ),
    ),
    ShipmentSeed(
        "1006",
        "FedEx",
        "774520186370",
        eta_day=1,
        scans=(
            Scan(-7, "20:15", _S.PRE_TRANSIT, "Shipment information sent to FedEx", WAREHOUSE),
            Scan(-6, "18:35", _S.IN_TRANSIT, "Picked up", WAREHOUSE),
            Scan(-5, "03:05", _S.IN_TRANSIT, "Departed FedEx hub", "Memphis, TN, US"),
            Scan(-2, "09:50", _S.IN_TRANSIT, "At local FedEx facility", "Chicago, IL, US"),
            Scan(
                -1, "08:10", _S.OUT_FOR_DELIVERY, "On FedEx vehicle for delivery", "Chicago, IL, US"
            ),
            Scan(
                -1,
                "14:35",
                _S.FAILED_ATTEMPT,
                "Delivery attempted: customer not available. Next attempt next business day",
                "Chicago, IL, US",
            ),
        ),
    ),
    ShipmentSeed(
        "1007",
        "UPS",
        "1ZA8V2R70366307197",
        eta_day=-13,  # the carrier's original promise, long past
        scans=(
            Scan(-19, "20:00", _S.PRE_TRANSIT, "Shipper created a label", WAREHOUSE),
            Scan(-18, "18:10", _S.IN_TRANSIT, "Pickup Scan", WAREHOUSE),
            Scan(-18, "23:40", _S.IN_TRANSIT, "Departed from Facility", WAREHOUSE),
            Scan(-16, "05:25", _S.IN_TRANSIT, "Arrived at Facility", "Salt Lake City, UT, US"),
            Scan(-13, "21:15", _S.IN_TRANSIT, "Arrived at Facility", "Oklahoma City, OK, US"),
            # At midnight UTC, so "nine days without a scan" holds at any hour of the seed day.
            Scan(-9, "00:00", _S.IN_TRANSIT, "Departed from Facility", "Oklahoma City, OK, US"),
        ),
    ),
    ShipmentSeed(
        "1008",
        "USPS",
        "9400111899223866209549",
        eta_day=None,  # no promise while customs hold it
        scans=(
            Scan(-6, "16:20", _S.PRE_TRANSIT, "Shipping Label Created", "Milan, IT"),
            Scan(-5, "10:05", _S.IN_TRANSIT, "Accepted at origin", "Milan, IT"),
            Scan(-4, "22:40", _S.IN_TRANSIT, "Departed origin country", "Milan, IT"),
            Scan(
                -3,
                "17:55",
                _S.IN_TRANSIT,
                "Arrived at USPS International Service Center",
                "New York, NY, US",
            ),
            Scan(-2, "09:30", _S.DELAYED, "Held at customs", "New York, NY, US"),
        ),
    ),
    ShipmentSeed(
        "1009",
        "UPS",
        "1ZA8V2R70377452081",
        eta_day=-1,
        scans=(
            Scan(-6, "21:00", _S.PRE_TRANSIT, "Shipper created a label", WAREHOUSE),
            Scan(-5, "18:45", _S.IN_TRANSIT, "Pickup Scan", WAREHOUSE),
            Scan(-3, "13:20", _S.IN_TRANSIT, "Arrived at Facility", "Chelsea, MA, US"),
            Scan(-1, "08:40", _S.OUT_FOR_DELIVERY, "Out For Delivery Today", "Cambridge, MA, US"),
            Scan(-1, "14:00", _S.DELIVERED, "Delivered, front porch", "Cambridge, MA, US"),
        ),
    ),
    ShipmentSeed(
        "1011",
        "FedEx",
        "774139605826",
        eta_day=-21,
        scans=(
            Scan(-25, "19:30", _S.PRE_TRANSIT, "Shipment information sent to FedEx", WAREHOUSE),
            Scan(-24, "18:00", _S.IN_TRANSIT, "Picked up", WAREHOUSE),
            Scan(
                -21,
                "07:50",
                _S.OUT_FOR_DELIVERY,
                "On FedEx vehicle for delivery",
                "Seattle, WA, US",
            ),
            Scan(-21, "11:20", _S.DELIVERED, "Delivered, left at front door", "Seattle, WA, US"),
        ),
    ),
    ShipmentSeed(
        "1011",
        "USPS",
        "9420111899223855031162",
        eta_day=-3,
        direction="return",
        scans=(
            Scan(-10, "16:00", _S.PRE_TRANSIT, "Shipping Label Created", "Seattle, WA, US"),
            Scan(-8, "12:35", _S.IN_TRANSIT, "USPS in possession of item", "Seattle, WA, US"),
            Scan(-3, "10:15", _S.DELIVERED, "Delivered, Dock", WAREHOUSE),
        ),
    ),
    ShipmentSeed(
        "1012",
        "UPS",
        "1ZA8V2R70326184707",
        eta_day=-11,
        scans=(
            Scan(-15, "20:20", _S.PRE_TRANSIT, "Shipper created a label", WAREHOUSE),
            Scan(-14, "18:30", _S.IN_TRANSIT, "Pickup Scan", WAREHOUSE),
            Scan(-11, "09:05", _S.OUT_FOR_DELIVERY, "Out For Delivery Today", "Seattle, WA, US"),
            Scan(-11, "15:45", _S.DELIVERED, "Delivered, front door", "Seattle, WA, US"),
        ),
    ),
    ShipmentSeed(
        "1012",
        "UPS",
        "1ZA8V2R79055703811",
        eta_day=2,
        direction="return",
        scans=(
            Scan(-3, "17:10", _S.PRE_TRANSIT, "Shipper created a label", "Seattle, WA, US"),
            Scan(-2, "12:50", _S.IN_TRANSIT, "Drop-Off at The UPS Store", "Seattle, WA, US"),
            Scan(-1, "23:05", _S.IN_TRANSIT, "Departed from Facility", "Seattle, WA, US"),
        ),
    ),
)

_RETURNS = (
    ReturnSeed(
        rma="RMA-50011",
        order="1011",
        line_id="1011-1",
        reason_code="no_longer_needed",
        status="refunded",
        created_day=-10,
        label_tracking_number="9420111899223855031162",
        refunded_day=-2,
        refund_cents=8000,
    ),
    ReturnSeed(
        rma="RMA-50012",
        order="1012",
        line_id="1012-1",
        reason_code="not_as_described",
        status="in_transit",
        created_day=-3,
        label_tracking_number="1ZA8V2R79055703811",
    ),
)

_COUPONS = (
    CouponSeed("SAVE20", "percent", 20, min_subtotal_cents=5000),
    CouponSeed("WELCOME10", "percent", 10, first_order_only=True),
    CouponSeed("SUMMER15", "percent", 15, expired_last_month=True),
    CouponSeed("FREESHIP", "free_shipping", 0, min_subtotal_cents=3500),
    CouponSeed("VIP50", "amount", 5000, single_use=True, used_by=(("cust_004", "1007", -20),)),
)

# Sizes of the wool sweater in stock, so an exchange for 1005 has somewhere to go.
_STOCK = (
    ("AP-WOOL-SWEATER", "S", 4),
    ("AP-WOOL-SWEATER", "M", 2),
    ("AP-WOOL-SWEATER", "L", 3),
    ("AP-WOOL-SWEATER", "XL", 0),
)


DEMO_SHOP = ShopSeed(
    customers=_CUSTOMERS,
    orders=_ORDERS,
    shipments=_SHIPMENTS,
    returns=_RETURNS,
    coupons=_COUPONS,
    stock=_STOCK,
)
"""The demo shop of docs/DESIGN.md."""
