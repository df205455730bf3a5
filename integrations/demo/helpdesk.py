"""`DemoHelpdesk`: tickets filed in `shop_tickets` for people to pick up, and the files added
to them (photos of damage) in `shop_ticket_attachments`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from integrations.clock import Clock, utc_now
from integrations.demo.rows import from_db, next_id, require_key, to_db, write_once
from integrations.demo.schema import shop_ticket_attachments, shop_tickets
from integrations.models import Attachment, Ticket
from integrations.phones import normalize_phone
from integrations.protocols import ProviderError

_PRIORITIES = ("low", "normal", "high", "urgent")


class DemoHelpdesk:
    """`Helpdesk` that files tickets in `shop_tickets` ("T-10001", …) for people to pick up.

    Idempotent by key; tickets survive a reseed of the demo shop, as a real helpdesk's would.
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

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
        """File a ticket; the same key returns the first ticket and files nothing new."""
        require_key(idempotency_key)
        if not subject.strip():
            raise ValueError("a ticket needs a subject")
        if priority not in _PRIORITIES:
            raise ValueError(f"priority {priority!r}; known: {list(_PRIORITIES)}")
        phone = None
        if requester_phone:
            phone = normalize_phone(requester_phone) or requester_phone.strip()
        row = {
            "subject": subject.strip(),
            "body": body,
            "requester_phone": phone,
            "requester_email": (requester_email or "").strip().lower() or None,
            "tags": json.dumps(list(dict.fromkeys(tags))),
            "priority": priority,
            "status": "open",
            "idempotency_key": idempotency_key,
        }
        return await asyncio.to_thread(self._create, row)

    async def attach(
        self, ticket_id: str, files: list[Attachment], *, note: str, idempotency_key: str
    ) -> list[str]:
        """Add files to a ticket ("A-10001", …); the same key adds nothing new."""
        require_key(idempotency_key)
        if not files or any(not f.data for f in files):
            raise ValueError("an attachment needs its bytes")
        return await asyncio.to_thread(self._attach, ticket_id, files, note, idempotency_key)

    def attachments(self, ticket_id: str) -> list[dict[str, Any]]:
        """The files added to a ticket, in order, bytes included (operators and tests)."""
        t = shop_ticket_attachments
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.filename, t.c.content_type, t.c.data, t.c.note)
                .where(t.c.ticket_id == ticket_id)
                .order_by(t.c.seq)
            ).all()
        return [{**row._asdict(), "data": bytes(row.data)} for row in rows]

    def _attach(self, ticket_id: str, files: list[Attachment], note: str, key: str) -> list[str]:
        t = shop_ticket_attachments

        def find(conn: Connection) -> list[str] | None:
            ids = conn.execute(
                select(t.c.id).where(t.c.idempotency_key == key).order_by(t.c.position)
            ).scalars()
            return list(ids) or None

        def write(conn: Connection) -> list[str]:
            known = conn.execute(
                select(shop_tickets.c.id).where(shop_tickets.c.id == ticket_id)
            ).first()
            if known is None:
                raise ProviderError(f"no ticket {ticket_id}", code="no_ticket")
            ids = []
            for position, f in enumerate(files):
                attachment_id = next_id(conn, t.c.id, "A-", 10001)
                conn.execute(
                    t.insert(),
                    {
                        "id": attachment_id,
                        "ticket_id": ticket_id,
                        "position": position,
                        "filename": f.filename,
                        "content_type": f.content_type,
                        "data": f.data,
                        "note": note,
                        "idempotency_key": key,
                        "created_at": to_db(self._clock()),
                    },
                )
                ids.append(attachment_id)
            return ids

        return write_once(self._engine, find, write)

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket filed, oldest first, for operators and tests."""
        columns = [c for c in shop_tickets.c if c.name != "seq"]
        with self._engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(shop_tickets.c.seq)).all()
        return [
            {
                **row._asdict(),
                "tags": json.loads(row.tags),
                "created_at": from_db(row.created_at),
            }
            for row in rows
        ]

    def _create(self, values: dict[str, Any]) -> Ticket:
        key = values["idempotency_key"]

        def find(conn: Connection) -> Ticket | None:
            row = conn.execute(
                select(shop_tickets).where(shop_tickets.c.idempotency_key == key)
            ).first()
            return (
                None if row is None else Ticket(id=row.id, subject=row.subject, status=row.status)
            )

        def write(conn: Connection) -> Ticket:
            ticket_id = next_id(conn, shop_tickets.c.id, "T-", 10001)
            conn.execute(
                shop_tickets.insert(),
                {**values, "id": ticket_id, "created_at": to_db(self._clock())},
            )
            return Ticket(id=ticket_id, subject=values["subject"], status="open")

        return write_once(self._engine, find, write)
