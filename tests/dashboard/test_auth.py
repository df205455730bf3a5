"""Who may use the dashboard: named accounts with roles (password, API token, or the shop's
OpenID Connect provider), the bootstrap admin token, sessions, CSRF, and the audit log."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from integrations.accounts import Accounts
from integrations.demo import seed
from tests.dashboard.callmaker import OMAR, record_call
from tests.dashboard.dom import parse
from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice.dashboard.auth import COOKIE, safe_next
from voice.server import Engines, create_app
from voice.settings import Settings


def make_client(tmp_path, **overrides) -> TestClient:
    values = {
        "twilio_auth_token": "secret-token",
        "database_url": f"sqlite:///{tmp_path}/s.db",
        "admin_token": "admin-token",
        "worker_in_process": False,
        **overrides,
    }
    app = create_app(Settings(**values), Engines(FakeTranscriber(), FakeSynthesizer()))
    return TestClient(app)


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path) as c:
        seed(c.app.state.shop.engine)
        yield c


def accounts(client) -> Accounts:
    return Accounts(client.app.state.store.engine)


def people(client) -> dict[str, str]:
    """Ana approves, Vic views, Gus places calls; each with a password."""
    desk = accounts(client)
    for name, role in (("ana", "approver"), ("vic", "viewer"), ("gus", "agent")):
        desk.add_user(name, role, password=f"{name}-password-1")
    return {n: f"{n}-password-1" for n in ("ana", "vic", "gus")}


def log_in(client, name: str = "", password: str = "admin-token") -> None:
    answer = client.post("/login", data={"name": name, "token": password}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def csrf_of(client) -> str:
    return parse(client.get("/dashboard/calls").text).one("input", name="csrf")["value"]


def pending_refund(client) -> int:
    store = client.app.state.store
    record_call(store, "CAomar", caller=OMAR)
    data = {"amount_cents": 25000, "line_id": "1012-1", "ticket_id": "PV-7K2Q9M"}
    return store.add_event("CAomar", "refund.pending_approval", "1012", data, 4000)


# --- logging in ---------------------------------------------------------------------------------


def test_a_page_sends_a_stranger_to_the_login_form_and_back_after(client):
    first = client.get("/dashboard/calls?q=1001", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2Fdashboard%2Fcalls%3Fq%3D1001"
    form = client.get(first.headers["location"])
    assert form.status_code == 200 and 'name="token"' in form.text and 'name="name"' in form.text

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

    client.post("/logout", data={"csrf": csrf_of(client)})
    assert client.get("/api/calls/CA-none").status_code == 401


def test_people_log_in_with_their_own_name_and_password(client):
    passwords = people(client)
    wrong = client.post("/login", data={"name": "ana", "token": "nope"})
    assert wrong.status_code == 401 and "do not match" in wrong.text
    assert client.post("/login", data={"name": "zed", "token": "x"}).status_code == 401
    log_in(client, "ana", passwords["ana"])
    page = client.get("/dashboard/calls").text
    assert "ana · approver" in page
    stored = accounts(client).user("ana")
    assert stored is not None and stored.has_password
    with client.app.state.store.engine.connect() as conn:
        from sqlalchemy import text

        hashed = conn.execute(text("select password_hash from users where name='ana'")).scalar()
    assert hashed.startswith("$argon2id$") and passwords["ana"] not in hashed


def test_the_bearer_header_opens_the_api_without_a_cookie(client):
    assert client.get("/api/outbox").status_code == 401
    ok = client.get("/api/outbox", headers={"Authorization": "Bearer admin-token"})
    assert ok.status_code == 200
    bad = client.get("/api/outbox", headers={"Authorization": "Bearer admin-tokenX"})
    assert bad.status_code == 401


def test_each_person_has_their_own_api_tokens(client):
    people(client)
    token = accounts(client).issue_token("vic", "grafana")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/metrics", headers=headers).status_code == 200
    assert client.get("/api/outbox", headers=headers).status_code == 200
    (listed,) = accounts(client).tokens("vic")
    assert accounts(client).revoke_token(listed["id"])
    assert client.get("/api/outbox", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "cookie",
    [
        "v1.²³.abc",  # int('²³') once raised: str.isdigit is true for superscripts
        "v1." + "9" * 5000 + ".abc",  # a 5,000-digit expiry: over int()'s digit limit
        "x" * 10_000,
        "",
        "v1.1.",
        "☃",
    ],
)
def test_a_crafted_session_cookie_means_the_login_page_not_an_error(client, cookie):
    header = {"Cookie": f"{COOKIE}={cookie}".encode()}  # raw bytes: any cookie a client sends
    page = client.get("/dashboard/calls", headers=header, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/api/outbox", headers=header).status_code == 401
    assert client.get("/login", headers=header).status_code == 200


def test_a_new_admin_token_logs_the_bootstrap_admin_out(tmp_path):
    with make_client(tmp_path) as first:
        log_in(first)
        cookie = first.cookies[COOKIE]
        assert first.get("/api/outbox").status_code == 200
    with make_client(tmp_path, admin_token="rotated") as second:
        second.cookies.set(COOKIE, cookie)
        assert second.get("/api/outbox").status_code == 401


def test_a_disabled_account_is_logged_out_and_its_tokens_stop(client):
    passwords = people(client)
    token = accounts(client).issue_token("ana")
    log_in(client, "ana", passwords["ana"])
    assert client.get("/api/outbox").status_code == 200
    accounts(client).disable("ana")
    assert client.get("/api/outbox").status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/outbox", headers=headers).status_code == 401
    assert client.post("/login", data={"name": "ana", "token": passwords["ana"]}).status_code == 401


def test_login_only_redirects_within_the_site():
    assert safe_next("/dashboard/approvals") == "/dashboard/approvals"
    for target in ("https://evil.example", "//evil.example", "/\\evil.example", "", None):
        assert safe_next(target) == "/dashboard"


def test_without_a_token_or_accounts_the_dashboard_is_closed_unless_in_dev(tmp_path):
    with make_client(tmp_path, admin_token=None) as closed:
        assert closed.get("/api/outbox").status_code == 403
        assert "Nobody can log in yet" in closed.get("/login").text
    with make_client(tmp_path, admin_token=None, dev=True) as dev:
        assert dev.get("/api/outbox").status_code == 200
        Accounts(dev.app.state.store.engine).add_user("ana", "admin", password="pw-123456")
        assert dev.get("/api/outbox").status_code == 401  # once someone has an account


def test_the_api_map_is_not_public(client):
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 404


# --- CSRF ---------------------------------------------------------------------------------------


def test_changes_made_with_the_login_cookie_need_the_csrf_token(client):
    log_in(client)
    store = client.app.state.store
    assert client.post("/calls/outbound", json={"order": "1009"}).status_code == 403
    assert client.post("/api/outbox/1/retry").status_code == 403
    csrf = {"X-CSRF-Token": csrf_of(client)}
    placed = client.post("/calls/outbound", json={"order": "1009"}, headers=csrf)
    assert placed.status_code == 200
    assert client.post("/api/outbox/1/retry", headers=csrf).status_code == 404  # none is dead
    assert store is not None


def test_a_junk_bearer_header_beside_a_good_cookie_is_refused_not_trusted(client):
    approval = pending_refund(client)
    log_in(client)
    junk = {"Authorization": "Bearer junk"}
    decided = client.post(f"/api/approvals/{approval}", json={"decision": "approve"}, headers=junk)
    assert decided.status_code == 401
    form = client.post(
        f"/dashboard/approvals/{approval}", data={"decision": "approve"}, headers=junk
    )
    assert form.status_code == 401
    assert (
        client.post("/try/session", json={"caller": "anonymous"}, headers=junk).status_code == 401
    )
    assert client.get("/api/approvals").json()["decided"] == []


def test_logging_out_needs_the_form_token(client):
    log_in(client)
    assert client.post("/logout").status_code == 403  # another site cannot log you out
    assert client.get("/api/outbox").status_code == 200
    assert client.post("/logout", data={"csrf": csrf_of(client)}).status_code == 200
    assert client.get("/api/outbox").status_code == 401


# --- roles, names and the audit -------------------------------------------------------------------


def test_each_decision_needs_its_role(client):
    passwords = people(client)
    approval = pending_refund(client)
    for name in ("vic", "gus"):  # a viewer and an agent may not decide refunds
        log_in(client, name, passwords[name])
        answer = client.post(
            f"/api/approvals/{approval}",
            json={"decision": "approve"},
            headers={"X-CSRF-Token": csrf_of(client)},
        )
        assert answer.status_code == 403
    log_in(client, "vic", passwords["vic"])
    csrf = {"X-CSRF-Token": csrf_of(client)}
    assert client.post("/calls/outbound", json={"order": "1009"}, headers=csrf).status_code == 403
    assert client.get("/try").status_code == 403
    assert "an approver decides" in client.get("/dashboard/approvals").text
    log_in(client, "gus", passwords["gus"])
    csrf = {"X-CSRF-Token": csrf_of(client)}
    assert client.post("/calls/outbound", json={"order": "1009"}, headers=csrf).status_code == 200
    assert client.post("/api/outbox/1/retry", headers=csrf).status_code == 403


def test_a_refund_decision_names_the_person_and_the_audit_lists_it(client):
    passwords = people(client)
    approval = pending_refund(client)
    log_in(client, "ana", passwords["ana"])
    form = parse(client.get("/dashboard/approvals").text).one("tr", data_approval=str(approval))
    csrf = form.one("input", name="csrf")["value"]
    client.post(f"/dashboard/approvals/{approval}", data={"csrf": csrf, "decision": "approve"})
    (decided,) = client.get("/api/approvals").json()["decided"]
    assert decided["decision"]["decided_by"] == "ana"

    token = accounts(client).issue_token("gus")
    client.post(
        "/calls/outbound", json={"order": "1009"}, headers={"Authorization": f"Bearer {token}"}
    )
    audit = parse(client.get("/dashboard/audit").text)
    rows = audit.find_all("tr", data_action="refund.approve")
    assert len(rows) == 1 and rows[0]["data-actor"] == "ana"
    assert audit.find_all("tr", data_action="call.outbound")[0]["data-actor"] == "gus"
    entries = client.get("/api/audit").json()["entries"]
    by_action = {e["action"]: e for e in entries}
    assert by_action["refund.approve"]["via"] == "dashboard"
    assert by_action["refund.approve"]["detail"]["order"] == "1012"
    assert (
        by_action["call.outbound"]["via"] == "api" and by_action["call.outbound"]["role"] == "agent"
    )
    assert {e["action"] for e in entries} >= {"login", "refund.approve", "call.outbound"}


def test_the_bootstrap_admin_is_named_as_such(client):
    approval = pending_refund(client)
    headers = {"Authorization": "Bearer admin-token"}
    client.post(f"/api/approvals/{approval}", json={"decision": "deny"}, headers=headers)
    (decided,) = client.get("/api/approvals", headers=headers).json()["decided"]
    assert decided["decision"]["decided_by"] == "admin-token"
