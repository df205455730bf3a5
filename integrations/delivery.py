"""Delivery: the worker's side of the outbox — due rows taken with a lease and settled, turned
back into provider calls, failures retried or dead-lettered.

`OutboxLeases` claims due rows for one worker and settles them (delivered, pending again after
a backoff, or dead); `deliverers_for` builds what turns a row of each kind back into a provider
call; `RetryPolicy` and `classify` decide between a later retry and dead. The queueing side
(the table, its rows, `enqueue`, the adapters the dialog is handed) is `integrations.outbox`;
the loop that drives all this is `integrations.worker`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from integrations.outbox import OutboxEntry, outbox
from integrations.protocols import Helpdesk, Messenger, ProviderError, Refunds, Returns
from integrations.schema import plain

__all__ = [
    "Deliverer",
    "OutboxLeases",
    "RetryPolicy",
    "classify",
    "deliverers_for",
]

Deliverer = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]
"""Delivers one row: `(payload, idempotency_key) -> result`, the result as JSON-able data.

Raises `ProviderError` on failure; its `retryable` decides between a later retry and dead."""


# --------------------------------------------------------------------------------------------
# Leases: the rows a worker holds
# --------------------------------------------------------------------------------------------


class OutboxLeases:
    """The worker's row operations: claim due rows with a lease, settle each one.

    Methods are synchronous and short (one transaction each); async callers use a thread.
    Every method takes `now`, so the worker runs on its own clock.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(
        self,
        worker_id: str,
        kinds: Sequence[str],
        *,
        now: datetime,
        lease_s: float,
        limit: int = 10,
        max_attempts: int = 8,
    ) -> list[OutboxEntry]:
        """Take up to `limit` due rows of `kinds` for `worker_id` until `now + lease_s`.

        Due: pending rows whose `next_attempt_at` has come, and delivering rows whose lease
        expired (their worker died mid-delivery). Each claim counts as an attempt; a row whose
        worker vanished `max_attempts` times goes to dead rather than round again. Two workers
        never hold the same row: PostgreSQL skips rows another claim has locked
        (`FOR UPDATE SKIP LOCKED`); SQLite, which has one writer at a time, claims each row
        with an UPDATE that re-checks it is still due.
        """
        if not kinds or limit <= 0:
            return []
        until = now + timedelta(seconds=lease_s)
        expired = and_(outbox.c.status == "delivering", outbox.c.locked_until < now)
        due = and_(
            outbox.c.kind.in_(list(kinds)),
            or_(and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now), expired),
        )
        claim_values = {
            "status": "delivering",
            "locked_by": worker_id,
            "locked_until": until,
            "attempts": outbox.c.attempts + 1,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(expired, outbox.c.attempts >= max_attempts, outbox.c.kind.in_(list(kinds)))
                .values(
                    status="dead",
                    error_code="lease_expired",
                    last_error=f"the worker delivering it vanished {max_attempts} times",
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                )
            )
            candidates = (
                select(outbox.c.id).where(due).order_by(outbox.c.next_attempt_at, outbox.c.id)
            )
            if conn.dialect.name == "postgresql":
                ids = list(
                    conn.execute(
                        candidates.limit(limit).with_for_update(skip_locked=True)
                    ).scalars()
                )
                if ids:
                    conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(**claim_values))
            else:
                ids = []
                for entry_id in conn.execute(candidates.limit(limit)).scalars().all():
                    won = conn.execute(
                        update(outbox).where(outbox.c.id == entry_id, due).values(**claim_values)
                    )
                    if won.rowcount == 1:
                        ids.append(entry_id)
            if not ids:
                return []
            rows = (
                conn.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id))
                .mappings()
                .all()
            )
        return [OutboxEntry.from_row(r) for r in rows]

    def complete(self, entry_id: int, result: Mapping[str, Any], *, now: datetime) -> bool:
        """Mark a row delivered with the provider's answer; False if it was settled already."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == entry_id, outbox.c.status.in_(["pending", "delivering"]))
                .values(
                    status="delivered",
                    result=plain(result),
                    delivered_at=now,
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                )
            )
        return done.rowcount == 1

    def fail(
        self,
        entry_id: int,
        worker_id: str,
        *,
        error: str,
        code: str,
        now: datetime,
        retry_at: datetime | None,
    ) -> bool:
        """Record a failed attempt: pending again at `retry_at`, or dead when it is None.

        Only the worker holding the row may do so; False when another worker has since
        taken it over (its lease expired) or it was delivered meanwhile.
        """
        values: dict[str, Any] = {
            "last_error": error[:2000],
            "error_code": code[:64],
            "locked_by": None,
            "locked_until": None,
            "updated_at": now,
        }
        if retry_at is None:
            values["status"] = "dead"
        else:
            values.update(status="pending", next_attempt_at=retry_at)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == entry_id,
                    outbox.c.status == "delivering",
                    outbox.c.locked_by == worker_id,
                )
                .values(**values)
            )
        return done.rowcount == 1


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed delivery again, and when to give up.

    Attempt n (1-based) that failed is retried after a delay drawn uniformly from
    `[0, min(cap_s, base_s * 2 ** (n - 1))]` ("full jitter": workers that failed together do
    not retry together). After `max_attempts` attempts the row is dead.
    """

    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 300.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return rng.uniform(0.0, ceiling)


