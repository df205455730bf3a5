"""The durable outbox, queueing side: side effects that leave the machine, written with the
decision, sent later.

A decision (text the tracking link, open a ticket, buy a return label, refund a line) is written
as an outbox row in the same transaction as the event that records it; a worker
(`integrations.worker`, with `integrations.delivery`) delivers the row through the real
provider, retrying what may succeed later and dead-lettering what never will. Because the row
commits before anything is sent, a crash loses no decision; because every row carries an
idempotency key that is both UNIQUE here and handed to the provider, a retried decision or a
retried delivery acts once.

Row states:

    pending ──claim──► delivering ──ok──► delivered
       ▲                  │  └─permanent failure, or retries exhausted──► dead ──retry_dead──┐
       └──retryable failure (next_attempt_at = backoff), or lease expired─┘◄─────────────────┘

This module holds the table, its rows (`OutboxItem`, `OutboxEntry`), queueing (`enqueue`,
`Outbox`: queue, look up, count, an operator's requeue) and the protocol implementations the
dialog is handed (`OutboxMessenger`, `OutboxHelpdesk`, `OutboxRefunds`, `OutboxReturns`: they
queue and return at once). They write through a `DecisionLog` (`integrations.store.CallEvents`
is one), so nothing here imports the store. Claiming, settling and the deliverers that turn a
row back into a provider call are `integrations.delivery`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from integrations.clock import aware, utc_now
from integrations.models import Attachment, Label, Refund, Ticket
from integrations.protocols import Refunds, Returns
from integrations.redact import redact_data
from integrations.schema import plain

if TYPE_CHECKING:
    from integrations.models import ReturnAuthorization

__all__ = [
    "KINDS",
    "STATUSES",
    "DecisionLog",
    "Outbox",
    "OutboxEntry",
    "OutboxHelpdesk",
    "OutboxItem",
    "OutboxMessenger",
    "OutboxRefunds",
    "OutboxReturns",
    "enqueue",
    "metadata",
    "outbox",
    "ticket_reference",
]

KINDS = ("sms", "ticket", "attachment", "label", "refund")
"""The kinds of side effect the adapters here queue (a worker may deliver others)."""

STATUSES = ("pending", "delivering", "delivered", "dead")
"""The states of an outbox row, in the order a row normally passes through them."""

# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

metadata = MetaData()
"""The outbox table. Kept apart from the call store's tables so the store can build on it."""

