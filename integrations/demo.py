"""The embedded demo shop: every capability of `integrations.protocols`, in SQL.

Everything the agent needs to run without any provider: SQLAlchemy Core tables on their own
`metadata` (names prefixed `shop_`, portable to SQLite and PostgreSQL), `seed()` which writes the
demo data of docs/DESIGN.md ("The demo shop") with dates relative to the day it runs, and classes
implementing the protocols over a sync `Engine`: orders, tracking, deliveries, coupons, returns,
refunds, SMS and helpdesk tickets. Each async method runs its queries in a worker thread so the
event loop keeps streaming audio.

Every method that changes something takes an `idempotency_key` and records it in the same
transaction as the change, under a UNIQUE constraint: the same key twice does the thing once and
returns the first result, even when the two calls race. Refusals are `ProviderError`s whose
`code` says why ("not_found", "already_shipped", "charge_already_refunded", …). Policy (return
windows, final sale, approval limits) is the dialog's; the shop only refuses what a real
provider would, and never records two returns or two refunds for one order line.

Datetimes are UTC and timezone-aware on the way in and out, whatever the database returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
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
    ForeignKeyConstraint,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from integrations.labels import DEV_LABEL_SECRET, EmbeddedLabels, LabelMaker, LabelPrinter
from integrations.models import (
    Address,
    Coupon,
    CouponCheck,
    Customer,
    Label,
    Order,
    OrderLine,
    Refund,
    ReturnAuthorization,
    Shipment,
    ShipmentStatus,
    Ticket,
    TrackingEvent,
)
from integrations.protocols import ProviderError

__all__ = [
    "SUPPORT_LINE",
    "DemoCoupons",
    "DemoDeliveries",
    "DemoHelpdesk",
    "DemoMessenger",
    "DemoOrders",
    "DemoRefunds",
    "DemoReturns",
    "DemoShop",
    "DemoTracking",
    "ensure_schema",
    "metadata",
    "normalize_phone",
    "seed",
    "shop_address_changes",
    "shop_coupon_uses",
    "shop_coupons",
    "shop_customers",
    "shop_delivery_requests",
    "shop_order_lines",
    "shop_orders",
    "shop_refunds",
    "shop_return_lines",
    "shop_returns",
    "shop_shipments",
    "shop_sms",
    "shop_stock",
    "shop_tickets",
    "shop_tracking_events",
    "tracking_url",
]

SUPPORT_LINE = "+18005550100"
"""The demo shop's support phone number (E.164)."""

Clock = Callable[[], datetime]
_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

metadata = MetaData()
"""The demo shop's tables, kept apart from the store's so each can be created on its own."""

