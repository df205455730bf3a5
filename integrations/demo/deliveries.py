"""`DemoDeliveries`: reschedules, redirects and claims, as a carrier's API would answer them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from integrations.clock import Clock, utc_now
from integrations.demo.orders import existing_order, outbound_shipment
from integrations.demo.rows import (
    address_json,
    checked_address,
    clean_order_number,
    key_reused,
    next_id,
    require_key,
    to_db,
    write_once,
)
from integrations.demo.schema import shop_delivery_requests, shop_shipments
from integrations.demo.tracking import add_scan, scans_of
from integrations.models import Address, ShipmentStatus
from integrations.protocols import ProviderError


def _spoken_day(day: date) -> str:
    return f"{day:%A, %B} {day.day}"


# A parcel after a failed attempt waits at the local depot; carriers hold it about a week, and
# the demo is a little more generous so a caller can pick any day of the next two weeks.
_RESCHEDULE_HORIZON = timedelta(days=14)
_CLAIM_KINDS = frozenset({"lost", "damaged"})
# Id prefix and first number of each kind of delivery request; claim ids are read to callers.
_REQUEST_IDS = {
    "reschedule": ("RSC-", 40001),
    "redirect": ("RDR-", 60001),
    "claim": ("CLM-", 70001),
}


class DemoDeliveries:
    """`Deliveries` over the demo shop's shipments, as a carrier's API would answer.

    A reschedule is possible only after a failed delivery attempt and before delivery; it moves
    the shipment's ETA and adds a scan, so tracking tells the new day. A redirect needs a parcel
    that is moving and not yet delivered. A claim ("lost" or "damaged") needs a shipped parcel,
    and a damaged one a delivered parcel; one claim of each kind per order, so asking again
    returns the open claim. Every request is recorded in `shop_delivery_requests`.
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def reschedule(self, order_number: str, day: date, *, idempotency_key: str) -> date:
        """Ask for another delivery attempt on `day`; returns the day the carrier agreed.

        Refuses with ProviderError "not_found", "not_reschedulable" (no failed attempt, or
        already delivered) or "invalid_date" (in the past, or more than two weeks out).
        """
        require_key(idempotency_key)
        number = clean_order_number(order_number)
        return await asyncio.to_thread(self._reschedule, number, day, idempotency_key)

    async def redirect(self, order_number: str, address: Address, *, idempotency_key: str) -> str:
        """Ask the carrier to deliver a moving parcel to `address`; returns the request id.

        Refuses with ProviderError "not_found", "not_shipped" (change the order's address
        instead), "already_delivered" or "invalid_address".
        """
        require_key(idempotency_key)
        number, clean = clean_order_number(order_number), checked_address(address)
        return await asyncio.to_thread(self._redirect, number, clean, idempotency_key)

    async def open_claim(self, order_number: str, kind: str, *, idempotency_key: str) -> str:
        """Open a carrier claim for a lost or damaged parcel; returns its id, "CLM-…".

        Refuses with ProviderError "not_found", "not_shipped" or, for "damaged", "not_delivered".
        """
        require_key(idempotency_key)
        if kind not in _CLAIM_KINDS:
            raise ValueError(f"claim kind {kind!r}; known: {sorted(_CLAIM_KINDS)}")
        number = clean_order_number(order_number)
        return await asyncio.to_thread(self._open_claim, number, kind, idempotency_key)

    def _find(self, key: str, kind: str, number: str) -> Callable[[Connection], Row[Any] | None]:
        def find(conn: Connection) -> Row[Any] | None:
            row = conn.execute(
                select(shop_delivery_requests).where(
                    shop_delivery_requests.c.idempotency_key == key
                )
            ).first()
            if row is not None and (row.kind, row.order_number) != (kind, number):
                raise key_reused(f"{row.kind} {row.id} of order {row.order_number}")
            return row

        return find

    def _record(self, conn: Connection, kind: str, number: str, key: str, **data: Any) -> str:
        prefix, first = _REQUEST_IDS[kind]
        request_id = next_id(conn, shop_delivery_requests.c.id, prefix, first)
        conn.execute(
            shop_delivery_requests.insert(),
            {
                "id": request_id,
                "kind": kind,
                "order_number": number,
                "idempotency_key": key,
                "created_at": to_db(self._clock()),
                **data,
            },
        )
        return request_id

    def _reschedule(self, number: str, day: date, key: str) -> date:
        def write(conn: Connection) -> date:
            existing_order(conn, number)
            shipment = outbound_shipment(conn, number)
            if shipment is None or shipment.delivered_at is not None:
                state = "has not shipped" if shipment is None else "was delivered"
                raise ProviderError(f"order {number} {state}", code="not_reschedulable")
            scans = scans_of(conn, shipment.tracking_number)
            failed = [s for s in scans if s.status is ShipmentStatus.FAILED_ATTEMPT]
            if not failed:
                raise ProviderError(
                    f"order {number} has had no failed delivery attempt", code="not_reschedulable"
                )
            now = self._clock()
            today = now.astimezone(UTC).date()
            if not today <= day <= today + _RESCHEDULE_HORIZON:
                raise ProviderError(f"cannot deliver on {day.isoformat()}", code="invalid_date")
            self._record(conn, "reschedule", number, key, day=day)
            conn.execute(
                shop_shipments.update()
                .where(shop_shipments.c.tracking_number == shipment.tracking_number)
                .values(eta=day)
            )
            # Listed after the failed attempt even if the clock lags the carrier's.
            at = max(now, scans[-1].at + timedelta(minutes=1))
            add_scan(
                conn,
                shipment.tracking_number,
                at,
                ShipmentStatus.IN_TRANSIT,
                f"Delivery rescheduled at the customer's request for {_spoken_day(day)}",
                failed[-1].location,
            )
            return day

        find = self._find(key, "reschedule", number)
        return write_once(self._engine, lambda conn: _day_or_none(find(conn)), write)

    def _redirect(self, number: str, address: Address, key: str) -> str:
        def write(conn: Connection) -> str:
            existing_order(conn, number)
            shipment = outbound_shipment(conn, number)
            if shipment is None or shipment.shipped_at is None:
                raise ProviderError(f"order {number} has not shipped yet", code="not_shipped")
            if shipment.delivered_at is not None:
                raise ProviderError(f"order {number} was delivered", code="already_delivered")
            return self._record(conn, "redirect", number, key, address=address_json(address))

        find = self._find(key, "redirect", number)
        return write_once(self._engine, lambda conn: _id_or_none(find(conn)), write)

    def _open_claim(self, number: str, kind: str, key: str) -> str:
        find = self._find(key, "claim", number)

        def write(conn: Connection) -> str:
            existing_order(conn, number)
            shipment = outbound_shipment(conn, number)
            if shipment is None or shipment.shipped_at is None:
                raise ProviderError(f"order {number} has not shipped", code="not_shipped")
            if kind == "damaged" and shipment.delivered_at is None:
                raise ProviderError(f"order {number} was not delivered", code="not_delivered")
            already = conn.execute(
                select(shop_delivery_requests.c.id).where(
                    shop_delivery_requests.c.order_number == number,
                    shop_delivery_requests.c.kind == "claim",
                    shop_delivery_requests.c.claim_kind == kind,
                )
            ).scalar()
            if already is not None:
                return already
            return self._record(conn, "claim", number, key, claim_kind=kind)

        return write_once(self._engine, lambda conn: _id_or_none(find(conn)), write)


def _id_or_none(row: Row[Any] | None) -> str | None:
    return None if row is None else row.id


def _day_or_none(row: Row[Any] | None) -> date | None:
    return None if row is None else row.day
