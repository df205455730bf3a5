"""The call store: calls, turns, events and Twilio status callbacks.

Revision ID: 0001_call_store
Revises:
Create Date: 2025-03-10

Databases made before migrations existed (by `Store.create_all`) already hold these tables,
exactly as below; each is created only when missing, so such a database is adopted as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_call_store"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    utc = sa.DateTime(timezone=True)
    if _missing("calls"):
        op.create_table(
            "calls",
            sa.Column("call_sid", sa.String(64), primary_key=True),
            sa.Column("from_number", sa.String(32), nullable=False),
            sa.Column("to_number", sa.String(32), nullable=False),
            sa.Column("direction", sa.String(16), nullable=False),
            sa.Column("purpose", sa.String(64)),
            sa.Column("order_ref", sa.String(32)),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("created_at", utc, nullable=False),
            sa.Column("started_at", utc),
            sa.Column("ended_at", utc),
            sa.Column("end_reason", sa.String(64)),
            sa.Column("transfer_to", sa.String(32)),
            sa.Column("summary", sa.Text),
            sa.Column("duration_s", sa.Integer),
        )
    if _missing("turns"):
        op.create_table(
            "turns",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("call_sid", sa.String(64), sa.ForeignKey("calls.call_sid"), nullable=False),
            sa.Column("seq", sa.Integer, nullable=False),
            sa.Column("role", sa.String(8), nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("start_ms", sa.Integer),
            sa.Column("end_ms", sa.Integer),
            sa.Column("source", sa.String(16)),
            sa.Column("confidence", sa.Float),
            sa.Column("timing", sa.JSON),
            sa.Column("interrupted", sa.Integer, nullable=False),
        )
        op.create_index("ix_turns_call_sid", "turns", ["call_sid"])
    if _missing("events"):
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("call_sid", sa.String(64), sa.ForeignKey("calls.call_sid")),
            sa.Column("type", sa.String(64), nullable=False),
            sa.Column("order_ref", sa.String(32)),
            sa.Column("data", sa.JSON, nullable=False),
            sa.Column("at_ms", sa.Integer),
            sa.Column("created_at", utc, nullable=False),
        )
        op.create_index("ix_events_call_sid", "events", ["call_sid"])
        op.create_index("ix_events_type", "events", ["type"])
        op.create_index("ix_events_order_ref", "events", ["order_ref"])
    if _missing("call_status_updates"):
        op.create_table(
            "call_status_updates",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("call_sid", sa.String(64), nullable=False),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("payload", sa.JSON, nullable=False),
            sa.Column("created_at", utc, nullable=False),
        )
        op.create_index("ix_call_status_updates_call_sid", "call_status_updates", ["call_sid"])


def downgrade() -> None:
    for table in ("call_status_updates", "events", "turns", "calls"):
        op.drop_table(table)
