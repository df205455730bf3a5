"""`DemoOrders`, and reading orders with their lines and outbound shipment, for every capability."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, func, select

from integrations.clock import Clock, utc_now
from integrations.demo.rows import (
    address_columns,
    address_json,
    address_of,
    checked_address,
    clean_order_number,
    from_db,
    from_db_or_none,
    key_reused,
    require_key,
    to_db,
    write_once,
)
from integrations.demo.schema import (
    shop_address_changes,
    shop_customers,
    shop_order_lines,
    shop_orders,
    shop_shipments,
    shop_stock,
)
from integrations.models import Address, Customer, Order, OrderLine
from integrations.phones import normalize_phone
from integrations.protocols import ProviderError


class DemoOrders:
    """`OrderSource` over the demo shop's tables: customers, orders, stock, address changes."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def customer_by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone number, written any common way."""
        e164 = normalize_phone(phone)
        if e164 is None:
            return None
        return await asyncio.to_thread(self._customer_where, shop_customers.c.phone == e164)

    async def customer_by_email(self, email: str) -> Customer | None:
        """The customer with this email address, ignoring case and surrounding spaces."""
        wanted = email.strip().lower()
        if not wanted:
            return None
        condition = func.lower(shop_customers.c.email) == wanted
        return await asyncio.to_thread(self._customer_where, condition)

    async def customer(self, customer_id: str) -> Customer | None:
        """The customer with this id."""
        return await asyncio.to_thread(self._customer_where, shop_customers.c.id == customer_id)

    async def orders_of(self, customer_id: str) -> list[Order]:
        """The customer's orders, newest first."""
        return await asyncio.to_thread(self._orders_where, shop_orders.c.customer_id == customer_id)

    async def order(self, number: str) -> Order | None:
        """The order with this number ("1001" or "#1001"), or None."""
        key = clean_order_number(number)
        if not key:
            return None
        found = await asyncio.to_thread(self._orders_where, shop_orders.c.number == key)
        return found[0] if found else None

    async def stock(self, sku: str) -> dict[str, int]:
        """Units on hand per variant of `sku` ({"S": 4, "M": 2, …}); {} for an unknown SKU."""
        return await asyncio.to_thread(self._stock, sku)

    async def update_shipping_address(
        self, number: str, address: Address, *, idempotency_key: str
    ) -> Order:
        """Send an unshipped order to `address` and return the order as it now stands.

        Refuses with ProviderError: "not_found" for an unknown order, "already_shipped" once it
        has left the warehouse ("cancelled" for a cancelled one), "invalid_address" for an
        address a carrier could not deliver to. The same key again returns the order without
        changing it a second time.
        """
        require_key(idempotency_key)
        key = clean_order_number(number)
        clean = checked_address(address)
        return await asyncio.to_thread(self._update_address, key, clean, idempotency_key)

    def _stock(self, sku: str) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(shop_stock.c.variant, shop_stock.c.on_hand)
                .where(shop_stock.c.sku == sku)
                .order_by(shop_stock.c.variant)
            ).all()
        return {row.variant: row.on_hand for row in rows}

    def _update_address(self, number: str, address: Address, key: str) -> Order:
        def find(conn: Connection) -> str | None:
            applied_to = conn.execute(
                select(shop_address_changes.c.order_number).where(
                    shop_address_changes.c.idempotency_key == key
                )
            ).scalar_one_or_none()
            if applied_to is not None and applied_to != number:
                raise key_reused(f"order {applied_to}")
            return applied_to

        def write(conn: Connection) -> str:
            row = conn.execute(select(shop_orders).where(shop_orders.c.number == number)).first()
            if row is None:
                raise ProviderError(f"no order {number!r}", code="not_found")
            if row.fulfillment == "cancelled":
                raise ProviderError(f"order {number} was cancelled", code="cancelled")
            if row.fulfillment != "unfulfilled":
                raise ProviderError(f"order {number} has already shipped", code="already_shipped")
            previous = address_of(row)
            conn.execute(
                shop_address_changes.insert(),
                {
                    "idempotency_key": key,
                    "order_number": number,
                    "address": address_json(address),
                    "previous_address": address_json(previous) if previous else None,
                    "applied_at": to_db(self._clock()),
                },
            )
            # Only while it is still unfulfilled: a shipment recorded meanwhile wins.
            changed = conn.execute(
                shop_orders.update()
                .where(shop_orders.c.number == number, shop_orders.c.fulfillment == "unfulfilled")
                .values(**address_columns(address))
            )
            if changed.rowcount != 1:
                raise ProviderError(f"order {number} has already shipped", code="already_shipped")
            return number

        write_once(self._engine, find, write)
        (order,) = self._orders_where(shop_orders.c.number == number)
        return order

    def _customer_where(self, condition: ColumnElement[bool]) -> Customer | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(shop_customers.c.id).where(condition)).first()
            return None if row is None else customer_of(conn, row.id)

    def _orders_where(self, condition: ColumnElement[bool]) -> list[Order]:
        with self._engine.connect() as conn:
            return orders_where(conn, condition)


