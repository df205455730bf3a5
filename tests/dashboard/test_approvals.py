"""The refund approvals page and API: a person approves or denies, once; the outbox delivers."""

from __future__ import annotations

import pytest

from dialog.receipt import refund_on_receipt
from integrations.outbox import OutboxRefunds
from integrations.store import CallEvents
from integrations.worker import Worker, deliverers_from
from tests.dashboard.callmaker import ADMIN, BEARER, OMAR, record_call, running
from tests.dashboard.dom import parse

RETURN_1012 = "RMA-50012"  # Omar's studio headphones ($250), on their way back (docs/DESIGN.md)


@pytest.fixture
def client(tmp_path):
    with running(tmp_path) as c:
        yield c


def waiting_refund(client, sid: str = "CAomar", order: str = "1012", line: str = "1012-1") -> int:
    """A call in which the agent left a $250 refund for a person to approve."""
    store = client.app.state.store
    record_call(store, sid, caller=OMAR)
    data = {"amount_cents": 25000, "line_id": line, "ticket_id": "PV-7K2Q9M", "reason": "damaged"}
    return store.add_event(sid, "refund.pending_approval", order, data, 4000)


def log_in(client) -> None:
    assert client.post("/login", data={"token": ADMIN}).status_code == 200


def approvals_page(client):
    answer = client.get("/dashboard/approvals")
    assert answer.status_code == 200
    return parse(answer.text)


def decide(client, approval: int, decision: str, note: str = ""):
    """Click a button of the pending refund's form, as the browser sends it."""
    form = approvals_page(client).one("tr", data_approval=str(approval)).one("form")
    assert form["action"] == f"/dashboard/approvals/{approval}" and form["method"] == "post"
    csrf = form.one("input", name="csrf")["value"]
    assert form.one("button", name="decision", value=decision)
    return client.post(
        form["action"],
        data={"csrf": csrf, "decision": decision, "note": note},
        follow_redirects=False,
    )


def kinds(client) -> list[tuple[str, str]]:
    """(kind, key) of every outbox row, oldest first."""
    items = client.app.state.store.outbox.items(limit=None)
    return [(i.kind, i.idempotency_key) for i in reversed(items)]


def test_approving_on_the_page_queues_one_refund_and_one_text(client):
    approval = waiting_refund(client)
    log_in(client)
    row = approvals_page(client).one("table", id="approvals").one("tr", data_approval=str(approval))
    assert "$250.00" in row.text and "1012-1" in row.text and "PV-7K2Q9M" in row.text
    assert row.find("a", href="/dashboard/calls/CAomar")
    csrf = row.one("input", name="csrf")["value"]

    answer = decide(client, approval, "approve", note="checked the photos")

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/dashboard/approvals?decided={approval}&result=approved"
    after = parse(client.get(answer.headers["location"]).text)
    flash = after.one("p", id="flash").text
    assert flash.startswith("Approved: the refund of $250.00 for order 1012") and OMAR in flash
    assert after.one("table", id="approvals").find("tr", data_approval=str(approval)) is None
    decided = after.one("table", id="decided").one("tr", data_approval=str(approval))
    assert decided["data-decision"] == "approve" and "checked the photos" in decided.text
    assert kinds(client) == [
        ("refund", "refund:1012:1012-1"),
        ("sms", f"sms:refund-approval:{approval}"),
    ]
    events = [e["type"] for e in client.app.state.store.call("CAomar")["events"]]
    assert events[-3:] == ["refund.approved", "refund.created", "sms.sent"]

    # A double submit, or a second person on a page loaded before: nothing more, and it says so.
    again = client.post(
        f"/dashboard/approvals/{approval}",
        data={"csrf": csrf, "decision": "approve"},
        follow_redirects=False,
    )
    assert again.headers["location"].endswith("result=already_decided")
    flash = parse(client.get(again.headers["location"]).text).one("p", id="flash").text
    assert flash.startswith("Already approved by admin-token at ")
    assert len(kinds(client)) == 2


def test_denying_texts_the_customer_and_refunds_nothing(client):
    approval = waiting_refund(client)
    log_in(client)

    answer = decide(client, approval, "deny", note="the item came back used")

    assert answer.headers["location"].endswith("result=denied")
    page = parse(client.get(answer.headers["location"]).text)
    assert page.one("p", id="flash").text.startswith("Denied:")
    assert page.one("tr", data_approval=str(approval))["data-decision"] == "deny"
    (text,) = client.app.state.store.outbox.items(kind="sms")
    assert text.payload["to"] == OMAR
    assert "could not approve it: the item came back used" in text.payload["body"]
    assert client.app.state.store.outbox.items(kind="refund") == []


def test_a_form_without_its_csrf_token_changes_nothing(client):
    approval = waiting_refund(client)
    log_in(client)
    for data in ({"decision": "approve"}, {"decision": "approve", "csrf": "forged"}):
        answer = client.post(f"/dashboard/approvals/{approval}", data=data)
        assert answer.status_code == 403
    assert kinds(client) == []
    assert approvals_page(client).one("tr", data_approval=str(approval))