_UtcDateTime = DateTime(timezone=True)
_KEY = String(200)  # idempotency keys

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
    # The shipping address; all NULL when the order has none (a digital good).
    Column("ship_line1", String(200), nullable=True),
    Column("ship_line2", String(200), nullable=False, default=""),
    Column("ship_city", String(100), nullable=True),
    Column("ship_region", String(64), nullable=True),
    Column("ship_postal_code", String(16), nullable=True),
    Column("ship_country", String(2), nullable=True),
    Column("payment_method", String(100), nullable=False, default=""),  # as said to a caller
    Column("payment_ref", String(64), nullable=True),  # the payment provider's id
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
    Column("line_id", String(48), nullable=False),  # "1001-1": what returns and refunds name
    Column("position", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("quantity", Integer, nullable=False, default=1),
    Column("final_sale", Boolean, nullable=False, default=False),
    Column("variant", String(64), nullable=True),
    CheckConstraint("price_cents >= 0 AND quantity > 0", name="ck_shop_order_lines_amounts"),
    UniqueConstraint("order_number", "line_id", name="uq_shop_order_lines_line_id"),
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

_RETURN_STATUSES = (
    "authorized",
    "label_sent",
    "in_transit",
    "received",
    "refunded",
    "exchanged",
    "closed",
)
_RESOLUTIONS = ("refund", "exchange", "store_credit")


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


shop_returns = Table(
    "shop_returns",
    metadata,
    Column("rma", String(32), primary_key=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("reason_code", String(64), nullable=False),
    Column("resolution", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("exchange_variant", String(64), nullable=True),
    Column("idempotency_key", _KEY, nullable=True, unique=True),  # NULL for seeded returns
    Column("created_at", _UtcDateTime, nullable=False),
    Column("label_url", Text, nullable=True),
    Column("label_carrier", String(16), nullable=True),
    Column(
        "label_tracking_number",
        ForeignKey("shop_shipments.tracking_number"),
        nullable=True,
    ),
    Column("label_expires_at", _UtcDateTime, nullable=True),
    Column("label_idempotency_key", _KEY, nullable=True),
    Column("label_used_at", _UtcDateTime, nullable=True),
    Column("received_at", _UtcDateTime, nullable=True),
    CheckConstraint(_in("status", _RETURN_STATUSES), name="ck_shop_returns_status"),
    CheckConstraint(_in("resolution", _RESOLUTIONS), name="ck_shop_returns_resolution"),
)

shop_return_lines = Table(
    "shop_return_lines",
    metadata,
    Column("rma", ForeignKey("shop_returns.rma"), nullable=False),
    Column("order_number", String(32), nullable=False),
    Column("line_id", String(48), nullable=False),
    PrimaryKeyConstraint("rma", "line_id"),
    ForeignKeyConstraint(
        ["order_number", "line_id"],
        ["shop_order_lines.order_number", "shop_order_lines.line_id"],
    ),
    # A line is returned at most once, whatever the code above it does.
    UniqueConstraint("order_number", "line_id", name="uq_shop_return_lines_once"),
)

shop_refunds = Table(
    "shop_refunds",
    metadata,
    Column("id", String(32), primary_key=True),  # "re_…", like a Stripe refund
    Column("order_number", String(32), nullable=False, index=True),
    Column("line_id", String(48), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(32), nullable=False),
    Column("reason", String(200), nullable=False, default=""),
    Column("payment_ref", String(64), nullable=True),  # the charge it went back to
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
    Column("failure_reason", String(200), nullable=True),
    ForeignKeyConstraint(
        ["order_number", "line_id"],
        ["shop_order_lines.order_number", "shop_order_lines.line_id"],
    ),
    CheckConstraint("amount_cents > 0", name="ck_shop_refunds_amount"),
    CheckConstraint("method = 'original_payment'", name="ck_shop_refunds_method"),
    CheckConstraint(_in("status", ("succeeded", "pending", "failed")), name="ck_shop_refunds_st"),
    # Money goes back once per order line, ever: the database refuses a second refund.
    UniqueConstraint("order_number", "line_id", name="uq_shop_refunds_once_per_line"),
)

shop_stock = Table(
    "shop_stock",
    metadata,
    Column("sku", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("on_hand", Integer, nullable=False),
    PrimaryKeyConstraint("sku", "variant"),
)

shop_address_changes = Table(
    "shop_address_changes",
    metadata,
    Column("idempotency_key", _KEY, primary_key=True),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("address", Text, nullable=False),  # JSON of the new Address
    Column("previous_address", Text, nullable=True),
    Column("applied_at", _UtcDateTime, nullable=False),
)

shop_delivery_requests = Table(
    "shop_delivery_requests",
    metadata,
    Column("id", String(32), primary_key=True),  # "RSC-…", "RDR-…", "CLM-…"
    Column("kind", String(16), nullable=False),
    Column("order_number", ForeignKey("shop_orders.number"), nullable=False, index=True),
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("day", Date, nullable=True),  # reschedule: the new delivery day
    Column("address", Text, nullable=True),  # redirect: JSON of the new Address
    Column("claim_kind", String(16), nullable=True),  # claim: "lost" | "damaged"
    Column("created_at", _UtcDateTime, nullable=False),
    CheckConstraint(_in("kind", ("reschedule", "redirect", "claim")), name="ck_shop_delivery_kind"),
    # One claim of each kind per parcel; other requests have no claim_kind, and NULLs never clash.
    UniqueConstraint("order_number", "kind", "claim_kind", name="uq_shop_delivery_one_claim"),
)

shop_sms = Table(
    "shop_sms",
    metadata,
    # Orders texts sent within one clock tick; `id` is what the rest of the world sees.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(34), nullable=False, unique=True),  # "SM" + 32 hex, like a Twilio SID
    Column("to", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
)

shop_tickets = Table(
    "shop_tickets",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(16), nullable=False, unique=True),  # "T-10001"
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("requester_phone", String(32), nullable=True),
    Column("requester_email", String(254), nullable=True),
    Column("tags", Text, nullable=False, default="[]"),  # JSON list
    Column("priority", String(8), nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("idempotency_key", _KEY, nullable=False, unique=True),
    Column("created_at", _UtcDateTime, nullable=False),
)

# What was sent to a customer or handed to a person survives a reseed: a demo shop must never
# text twice, and a ticket someone may be working on must not vanish. These tables reference no
# demo row, so the rest can be dropped and rebuilt around them.
_KEPT_TABLES = (shop_sms, shop_tickets)
_SEEDED_TABLES = tuple(t for t in metadata.sorted_tables if t not in _KEPT_TABLES)


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
# Addresses, ids and writing once
# --------------------------------------------------------------------------------------------

_US_ZIP = re.compile(r"[0-9]{5}(-[0-9]{4})?")


def _checked_address(address: Address) -> Address:
    """The address with its fields trimmed, or ProviderError("invalid_address")."""
    clean = Address(
        line1=address.line1.strip(),
        line2=address.line2.strip(),
        city=address.city.strip(),
        region=address.region.strip().upper(),
        postal_code=address.postal_code.strip(),
        country=(address.country.strip() or "US").upper(),
    )
    missing = [name for name in ("line1", "city", "postal_code") if not getattr(clean, name)]
    if missing:
        raise ProviderError(f"address lacks {', '.join(missing)}", code="invalid_address")
    if clean.country == "US" and not _US_ZIP.fullmatch(clean.postal_code):
        raise ProviderError(f"not a US ZIP code: {clean.postal_code!r}", code="invalid_address")
    return clean


def _address_json(address: Address) -> str:
    return json.dumps(
        {
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "region": address.region,
            "postal_code": address.postal_code,
            "country": address.country,
        }
    )


def _address_columns(address: Address) -> dict[str, str]:
    return {
        "ship_line1": address.line1,
        "ship_line2": address.line2,
        "ship_city": address.city,
        "ship_region": address.region,
        "ship_postal_code": address.postal_code,
        "ship_country": address.country,
    }


def _address_of(row: Row[Any]) -> Address | None:
    if row.ship_line1 is None:
        return None
    return Address(
        line1=row.ship_line1,
        line2=row.ship_line2 or "",
        city=row.ship_city or "",
        region=row.ship_region or "",
        postal_code=row.ship_postal_code or "",
        country=row.ship_country or "US",
    )


def _require_key(idempotency_key: str) -> None:
    if not idempotency_key:
        raise ValueError("a change needs an idempotency_key")


_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _provider_id(prefix: str, seed_text: str | None = None, length: int = 24) -> str:
    """An id shaped like a payment provider's ("pi_…", "re_…"): from `seed_text` when given,
    so seeded data is the same every time, else random."""
    digest = hashlib.sha256((seed_text if seed_text is not None else uuid4().hex).encode())
    number = int.from_bytes(digest.digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[digit])
    return prefix + "".join(chars)


def _next_id(conn: Connection, column: Column[Any], prefix: str, first: int) -> str:
    """The next sequential id after the largest one of the form `{prefix}{number}`.

    Two writers may pick the same id; the primary key refuses the second and `_write_once`
    tries it again, so numbers stay short enough to read out on the phone.
    """
    taken = conn.execute(select(column).where(column.like(f"{prefix}%"))).scalars()
    numbers = [int(rest) for rest in (t[len(prefix) :] for t in taken) if rest.isdigit()]
    return f"{prefix}{max(numbers, default=first - 1) + 1}"


_WRITE_ATTEMPTS = 8


def _write_once(
    engine: Engine,
    find: Callable[[Connection], _T | None],
    write: Callable[[Connection], _T],
) -> _T:
    """The result already recorded under an idempotency key (`find`), or `write` it.

    `write` runs in one transaction and may raise ProviderError to refuse. When a concurrent
    writer wins a race for the same key, id or order line, the database's UNIQUE constraints
    refuse ours, and looking again finds theirs (or the refusal that now applies).
    """
    for _ in range(_WRITE_ATTEMPTS):
        with engine.connect() as conn:
            found = find(conn)
        if found is not None:
            return found
        try:
            with engine.begin() as conn:
                return write(conn)
        except IntegrityError:
            continue
        except ProviderError:
            # The refusal may be of what a concurrent call with this very key just did
            # ("already refunded" by ourselves): then that result is ours too.
            with engine.connect() as conn:
                found = find(conn)
            if found is None:
                raise
            return found
    raise ProviderError("too many concurrent writers; try again", code="conflict", retryable=True)


def _key_reused(what: str) -> ProviderError:
    return ProviderError(
        f"this idempotency key was already used for {what}", code="idempotency_key_reused"
    )


def _order_number(raw: str) -> str:
    return raw.strip().lstrip("#").strip()


# --------------------------------------------------------------------------------------------
# Protocol implementations
# --------------------------------------------------------------------------------------------


class DemoOrders:
    """`OrderSource` over the demo shop's tables: customers, orders, stock, address changes."""

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

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
        key = _order_number(number)
        if not key:
            return None
        found = await asyncio.to_thread(self._orders_where, shop_orders.c.number == key)
        return found[0] if found else None

    async def stock(self, sku: str) -> dict[str, int]:
        """Units on hand per variant of `sku` ({"S": 4, "M": 2, …}); {} for an unknown SKU."""
        return await asyncio.to_thread(self._stock, sku)

    async def update_shipping_address(
        self, number: str, address: Address, *, idempotency_key: str
    ) -> Order:
        """Send an unshipped order to `address` and return the order as it now stands.

        Refuses with ProviderError: "not_found" for an unknown order, "already_shipped" once it
        has left the warehouse ("cancelled" for a cancelled one), "invalid_address" for an
        address a carrier could not deliver to. The same key again returns the order without
        changing it a second time.
        """
        _require_key(idempotency_key)
        key = _order_number(number)
        clean = _checked_address(address)
        return await asyncio.to_thread(self._update_address, key, clean, idempotency_key)

    def _stock(self, sku: str) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shop_stock.c.variant, shop_stock.c.on_hand)
                .where(shop_stock.c.sku == sku)
                .order_by(shop_stock.c.variant)
            ).all()
        return {row.variant: row.on_hand for row in rows}

    def _update_address(self, number: str, address: Address, key: str) -> Order:
        def find(conn: Connection) -> str | None:
            applied_to = conn.execute(
                select(shop_address_changes.c.order_number).where(
                    shop_address_changes.c.idempotency_key == key
                )
            ).scalar_one_or_none()
            if applied_to is not None and applied_to != number:
                raise _key_reused(f"order {applied_to}")
            return applied_to

        def write(conn: Connection) -> str:
            row = conn.execute(select(shop_orders).where(shop_orders.c.number == number)).first()
            if row is None:
                raise ProviderError(f"no order {number!r}", code="not_found")
            if row.fulfillment == "cancelled":
                raise ProviderError(f"order {number} was cancelled", code="cancelled")
            if row.fulfillment != "unfulfilled":
                raise ProviderError(f"order {number} has already shipped", code="already_shipped")
            previous = _address_of(row)
            conn.execute(
                shop_address_changes.insert(),
                {
                    "idempotency_key": key,
                    "order_number": number,
                    "address": _address_json(address),
                    "previous_address": _address_json(previous) if previous else None,
                    "applied_at": _to_db(self._clock()),
                },
            )
            # Only while it is still unfulfilled: a shipment recorded meanwhile wins.
            changed = conn.execute(
                shop_orders.update()
                .where(shop_orders.c.number == number, shop_orders.c.fulfillment == "unfulfilled")
                .values(**_address_columns(address))
            )
            if changed.rowcount != 1:
                raise ProviderError(f"order {number} has already shipped", code="already_shipped")
            return number

        _write_once(self._engine, find, write)
        (order,) = self._orders_where(shop_orders.c.number == number)
        return order

    def _customer_where(self, condition: ColumnElement[bool]) -> Customer | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(shop_customers.c.id).where(condition)).first()
            return None if row is None else _customer_of(conn, row.id)

    def _orders_where(self, condition: ColumnElement[bool]) -> list[Order]:
        with self._engine.connect() as conn:
            return _orders_where(conn, condition)


def _orders_where(conn: Connection, condition: ColumnElement[bool]) -> list[Order]:
    """Orders matching `condition`, newest first, with their lines and outbound shipment."""
    rows = conn.execute(
        select(shop_orders)
        .where(condition)
        .order_by(shop_orders.c.placed_at.desc(), shop_orders.c.number.desc())
    ).all()
    numbers = [row.number for row in rows]
    lines = _lines_by_order(conn, numbers)
    shipments = _outbound_shipments_by_order(conn, numbers)
    return [_order(row, lines.get(row.number, ()), shipments.get(row.number)) for row in rows]


def _order_or_none(conn: Connection, number: str) -> Order | None:
    found = _orders_where(conn, shop_orders.c.number == number)
    return found[0] if found else None


def _existing_order(conn: Connection, number: str) -> Order:
    """The order, or ProviderError("not_found")."""
    order = _order_or_none(conn, number)
    if order is None:
        raise ProviderError(f"no order {number!r}", code="not_found")
    return order


def _customer_of(conn: Connection, customer_id: str) -> Customer | None:
    row = conn.execute(select(shop_customers).where(shop_customers.c.id == customer_id)).first()
    if row is None:
        return None
    return Customer(id=row.id, name=row.name, phone=row.phone, email=row.email, zip=row.zip)


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
                line_id=row.line_id,
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
        shipping_address=_address_of(row),
        payment_method=row.payment_method,
        payment_ref=row.payment_ref,
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


def _outbound_shipment(conn: Connection, number: str) -> Row[Any] | None:
    return _outbound_shipments_by_order(conn, [number]).get(number)


def _scans(conn: Connection, tracking_number: str) -> list[TrackingEvent]:
    rows = conn.execute(
        select(shop_tracking_events)
        .where(shop_tracking_events.c.tracking_number == tracking_number)
        .order_by(shop_tracking_events.c.at, shop_tracking_events.c.id)
    ).all()
    return [_tracking_event(row) for row in rows]


def _add_scan(
    conn: Connection,
    tracking_number: str,
    at: datetime,
    status: ShipmentStatus,
    description: str,
    location: str,
) -> None:
    conn.execute(
        shop_tracking_events.insert(),
        {
            "tracking_number": tracking_number,
            "at": _to_db(at),
            "status": status.value,
            "description": description,
            "location": location,
        },
    )


def _spoken_day(day: date) -> str:
    return f"{day:%A, %B} {day.day}"


# A parcel after a failed attempt waits at the local depot; carriers hold it about a week, and
# the demo is a little more generous so a caller can pick any day of the next two weeks.
_RESCHEDULE_HORIZON = timedelta(days=14)
_CLAIM_KINDS = frozenset({"lost", "damaged"})
# Id prefix and first number of each kind of delivery request; claim ids are read to callers.
_REQUEST_IDS = {
    "reschedule": ("RSC-", 40001),
    "redirect": ("RDR-", 60001),
    "claim": ("CLM-", 70001),
}


class DemoDeliveries:
    """`Deliveries` over the demo shop's shipments, as a carrier's API would answer.

    A reschedule is possible only after a failed delivery attempt and before delivery; it moves
    the shipment's ETA and adds a scan, so tracking tells the new day. A redirect needs a parcel
    that is moving and not yet delivered. A claim ("lost" or "damaged") needs a shipped parcel,
    and a damaged one a delivered parcel; one claim of each kind per order, so asking again
    returns the open claim. Every request is recorded in `shop_delivery_requests`.
    """

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def reschedule(self, order_number: str, day: date, *, idempotency_key: str) -> date:
        """Ask for another delivery attempt on `day`; returns the day the carrier agreed.

        Refuses with ProviderError "not_found", "not_reschedulable" (no failed attempt, or
        already delivered) or "invalid_date" (in the past, or more than two weeks out).
        """
        _require_key(idempotency_key)
        number = _order_number(order_number)
        return await asyncio.to_thread(self._reschedule, number, day, idempotency_key)

    async def redirect(self, order_number: str, address: Address, *, idempotency_key: str) -> str:
        """Ask the carrier to deliver a moving parcel to `address`; returns the request id.

        Refuses with ProviderError "not_found", "not_shipped" (change the order's address
        instead), "already_delivered" or "invalid_address".
        """
        _require_key(idempotency_key)
        number, clean = _order_number(order_number), _checked_address(address)
        return await asyncio.to_thread(self._redirect, number, clean, idempotency_key)

    async def open_claim(self, order_number: str, kind: str, *, idempotency_key: str) -> str:
        """Open a carrier claim for a lost or damaged parcel; returns its id, "CLM-…".

        Refuses with ProviderError "not_found", "not_shipped" or, for "damaged", "not_delivered".
        """
        _require_key(idempotency_key)
        if kind not in _CLAIM_KINDS:
            raise ValueError(f"claim kind {kind!r}; known: {sorted(_CLAIM_KINDS)}")
        number = _order_number(order_number)
        return await asyncio.to_thread(self._open_claim, number, kind, idempotency_key)

    def _find(self, key: str, kind: str, number: str) -> Callable[[Connection], Row[Any] | None]:
        def find(conn: Connection) -> Row[Any] | None:
            row = conn.execute(
                select(shop_delivery_requests).where(
                    shop_delivery_requests.c.idempotency_key == key
                )
            ).first()
            if row is not None and (row.kind, row.order_number) != (kind, number):
                raise _key_reused(f"{row.kind} {row.id} of order {row.order_number}")
            return row

        return find

    def _record(self, conn: Connection, kind: str, number: str, key: str, **data: Any) -> str:
        prefix, first = _REQUEST_IDS[kind]
        request_id = _next_id(conn, shop_delivery_requests.c.id, prefix, first)
        conn.execute(
            shop_delivery_requests.insert(),
            {
                "id": request_id,
                "kind": kind,
                "order_number": number,
                "idempotency_key": key,
                "created_at": _to_db(self._clock()),
                **data,
            },
        )
        return request_id

    def _reschedule(self, number: str, day: date, key: str) -> date:
        def write(conn: Connection) -> date:
            _existing_order(conn, number)
            shipment = _outbound_shipment(conn, number)
            if shipment is None or shipment.delivered_at is not None:
                state = "has not shipped" if shipment is None else "was delivered"
                raise ProviderError(f"order {number} {state}", code="not_reschedulable")
            scans = _scans(conn, shipment.tracking_number)
            failed = [s for s in scans if s.status is ShipmentStatus.FAILED_ATTEMPT]
            if not failed:
                raise ProviderError(
                    f"order {number} has had no failed delivery attempt", code="not_reschedulable"
                )
            now = self._clock()
            today = now.astimezone(UTC).date()
            if not today <= day <= today + _RESCHEDULE_HORIZON:
                raise ProviderError(f"cannot deliver on {day.isoformat()}", code="invalid_date")
            self._record(conn, "reschedule", number, key, day=day)
            conn.execute(
                shop_shipments.update()
                .where(shop_shipments.c.tracking_number == shipment.tracking_number)
                .values(eta=day)
            )
            # Listed after the failed attempt even if the clock lags the carrier's.
            at = max(now, scans[-1].at + timedelta(minutes=1))
            _add_scan(
                conn,
                shipment.tracking_number,
                at,
                ShipmentStatus.IN_TRANSIT,
                f"Delivery rescheduled at the customer's request for {_spoken_day(day)}",
                failed[-1].location,
            )
            return day

        find = self._find(key, "reschedule", number)
        return _write_once(self._engine, lambda conn: _day_or_none(find(conn)), write)

    def _redirect(self, number: str, address: Address, key: str) -> str:
        def write(conn: Connection) -> str:
            _existing_order(conn, number)
            shipment = _outbound_shipment(conn, number)
            if shipment is None or shipment.shipped_at is None:
                raise ProviderError(f"order {number} has not shipped yet", code="not_shipped")
            if shipment.delivered_at is not None:
                raise ProviderError(f"order {number} was delivered", code="already_delivered")
            return self._record(conn, "redirect", number, key, address=_address_json(address))

        find = self._find(key, "redirect", number)
        return _write_once(self._engine, lambda conn: _id_or_none(find(conn)), write)

    def _open_claim(self, number: str, kind: str, key: str) -> str:
        find = self._find(key, "claim", number)

        def write(conn: Connection) -> str:
            _existing_order(conn, number)
            shipment = _outbound_shipment(conn, number)
            if shipment is None or shipment.shipped_at is None:
                raise ProviderError(f"order {number} has not shipped", code="not_shipped")
            if kind == "damaged" and shipment.delivered_at is None:
                raise ProviderError(f"order {number} was not delivered", code="not_delivered")
            already = conn.execute(
                select(shop_delivery_requests.c.id).where(
                    shop_delivery_requests.c.order_number == number,
                    shop_delivery_requests.c.kind == "claim",
                    shop_delivery_requests.c.claim_kind == kind,
                )
            ).scalar()
            if already is not None:
                return already
            return self._record(conn, "claim", number, key, claim_kind=kind)

        return _write_once(self._engine, lambda conn: _id_or_none(find(conn)), write)


def _id_or_none(row: Row[Any] | None) -> str | None:
    return None if row is None else row.id


def _day_or_none(row: Row[Any] | None) -> date | None:
    return None if row is None else row.day


class DemoCoupons:
    """`Coupons` over `shop_coupons` and the record of who used which (`shop_coupon_uses`).

    A check only reads; codes are matched ignoring case and surrounding spaces. Reasons are
    tried in this order, the first that applies wins: "unknown", "inactive", "expired",
    "already_used" (a single-use code this customer has used), "first_order_only" (the customer
    has, or with `order` would have, more than one order), "minimum_spend" (the order's subtotal
    is below the code's minimum; reaching it exactly qualifies), then "ok". What needs a customer
    or an order is not checked without one.
    """

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def coupon(self, code: str) -> Coupon | None:
        """The coupon with this code, or None."""
        return await asyncio.to_thread(self._coupon, code.strip().upper())

    async def active_codes(self) -> list[str]:
        """Codes a customer could use today, alphabetically."""
        return await asyncio.to_thread(self._active_codes)

    async def check(self, code: str, customer_id: str | None, order: Order | None) -> CouponCheck:
        """Whether `code` applies for this customer and order, why not, and what it takes off.

        `discount_cents` is the percentage of the order's subtotal, or the fixed amount (never
        more than the subtotal); free shipping takes nothing off the items, so 0 with `valid`.
        """
        return await asyncio.to_thread(self._check, code.strip().upper(), customer_id, order)

    def _coupon(self, code: str) -> Coupon | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(shop_coupons).where(shop_coupons.c.code == code)).first()
        return None if row is None else _coupon(row)

    def _active_codes(self) -> list[str]:
        now = _to_db(self._clock())
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(shop_coupons.c.code)
                    .where(
                        shop_coupons.c.active.is_(True),
                        (shop_coupons.c.expires_at.is_(None)) | (shop_coupons.c.expires_at > now),
                    )
                    .order_by(shop_coupons.c.code)
                ).scalars()
            )

    def _check(self, code: str, customer_id: str | None, order: Order | None) -> CouponCheck:
        coupon = self._coupon(code) if code else None
        if coupon is None:
            return CouponCheck(code=code, valid=False, reason="unknown")
        who = customer_id or (order.customer_id if order else None)
        reason = self._refusal(coupon, who, order)
        if reason is not None:
            return CouponCheck(code=code, valid=False, reason=reason, coupon=coupon)
        discount = _discount(coupon, order.total_cents) if order else 0
        return CouponCheck(
            code=code, valid=True, reason="ok", coupon=coupon, discount_cents=discount
        )

    def _refusal(self, coupon: Coupon, who: str | None, order: Order | None) -> str | None:
        if not coupon.active:
            return "inactive"
        if coupon.expires_at is not None and coupon.expires_at <= self._clock():
            return "expired"
        if who is not None and (coupon.single_use or coupon.first_order_only):
            with self._engine.connect() as conn:
                if coupon.single_use and _used(conn, coupon.code, who):
                    return "already_used"
                if coupon.first_order_only and not _first_order(conn, who, order):
                    return "first_order_only"
        if order is not None and order.total_cents < coupon.min_subtotal_cents:
            return "minimum_spend"
        return None


