"""`DemoRefunds`: a ledger holding at most one refund per order line."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from integrations.clock import Clock, utc_now
from integrations.demo.orders import existing_order
from integrations.demo.rows import (
    clean_order_number,
    from_db,
    key_reused,
    provider_id,
    require_key,
    to_db,
    write_once,
)
from integrations.demo.schema import shop_orders, shop_refunds, shop_return_lines, shop_returns
from integrations.models import Order, Refund
from integrations.protocols import ProviderError


class DemoRefunds:
    """`Refunds` over a ledger (`shop_refunds`) that holds at most one refund per order line.

    The UNIQUE(order_number, line_id) constraint makes "once per line, ever" the database's
    promise, not just this code's. Refunds go to the original payment method only; refusals are
    ProviderError "not_found", "charge_already_refunded", "invalid_amount" (not above zero) and
    "amount_too_large" (above the line's price times quantity). A refund of a received return's
    line marks the return "refunded", and an order refunded in full becomes "refunded".
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
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
        require_key(idempotency_key)
        number = clean_order_number(order_number)
        return await asyncio.to_thread(
            self._refund, number, line_id, amount_cents, idempotency_key, reason
        )

    async def refunds_of(self, order_number: str) -> list[Refund]:
        """The order's refunds, oldest first."""
        return await asyncio.to_thread(self._refunds_of, clean_order_number(order_number))

    def _refund(self, number: str, line_id: str, amount: int, key: str, reason: str) -> Refund:
        def find(conn: Connection) -> Refund | None:
            row = conn.execute(
                select(shop_refunds).where(shop_refunds.c.idempotency_key == key)
            ).first()
            if row is None:
                return None
            if (row.order_number, row.line_id, row.amount_cents) != (number, line_id, amount):
                raise key_reused(f"refund {row.id}")
            return _refund(row)

        def write(conn: Connection) -> Refund:
            order = existing_order(conn, number)
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
                "id": provider_id("re_"),
                "order_number": number,
                "line_id": line_id,
                "amount_cents": amount,
                "status": "succeeded",
                "method": "original_payment",
                "reason": reason,
                "payment_ref": order.payment_ref,
                "idempotency_key": key,
                "created_at": to_db(now),
            }
            conn.execute(shop_refunds.insert(), row)
            _after_refund(conn, order, line_id)
            return _refund(
                conn.execute(select(shop_refunds).where(shop_refunds.c.id == row["id"])).one()
            )

        return write_once(self._engine, find, write)

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
        created_at=from_db(row.created_at),
        method=row.method,
        failure_reason=row.failure_reason,
    )
