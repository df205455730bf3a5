"""Photos of damage: the requests customers upload through, and the photos kept.

Revision ID: 0006_photos
Revises: 0005_trust
Create Date: 2026-12-03

- `photo_requests`: one signed, expiring upload link per damaged item that needs evidence
  (integrations.photos).
- `photos`: the photos sent to it, re-encoded without metadata, each kept once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_photos"
down_revision: str | None = "0005_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "photo_requests" not in tables:
        op.create_table(
            "photo_requests",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
            sa.Column("call_sid", sa.String(64)),
            sa.Column("order_ref", sa.String(32), nullable=False),
            sa.Column("line_id", sa.String(48), nullable=False),
            sa.Column("phone", sa.String(32), nullable=False),
            sa.Column("resolution", sa.String(32), nullable=False),
            sa.Column("ticket_id", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True)),
            sa.Column("fulfilled_at", sa.DateTime(timezone=True)),
            sa.CheckConstraint(
                "status IN ('pending', 'received', 'fulfilled')", name="ck_photo_requests_status"
            ),
        )
        for column in ("call_sid", "order_ref", "phone"):
            op.create_index(f"ix_photo_requests_{column}", "photo_requests", [column])
    if "photos" not in tables:
        op.create_table(
            "photos",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "request_id", sa.String(32), sa.ForeignKey("photo_requests.id"), nullable=False
            ),
            sa.Column("source", sa.String(8), nullable=False),
            sa.Column("content_type", sa.String(32), nullable=False),
            sa.Column("width", sa.Integer, nullable=False),
            sa.Column("height", sa.Integer, nullable=False),
            sa.Column("size_bytes", sa.Integer, nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.UniqueConstraint("request_id", "sha256", name="uq_photos_request_sha256"),
        )
        op.create_index("ix_photos_request_id", "photos", ["request_id"])


def downgrade() -> None:
    op.drop_table("photos")
    op.drop_table("photo_requests")
