"""The embedded demo shop: customers, orders, shipments, coupons, returns and SMS in SQL.

Everything the agent needs to run without any provider: SQLAlchemy Core tables on their own
`metadata` (names prefixed `shop_`, portable to SQLite and PostgreSQL), `seed()` which writes the
demo data of DESIGN.md ("The demo shop") with dates relative to the day it runs, and classes
implementing the protocols of `integrations.protocols` over a sync `Engine`. Each async method
runs its query in a worker thread so the event loop keeps streaming audio.

Datetimes are UTC and timezone-aware on the way in and out, whatever the database returns.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from uuid import uuid4

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from integrations.models import Customer, Order, OrderLine, Shipment, ShipmentStatus, TrackingEvent

__all__ = [
    "SUPPORT_LINE",
    "DemoMessenger",
    "DemoOrders",
    "DemoShop",
    "DemoTracking",
    "metadata",
    "normalize_phone",
    "seed",
    "shop_coupon_uses",
    "shop_coupons",
    "shop_customers",
    "shop_order_lines",
    "shop_orders",
    "shop_returns",
    "shop_shipments",
    "shop_sms",
    "shop_stock",
    "shop_tracking_events",
    "tracking_url",
]

SUPPORT_LINE = "+18005550100"
"""The demo shop's support phone number (E.164)."""

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

metadata = MetaData()
"""The demo shop's tables, kept apart from the store's so each can be created on its own."""

_UtcDateTime = DateTime(timezone=True)

shop_customers = Table(
    "shop_customers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("phone", String(16), nullable=False, unique=True),  # E.164
    Column("email", String(254), nullable=False, unique=True),  # stored lower-case
    Column("zip", String(10), nullable=False),
)

shop_orders = Table(
    "shop_orders",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("customer_id", ForeignKey("shop_customers.id"), nullable=False, index=True),
    Column("placed_at", _UtcDateTime, nullable=False),
    Column("fulfillment", String(16), nullable=False),
    Column("note", Text, nullable=False, default=""),
    CheckConstraint(
        "fulfillment IN ('unfulfilled', 'fulfilled', 'returned', 'refunded', 'cancelled')",
        name="ck_shop_orders_fulfillment",
    ),
)

shop_order_lines = Table(
    "shop_order_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("quantity", Integer, nullable=False, default=1),
    Column("final_sale", Boolean, nullable=False, default=False),
    Column("variant", String(64), nullable=True),
    CheckConstraint("price_cents >= 0 AND quantity > 0", name="ck_shop_order_lines_amounts"),
)

shop_shipments = Table(
    "shop_shipments",
    metadata,
    Column("tracking_number", String(40), primary_key=True),
    Column("carrier", String(16), nullable=False),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("direction", String(8), nullable=False),  # "outbound" to the customer, or "return"
    Column("shipped_at", _UtcDateTime, nullable=True),
    Column("delivered_at", _UtcDateTime, nullable=True),
    Column("eta", Date, nullable=True),
    CheckConstraint("direction IN ('outbound', 'return')", name="ck_shop_shipments_direction"),
)

shop_tracking_events = Table(
    "shop_tracking_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "tracking_number",
        ForeignKey("shop_shipments.tracking_number"),
        nullable=False,
        index=True,
    ),
    Column("at", _UtcDateTime, nullable=False),
    Column("status", String(24), nullable=False),  # a ShipmentStatus value
    Column("description", String(300), nullable=False),
    Column("location", String(120), nullable=False, default=""),
)

shop_coupons = Table(
    "shop_coupons",
    metadata,
    Column("code", String(32), primary_key=True),  # stored upper-case
    Column("kind", String(16), nullable=False),
    Column("value", Integer, nullable=False),  # percent for "percent", cents for "amount"
    Column("min_subtotal_cents", Integer, nullable=False, default=0),
    Column("first_order_only", Boolean, nullable=False, default=False),
    Column("single_use", Boolean, nullable=False, default=False),
    Column("expires_at", _UtcDateTime, nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    CheckConstraint("kind IN ('percent', 'amount', 'free_shipping')", name="ck_shop_coupons_kind"),
)

shop_coupon_uses = Table(
    "shop_coupon_uses",
    metadata,
    Column("code", ForeignKey("shop_coupons.code"), nullable=False),
    Column("customer_id", ForeignKey("shop_customers.id"), nullable=False),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=True),
    Column("used_at", _UtcDateTime, nullable=False),
    PrimaryKeyConstraint("code", "customer_id"),
)

