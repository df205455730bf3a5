"""Seeding the demo shop: a `ShopSeed` written as rows, dates relative to the seed day.

`seed()` (re)writes the shop, `ensure_schema()` keeps an existing database fit for this version
of it at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, Table

from integrations.clock import utc_now
from integrations.demo.data import (
    DEMO_SHOP,
    CouponSeed,
    CustomerSeed,
    OrderSeed,
    ReturnSeed,
    Scan,
    ShipmentSeed,
    ShopSeed,
)
from integrations.demo.rows import address_columns, provider_id
from integrations.demo.schema import (
    SEEDED_TABLES,
    drop_outdated_tables,
    metadata,
    shop_coupon_uses,
    shop_coupons,
    shop_customers,
    shop_order_lines,
    shop_orders,
    shop_refunds,
    shop_return_lines,
    shop_returns,
    shop_shipments,
    shop_stock,
    shop_tracking_events,
)
from integrations.models import ShipmentStatus

__all__ = ["ensure_schema", "seed"]


def seed(engine: Engine, today: date | None = None, data: ShopSeed = DEMO_SHOP) -> None:
    """Create the demo shop's tables if missing and (re)write its data relative to `today`.

    `today` defaults to the current UTC date, `data` to the shop docs/DESIGN.md describes.
    Reseeding puts the shop back as `data` describes it, in one transaction: customers, orders,
    stock, coupons and their uses, and every return, refund, address change and delivery
    request, calls' included, are replaced by the designed ones (in the demo shop 1011 returned
    and refunded, 1012's return on its way back), so each demo starts from the same facts.
    What was sent to a customer or handed to a person is kept: texts (`shop_sms`) and helpdesk
    tickets (`shop_tickets`).

    Demo tables written by an older version of this package are dropped and created afresh.
    """
    rows = _rows(data, _Calendar(today or utc_now().date()))
    drop_outdated_tables(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table in reversed(SEEDED_TABLES):
            conn.execute(table.delete())
        for table in SEEDED_TABLES:
            if rows.get(table):
                conn.execute(table.insert(), rows[table])


def ensure_schema(engine: Engine, today: date | None = None) -> bool:
    """Make the database fit for this version of the shop, at start-up; True if it reseeded.

    Missing tables are created. Demo tables written by an older version cannot be read, so they
    are rebuilt and the shop reseeded (texts and tickets kept); an up-to-date shop is untouched.
    """
    if drop_outdated_tables(engine):
        seed(engine, today)
        return True
    metadata.create_all(engine)
    return False


@dataclass(frozen=True)
class _Calendar:
    """Turns the seed's relative days into dates and UTC datetimes."""

    today: date

    def on(self, day: int) -> date:
        return self.today + timedelta(days=day)

    def at(self, day: int, hhmm: str) -> datetime:
        return datetime.combine(self.on(day), time.fromisoformat(hhmm), UTC)


def _rows(data: ShopSeed, cal: _Calendar) -> dict[Table, list[dict[str, Any]]]:
    """The rows of every seeded table."""
    customers = {customer.id: customer for customer in data.customers}
    return {
        shop_customers: [
            {"id": c.id, "name": c.name, "phone": c.phone, "email": c.email, "zip": c.zip}
            for c in data.customers
        ],
        shop_orders: [_order_row(order, customers, data, cal) for order in data.orders],
        shop_order_lines: [_line_row(order) for order in data.orders],
        shop_shipments: [_shipment_row(ship, cal) for ship in data.shipments],
        shop_tracking_events: [
            {
                "tracking_number": ship.tracking_number,
                "at": cal.at(scan.day, scan.hhmm),
                "status": scan.status.value,
                "description": scan.description,
                "location": scan.location,
            }
            for ship in data.shipments
            for scan in ship.scans
        ],
        shop_coupons: [_coupon_row(coupon, cal) for coupon in data.coupons],
        shop_coupon_uses: [
            {
                "code": coupon.code,
                "customer_id": customer_id,
                "order_number": order,
                "used_at": cal.at(day, data.placed_at),
            }
            for coupon in data.coupons
            for customer_id, order, day in coupon.used_by
        ],
        shop_returns: [_seeded_return_row(ret, data, cal) for ret in data.returns],
        shop_return_lines: [
            {"rma": ret.rma, "order_number": ret.order, "line_id": ret.line_id}
            for ret in data.returns
        ],
        shop_refunds: [
            _seeded_refund_row(ret, cal) for ret in data.returns if ret.refunded_day is not None
        ],
        shop_stock: [
            {"sku": sku, "variant": variant, "on_hand": on_hand}
            for sku, variant, on_hand in data.stock
        ],
    }


