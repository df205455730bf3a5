"""Who may see the dashboard: the admin token, as a Bearer header or as a signed login cookie.

The cookie holds an expiry and an HMAC of it keyed by the admin token, so changing the token
logs everybody out, and any instance with the same token accepts it. Forms that change
something also carry a CSRF token derived from the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote

from fastapi import HTTPException, Request

from voice.settings import Settings

__all__ = ["COOKIE", "AdminGate"]

COOKIE = "pv_session"
SESSION_S = 12 * 3600


class AdminGate:
    """Checks requests against POSTVOICE_ADMIN_TOKEN (open in --dev when no token is set)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def token(self) -> str | None:
        """The admin token, or None when none is configured."""
        secret = self.settings.admin_token
        return secret.get_secret_value() if secret else None

    @property
    def open(self) -> bool:
        """No token and --dev: everything is allowed (the server says so loudly at start)."""
        return self.token is None and self.settings.dev

    def _mac(self, message: str) -> str:
        key = (self.token or "").encode()
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def session_value(self, now: float | None = None) -> str:
        """A fresh login cookie value."""
        expires = int((now or time.time()) + SESSION_S)
        return f"v1.{expires}.{self._mac(f'dashboard:{expires}')}"

    def valid_session(self, value: str | None, now: float | None = None) -> bool:
        """Whether `value` is a login cookie we issued that has not expired."""
        if not value or self.token is None:
            return False
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
            return False
        if int(parts[1]) < (now or time.time()):
            return False
        return hmac.compare_digest(parts[2], self._mac(f"dashboard:{parts[1]}"))

    def valid_token(self, given: str | None) -> bool:
        """Whether `given` is the admin token."""
        expected = self.token
        return bool(expected and given) and secrets.compare_digest(
            given.encode(), expected.encode()
        )

    def allowed(self, request: Request) -> bool:
        """Bearer token or login cookie (or --dev without a token)."""
        if self.open:
            return True
        header = request.headers.get("Authorization", "")
        bearer = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        if bearer and self.valid_token(bearer):
            return True
        return self.valid_session(request.cookies.get(COOKIE))

    def require_api(self, request: Request) -> None:
        """Dependency for JSON and data routes: 401 (or 403 when no token is configured)."""
        if self.allowed(request):
            return
        if self.token is None:
            raise HTTPException(status_code=403, detail="POSTVOICE_ADMIN_TOKEN is not set")
        raise HTTPException(status_code=401, detail="bad admin token")

    def require_page(self, request: Request) -> None:
        """Dependency for pages: send a browser that is not logged in to the login page."""
        if self.allowed(request):
            return
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status_code=303, headers={"Location": f"/login?next={quote(target, safe='')}"}
        )

    def csrf_token(self, request: Request) -> str:
        """The token a form that changes something must send back."""
        return self._mac(f"csrf:{request.cookies.get(COOKIE) or 'bearer'}")

    def check_csrf(self, request: Request, given: str | None) -> None:
        """403 unless `given` matches; requests with a Bearer header need none."""
        if self.open or request.headers.get("Authorization", "").startswith("Bearer "):
            return
        if not given or not hmac.compare_digest(given, self.csrf_token(request)):
            raise HTTPException(status_code=403, detail="the form expired; reload the page")


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path on this site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/dashboard"
    return target
