"""Logging in to the dashboard: the admin token as a form, a cookie, or a Bearer header."""

import pytest
from fastapi.testclient import TestClient

from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice.dashboard.auth import COOKIE, AdminGate, safe_next
from voice.server import Engines, create_app
from voice.settings import Settings


def make_client(tmp_path, **overrides) -> TestClient:
    values = {
        "twilio_auth_token": "secret-token",
        "database_url": f"sqlite:///{tmp_path}/s.db",
        "admin_token": "admin-token",
        **overrides,
    }
    app = create_app(Settings(**values), Engines(FakeTranscriber(), FakeSynthesizer()))
    return TestClient(app)


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path) as c:
        yield c


def test_a_page_sends_a_stranger_to_the_login_form_and_back_after(client):
    first = client.get("/dashboard/calls?q=1001", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2Fdashboard%2Fcalls%3Fq%3D1001"
    form = client.get(first.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text

    wrong = client.post("/login", data={"token": "guess", "next": "/dashboard/calls?q=1001"})
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    assert COOKIE not in client.cookies

    right = client.post(
        "/login",
        data={"token": "admin-token", "next": "/dashboard/calls?q=1001"},
        follow_redirects=False,
    )
    assert right.status_code == 303 and right.headers["location"] == "/dashboard/calls?q=1001"
    assert "httponly" in right.headers["set-cookie"].lower()
    assert client.get("/api/calls/CA-none").status_code == 404  # the cookie opens the API too

    client.post("/logout")
    assert client.get("/api/calls/CA-none").status_code == 401


def test_the_bearer_header_opens_the_api_without_a_cookie(client):
    assert client.get("/api/outbox").status_code == 401
    ok = client.get("/api/outbox", headers={"Authorization": "Bearer admin-token"})
    assert ok.status_code == 200
    bad = client.get("/api/outbox", headers={"Authorization": "Bearer admin-tokenX"})
    assert bad.status_code == 401


def test_a_forged_or_expired_cookie_is_refused(tmp_path):
    gate = AdminGate(Settings(admin_token="admin-token", database_url="sqlite://"))
    value = gate.session_value(now=1000.0)
    assert gate.valid_session(value, now=1001.0)
    assert not gate.valid_session(value, now=1000.0 + 13 * 3600)  # expired
    version, expires, mac = value.split(".")
    assert not gate.valid_session(f"{version}.{int(expires) + 999}.{mac}", now=1001.0)
    other = AdminGate(Settings(admin_token="rotated", database_url="sqlite://"))
    assert not other.valid_session(value, now=1001.0)  # a new token logs everybody out


def test_login_only_redirects_within_the_site():
    assert safe_next("/dashboard/approvals") == "/dashboard/approvals"
    for target in ("https://evil.example", "//evil.example", "/\\evil.example", "", None):
        assert safe_next(target) == "/dashboard"


def test_without_a_token_the_dashboard_is_closed_unless_in_dev(tmp_path):
    with make_client(tmp_path, admin_token=None) as closed:
        assert closed.get("/api/outbox").status_code == 403
        page = closed.get("/login")
        assert "POSTVOICE_ADMIN_TOKEN is not set" in page.text
    with make_client(tmp_path, admin_token=None, dev=True) as dev:
        assert dev.get("/api/outbox").status_code == 200