def _coupon(row: Row[Any]) -> Coupon:
    return Coupon(
        code=row.code,
        kind=row.kind,
        value=row.value,
        active=bool(row.active),
        min_subtotal_cents=row.min_subtotal_cents,
        first_order_only=bool(row.first_order_only),
        single_use=bool(row.single_use),
        expires_at=_from_db_or_none(row.expires_at),
    )


def _used(conn: Connection, code: str, customer_id: str) -> bool:
    return (
        conn.execute(
            select(shop_coupon_uses.c.code).where(
                shop_coupon_uses.c.code == code, shop_coupon_uses.c.customer_id == customer_id
            )
        ).first()
        is not None
    )


def _first_order(conn: Connection, customer_id: str, order: Order | None) -> bool:
    numbers = set(
        conn.execute(
            select(shop_orders.c.number).where(shop_orders.c.customer_id == customer_id)
        ).scalars()
    )
    if order is not None:
        numbers.add(order.number)
    return len(numbers) <= 1


def _discount(coupon: Coupon, subtotal_cents: int) -> int:
    if coupon.kind == "percent":
        return (subtotal_cents * coupon.value + 50) // 100  # half a cent rounds up
    if coupon.kind == "amount":
        return min(coupon.value, subtotal_cents)
    return 0


@dataclass(frozen=True)
class _LabelJob:
    """What a label maker needs for one RMA."""

    rma: ReturnAuthorization
    order: Order
    customer: Customer | None


