"""Tracking that answers within the reply time even when the carrier is slow or down.

`CachedTracking` wraps any `Tracking`. It asks the carrier and waits at most `deadline_s`:
a fresh answer is stored and returned; when the carrier is late or failing, the last known
`Shipment` is returned as it was, with its original `fetched_at`, so the dialog can say how old
it is ("as of two hours ago"), and the late answer is stored when it comes. One refresh per
tracking number is in flight at a time, however many callers ask.

Without anything known, a late carrier is waited for up to `max_wait_s` and then reported as a
`ProviderError("timeout", retryable=True)`: saying nothing is better than guessing.

The cache is a small protocol with two implementations: `MemoryTrackingCache` (one process)
and `SqlTrackingCache` (table `tracking_cache` on its own `metadata`, shared by instances).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from integrations.clock import utc_now
from integrations.models import Shipment, ShipmentStatus, TrackingEvent
from integrations.protocols import ProviderError, Tracking

__all__ = [
    "CachedTracking",
    "MemoryTrackingCache",
    "SqlTrackingCache",
    "TrackingCache",
    "age_of",
    "metadata",
    "shipment_from_json",
    "shipment_to_json",
    "tracking_cache",
]

log = logging.getLogger(__name__)

metadata = MetaData()
"""The cache's table, apart from the store's and the demo shop's."""

tracking_cache = Table(
    "tracking_cache",
    metadata,
    Column("carrier_key", String(32), primary_key=True),
    Column("tracking_number", String(64), primary_key=True),
    Column("shipment", Text, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)


def _carrier_key(carrier: str) -> str:
    return "".join(ch for ch in carrier.lower() if ch.isalnum())


def _number_key(number: str) -> str:
    return "".join(ch for ch in number if not ch.isspace() and ch != "-").upper()


def age_of(shipment: Shipment, now: datetime | None = None) -> timedelta:
    """How old the facts in `shipment` are."""
    return (now or utc_now()) - shipment.fetched_at


def shipment_to_json(shipment: Shipment) -> str:
    """A `Shipment` as JSON text."""

    def default(value: Any) -> str:
        if isinstance(value, datetime | date):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.dumps(asdict(shipment), default=default)


def shipment_from_json(text: str) -> Shipment:
    """The `Shipment` that `shipment_to_json` wrote."""
    raw = json.loads(text)
    return Shipment(
        carrier=raw["carrier"],
        tracking_number=raw["tracking_number"],
        status=ShipmentStatus(raw["status"]),
        detail=raw["detail"],
        fetched_at=datetime.fromisoformat(raw["fetched_at"]),
        eta=date.fromisoformat(raw["eta"]) if raw.get("eta") else None,
        events=tuple(
            TrackingEvent(
                at=datetime.fromisoformat(e["at"]),
                status=ShipmentStatus(e["status"]),
                description=e["description"],
                location=e.get("location", ""),
            )
            for e in raw.get("events", ())
        ),
        tracking_url=raw.get("tracking_url", ""),
    )


class TrackingCache(Protocol):
    """Where the last known state of each shipment is kept."""

    async def get(self, carrier: str, tracking_number: str) -> Shipment | None: ...
    async def put(self, carrier: str, tracking_number: str, shipment: Shipment) -> None: ...


class MemoryTrackingCache:
    """A `TrackingCache` in this process's memory."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Shipment] = {}

    async def get(self, carrier: str, tracking_number: str) -> Shipment | None:
        """The last known shipment, or None."""
        return self._items.get((_carrier_key(carrier), _number_key(tracking_number)))

    async def put(self, carrier: str, tracking_number: str, shipment: Shipment) -> None:
        """Remember `shipment` as the latest known."""
        self._items[(_carrier_key(carrier), _number_key(tracking_number))] = shipment


class SqlTrackingCache:
    """A `TrackingCache` in the `tracking_cache` table; call `create_all()` once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_all(self) -> None:
        """Create the table if missing."""
        metadata.create_all(self.engine)

    async def get(self, carrier: str, tracking_number: str) -> Shipment | None:
        """The last known shipment, or None."""
        return await asyncio.to_thread(
            self._get, _carrier_key(carrier), _number_key(tracking_number)
        )

    async def put(self, carrier: str, tracking_number: str, shipment: Shipment) -> None:
        """Remember `shipment` as the latest known (an older one never replaces a newer)."""
        await asyncio.to_thread(
            self._put, _carrier_key(carrier), _number_key(tracking_number), shipment
        )

    def _get(self, carrier: str, number: str) -> Shipment | None:
        with self.engine.connect() as conn:
            text = conn.execute(
                select(tracking_cache.c.shipment).where(
                    tracking_cache.c.carrier_key == carrier,
                    tracking_cache.c.tracking_number == number,
                )
            ).scalar_one_or_none()
        return shipment_from_json(text) if text else None

    def _put(self, carrier: str, number: str, shipment: Shipment) -> None:
        where = (
            tracking_cache.c.carrier_key == carrier,
            tracking_cache.c.tracking_number == number,
        )
        values = {"shipment": shipment_to_json(shipment), "fetched_at": shipment.fetched_at}
        with self.engine.begin() as conn:
            current = conn.execute(select(tracking_cache.c.fetched_at).where(*where)).first()
            if current is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            tracking_cache.insert().values(
                                carrier_key=carrier, tracking_number=number, **values
                            )
                        )
                    return
                except IntegrityError:
                    pass  # another instance stored it first; fall through to the update
            stored = current.fetched_at if current else None
            if stored is not None and stored.tzinfo is None:
                stored = stored.replace(tzinfo=UTC)  # SQLite drops the zone
            if stored is None or stored <= shipment.fetched_at:
                conn.execute(tracking_cache.update().where(*where).values(**values))


