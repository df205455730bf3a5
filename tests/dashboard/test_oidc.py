"""Sign-in through the shop's OpenID Connect provider: the authorization-code flow with PKCE,
against a fake provider played by an `httpx.MockTransport` (discovery, keys, token endpoint)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from integrations.accounts import Accounts
from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice.dashboard.auth import COOKIE
from voice.server import Engines, create_app
from voice.settings import Settings

ISSUER = "https://id.example-shop.com"
CLIENT_ID = "postvoice-dashboard"
SECRET = "client-secret-1"
PUBLIC = "https://support.example-shop.com"


class FakeProvider:
    """An OpenID Connect provider: it checks PKCE and the client's secret like a real one."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict] = {}
        self.claims = {"sub": "user-123", "email": "ana@example-shop.com", "email_verified": True}
        self.nonce_override: str | None = None
        self.audience = CLIENT_ID
        self.sign_with = self.key
        self.token_requests: list[dict] = []

    def authorize(self, url: str) -> str:
        """What the browser does at the provider: sign in, come back with a code."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(12)
        self.codes[code] = query
        return f"{query['redirect_uri']}?code={code}&state={query['state']}"

    def _id_token(self, request: dict) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": self.audience,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_override or request["nonce"],
            **self.claims,
        }
        return jwt.encode(claims, self.sign_with, algorithm="RS256", headers={"kid": "k1"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                },
            )
        if path == "/jwks":
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return httpx.Response(200, json={"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
        if path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_requests.append(form)
            basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {basic}":
                return httpx.Response(401, json={"error": "invalid_client"})
            started = self.codes.pop(form.get("code", ""), None)
            if started is None:
                return httpx.Response(400, json={"error": "invalid_grant"})
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if challenge.rstrip(b"=").decode() != started["code_challenge"]:
                return httpx.Response(400, json={"error": "invalid_grant", "why": "pkce"})
            return httpx.Response(
                200, json={"access_token": "at", "id_token": self._id_token(started)}
            )
        return httpx.Response(404)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


def make_client(tmp_path, provider: FakeProvider, **overrides) -> TestClient:
    values = {
        "twilio_auth_token": "secret-token",
        "database_url": f"sqlite:///{tmp_path}/oidc.db",
        "public_url": PUBLIC,
        "worker_in_process": False,
        "oidc_issuer": ISSUER,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": SECRET,
        "oidc_display_name": "Example SSO",
        **overrides,
    }
    settings = Settings(**values)
    app = create_app(
        settings,
        Engines(FakeTranscriber(), FakeSynthesizer()),
        oidc_transport=httpx.MockTransport(provider.handle),
    )
    return TestClient(app, base_url=PUBLIC)


def sign_in(client: TestClient, provider: FakeProvider, next_path: str = "/dashboard/calls"):
    """The whole round trip, as a browser makes it: us → provider → back to us."""
    start = client.get(f"/login/oidc?next={next_path}", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith(ISSUER)
    back = provider.authorize(start.headers["location"])
    return client.get(back.removeprefix(PUBLIC), follow_redirects=False)


def test_an_existing_account_signs_in_through_the_provider(tmp_path, provider):
    with make_client(tmp_path, provider) as client:
        Accounts(client.app.state.store.engine).add_user(
            "ana", "approver", email="ana@example-shop.com"
        )
        assert "Sign in with Example SSO" in client.get("/login").text
        done = sign_in(client, provider)
        assert done.status_code == 303 and done.headers["location"] == "/dashboard/calls"
        assert COOKIE in client.cookies
        assert "ana · approver" in client.get("/dashboard/calls").text
        (exchange,) = provider.token_requests
        assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
        # The subject is now bound to the account: the next sign-in finds it by subject.
        assert Accounts(client.app.state.store.engine).user("ana").oidc_subject == "user-123"
        entries = client.get("/api/audit").json()["entries"]
        assert entries[0]["action"] == "login" and entries[0]["via"] == "oidc"


def test_nobody_without_an_account_gets_in_unless_the_shop_allows_it(tmp_path, provider):
    with make_client(tmp_path, provider) as client:
        refused = sign_in(client, provider)
        assert refused.status_code == 403 and "no account for ana@example-shop.com" in refused.text
        assert COOKIE not in client.cookies
    with make_client(tmp_path, provider, oidc_new_user_role="viewer") as client:
        assert sign_in(client, provider).status_code == 303
        user = Accounts(client.app.state.store.engine).user("ana")
        assert user is not None and user.role == "viewer"


def test_an_unverified_email_does_not_open_someone_elses_account(tmp_path, provider):
    provider.claims["email_verified"] = False
    with make_client(tmp_path, provider) as client:
        Accounts(client.app.state.store.engine).add_user(
            "ana", "admin", email="ana@example-shop.com"
        )
        assert sign_in(client, provider).status_code == 403


@pytest.mark.parametrize("tamper", ["nonce", "audience", "key", "state"])
def test_a_forged_or_replayed_sign_in_is_refused(tmp_path, provider, tamper):
    with make_client(tmp_path, provider) as client:
        Accounts(client.app.state.store.engine).add_user(
            "ana", "admin", email="ana@example-shop.com"
        )
        if tamper == "nonce":
            provider.nonce_override = "another-sign-in"
        elif tamper == "audience":
            provider.audience = "some-other-app"
        elif tamper == "key":
            provider.sign_with = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        start = client.get("/login/oidc", follow_redirects=False)
        back = provider.authorize(start.headers["location"]).removeprefix(PUBLIC)
        if tamper == "state":
            back = back.split("&state=")[0] + "&state=forged"
        answer = client.get(back, follow_redirects=False)
        assert answer.status_code in (400, 403) and "Sign-in did not work" in answer.text
        assert COOKIE not in client.cookies
        assert client.get("/api/outbox").status_code == 401


def test_a_code_from_another_browser_is_refused(tmp_path, provider):
    """The flow cookie ties the callback to the browser that started it (login CSRF)."""
    with make_client(tmp_path, provider) as victim, make_client(tmp_path, provider) as attacker:
        Accounts(victim.app.state.store.engine).add_user(
            "ana", "admin", email="ana@example-shop.com"
        )
        start = attacker.get("/login/oidc", follow_redirects=False)
        back = provider.authorize(start.headers["location"]).removeprefix(PUBLIC)
        answer = victim.get(back, follow_redirects=False)
        assert answer.status_code == 400 and COOKIE not in victim.cookies


def test_without_an_issuer_there_is_no_sign_in_route(tmp_path, provider):
    with make_client(tmp_path, provider, oidc_issuer="") as client:
        assert client.get("/login/oidc", follow_redirects=False).status_code == 404
        assert "Sign in with" not in client.get("/login").text