class DemoReturns:
    """`Returns` over `shop_returns`: RMAs, their labels (from a `LabelMaker`), their receipt.

    Policy (windows, final sale) is the dialog's to apply; this store refuses only what no shop
    could do: a return for an unknown order or line ("not_found"), a second return of a line
    ("already_returned", enforced by a UNIQUE constraint), or an exchange for a size that is out
    of stock ("out_of_stock"; an exchange reserves one unit of `exchange_variant`).
    """

    def __init__(self, engine: Engine, labels: LabelMaker, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._labels = labels
        self._clock = clock

    async def create(
        self,
        order_number: str,
        line_ids: list[str],
        reason_code: str,
        resolution: str,
        *,
        idempotency_key: str,
        exchange_variant: str | None = None,
    ) -> ReturnAuthorization:
        """Authorize the return of `line_ids` ("1005-1", …); the same key returns the same RMA."""
        _require_key(idempotency_key)
        if resolution not in _RESOLUTIONS:
            raise ValueError(f"resolution {resolution!r}; known: {list(_RESOLUTIONS)}")
        lines = list(dict.fromkeys(line_ids))
        if not lines:
            raise ValueError("a return needs at least one order line")
        request = _ReturnRequest(
            _order_number(order_number),
            tuple(lines),
            reason_code.strip() or "unspecified",
            resolution,
            exchange_variant if resolution == "exchange" else None,
            idempotency_key,
        )
        return await asyncio.to_thread(self._create, request)

    async def label(self, rma: str, *, idempotency_key: str) -> Label:
        """The return label of `rma`, made once and marked sent ("label_sent").

        Asking again returns the same label; an expired link is replaced by a fresh one. Once the
        parcel is on its way ProviderError("label_used"); unknown RMA ProviderError("not_found").
        """
        _require_key(idempotency_key)
        job = await asyncio.to_thread(self._label_job, rma, idempotency_key)
        if isinstance(job, Label):
            return job
        label = await self._labels.make(job.rma, job.order, job.customer)
        return await asyncio.to_thread(self._record_label, job, label, idempotency_key)

    async def returns_of(self, order_number: str) -> list[ReturnAuthorization]:
        """The order's returns, oldest first."""
        return await asyncio.to_thread(self._returns_of, _order_number(order_number))

    async def receive(self, rma: str) -> ReturnAuthorization:
        """The warehouse has the parcel: the RMA is "received" and its label shipment delivered.

        Receiving twice changes nothing; a return already refunded or exchanged stays so.
        """
        return await asyncio.to_thread(self._receive, rma)

    async def label_pdf(self, rma: str) -> bytes | None:
        """The printable label of an RMA that has one, when this shop's labels are drawn here.

        None for an unknown RMA, one without a label, or a label maker that hosts its own PDFs.
        The caller checks the link's signature first (`EmbeddedLabels.verify`).
        """
        if not isinstance(self._labels, LabelPrinter):
            return None
        job = await asyncio.to_thread(self._job_or_none, rma)
        if job is None or job.rma.label is None:
            return None
        return await asyncio.to_thread(self._labels.pdf, job.rma, job.order, job.customer)

    def _create(self, request: _ReturnRequest) -> ReturnAuthorization:
        def find(conn: Connection) -> ReturnAuthorization | None:
            row = conn.execute(
                select(shop_returns).where(shop_returns.c.idempotency_key == request.key)
            ).first()
            if row is None:
                return None
            found = _return(conn, row)
            if (found.order_number, set(found.line_ids)) != (request.order, set(request.lines)):
                raise _key_reused(f"return {found.rma}")
            return found

        def write(conn: Connection) -> ReturnAuthorization:
            order = _existing_order(conn, request.order)
            by_id = {line.line_id: line for line in order.lines}
            unknown = [line_id for line_id in request.lines if line_id not in by_id]
            if unknown:
                raise ProviderError(
                    f"order {order.number} has no line {', '.join(unknown)}", code="not_found"
                )
            taken = conn.execute(
                select(shop_return_lines.c.line_id, shop_return_lines.c.rma).where(
                    shop_return_lines.c.order_number == order.number,
                    shop_return_lines.c.line_id.in_(request.lines),
                )
            ).first()
            if taken is not None:
                raise ProviderError(
                    f"line {taken.line_id} is already on return {taken.rma}",
                    code="already_returned",
                )
            if request.exchange_variant:
                _reserve(conn, [by_id[i] for i in request.lines], request.exchange_variant)
            rma = _next_id(conn, shop_returns.c.rma, "RMA-", 50001)
            conn.execute(
                shop_returns.insert(),
                {
                    "rma": rma,
                    "order_number": order.number,
                    "reason_code": request.reason_code,
                    "resolution": request.resolution,
                    "status": "authorized",
                    "exchange_variant": request.exchange_variant,
                    "idempotency_key": request.key,
                    "created_at": _to_db(self._clock()),
                },
            )
            conn.execute(
                shop_return_lines.insert(),
                [{"rma": rma, "order_number": order.number, "line_id": i} for i in request.lines],
            )
            return _return(conn, _return_row(conn, rma))

        return _write_once(self._engine, find, write)

    def _job_or_none(self, rma: str) -> _LabelJob | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(shop_returns).where(shop_returns.c.rma == rma)).first()
            if row is None:
                return None
            order = _existing_order(conn, row.order_number)
            return _LabelJob(_return(conn, row), order, _customer_of(conn, order.customer_id))

    def _label_job(self, rma: str, key: str) -> _LabelJob | Label:
        """The label to hand back as it is, or what the label maker needs to make one."""
        job = self._job_or_none(rma)
        if job is None:
            raise ProviderError(f"no return {rma!r}", code="not_found")
        with self._engine.connect() as conn:
            label_key = conn.execute(
                select(shop_returns.c.label_idempotency_key).where(shop_returns.c.rma == rma)
            ).scalar_one()
        label, status = job.rma.label, job.rma.status
        if label is not None and label_key == key:
            return label
        if status not in ("authorized", "label_sent"):
            raise ProviderError(f"the label of {rma} has already been used", code="label_used")
        if label is not None and label.url and not _expired(label, self._clock()):
            return label
        return job

    def _record_label(self, job: _LabelJob, label: Label, key: str) -> Label:
        rma, now = job.rma.rma, self._clock()
        address = job.order.shipping_address
        try:
            with self._engine.begin() as conn:
                known = conn.execute(
                    select(shop_shipments.c.tracking_number).where(
                        shop_shipments.c.tracking_number == label.tracking_number
                    )
                ).first()
                if known is None:
                    conn.execute(
                        shop_shipments.insert(),
                        {
                            "tracking_number": label.tracking_number,
                            "carrier": label.carrier,
                            "order_number": job.order.number,
                            "direction": "return",
                        },
                    )
                    where = (
                        f"{address.city}, {address.region}, {address.country}" if address else ""
                    )
                    _add_scan(
                        conn,
                        label.tracking_number,
                        now,
                        ShipmentStatus.PRE_TRANSIT,
                        "Shipping Label Created",
                        where,
                    )
                updated = conn.execute(
                    shop_returns.update()
                    .where(
                        shop_returns.c.rma == rma,
                        shop_returns.c.status.in_(("authorized", "label_sent")),
                    )
                    .values(
                        status="label_sent",
                        label_url=label.url,
                        label_carrier=label.carrier,
                        label_tracking_number=label.tracking_number,
                        label_expires_at=None
                        if label.expires_at is None
                        else _to_db(label.expires_at),
                        label_idempotency_key=key,
                    )
                )
                if updated.rowcount != 1:
                    raise ProviderError(
                        f"the label of {rma} has already been used", code="label_used"
                    )
        except IntegrityError:
            # A concurrent call recorded this label first; theirs is the one to hand out.
            stored = self._job_or_none(rma)
            if stored is None or stored.rma.label is None:
                raise
            return stored.rma.label
        return label

    def _returns_of(self, number: str) -> list[ReturnAuthorization]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shop_returns)
                .where(shop_returns.c.order_number == number)
                .order_by(shop_returns.c.created_at, shop_returns.c.rma)
            ).all()
            return [_return(conn, row) for row in rows]

    def _receive(self, rma: str) -> ReturnAuthorization:
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(select(shop_returns).where(shop_returns.c.rma == rma)).first()
            if row is None:
                raise ProviderError(f"no return {rma!r}", code="not_found")
            if row.status in ("authorized", "label_sent", "in_transit"):
                conn.execute(
                    shop_returns.update()
                    .where(shop_returns.c.rma == rma)
                    .values(status="received", received_at=_to_db(now))
                )
                if row.label_tracking_number is not None:
                    _mark_delivered(conn, row.label_tracking_number, now)
            return _return(conn, _return_row(conn, rma))


