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
    CheckConstraint,
    Column,
    ColumnElement,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    create_engine,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError

from integrations.accounts import metadata as accounts_metadata
from integrations.outbox import Outbox, OutboxEntry, OutboxItem, enqueue, outbox
from integrations.outbox import metadata as outbox_metadata
from integrations.redact import redact_card_numbers, redact_data

__all__ = [
    "OUTCOMES",
    "CallEvents",
    "CallFilter",
    "CallSummary",
    "Decision",
    "Page",
    "Store",
    "call_outcome",
    "make_engine",
    "metadata",
    "migrated_metadata",
]

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
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(64)),
    Column("transfer_to", String(32)),
    Column("summary", Text),
    Column("duration_s", Integer),
    # "voice" (a phone or browser call) or "typed" (`postvoice chat`): metrics count both and
    # can leave typed ones out.
    Column("channel", String(16), nullable=False, default="voice", server_default="voice"),
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
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
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

refund_approvals = Table(
    "refund_approvals",
    metadata,
    # One decision per `refund.pending_approval` event, ever: the key makes a double click or
    # two people deciding at once a no-op for all but the first (integrations.approvals).
    Column("event_id", Integer, ForeignKey("events.id"), primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("note", Text),
    Column("outcome", String(32), nullable=False),
    Column("result", JSON),
    Column("decided_at", DateTime(timezone=True), nullable=False, index=True),
    CheckConstraint("decision IN ('approve', 'deny')", name="ck_refund_approvals_decision"),
)


stream_claims = Table(
    "stream_claims",
    metadata,
    # One media stream per call, ever: the first `start` with a valid token claims the call;
    # a replayed token, a second socket, or a start after the call ended finds the row taken.
    Column("call_sid", String(64), primary_key=True),
    Column("stream_sid", String(64), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)


migrated_metadata = (metadata, outbox_metadata, accounts_metadata)
"""Every table the migrations own: the call store's, the outbox's and the accounts'."""

# PostgreSQL advisory lock held while migrating, so instances starting together take turns.
_MIGRATION_LOCK = zlib.crc32(b"postvoice:migrate")


def _now() -> datetime:
    return datetime.now(UTC)


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


# --- how a call went (the dashboard's list and filters) ---------------------------------------

OUTCOMES = ("resolved", "handed_off", "abandoned", "failed", "in_progress")
"""How a call went, as `call_outcome` classifies it."""

SERVED_EVENTS = (
    "order.looked_up",
    "tracking.looked_up",
    "coupon.checked",
    "coupon.offered",
    "sms.sent",
    "ticket.created",
    "return.created",
    "return.denied",
    "exchange.created",
    "replacement.created",
    "refund.created",
    "refund.pending_approval",
    "refund.denied",
    "refund.held",
    "delivery.rescheduled",
    "address.changed",
    "redirect.requested",
    "claim.opened",
    "csat.recorded",
)
"""Events that show the agent answered the caller's question or acted on it."""

CONVERSATIONAL_INTENTS = ("yes", "no", "goodbye", "unknown")
"""Intents that are turns of the conversation, not what the caller called about."""

CALLER_LEFT_REASONS = ("caller_hangup", "socket_closed", "silence")
"""End reasons that mean the caller went away (hung up, the line dropped, or said nothing)."""

FAILED_END_REASONS = ("error", "busy")
"""End reasons that mean the call broke on our side, or was turned away (at capacity)."""

_NOT_CONNECTED = ("failed", "busy", "no-answer")
_ENDED_STATUSES = ("completed", "transferred", "canceled", *_NOT_CONNECTED)
# How far along a call's status is; a status never moves to a lower rank (a replayed or late
# webhook cannot make a finished call ring again). Statuses not listed rank lowest.
_STATUS_RANK = {
    "queued": 1,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "answered": 3,
    **{status: 4 for status in _ENDED_STATUSES},
}


def _forward_status(status: str) -> ColumnElement[str]:
    """SQL for the call's status after `status` arrives: it, unless the call is further on."""
    current = case(_STATUS_RANK, value=calls.c.status, else_=0)
    return case((current <= _STATUS_RANK.get(status, 0), status), else_=calls.c.status)


def call_outcome() -> ColumnElement[str]:
    """SQL for how each call went, one of `OUTCOMES`, tested in this order:

    - `handed_off`: the agent handed the caller to a person (a `handoff` event, a
      `transfer_to` number, or the call ended with reason "transfer");
    - `failed`: the call broke on our side (end reason in `FAILED_END_REASONS`), or Twilio
      says it never connected (status failed, busy, no-answer);
    - `in_progress`: not ended yet (no end reason, no end time, no final Twilio status);
    - `resolved`: the agent served the caller without a person — it answered or acted (an event
      in `SERVED_EVENTS`), or it ended the call itself (any other end reason than the caller
      leaving, e.g. "caller_done" after the goodbye);
    - `abandoned`: the rest — the caller hung up or fell silent before anything was done.
    """

    def has(types: Sequence[str]) -> ColumnElement[bool]:
        return exists().where(events.c.call_sid == calls.c.call_sid, events.c.type.in_(types))

    reason = calls.c.end_reason
    ended = or_(
        calls.c.ended_at.is_not(None), reason.is_not(None), calls.c.status.in_(_ENDED_STATUSES)
    )
    return case(
        (
            or_(calls.c.transfer_to.is_not(None), reason == "transfer", has(["handoff"])),
            "handed_off",
        ),
        (or_(reason.in_(FAILED_END_REASONS), calls.c.status.in_(_NOT_CONNECTED)), "failed"),
        (~ended, "in_progress"),
        (has(SERVED_EVENTS), "resolved"),
        (and_(reason.is_not(None), reason.not_in(CALLER_LEFT_REASONS)), "resolved"),
        else_="abandoned",
    )


@dataclass(frozen=True)
class CallFilter:
    """What the calls list is narrowed to; every field optional.

    `q` matches the caller's or the called number (digits alone match however the number was
    typed), an order number, the call sid, or words said in the call.
    """

    q: str = ""
    direction: str | None = None
    outcome: str | None = None
    intent: str | None = None
    handoff: bool | None = None
    since: datetime | None = None
    call_sid: str | None = None


@dataclass(frozen=True)
class CallSummary:
    """One line of the calls list."""

    call_sid: str
    created_at: datetime
    started_at: datetime | None
    from_number: str
    to_number: str
    direction: str
    purpose: str | None
    order_ref: str | None
    status: str
    end_reason: str | None
    transfer_to: str | None
    outcome: str
    intents: list[str]
    duration_s: int | None
    median_latency_ms: int | None

    @property
    def handoff(self) -> bool:
        """Whether a person took the call over."""
        return self.outcome == "handed_off"


@dataclass(frozen=True)
class Page:
    """One page of a list, newest first, and how many there are in all."""

    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))


