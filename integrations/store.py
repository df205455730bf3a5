"""The call store: calls, turns, events and Twilio status callbacks, in SQL.

SQLAlchemy Core over whatever `POSTVOICE_DATABASE_URL` names: a SQLite file by default,
PostgreSQL by URL. Methods are synchronous and short; async callers run them in a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url

__all__ = ["CallEvents", "Store", "make_engine"]

log = logging.getLogger(__name__)

metadata = MetaData()

calls = Table(
    "calls",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("from_number", String(32), nullable=False, default=""),
    Column("to_number", String(32), nullable=False, default=""),
    Column("direction", String(16), nullable=False, default="inbound"),
    Column("purpose", String(64)),
    Column("order_ref", String(32)),
    Column("status", String(32), nullable=False, default="initiated"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(64)),
    Column("transfer_to", String(32)),
    Column("summary", Text),
    Column("duration_s", Integer),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), ForeignKey("calls.call_sid"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("start_ms", Integer),
    Column("end_ms", Integer),
    Column("source", String(16)),
    Column("confidence", Float),
    Column("timing", JSON),
    Column("interrupted", Integer, nullable=False, default=0),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), ForeignKey("calls.call_sid"), index=True),
    Column("type", String(64), nullable=False, index=True),
    Column("order_ref", String(32), index=True),
    Column("data", JSON, nullable=False),
    Column("at_ms", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

status_updates = Table(
    "call_status_updates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and SQLite runs in WAL mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - driver hook
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


class Store:
    """Reads and writes the call record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_all(self) -> None:
        """Create missing tables."""
        metadata.create_all(self.engine)

    def upsert_call(self, call_sid: str, **fields: Any) -> None:
        """Create the call row, or update the given fields of an existing one."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(calls.c.call_sid).where(calls.c.call_sid == call_sid)
            ).first()
            if exists:
                if fields:
                    conn.execute(update(calls).where(calls.c.call_sid == call_sid).values(**fields))
            else:
                conn.execute(insert(calls).values(call_sid=call_sid, created_at=_now(), **fields))

    def record_status(self, call_sid: str, status: str, payload: dict[str, str]) -> None:
        """Store one Twilio status callback and move the call's status on."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(status_updates).values(
                    call_sid=call_sid, status=status, payload=payload, created_at=_now()
                )
            )
        fields: dict[str, Any] = {"status": status}
        if payload.get("CallDuration", "").isdigit():
            fields["duration_s"] = int(payload["CallDuration"])
        self.upsert_call(call_sid, **fields)

    def add_turn(
        self,
        call_sid: str,
        seq: int,
        role: str,
        text: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        source: str | None = None,
        confidence: float | None = None,
        timing: dict[str, Any] | None = None,
    ) -> None:
        """Append one turn of the transcript."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(turns).values(
                    call_sid=call_sid,
                    seq=seq,
                    role=role,
                    text=text,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    source=source,
                    confidence=confidence,
                    timing=timing,
                )
            )

    def update_turn(self, call_sid: str, seq: int, **fields: Any) -> None:
        """Amend a turn (e.g. when it was interrupted, or its audio length became known)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(turns)
                .where(turns.c.call_sid == call_sid, turns.c.seq == seq)
                .values(**fields)
            )

    def add_event(
        self, call_sid: str | None, type: str, order: str | None, data: dict, at_ms: int | None
    ) -> None:
        """Append one event."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(events).values(
                    call_sid=call_sid,
                    type=type,
                    order_ref=order,
                    data=json.loads(json.dumps(data, default=str)),
                    at_ms=at_ms,
                    created_at=_now(),
                )
            )

    def call(self, call_sid: str) -> dict[str, Any] | None:
        """One call with its turns and events, as plain data."""
        with self.engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.call_sid == call_sid)).mappings().first()
            if row is None:
                return None
            turn_rows = conn.execute(
                select(turns).where(turns.c.call_sid == call_sid).order_by(turns.c.seq)
            ).mappings()
            event_rows = conn.execute(
                select(events).where(events.c.call_sid == call_sid).order_by(events.c.id)
            ).mappings()
            result = dict(row)
            result["turns"] = [dict(t) for t in turn_rows]
            result["events"] = [dict(e) for e in event_rows]
        return result

    def status_updates(self, call_sid: str) -> list[dict[str, Any]]:
        """Twilio's status callbacks for a call, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(status_updates)
                .where(status_updates.c.call_sid == call_sid)
                .order_by(status_updates.c.id)
            ).mappings()
            return [dict(r) for r in rows]


class CallEvents:
    """The `EventSink` of one call: records to the store, stamped with the call's clock."""

    def __init__(self, store: Store, call_sid: str, clock_ms: Callable[[], int]) -> None:
        self.store = store
        self.call_sid = call_sid
        self.clock_ms = clock_ms
        self.recorded: list[dict[str, Any]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        """Record an event (DESIGN.md names) for this call."""
        at_ms = self.clock_ms()
        self.recorded.append({"type": type, "order": order, "at_ms": at_ms, **data})
        log.info("event %s %s order=%s %s", self.call_sid, type, order, data)
        await asyncio.to_thread(self.store.add_event, self.call_sid, type, order, data, at_ms)