@dataclass(frozen=True)
class _ReturnRequest:
    order: str
    lines: tuple[str, ...]
    reason_code: str
    resolution: str
    exchange_variant: str | None
    key: str


def _expired(label: Label, now: datetime) -> bool:
    return label.expires_at is not None and label.expires_at <= now


def _reserve(conn: Connection, lines: Sequence[OrderLine], variant: str) -> None:
    """Takes one unit of `variant` per line off stock, for SKUs whose stock the shop counts."""
    for line in lines:
        counted = conn.execute(
            select(func.count()).select_from(shop_stock).where(shop_stock.c.sku == line.sku)
        ).scalar_one()
        if not counted:
            continue
        taken = conn.execute(
            shop_stock.update()
            .where(
                shop_stock.c.sku == line.sku,
                shop_stock.c.variant == variant,
                shop_stock.c.on_hand > 0,
            )
            .values(on_hand=shop_stock.c.on_hand - 1)
        )
        if taken.rowcount != 1:
            raise ProviderError(f"{line.name} in {variant} is out of stock", code="out_of_stock")


def _mark_delivered(conn: Connection, tracking_number: str, now: datetime) -> None:
    shipment = conn.execute(
        select(shop_shipments).where(shop_shipments.c.tracking_number == tracking_number)
    ).first()
    if shipment is None or shipment.delivered_at is not None:
        return
    conn.execute(
        shop_shipments.update()
        .where(shop_shipments.c.tracking_number == tracking_number)
        .values(
            delivered_at=_to_db(now),
            shipped_at=shipment.shipped_at if shipment.shipped_at is not None else _to_db(now),
        )
    )
    _add_scan(conn, tracking_number, now, ShipmentStatus.DELIVERED, "Delivered, Dock", _WAREHOUSE)


