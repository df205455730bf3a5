"""`DemoTracking`: carrier scans as a tracking API reports them, and recording new scans."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from integrations.clock import Clock, utc_now
from integrations.demo.carriers import carrier_key, compact_tracking_number, tracking_url
from integrations.demo.rows import from_db, to_db
from integrations.demo.schema import shop_shipments, shop_tracking_events
from integrations.models import Shipment, ShipmentStatus, TrackingEvent


class DemoTracking:
    """`Tracking` over the demo shop's recorded carrier scans.

    The status is that of the latest scan, as a carrier reports it: whether a shipment with no
    scan for days is lost is a policy decision, left to the dialog.
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        """The shipment with this tracking number, or None if this carrier doesn't know it.

        The carrier is matched ignoring case and punctuation ("FedEx", "fedex"); an empty
        carrier matches any, as an aggregator that detects the carrier would.
        """
        number = compact_tracking_number(tracking_number)
        if not number:
            return None
        return await asyncio.to_thread(self._track, carrier, number)

    def _track(self, carrier: str, number: str) -> Shipment | None:
        with self._engine.connect() as conn:
            shipment = conn.execute(
                select(shop_shipments).where(shop_shipments.c.tracking_number == number)
            ).first()
            if shipment is None or not _same_carrier(carrier, shipment.carrier):
                return None
            scans = conn.execute(
                select(shop_tracking_events)
                .where(shop_tracking_events.c.tracking_number == number)
                .order_by(shop_tracking_events.c.at, shop_tracking_events.c.id)
            ).all()
        events = tuple(tracking_event(scan) for scan in scans)
        latest = events[-1] if events else None
        return Shipment(
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=latest.status if latest else ShipmentStatus.UNKNOWN,
            detail=latest.description if latest else "No carrier scans yet",
            fetched_at=self._clock(),
            eta=shipment.eta,
            events=events,
            tracking_url=tracking_url(shipment.carrier, shipment.tracking_number),
        )


def _same_carrier(asked: str, recorded: str) -> bool:
    wanted = carrier_key(asked)
    return not wanted or wanted == carrier_key(recorded)


def tracking_event(row: Row[Any]) -> TrackingEvent:
    """A scan row as a `TrackingEvent`; a status this version does not know reads "unknown"."""
    try:
        status = ShipmentStatus(row.status)
    except ValueError:
        status = ShipmentStatus.UNKNOWN
    return TrackingEvent(
        at=from_db(row.at),
        status=status,
        description=row.description,
        location=row.location,
    )


def scans_of(conn: Connection, tracking_number: str) -> list[TrackingEvent]:
    """A parcel's scans, oldest first."""
    rows = conn.execute(
        select(shop_tracking_events)
        .where(shop_tracking_events.c.tracking_number == tracking_number)
        .order_by(shop_tracking_events.c.at, shop_tracking_events.c.id)
    ).all()
    return [tracking_event(row) for row in rows]


def add_scan(
    conn: Connection,
    tracking_number: str,
    at: datetime,
    status: ShipmentStatus,
    description: str,
    location: str,
) -> None:
    """Record a carrier scan of a parcel."""
    conn.execute(
        shop_tracking_events.insert(),
        {
            "tracking_number": tracking_number,
            "at": to_db(at),
            "status": status.value,
            "description": description,
            "location": location,
        },
    )
