"""`DemoShop`: the embedded demo shop, every capability of `integrations.protocols` in SQL.

Each async method runs its queries in a worker thread so the event loop keeps streaming audio.
Policy (return windows, final sale, approval limits) is the dialog's; the shop only refuses what
a real provider would.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from integrations.clock import Clock, utc_now
from integrations.demo.coupons import DemoCoupons
from integrations.demo.data import DEMO_SHOP, ShopSeed
from integrations.demo.deliveries import DemoDeliveries
from integrations.demo.helpdesk import DemoHelpdesk
from integrations.demo.messenger import DemoMessenger
from integrations.demo.orders import DemoOrders
from integrations.demo.refunds import DemoRefunds
from integrations.demo.returns import DemoReturns
from integrations.demo.seed import seed
from integrations.demo.tracking import DemoTracking
from integrations.labels import DEV_LABEL_SECRET, EmbeddedLabels, LabelMaker

__all__ = ["DemoShop"]


class DemoShop:
    """Every capability of the demo shop over one engine.

    `.orders` `.tracking` `.deliveries` `.coupons` `.returns` `.refunds` `.messenger`
    `.helpdesk`, and `.labels`, the label maker returns use: by default `EmbeddedLabels` signed
    with the public development secret and linking to http://localhost:8080 — a server passes
    its own.
    """

    def __init__(
        self, engine: Engine, clock: Clock = utc_now, labels: LabelMaker | None = None
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
        clock: Clock = utc_now,
        labels: LabelMaker | None = None,
        data: ShopSeed = DEMO_SHOP,
    ) -> DemoShop:
        """A freshly seeded shop in a private in-memory SQLite database, for tests and demos.

        `data` is what it holds, by default the demo shop of docs/DESIGN.md.

        All threads share its one connection, so it is not for a server under load.
        """
        # With the default pool each worker thread would get its own, empty, in-memory database.
        engine = create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
        seed(engine, today, data)
        return cls(engine, clock=clock, labels=labels)