def _return_row(conn: Connection, rma: str) -> Row[Any]:
    return conn.execute(select(shop_returns).where(shop_returns.c.rma == rma)).one()


def _return(conn: Connection, row: Row[Any]) -> ReturnAuthorization:
    line_ids = conn.execute(
        select(shop_return_lines.c.line_id)
        .where(shop_return_lines.c.rma == row.rma)
        .order_by(shop_return_lines.c.line_id)
    ).scalars()
    label = None
    if row.label_tracking_number is not None:
        label = Label(
            url=row.label_url or "",
            carrier=row.label_carrier or "",
            tracking_number=row.label_tracking_number,
            expires_at=_from_db_or_none(row.label_expires_at),
        )
    return ReturnAuthorization(
        rma=row.rma,
        order_number=row.order_number,
        line_ids=tuple(line_ids),
        reason_code=row.reason_code,
        resolution=row.resolution,
        status=row.status,
        created_at=_from_db(row.created_at),
        label=label,
        exchange_variant=row.exchange_variant,
        received_at=_from_db_or_none(row.received_at),
    )


class DemoRefunds:
    """`Refunds` over a ledger (`shop_refunds`) that holds at most one refund per order line.

    The UNIQUE(order_number, line_id) constraint makes "once per line, ever" the database's
    promise, not just this code's. Refunds go to the original payment method only; refusals are
    ProviderError "not_found", "charge_already_refunded", "invalid_amount" (not above zero) and
    "amount_too_large" (above the line's price times quantity). A refund of a received return's
    line marks the return "refunded", and an order refunded in full becomes "refunded".
    """

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def refund(
        self,
        order_number: str,
        line_id: str,
        amount_cents: int,
        *,
        idempotency_key: str,
        reason: str,
    ) -> Refund:
        """Refund `amount_cents` of one line; the same key returns the same refund."""
        _require_key(idempotency_key)
        number = _order_number(order_number)
        return await asyncio.to_thread(
            self._refund, number, line_id, amount_cents, idempotency_key, reason
        )

    async def refunds_of(self, order_number: str) -> list[Refund]:
        """The order's refunds, oldest first."""
        return await asyncio.to_thread(self._refunds_of, _order_number(order_number))

    def _refund(self, number: str, line_id: str, amount: int, key: str, reason: str) -> Refund:
        def find(conn: Connection) -> Refund | None:
            row = conn.execute(
                select(shop_refunds).where(shop_refunds.c.idempotency_key == key)
            ).first()
            if row is None:
                return None
            if (row.order_number, row.line_id, row.amount_cents) != (number, line_id, amount):
                raise _key_reused(f"refund {row.id}")
            return _refund(row)

        def write(conn: Connection) -> Refund:
            order = _existing_order(conn, number)
            line = next((x for x in order.lines if x.line_id == line_id), None)
            if line is None:
                raise ProviderError(f"order {number} has no line {line_id!r}", code="not_found")
            earlier = conn.execute(
                select(shop_refunds.c.id).where(
                    shop_refunds.c.order_number == number, shop_refunds.c.line_id == line_id
                )
            ).scalar()
            if earlier is not None:
                raise ProviderError(
                    f"line {line_id} was already refunded ({earlier})",
                    code="charge_already_refunded",
                )
            if amount <= 0:
                raise ProviderError(f"refund of {amount} cents", code="invalid_amount")
            limit = line.price_cents * line.quantity
            if amount > limit:
                raise ProviderError(
                    f"refund of {amount} cents exceeds the line's {limit}", code="amount_too_large"
                )
            now = self._clock()
            row = {
                "id": _provider_id("re_"),
                "order_number": number,
                "line_id": line_id,
                "amount_cents": amount,
                "status": "succeeded",
                "method": "original_payment",
                "reason": reason,
                "payment_ref": order.payment_ref,
                "idempotency_key": key,
                "created_at": _to_db(now),
            }
            conn.execute(shop_refunds.insert(), row)
            _after_refund(conn, order, line_id)
            return _refund(
                conn.execute(select(shop_refunds).where(shop_refunds.c.id == row["id"])).one()
            )

        return _write_once(self._engine, find, write)

    def _refunds_of(self, number: str) -> list[Refund]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shop_refunds)
                .where(shop_refunds.c.order_number == number)
                .order_by(shop_refunds.c.created_at, shop_refunds.c.id)
            ).all()
        return [_refund(row) for row in rows]


