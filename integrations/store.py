"""The call store: writes the call record (calls, turns, events, Twilio status callbacks) and a
call's decisions with their outbox rows, in SQL.

SQLAlchemy Core over whatever `POSTVOICE_DATABASE_URL` names: a SQLite file by default,
PostgreSQL (`postgresql+psycopg://…`) by URL, with no code change. The tables are
`integrations.schema`'s and the outbox's; the schema is made by the alembic migrations in
`integrations/migrations` (`Store.migrate`), so an existing database is brought forward on
start-up. Methods are synchronous and short; async callers run them in a thread. The
dashboard's read queries are `integrations.dashboard_queries`' (a `Store` has them too).

The demo shop's tables (`integrations.demo.metadata`) are not migrated: they are demo data,
recreated by `postvoice seed`, never a merchant's records. `Store.migrate(also=[...])` creates
them under the same lock, so instances starting together do not race to create them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    MetaData,
    case,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from integrations.accounts import metadata as accounts_metadata
from integrations.clock import utc_now
from integrations.dashboard_queries import DashboardQueries
from integrations.outbox import Outbox, OutboxEntry, OutboxItem, enqueue, outbox
from integrations.outbox import metadata as outbox_metadata
from integrations.photos import metadata as photos_metadata
from integrations.redact import redact_card_numbers, redact_data
from integrations.schema import ENDED_STATUSES, calls, events, status_updates, stream_claims, turns
from integrations.schema import metadata as call_metadata

__all__ = [
    "CallEvents",
    "Decision",
    "Store",
    "make_engine",
    "migrated_metadata",
]

log = logging.getLogger(__name__)

migrated_metadata = (call_metadata, outbox_metadata, accounts_metadata, photos_metadata)
"""Every table the migrations own: the call store's, the outbox's, the accounts' and the
photos of damage."""

# PostgreSQL advisory lock held while migrating, so instances starting together take turns.
_MIGRATION_LOCK = zlib.crc32(b"postvoice:migrate")


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """`data` as JSON stores it, with no card number in any of its text (the last guard: the
    voice and dialog layers redact what callers say before anyone sees it)."""
    return redact_data(json.loads(json.dumps(data, default=str)))


@dataclass(frozen=True)
class Decision:
    """What `Store.record_decision` wrote: the event's id (None when every item was already
    queued, so nothing new was decided) and the outbox rows, new or existing; for a repeat,
    `earlier` is the event that recorded the decision the first time."""

    event_id: int | None
    entries: list[OutboxEntry]
    earlier: int | None = None


# How far along a call's status is; a status never moves to a lower rank (a replayed or late
# webhook cannot make a finished call ring again). Statuses not listed rank lowest.
_STATUS_RANK = {
    "queued": 1,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "answered": 3,
    **{status: 4 for status in ENDED_STATUSES},
}


def _forward_status(status: str) -> ColumnElement[str]:
    """SQL for the call's status after `status` arrives: it, unless the call is further on."""
    current = case(_STATUS_RANK, value=calls.c.status, else_=0)
    return case((current <= _STATUS_RANK.get(status, 0), status), else_=calls.c.status)


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


