"""The `postvoice` commands as a person runs them: exit codes say what could not be done."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from integrations.accounts import Accounts
from integrations.demo import seed
from integrations.metrics import report
from integrations.store import Store, make_engine
from postvoice.cli import app


@pytest.fixture
def db(tmp_path, monkeypatch) -> str:
    """A seeded demo shop the commands find through the environment, as they would."""
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("POSTVOICE_DATABASE_URL", url)
    monkeypatch.setenv("POSTVOICE_PUBLIC_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    engine = make_engine(url)
    Store(engine).migrate()
    seed(engine)
    engine.dispose()
    return url


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def events(url: str, kind: str) -> list[dict]:
    engine = make_engine(url)
    with engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("select data from events where type = :t"), {"t": kind}).all()
    engine.dispose()
    return rows


# --- postvoice receive --------------------------------------------------------------------------


def test_receiving_an_unknown_rma_fails_and_files_nothing(db):
    result = run("receive", "RMA-99999")
    assert result.exit_code == 1
    assert "RMA-99999 cannot be received" in result.output
    assert events(db, "ticket.created") == [] and events(db, "escalation") == []


def test_receiving_a_return_twice_leaves_one_approval_and_one_ticket(db):
    first = run("receive", "RMA-50012")
    second = run("receive", "RMA-50012")
    assert first.exit_code == second.exit_code == 0
    assert "pending_approval" in first.output
    ticket = first.output.split("ticket ")[1].split()[0]
    assert f"ticket {ticket}" in second.output  # the same ticket, by the same id
    assert len(events(db, "refund.pending_approval")) == 1
    assert len(events(db, "ticket.created")) == 1
    engine = make_engine(db)
    tickets = [i for i in Store(engine).outbox_items() if i["kind"] == "ticket"]
    assert len(tickets) == 1
    engine.dispose()


# --- postvoice users ----------------------------------------------------------------------------


def test_users_are_added_with_a_role_and_a_hashed_password(db):
    added = run(
        "users", "add", "ana", "--role", "approver", "--password-stdin", input="s3cret-pass!\n"
    )
    assert added.exit_code == 0 and "added ana (approver)" in added.output
    accounts = Accounts(make_engine(db))
    assert accounts.authenticate("ana", "s3cret-pass!") is not None
    assert run("users", "add", "ana", "--no-password").exit_code == 1  # taken
    assert run("users", "add", "bob", "--role", "boss", "--no-password").exit_code == 1
    assert run("users", "add", "cy", "--password-stdin", input="short\n").exit_code == 1
    assert run("users", "role", "ana", "admin").exit_code == 0
    assert accounts.user("ana").role == "admin"
    listed = run("users", "list")
    assert "ana" in listed.output and "admin" in listed.output and "1 account(s)" in listed.output
    token = run("users", "token", "ana", "--label", "ci").output.strip()
    assert token.startswith("pvt_") and accounts.token_user(token).name == "ana"
    assert run("users", "disable", "ana").exit_code == 0
    assert accounts.token_user(token) is None
    assert run("users", "disable", "nobody").exit_code == 1
    entries, _ = accounts.audit_entries()
    assert {e.action for e in entries} >= {"user.add", "user.role", "token.issue", "user.disable"}
    assert all(e.actor.startswith("cli:") and e.via == "cli" for e in entries)


# --- postvoice chat -----------------------------------------------------------------------------


def test_a_typed_call_is_a_call_the_dashboard_and_the_metrics_count(db):
    said = "where is my order\n#1001#\nmy card is 4242 4242 4242 4242\n"
    result = run("chat", "--from", "+14155550101", input=said)
    assert result.exit_code == 0, result.output
    assert "nothing answers at http://127.0.0.1:9" in result.output  # links would point nowhere
    engine = make_engine(db)
    store = Store(engine)
    (summary,) = store.calls_page(store_filter()).items
    call = store.call(summary.call_sid)
    assert call["channel"] == "typed" and call["status"] == "completed"
    assert call["ended_at"] is not None and call["end_reason"] == "caller_hangup"
    caller = [t["text"] for t in call["turns"] if t["role"] == "caller"]
    assert caller[:2] == ["where is my order", "1001"]
    assert "4242" not in " ".join(t["text"] for t in call["turns"])
    assert any(t["role"] == "agent" for t in call["turns"])
    assert report(engine, "24h").inbound == 1
    assert report(engine, "24h", channel="voice").inbound == 0  # typed calls can be left out
    engine.dispose()


def store_filter():
    from integrations.dashboard_queries import CallFilter

    return CallFilter()


def test_typed_calls_that_went_to_a_person_are_not_counted_as_deflected(db):
    for _ in range(2):
        assert (
            run("chat", "--from", "+14155550101", input="I want to talk to a person\n").exit_code
            == 0
        )
    assert run("chat", "--from", "+14155550101", input="where is my order\n").exit_code == 0
    engine = make_engine(db)
    figures = report(engine, "24h")
    assert figures.inbound == 3
    assert figures.deflection.value is not None and figures.deflection.value < 0.5
    engine.dispose()
