"""Indexes on calls.created_at and events.created_at, for the dashboard's time windows.

Revision ID: 0004_created_at_indexes
Revises: 0003_refund_approvals
Create Date: 2026-11-23

The metrics page and `/metrics` count calls and events of the last day, week or month; without
an index each of those scans every call ever taken.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_created_at_indexes"
down_revision: str | None = "0003_refund_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (("ix_calls_created_at", "calls"), ("ix_events_created_at", "events"))


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for name, table in _INDEXES:
        # A database made by `metadata.create_all` (older tools, tests) may hold it already.
        if name not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, ["created_at"])


def downgrade() -> None:
    for name, table in _INDEXES:
        op.drop_index(name, table_name=table)
