"""The call store's tables, one home for those who write them and those who read them.

Calls, turns, events, Twilio's status callbacks, refund approvals and stream claims. The call
record is written by `integrations.store` (and `integrations.approvals`), read by the
dashboard's queries (`integrations.dashboard_queries`) and the metrics
(`integrations.metrics`). The outbox's table is `integrations.outbox`'s and the accounts'
`integrations.accounts`'s; `integrations.store.migrated_metadata` names all three for the
migrations. Nothing here imports another module of ours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "ENDED_STATUSES",
    "NOT_CONNECTED",
    "calls",
    "events",
    "metadata",
    "plain",
    "refund_approvals",
    "status_updates",
    "stream_claims",
    "turns",
]

NOT_CONNECTED = ("failed", "busy", "no-answer")
"""Final call statuses (ours and Twilio's) of a call that never connected."""

ENDED_STATUSES = ("completed", "transferred", "canceled", *NOT_CONNECTED)
"""Call statuses after which nothing more happens on the line."""

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


def plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able data: what a JSON column will store and hand back."""
    return json.loads(json.dumps(dict(data), default=str))
