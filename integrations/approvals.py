"""Refund approvals: a person approves or denies a refund above the approval line.

The agent never refunds above the policy's approval line: it files a ticket and records
`refund.pending_approval` (amount, order line, ticket, reason). Here a person decides. A
decision is one row of `refund_approvals`, keyed by the pending event's id and written in the
same transaction as everything it causes, so it happens exactly once even when two people click
at once or a form is sent twice:

- approve: the refund, queued in the outbox under the key `OutboxRefunds` uses
  (`refund:<order>:<line>`, so a line is never refunded twice, whoever asked first), a text to
  the customer, and the events `refund.created`, `sms.sent` and `refund.approved` on the call
  that asked for it. A line the refunds provider or the outbox already holds a refund for is
  approved without a second refund (outcome "already_refunded").
- deny: a text saying a person reviewed the request (with the reason given) and will be in
  touch, and `refund.approval_denied`.

The outbox worker then delivers the refund and the text. Nothing here knows of HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from integrations.models import Order, Refund
from integrations.outbox import OutboxEntry, OutboxItem, enqueue, outbox
from integrations.protocols import OrderSource, Refunds
from integrations.redact import redact_card_numbers
from integrations.schema import calls, events, refund_approvals
from integrations.store import Store

__all__ = [
    "DECISIONS",
    "PENDING_EVENT",
    "ApprovalDecision",
    "Approvals",
    "DecisionResult",
    "NotPending",
    "PendingRefund",
    "describe",
    "money",
]

log = logging.getLogger(__name__)

PENDING_EVENT = "refund.pending_approval"
"""The event the dialog records when a refund needs a person."""

DECISIONS = ("approve", "deny")
"""What a person may decide."""

LOOKUP_TIMEOUT_S = 10.0
"""How long the order and refund look-ups before a decision may take."""

_NOTE_CHARS = 500


class NotPending(LookupError):
    """No `refund.pending_approval` event has that id."""


def money(cents: int) -> str:
    """Money as written to people: "$250.00"."""
    return f"${cents / 100:,.2f}"


@dataclass(frozen=True)
class ApprovalDecision:
    """What a person decided about one pending refund, and what it caused.

    `outcome`: "refund_queued", "already_refunded" (approved, but the line had its refund
    already) or "denied". `result` holds the outbox ids of the refund and the text and the
    number texted.
    """

    decision: str
    decided_by: str
    note: str | None
    outcome: str
    decided_at: datetime
    result: dict[str, Any]


@dataclass(frozen=True)
class PendingRefund:
    """A refund above the approval line as the agent left it, with its decision once made.

    `refund` is the order line's refund in the outbox, whoever queued it; `sms` the text the
    decision sent.
    """

    id: int
    call_sid: str | None
    order_ref: str | None
    line_id: str | None
    amount_cents: int
    reason: str
    ticket_id: str | None
    created_at: datetime
    caller: str | None
    decision: ApprovalDecision | None = None
    refund: OutboxEntry | None = None
    sms: OutboxEntry | None = None

    @property
    def refund_key(self) -> str | None:
        """The outbox key of this line's refund, the same `OutboxRefunds` uses."""
        if not self.order_ref or not self.line_id:
            return None
        return f"refund:{self.order_ref}:{self.line_id}"


@dataclass(frozen=True)
class DecisionResult:
    """What `Approvals.decide` did: "approved", "denied", or "already_decided" (nothing)."""

    status: str
    approval: PendingRefund
    message: str