_UtcDateTime = DateTime(timezone=True)
# JSONB on PostgreSQL lets an operator query payloads; plain JSON (text) on SQLite.
_Json = JSON().with_variant(JSONB(), "postgresql")

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("payload", _Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", _UtcDateTime, nullable=False),
    Column("locked_by", String(128)),
    Column("locked_until", _UtcDateTime),
    Column("last_error", Text),
    Column("error_code", String(64)),
    Column("result", _Json),
    Column("call_sid", String(64), index=True),
    Column("order_ref", String(32), index=True),
    Column("created_at", _UtcDateTime, nullable=False),
    Column("delivered_at", _UtcDateTime),
    Column("updated_at", _UtcDateTime, nullable=False),
    CheckConstraint(
        "status IN ('pending', 'delivering', 'delivered', 'dead')", name="ck_outbox_status"
    ),
    Index("uq_outbox_idempotency_key", "idempotency_key", unique=True),
    # What the worker's claim scans: due pending rows and expired leases.
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

_KIND = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    """A side effect to deliver: its kind, the key that makes it happen once, and its payload.

    `idempotency_key` is UNIQUE across the outbox and is also the key the provider is given.
    """

    kind: str
    idempotency_key: str
    payload: Mapping[str, Any]
    order_ref: str | None = None

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ValueError(f"not an outbox kind: {self.kind!r}")
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise ValueError("an outbox item needs an idempotency key of 1 to 200 characters")


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as stored, for the worker, the adapters and operators."""

    id: int
    kind: str
    idempotency_key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    error_code: str | None
    result: dict[str, Any] | None
    call_sid: str | None
    order_ref: str | None
    created_at: datetime
    delivered_at: datetime | None
    updated_at: datetime

    @property
    def ref(self) -> str:
        """How the dialog and the event log name this row until the provider's id is known."""
        return f"outbox:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        """Plain data, e.g. for the dashboard's JSON."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxEntry:
        """From a row of the `outbox` table."""
        data = dict(row)
        for name in ("next_attempt_at", "locked_until", "created_at", "delivered_at", "updated_at"):
            data[name] = aware(data[name])
        return cls(**data)


def _insert_ignoring_duplicates(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert unless the key exists; True when a row was written. Never aborts the transaction."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(outbox).values(**values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(outbox).values(**values)
    else:
        stmt = None
    if stmt is not None:
        # ON CONFLICT waits for a concurrent insert of the same key to commit or roll back,
        # then does nothing: exactly one of two racing decisions writes the row.
        stmt = stmt.on_conflict_do_nothing(index_elements=[outbox.c.idempotency_key])
        return conn.execute(stmt.returning(outbox.c.id)).first() is not None
    with conn.begin_nested() as savepoint:  # other databases: a savepoint absorbs the conflict
        existing = conn.execute(
            select(outbox.c.id).where(outbox.c.idempotency_key == values["idempotency_key"])
        ).first()
        if existing is not None:
            savepoint.rollback()
            return False
        conn.execute(insert(outbox).values(**values))
    return True


def enqueue(
    conn: Connection,
    item: OutboxItem,
    *,
    call_sid: str | None = None,
    now: datetime | None = None,
) -> tuple[OutboxEntry, bool]:
    """Write `item` inside the caller's transaction; `(entry, created)`.

    An item whose key is already queued (a Twilio retry, a caller asking twice, two instances
    deciding at once) writes nothing and returns the existing row with `created` False.
    """
    at = now or utc_now()
    created = _insert_ignoring_duplicates(
        conn,
        {
            "kind": item.kind,
            "idempotency_key": item.idempotency_key,
            # What leaves the machine (a ticket's body, a text) carries no card number.
            "payload": redact_data(plain(item.payload)),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "call_sid": call_sid,
            "order_ref": item.order_ref,
            "created_at": at,
            "updated_at": at,
        },
    )
    row = (
        conn.execute(select(outbox).where(outbox.c.idempotency_key == item.idempotency_key))
        .mappings()
        .one()
    )
    return OutboxEntry.from_row(row), created


# --------------------------------------------------------------------------------------------
# Operations on rows
# --------------------------------------------------------------------------------------------


class Outbox:
    """The outbox's row operations: queue, claim with a lease, settle, and operators' requeue.

    Methods are synchronous and short (one transaction each); async callers use a thread.
    `now` parameters let the worker run on its own clock.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(
        self, item: OutboxItem, *, call_sid: str | None = None, now: datetime | None = None
    ) -> OutboxEntry:
        """Queue one item in its own transaction (a duplicate key returns the existing row)."""
        with self.engine.begin() as conn:
            entry, _created = enqueue(conn, item, call_sid=call_sid, now=now)
        return entry

    def get(self, entry_id: int) -> OutboxEntry | None:
        """One row by id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == entry_id)).mappings().first()
        return OutboxEntry.from_row(row) if row else None

    def by_key(self, idempotency_key: str) -> OutboxEntry | None:
        """One row by its idempotency key."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(outbox).where(outbox.c.idempotency_key == idempotency_key))
                .mappings()
                .first()
            )
        return OutboxEntry.from_row(row) if row else None

    def items(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        call_sid: str | None = None,
        order_ref: str | None = None,
        limit: int | None = 200,
    ) -> list[OutboxEntry]:
        """Rows, newest first, filtered by whatever is given."""
        query = select(outbox).order_by(outbox.c.id.desc())
        for column, value in (
            (outbox.c.status, status),
            (outbox.c.kind, kind),
            (outbox.c.call_sid, call_sid),
            (outbox.c.order_ref, order_ref),
        ):
            if value is not None:
                query = query.where(column == value)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [OutboxEntry.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many rows are in each state (every state present, zero or not)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.status, func.count()).group_by(outbox.c.status)
            ).all()
        return {status: 0 for status in STATUSES} | {status: n for status, n in rows}

    def retry_dead(self, entry_id: int, *, now: datetime | None = None) -> bool:
        """Put a dead row back in the queue, with a fresh budget of attempts (for operators).

        The last error stays on the row until the next attempt replaces it. False when the
        row is not dead.
        """
        at = now or utc_now()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == entry_id, outbox.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=at, updated_at=at)
            )
        return done.rowcount == 1


# --------------------------------------------------------------------------------------------
# What the dialog is handed: protocol implementations that queue
# --------------------------------------------------------------------------------------------


class DecisionLog(Protocol):
    """Where the adapters write a call's decisions (`integrations.store.CallEvents` is one)."""

    @property
    def outbox(self) -> Outbox:
        """The outbox the decisions queue in."""
        ...

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
        """Write the decision's event once, with `items` queued in the same transaction; the
        rows. The dialog's own record of the decision names it in the field `named_by`, by a
        row's ref or one of `aliases`."""
        ...


