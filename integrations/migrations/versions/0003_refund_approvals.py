"""Refund approvals: a person's decision on each refund above the approval line.

Revision ID: 0003_refund_approvals
Revises: 0002_outbox
Create Date: 2025-03-17

One row per `refund.pending_approval` event (its id is the key), so a refund is decided once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_refund_approvals"
down_revision: str | None = "0002_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database made by `metadata.create_all` (older tools, tests) may hold the table already.
    if sa.inspect(op.get_bind()).has_table("refund_approvals"):
        return
    op.create_table(
        "refund_approvals",
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("result", sa.JSON),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("decision IN ('approve', 'deny')", name="ck_refund_approvals_decision"),
    )
    op.create_index("ix_refund_approvals_decided_at", "refund_approvals", ["decided_at"])


def downgrade() -> None:
    op.drop_table("refund_approvals")
