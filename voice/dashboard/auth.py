"""Who is asking: a named person (an account with a role), logged in by a session cookie or
sending one of their API tokens as a Bearer header; or the holder of POSTVOICE_ADMIN_TOKEN,
the bootstrap admin.

A session is a random id in the cookie whose hash is a row (`integrations.accounts`), so a
crafted cookie is simply not found, and logging out ends it everywhere. A request carrying an
`Authorization` header is judged by that header alone: a bad one is refused even beside a good
cookie, so it can never be used to skip the CSRF check that cookie-authenticated changes need.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from integrations.accounts import Accounts, User
from voice.settings import Settings

__all__ = ["COOKIE", "SESSION_S", "Gate", "Principal", "safe_next"]

COOKIE = "pv_session"
SESSION_S = 12 * 3600


@dataclass(frozen=True)
class Principal:
    """A request's person and how they proved it: "session" (the login cookie), "bearer" (an
    API token or the admin token) or "open" (--dev with nobody configured)."""

    user: User
    via: str
    session: str | None = None

    @property
    def name(self) -> str:
        """The name decisions are recorded under."""
        return self.user.name

    @property
    def channel(self) -> str:
        """Where a decision came from, for the audit log."""
        return "api" if self.via == "bearer" else "dashboard"


class Gate:
    """Checks requests against accounts, their sessions and tokens, and the admin token."""

    def __init__(self, settings: Settings, accounts: Accounts) -> None:
        self.settings = settings
        self.accounts = accounts
        self._csrf_key = hashlib.sha256(b"postvoice-csrf:" + settings.secret()).digest()

    @property
    def token(self) -> str | None:
        """The bootstrap admin token, or None when none is configured."""
        secret = self.settings.admin_token
        return secret.get_secret_value() if secret else None

    @property
    def open(self) -> bool:
        """--dev with no admin token and no accounts: everything is allowed (said loudly)."""
        return self.token is None and self.settings.dev and not self.accounts.any_users()

    @property
    def configured(self) -> bool:
        """Whether anybody can log in at all."""
        return self.token is not None or self.accounts.any_users() or self.settings.dev

    def valid_token(self, given: str | None) -> bool:
        """Whether `given` is the admin token."""
        expected = self.token
        return bool(expected and given) and secrets.compare_digest(
            given.encode(), expected.encode()
        )

    def principal(self, conn: HTTPConnection) -> Principal | None:
        """Who sent this request (or opened this socket), or None; looked up once per request."""
        state = conn.scope.setdefault("state", {})
        if "principal" not in state:
            state["principal"] = self._principal(conn)
        return state["principal"]

    def _principal(self, conn: HTTPConnection) -> Principal | None:
        if self.open:
            return Principal(User(None, "dev", "admin"), "open")
        header = conn.headers.get("Authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            value = value.strip()
            if scheme.lower() != "bearer" or not value:
                return None
            if self.valid_token(value):
                return Principal(User.bootstrap(), "bearer")
            user = self.accounts.token_user(value)
            return Principal(user, "bearer") if user else None
        cookie = conn.cookies.get(COOKIE)
        user = self.accounts.session_user(cookie, admin_token=self.token)
        return Principal(user, "session", cookie) if user else None

    def log_in(self, name: str, password: str) -> User | None:
        """The person a login form names: an account's name and password, or (no name) the
        admin token."""
        if not name.strip():
            return User.bootstrap() if self.valid_token(password.strip()) else None
        return self.accounts.authenticate(name.strip(), password)

    def start_session(self, user: User) -> str:
        """A new session cookie value for `user`."""
        return self.accounts.start_session(
            user, timedelta(seconds=SESSION_S), admin_token=self.token
        )

    def require(self, role: str = "viewer") -> Callable[[Request], Principal]:
        """A dependency for JSON and data routes: the person, whose role must include `role`;
        401 without one (403 when nobody can log in), 403 when the role falls short."""

        def dependency(request: Request) -> Principal:
            who = self.principal(request)
            if who is None:
                if not self.configured:
                    raise HTTPException(status_code=403, detail="POSTVOICE_ADMIN_TOKEN is not set")
                raise HTTPException(status_code=401, detail="log in or send a valid token")
            if not who.user.may(role):
                raise HTTPException(status_code=403, detail=f"this needs the {role} role")
            return who

        return dependency

    def require_page(self, role: str = "viewer") -> Callable[[Request], Principal]:
        """A dependency for pages: a browser that is not logged in goes to the login page."""
        api = self.require(role)

        def dependency(request: Request) -> Principal:
            if self.principal(request) is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise HTTPException(
                    status_code=303,
                    headers={"Location": f"/login?next={quote(target, safe='')}"},
                )
            return api(request)

        return dependency

    def csrf_token(self, request: Request) -> str:
        """The token a form that changes something must send back: bound to the session."""
        session = request.cookies.get(COOKIE) or ""
        return hmac.new(self._csrf_key, f"csrf:{session}".encode(), "sha256").hexdigest()

    def check_csrf(self, request: Request, given: str | None) -> None:
        """403 unless `given` matches the session's token. Only a request that proved who it
        is with a valid Bearer header (no browser sends one by itself) needs none."""
        who = self.principal(request)
        if who is not None and who.via in ("bearer", "open"):
            return
        if not given or not hmac.compare_digest(given, self.csrf_token(request)):
            raise HTTPException(status_code=403, detail="the form expired; reload the page")


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path on this site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dashboard"
    return target