RETURN_ORDER_EVENTS = (
    "return.created",
    "return.denied",
    "return.received",
    "exchange.created",
    "replacement.created",
    "refund.created",
    "refund.pending_approval",
    "refund.denied",
    "refund.approved",
    "refund.approval_denied",
)
"""Events that put an order on the returns page."""

TICKET_STATES = {
    "queued": ("pending", "delivering"),
    "delivered": ("delivered",),
    "dead": ("dead",),
}
"""A ticket's state as support sees it, and the outbox states behind it."""


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
                conn.execute(insert(calls).values(call_sid=call_sid, created_at=_now(), **fields))

    def call_ended(self, call_sid: str) -> bool:
        """Whether the call has finished (by our record or Twilio's final status)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(calls.c.status, calls.c.ended_at).where(calls.c.call_sid == call_sid)
            ).first()
        return row is not None and (row.ended_at is not None or row.status in _ENDED_STATUSES)

    def claim_stream(self, call_sid: str, stream_sid: str) -> bool:
        """Claim the call's one media stream; False when it was claimed before (a replayed
        token, a second socket for a live call, a start after the call ended)."""
        if self.call_ended(call_sid):
            return False
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(stream_claims).values(
                        call_sid=call_sid, stream_sid=stream_sid, claimed_at=_now()
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
                    call_sid=call_sid, status=status, payload=payload, created_at=_now()
                )
            )
        fields: dict[str, Any] = {"status": status}
        duration = payload.get("CallDuration", "")
        if status in _ENDED_STATUSES and duration.isascii() and duration.isdigit():
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
                return Decision(None, entries, _event_of(conn, event_type, entries[0].ref))
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

    # --- read models for the dashboard -------------------------------------------------------

    def calls_page(
        self, filters: CallFilter | None = None, *, page: int = 1, per_page: int = 50
    ) -> Page:
        """Calls newest first, narrowed by `filters`: one page of `CallSummary`s."""
        filters = filters or CallFilter()
        outcome = call_outcome()
        where = _call_conditions(filters, outcome)
        page = max(1, page)
        query = (
            select(calls, outcome.label("outcome"))
            .where(*where)
            .order_by(calls.c.created_at.desc(), calls.c.call_sid.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(calls).where(*where)).scalar()
            rows = conn.execute(query).mappings().all()
            sids = [r["call_sid"] for r in rows]
            intents: dict[str, list[str]] = {sid: [] for sid in sids}
            for sid, data in conn.execute(
                select(events.c.call_sid, events.c.data)
                .where(events.c.type == "intent", events.c.call_sid.in_(sids))
                .order_by(events.c.id)
            ):
                name = (data or {}).get("name")
                if name and name not in intents[sid] and name not in CONVERSATIONAL_INTENTS:
                    intents[sid].append(str(name))
            latencies: dict[str, list[int]] = {sid: [] for sid in sids}
            for sid, timing in conn.execute(
                select(turns.c.call_sid, turns.c.timing).where(
                    turns.c.role == "agent", turns.c.call_sid.in_(sids)
                )
            ):
                value = timing.get("latency_ms") if isinstance(timing, dict) else None
                if isinstance(value, int | float):
                    latencies[sid].append(int(value))
        items = [
            CallSummary(
                call_sid=r["call_sid"],
                created_at=_utc(r["created_at"]),
                started_at=_utc(r["started_at"]),
                from_number=r["from_number"],
                to_number=r["to_number"],
                direction=r["direction"],
                purpose=r["purpose"],
                order_ref=r["order_ref"],
                status=r["status"],
                end_reason=r["end_reason"],
                transfer_to=r["transfer_to"],
                outcome=r["outcome"],
                intents=intents[r["call_sid"]],
                duration_s=_duration(r),
                median_latency_ms=_median(latencies[r["call_sid"]]),
            )
            for r in rows
        ]
        return Page(items, int(total or 0), page, per_page)

    def intent_names(self) -> list[str]:
        """Every intent callers called about, sorted (for the calls list's filter)."""
        name = events.c.data["name"].as_string()
        with self.engine.connect() as conn:
            found = conn.execute(
                select(name).where(events.c.type == "intent", name.is_not(None)).distinct()
            ).scalars()
            return sorted(str(n) for n in found if n and n not in CONVERSATIONAL_INTENTS)

    def tickets_page(self, state: str | None = None, *, page: int = 1, per_page: int = 50) -> Page:
        """Tickets for the helpdesk newest first, each a dict: its outbox row (`state`
        "queued", "delivered" or "dead", with the helpdesk's id once delivered) and what its
        `ticket.created` event adds (order, reason). `state` narrows the list."""
        where = [outbox.c.kind == "ticket"]
        if state:
            where.append(outbox.c.status.in_(TICKET_STATES.get(state, (state,))))
        page = max(1, page)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(outbox).where(*where)).scalar()
            rows = [
                OutboxEntry.from_row(r)
                for r in conn.execute(
                    select(outbox)
                    .where(*where)
                    .order_by(outbox.c.id.desc())
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                ).mappings()
            ]
            reference = events.c.data["reference"].as_string()
            refs = [str(e.payload.get("reference") or "") for e in rows]
            decided = {
                ref: (order, data)
                for ref, order, data in conn.execute(
                    select(reference, events.c.order_ref, events.c.data).where(
                        events.c.type == "ticket.created", reference.in_([r for r in refs if r])
                    )
                )
            }
        items = []
        for entry in rows:
            ref = str(entry.payload.get("reference") or "")
            order, data = decided.get(ref, (None, {}))
            result = entry.result or {}
            items.append(
                {
                    "id": entry.id,
                    "reference": ref,
                    "subject": entry.payload.get("subject", ""),
                    "priority": entry.payload.get("priority", "normal"),
                    "tags": list(entry.payload.get("tags") or []),
                    "state": _ticket_state(entry.status),
                    "helpdesk_id": result.get("id") if entry.status == "delivered" else None,
                    "url": result.get("url") or "",
                    "error": entry.last_error if entry.status == "dead" else None,
                    "attempts": entry.attempts,
                    "call_sid": entry.call_sid,
                    "order_ref": entry.order_ref or order,
                    "reason": (data or {}).get("reason"),
                    "created_at": entry.created_at,
                    "delivered_at": entry.delivered_at,
                }
            )
        return Page(items, int(total or 0), page, per_page)

    def returns_page(self, *, page: int = 1, per_page: int = 25) -> Page:
        """Orders with return or refund activity, the latest first (`RETURN_ORDER_EVENTS`).

        Each item is a dict: `order_ref`, `last_at`, `events` (those events of the order,
        oldest first) and `labels` (RMA → the outbox row of its label, when one was queued).
        The RMAs' own state is the Returns provider's to tell (the dashboard asks it).
        """
        page = max(1, page)
        about = and_(events.c.type.in_(RETURN_ORDER_EVENTS), events.c.order_ref.is_not(None))
        last = func.max(events.c.id).label("last")
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count(events.c.order_ref.distinct())).where(about)
            ).scalar()
            orders = conn.execute(
                select(events.c.order_ref, last)
                .where(about)
                .group_by(events.c.order_ref)
                .order_by(last.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
            numbers = [order for order, _last in orders]
            rows = [
                dict(r)
                for r in conn.execute(
                    select(events)
                    .where(about, events.c.order_ref.in_(numbers))
                    .order_by(events.c.id)
                ).mappings()
            ]
            rmas = sorted({str(r["data"]["rma"]) for r in rows if (r["data"] or {}).get("rma")})
            rma = events.c.data["rma"].as_string()
            label_refs: dict[str, list[int]] = {}
            for found, data in conn.execute(
                select(rma, events.c.data).where(
                    events.c.type == "return.label_created", rma.in_(rmas)
                )
            ):
                label_refs.setdefault(str(found), []).extend(
                    int(str(ref)[7:])
                    for ref in (data or {}).get("outbox") or []
                    if str(ref).startswith("outbox:") and str(ref)[7:].isdigit()
                )
            ids = sorted({i for found in label_refs.values() for i in found})
            entries = {
                e.id: e
                for e in (
                    OutboxEntry.from_row(r)
                    for r in conn.execute(select(outbox).where(outbox.c.id.in_(ids))).mappings()
                )
            }
        items = []
        for order, _last in orders:
            mine = [
                {**r, "data": dict(r["data"] or {}), "created_at": _utc(r["created_at"])}
                for r in rows
                if r["order_ref"] == order
            ]
            labels = {
                found: entries[refs[-1]]
                for found, refs in label_refs.items()
                if refs and refs[-1] in entries and any(e["data"].get("rma") == found for e in mine)
            }
            last_at = mine[-1]["created_at"] if mine else None
            items.append({"order_ref": order, "last_at": last_at, "events": mine, "labels": labels})
        return Page(items, int(total or 0), page, per_page)


def _call_conditions(filters: CallFilter, outcome: ColumnElement[str]) -> list[Any]:
    """The WHERE clauses of the calls list."""
    where: list[Any] = []
    if filters.call_sid is not None:
        where.append(calls.c.call_sid == filters.call_sid)
    if filters.direction:
        where.append(calls.c.direction == filters.direction)
    if filters.outcome:
        where.append(outcome == filters.outcome)
    if filters.handoff is not None:
        where.append((outcome == "handed_off") if filters.handoff else (outcome != "handed_off"))
    if filters.since is not None:
        where.append(calls.c.created_at >= filters.since)
    if filters.intent:
        where.append(
            exists().where(
                events.c.call_sid == calls.c.call_sid,
                events.c.type == "intent",
                events.c.data["name"].as_string() == filters.intent,
            )
        )
    term = filters.q.strip()
    if term:
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        digits = "".join(ch for ch in term if ch.isdigit())
        matches = [
            calls.c.call_sid == term,
            calls.c.from_number.ilike(like, escape="\\"),
            calls.c.to_number.ilike(like, escape="\\"),
            calls.c.order_ref == term.lstrip("#"),
            exists().where(
                events.c.call_sid == calls.c.call_sid, events.c.order_ref == term.lstrip("#")
            ),
            exists().where(
                turns.c.call_sid == calls.c.call_sid, turns.c.text.ilike(like, escape="\\")
            ),
        ]
        if len(digits) >= 4 and digits != term:  # "(415) 555-0101" finds +14155550101
            matches += [
                calls.c.from_number.like(f"%{digits}%"),
                calls.c.to_number.like(f"%{digits}%"),
            ]
        where.append(or_(*matches))
    return where


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every datetime we write is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _duration(row: Any) -> int | None:
    """Twilio's duration when it reported one, else from our own start and end."""
    if row["duration_s"] is not None:
        return int(row["duration_s"])
    started, ended = _utc(row["started_at"]), _utc(row["ended_at"])
    if started is None or ended is None:
        return None
    return max(0, round((ended - started).total_seconds()))


def _median(values: Sequence[int]) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return round((ordered[middle - 1] + ordered[middle]) / 2)


def _ticket_state(status: str) -> str:
    return next((state for state, found in TICKET_STATES.items() if status in found), status)


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


def _event_of(conn: Connection, event_type: str, ref: str) -> int | None:
    """The event of `event_type` that queued outbox row `ref` (its data lists the ref)."""
    found = conn.execute(
        select(events.c.id)
        .where(
            events.c.type == event_type,
            func.cast(events.c.data, Text).like(f'%"{ref}"%'),
        )
        .order_by(events.c.id)
        .limit(1)
    ).scalar()
    return int(found) if found is not None else None


# Event types of which an order line has at most one: a second (the same return received
# twice, two desks at once) is the first one again.
_ONE_PER_LINE = frozenset({"refund.pending_approval"})


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
        """Record an event (docs/DESIGN.md names) for this call."""
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
        event_id = decision.event_id or decision.earlier
        if event_id is not None:
            self.recorded.append(
                {"type": type, "order": order, "at_ms": at_ms, **data, "outbox": refs}
            )
            # A repeat of a decision made before: what the dialog records about it (with the
            # id the provider gave, once delivered) is merged into that first event.
            delivered = [
                str(entry.result[k])
                for entry in decision.entries
                for k in ("message_id", "id")
                if entry.result and entry.result.get(k)
            ]
            for ref in [*refs, *aliases, *delivered]:
                self._decided[(type, ref)] = (event_id, len(self.recorded) - 1)
        return decision.entries
