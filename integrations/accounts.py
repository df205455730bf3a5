"""The people behind the dashboard: accounts with roles, their sessions and API tokens, and the
audit log of every decision a person made.

Passwords are hashed with argon2id (argon2-cffi); session ids and API tokens are random and
only their SHA-256 is stored, so a copy of the database opens no session. The shared
`POSTVOICE_ADMIN_TOKEN` is not an account: it logs in as the bootstrap admin, whose sessions
are bound to the token (changing it ends them).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

__all__ = [
    "BOOTSTRAP_ADMIN",
    "ROLES",
    "Accounts",
    "AuditEntry",
    "User",
    "has_role",
    "metadata",
]

metadata = MetaData()

ROLES = ("viewer", "agent", "approver", "admin")
"""From least to most: viewer reads; agent also places calls (outbound, /try); approver also
decides refunds and requeues dead outbox items; admin may do everything."""

BOOTSTRAP_ADMIN = "admin-token"
"""The name decisions made with the shared POSTVOICE_ADMIN_TOKEN are recorded under."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_ROLE_CHECK = "role IN ('viewer', 'agent', 'approver', 'admin')"

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255)),  # none for accounts that sign in through OIDC only
    Column("email", String(255), unique=True),
    Column("oidc_subject", String(255), unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
    CheckConstraint(_ROLE_CHECK, name="ck_users_role"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id")),  # NULL: the bootstrap admin
    Column("admin_mac", String(64)),  # bootstrap sessions: bound to the admin token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("label", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("via", String(16), nullable=False),  # dashboard, api, cli, oidc
    Column("action", String(64), nullable=False, index=True),
    Column("target", String(128)),
    Column("detail", JSON, nullable=False),
)

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def has_role(role: str, needed: str) -> bool:
    """Whether `role` includes what `needed` may do."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class User:
    """A person who may use the dashboard (or the bootstrap admin, whose `id` is None)."""

    id: int | None
    name: str
    role: str
    email: str | None = None
    oidc_subject: str | None = None
    has_password: bool = False
    disabled: bool = False

    def may(self, needed: str) -> bool:
        """Whether this person's role allows what `needed` may do."""
        return not self.disabled and has_role(self.role, needed)

    @staticmethod
    def bootstrap() -> User:
        """The holder of POSTVOICE_ADMIN_TOKEN."""
        return User(None, BOOTSTRAP_ADMIN, "admin")


@dataclass(frozen=True)
class AuditEntry:
    """One decision a person made: who, with which role, through what, what, on what."""

    id: int
    at: datetime
    actor: str
    role: str
    via: str
    action: str
    target: str | None
    detail: dict[str, Any]


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        email=row["email"],
        oidc_subject=row["oidc_subject"],
        has_password=bool(row["password_hash"]),
        disabled=row["disabled_at"] is not None,
    )


