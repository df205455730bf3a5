"""The shop's world as the agent sees it: customers, orders, shipments.

Plain frozen dataclasses: every integration (the embedded demo shop, Shopify, a carrier API)
returns these, so `dialog/` never sees a provider's payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

__all__ = ["Customer", "Order", "OrderLine", "Shipment", "ShipmentStatus", "TrackingEvent"]


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
class OrderLine:
    """One item of an order. Money is in cents."""

    sku: str
    name: str
    category: str
    price_cents: int
    quantity: int = 1
    final_sale: bool = False
    variant: str | None = None


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