class _Queueing:
    """Shared by the adapters: write the decision event and the row together, wake the worker."""

    def __init__(self, events: DecisionLog, *, wake: Callable[[], None] | None = None) -> None:
        self.events = events
        self.wake = wake

    async def _decide(
        self,
        event_type: str,
        item: OutboxItem,
        *,
        order: str | None,
        named_by: str | None = None,
        aliases: Sequence[str] = (),
        **data: Any,
    ) -> OutboxEntry:
        entries = await self.events.decide(
            event_type, [item], order=order, named_by=named_by, aliases=aliases, **data
        )
        if self.wake is not None:
            self.wake()
        return entries[0]


class OutboxMessenger(_Queueing):
    """`Messenger` that queues the text: records `sms.sent` with the row, returns its ref.

    The returned id is `outbox:<id>` until the worker has sent the text, after which a repeat
    of the same key returns the provider's message id.
    """

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        """Queue a text to `to`; the worker sends it with this key."""
        if not to.strip() or not body.strip():
            raise ValueError("an SMS needs a number and a body")
        item = OutboxItem("sms", f"sms:{idempotency_key}", {"to": to, "body": body})
        entry = await self._decide("sms.sent", item, order=None, named_by="message_id", to=to)
        if entry.status == "delivered" and entry.result:
            return str(entry.result.get("message_id", entry.ref))
        return entry.ref


