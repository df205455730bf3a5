"""The durable outbox: side effects queued with their decision, delivered by a worker.

Revision ID: 0002_outbox
Revises: 0001_call_store
Create Date: 2025-03-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002_outbox"
down_revision: str | None = "0001_call_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = sa.DateTime(timezone=True)
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("payload", json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", utc, nullable=False),
        sa.Column("locked_by", sa.String(128)),
        sa.Column("locked_until", utc),
        sa.Column("last_error", sa.Text),
        sa.Column("error_code", sa.String(64)),
        sa.Column("result", json),
        sa.Column("call_sid", sa.String(64)),
        sa.Column("order_ref", sa.String(32)),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("delivered_at", utc),
        sa.Column("updated_at", utc, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivering', 'delivered', 'dead')", name="ck_outbox_status"
        ),
    )
    op.create_index("uq_outbox_idempotency_key", "outbox", ["idempotency_key"], unique=True)
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_call_sid", "outbox", ["call_sid"])
    op.create_index("ix_outbox_order_ref", "outbox", ["order_ref"])


def downgrade() -> None:
    op.drop_table("outbox")
