"""One `typing.Protocol` per capability the agent uses (docs/DESIGN.md, "dialog and integrations").

The embedded demo shop implements every one; real provider clients implement the ones their
provider covers. `dialog/` depends only on these. Every method that changes the world takes an
`idempotency_key`: calling it twice with the same key does the thing once and returns the same
result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Protocol, runtime_checkable

from integrations.models import (
    Address,
    Attachment,
    Coupon,
    CouponCheck,
    Customer,
    Label,
    Order,
    PhotoRequest,
    Refund,
    ReturnAuthorization,
    Shipment,
    Ticket,
)

__all__ = [
    "ACTION_EVENTS",
    "DEFAULT_HUMAN_NUMBER",
    "Coupons",
    "Deliveries",
    "EventSink",
    "Helpdesk",
    "Messenger",
    "OrderFeed",
    "OrderSource",
    "PhotoRequests",
    "ProviderError",
    "Refunds",
    "Returns",
    "Services",
    "Tracking",
]


class ProviderError(Exception):
    """A provider failed or refused. `retryable` says whether trying again may help;
    `code` is a short machine-readable reason (e.g. "timeout", "charge_already_refunded")."""

    def __init__(self, message: str, *, code: str = "error", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@runtime_checkable
class OrderSource(Protocol):
    """Customers, their orders, stock for exchanges, and address changes."""

    async def customer_by_phone(self, phone: str) -> Customer | None: ...
    async def customer_by_email(self, email: str) -> Customer | None: ...
    async def customer(self, customer_id: str) -> Customer | None: ...
    async def orders_of(self, customer_id: str) -> list[Order]: ...
    async def order(self, number: str) -> Order | None: ...
    async def stock(self, sku: str) -> dict[str, int]:
        """Units in stock per variant (e.g. {"S": 4, "M": 0})."""
        ...

    async def update_shipping_address(
        self, number: str, address: Address, *, idempotency_key: str
    ) -> Order:
        """Change where an unshipped order goes; raises ProviderError once it has shipped."""
        ...


@runtime_checkable
class OrderFeed(Protocol):
    """Which orders the outbound scheduler looks at: those just delivered (for a confirmation
    call) and those on their way (for exception alerts). Order numbers as `Order.number`."""

    async def delivered_between(self, start: datetime, end: datetime) -> list[str]:
        """Orders delivered to the customer in [start, end), sorted."""
        ...

    async def in_flight(self) -> list[str]:
        """Orders shipped to the customer and not yet delivered, sorted."""
        ...


@runtime_checkable
class Tracking(Protocol):
    """Normalized carrier tracking."""

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None: ...


@runtime_checkable
class Deliveries(Protocol):
    """Acting on a shipment: reschedule a failed delivery, redirect, open a carrier claim."""

    async def reschedule(self, order_number: str, day: date, *, idempotency_key: str) -> date: ...
    async def redirect(self, order_number: str, address: Address, *, idempotency_key: str) -> str:
        """Ask the carrier to redirect a shipped parcel; returns the request id."""
        ...

    async def open_claim(self, order_number: str, kind: str, *, idempotency_key: str) -> str:
        """A lost or damaged parcel claim (`kind`: "lost", "damaged"); returns the claim id."""
        ...


@runtime_checkable
class Coupons(Protocol):
    """Discount codes."""

    async def coupon(self, code: str) -> Coupon | None: ...
    async def check(self, code: str, customer_id: str | None, order: Order | None) -> CouponCheck:
        """Whether `code` applies for this customer (and order), and why not."""
        ...

    async def active_codes(self) -> list[str]: ...


@runtime_checkable
class Returns(Protocol):
    """Return authorizations and their labels."""

    async def create(
        self,
        order_number: str,
        line_ids: list[str],
        reason_code: str,
        resolution: str,
        *,
        idempotency_key: str,
        exchange_variant: str | None = None,
    ) -> ReturnAuthorization: ...
    async def label(self, rma: str, *, idempotency_key: str) -> Label: ...
    async def returns_of(self, order_number: str) -> list[ReturnAuthorization]: ...
    async def receive(self, rma: str) -> ReturnAuthorization:
        """The warehouse has the parcel."""
        ...


@runtime_checkable
class Refunds(Protocol):
    """Money back, to the original payment method only, once per order line ever."""

    async def refund(
        self,
        order_number: str,
        line_id: str,
        amount_cents: int,
        *,
        idempotency_key: str,
        reason: str,
    ) -> Refund: ...
    async def refunds_of(self, order_number: str) -> list[Refund]: ...


@runtime_checkable
class Messenger(Protocol):
    """Text messages to customers. Returns the provider's message id."""

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str: ...


@runtime_checkable
class Helpdesk(Protocol):
    """Tickets for people."""

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
    ) -> Ticket: ...

    async def attach(
        self, ticket_id: str, files: list[Attachment], *, note: str, idempotency_key: str
    ) -> list[str]:
        """Add `files` to the ticket `ticket_id` with a private `note`; the attachments' ids.
        The same key attaches once."""
        ...


@runtime_checkable
class PhotoRequests(Protocol):
    """Signed, expiring links a customer uploads photos of damage through."""

    async def request_photos(
        self,
        *,
        order_number: str,
        line_id: str,
        phone: str,
        resolution: str,
        ticket_id: str,
        call_sid: str | None,
        idempotency_key: str,
    ) -> PhotoRequest:
        """Open (once per key) a request for photos of `line_id`; it holds the upload link."""
        ...


DEFAULT_HUMAN_NUMBER = "+18005550199"
"""Where callers go to a person unless the shop says otherwise (`POSTVOICE_HUMAN_NUMBER`)."""

ACTION_EVENTS = frozenset(
    {
        "sms.sent",
        "ticket.created",
        "return.created",
        "return.denied",
        "exchange.created",
        "replacement.created",
        "refund.created",
        "refund.pending_approval",
        "refund.denied",
        "refund.held",
        "coupon.checked",
        "coupon.offered",
        "delivery.rescheduled",
        "address.changed",
        "redirect.requested",
        "claim.opened",
        "photos.requested",
        "photos.received",
        "csat.recorded",
    }
)
"""Events of the agent deciding or doing something for the caller: what a person taking over
needs to know (`dialog.summary`) and what shows a call was served (the dashboard)."""


@runtime_checkable
class EventSink(Protocol):
    """Where the agent records what it decided and did (event names in docs/DESIGN.md)."""

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None: ...


@dataclass
class Services:
    """Everything the dialog may reach, handed to `dialog.Agent`."""

    orders: OrderSource
    tracking: Tracking
    messenger: Messenger
    events: EventSink
    shop_name: str = "the shop"
    coupons: Coupons | None = None
    returns: Returns | None = None
    refunds: Refunds | None = None
    helpdesk: Helpdesk | None = None
    deliveries: Deliveries | None = None
    photos: PhotoRequests | None = None
    human_number: str = DEFAULT_HUMAN_NUMBER
    timezone: tzinfo = UTC
