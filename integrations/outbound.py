"""Calls we place and alerts we send: attempts, the do-not-call list, and alert dedupe, in SQL.

One row of `outbound_attempts` is one try at reaching a customer about one order for one
purpose (a delivery confirmation, an exception alert). Retries are new rows with the next
attempt number; `(order_ref, purpose, attempt)` is unique, so two schedulers deciding at once
write one row, and a row is claimed (`scheduled` → `placing`) by exactly one of them.

`outbound_alerts` remembers each exception a customer was told about, keyed by order, kind
and the carrier scan that showed it, so an alert goes out once per exception however often
tracking is checked. The tables live on their own `metadata`, created by `Store.migrate`.

`DemoShipmentFeed` is the demo shop's `OrderFeed`: its delivered and in-flight orders.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from integrations.clock import Clock, aware, utc_now

__all__ = [
    "ACTIVE",
    "PLACED",
    "Attempt",
    "DemoShipmentFeed",
    "OutboundStore",
    "metadata",
    "outbound_alerts",
    "outbound_attempts",
    "outbound_dnc",
]

metadata = MetaData()
"""The outbound tables, apart from the store's and the demo shop's."""

outbound_attempts = Table(
    "outbound_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_ref", String(32), nullable=False, index=True),
    Column("purpose", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("customer_id", String(64), nullable=True, index=True),
    Column("to_number", String(32), nullable=False, default=""),
    # scheduled | placing | placed | answered | completed | voicemail | no_answer | busy |
    # failed | canceled | skipped (do-not-call, limit) | not_placed (Twilio not configured)
    Column("status", String(16), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
    Column("call_sid", String(64), nullable=True, unique=True),
    Column("answered_by", String(32), nullable=True),
    Column("detail", Text, nullable=False, default=""),
    Column("result", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("order_ref", "purpose", "attempt", name="uq_outbound_attempts_try"),
)

outbound_dnc = Table(
    "outbound_dnc",
    metadata,
    Column("phone", String(32), primary_key=True),  # E.164
    Column("reason", Text, nullable=False, default=""),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

outbound_alerts = Table(
    "outbound_alerts",
    metadata,
    Column("alert_key", String(255), primary_key=True),  # order:kind:scan
    Column("order_ref", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

PLACED = ("placed", "answered", "completed", "voicemail", "no_answer", "busy", "failed")
"""Statuses of attempts that really rang a phone."""
ACTIVE = ("scheduled", "placing", "placed", "answered")
"""Statuses of attempts still in progress."""


@dataclass(frozen=True)
class Attempt:
    """One try at reaching a customer about an order."""

    id: int
    order_ref: str
    purpose: str
    attempt: int
    customer_id: str | None
    to_number: str
    status: str
    due_at: datetime
    call_sid: str | None
    answered_by: str | None
    detail: str
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Attempt:
        """From a mapping row of `outbound_attempts`."""
        data = dict(row)
        for key in ("due_at", "created_at", "updated_at"):
            data[key] = aware(data[key])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON and the CLI."""
        data = dict(self.__dict__)
        for key in ("due_at", "created_at", "updated_at"):
            data[key] = data[key].isoformat()
        return data


