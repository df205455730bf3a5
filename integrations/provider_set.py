"""`Providers`: the one implementation of each capability a running shop uses.

`integrations.providers.build_providers` chooses them (real where configured, the demo shop's
otherwise); the dialog's services, the outbox worker and the outbound scheduler all take them
from here, so everything in one process talks to the same provider for the same thing. Typed
fields rather than a string-keyed mapping, so a misspelt capability is a type error, not a
`KeyError` on the first call that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from integrations.demo import DemoShop
from integrations.labels import LabelMaker
from integrations.protocols import (
    Coupons,
    Deliveries,
    Helpdesk,
    Messenger,
    OrderFeed,
    OrderSource,
    Refunds,
    Returns,
    Tracking,
)

__all__ = ["Providers", "close_providers"]


@dataclass
class Providers:
    """Each capability's implementation. `order_feed` is the outbound scheduler's, always from
    the same shop as `orders` (None: scheduling off); `labels` makes the demo returns' labels
    and is kept here so its client is closed with the others."""

    orders: OrderSource
    tracking: Tracking
    refunds: Refunds
    messenger: Messenger
    helpdesk: Helpdesk
    coupons: Coupons
    returns: Returns
    deliveries: Deliveries
    labels: LabelMaker
    order_feed: OrderFeed | None = None

    @classmethod
    def demo(cls, shop: DemoShop) -> Providers:
        """Every capability from the embedded demo shop, and no order feed."""
        return cls(
            orders=shop.orders,
            tracking=shop.tracking,
            refunds=shop.refunds,
            messenger=shop.messenger,
            helpdesk=shop.helpdesk,
            coupons=shop.coupons,
            returns=shop.returns,
            deliveries=shop.deliveries,
            labels=shop.labels,
        )

    def clients(self) -> list[Any]:
        """The implementations that hold connections (those with `aclose`), each once: one
        client may serve several capabilities."""
        found: dict[int, Any] = {}
        for f in fields(self):
            provider = getattr(self, f.name)
            if getattr(provider, "aclose", None) is not None:
                found.setdefault(id(provider), provider)
        return list(found.values())


async def close_providers(providers: Providers) -> None:
    """Close every provider client that holds connections (each once)."""
    for client in providers.clients():
        await client.aclose()
