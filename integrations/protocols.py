"""One `typing.Protocol` per capability the agent uses (DESIGN.md, "dialog and integrations").

The embedded demo shop implements every one; real provider clients implement the ones their
provider covers. `dialog/` depends only on these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from integrations.models import Customer, Order, Shipment

__all__ = ["EventSink", "Messenger", "OrderSource", "Services", "Tracking"]


@runtime_checkable
class OrderSource(Protocol):
    """Customers and their orders."""

    async def customer_by_phone(self, phone: str) -> Customer | None: ...
    async def customer_by_email(self, email: str) -> Customer | None: ...
    async def customer(self, customer_id: str) -> Customer | None: ...
    async def orders_of(self, customer_id: str) -> list[Order]: ...
    async def order(self, number: str) -> Order | None: ...


@runtime_checkable
class Tracking(Protocol):
    """Normalized carrier tracking."""

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None: ...


@runtime_checkable
class Messenger(Protocol):
    """Text messages to customers. Returns the provider's message id."""

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str: ...


@runtime_checkable
class EventSink(Protocol):
    """Where the agent records what it decided and did (event names in DESIGN.md)."""

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None: ...


@dataclass
class Services:
    """Everything the dialog may reach, handed to `dialog.Agent`."""

    orders: OrderSource
    tracking: Tracking
    messenger: Messenger
    events: EventSink
    shop_name: str = "the shop"