shop_returns = Table(
    "shop_returns",
    metadata,
    Column("rma", String(32), primary_key=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("sku", String(64), nullable=False),
    Column("reason", String(200), nullable=False),
    # "label_created" | "in_transit_to_warehouse" | "received" | "refunded"
    Column("status", String(32), nullable=False),
    Column("created_at", _UtcDateTime, nullable=False),
    Column(
        "label_tracking_number",
        ForeignKey("shop_shipments.tracking_number"),
        nullable=True,
    ),
    Column("label_used_at", _UtcDateTime, nullable=True),
    Column("received_at", _UtcDateTime, nullable=True),
    Column("refunded_at", _UtcDateTime, nullable=True),
    Column("refund_cents", Integer, nullable=True),
    Column("refund_method", String(32), nullable=True),  # "original_payment" | "store_credit"
)

shop_stock = Table(
    "shop_stock",
    metadata,
    Column("sku", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("on_hand", Integer, nullable=False),
    PrimaryKeyConstraint("sku", "variant"),
)

shop_sms = Table(
    "shop_sms",
    metadata,
    # Orders texts sent within one clock tick; `id` is what the rest of the world sees.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(34), nullable=False, unique=True),  # "SM" + 32 hex, like a Twilio SID
    Column("to", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
)

# The outbox of texts already sent survives a reseed: a demo shop must never text twice.
_SEEDED_TABLES = tuple(t for t in metadata.sorted_tables if t is not shop_sms)


def _to_db(value: datetime) -> datetime:
    """UTC for storage: SQLite keeps no offset, so everything written must already be UTC."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: demo shop datetimes must be timezone-aware")
    return value.astimezone(UTC)


def _from_db(value: datetime) -> datetime:
    """Aware UTC from storage: SQLite hands back naive values, PostgreSQL the session's zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _from_db_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _from_db(value)


# --------------------------------------------------------------------------------------------
# Phone numbers and carriers
# --------------------------------------------------------------------------------------------

_NANP_REGIONS = frozenset({"US", "CA"})
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_DIGITS = re.compile(r"[0-9]+")


def normalize_phone(raw: str, default_region: str = "US") -> str | None:
    """The E.164 form of a phone number as people write it, or None if it cannot be one.

    A number without a country code is read in `default_region`; only the North American
    numbering plan ("US", "CA") is known. "+14155550101", "4155550101", "(415) 555-0101" and
    "1-415-555-0101" all give "+14155550101". Numbers written with "+" or the "011" exit code
    keep their country code.
    """
    region = default_region.upper()
    if region not in _NANP_REGIONS:
        raise ValueError(f"unsupported default_region {default_region!r}; known: US, CA")
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    compact = _PHONE_SEPARATORS.sub("", text)
    if compact.startswith("+"):
        return _international(compact[1:])
    if compact.startswith("011"):
        return _international(compact[3:])
    if not _DIGITS.fullmatch(compact):
        return None
    if len(compact) == 11 and compact.startswith("1"):
        compact = compact[1:]
    return _nanp(compact)


def _international(digits: str) -> str | None:
    if not _DIGITS.fullmatch(digits) or digits.startswith("0"):
        return None
    if digits.startswith("1"):
        return _nanp(digits[1:])
    # E.164 allows at most 15 digits; no country's numbers are shorter than about 8 in full.
    return f"+{digits}" if 8 <= len(digits) <= 15 else None


def _nanp(national: str) -> str | None:
    """+1 and the ten digits, if they form a NANP number (area code and exchange start 2-9)."""
    if len(national) != 10 or national[0] in "01" or national[3] in "01":
        return None
    return f"+1{national}"


_TRACKING_URLS = {
    "ups": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
}


def _carrier_key(carrier: str) -> str:
    return re.sub(r"[^a-z]", "", carrier.lower())


def tracking_url(carrier: str, tracking_number: str) -> str:
    """The carrier's public tracking page for a number, or "" for a carrier we don't know."""
    pattern = _TRACKING_URLS.get(_carrier_key(carrier))
    return pattern.format(quote(tracking_number, safe="")) if pattern else ""


def _compact_tracking_number(raw: str) -> str:
    """Tracking numbers are read back with spaces and in any case; carriers ignore both."""
    return re.sub(r"[\s-]", "", raw).upper()


# --------------------------------------------------------------------------------------------
# Protocol implementations
# --------------------------------------------------------------------------------------------


class DemoOrders:
    """`OrderSource` over the demo shop's tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def customer_by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone number, written any common way."""
        e164 = normalize_phone(phone)
        if e164 is None:
            return None
        return await asyncio.to_thread(self._customer_where, shop_customers.c.phone == e164)

    async def customer_by_email(self, email: str) -> Customer | None:
        """The customer with this email address, ignoring case and surrounding spaces."""
        wanted = email.strip().lower()
        if not wanted:
            return None
        condition = func.lower(shop_customers.c.email) == wanted
        return await asyncio.to_thread(self._customer_where, condition)

    async def customer(self, customer_id: str) -> Customer | None:
        """The customer with this id."""
        return await asyncio.to_thread(self._customer_where, shop_customers.c.id == customer_id)

    async def orders_of(self, customer_id: str) -> list[Order]:
        """The customer's orders, newest first."""
        return await asyncio.to_thread(self._orders_where, shop_orders.c.customer_id == customer_id)

    async def order(self, number: str) -> Order | None:
        """The order with this number ("1001" or "#1001"), or None."""
        key = number.strip().lstrip("#").strip()
        if not key:
            return None
        found = await asyncio.to_thread(self._orders_where, shop_orders.c.number == key)
        return found[0] if found else None

    def _customer_where(self, condition: ColumnElement[bool]) -> Customer | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(shop_customers).where(condition)).first()
        if row is None:
            return None
        return Customer(id=row.id, name=row.name, phone=row.phone, email=row.email, zip=row.zip)

    def _orders_where(self, condition: ColumnElement[bool]) -> list[Order]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shop_orders)
                .where(condition)
                .order_by(shop_orders.c.placed_at.desc(), shop_orders.c.number.desc())
            ).all()
            numbers = [row.number for row in rows]
            lines = _lines_by_order(conn, numbers)
            shipments = _outbound_shipments_by_order(conn, numbers)
        return [_order(row, lines.get(row.number, ()), shipments.get(row.number)) for row in rows]


