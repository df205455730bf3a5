"""The dashboard's read queries over the call record: the calls list with its filters and
outcomes, the helpdesk's tickets, and the orders with returns.

SQL that runs unchanged on SQLite and PostgreSQL, over the tables of `integrations.schema` and
the outbox's. `DashboardQueries` is what `integrations.store.Store` reads with; it writes
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, exists, func, or_, select

from integrations.clock import aware
from integrations.outbox import OutboxEntry, outbox
from integrations.protocols import ACTION_EVENTS
from integrations.schema import ENDED_STATUSES, NOT_CONNECTED, calls, events, turns
from integrations.stats import median

__all__ = [
    "CALLER_LEFT_REASONS",
    "CHANNELS",
    "CONVERSATIONAL_INTENTS",
    "FAILED_END_REASONS",
    "MESSAGE_CHANNELS",
    "OUTCOMES",
    "RETURN_ORDER_EVENTS",
    "SERVED_EVENTS",
    "TICKET_STATES",
    "CallFilter",
    "CallSummary",
    "DashboardQueries",
    "Page",
    "call_outcome",
]

# --- how a call went (the dashboard's list and filters) ---------------------------------------

CHANNELS = ("voice", "typed", "sms", "whatsapp")
"""How a customer reached the agent (`calls.channel`): a phone call, `postvoice chat`, or text
messages. A message conversation is kept as a call, each message one of its turns."""

MESSAGE_CHANNELS = ("sms", "whatsapp")
"""The channels whose conversations are threads of text messages."""

OUTCOMES = ("resolved", "handed_off", "abandoned", "failed", "in_progress")
"""How a call went, as `call_outcome` classifies it."""

SERVED_EVENTS = ("order.looked_up", "tracking.looked_up", *sorted(ACTION_EVENTS))
"""Events that show the agent answered the caller's question or acted on it."""

CONVERSATIONAL_INTENTS = ("yes", "no", "goodbye", "unknown")
"""Intents that are turns of the conversation, not what the caller called about."""

CALLER_LEFT_REASONS = ("caller_hangup", "socket_closed", "silence")
"""End reasons that mean the caller went away (hung up, the line dropped, or said nothing)."""

FAILED_END_REASONS = ("error", "busy")
"""End reasons that mean the call broke on our side, or was turned away (at capacity)."""


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
        calls.c.ended_at.is_not(None), reason.is_not(None), calls.c.status.in_(ENDED_STATUSES)
    )
    return case(
        (
            or_(calls.c.transfer_to.is_not(None), reason == "transfer", has(["handoff"])),
            "handed_off",
        ),
        (or_(reason.in_(FAILED_END_REASONS), calls.c.status.in_(NOT_CONNECTED)), "failed"),
        (~ended, "in_progress"),
        (has(SERVED_EVENTS), "resolved"),
        (and_(reason.is_not(None), reason.not_in(CALLER_LEFT_REASONS)), "resolved"),
        else_="abandoned",
    )


@dataclass(frozen=True)
class CallFilter:
    """What the calls list is narrowed to; every field optional.

    `q` matches the caller's or the called number (digits alone match however the number was
    typed), an order number, the call sid, or words said in the call. `channel` is one of
    `CHANNELS`.
    """

    q: str = ""
    direction: str | None = None
    channel: str | None = None
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
    channel: str = "voice"
    messages: int = 0

    @property
    def handoff(self) -> bool:
        """Whether a person took the call over."""
        return self.outcome == "handed_off"

    @property
    def by_message(self) -> bool:
        """Whether this is a conversation held by text messages (a thread, not a call)."""
        return self.channel in MESSAGE_CHANNELS


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


class DashboardQueries:
    """The dashboard's read queries over the call record in `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
            messages: dict[str, int] = dict.fromkeys(sids, 0)
            for sid, role, timing in conn.execute(
                select(turns.c.call_sid, turns.c.role, turns.c.timing).where(
                    turns.c.call_sid.in_(sids)
                )
            ):
                messages[sid] += 1
                value = timing.get("latency_ms") if isinstance(timing, dict) else None
                if role == "agent" and isinstance(value, int | float):
                    latencies[sid].append(int(value))
        items = [
            CallSummary(
                call_sid=r["call_sid"],
                created_at=aware(r["created_at"]),
                started_at=aware(r["started_at"]),
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
                median_latency_ms=median(latencies[r["call_sid"]]),
                channel=r["channel"] or "voice",
                messages=messages[r["call_sid"]],
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
                {**r, "data": dict(r["data"] or {}), "created_at": aware(r["created_at"])}
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
    if filters.channel:
        where.append(calls.c.channel == filters.channel)
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


def _duration(row: Any) -> int | None:
    """Twilio's duration when it reported one, else from our own start and end."""
    if row["duration_s"] is not None:
        return int(row["duration_s"])
    started, ended = aware(row["started_at"]), aware(row["ended_at"])
    if started is None or ended is None:
        return None
    return max(0, round((ended - started).total_seconds()))


def _ticket_state(status: str) -> str:
    return next((state for state, found in TICKET_STATES.items() if status in found), status)
