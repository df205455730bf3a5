"""`DemoCoupons`: the demo shop's coupon codes, and whether one applies to an order."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from integrations.clock import Clock, utc_now
from integrations.demo.rows import from_db_or_none, to_db
from integrations.demo.schema import shop_coupon_uses, shop_coupons, shop_orders
from integrations.models import Coupon, CouponCheck, Order


class DemoCoupons:
    """`Coupons` over `shop_coupons` and the record of who used which (`shop_coupon_uses`).

    A check only reads; codes are matched ignoring case and surrounding spaces. Reasons are
    tried in this order, the first that applies wins: "unknown", "inactive", "expired",
    "already_used" (a single-use code this customer has used), "first_order_only" (the customer
    has, or with `order` would have, more than one order), "minimum_spend" (the order's subtotal
    is below the code's minimum; reaching it exactly qualifies), then "ok". What needs a customer
    or an order is not checked without one.
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
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
        now = to_db(self._clock())
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
        expires_at=from_db_or_none(row.expires_at),
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