class Store(DashboardQueries):
    """Writes the call record and a call's decisions, queues through `.outbox`, and reads with
    the dashboard's queries."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.outbox = Outbox(engine)

    def migrate(self, *, also: Sequence[MetaData] = ()) -> None:
        """Bring the schema to the newest migration, then create the tables of `also`.

        Safe to run from several processes at once: PostgreSQL takes an advisory lock, SQLite
        an immediate (write) transaction, so one migrates while the others wait and then find
        nothing to do. A database made by an earlier version's `create_all` is adopted.
        """
        from alembic import command

        from integrations.migrations import alembic_config

        for attempt in range(_MIGRATE_ATTEMPTS):
            try:
                with self.engine.connect() as conn:
                    _lock_schema(conn)
                    config = alembic_config()
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
                    for extra in also:
                        extra.create_all(conn)
                    conn.commit()
                return
            except OperationalError as exc:
                # SQLite may answer "locked" at once, not after its timeout, while another
                # instance turns a new file to WAL; the migration rolled back: try again.
                locked = self.engine.dialect.name == "sqlite" and "locked" in str(exc)
                if not locked or attempt == _MIGRATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def create_all(self) -> None:
        """Create or upgrade the schema: the same as `migrate()`, kept for older callers."""
        self.migrate()

    def forget_decisions(self) -> None:
        """Empty the outbox. For a reseeded demo shop only: the outbox remembers every decision
        (a line is refunded once, ever; a label bought once per key), and those were about the
        shop the reseed replaced, so a new call would be told a refund or label was done that
        the new shop never had."""
        with self.engine.begin() as conn:
            conn.execute(outbox.delete())

    def upsert_call(self, call_sid: str, **fields: Any) -> None:
        """Create the call row, or update the given fields of an existing one. A `status`
        only ever moves forward (ringing → in-progress → an end), never back."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(calls.c.call_sid).where(calls.c.call_sid == call_sid)
            ).first()
            if isinstance(fields.get("summary"), str):
                fields = {**fields, "summary": redact_card_numbers(fields["summary"])}
            if exists:
                if fields:
                    values = dict(fields)
                    if isinstance(values.get("status"), str):
                        values["status"] = _forward_status(values["status"])
                    conn.execute(update(calls).where(calls.c.call_sid == call_sid).values(**values))
            else:
                conn.execute(
                    insert(calls).values(call_sid=call_sid, created_at=utc_now(), **fields)
                )

    def call_ended(self, call_sid: str) -> bool:
        """Whether the call has finished (by our record or Twilio's final status)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(calls.c.status, calls.c.ended_at).where(calls.c.call_sid == call_sid)
            ).first()
        return row is not None and (row.ended_at is not None or row.status in ENDED_STATUSES)

    def claim_stream(self, call_sid: str, stream_sid: str) -> bool:
        """Claim the call's one media stream; False when it was claimed before (a replayed
        token, a second socket for a live call, a start after the call ended)."""
        if self.call_ended(call_sid):
            return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(stream_claims).values(
                        call_sid=call_sid, stream_sid=stream_sid, claimed_at=utc_now()
                    )
                )
        except IntegrityError:
            return False
        return True

    def record_status(self, call_sid: str, status: str, payload: dict[str, str]) -> None:
        """Store one Twilio status callback and move the call's status on."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(status_updates).values(
                    call_sid=call_sid, status=status, payload=payload, created_at=utc_now()
                )
            )
        fields: dict[str, Any] = {"status": status}
        duration = payload.get("CallDuration", "")
        if status in ENDED_STATUSES and duration.isascii() and duration.isdigit():
            fields["duration_s"] = min(int(duration[:9]), 10**8)
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
        """Append one turn of the transcript (card numbers removed)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(turns).values(
                    call_sid=call_sid,
                    seq=seq,
                    role=role,
                    text=redact_card_numbers(text),
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
        """Append one event; its id. An order line has one `refund.pending_approval`: asked
        again, the id of the one it has."""
        with self.engine.begin() as conn:
            if type in _ONE_PER_LINE and order and data.get("line_id"):
                line = events.c.data["line_id"].as_string()
                found = conn.execute(
                    select(events.c.id)
                    .where(
                        events.c.type == type,
                        events.c.order_ref == order,
                        line == str(data["line_id"]),
                    )
                    .order_by(events.c.id)
                    .limit(1)
                ).scalar()
                if found is not None:
                    log.info(
                        "%s for %s line %s exists already (#%s)",
                        type,
                        order,
                        data["line_id"],
                        found,
                    )
                    return int(found)
            return _insert_event(conn, call_sid, type, order, data, at_ms)

    def amend_event(self, event_id: int, order: str | None, data: dict[str, Any]) -> None:
        """Add the dialog's own facts to a decision's event: its order, when it had none, and
        `data` (a text's purpose, a ticket's reason)."""
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
                return Decision(None, entries, _event_of(conn, event_type, entries[0]))
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
            created_at=utc_now(),
        )
    )
    return int(result.inserted_primary_key[0])


def _event_of(conn: Connection, event_type: str, entry: OutboxEntry) -> int | None:
    """The event of `event_type` whose decision queued `entry` first (its `outbox` field
    names the decision's rows in order)."""
    first = events.c.data[("outbox", 0)].as_string()
    found = conn.execute(
        select(events.c.id)
        .where(events.c.type == event_type, first == entry.ref)
        .order_by(events.c.id)
        .limit(1)
    ).scalar()
    return int(found) if found is not None else None


# Event types of which an order line has at most one: a second (the same return received
# twice, two desks at once) is the first one again.
_ONE_PER_LINE = frozenset({"refund.pending_approval"})


_MIGRATE_ATTEMPTS = 5


def _lock_schema(conn: Connection) -> None:
    """Begin the migration's transaction holding the database's schema lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        # pysqlite opens no transaction before DDL; ask for the write lock up front instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True)
class _Decided:
    """A decision `CallEvents.decide` wrote: its event, and its place in `recorded`."""

    event_id: int
    index: int


class CallEvents:
    """The `EventSink` of one call: records to the store, stamped with the call's clock.

    Also the `DecisionLog` the outbox adapters (`integrations.outbox`) write the call's
    decisions to. `decide` writes a decision's event once, in the transaction that queues its
    outbox rows, with their refs in its `outbox` field. The adapter names the field in which
    the dialog's own record of the decision will identify it (`named_by`: `message_id` of a
    text, `ticket_id` of a ticket, `refund_id` of a refund); a record of that type whose field
    holds one of the decision's ids (its rows' refs, the `aliases` the adapter handed out, the
    provider's id once delivered) adds its facts to that one event rather than writing another.
    """

    def __init__(
        self, store: Store, call_sid: str | None, clock_ms: Callable[[], int] | None = None
    ) -> None:
        self.store = store
        self.call_sid = call_sid
        self.clock_ms = clock_ms or (lambda: 0)
        self.recorded: list[dict[str, Any]] = []
        self._named_by: dict[str, str] = {}  # event type -> the field naming its decision
        self._decided: dict[tuple[str, str], _Decided] = {}  # (event type, id) -> decision

    @property
    def outbox(self) -> Outbox:
        """The outbox the decisions queue in."""
        return self.store.outbox

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        """Record an event (docs/DESIGN.md names) for this call."""
        at_ms = self.clock_ms()
        log.info("event %s %s order=%s %s", self.call_sid, type, order, data)
        decided = self._decision_named(type, data)
        if decided is not None:
            known = self.recorded[decided.index]
            known.update(data)
            known["order"] = known.get("order") or order
            await asyncio.to_thread(self.store.amend_event, decided.event_id, order, data)
            return
        self.recorded.append({"type": type, "order": order, "at_ms": at_ms, **data})
        await asyncio.to_thread(self.store.add_event, self.call_sid, type, order, data, at_ms)

    def _decision_named(self, type: str, data: dict[str, Any]) -> _Decided | None:
        """The decision this call wrote that `data` names in its type's `named_by` field."""
        field = self._named_by.get(type)
        name = data.get(field) if field is not None else None
        return self._decided.get((type, name)) if isinstance(name, str) else None

    async def decide(
        self,
        type: str,
        items: Sequence[OutboxItem],
        *,
        order: str | None = None,
        named_by: str | None = None,
        aliases: Sequence[str] = (),
        **data: Any,
    ) -> list[OutboxEntry]:
        """Record a decision and queue its side effects in one transaction; the outbox rows.

        `named_by` is the field of the dialog's own later record of this decision that holds
        its id; `aliases` are ids the adapter hands out besides the rows' refs (a ticket's
        reference).
        """
        at_ms = self.clock_ms()
        decision = await asyncio.to_thread(
            self.store.record_decision, self.call_sid, type, order, data, items, at_ms=at_ms
        )
        refs = [entry.ref for entry in decision.entries]
        log.info("decision %s %s order=%s %s queued %s", self.call_sid, type, order, data, refs)
        event_id = decision.event_id or decision.earlier
        if event_id is None:
            return decision.entries
        known = next((self._decided[(type, r)] for r in refs if (type, r) in self._decided), None)
        if known is not None:  # this call made the decision before: it is on record once
            return decision.entries
        self.recorded.append({"type": type, "order": order, "at_ms": at_ms, **data, "outbox": refs})
        decided = _Decided(event_id, len(self.recorded) - 1)
        for ref in refs:
            self._decided[(type, ref)] = decided
        if named_by is None:
            return decision.entries
        # A repeat of a decision made before: the dialog names it by the id the provider
        # gave, once delivered, and that too is the first event's.
        delivered = [
            str(entry.result[k])
            for entry in decision.entries
            for k in ("message_id", "id")
            if entry.result and entry.result.get(k)
        ]
        self._named_by[type] = named_by
        for name in [*aliases, *delivered]:
            self._decided[(type, name)] = decided
        return decision.entries
