"""Sign-in with the shop's OpenID Connect provider: the authorization-code flow with PKCE.

`GET /login/oidc` reads the issuer's discovery document, remembers a fresh `state`, `nonce`
and PKCE verifier in a short-lived signed cookie, and sends the browser to the provider's
authorization endpoint. `GET /login/oidc/callback` checks `state`, trades the code (with the
verifier) at the token endpoint, verifies the ID token (signature against the issuer's JWKS,
issuer, audience, expiry, nonce), finds the account (`Accounts.for_sign_in`) and starts a
session. Every HTTP call has a timeout; tests hand the client an `httpx.MockTransport`.

No `from __future__ import annotations`: FastAPI reads the routes' real annotations.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from voice.dashboard.auth import safe_next
from voice.dashboard.web import Dashboard, render, start_session

__all__ = ["CALLBACK", "OidcClient", "OidcError", "router"]

log = logging.getLogger(__name__)

CALLBACK = "/login/oidc/callback"
FLOW_COOKIE = "pv_oidc"
FLOW_S = 600  # the provider's login page must be done with within ten minutes
DISCOVERY_S = 3600  # how long the discovery document and keys are kept
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class OidcError(Exception):
    """The sign-in could not be completed; the message says why, for the login page."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class OidcClient:
    """Talks to one issuer: discovery, the authorization URL, the code exchange, ID tokens."""

    issuer: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    scopes: str = "openid email profile"
    transport: httpx.AsyncBaseTransport | None = None

    def __post_init__(self) -> None:
        self._discovery: dict[str, Any] | None = None
        self._keys: dict[str, Any] | None = None
        self._fetched = 0.0

    async def _get_json(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        response = await client.get(url)
        if response.status_code != 200:
            raise OidcError(f"the provider answered {response.status_code} for {url}")
        return response.json()

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=TIMEOUT, transport=self.transport)

    async def discovery(self) -> dict[str, Any]:
        """The issuer's `/.well-known/openid-configuration` (kept for an hour)."""
        if self._discovery is None or time.monotonic() - self._fetched > DISCOVERY_S:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            async with self._client() as client:
                found = await self._get_json(client, url)
                keys = await self._get_json(client, str(found["jwks_uri"]))
            if found.get("issuer") != self.issuer:
                raise OidcError("the discovery document names another issuer")
            self._discovery, self._keys, self._fetched = found, keys, time.monotonic()
        return self._discovery

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser to sign in (PKCE S256)."""
        found = await self.discovery()
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{found['authorization_endpoint']}?{urlencode(query)}"

    async def exchange(self, code: str, verifier: str, nonce: str) -> dict[str, Any]:
        """Trade the code for tokens; the verified ID token's claims."""
        found = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        auth = None
        methods = found.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if self.client_secret and "client_secret_basic" in methods:
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        elif self.client_secret:
            form["client_secret"] = self.client_secret
        async with self._client() as client:
            response = await client.post(str(found["token_endpoint"]), data=form, auth=auth)
        if response.status_code != 200:
            raise OidcError(f"the provider refused the sign-in ({response.status_code})")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the provider sent no ID token")
        return self.verify(id_token, nonce)

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, expiry and nonce hold."""
        try:
            header = jwt.get_unverified_header(id_token)
            key = next(
                (
                    jwt.PyJWK(k)
                    for k in (self._keys or {}).get("keys", [])
                    if k.get("kid") == header.get("kid")
                ),
                None,
            )
            if key is None:
                raise OidcError("the ID token is signed with a key the issuer does not list")
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=_ALGORITHMS,
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=60,
            )
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token does not check out: {exc}") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token was not issued for this sign-in")
        return claims


class _FlowCookie:
    """The sign-in in progress (state, nonce, verifier, where to go), signed and short-lived."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def dump(self, flow: dict[str, Any]) -> str:
        body = _b64(json.dumps({**flow, "exp": int(time.time()) + FLOW_S}).encode())
        mac = hmac.new(self.key, body.encode(), "sha256").hexdigest()
        return f"{body}.{mac}"

    def load(self, value: str | None) -> dict[str, Any] | None:
        body, _, mac = (value or "").partition(".")
        expected = hmac.new(self.key, body.encode(), "sha256").hexdigest()
        if not body or len(body) > 4000 or not hmac.compare_digest(mac, expected):
            return None
        try:
            flow = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        if not isinstance(flow, dict) or not isinstance(flow.get("exp"), int):
            return None
        return flow if flow["exp"] >= time.time() else None