# Errors that say nothing about the request itself: the same request may well succeed later.
_TRANSIENT = (TimeoutError, ConnectionError, OSError)
# Errors that say the payload itself is wrong: sending it again cannot help.
_MALFORMED = (ValueError, TypeError, KeyError)


def classify(error: BaseException) -> tuple[bool, str]:
    """(retryable, code) of a delivery failure."""
    if isinstance(error, ProviderError):
        return error.retryable, error.code
    if isinstance(error, _TRANSIENT):
        return True, "timeout" if isinstance(error, TimeoutError) else "connection"
    if isinstance(error, _MALFORMED):
        return False, "invalid_payload"
    return True, type(error).__name__


# --------------------------------------------------------------------------------------------
# Deliverers: a row back into a provider call
# --------------------------------------------------------------------------------------------


def deliverers_for(
    *,
    messenger: Messenger | None = None,
    helpdesk: Helpdesk | None = None,
    refunds: Refunds | None = None,
    returns: Returns | None = None,
) -> dict[str, Deliverer]:
    """Deliverers for the kinds these providers can carry out (a label also needs a messenger
    to text it, when the row names a phone). Kinds without a provider are left to other
    workers: a worker only claims the kinds it can deliver."""
    out: dict[str, Deliverer] = {}
    if messenger is not None:
        out["sms"] = _sms_deliverer(messenger)
    if helpdesk is not None:
        out["ticket"] = _ticket_deliverer(helpdesk)
    if refunds is not None:
        out["refund"] = _refund_deliverer(refunds)
    if returns is not None:
        out["label"] = _label_deliverer(returns, messenger)
    return out


def _sms_deliverer(messenger: Messenger) -> Deliverer:
    async def deliver(payload: dict[str, Any], key: str) -> dict[str, Any]:
        message_id = await messenger.send_sms(payload["to"], payload["body"], idempotency_key=key)
        return {"message_id": message_id}

    return deliver


def _ticket_deliverer(helpdesk: Helpdesk) -> Deliverer:
    async def deliver(payload: dict[str, Any], key: str) -> dict[str, Any]:
        reference = payload.get("reference")
        body, tags = payload["body"], list(payload.get("tags") or [])
        if reference:  # what the caller was given: support searches for it
            body = f"{body}\n\nReference given to the caller: {reference}"
            tags.append(reference.lower())
        ticket = await helpdesk.create_ticket(
            payload["subject"],
            body,
            requester_phone=payload.get("requester_phone"),
            requester_email=payload.get("requester_email"),
            tags=tags,
            priority=payload.get("priority", "normal"),
            idempotency_key=key,
        )
        return asdict(ticket)

    return deliver


def _refund_deliverer(refunds: Refunds) -> Deliverer:
    async def deliver(payload: dict[str, Any], key: str) -> dict[str, Any]:
        refund = await refunds.refund(
            payload["order_number"],
            payload["line_id"],
            int(payload["amount_cents"]),
            idempotency_key=key,
            reason=payload.get("reason", ""),
        )
        if refund.status == "failed":
            # The provider answered but refused: asking again with the same key gives the same.
            raise ProviderError(
                f"refund {refund.id} failed: {refund.failure_reason or 'no reason given'}",
                code=refund.failure_reason or "refund_failed",
                retryable=False,
            )
        return plain(asdict(refund))

    return deliver


def _label_deliverer(returns: Returns, messenger: Messenger | None) -> Deliverer:
    async def deliver(payload: dict[str, Any], key: str) -> dict[str, Any]:
        label = await returns.label(payload["rma"], idempotency_key=key)
        result = plain(asdict(label))
        phone = payload.get("notify_phone")
        if phone:
            if messenger is None:
                raise ProviderError("no messenger to text the label", code="no_messenger")
            body = (
                f"{payload.get('shop_name') or 'Your shop'}: your return label for "
                f"{payload['rma']}: {label.url}"
            )
            # Its own key: a retry after the label was bought texts it once, not twice.
            result["message_id"] = await messenger.send_sms(
                phone, body, idempotency_key=f"{key}:sms"
            )
        return result

    return deliver