class OutboxHelpdesk(_Queueing):
    """`Helpdesk` that queues the ticket: records `ticket.created`, returns a queued `Ticket`.

    Until the helpdesk has it, the ticket's id is a reference a caller can read and quote
    ("PV-7K2Q9M", the same for the same key), and its status "queued"; the reference is
    written into the ticket and its tags, so support finds it. A helpdesk outage delays the
    ticket, it never loses it.
    """

    async def create_ticket(
        self,
        subject: str,
        body: str,
        *,
        requester_phone: str | None,
        requester_email: str | None,
        tags: list[str],
        priority: str,
        idempotency_key: str,
    ) -> Ticket:
        """Queue a ticket for a person to pick up."""
        key = f"ticket:{idempotency_key}"
        reference = ticket_reference(key)
        item = OutboxItem(
            "ticket",
            key,
            {
                "subject": subject,
                "body": body,
                "requester_phone": requester_phone,
                "requester_email": requester_email,
                "tags": list(tags),
                "priority": priority,
                "reference": reference,
            },
        )
        entry = await self._decide(
            "ticket.created",
            item,
            order=None,
            named_by="ticket_id",
            aliases=[reference],
            reference=reference,
            subject=subject,
            priority=priority,
            tags=tags,
        )
        if entry.status == "delivered" and entry.result:
            # One ticket, one id: the reference the caller was first given (the helpdesk's
            # ticket carries it), not the helpdesk's own id on a repeat.
            delivered = _ticket(entry.result)
            return Ticket(id=reference, subject=subject, status=delivered.status, url=delivered.url)
        return Ticket(id=reference, subject=subject, status="queued")

    async def attach(
        self, ticket_id: str, files: list[Attachment], *, note: str, idempotency_key: str
    ) -> list[str]:
        """Queue files for a ticket (records `ticket.attached`); the refs of the queued files.

        The row names each file by its `ref` (a kept photo, "photo:12"), never its bytes; the
        worker reads them back and attaches them once the ticket is in the helpdesk.
        """
        if not files or any(not f.ref for f in files):
            raise ValueError("queued attachments name kept files: every one needs a ref")
        item = OutboxItem(
            "attachment",
            f"attachment:{idempotency_key}",
            {
                "ticket_id": ticket_id,
                "files": [
                    {"ref": f.ref, "filename": f.filename, "content_type": f.content_type}
                    for f in files
                ],
                "note": note,
            },
        )
        await self._decide(
            "ticket.attached", item, order=None, ticket_id=ticket_id, files=len(files)
        )
        return [f.ref for f in files]


class OutboxRefunds(_Queueing):
    """`Refunds` that queue the refund: records `refund.created`, returns a pending `Refund`.

    The outbox key is the order line (`refund:<order>:<line>`), not the caller's key: the
    protocol allows one refund per line ever, so a second decision for the same line — a
    Twilio retry, the caller asking again on another call, two instances at once — returns the
    first one instead of queueing another. The `Refund` handed back says "pending" (id
    `outbox:<id>`) until the provider has it, then the provider's id and status; "failed" with
    the provider's reason if the refund went to dead (e.g. `charge_already_refunded`).

    `provider`, when given, answers `refunds_of` for what it has done; refunds still in the
    outbox are added to its answer.
    """

    def __init__(
        self,
        events: DecisionLog,
        provider: Refunds | None = None,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(events, wake=wake)
        self.provider = provider

    async def refund(
        self,
        order_number: str,
        line_id: str,
        amount_cents: int,
        *,
        idempotency_key: str,
        reason: str,
    ) -> Refund:
        """Queue the refund of one order line (once per line, whatever the key)."""
        if amount_cents <= 0:
            raise ValueError("a refund needs a positive amount")
        item = OutboxItem(
            "refund",
            f"refund:{order_number}:{line_id}",
            {
                "order_number": order_number,
                "line_id": line_id,
                "amount_cents": amount_cents,
                "reason": reason,
                "decision_key": idempotency_key,
            },
            order_ref=order_number,
        )
        entry = await self._decide(
            "refund.created",
            item,
            order=order_number,
            named_by="refund_id",
            line_id=line_id,
            amount_cents=amount_cents,
            reason=reason,
        )
        return _refund_of(entry)

    async def refunds_of(self, order_number: str) -> list[Refund]:
        """The provider's refunds of the order, plus those still queued or dead here."""
        entries = await asyncio.to_thread(
            self.events.outbox.items, kind="refund", order_ref=order_number, limit=None
        )
        done = await self.provider.refunds_of(order_number) if self.provider else []
        known = {r.line_id for r in done}
        for entry in reversed(entries):
            queued_here = entry.status != "delivered" or self.provider is None
            if queued_here and entry.payload.get("line_id") not in known:
                done.append(_refund_of(entry))
        return done


class OutboxReturns(_Queueing):
    """`Returns` whose labels are bought through the outbox and texted to the customer.

    `create`, `returns_of` and `receive` go straight to `provider`. `label` queues the label
    (records `return.label_created`) and returns at once: the returned `Label` has an empty
    `url` until the worker has bought it, then texts it to `notify_phone` when one is given.
    """

    def __init__(
        self,
        events: DecisionLog,
        provider: Returns,
        *,
        notify_phone: str | None = None,
        shop_name: str = "the shop",
        wake: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(events, wake=wake)
        self.provider = provider
        self.notify_phone = notify_phone
        self.shop_name = shop_name

    async def create(
        self,
        order_number: str,
        line_ids: list[str],
        reason_code: str,
        resolution: str,
        *,
        idempotency_key: str,
        exchange_variant: str | None = None,
    ) -> ReturnAuthorization:
        """Authorize the return at the provider."""
        return await self.provider.create(
            order_number,
            line_ids,
            reason_code,
            resolution,
            idempotency_key=idempotency_key,
            exchange_variant=exchange_variant,
        )

    async def label(self, rma: str, *, idempotency_key: str) -> Label:
        """Queue the label (and the text that carries it); an empty url means on its way."""
        item = OutboxItem(
            "label",
            f"label:{idempotency_key}",
            {"rma": rma, "notify_phone": self.notify_phone, "shop_name": self.shop_name},
        )
        entry = await self._decide("return.label_created", item, order=None, rma=rma)
        if entry.status == "delivered" and entry.result:
            return _label(entry.result)
        return Label(url="", carrier="", tracking_number="")

    async def returns_of(self, order_number: str) -> list[ReturnAuthorization]:
        """The provider's returns of the order."""
        return await self.provider.returns_of(order_number)

    async def receive(self, rma: str) -> ReturnAuthorization:
        """The warehouse has the parcel."""
        return await self.provider.receive(rma)


# --------------------------------------------------------------------------------------------
# Results, both ways
# --------------------------------------------------------------------------------------------


_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: easy to read out


def ticket_reference(key: str) -> str:
    """A short reference for the ticket queued under `key`, the same every time ("PV-7K2Q9M")."""
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:5], "big")
    chars = []
    for _ in range(6):
        number, digit = divmod(number, len(_REFERENCE_ALPHABET))
        chars.append(_REFERENCE_ALPHABET[digit])
    return "PV-" + "".join(chars)