def router(dash: Dashboard, transport: httpx.AsyncBaseTransport | None = None) -> APIRouter:
    """/login/oidc and its callback; they answer 404 while no issuer is configured."""
    api = APIRouter()
    settings = dash.settings
    secret = settings.oidc_client_secret
    client = OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        redirect_uri=settings.public_url.rstrip("/") + CALLBACK,
        scopes=settings.oidc_scopes,
        transport=transport or dash.extra.get("oidc_transport"),
    )
    cookies = _FlowCookie(hashlib.sha256(b"postvoice-oidc:" + settings.secret()).digest())

    def failed(request: Request, why: str, status: int = 400) -> Response:
        log.warning("OpenID Connect sign-in failed: %s", why)
        return render(
            dash,
            request,
            "login.html",
            active="login",
            next="/dashboard",
            error=f"Sign-in did not work: {why}",
            configured=dash.gate.configured,
            oidc=True,
            oidc_name=settings.oidc_display_name,
            status=status,
        )

    @api.get("/login/oidc", include_in_schema=False)
    async def begin(request: Request, next: str = "/dashboard") -> Response:
        """Send the browser to the provider's sign-in page."""
        if not settings.oidc_issuer:
            return Response("single sign-on is not configured", status_code=404)
        flow = {
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),
            "next": safe_next(next),
        }
        try:
            target = await client.authorization_url(flow["state"], flow["nonce"], flow["verifier"])
        except (OidcError, httpx.HTTPError, KeyError, ValueError) as exc:
            return failed(request, f"the provider cannot be reached ({exc})", status=502)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            FLOW_COOKIE,
            cookies.dump(flow),
            max_age=FLOW_S,
            httponly=True,
            samesite="lax",  # the provider's redirect back is a top-level GET: Lax sends it
            secure=settings.public_url.startswith("https://"),
            path=CALLBACK,
        )
        return response

    @api.get(CALLBACK, include_in_schema=False)
    async def callback(
        request: Request, code: str = "", state: str = "", error: str = ""
    ) -> Response:
        """The provider sends the browser back here with a code."""
        if not settings.oidc_issuer:
            return Response("single sign-on is not configured", status_code=404)
        flow = cookies.load(request.cookies.get(FLOW_COOKIE))
        if error:
            return failed(request, f"the provider said {error[:80]}")
        if flow is None or not state or not hmac.compare_digest(state, str(flow["state"])):
            return failed(request, "the sign-in expired or was not started here; try again")
        try:
            claims = await client.exchange(code, str(flow["verifier"]), str(flow["nonce"]))
        except (OidcError, httpx.HTTPError, KeyError, ValueError) as exc:
            return failed(request, str(exc)[:200])
        email = claims.get("email") if claims.get("email_verified") is True else None
        user = await asyncio.to_thread(
            dash.gate.accounts.for_sign_in,
            str(claims["sub"]),
            str(email) if email else None,
            settings.oidc_new_user_role or None,
            str(claims.get("preferred_username") or claims.get("name") or ""),
        )
        if user is None:
            who = email or claims.get("preferred_username") or claims["sub"]
            return failed(
                request,
                f"there is no account for {who}; an admin can add one with "
                f"`postvoice users add NAME --email {email or 'ADDRESS'}`",
                status=403,
            )
        response = await start_session(dash, user, str(flow["next"]), via="oidc")
        response.delete_cookie(FLOW_COOKIE, path=CALLBACK)
        return response

    return api
