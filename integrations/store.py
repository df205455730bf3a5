"""The call store: calls, turns, events, Twilio status callbacks and the outbox, in SQL.

SQLAlchemy Core over whatever `POSTVOICE_DATABASE_URL` names: a SQLite file by default,
PostgreSQL (`postgresql+psycopg://…`) by URL, with no code change. The schema is made by the
alembic migrations in `integrations/migrations` (`Store.migrate`), so an existing database is
brought forward on start-up. Methods are synchronous and short; async callers run them in a
thread.

The demo shop's tables (`integrations.demo.metadata`) are not migrated: they are demo data,
recreated by `postvoice seed`, never a merchant's records. `Store.migrate(also=[...])` creates
them under the same lock, so instances starting together do not race to create them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url

from integrations.outbox import Outbox, OutboxEntry, OutboxItem, enqueue
from integrations.outbox import metadata as outbox_metadata

__all__ = ["CallEvents", "Decision", "Store", "make_engine", "metadata", "migrated_metadata"]

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


migrated_metadata = (metadata, outbox_metadata)
"""Every table the migrations own: the call store's and the outbox's."""

# PostgreSQL advisory lock held while migrating, so instances starting together take turns.
_MIGRATION_LOCK = zlib.crc32(b"postvoice:migrate")


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, default=str))


@dataclass(frozen=True)
class Decision:
    """What `Store.record_decision` wrote: the event's id (None when every item was already
    queued, so nothing new was decided) and the outbox rows, new or existing."""

    event_id: int | None
    entries: list[OutboxEntry]


def make_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and SQLite runs in WAL mode.

    A plain `postgresql://` or `postgres://` URL (as hosting providers hand them out) is
    driven by psycopg 3, the PostgreSQL driver postvoice installs.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        url = f"postgresql+psycopg://{rest}"
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
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
    """Reads and writes the call record and the outbox (`.outbox`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.outbox = Outbox(engine)

    def migrate(self, *, also: Sequence[MetaData] = ()) -> None:
        """Bring the schema to the newest migration, then create the tables of `also`.

        Safe to run from several processes at once: PostgreSQL takes an advisory lock, SQLite
        an immediate (write) transaction, so one migrates while the others wait and then find
        nothing to do. A database made by an earlier version's `create_all` is adopted.
        """
        from alembic import command

        from integrations.migrations import alembic_config

        with self.engine.connect() as conn:
            _lock_schema(conn)
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            for extra in also:
                extra.create_all(conn)
            conn.commit()

    def create_all(self) -> None:
        """Create or upgrade the schema: the same as `migrate()`, kept for older callers."""
        self.migrate()

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
    ) -> int:
        """Append one event; its id."""
        with self.engine.begin() as conn:
            return _insert_event(conn, call_sid, type, order, data, at_ms)

    def merge_event(self, event_id: int, order: str | None, data: dict[str, Any]) -> None:
        """Add facts to an event already written (its order, when it had none, and `data`)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(events.c.order_ref, events.c.data).where(events.c.id == event_id)
            ).first()
            if row is None:
                return
            conn.execute(
                update(events)
                .where(events.c.id == event_id)
                .values(order_ref=row.order_ref or order, data={**row.data, **_plain(data)})
            )

    def record_decision(
        self,
        call_sid: str | None,
        event_type: str,
        order: str | None,
        data: dict[str, Any],
        outbox_items: Sequence[OutboxItem],
        *,
        at_ms: int | None = None,
    ) -> Decision:
        """Write a decision's event and its outbox rows in one transaction.

        Either both are stored or neither is, so a crash can lose neither a side effect the
        record shows nor a record of a side effect that happens. Items whose key is already
        queued are not queued again; when that is every item the decision was made before
        (a retried webhook, the caller asking twice), and no second event is written.
        """
        with self.engine.begin() as conn:
            queued = [enqueue(conn, item, call_sid=call_sid) for item in outbox_items]
            entries = [entry for entry, _created in queued]
            if queued and not any(created for _entry, created in queued):
                return Decision(None, entries)
            refs = [entry.ref for entry in entries]
            event_id = _insert_event(
                conn, call_sid, event_type, order, {**data, "outbox": refs}, at_ms
            )
        return Decision(event_id, entries)

    def outbox_items(self, status: str | None = None, limit: int | None = 200) -> list[dict]:
        """Outbox rows for operators, newest first: all, or those in one state
        ("pending", "delivering", "delivered", "dead")."""
        return [e.as_dict() for e in self.outbox.items(status=status, limit=limit)]

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
        result["outbox"] = [
            e.as_dict() for e in reversed(self.outbox.items(call_sid=call_sid, limit=None))
        ]
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


def _insert_event(
    conn: Connection,
    call_sid: str | None,
    type: str,
    order: str | None,
    data: dict[str, Any],
    at_ms: int | None,
) -> int:
    result = conn.execute(
        insert(events).values(
            call_sid=call_sid,
            type=type,
            order_ref=order,
            data=_plain(data),
            at_ms=at_ms,
            created_at=_now(),
        )
    )
    return int(result.inserted_primary_key[0])


def _lock_schema(conn: Connection) -> None:
    """Begin the migration's transaction holding the database's schema lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        # pysqlite opens no transaction before DDL; ask for the write lock up front instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class CallEvents:
    """The `EventSink` of one call: records to the store, stamped with the call's clock.

    Also where the outbox adapters (`integrations.outbox`) write a call's decisions: `decide`
    stores the event with its outbox rows. When the dialog then records the same event itself
    (e.g. `sms.sent` with the `message_id` the adapter returned), the two are merged into the
    one event rather than written twice.
    """

    def __init__(
        self, store: Store, call_sid: str | None, clock_ms: Callable[[], int] | None = None
    ) -> None:
        self.store = store
        self.call_sid = call_sid
        self.clock_ms = clock_ms or (lambda: 0)
        self.recorded: list[dict[str, Any]] = []
        # (event type, outbox ref) -> (event id, index in `recorded`) of events `decide` wrote.
        self._decided: dict[tuple[str, str], tuple[int, int]] = {}

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        """Record an event (DESIGN.md names) for this call."""
        at_ms = self.clock_ms()
        log.info("event %s %s order=%s %s", self.call_sid, type, order, data)
        for value in data.values():
            found = self._decided.get((type, value)) if isinstance(value, str) else None
            if found is not None:
                event_id, index = found
                merged = self.recorded[index]
                merged.update(data)
                merged["order"] = merged.get("order") or order
                await asyncio.to_thread(self.store.merge_event, event_id, order, data)
                return
        self.recorded.append({"type": type, "order": order, "at_ms": at_ms, **data})
        await asyncio.to_thread(self.store.add_event, self.call_sid, type, order, data, at_ms)

    async def decide(
        self,
        type: str,
        items: Sequence[OutboxItem],
        *,
        order: str | None = None,
        aliases: Sequence[str] = (),
        **data: Any,
    ) -> list[OutboxEntry]:
        """Record a decision and queue its side effects in one transaction; the outbox rows.

        `aliases` are other ids the caller hands out for these rows (e.g. a ticket reference):
        the dialog's later record naming one of them is merged like one naming a row's ref.
        """
        at_ms = self.clock_ms()
        decision = await asyncio.to_thread(
            self.store.record_decision, self.call_sid, type, order, data, items, at_ms=at_ms
        )
        refs = [entry.ref for entry in decision.entries]
        log.info("decision %s %s order=%s %s queued %s", self.call_sid, type, order, data, refs)
        if decision.event_id is not None:
            self.recorded.append(
                {"type": type, "order": order, "at_ms": at_ms, **data, "outbox": refs}
            )
            for ref in [*refs, *aliases]:
                self._decided[(type, ref)] = (decision.event_id, len(self.recorded) - 1)
        return decision.entries