class Accounts:
    """Reads and writes accounts, sessions, API tokens and the audit log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- accounts -----------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: str,
        *,
        password: str | None = None,
        email: str | None = None,
        oidc_subject: str | None = None,
    ) -> User:
        """Create an account; ValueError for a bad name or role, or a name or email in use."""
        if not _NAME.match(name) or name == BOOTSTRAP_ADMIN:
            raise ValueError(
                f"{name!r} is not a usable name: letters, digits and . _ @ - (up to 64)"
            )
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(users).values(
                        name=name,
                        role=role,
                        password_hash=_hasher.hash(password) if password else None,
                        email=email.strip().lower() if email else None,
                        oidc_subject=oidc_subject,
                        created_at=_now(),
                    )
                )
        except IntegrityError:
            raise ValueError(
                f"there is already an account named {name!r} or with that email"
            ) from None
        found = self.user(name)
        assert found is not None
        return found

    def user(self, name: str) -> User | None:
        """The account of that name."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return _user(row) if row else None

    def users(self) -> list[User]:
        """Every account, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [_user(r) for r in rows]

    def any_users(self) -> bool:
        """Whether any account exists (then nothing is open, even in --dev)."""
        with self.engine.connect() as conn:
            return bool(conn.execute(select(func.count()).select_from(users)).scalar())

    def set_role(self, name: str, role: str) -> User:
        """Change an account's role."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        return self._change(name, role=role)

    def set_password(self, name: str, password: str) -> User:
        """Set a new password (the account's sessions end)."""
        user = self._change(name, password_hash=_hasher.hash(password))
        self._end_sessions_of(user)
        return user

    def disable(self, name: str) -> User:
        """Lock an account out: its sessions end and its API tokens stop working. The row
        stays, so the audit log's names keep meaning someone."""
        user = self._change(name, disabled_at=_now())
        self._end_sessions_of(user)
        return user

    def enable(self, name: str) -> User:
        """Let a disabled account in again."""
        return self._change(name, disabled_at=None)

    def _change(self, name: str, **values: Any) -> User:
        with self.engine.begin() as conn:
            changed = conn.execute(update(users).where(users.c.name == name).values(**values))
        if not changed.rowcount:
            raise ValueError(f"no account named {name!r}")
        found = self.user(name)
        assert found is not None
        return found

    def _end_sessions_of(self, user: User) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(user_sessions).where(user_sessions.c.user_id == user.id))

    def authenticate(self, name: str, password: str) -> User | None:
        """The account, when the name and password match and it is not disabled."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        stored = row["password_hash"] if row else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not stored or row["disabled_at"] is not None:
            return None
        if _hasher.check_needs_rehash(stored):
            self._change(name, password_hash=_hasher.hash(password))
        return _user(row)

    def for_sign_in(
        self, subject: str, email: str | None, new_role: str | None, name_hint: str = ""
    ) -> User | None:
        """The account an OpenID Connect sign-in opens: by its subject, else by a verified
        email (which then binds the subject), else a new account with `new_role` when the
        shop allows that; None when there is no such account (or it is disabled)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(users).where(users.c.oidc_subject == subject))
                .mappings()
                .first()
            )
            if row is None and email:
                row = (
                    conn.execute(select(users).where(users.c.email == email.lower()))
                    .mappings()
                    .first()
                )
        if row is not None:
            if row["oidc_subject"] is None:
                self._change(row["name"], oidc_subject=subject)
            elif row["oidc_subject"] != subject:
                return None  # that email belongs to another identity at the provider
            user = _user(row)
            return None if user.disabled else user
        if not new_role:
            return None
        base = re.sub(r"[^A-Za-z0-9._@-]", "", (email or name_hint or "user").split("@")[0])
        for attempt in range(20):
            candidate = (base or "user")[:56] + (f"-{attempt}" if attempt else "")
            if self.user(candidate) is None:
                return self.add_user(candidate, new_role, email=email, oidc_subject=subject)
        return None

    # --- sessions -----------------------------------------------------------------------------

    def start_session(self, user: User, ttl: timedelta, *, admin_token: str | None = None) -> str:
        """A new session for `user`; the cookie value (only its hash is stored)."""
        value = secrets.token_urlsafe(32)
        mac = None
        if user.id is None:  # the bootstrap admin: valid only while the token is the same
            mac = hmac.new((admin_token or "").encode(), value.encode(), "sha256").hexdigest()
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(delete(user_sessions).where(user_sessions.c.expires_at < now))
            conn.execute(
                insert(user_sessions).values(
                    id_hash=_digest(value),
                    user_id=user.id,
                    admin_mac=mac,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return value

    def session_user(self, value: str | None, *, admin_token: str | None = None) -> User | None:
        """Who holds this session cookie, if it is a live session."""
        if not value or len(value) > 200:
            return None
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(user_sessions).where(user_sessions.c.id_hash == _digest(value)))
                .mappings()
                .first()
            )
            if row is None or _utc(row["expires_at"]) < _now():
                return None
            if row["user_id"] is None:
                expected = hmac.new(
                    (admin_token or "").encode(), value.encode(), "sha256"
                ).hexdigest()
                if not admin_token or not hmac.compare_digest(row["admin_mac"] or "", expected):
                    return None
                return User.bootstrap()
            found = (
                conn.execute(select(users).where(users.c.id == row["user_id"])).mappings().first()
            )
        user = _user(found) if found else None
        return user if user is not None and not user.disabled else None

    def end_session(self, value: str | None) -> None:
        """Log this session out."""
        if value:
            with self.engine.begin() as conn:
                conn.execute(delete(user_sessions).where(user_sessions.c.id_hash == _digest(value)))

    # --- API tokens ---------------------------------------------------------------------------

    def issue_token(self, name: str, label: str = "api") -> str:
        """A new API token for the account (shown once; only its hash is kept)."""
        user = self.user(name)
        if user is None:
            raise ValueError(f"no account named {name!r}")
        token = "pvt_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    user_id=user.id,
                    label=label[:64] or "api",
                    token_hash=_digest(token),
                    created_at=_now(),
                )
            )
        return token

    def token_user(self, token: str | None) -> User | None:
        """Whose API token this is, if it is live and its account is not disabled."""
        if not token or not token.startswith("pvt_") or len(token) > 200:
            return None
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    select(users, api_tokens.c.id.label("token_id"))
                    .join(api_tokens, api_tokens.c.user_id == users.c.id)
                    .where(
                        api_tokens.c.token_hash == _digest(token),
                        api_tokens.c.revoked_at.is_(None),
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == row["token_id"])
                .values(last_used_at=_now())
            )
        user = _user(row)
        return None if user.disabled else user

    def tokens(self, name: str) -> list[dict[str, Any]]:
        """An account's API tokens (never the tokens themselves)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(api_tokens)
                .join(users, api_tokens.c.user_id == users.c.id)
                .where(users.c.name == name)
                .order_by(api_tokens.c.id)
            ).mappings()
            return [{k: v for k, v in dict(r).items() if k != "token_hash"} for r in rows.all()]

    def revoke_token(self, token_id: int) -> bool:
        """Stop an API token working; False when there is no live token with that id."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return bool(done.rowcount)

    # --- the audit log ------------------------------------------------------------------------

    def audit(
        self,
        user: User,
        action: str,
        target: str | None = None,
        *,
        via: str = "dashboard",
        **detail: Any,
    ) -> None:
        """Record one decision a person made."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    at=_now(),
                    actor=user.name,
                    role=user.role,
                    via=via,
                    action=action,
                    target=None if target is None else str(target)[:128],
                    detail={k: v for k, v in detail.items() if v is not None},
                )
            )

    def audit_entries(
        self, *, page: int = 1, per_page: int = 50, actions: Sequence[str] = ()
    ) -> tuple[list[AuditEntry], int]:
        """Decisions, newest first, and how many there are in all."""
        where = [audit_log.c.action.in_(list(actions))] if actions else []
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(audit_log).where(*where)).scalar()
            rows = conn.execute(
                select(audit_log)
                .where(*where)
                .order_by(audit_log.c.id.desc())
                .limit(per_page)
                .offset((max(1, page) - 1) * per_page)
            ).mappings()
            entries = [
                AuditEntry(
                    id=r["id"],
                    at=_utc(r["at"]),  # type: ignore[arg-type]
                    actor=r["actor"],
                    role=r["role"],
                    via=r["via"],
                    action=r["action"],
                    target=r["target"],
                    detail=dict(r["detail"] or {}),
                )
                for r in rows.all()
            ]
        return entries, int(total or 0)