def _after_refund(conn: Connection, order: Order, line_id: str) -> None:
    """What a refund settles: the received return of that line, and an order refunded in full."""
    returns_of_line = select(shop_return_lines.c.rma).where(
        shop_return_lines.c.order_number == order.number, shop_return_lines.c.line_id == line_id
    )
    conn.execute(
        shop_returns.update()
        .where(shop_returns.c.rma.in_(returns_of_line), shop_returns.c.status == "received")
        .values(status="refunded")
    )
    refunded = dict(
        conn.execute(
            select(shop_refunds.c.line_id, shop_refunds.c.amount_cents).where(
                shop_refunds.c.order_number == order.number
            )
        ).all()
    )
    if all(refunded.get(x.line_id) == x.price_cents * x.quantity for x in order.lines):
        conn.execute(
            shop_orders.update()
            .where(shop_orders.c.number == order.number)
            .values(fulfillment="refunded")
        )


def _refund(row: Row[Any]) -> Refund:
    return Refund(
        id=row.id,
        order_number=row.order_number,
        line_id=row.line_id,
        amount_cents=row.amount_cents,
        status=row.status,
        created_at=_from_db(row.created_at),
        method=row.method,
        failure_reason=row.failure_reason,
    )


_PRIORITIES = ("low", "normal", "high", "urgent")


