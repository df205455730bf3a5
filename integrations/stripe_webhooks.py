"""Stripe webhooks: signature verification and once-only handling, free of any web framework.

Stripe signs each delivery with `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>…]`, where
each `v1` is HMAC-SHA256 of `"<t>.<raw body>"` under the endpoint's signing secret (`whsec_…`).
`verify_stripe_signature` checks that one `v1` matches (in constant time) and that `t` is within
`tolerance` seconds of now, either way, so a captured delivery cannot be replayed later.

Stripe delivers at least once, so `handle_stripe_event` deduplicates by event id through a
`seen(event_id)` callable that records the id and says whether it was already there;
`SqlSeenEvents` is one over the `stripe_webhook_events` table. The route should answer 2xx for
`processed` and `duplicate` (so Stripe stops retrying) and 400 for `rejected`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table
from sqlalchemy.exc import IntegrityError

__all__ = [
    "SignatureError",
    "SqlSeenEvents",
    "WebhookOutcome",
    "handle_stripe_event",
    "metadata",
    "sign_stripe_payload",
    "stripe_webhook_events",
    "verify_stripe_signature",
]

DEFAULT_TOLERANCE_S = 300

metadata = MetaData()
"""The dedupe table, apart from the store's."""

stripe_webhook_events = Table(
    "stripe_webhook_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(128), nullable=False, default=""),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


class SignatureError(ValueError):
    """The delivery is not provably from Stripe, or is too old."""


def sign_stripe_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header Stripe would send for `payload` at `timestamp`."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_stripe_signature(
    payload: bytes,
    header: str,
    secret: str,
    tolerance: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a `Stripe-Signature` header against the raw body; returns its timestamp.

    Raises `SignatureError` naming what is wrong: no header, no timestamp, no v1 signature,
    a timestamp outside `tolerance` seconds of `now`, or no matching signature.
    """
    if not header:
        raise SignatureError("no Stripe-Signature header")
    if not secret:
        raise SignatureError("no webhook signing secret configured")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the signature's timestamp is not a number") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("the signature has no timestamp")
    if not signatures:
        raise SignatureError("the signature has no v1 scheme")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"the signature is {int(current - timestamp)} s old; the tolerance is {tolerance} s"
        )
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("no signature matches the payload")
    return timestamp


@dataclass(frozen=True)
class WebhookOutcome:
    """What became of one delivery. `status`: "processed", "duplicate" or "rejected"."""

    status: str
    event_id: str = ""
    event_type: str = ""
    reason: str = ""
    event: Mapping[str, Any] = field(default_factory=dict)

    @property
    def http_status(self) -> int:
        """What to answer Stripe: 200, or 400 for a delivery we refuse."""
        return 400 if self.status == "rejected" else 200


Seen = Callable[[str], "bool | Awaitable[bool]"]


async def handle_stripe_event(
    payload: bytes,
    header: str,
    secret: str,
    seen: Seen,
    *,
    on_event: Callable[[Mapping[str, Any]], Awaitable[Any]] | None = None,
    tolerance: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> WebhookOutcome:
    """Verify one delivery, drop it if its event id was seen, else pass it to `on_event`.

    `seen(event_id)` records the id and returns True if it was already recorded (sync or
    async). The id is recorded before `on_event` runs; should `on_event` raise, the error
    propagates (answer 5xx) and Stripe's redelivery is then a duplicate, so `on_event` must
    itself be safe to skip or repeat — `StripeRefunds.apply_event` is.
    """
    try:
        verify_stripe_signature(payload, header, secret, tolerance=tolerance, now=now)
    except SignatureError as exc:
        return WebhookOutcome("rejected", reason=str(exc))
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return WebhookOutcome("rejected", reason="the body is not JSON")
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return WebhookOutcome("rejected", reason="the body is not a Stripe event")
    event_id, event_type = event["id"], str(event.get("type", ""))
    already = seen(event_id)
    if inspect.isawaitable(already):
        already = await already
    if already:
        return WebhookOutcome("duplicate", event_id, event_type, event=event)
    if on_event is not None:
        await on_event(event)
    return WebhookOutcome("processed", event_id, event_type, event=event)


class SqlSeenEvents:
    """A `seen` callable over `stripe_webhook_events`: the primary key makes it race-free."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))

    def create_all(self) -> None:
        """Create the table if missing."""
        metadata.create_all(self.engine)

    async def __call__(self, event_id: str) -> bool:
        """Record `event_id`; True if it was already recorded."""
        return await asyncio.to_thread(self._record, event_id)

    def _record(self, event_id: str) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    stripe_webhook_events.insert().values(
                        event_id=event_id, received_at=self._clock()
                    )
                )
        except IntegrityError:
            return True
        return False
