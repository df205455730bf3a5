"""Accounts, sessions, API tokens, the audit log; one stream per call; typed calls marked.

Revision ID: 0005_trust
Revises: 0004_created_at_indexes
Create Date: 2026-12-02

- `users`, `user_sessions`, `api_tokens`, `audit_log`: named people behind every decision
  (integrations.accounts).
- `stream_claims`: the first media stream of a call claims it, so a stream token is used once.
- `calls.channel`: "voice" or "typed" (`postvoice chat`), so metrics count every call.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_trust"
down_revision: str | None = "0004_created_at_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLE_CHECK = "role IN ('viewer', 'agent', 'approver', 'admin')"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # A database made by `metadata.create_all` (older tools, tests) may hold these already.
    tables = set(inspector.get_table_names())
    if "channel" not in {c["name"] for c in inspector.get_columns("calls")}:
        with op.batch_alter_table("calls") as batch:
            batch.add_column(
                sa.Column("channel", sa.String(16), nullable=False, server_default="voice")
            )
    if "stream_claims" not in tables:
        op.create_table(
            "stream_claims",
            sa.Column("call_sid", sa.String(64), primary_key=True),
            sa.Column("stream_sid", sa.String(64), nullable=False),
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "users" not in tables:
        op.create_table(
            "users",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(64), nullable=False, unique=True),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("password_hash", sa.String(255)),
            sa.Column("email", sa.String(255), unique=True),
            sa.Column("oidc_subject", sa.String(255), unique=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("disabled_at", sa.DateTime(timezone=True)),
            sa.CheckConstraint(_ROLE_CHECK, name="ck_users_role"),
        )
    if "user_sessions" not in tables:
        op.create_table(
            "user_sessions",
            sa.Column("id_hash", sa.String(64), primary_key=True),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
            sa.Column("admin_mac", sa.String(64)),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])
    if "api_tokens" not in tables:
        op.create_table(
            "api_tokens",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
            sa.Column("label", sa.String(64), nullable=False),
            sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_used_at", sa.DateTime(timezone=True)),
            sa.Column("revoked_at", sa.DateTime(timezone=True)),
        )
        op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    if "audit_log" not in tables:
        op.create_table(
            "audit_log",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("via", sa.String(16), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("target", sa.String(128)),
            sa.Column("detail", sa.JSON, nullable=False),
        )
        for column in ("at", "actor", "action"):
            op.create_index(f"ix_audit_log_{column}", "audit_log", [column])


def downgrade() -> None:
    for table in ("audit_log", "api_tokens", "user_sessions", "users", "stream_claims"):
        op.drop_table(table)
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("channel")