class DemoHelpdesk:
    """`Helpdesk` that files tickets in `shop_tickets` ("T-10001", …) for people to pick up.

    Idempotent by key; tickets survive a reseed of the demo shop, as a real helpdesk's would.
    """

    def __init__(self, engine: Engine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def create_ticket(
        self,
        subject: str,
        body: str,
        *,
        requester_phone: str | None,
        requester_email: str | None,
        tags: list[str],
        priority: str,
        idempotency_key: str,
    ) -> Ticket:
        """File a ticket; the same key returns the first ticket and files nothing new."""
        _require_key(idempotency_key)
        if not subject.strip():
            raise ValueError("a ticket needs a subject")
        if priority not in _PRIORITIES:
            raise ValueError(f"priority {priority!r}; known: {list(_PRIORITIES)}")
        phone = None
        if requester_phone:
            phone = normalize_phone(requester_phone) or requester_phone.strip()
        row = {
            "subject": subject.strip(),
            "body": body,
            "requester_phone": phone,
            "requester_email": (requester_email or "").strip().lower() or None,
            "tags": json.dumps(list(dict.fromkeys(tags))),
            "priority": priority,
            "status": "open",
            "idempotency_key": idempotency_key,
        }
        return await asyncio.to_thread(self._create, row)

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket filed, oldest first, for operators and tests."""
        columns = [c for c in shop_tickets.c if c.name != "seq"]
        with self._engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(shop_tickets.c.seq)).all()
        return [
            {
                **row._asdict(),
                "tags": json.loads(row.tags),
                "created_at": _from_db(row.created_at),
            }
            for row in rows
        ]

    def _create(self, values: dict[str, Any]) -> Ticket:
        key = values["idempotency_key"]

        def find(conn: Connection) -> Ticket | None:
            row = conn.execute(
                select(shop_tickets).where(shop_tickets.c.idempotency_key == key)
            ).first()
            return (
                None if row is None else Ticket(id=row.id, subject=row.subject, status=row.status)
            )

        def write(conn: Connection) -> Ticket:
            ticket_id = _next_id(conn, shop_tickets.c.id, "T-", 10001)
            conn.execute(
                shop_tickets.insert(),
                {**values, "id": ticket_id, "created_at": _to_db(self._clock())},
            )
            return Ticket(id=ticket_id, subject=values["subject"], status="open")

        return _write_once(self._engine, find, write)


class DemoShop:
    """Every capability of the demo shop over one engine.

    `.orders` `.tracking` `.deliveries` `.coupons` `.returns` `.refunds` `.messenger`
    `.helpdesk`, and `.labels`, the label maker returns use: by default `EmbeddedLabels` signed
    with the public development secret and linking to http://localhost:8080 — a server passes
    its own.
    """

    def __init__(
        self, engine: Engine, clock: Clock = _utc_now, labels: LabelMaker | None = None
    ) -> None:
        self.engine = engine
        self.labels: LabelMaker = labels or EmbeddedLabels(
            DEV_LABEL_SECRET, "http://localhost:8080", clock=clock
        )
        self.orders = DemoOrders(engine, clock=clock)
        self.tracking = DemoTracking(engine, clock=clock)
        self.deliveries = DemoDeliveries(engine, clock=clock)
        self.coupons = DemoCoupons(engine, clock=clock)
        self.returns = DemoReturns(engine, self.labels, clock=clock)
        self.refunds = DemoRefunds(engine, clock=clock)
        self.messenger = DemoMessenger(engine, clock=clock)
        self.helpdesk = DemoHelpdesk(engine, clock=clock)

    @classmethod
    def in_memory(
        cls,
        today: date | None = None,
        clock: Clock = _utc_now,
        labels: LabelMaker | None = None,
    ) -> DemoShop:
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
        return cls(engine, clock=clock, labels=labels)


# --------------------------------------------------------------------------------------------
# Demo data (docs/DESIGN.md, "The demo shop"); days are relative to the seeding day
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
    line_id: str
    reason_code: str
    status: str
    created_day: int
    label_tracking_number: str  # its scans say when the label was used and the parcel received
    refunded_day: int | None = None
    refund_cents: int | None = None


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

# Each customer's orders go to their home, in the ZIP code they give on the phone.
_ADDRESSES = {
    "cust_001": Address("742 Valencia St", "San Francisco", "CA", "94110", line2="Apt 3"),
    "cust_002": Address("350 W 31st St", "New York", "NY", "10001", line2="Apt 12B"),
    "cust_003": Address("2150 N Halsted St", "Chicago", "IL", "60614", line2="Unit 2"),
    "cust_004": Address("1100 E 6th St", "Austin", "TX", "73301"),
    "cust_005": Address("88 Pearl St", "Cambridge", "MA", "02139", line2="Apt 4"),
    "cust_006": Address("1420 5th Ave", "Seattle", "WA", "98101", line2="Apt 1807"),
}

# How each customer paid, as the agent would say it.
_PAYMENT_METHODS = {
    "cust_001": "your Visa ending in 4242",
    "cust_002": "your Mastercard ending in 4444",
    "cust_003": "your American Express ending in 8431",
    "cust_004": "your Visa ending in 1881",
    "cust_005": "your Discover ending in 1117",
    "cust_006": "your Mastercard ending in 5100",
}

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
            # At midnight UTC, so "nine days without a scan" holds at any hour of the seed day.
            _Scan(-9, "00:00", _S.IN_TRANSIT, "Departed from Facility", "Oklahoma City, OK, US"),
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
        line_id="1011-1",
        reason_code="no_longer_needed",
        status="refunded",
        created_day=-10,
        label_tracking_number="9420111899223855031162",
        refunded_day=-2,
        refund_cents=8000,
    ),
    _ReturnSeed(
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

    `today` defaults to the current UTC date. Reseeding puts the shop back as docs/DESIGN.md
    describes it, in one transaction: customers, orders, stock, coupons and their uses, and every
    return, refund, address change and delivery request, calls' included, are replaced by the
    designed ones (1011 returned and refunded, 1012's return on its way back), so each demo
    starts from the same facts. What was sent to a customer or handed to a person is kept:
    texts (`shop_sms`) and helpdesk tickets (`shop_tickets`).

    Demo tables written by an older version of this module are dropped and created afresh.
    """
    rows = _demo_rows(_Calendar(today or _utc_now().date()))
    _drop_outdated_tables(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table in reversed(_SEEDED_TABLES):
            conn.execute(table.delete())
        for table in _SEEDED_TABLES:
            if rows.get(table):
                conn.execute(table.insert(), rows[table])


def ensure_schema(engine: Engine, today: date | None = None) -> bool:
    """Make the database fit for this version of the shop, at start-up; True if it reseeded.

    Missing tables are created. Demo tables written by an older version cannot be read, so they
    are rebuilt and the shop reseeded (texts and tickets kept); an up-to-date shop is untouched.
    """
    if _drop_outdated_tables(engine):
        seed(engine, today)
        return True
    metadata.create_all(engine)
    return False


def _drop_outdated_tables(engine: Engine) -> bool:
    """Drops the reseeded tables when any lacks a column (or has one too many) of today's schema.

    Their rows are about to be replaced anyway; the kept tables are never dropped.
    """
    existing = inspect(engine)
    present = set(existing.get_table_names())
    for table in _SEEDED_TABLES:
        if table.name not in present:
            continue
        columns = {c["name"] for c in existing.get_columns(table.name)}
        if columns != {c.name for c in table.c}:
            # Old tables may carry foreign keys today's metadata no longer knows: children first.
            with engine.begin() as conn:
                for stale in reversed(_SEEDED_TABLES):
                    if stale.name in present:
                        conn.execute(text(f'DROP TABLE "{stale.name}"'))
            return True
    return False


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
        shop_returns: [_seeded_return_row(ret, cal) for ret in _RETURNS],
        shop_return_lines: [
            {"rma": ret.rma, "order_number": ret.order, "line_id": ret.line_id} for ret in _RETURNS
        ],
        shop_refunds: [
            _seeded_refund_row(ret, cal) for ret in _RETURNS if ret.refunded_day is not None
        ],
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
        **_address_columns(_ADDRESSES[order.customer_id]),
        "payment_method": _PAYMENT_METHODS[order.customer_id],
        "payment_ref": _provider_id("pi_", f"payment:{order.number}"),
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
        "line_id": f"{order.number}-1",
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


def _seeded_return_row(ret: _ReturnSeed, cal: _Calendar) -> dict[str, Any]:
    label = _shipment_seed(ret.label_tracking_number)
    return {
        "rma": ret.rma,
        "order_number": ret.order,
        "reason_code": ret.reason_code,
        "resolution": "refund",
        "status": ret.status,
        "created_at": cal.at(ret.created_day, "16:00"),
        # A label printed in the past: its link is long gone, the parcel's tracking is not.
        "label_carrier": label.carrier,
        "label_tracking_number": ret.label_tracking_number,
        "label_used_at": _scan_at(_first_scan(label.scans, _MOVING), cal),
        "received_at": _scan_at(_first_scan(label.scans, _DELIVERED), cal),
    }


def _seeded_refund_row(ret: _ReturnSeed, cal: _Calendar) -> dict[str, Any]:
    assert ret.refunded_day is not None and ret.refund_cents is not None
    return {
        "id": _provider_id("re_", f"refund:{ret.line_id}"),
        "order_number": ret.order,
        "line_id": ret.line_id,
        "amount_cents": ret.refund_cents,
        "status": "succeeded",
        "method": "original_payment",
        "reason": f"return {ret.rma} received",
        "payment_ref": _provider_id("pi_", f"payment:{ret.order}"),
        "idempotency_key": f"seed:refund:{ret.line_id}",
        "created_at": cal.at(ret.refunded_day, "11:00"),
    }