class OutboundStore:
    """Row operations on the outbound tables; synchronous and short (async callers use a
    thread). `clock` stamps rows, so tests run on their own time."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    # --- attempts -----------------------------------------------------------------------------

    def schedule(
        self,
        order_ref: str,
        purpose: str,
        attempt: int,
        due_at: datetime,
        *,
        customer_id: str | None,
        to_number: str,
        detail: str = "",
    ) -> Attempt | None:
        """Add attempt number `attempt`; None when it already exists (someone else decided)."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(
                    insert(outbound_attempts).values(
                        order_ref=order_ref,
                        purpose=purpose,
                        attempt=attempt,
                        customer_id=customer_id,
                        to_number=to_number,
                        status="scheduled",
                        due_at=due_at.astimezone(UTC),
                        detail=detail,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
        except IntegrityError:
            return None
        return self.get(int(new_id))

    def get(self, attempt_id: int) -> Attempt | None:
        """One attempt by id."""
        return self._one(outbound_attempts.c.id == attempt_id)

    def by_call_sid(self, call_sid: str) -> Attempt | None:
        """The attempt that placed this call."""
        return self._one(outbound_attempts.c.call_sid == call_sid)

    def _one(self, condition: Any) -> Attempt | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(outbound_attempts).where(condition)).mappings().first()
        return Attempt.from_row(row) if row else None

    def attempts_for(self, order_ref: str, purpose: str | None = None) -> list[Attempt]:
        """Every attempt about an order (optionally for one purpose), first to last."""
        condition = outbound_attempts.c.order_ref == order_ref
        if purpose is not None:
            condition = and_(condition, outbound_attempts.c.purpose == purpose)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbound_attempts)
                .where(condition)
                .order_by(outbound_attempts.c.purpose, outbound_attempts.c.attempt)
            ).mappings()
            return [Attempt.from_row(r) for r in rows]

    def recent(self, limit: int = 50) -> list[Attempt]:
        """The newest attempts, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbound_attempts).order_by(outbound_attempts.c.id.desc()).limit(limit)
            ).mappings()
            return [Attempt.from_row(r) for r in rows]

    def due(self, now: datetime, limit: int = 20) -> list[Attempt]:
        """Scheduled attempts whose time has come, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbound_attempts)
                .where(
                    outbound_attempts.c.status == "scheduled",
                    outbound_attempts.c.due_at <= now.astimezone(UTC),
                )
                .order_by(outbound_attempts.c.due_at)
                .limit(limit)
            ).mappings()
            return [Attempt.from_row(r) for r in rows]

    def claim(self, attempt_id: int) -> bool:
        """`scheduled` → `placing`; True for exactly one of several claimants."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbound_attempts)
                .where(outbound_attempts.c.id == attempt_id)
                .where(outbound_attempts.c.status == "scheduled")
                .values(status="placing", updated_at=self.clock())
            )
            return done.rowcount == 1

    def update(self, attempt_id: int, **fields: Any) -> Attempt | None:
        """Change fields of one attempt; returns it as it now stands."""
        with self.engine.begin() as conn:
            conn.execute(
                update(outbound_attempts)
                .where(outbound_attempts.c.id == attempt_id)
                .values(**fields, updated_at=self.clock())
            )
        return self.get(attempt_id)

    def placed_to_customer_since(
        self, customer_id: str, since: datetime, *, other_than: str | None = None
    ) -> int:
        """How many orders this customer was really called about since `since` (retries of
        one order count once), not counting the order `other_than`."""
        condition = and_(
            outbound_attempts.c.customer_id == customer_id,
            outbound_attempts.c.status.in_(PLACED),
            outbound_attempts.c.updated_at >= since.astimezone(UTC),
        )
        if other_than is not None:
            condition = and_(condition, outbound_attempts.c.order_ref != other_than)
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count(func.distinct(outbound_attempts.c.order_ref))).where(
                        condition
                    )
                ).scalar_one()
            )

    # --- do not call --------------------------------------------------------------------------

    def dnc_add(self, phone: str, reason: str = "") -> bool:
        """Put a number on the do-not-call list; False when it already was."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(outbound_dnc).values(phone=phone, reason=reason, added_at=self.clock())
                )
        except IntegrityError:
            return False
        return True

    def dnc_remove(self, phone: str) -> bool:
        """Take a number off the list; False when it was not on it."""
        with self.engine.begin() as conn:
            return (
                conn.execute(delete(outbound_dnc).where(outbound_dnc.c.phone == phone)).rowcount > 0
            )

    def dnc_remove_if(self, phone: str, reason: str) -> bool:
        """Take a number off the list only if it is there for `reason` (an opt-out by text
        is undone by START; an entry an operator or a call made stays)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                delete(outbound_dnc).where(
                    outbound_dnc.c.phone == phone, outbound_dnc.c.reason == reason
                )
            )
            return done.rowcount > 0

    def dnc_reason(self, phone: str) -> str | None:
        """Why a number is on the list; None when it is not."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(outbound_dnc.c.reason).where(outbound_dnc.c.phone == phone)
            ).first()
        return None if row is None else str(row[0])

    def dnc_contains(self, phone: str) -> bool:
        """Whether we must not call this number."""
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(outbound_dnc.c.phone).where(outbound_dnc.c.phone == phone)
                ).first()
                is not None
            )

    def dnc_list(self) -> list[dict[str, Any]]:
        """The list, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbound_dnc).order_by(outbound_dnc.c.added_at)).mappings()
            return [{**r, "added_at": aware(r["added_at"])} for r in rows]

    # --- alerts -------------------------------------------------------------------------------

    def alert_once(self, alert_key: str, order_ref: str, kind: str, channel: str) -> bool:
        """Remember an alert; True only the first time this key is seen."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(outbound_alerts).values(
                        alert_key=alert_key,
                        order_ref=order_ref,
                        kind=kind,
                        channel=channel,
                        sent_at=self.clock(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def alerts_for(self, order_ref: str) -> list[dict[str, Any]]:
        """The alerts sent about an order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbound_alerts).where(outbound_alerts.c.order_ref == order_ref)
            ).mappings()
            return [dict(r) for r in rows]


class DemoShipmentFeed:
    """The demo shop's orders as the scheduler needs them (`OrderFeed`): delivered in a window,
    in flight. The queries are short and synchronous, so they run in a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def delivered_between(self, start: datetime, end: datetime) -> list[str]:
        """Numbers of orders delivered to the customer in [start, end)."""
        return await asyncio.to_thread(self._delivered_between, start, end)

    async def in_flight(self) -> list[str]:
        """Numbers of orders shipped to the customer and not delivered."""
        return await asyncio.to_thread(self._in_flight)

    def _delivered_between(self, start: datetime, end: datetime) -> list[str]:
        from integrations.demo import shop_shipments

        s = shop_shipments.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.order_number)
                .where(s.direction == "outbound", s.delivered_at >= start.astimezone(UTC))
                .where(s.delivered_at < end.astimezone(UTC))
                .order_by(s.order_number)
            )
            return [r[0] for r in rows]

    def _in_flight(self) -> list[str]:
        from integrations.demo import shop_shipments

        s = shop_shipments.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.order_number)
                .where(s.direction == "outbound", s.shipped_at.is_not(None))
                .where(s.delivered_at.is_(None))
                .order_by(s.order_number)
            )
            return [r[0] for r in rows]