def _datetime(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return aware(datetime.fromisoformat(value)) if isinstance(value, str) else aware(value)


def _ticket(result: Mapping[str, Any]) -> Ticket:
    return Ticket(
        id=str(result["id"]),
        subject=str(result.get("subject", "")),
        status=str(result.get("status", "open")),
        url=str(result.get("url", "")),
    )


def _label(result: Mapping[str, Any]) -> Label:
    return Label(
        url=str(result.get("url", "")),
        carrier=str(result.get("carrier", "")),
        tracking_number=str(result.get("tracking_number", "")),
        expires_at=_datetime(result.get("expires_at")),
    )


def _refund_of(entry: OutboxEntry) -> Refund:
    """What the dialog is told about a queued, delivered or dead refund."""
    if entry.status == "delivered" and entry.result:
        r = entry.result
        return Refund(
            id=str(r["id"]),
            order_number=str(r["order_number"]),
            line_id=str(r["line_id"]),
            amount_cents=int(r["amount_cents"]),
            status=str(r["status"]),
            created_at=_datetime(r.get("created_at")) or entry.created_at,
            method=str(r.get("method", "original_payment")),
            failure_reason=r.get("failure_reason"),
        )
    payload = entry.payload
    dead = entry.status == "dead"
    return Refund(
        id=entry.ref,
        order_number=str(payload["order_number"]),
        line_id=str(payload["line_id"]),
        amount_cents=int(payload["amount_cents"]),
        status="failed" if dead else "pending",
        created_at=entry.created_at,
        failure_reason=(entry.error_code or "failed") if dead else None,
    )