class CachedTracking:
    """`Tracking` that never keeps a caller waiting on a slow carrier (see the module doc)."""

    def __init__(
        self,
        inner: Tracking,
        cache: TrackingCache,
        *,
        deadline_s: float = 1.5,
        max_wait_s: float = 4.0,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.deadline_s = deadline_s
        self.max_wait_s = max(max_wait_s, deadline_s)
        self._refreshing: dict[tuple[str, str], asyncio.Task[Shipment | None]] = {}

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        """Fresh tracking if the carrier answers within the deadline, else the last known."""
        key = (_carrier_key(carrier), _number_key(tracking_number))
        refresh = self._refresh(key, carrier, tracking_number)
        done, _ = await asyncio.wait({refresh}, timeout=self.deadline_s)
        if refresh in done and refresh.exception() is None:
            return refresh.result()
        known = await self.cache.get(carrier, tracking_number)
        if known is not None:
            if refresh in done:
                log.warning(
                    "carrier failed (%s); answering with tracking as of %s",
                    refresh.exception(),
                    known.fetched_at.isoformat(),
                )
            else:
                log.warning(
                    "carrier slow; answering with tracking as of %s", known.fetched_at.isoformat()
                )
            return known
        if refresh not in done:
            done, _ = await asyncio.wait({refresh}, timeout=self.max_wait_s - self.deadline_s)
        if refresh not in done:
            raise ProviderError(
                "the carrier did not answer in time and nothing is known yet",
                code="timeout",
                retryable=True,
            )
        return refresh.result()  # raises the carrier's own error

    def busy(self, carrier: str, tracking_number: str) -> bool:
        """A refresh of this shipment is running: a lookup now would wait for it."""
        running = self._refreshing.get((_carrier_key(carrier), _number_key(tracking_number)))
        return running is not None and not running.done()

    def _refresh(
        self, key: tuple[str, str], carrier: str, tracking_number: str
    ) -> asyncio.Task[Shipment | None]:
        running = self._refreshing.get(key)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self._fetch_and_store(carrier, tracking_number))
        self._refreshing[key] = task
        task.add_done_callback(lambda t: self._finished(key, t))
        return task

    async def _fetch_and_store(self, carrier: str, tracking_number: str) -> Shipment | None:
        shipment = await self.inner.track(carrier, tracking_number)
        if shipment is not None:
            await self.cache.put(carrier, tracking_number, shipment)
        return shipment

    def _finished(self, key: tuple[str, str], task: asyncio.Task[Shipment | None]) -> None:
        if self._refreshing.get(key) is task:
            del self._refreshing[key]
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a background refresh nobody awaited does not log "never retrieved".
            log.info("tracking refresh failed: %s", task.exception())

    async def aclose(self) -> None:
        """Cancel refreshes still running and close the inner client if it has `aclose`."""
        for task in list(self._refreshing.values()):
            task.cancel()
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()