def orders_where(conn: Connection, condition: ColumnElement[bool]) -> list[Order]:
    """Orders matching `condition`, newest first, with their lines and outbound shipment."""
    rows = conn.execute(
        select(shop_orders)
        .where(condition)
        .order_by(shop_orders.c.placed_at.desc(), shop_orders.c.number.desc())
    ).all()
    numbers = [row.number for row in rows]
    lines = _lines_by_order(conn, numbers)
    shipments = outbound_shipments_by_order(conn, numbers)
    return [_order(row, lines.get(row.number, ()), shipments.get(row.number)) for row in rows]


def _order_or_none(conn: Connection, number: str) -> Order | None:
    found = orders_where(conn, shop_orders.c.number == number)
    return found[0] if found else None


def existing_order(conn: Connection, number: str) -> Order:
    """The order, or ProviderError("not_found")."""
    order = _order_or_none(conn, number)
    if order is None:
        raise ProviderError(f"no order {number!r}", code="not_found")
    return order


def customer_of(conn: Connection, customer_id: str) -> Customer | None:
    """The customer with this id, or None."""
    row = conn.execute(select(shop_customers).where(shop_customers.c.id == customer_id)).first()
    if row is None:
        return None
    return Customer(id=row.id, name=row.name, phone=row.phone, email=row.email, zip=row.zip)


def _lines_by_order(conn: Connection, numbers: Sequence[str]) -> dict[str, tuple[OrderLine, ...]]:
    if not numbers:
        return {}
    rows = conn.execute(
        select(shop_order_lines)
        .where(shop_order_lines.c.order_number.in_(numbers))
        .order_by(shop_order_lines.c.order_number, shop_order_lines.c.position)
    ).all()
    grouped: dict[str, list[OrderLine]] = {}
    for row in rows:
        grouped.setdefault(row.order_number, []).append(
            OrderLine(
                sku=row.sku,
                name=row.name,
                category=row.category,
                price_cents=row.price_cents,
                quantity=row.quantity,
                final_sale=bool(row.final_sale),
                variant=row.variant,
                line_id=row.line_id,
            )
        )
    return {number: tuple(lines) for number, lines in grouped.items()}


def outbound_shipments_by_order(conn: Connection, numbers: Sequence[str]) -> dict[str, Row[Any]]:
    """The latest shipment to the customer of each order, by order number."""
    if not numbers:
        return {}
    rows = conn.execute(
        select(shop_shipments)
        .where(
            shop_shipments.c.order_number.in_(numbers),
            shop_shipments.c.direction == "outbound",
        )
        .order_by(shop_shipments.c.shipped_at)
    ).all()
    # Should an order ever ship in parts, the latest shipment is the one a caller asks about.
    return {row.order_number: row for row in rows}


def _order(row: Row[Any], lines: tuple[OrderLine, ...], shipment: Row[Any] | None) -> Order:
    return Order(
        number=row.number,
        customer_id=row.customer_id,
        placed_at=from_db(row.placed_at),
        lines=lines,
        fulfillment=row.fulfillment,
        carrier=shipment.carrier if shipment else None,
        tracking_number=shipment.tracking_number if shipment else None,
        shipped_at=from_db_or_none(shipment.shipped_at) if shipment else None,
        delivered_at=from_db_or_none(shipment.delivered_at) if shipment else None,
        shipping_address=address_of(row),
        payment_method=row.payment_method,
        payment_ref=row.payment_ref,
    )


def outbound_shipment(conn: Connection, number: str) -> Row[Any] | None:
    """The latest shipment to the customer of one order, or None."""
    return outbound_shipments_by_order(conn, [number]).get(number)