def _lines_by_order(conn: Connection, numbers: Sequence[str]) -> dict[str, tuple[OrderLine, ...]]:
    if not numbers:
        return {}
    rows = conn.execute(
        select(shop_order_lines)
        .where(shop_order_lines.c.order_number.in_(numbers))
        .order_by(shop_order_lines.c.order_number, shop_order_lines.c.position)
    ).all()
    grouped: dict[str, list[OrderLine]] = {}
    for row in rows:
        grouped.setdefault(row.order_number, []).append(
            OrderLine(
                sku=row.sku,
                name=row.name,
                category=row.category,
                price_cents=row.price_cents,
                quantity=row.quantity,
                final_sale=bool(row.final_sale),
                variant=row.variant,
            )
        )
    return {number: tuple(lines) for number, lines in grouped.items()}


def _outbound_shipments_by_order(conn: Connection, numbers: Sequence[str]) -> dict[str, Row[Any]]:
    if not numbers:
        return {}
    rows = conn.execute(
        select(shop_shipments)
        .where(
            shop_shipments.c.order_number.in_(numbers),
            shop_shipments.c.direction == "outbound",
        )
        .order_by(shop_shipments.c.shipped_at)
    ).all()
    # Should an order ever ship in parts, the latest shipment is the one a caller asks about.
    return {row.order_number: row for row in rows}


def _order(row: Row[Any], lines: tuple[OrderLine, ...], shipment: Row[Any] | None) -> Order:
    return Order(
        number=row.number,
        customer_id=row.customer_id,
        placed_at=_from_db(row.placed_at),
        lines=lines,
        fulfillment=row.fulfillment,
        carrier=shipment.carrier if shipment else None,
        tracking_number=shipment.tracking_number if shipment else None,
        shipped_at=_from_db_or_none(shipment.shipped_at) if shipment else None,
        delivered_at=_from_db_or_none(shipment.delivered_at) if shipment else None,
    )


class DemoTracking:
    """`Tracking` over the demo shop's recorded carrier scans.

    The status is that of the latest scan, as a carrier reports it: whether a shipment with no
    scan for days is lost is a policy decision, left to the dialog.
    """

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        """The shipment with this tracking number, or None if this carrier doesn't know it.

        The carrier is matched ignoring case and punctuation ("FedEx", "fedex"); an empty
        carrier matches any, as an aggregator that detects the carrier would.
        """
        number = _compact_tracking_number(tracking_number)
        if not number:
            return None
        return await asyncio.to_thread(self._track, carrier, number)

    def _track(self, carrier: str, number: str) -> Shipment | None:
        with self._engine.connect() as conn:
            shipment = conn.execute(
                select(shop_shipments).where(shop_shipments.c.tracking_number == number)
            ).first()
            if shipment is None or not _same_carrier(carrier, shipment.carrier):
                return None
            scans = conn.execute(
                select(shop_tracking_events)
                .where(shop_tracking_events.c.tracking_number == number)
                .order_by(shop_tracking_events.c.at, shop_tracking_events.c.id)
            ).all()
        events = tuple(_tracking_event(scan) for scan in scans)
        latest = events[-1] if events else None
        return Shipment(
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=latest.status if latest else ShipmentStatus.UNKNOWN,
            detail=latest.description if latest else "No carrier scans yet",
            fetched_at=self._clock(),
            eta=shipment.eta,
            events=events,
            tracking_url=tracking_url(shipment.carrier, shipment.tracking_number),
        )


def _same_carrier(asked: str, recorded: str) -> bool:
    wanted = _carrier_key(asked)
    return not wanted or wanted == _carrier_key(recorded)


def _tracking_event(row: Row[Any]) -> TrackingEvent:
    try:
        status = ShipmentStatus(row.status)
    except ValueError:
        status = ShipmentStatus.UNKNOWN
    return TrackingEvent(
        at=_from_db(row.at),
        status=status,
        description=row.description,
        location=row.location,
    )


_SMS_MAX_CHARS = 1600  # Twilio's limit for one message body