def test_unknown_approvals_and_bad_decisions_are_explained(client):
    approval = waiting_refund(client)
    log_in(client)
    csrf = approvals_page(client).find_all("input", name="csrf")[0]["value"]
    missing = client.post("/dashboard/approvals/9999", data={"csrf": csrf, "decision": "approve"})
    assert missing.status_code == 404
    assert "no refund waiting for approval has id 9999" in parse(missing.text).one(id="flash").text
    odd = client.post(f"/dashboard/approvals/{approval}", data={"csrf": csrf, "decision": "both"})
    assert odd.status_code == 422 and kinds(client) == []


def test_the_json_api_decides_with_a_bearer_token_once(client):
    approval = waiting_refund(client)

    listed = client.get("/api/approvals", headers=BEARER).json()
    (item,) = listed["pending"]
    assert item["id"] == approval and item["amount_cents"] == 25000
    assert item["refund_key"] == "refund:1012:1012-1" and listed["decided"] == []

    body = {"decision": "approve", "note": "api"}
    first = client.post(f"/api/approvals/{approval}", json=body, headers=BEARER)
    assert first.status_code == 200 and first.json()["status"] == "approved"
    assert first.json()["approval"]["decision"]["decided_by"] == "admin-token"
    second = client.post(f"/api/approvals/{approval}", json=body, headers=BEARER)
    assert second.status_code == 409 and second.json()["status"] == "already_decided"
    assert len(kinds(client)) == 2

    bad = client.post(f"/api/approvals/{approval}", json={"decision": "yes"}, headers=BEARER)
    assert bad.status_code == 422
    assert client.post("/api/approvals/424242", json=body, headers=BEARER).status_code == 404
    assert client.get("/api/approvals", headers=BEARER).json()["pending"] == []


def test_the_api_with_only_the_login_cookie_needs_the_csrf_header(client):
    approval = waiting_refund(client)
    log_in(client)
    body = {"decision": "deny"}
    assert client.post(f"/api/approvals/{approval}", json=body).status_code == 403
    csrf = approvals_page(client).find_all("input", name="csrf")[0]["value"]
    done = client.post(f"/api/approvals/{approval}", json=body, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.json()["status"] == "denied"


async def test_approving_a_line_refunded_already_refunds_nothing_more(client):
    # The same line went out below the line on another call before anyone looked.
    store = client.app.state.store
    record_call(store, "CAearlier", caller=OMAR)
    await OutboxRefunds(CallEvents(store, "CAearlier")).refund(
        "1012", "1012-1", 25000, idempotency_key="CAearlier:refund", reason="damaged"
    )
    approval = waiting_refund(client)
    log_in(client)
    pending_row = approvals_page(client).one("tr", data_approval=str(approval))
    assert "already refunded?" in pending_row.text  # the person is warned before deciding

    answer = decide(client, approval, "approve")

    flash = parse(client.get(answer.headers["location"]).text).one("p", id="flash").text
    assert "was already refunded" in flash and "nothing more was refunded" in flash
    assert kinds(client) == [("refund", "refund:1012:1012-1")]


async def test_a_line_the_demo_shop_refunded_long_ago_is_not_refunded_again(client):
    # Order 1011 was returned and refunded in the demo shop before postvoice saw it.
    approval = waiting_refund(client, order="1011", line="1011-1")
    log_in(client)

    answer = decide(client, approval, "approve")

    flash = parse(client.get(answer.headers["location"]).text).one("p", id="flash").text
    assert "the refunds provider has" in flash and "succeeded" in flash
    assert kinds(client) == []


async def test_the_worker_delivers_an_approved_refund_through_the_demo_shop(client):
    shop = client.app.state.runtime
    store = client.app.state.store
    # The warehouse receives Omar's headphones: above the approval line, so a person decides.
    receipt = await refund_on_receipt(
        RETURN_1012, shop.services(CallEvents(store, None)), flows=shop.flows, policy=shop.policy
    )
    assert receipt.outcome == "pending_approval"
    log_in(client)
    row = approvals_page(client).one("table", id="approvals").one("tr", data_approval=True)
    assert "1012" in row.text and "$250.00" in row.text and "returns desk" in row.text
    approval = int(row["data-approval"])

    answer = decide(client, approval, "approve")
    assert answer.headers["location"].endswith("result=approved")
    worker = Worker(store.outbox, deliverers_from(shop.providers))
    await worker.drain(timeout_s=30)

    refunds = await shop.demo.refunds.refunds_of("1012")
    assert [(r.line_id, r.amount_cents, r.status) for r in refunds] == [
        ("1012-1", 25000, "succeeded")
    ]
    texts = [m["body"] for m in shop.demo.messenger.sent(OMAR)]
    assert any("your refund of $250.00 for order 1012" in t and "was approved" in t for t in texts)
    decided = (
        approvals_page(client).one("table", id="decided").one("tr", data_approval=str(approval))
    )
    assert decided.one(data_refund=True)["data-refund"] == "delivered"

    returns = parse(client.get("/dashboard/returns").text).one("table", id="returns")
    assert "refunded" in returns.one("tr", data_rma=RETURN_1012).text  # the shop says so
    tickets = parse(client.get("/dashboard/tickets").text).one("table", id="tickets")
    ticket = tickets.one("tr", data_state="delivered")
    assert "Refund approval: order 1012" in ticket.text
