"""The embedded demo shop: every capability of `integrations.protocols`, in SQL.

Everything the agent needs to run without any provider: the tables (`schema`), the shop of
docs/DESIGN.md as seed data (`data`) and `seed()`, which writes it with dates relative to the day
it runs (`seed`), and one module per capability over a sync `Engine` — orders, tracking,
deliveries, coupons, returns, refunds, SMS and helpdesk tickets — which `DemoShop` assembles.
"""

from integrations.demo.carriers import tracking_url
from integrations.demo.coupons import DemoCoupons
from integrations.demo.data import DEMO_SHOP, SUPPORT_LINE, ShopSeed
from integrations.demo.deliveries import DemoDeliveries
from integrations.demo.helpdesk import DemoHelpdesk
from integrations.demo.messenger import DemoMessenger
from integrations.demo.orders import DemoOrders
from integrations.demo.refunds import DemoRefunds
from integrations.demo.returns import DemoReturns
from integrations.demo.schema import (
    metadata,
    shop_address_changes,
    shop_coupon_uses,
    shop_coupons,
    shop_customers,
    shop_delivery_requests,
    shop_order_lines,
    shop_orders,
    shop_refunds,
    shop_return_lines,
    shop_returns,
    shop_shipments,
    shop_sms,
    shop_stock,
    shop_ticket_attachments,
    shop_tickets,
    shop_tracking_events,
)
from integrations.demo.seed import ensure_schema, seed
from integrations.demo.shop import DemoShop
from integrations.demo.tracking import DemoTracking

__all__ = [
    "DEMO_SHOP",
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
    "ShopSeed",
    "ensure_schema",
    "metadata",
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
    "shop_ticket_attachments",
    "shop_tickets",
    "shop_tracking_events",
    "tracking_url",
]