class DemoMessenger:
    """`Messenger` that records texts in `shop_sms` instead of sending them.

    Idempotent by key: the same `idempotency_key` twice returns the first message's id and
    records nothing new, so a retried decision never texts the customer twice.
    """

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        """Record a text to `to` and return its id, "SM" and 32 hex digits."""
        e164 = normalize_phone(to)
        if e164 is None:
            raise ValueError(f"not a phone number: {to!r}")
        if not body.strip():
            raise ValueError("empty SMS body")
        if len(body) > _SMS_MAX_CHARS:
            raise ValueError(f"SMS body of {len(body)} characters; the limit is {_SMS_MAX_CHARS}")
        if not idempotency_key:
            raise ValueError("an SMS needs an idempotency_key")
        return await asyncio.to_thread(self._send, e164, body, idempotency_key)

    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        """Texts recorded so far, oldest first; only those to `to` when given."""
        columns = [c for c in shop_sms.c if c.name != "seq"]
        query = select(*columns).order_by(shop_sms.c.seq)
        if to is not None:
            query = query.where(shop_sms.c.to == (normalize_phone(to) or to))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{**row._asdict(), "created_at": _from_db(row.created_at)} for row in rows]

    def _send(self, to: str, body: str, key: str) -> str:
        existing = self._id_for(key)
        if existing is not None:
            return existing
        message_id = f"SM{uuid4().hex}"
        row = {
            "id": message_id,
            "to": to,
            "body": body,
            "idempotency_key": key,
            "created_at": _to_db(self._clock()),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(shop_sms.insert(), row)
        except IntegrityError:
            # Another worker recorded the same key between our look-up and insert: theirs wins.
            existing = self._id_for(key)
            if existing is None:
                raise
            return existing
        return message_id

    def _id_for(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                select(shop_sms.c.id).where(shop_sms.c.idempotency_key == key)
            ).scalar_one_or_none()


class DemoShop:
    """The demo shop's capabilities over one engine: `.orders`, `.tracking`, `.messenger`."""

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self.engine = engine
        self.orders = DemoOrders(engine)
        self.tracking = DemoTracking(engine, clock=clock)
        self.messenger = DemoMessenger(engine, clock=clock)

    @classmethod
    def in_memory(cls, today: date | None = None, clock: Clock = _utc_now) -> DemoShop:
        """A freshly seeded shop in a private in-memory SQLite database, for tests and demos.

        All threads share its one connection, so it is not for a server under load.
        """
        # With the default pool each worker thread would get its own, empty, in-memory database.
        engine = create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
        seed(engine, today)
        return cls(engine, clock=clock)


# --------------------------------------------------------------------------------------------
# Demo data (DESIGN.md, "The demo shop"); days are relative to the seeding day
# --------------------------------------------------------------------------------------------

_WAREHOUSE = "Reno, NV, US"


@dataclass(frozen=True)
class _Scan:
    day: int
    hhmm: str
    status: ShipmentStatus
    description: str
    location: str


@dataclass(frozen=True)
class _ShipmentSeed:
    order: str
    carrier: str
    tracking_number: str
    eta_day: int | None
    scans: tuple[_Scan, ...]
    direction: str = "outbound"


@dataclass(frozen=True)
class _LineSeed:
    sku: str
    name: str
    category: str
    price_cents: int
    final_sale: bool = False
    variant: str | None = None


@dataclass(frozen=True)
class _OrderSeed:
    number: str
    customer_id: str
    placed_day: int
    line: _LineSeed
    fulfillment: str = "fulfilled"


@dataclass(frozen=True)
class _ReturnSeed:
    rma: str
    order: str
    sku: str
    reason: str
    status: str
    created_day: int
    label_tracking_number: str  # its scans say when the label was used and the parcel received
    refunded_day: int | None = None
    refund_cents: int | None = None
    refund_method: str | None = None


@dataclass(frozen=True)
class _CouponSeed:
    code: str
    kind: str
    value: int
    min_subtotal_cents: int = 0
    first_order_only: bool = False
    single_use: bool = False
    expired_last_month: bool = False
    used_by: tuple[tuple[str, str, int], ...] = field(default_factory=tuple)  # customer, order, day


_CUSTOMERS = (
    ("cust_001", "Maria Lopez", "+14155550101", "maria.lopez@example.com", "94110"),
    ("cust_002", "James Chen", "+14155550102", "james.chen@example.com", "10001"),
    ("cust_003", "Aisha Patel", "+14155550103", "aisha.patel@example.com", "60614"),
    ("cust_004", "Tom Becker", "+14155550104", "tom.becker@example.com", "73301"),
    ("cust_005", "Lena Novak", "+14155550105", "lena.novak@example.com", "02139"),
    ("cust_006", "Omar Haddad", "+14155550106", "omar.haddad@example.com", "98101"),
)

_ORDERS = (
    _OrderSeed("1001", "cust_001", -5, _LineSeed("AP-LINEN-SHIRT", "Linen shirt", "apparel", 4800)),
    _OrderSeed(
        "1002",
        "cust_001",
        -40,
        _LineSeed("AP-TRAIL-SHOE", "Trail running shoes", "apparel", 12000),
    ),
    _OrderSeed(
        "1003",
        "cust_002",
        -12,
        _LineSeed("EL-EARBUDS", "Wireless earbuds", "electronics", 8900),
    ),
    _OrderSeed(
        "1004",
        "cust_002",
        -10,
        _LineSeed("AP-RAIN-JACKET", "Clearance rain jacket", "apparel", 3000, final_sale=True),
    ),
    _OrderSeed(
        "1005",
        "cust_003",
        -9,
        _LineSeed("AP-WOOL-SWEATER", "Wool sweater", "apparel", 6500, variant="M"),
    ),
    _OrderSeed("1006", "cust_003", -8, _LineSeed("HO-DESK-LAMP", "Desk lamp", "home", 4000)),
    _OrderSeed(
        "1007",
        "cust_004",
        -20,
        _LineSeed("HO-ESPRESSO", "Espresso machine", "home", 49900),
    ),
    _OrderSeed("1008", "cust_004", -6, _LineSeed("HO-GRINDER", "Coffee grinder", "home", 15000)),
    _OrderSeed("1009", "cust_005", -7, _LineSeed("HO-VASE", "Ceramic vase", "home", 5500)),
    _OrderSeed(
        "1010",
        "cust_005",
        -1,
        _LineSeed("HO-YOGA-MAT", "Yoga mat", "home", 3500),
        fulfillment="unfulfilled",
    ),
    _OrderSeed(
        "1011",
        "cust_006",
        -25,
        _LineSeed("EL-LAPTOP-STAND", "Laptop stand", "electronics", 8000),
        fulfillment="refunded",
    ),
    _OrderSeed(
        "1012",
        "cust_006",
        -15,
        _LineSeed("EL-STUDIO-HEADPHONES", "Studio headphones", "electronics", 25000),
    ),
)

_S = ShipmentStatus

_SHIPMENTS = (
    _ShipmentSeed(
        "1001",
        "UPS",
        "1ZA8V2R70348215374",
        eta_day=1,
        scans=(
            _Scan(-5, "21:10", _S.PRE_TRANSIT, "Shipper created a label", _WAREHOUSE),
            _Scan(-4, "19:40", _S.IN_TRANSIT, "Pickup Scan", _WAREHOUSE),
            _Scan(-4, "23:55", _S.IN_TRANSIT, "Departed from Facility", _WAREHOUSE),
            _Scan(-3, "06:20", _S.IN_TRANSIT, "Arrived at Facility", "Sacramento, CA, US"),
            _Scan(-2, "04:15", _S.IN_TRANSIT, "Departed from Facility", "Sacramento, CA, US"),
            _Scan(-1, "22:30", _S.IN_TRANSIT, "Arrived at Facility", "San Pablo, CA, US"),
        ),
    ),
    _ShipmentSeed(
        "1002",
        "USPS",
        "9400111899223810456722",
        eta_day=-35,
        scans=(
            _Scan(-40, "20:05", _S.PRE_TRANSIT, "Shipping Label Created", _WAREHOUSE),
            _Scan(-39, "17:30", _S.IN_TRANSIT, "USPS in possession of item", _WAREHOUSE),
            _Scan(
                -37, "03:12", _S.IN_TRANSIT, "Arrived at USPS Regional Facility", "Oakland, CA, US"
            ),
            _Scan(-35, "08:05", _S.OUT_FOR_DELIVERY, "Out for Delivery", "San Francisco, CA, US"),
            _Scan(-35, "13:42", _S.DELIVERED, "Delivered, In/At Mailbox", "San Francisco, CA, US"),
        ),
    ),
    _ShipmentSeed(
        "1003",
        "FedEx",
        "774381952601",
        eta_day=-8,
        scans=(
            _Scan(-12, "19:45", _S.PRE_TRANSIT, "Shipment information sent to FedEx", _WAREHOUSE),
            _Scan(-11, "18:20", _S.IN_TRANSIT, "Picked up", _WAREHOUSE),
            _Scan(-10, "02:50", _S.IN_TRANSIT, "Departed FedEx hub", "Memphis, TN, US"),
            _Scan(
                -8,
                "07:35",
                _S.OUT_FOR_DELIVERY,
                "On FedEx vehicle for delivery",
                "New York, NY, US",
            ),
            _Scan(-8, "15:10", _S.DELIVERED, "Delivered, left at front door", "New York, NY, US"),
        ),
    ),
    _ShipmentSeed(
        "1004",
        "UPS",
        "1ZA8V2R70351930460",
        eta_day=-6,
        scans=(
            _Scan(-10, "20:30", _S.PRE_TRANSIT, "Shipper created a label", _WAREHOUSE),
            _Scan(-9, "19:05", _S.IN_TRANSIT, "Pickup Scan", _WAREHOUSE),
            _Scan(-7, "11:40", _S.IN_TRANSIT, "Arrived at Facility", "Secaucus, NJ, US"),
            _Scan(-6, "08:15", _S.OUT_FOR_DELIVERY, "Out For Delivery Today", "New York, NY, US"),
            _Scan(-6, "12:25", _S.DELIVERED, "Delivered, front desk", "New York, NY, US"),
        ),
    ),
    _ShipmentSeed(
        "1005",
        "USPS",
        "9400111899223844178300",
        eta_day=-3,
        scans=(
            _Scan(-8, "18:50", _S.PRE_TRANSIT, "Shipping Label Created", _WAREHOUSE),
            _Scan(-7, "17:15", _S.IN_TRANSIT, "USPS in possession of item", _WAREHOUSE),
            _Scan(
                -5, "04:40", _S.IN_TRANSIT, "Arrived at USPS Regional Facility", "Chicago, IL, US"
            ),
            _Scan(-3, "08:30", _S.OUT_FOR_DELIVERY, "Out for Delivery", "Chicago, IL, US"),
            _Scan(-3, "14:05", _S.DELIVERED, "Delivered, Front Door/Porch", "Chicago, IL, US"),
        ),
    ),
    _ShipmentSeed(
        "1006",
        "FedEx",
        "774520186370",
        eta_day=1,
        scans=(
            _Scan(-7, "20:15", _S.PRE_TRANSIT, "Shipment information sent to FedEx", _WAREHOUSE),
            _Scan(-6, "18:35", _S.IN_TRANSIT, "Picked up", _WAREHOUSE),
            _Scan(-5, "03:05", _S.IN_TRANSIT, "Departed FedEx hub", "Memphis, TN, US"),
            _Scan(-2, "09:50", _S.IN_TRANSIT, "At local FedEx facility", "Chicago, IL, US"),
            _Scan(
                -1, "08:10", _S.OUT_FOR_DELIVERY, "On FedEx vehicle for delivery", "Chicago, IL, US"
            ),
            _Scan(
                -1,
                "14:35",
                _S.FAILED_ATTEMPT,
                "Delivery attempted: customer not available. Next attempt next business day",
                "Chicago, IL, US",
            ),
        ),
    ),
    _ShipmentSeed(
        "1007",
        "UPS",
        "1ZA8V2R70366307197",
        eta_day=-13,  # the carrier's original promise, long past
        scans=(
            _Scan(-19, "20:00", _S.PRE_TRANSIT, "Shipper created a label", _WAREHOUSE),
            _Scan(-18, "18:10", _S.IN_TRANSIT, "Pickup Scan", _WAREHOUSE),
            _Scan(-18, "23:40", _S.IN_TRANSIT, "Departed from Facility", _WAREHOUSE),
            _Scan(-16, "05:25", _S.IN_TRANSIT, "Arrived at Facility", "Salt Lake City, UT, US"),
            _Scan(-13, "21:15", _S.IN_TRANSIT, "Arrived at Facility", "Oklahoma City, OK, US"),
            _Scan(-9, "02:45", _S.IN_TRANSIT, "Departed from Facility", "Oklahoma City, OK, US"),
        ),
    ),
    _ShipmentSeed(
        "1008",
        "USPS",
        "9400111899223866209549",
        eta_day=None,  # no promise while customs hold it
        scans=(
            _Scan(-6, "16:20", _S.PRE_TRANSIT, "Shipping Label Created", "Milan, IT"),
            _Scan(-5, "10:05", _S.IN_TRANSIT, "Accepted at origin", "Milan, IT"),
            _Scan(-4, "22:40", _S.IN_TRANSIT, "Departed origin country", "Milan, IT"),
            _Scan(
                -3,
                "17:55",
                _S.IN_TRANSIT,
                "Arrived at USPS International Service Center",
                "New York, NY, US",
            ),
            _Scan(-2, "09:30", _S.DELAYED, "Held at customs", "New York, NY, US"),
        ),
    ),
    _ShipmentSeed(
        "1009",
        "UPS",
        "1ZA8V2R70377452081",
        eta_day=-1,
        scans=(
            _Scan(-6, "21:00", _S.PRE_TRANSIT, "Shipper created a label", _WAREHOUSE),
            _Scan(-5, "18:45", _S.IN_TRANSIT, "Pickup Scan", _WAREHOUSE),
            _Scan(-3, "13:20", _S.IN_TRANSIT, "Arrived at Facility", "Chelsea, MA, US"),
            _Scan(-1, "08:40", _S.OUT_FOR_DELIVERY, "Out For Delivery Today", "Cambridge, MA, US"),
            _Scan(-1, "14:00", _S.DELIVERED, "Delivered, front porch", "Cambridge, MA, US"),
        ),
    ),
    _ShipmentSeed(
        "1011",
        "FedEx",
        "774139605826",
        eta_day=-21,
        scans=(
            _Scan(-25, "19:30", _S.PRE_TRANSIT, "Shipment information sent to FedEx", _WAREHOUSE),
            _Scan(-24, "18:00", _S.IN_TRANSIT, "Picked up", _WAREHOUSE),
            _Scan(
                -21,
                "07:50",
                _S.OUT_FOR_DELIVERY,
                "On FedEx vehicle for delivery",
                "Seattle, WA, US",
            ),
            _Scan(-21, "11:20", _S.DELIVERED, "Delivered, left at front door", "Seattle, WA, US"),
        ),
    ),
    _ShipmentSeed(
        "1011",
        "USPS",
        "9420111899223855031162",
        eta_day=-3,
        direction="return",
        scans=(
            _Scan(-10, "16:00", _S.PRE_TRANSIT, "Shipping Label Created", "Seattle, WA, US"),
            _Scan(-8, "12:35", _S.IN_TRANSIT, "USPS in possession of item", "Seattle, WA, US"),
            _Scan(-3, "10:15", _S.DELIVERED, "Delivered, Dock", _WAREHOUSE),
        ),
    ),
    _ShipmentSeed(
        "1012",
        "UPS",
        "1ZA8V2R70326184707",
        eta_day=-11,
        scans=(
            _Scan(-15, "20:20", _S.PRE_TRANSIT, "Shipper created a label", _WAREHOUSE),
            _Scan(-14, "18:30", _S.IN_TRANSIT, "Pickup Scan", _WAREHOUSE),
            _Scan(-11, "09:05", _S.OUT_FOR_DELIVERY, "Out For Delivery Today", "Seattle, WA, US"),
            _Scan(-11, "15:45", _S.DELIVERED, "Delivered, front door", "Seattle, WA, US"),
        ),
    ),
    _ShipmentSeed(
        "1012",
        "UPS",
        "1ZA8V2R79055703811",
        eta_day=2,
        direction="return",
        scans=(
            _Scan(-3, "17:10", _S.PRE_TRANSIT, "Shipper created a label", "Seattle, WA, US"),
            _Scan(-2, "12:50", _S.IN_TRANSIT, "Drop-Off at The UPS Store", "Seattle, WA, US"),
            _Scan(-1, "23:05", _S.IN_TRANSIT, "Departed from Facility", "Seattle, WA, US"),
        ),
    ),
)

_RETURNS = (
    _ReturnSeed(
        rma="RMA-50011",
        order="1011",
        sku="EL-LAPTOP-STAND",
        reason="no longer needed",
        status="refunded",
        created_day=-10,
        label_tracking_number="9420111899223855031162",
        refunded_day=-2,
        refund_cents=8000,
        refund_method="original_payment",
    ),
    _ReturnSeed(
        rma="RMA-50012",
        order="1012",
        sku="EL-STUDIO-HEADPHONES",
        reason="sound not as expected",
        status="in_transit_to_warehouse",
        created_day=-3,
        label_tracking_number="1ZA8V2R79055703811",
    ),
)

_COUPONS = (
    _CouponSeed("SAVE20", "percent", 20, min_subtotal_cents=5000),
    _CouponSeed("WELCOME10", "percent", 10, first_order_only=True),
    _CouponSeed("SUMMER15", "percent", 15, expired_last_month=True),
    _CouponSeed("FREESHIP", "free_shipping", 0, min_subtotal_cents=3500),
    _CouponSeed("VIP50", "amount", 5000, single_use=True, used_by=(("cust_004", "1007", -20),)),
)

# Sizes of the wool sweater in stock, so an exchange for 1005 has somewhere to go.
_STOCK = (
    ("AP-WOOL-SWEATER", "S", 4),
    ("AP-WOOL-SWEATER", "M", 2),
    ("AP-WOOL-SWEATER", "L", 3),
    ("AP-WOOL-SWEATER", "XL", 0),
)

_PLACED_AT = "15:00"


def seed(engine: Engine, today: date | None = None) -> None:
    """Create the demo shop's tables if missing and (re)write its data relative to `today`.

    `today` defaults to the current UTC date. Reseeding replaces every demo row in one
    transaction; texts already recorded in `shop_sms` are kept.
    """
    rows = _demo_rows(_Calendar(today or _utc_now().date()))
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table in reversed(_SEEDED_TABLES):
            conn.execute(table.delete())
        for table in _SEEDED_TABLES:
            if rows.get(table):
                conn.execute(table.insert(), rows[table])


@dataclass(frozen=True)
class _Calendar:
    """Turns the seed's relative days into dates and UTC datetimes."""

    today: date

    def on(self, day: int) -> date:
        return self.today + timedelta(days=day)

    def at(self, day: int, hhmm: str) -> datetime:
        return datetime.combine(self.on(day), time.fromisoformat(hhmm), UTC)


def _demo_rows(cal: _Calendar) -> dict[Table, list[dict[str, Any]]]:
    return {
        shop_customers: [
            {"id": cid, "name": name, "phone": phone, "email": email, "zip": zip_code}
            for cid, name, phone, email, zip_code in _CUSTOMERS
        ],
        shop_orders: [_order_row(order, cal) for order in _ORDERS],
        shop_order_lines: [_line_row(order) for order in _ORDERS],
        shop_shipments: [_shipment_row(ship, cal) for ship in _SHIPMENTS],
        shop_tracking_events: [
            {
                "tracking_number": ship.tracking_number,
                "at": cal.at(scan.day, scan.hhmm),
                "status": scan.status.value,
                "description": scan.description,
                "location": scan.location,
            }
            for ship in _SHIPMENTS
            for scan in ship.scans
        ],
        shop_coupons: [_coupon_row(coupon, cal) for coupon in _COUPONS],
        shop_coupon_uses: [
            {
                "code": coupon.code,
                "customer_id": customer_id,
                "order_number": order,
                "used_at": cal.at(day, _PLACED_AT),
            }
            for coupon in _COUPONS
            for customer_id, order, day in coupon.used_by
        ],
        shop_returns: [_return_row(ret, cal) for ret in _RETURNS],
        shop_stock: [
            {"sku": sku, "variant": variant, "on_hand": on_hand} for sku, variant, on_hand in _STOCK
        ],
    }


def _order_row(order: _OrderSeed, cal: _Calendar) -> dict[str, Any]:
    return {
        "number": order.number,
        "customer_id": order.customer_id,
        "placed_at": cal.at(order.placed_day, _PLACED_AT),
        "fulfillment": order.fulfillment,
        "note": _order_note(order.number, cal),
    }


def _order_note(number: str, cal: _Calendar) -> str:
    """The merchant's note on an order, as a person reading the shop's admin would see it."""
    ret = next((r for r in _RETURNS if r.order == number), None)
    if ret is None:
        return ""
    if ret.refunded_day is not None:
        refund = f"${(ret.refund_cents or 0) / 100:.2f}"
        return (
            f"Return {ret.rma} received; refunded {refund} to the original card on "
            f"{cal.on(ret.refunded_day).isoformat()}."
        )
    label = _shipment_seed(ret.label_tracking_number)
    used = _first_scan(label.scans, _MOVING)
    used_on = cal.on(used.day).isoformat() if used else "?"
    return (
        f"Return {ret.rma}: label used on {used_on}, in transit back to the warehouse. "
        "Refund on receipt."
    )


def _line_row(order: _OrderSeed) -> dict[str, Any]:
    line = order.line
    return {
        "order_number": order.number,
        "position": 1,
        "sku": line.sku,
        "name": line.name,
        "category": line.category,
        "price_cents": line.price_cents,
        "quantity": 1,
        "final_sale": line.final_sale,
        "variant": line.variant,
    }


# A parcel has shipped once the carrier scans it moving, not when a label is printed.
_MOVING = frozenset(ShipmentStatus) - {ShipmentStatus.PRE_TRANSIT, ShipmentStatus.UNKNOWN}
_DELIVERED = frozenset({ShipmentStatus.DELIVERED})


def _first_scan(scans: Iterable[_Scan], statuses: frozenset[ShipmentStatus]) -> _Scan | None:
    return next((scan for scan in scans if scan.status in statuses), None)


def _scan_at(scan: _Scan | None, cal: _Calendar) -> datetime | None:
    return None if scan is None else cal.at(scan.day, scan.hhmm)


def _shipment_seed(tracking_number: str) -> _ShipmentSeed:
    return next(s for s in _SHIPMENTS if s.tracking_number == tracking_number)


def _shipment_row(ship: _ShipmentSeed, cal: _Calendar) -> dict[str, Any]:
    return {
        "tracking_number": ship.tracking_number,
        "carrier": ship.carrier,
        "order_number": ship.order,
        "direction": ship.direction,
        "shipped_at": _scan_at(_first_scan(ship.scans, _MOVING), cal),
        "delivered_at": _scan_at(_first_scan(ship.scans, _DELIVERED), cal),
        "eta": None if ship.eta_day is None else cal.on(ship.eta_day),
    }


def _coupon_row(coupon: _CouponSeed, cal: _Calendar) -> dict[str, Any]:
    expires_at = None
    if coupon.expired_last_month:
        last_day_of_last_month = cal.today.replace(day=1) - timedelta(days=1)
        expires_at = datetime.combine(last_day_of_last_month, time(23, 59, 59), UTC)
    return {
        "code": coupon.code,
        "kind": coupon.kind,
        "value": coupon.value,
        "min_subtotal_cents": coupon.min_subtotal_cents,
        "first_order_only": coupon.first_order_only,
        "single_use": coupon.single_use,
        "expires_at": expires_at,
        "active": True,
    }


def _return_row(ret: _ReturnSeed, cal: _Calendar) -> dict[str, Any]:
    label = _shipment_seed(ret.label_tracking_number)
    return {
        "rma": ret.rma,
        "order_number": ret.order,
        "sku": ret.sku,
        "reason": ret.reason,
        "status": ret.status,
        "created_at": cal.at(ret.created_day, "16:00"),
        "label_tracking_number": ret.label_tracking_number,
        "label_used_at": _scan_at(_first_scan(label.scans, _MOVING), cal),
        "received_at": _scan_at(_first_scan(label.scans, _DELIVERED), cal),
        "refunded_at": None if ret.refunded_day is None else cal.at(ret.refunded_day, "11:00"),
        "refund_cents": ret.refund_cents,
        "refund_method": ret.refund_method,
    }
