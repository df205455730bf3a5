"""`DemoMessenger`: texts recorded in `shop_sms` instead of being sent."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from integrations.clock import Clock, utc_now
from integrations.demo.rows import from_db, to_db
from integrations.demo.schema import shop_sms
from integrations.phones import normalize_phone

_SMS_MAX_CHARS = 1600  # Twilio's limit for one message body


class DemoMessenger:
    """`Messenger` that records texts in `shop_sms` instead of sending them.

    Idempotent by key: the same `idempotency_key` twice returns the first message's id and
    records nothing new, so a retried decision never texts the customer twice.
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        """Record a text to `to` (a number, or `whatsapp:` and a number, recorded as such)
        and return its id, "SM" and 32 hex digits."""
        e164 = _recorded_as(to)
        if e164 is None:
            raise ValueError(f"not a phone number: {to!r}")
        if not body.strip():
            raise ValueError("empty SMS body")
        if len(body) > _SMS_MAX_CHARS:
            raise ValueError(f"SMS body of {len(body)} characters; the limit is {_SMS_MAX_CHARS}")
        if not idempotency_key:
            raise ValueError("an SMS needs an idempotency_key")
        return await asyncio.to_thread(self._send, e164, body, idempotency_key)

    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        """Texts recorded so far, oldest first; only those to `to` when given."""
        columns = [c for c in shop_sms.c if c.name != "seq"]
        query = select(*columns).order_by(shop_sms.c.seq)
        if to is not None:
            query = query.where(shop_sms.c.to == _recorded_as(to))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{**row._asdict(), "created_at": from_db(row.created_at)} for row in rows]

    def _send(self, to: str, body: str, key: str) -> str:
        existing = self._id_for(key)
        if existing is not None:
            return existing
        message_id = f"SM{uuid4().hex}"
        row = {
            "id": message_id,
            "to": to,
            "body": body,
            "idempotency_key": key,
            "created_at": to_db(self._clock()),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(shop_sms.insert(), row)
        except IntegrityError:
            # Another worker recorded the same key between our look-up and insert: theirs wins.
            existing = self._id_for(key)
            if existing is None:
                raise
            return existing
        return message_id

    def _id_for(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                select(shop_sms.c.id).where(shop_sms.c.idempotency_key == key)
            ).scalar_one_or_none()


def _recorded_as(to: str) -> str | None:
    """`to` as a text to it is recorded: E.164, with `whatsapp:` kept for WhatsApp."""
    number = to.removeprefix("whatsapp:")
    e164 = normalize_phone(number)
    return e164 if e164 is None or number == to else f"whatsapp:{e164}"