def _order_row(
    order: OrderSeed, customers: dict[str, CustomerSeed], data: ShopSeed, cal: _Calendar
) -> dict[str, Any]:
    customer = customers[order.customer_id]
    return {
        "number": order.number,
        "customer_id": order.customer_id,
        "placed_at": cal.at(order.placed_day, data.placed_at),
        "fulfillment": order.fulfillment,
        "note": _order_note(order.number, data, cal),
        **address_columns(customer.address),
        "payment_method": customer.payment_method,
        "payment_ref": provider_id("pi_", f"payment:{order.number}"),
    }


def _order_note(number: str, data: ShopSeed, cal: _Calendar) -> str:
    """The merchant's note on an order, as a person reading the shop's admin would see it."""
    ret = next((r for r in data.returns if r.order == number), None)
    if ret is None:
        return ""
    if ret.refunded_day is not None:
        refund = f"${(ret.refund_cents or 0) / 100:.2f}"
        return (
            f"Return {ret.rma} received; refunded {refund} to the original card on "
            f"{cal.on(ret.refunded_day).isoformat()}."
        )
    label = _shipment_seed(data, ret.label_tracking_number)
    used = _first_scan(label.scans, _MOVING)
    used_on = cal.on(used.day).isoformat() if used else "?"
    return (
        f"Return {ret.rma}: label used on {used_on}, in transit back to the warehouse. "
        "Refund on receipt."
    )


def _line_row(order: OrderSeed) -> dict[str, Any]:
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


def _first_scan(scans: Iterable[Scan], statuses: frozenset[ShipmentStatus]) -> Scan | None:
    return next((scan for scan in scans if scan.status in statuses), None)


def _scan_at(scan: Scan | None, cal: _Calendar) -> datetime | None:
    return None if scan is None else cal.at(scan.day, scan.hhmm)


def _shipment_seed(data: ShopSeed, tracking_number: str) -> ShipmentSeed:
    return next(s for s in data.shipments if s.tracking_number == tracking_number)


def _shipment_row(ship: ShipmentSeed, cal: _Calendar) -> dict[str, Any]:
    return {
        "tracking_number": ship.tracking_number,
        "carrier": ship.carrier,
        "order_number": ship.order,
        "direction": ship.direction,
        "shipped_at": _scan_at(_first_scan(ship.scans, _MOVING), cal),
        "delivered_at": _scan_at(_first_scan(ship.scans, _DELIVERED), cal),
        "eta": None if ship.eta_day is None else cal.on(ship.eta_day),
    }


def _coupon_row(coupon: CouponSeed, cal: _Calendar) -> dict[str, Any]:
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


def _seeded_return_row(ret: ReturnSeed, data: ShopSeed, cal: _Calendar) -> dict[str, Any]:
    label = _shipment_seed(data, ret.label_tracking_number)
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


def _seeded_refund_row(ret: ReturnSeed, cal: _Calendar) -> dict[str, Any]:
    assert ret.refunded_day is not None and ret.refund_cents is not None
    return {
        "id": provider_id("re_", f"refund:{ret.line_id}"),
        "order_number": ret.order,
        "line_id": ret.line_id,
        "amount_cents": ret.refund_cents,
        "status": "succeeded",
        "method": "original_payment",
        "reason": f"return {ret.rma} received",
        "payment_ref": provider_id("pi_", f"payment:{ret.order}"),
        "idempotency_key": f"seed:refund:{ret.line_id}",
        "created_at": cal.at(ret.refunded_day, "11:00"),
    }
