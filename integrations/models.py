"""The shop's world as the agent sees it: customers, orders, shipments.

Plain frozen dataclasses: every integration (the embedded demo shop, Shopify, a carrier API)
returns these, so `dialog/` never sees a provider's payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "Address",
    "Attachment",
    "Coupon",
    "CouponCheck",
    "Customer",
    "Label",
    "Order",
    "OrderLine",
    "PhotoRequest",
    "Refund",
    "ReturnAuthorization",
    "Shipment",
    "ShipmentStatus",
    "Ticket",
    "TrackingEvent",
]


@dataclass(frozen=True)
class Customer:
    """A shop customer. `phone` is E.164."""

    id: str
    name: str
    phone: str
    email: str
    zip: str

    @property
    def first_name(self) -> str:
        """The name a person would greet them by."""
        return self.name.split()[0]


@dataclass(frozen=True)
class Address:
    """A postal address."""

    line1: str
    city: str
    region: str
    postal_code: str
    country: str = "US"
    line2: str = ""


@dataclass(frozen=True)
class OrderLine:
    """One item of an order. Money is in cents. `line_id` is unique within the order."""

    sku: str
    name: str
    category: str
    price_cents: int
    quantity: int = 1
    final_sale: bool = False
    variant: str | None = None
    line_id: str = ""


@dataclass(frozen=True)
class Order:
    """An order with its fulfilment facts. `number` is the shop's human order number ("1001")."""

    number: str
    customer_id: str
    placed_at: datetime
    lines: tuple[OrderLine, ...]
    fulfillment: str  # "unfulfilled" | "fulfilled" | "returned" | "refunded" | "cancelled"
    carrier: str | None = None
    tracking_number: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    shipping_address: Address | None = None
    payment_method: str = ""  # as said to the caller: "your Visa ending in 4242"
    payment_ref: str | None = None  # the provider's charge or payment intent id

    @property
    def total_cents(self) -> int:
        """Sum of the lines."""
        return sum(line.price_cents * line.quantity for line in self.lines)


class ShipmentStatus(StrEnum):
    """Carrier status normalized across carriers and aggregators."""

    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    DELAYED = "delayed"  # e.g. held at customs, weather
    EXCEPTION = "exception"
    RETURN_TO_SENDER = "return_to_sender"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TrackingEvent:
    """One carrier scan."""

    at: datetime
    status: ShipmentStatus
    description: str
    location: str = ""


@dataclass(frozen=True)
class Shipment:
    """A shipment's normalized state. `fetched_at` says how fresh it is."""

    carrier: str
    tracking_number: str
    status: ShipmentStatus
    detail: str
    fetched_at: datetime
    eta: date | None = None
    events: tuple[TrackingEvent, ...] = field(default_factory=tuple)
    tracking_url: str = ""

    @property
    def last_scan(self) -> TrackingEvent | None:
        """The most recent carrier scan, if any."""
        return max(self.events, key=lambda e: e.at) if self.events else None


@dataclass(frozen=True)
class Coupon:
    """A discount code. `kind` is "percent", "amount" or "free_shipping"."""

    code: str
    kind: str
    value: int  # percent, or cents
    active: bool = True
    min_subtotal_cents: int = 0
    first_order_only: bool = False
    single_use: bool = False
    expires_at: datetime | None = None


@dataclass(frozen=True)
class CouponCheck:
    """Whether a code applies, and why not.

    `reason` is one of: "ok", "unknown", "expired", "inactive", "minimum_spend",
    "first_order_only", "already_used".
    """

    code: str
    valid: bool
    reason: str
    coupon: Coupon | None = None
    discount_cents: int = 0


@dataclass(frozen=True)
class Label:
    """A return shipping label."""

    url: str
    carrier: str
    tracking_number: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ReturnAuthorization:
    """An RMA. `status`: "authorized", "label_sent", "in_transit", "received", "refunded",
    "exchanged", "closed". `resolution`: "refund", "exchange", "store_credit"."""

    rma: str
    order_number: str
    line_ids: tuple[str, ...]
    reason_code: str
    resolution: str
    status: str
    created_at: datetime
    label: Label | None = None
    exchange_variant: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class Refund:
    """Money returned for one order line. `status`: "succeeded", "pending", "failed"."""

    id: str
    order_number: str
    line_id: str
    amount_cents: int
    status: str
    created_at: datetime
    method: str = "original_payment"
    failure_reason: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A helpdesk ticket for a person to pick up."""

    id: str
    subject: str
    status: str = "open"
    url: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file for a helpdesk ticket: its name, media type and bytes.

    `ref` names a copy kept in the store (a photo: "photo:12"), so a queued attachment can name
    the file instead of carrying it; `data` may then be empty until the file is read back.
    """

    filename: str
    content_type: str
    data: bytes = b""
    ref: str = ""


@dataclass(frozen=True)
class PhotoRequest:
    """A customer asked for photos of damage: the signed upload link texted to them, and what
    the photos are for (the order line, the resolution waiting for them, the ticket)."""

    id: str
    order_number: str
    line_id: str
    phone: str
    resolution: str
    url: str
    expires_at: datetime
    status: str = "pending"
    ticket_id: str = ""
    call_sid: str | None = None
    photo_count: int = 0
    max_photos: int = 5
    max_bytes: int = 10 * 1024 * 1024