class Approvals:
    """Lists refunds waiting for a person and records their decisions.

    `orders` finds the customer's phone (else the number that called is texted), `refunds` is
    the refunds provider, asked whether the line was refunded already. `wake` tells the outbox
    worker there is work. Reads are synchronous (call them in a thread from async code).
    """

    def __init__(
        self,
        store: Store,
        *,
        orders: OrderSource | None = None,
        refunds: Refunds | None = None,
        shop_name: str = "the shop",
        refund_days: tuple[int, int] = (5, 10),
        wake: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.orders = orders
        self.refunds = refunds
        self.shop_name = shop_name
        self.refund_days = refund_days
        self.wake = wake
        self.clock = clock or (lambda: datetime.now(UTC))

    # --- reads ---------------------------------------------------------------------------------

    def pending(self, limit: int = 200) -> list[PendingRefund]:
        """Refunds waiting for a decision, newest first."""
        return self._load(refund_approvals.c.event_id.is_(None), events.c.id.desc(), limit)

    def decided(self, limit: int = 50) -> list[PendingRefund]:
        """Refunds decided, the latest decision first."""
        return self._load(
            refund_approvals.c.event_id.is_not(None), refund_approvals.c.decided_at.desc(), limit
        )

    def get(self, event_id: int) -> PendingRefund | None:
        """One pending refund, decided or not; None when no such event."""
        found = self._load(events.c.id == event_id, events.c.id, 1)
        return found[0] if found else None

    def _load(self, where: Any, order_by: Any, limit: int) -> list[PendingRefund]:
        query = (
            select(
                events.c.id,
                events.c.call_sid,
                events.c.order_ref,
                events.c.data,
                events.c.created_at,
                calls.c.from_number,
                refund_approvals.c.decision,
                refund_approvals.c.decided_by,
                refund_approvals.c.note,
                refund_approvals.c.outcome,
                refund_approvals.c.result,
                refund_approvals.c.decided_at,
            )
            .select_from(
                events.outerjoin(calls, calls.c.call_sid == events.c.call_sid).outerjoin(
                    refund_approvals, refund_approvals.c.event_id == events.c.id
                )
            )
            .where(events.c.type == PENDING_EVENT, where)
            .order_by(order_by)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            keys = {_refund_key(r["order_ref"], (r["data"] or {}).get("line_id")) for r in rows}
            sms_ids = {
                int(r["result"]["sms_outbox_id"])
                for r in rows
                if isinstance(r["result"], dict) and r["result"].get("sms_outbox_id")
            }
            entries = [
                OutboxEntry.from_row(e)
                for e in conn.execute(
                    select(outbox).where(
                        (outbox.c.idempotency_key.in_(sorted(k for k in keys if k)))
                        | (outbox.c.id.in_(sorted(sms_ids)))
                    )
                ).mappings()
            ]
        by_key = {e.idempotency_key: e for e in entries}
        by_id = {e.id: e for e in entries}
        found = []
        for r in rows:
            data = r["data"] or {}
            decision = None
            if r["decision"] is not None:
                decision = ApprovalDecision(
                    decision=r["decision"],
                    decided_by=r["decided_by"],
                    note=r["note"],
                    outcome=r["outcome"],
                    decided_at=_utc(r["decided_at"]),
                    result=dict(r["result"] or {}),
                )
            line_id = data.get("line_id")
            sms_id = decision.result.get("sms_outbox_id") if decision else None
            found.append(
                PendingRefund(
                    id=r["id"],
                    call_sid=r["call_sid"],
                    order_ref=r["order_ref"],
                    line_id=str(line_id) if line_id else None,
                    amount_cents=int(data.get("amount_cents") or 0),
                    reason=redact_card_numbers(str(data.get("reason") or "")),
                    ticket_id=data.get("ticket_id"),
                    created_at=_utc(r["created_at"]),
                    caller=r["from_number"],
                    decision=decision,
                    refund=by_key.get(_refund_key(r["order_ref"], line_id) or ""),
                    sms=by_id.get(int(sms_id)) if sms_id else None,
                )
            )
        return found

    # --- the decision --------------------------------------------------------------------------

    async def decide(
        self, event_id: int, decision: str, *, decided_by: str = "dashboard", note: str = ""
    ) -> DecisionResult:
        """Approve or deny pending refund `event_id`, once; a second decision does nothing.

        Raises `NotPending` for an unknown id and ValueError for a decision that is neither
        "approve" nor "deny", or an approval of a request that names no order line.
        """
        if decision not in DECISIONS:
            raise ValueError(f"the decision is 'approve' or 'deny', not {decision!r}")
        note = redact_card_numbers(" ".join(note.split()))[:_NOTE_CHARS]
        pending = await asyncio.to_thread(self.get, event_id)
        if pending is None:
            raise NotPending(f"no refund waiting for approval has id {event_id}")
        if pending.decision is not None:
            return DecisionResult("already_decided", pending, describe(pending, "already_decided"))
        if decision == "approve" and (pending.refund_key is None or pending.amount_cents <= 0):
            raise ValueError("this request names no order line and amount to refund")

        order = await self._order(pending.order_ref)
        phone = await self._phone(order) or _textable(pending.caller)
        refunded = await self._refunded(pending) if decision == "approve" else None
        body = (
            self._approved_text(pending, order)
            if decision == "approve"
            else self._denied_text(pending, note)
        )
        made = await asyncio.to_thread(
            self._write, pending, decision, decided_by[:64], note, phone, body, refunded
        )
        if made and self.wake is not None:
            self.wake()
        fresh = await asyncio.to_thread(self.get, event_id)
        assert fresh is not None
        status = ("approved" if decision == "approve" else "denied") if made else "already_decided"
        log.info(
            "refund approval %s: %s by %s (%s)",
            event_id,
            status,
            decided_by,
            fresh.decision.outcome if fresh.decision else "?",
        )
        return DecisionResult(status, fresh, describe(fresh, status))

    def _write(
        self,
        pending: PendingRefund,
        decision: str,
        decided_by: str,
        note: str,
        phone: str | None,
        body: str,
        refunded: Refund | None,
    ) -> bool:
        """The decision and everything it causes, in one transaction; False if it was taken."""
        now = self.clock()
        sid, order = pending.call_sid, pending.order_ref
        with self.store.engine.begin() as conn:
            # First statement: on SQLite it takes the write lock before anything is read.
            if not _claim(conn, pending.id, decision, decided_by, note or None, now):
                return False
            result: dict[str, Any] = {}
            refund: OutboxEntry | None = None
            if decision == "deny":
                outcome = "denied"
            elif refunded is not None:
                outcome = "already_refunded"
                result["provider_refund"] = {"id": refunded.id, "status": refunded.status}
            else:
                refund, outcome, requeued = self._queue_refund(conn, pending, now)
                result.update(refund_outbox_id=refund.id, requeued=requeued)
            sms = None
            if phone and outcome in ("refund_queued", "denied"):
                item = OutboxItem(
                    "sms", f"sms:refund-approval:{pending.id}", {"to": phone, "body": body}
                )
                sms, _created = enqueue(conn, item, call_sid=sid, now=now)
                result.update(sms_outbox_id=sms.id, texted=phone)

            # The person's decision first, then what it set going, as the call's record reads.
            refs = [entry.ref for entry in (refund, sms) if entry is not None]
            facts = {
                "line_id": pending.line_id,
                "amount_cents": pending.amount_cents,
                "ticket_id": pending.ticket_id,
                "approval_id": pending.id,
                "decided_by": decided_by,
                "outcome": outcome,
                "outbox": refs,
            }
            if decision == "approve":
                _event(conn, sid, "refund.approved", order, {**facts, "note": note or None}, now)
            else:
                _event(conn, sid, "refund.approval_denied", order, {**facts, "reason": note}, now)
            if refund is not None and outcome == "refund_queued":
                created = {
                    "line_id": pending.line_id,
                    "amount_cents": pending.amount_cents,
                    "reason": pending.reason,
                    "approval_id": pending.id,
                    "outbox": [refund.ref],
                }
                _event(conn, sid, "refund.created", order, created, now)
            if sms is not None:
                purpose = "refund_approved" if decision == "approve" else "refund_approval_denied"
                data = {"to": phone, "purpose": purpose, "outbox": [sms.ref]}
                _event(conn, sid, "sms.sent", order, data, now)
            conn.execute(
                update(refund_approvals)
                .where(refund_approvals.c.event_id == pending.id)
                .values(outcome=outcome, result=result)
            )
        return True

    def _queue_refund(
        self, conn: Connection, pending: PendingRefund, now: datetime
    ) -> tuple[OutboxEntry, str, bool]:
        """Queue the line's refund; (row, outcome, whether a dead earlier attempt was requeued).

        The key is the line's: when the outbox holds its refund already, nothing new is queued
        ("already_refunded") — unless that refund died, which a person approving asks to retry.
        """
        item = OutboxItem(
            "refund",
            str(pending.refund_key),
            {
                "order_number": pending.order_ref,
                "line_id": pending.line_id,
                "amount_cents": pending.amount_cents,
                "reason": pending.reason or "approved by a person",
                "decision_key": f"refund-approval:{pending.id}",
            },
            order_ref=pending.order_ref,
        )
        entry, created = enqueue(conn, item, call_sid=pending.call_sid, now=now)
        if created:
            return entry, "refund_queued", False
        if entry.status == "dead":
            conn.execute(
                update(outbox)
                .where(outbox.c.id == entry.id, outbox.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now, updated_at=now)
            )
            return entry, "refund_queued", True
        return entry, "already_refunded", False

    # --- look-ups before deciding (a failure never blocks the decision) ------------------------

    async def _order(self, number: str | None) -> Order | None:
        if self.orders is None or not number:
            return None
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                return await self.orders.order(number)
        except Exception as exc:
            log.warning("refund approval: could not look order %s up: %s", number, exc)
            return None

    async def _phone(self, order: Order | None) -> str | None:
        if self.orders is None or order is None:
            return None
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                customer = await self.orders.customer(order.customer_id)
        except Exception as exc:
            log.warning("refund approval: no customer for order %s: %s", order.number, exc)
            return None
        return _textable(customer.phone if customer else None)

    async def _refunded(self, pending: PendingRefund) -> Refund | None:
        """The provider's refund of this line, when it has one (made by any path)."""
        if self.refunds is None or not pending.order_ref:
            return None
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                done = await self.refunds.refunds_of(pending.order_ref)
        except Exception as exc:
            # The outbox key and the provider's idempotency still stop a second refund.
            log.warning("refund approval: refunds of %s unknown: %s", pending.order_ref, exc)
            return None
        return next(
            (r for r in done if r.line_id == pending.line_id and r.status != "failed"), None
        )

    # --- what the customer is told -------------------------------------------------------------

    def _approved_text(self, pending: PendingRefund, order: Order | None) -> str:
        item = _item(order, pending.line_id)
        method = (order.payment_method if order else "") or "your original payment method"
        low, high = self.refund_days
        return (
            f"{self.shop_name}: your refund of {money(pending.amount_cents)} for order "
            f"{pending.order_ref}{f' ({item})' if item else ''} was approved. It goes back to "
            f"{method} and can take {low} to {high} business days to show."
        )

    def _denied_text(self, pending: PendingRefund, note: str) -> str:
        why = f": {note.rstrip('.')}" if note else ""
        ticket = f" (ticket {pending.ticket_id})" if pending.ticket_id else ""
        return (
            f"{self.shop_name}: a person on our team reviewed your refund request of "
            f"{money(pending.amount_cents)} for order {pending.order_ref} and could not "
            f"approve it{why}. We'll be in touch about what happens next{ticket}."
        )


def describe(approval: PendingRefund, status: str) -> str:
    """What a decision did, in a sentence for the person who made it."""
    what = f"{money(approval.amount_cents)} for order {approval.order_ref}"
    decided = approval.decision
    if decided is None:
        return f"The refund of {what} waits for a decision."
    texted = decided.result.get("texted")
    if status == "already_decided":
        verb = "approved" if decided.decision == "approve" else "denied"
        when = decided.decided_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"Already {verb} by {decided.decided_by} at {when}: nothing more was done."
    if decided.outcome == "denied":
        tail = (
            f"{texted} is texted that a person reviewed it."
            if texted
            else "there is no number to text the customer."
        )
        return f"Denied: the refund of {what} is not paid; {tail}"
    if decided.outcome == "already_refunded":
        provider = decided.result.get("provider_refund")
        if provider:
            where = f"the refunds provider has {provider.get('id')}, {provider.get('status')}"
        elif approval.refund is not None:
            where = f"outbox #{approval.refund.id}, {approval.refund.status}"
        else:
            where = "refunded before"
        return (
            f"Approved, but line {approval.line_id} of order {approval.order_ref} was already "
            f"refunded ({where}): nothing more was refunded or texted."
        )
    again = " (its earlier failed attempt is retried)" if decided.result.get("requeued") else ""
    tail = f", and {texted} is texted." if texted else "; there is no number to text the customer."
    return f"Approved: the refund of {what} (line {approval.line_id}) is queued{again}{tail}"


def _claim(
    conn: Connection, event_id: int, decision: str, by: str, note: str | None, now: datetime
) -> bool:
    """Insert the decision unless one exists; True when this one was written.

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to commit or roll
    back, then does nothing: exactly one of two racing decisions writes the row.
    """
    values = {
        "event_id": event_id,
        "decision": decision,
        "decided_by": by,
        "note": note,
        "outcome": "deciding",
        "result": {},
        "decided_at": now,
    }
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(refund_approvals).values(**values).on_conflict_do_nothing()
        return conn.execute(stmt.returning(refund_approvals.c.event_id)).first() is not None
    with conn.begin_nested() as savepoint:  # other databases: a savepoint absorbs the conflict
        taken = conn.execute(
            select(refund_approvals.c.event_id).where(refund_approvals.c.event_id == event_id)
        ).first()
        if taken is not None:
            savepoint.rollback()
            return False
        conn.execute(insert(refund_approvals).values(**values))
    return True


def _event(
    conn: Connection,
    call_sid: str | None,
    type: str,
    order: str | None,
    data: Mapping[str, Any],
    now: datetime,
) -> None:
    conn.execute(
        insert(events).values(
            call_sid=call_sid,
            type=type,
            order_ref=order,
            data=json.loads(json.dumps(dict(data), default=str)),
            at_ms=None,
            created_at=now,
        )
    )


def _refund_key(order: str | None, line_id: Any) -> str | None:
    return f"refund:{order}:{line_id}" if order and line_id else None


def _textable(number: str | None) -> str | None:
    """A number a text can go to (E.164), or None (withheld, unknown, a test sid)."""
    return number if number and number.startswith("+") and number[1:].isdigit() else None


def _item(order: Order | None, line_id: str | None) -> str:
    if order is None:
        return ""
    return next((line.name for line in order.lines if line.line_id == line_id), "")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
