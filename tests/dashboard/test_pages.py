"""The operations pages: calls list, one call, tickets, returns — behind the admin login."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from integrations.outbox import OutboxHelpdesk
from integrations.store import CallEvents
from tests.dashboard.callmaker import (
    ADMIN,
    BEARER,
    JAMES,
    MARIA,
    OMAR,
    T0,
    TOM,
    converse,
    record_call,
    running,
)
from tests.dashboard.dom import parse

CARD = "4242 4242 4242 4242"  # passes Luhn: must never be shown


@pytest.fixture
def client(tmp_path):
    with running(tmp_path) as c:
        yield c


def page(client, path: str):
    answer = client.get(path, headers=BEARER)
    assert answer.status_code == 200, answer.text[:500]
    return parse(answer.text)


def sids(doc) -> list[str]:
    return [
        row["data-call-sid"]
        for row in doc.one("table", id="calls").find_all("tr", data_call_sid=True)
    ]


# --- who may look ------------------------------------------------------------------------------


PAGES = (
    "/dashboard/calls",
    "/dashboard/calls?q=1001",
    "/dashboard/calls/CA1",
    "/dashboard/tickets",
    "/dashboard/returns",
    "/dashboard/approvals",
)


def test_a_stranger_is_sent_to_the_login_page(client):
    for path in PAGES:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=%2Fdashboard%2F"), path
        guess = {"Authorization": "Bearer guess"}
        assert client.get(path, headers=guess, follow_redirects=False).status_code == 303


def test_data_routes_answer_401_without_the_token(client):
    assert client.get("/api/approvals").status_code == 401
    assert client.post("/api/approvals/1", json={"decision": "approve"}).status_code == 401
    assert client.post("/dashboard/approvals/1", data={"decision": "approve"}).status_code == 401
    assert client.get("/dashboard/calls/CA1/recording.wav").status_code == 401


def test_the_bearer_header_and_the_login_cookie_both_open_the_pages(client):
    assert client.get("/dashboard/tickets", headers=BEARER).status_code == 200
    assert client.get("/dashboard/tickets", follow_redirects=False).status_code == 303

    logged_in = client.post("/login", data={"token": ADMIN, "next": "/dashboard/tickets"})
    assert logged_in.status_code == 200 and str(logged_in.url).endswith("/dashboard/tickets")
    assert parse(logged_in.text).one("table", id="tickets")
    for path in ("/dashboard/calls", "/dashboard/returns", "/dashboard/approvals"):
        assert client.get(path).status_code == 200


# --- a real conversation on the list and on its page -----------------------------------------


async def test_a_conversation_shows_in_the_list_and_on_its_page(client):
    sid = "CA" + "1" * 32
    await converse(
        client.app, sid, MARIA, ["where is my order", "yes please", "no that's all, thanks"]
    )

    row = page(client, "/dashboard/calls").one("tr", data_call_sid=sid)
    assert row.find("a", href=f"/dashboard/calls/{sid}")
    assert MARIA in row.text and "inbound" in row.text
    assert "order status" in row.text
    assert row.one(data_outcome=True)["data-outcome"] == "resolved"
    assert re.search(r"\d+ ms", row.text)  # the median reply latency

    doc = page(client, f"/dashboard/calls/{sid}")
    transcript = doc.one("section", id="transcript")
    agent = transcript.find_all("div", class_="turn agent")
    caller = transcript.find_all("div", class_="turn caller")
    said = " ".join(t.text for t in agent).lower()
    assert "linen shirt" in said and "texted the tracking link" in said
    assert [t.find("div", class_="text").text for t in caller] == [
        "where is my order",
        "yes please",
        "no that's all, thanks",
    ]
    assert len(transcript.find_all(class_="meta")) == len(agent) + len(caller)
    replies = [t for t in agent if "reply" in t.one(class_="meta").text]
    assert len(replies) == len(caller)  # one timed reply per thing the caller said
    for reply in replies:
        meta = reply.one(class_="meta").text
        for part in ("end-of-turn wait", "STT", "dialog", "TTS"):
            assert part in meta, meta

    events = doc.one("table", id="events")
    assert len(events.find_all("tr", data_type="sms.sent")) == 1
    assert "order_status" in events.find("tr", data_type="intent").text
    assert events.one("tr", data_type="call.ended")
    texts = doc.one("section", id="related")
    assert MARIA in texts.text and "tracking for order 1001" in texts.text
    assert "queued" in texts.text  # no worker ran: the text waits in the outbox
    assert doc.find("audio") is None  # no recording


def test_an_unknown_call_is_a_404_page(client):
    answer = client.get("/dashboard/calls/CAnope", headers=BEARER)
    assert answer.status_code == 404 and "No such call" in answer.text


# --- the list: outcome, order, filters, search --------------------------------------------------


def _six_calls(store) -> None:
    hour = timedelta(hours=1)
    record_call(
        store,
        "CAresolved",
        caller=MARIA,
        at=T0,
        turns=[
            ("agent", "Hi Maria.", None),
            ("caller", "where is my order", None),
            ("agent", "It arrives tomorrow.", 900),
            ("caller", "and the shoes", None),
            ("agent", "Those were delivered.", 600),
            ("caller", "thanks", None),
            ("agent", "Goodbye.", 700),
        ],
        events=[
            ("intent", None, {"name": "order_status"}),
            ("tracking.looked_up", "1001", {"status": "in_transit"}),
        ],
    )
    record_call(
        store,
        "CAhandoff",
        caller=JAMES,
        at=T0 + hour,
        end_reason="transfer",
        transfer_to="+18005550199",
        turns=[("caller", "my espresso machine never came", None)],
        events=[
            ("intent", "1007", {"name": "lost_package"}),
            ("handoff", "1007", {"reason": "lost"}),
        ],
    )
    record_call(store, "CAabandoned", caller=TOM, at=T0 + 2 * hour, end_reason="caller_hangup")
    record_call(store, "CAfailed", caller="anonymous", at=T0 + 3 * hour, end_reason="error")
    record_call(
        store,
        "CAoutbound",
        caller="+14155550105",
        direction="outbound",
        at=T0 + 4 * hour,
        events=[("intent", "1009", {"name": "confirm_delivery"})],
    )
    record_call(store, "CAlive", caller=OMAR, at=T0 + 5 * hour, end_reason=None)
    store.add_event("CAlive", "refund.pending_approval", "1012", {"amount_cents": 25000}, 10)


def test_the_list_is_newest_first_with_how_each_call_went(client):
    _six_calls(client.app.state.store)
    doc = page(client, "/dashboard/calls")
    assert sids(doc) == [
        "CAlive",
        "CAoutbound",
        "CAfailed",
        "CAabandoned",
        "CAhandoff",
        "CAresolved",
    ]
    outcome = {
        row["data-call-sid"]: row.one(data_outcome=True)["data-outcome"]
        for row in doc.find_all("tr", data_call_sid=True)
    }
    assert outcome == {
        "CAlive": "in_progress",
        "CAoutbound": "resolved",
        "CAfailed": "failed",
        "CAabandoned": "abandoned",
        "CAhandoff": "handed_off",
        "CAresolved": "resolved",
    }
    resolved = doc.one("tr", data_call_sid="CAresolved").text
    assert "700 ms" in resolved  # the median of 900, 600 and 700
    assert "1:00" in resolved  # a minute long
    handoff = doc.one("tr", data_call_sid="CAhandoff").text
    assert "yes" in handoff and "+18005550199" in handoff and "lost package" in handoff
    assert "+14155550105" in doc.one("tr", data_call_sid="CAoutbound").text  # who was called


FILTERS = [
    ("q=%28415%29+555-0102", ["CAhandoff"]),  # the number typed as people write it
    ("q=%2B14155550101", ["CAresolved"]),
    ("q=1012", ["CAlive"]),  # an order named by an event
    ("q=espresso", ["CAhandoff"]),  # words the caller said
    ("q=100%25", []),  # LIKE wildcards are searched for, not obeyed
    ("direction=outbound", ["CAoutbound"]),
    ("outcome=abandoned", ["CAabandoned"]),
    ("outcome=resolved", ["CAoutbound", "CAresolved"]),
    ("handoff=yes", ["CAhandoff"]),
    ("handoff=no&direction=inbound", ["CAlive", "CAfailed", "CAabandoned", "CAresolved"]),
    ("intent=order_status", ["CAresolved"]),
    (
        "since=2025-03-10",
        ["CAlive", "CAoutbound", "CAfailed", "CAabandoned", "CAhandoff", "CAresolved"],
    ),
    ("since=2025-03-11", []),
    ("since=7d", []),  # the six calls are from long ago
    ("q=Maria&outcome=failed", []),
]


def test_filters_and_search_narrow_the_list(client):
    _six_calls(client.app.state.store)
    for query, expected in FILTERS:
        assert sids(page(client, f"/dashboard/calls?{query}")) == expected, query


def test_a_bad_date_is_explained_and_the_filters_are_kept(client):
    _six_calls(client.app.state.store)
    doc = page(client, "/dashboard/calls?since=yesterday-ish&direction=outbound")
    assert "2025-03-01" in doc.one(class_="error").text
    assert sids(doc) == ["CAoutbound"]
    form = doc.one("form", class_="filters")
    assert form.one("input", name="since")["value"] == "yesterday-ish"
    assert form.one("option", value="outbound").get("selected") is not None
    assert [o["value"] for o in form.one("select", name="intent").find_all("option")] == [
        "",
        "confirm_delivery",
        "lost_package",
        "order_status",
    ]


def test_the_list_has_pages_of_fifty(client):
    store = client.app.state.store
    for i in range(51):
        record_call(store, f"CA{i:03d}", at=T0 + timedelta(minutes=i))
    first = page(client, "/dashboard/calls?direction=inbound")
    assert len(sids(first)) == 50 and sids(first)[0] == "CA050"
    older = first.one("a", rel="next")["href"]
    assert "direction=inbound" in older and "page=2" in older
    second = page(client, older)
    assert sids(second) == ["CA000"]
    assert second.one("a", rel="prev") and second.find("a", rel="next") is None


# --- one call's page -------------------------------------------------------------------------


async def test_the_call_page_shows_timings_interruptions_and_what_the_call_caused(client):
    store = client.app.state.store
    record_call(
        store,
        "CAlost",
        caller=TOM,
        turns=[
            ("agent", "Hi Tom, how can I help?", None),
            ("caller", "my espresso machine never arrived", None),
            ("agent", "I'm sorry, let me look into order 1007 for you right away.", 1240),
        ],
        events=[("intent", "1007", {"name": "lost_package"})],
    )
    store.update_turn("CAlost", 2, interrupted=1)
    events = CallEvents(store, "CAlost")
    ticket = await OutboxHelpdesk(events).create_ticket(
        "Lost parcel: order 1007",
        "No carrier scan for 9 days",
        requester_phone=TOM,
        requester_email=None,
        tags=["lost"],
        priority="high",
        idempotency_key="CAlost:ticket",
    )
    await events.record("ticket.created", order="1007", ticket_id=ticket.id, reason="lost")
    # Free text from a provider or a caller that slipped through is redacted on the page.
    await events.record("escalation", order="1007", reason=f"caller read out {CARD}")

    answer = client.get("/dashboard/calls/CAlost", headers=BEARER)
    assert CARD not in answer.text and "4242424242424242" not in answer.text
    doc = parse(answer.text)
    cut = doc.one("section", id="transcript").one("div", class_="turn agent interrupted")
    meta = cut.one(class_="meta").text
    assert "interrupted" in meta and "1,240 ms" in meta and "STT 540 ms" in meta
    related = doc.one("section", id="related")
    assert ticket.id in related.text and "Lost parcel: order 1007" in related.text
    assert "queued" in related.text
    assert (
        "[card number removed]"
        in doc.one("table", id="events").one("tr", data_type="escalation").text
    )


def test_the_recording_player_only_when_the_file_exists(client, tmp_path):
    store = client.app.state.store
    record_call(store, "CArec")
    sid_page = "/dashboard/calls/CArec"
    assert page(client, sid_page).find("audio") is None
    assert client.get(f"{sid_page}/recording.wav", headers=BEARER).status_code == 404

    folder = client.app.state.settings.recordings_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "CArec.wav").write_bytes(b"RIFF----WAVEfmt ")
    (tmp_path / "secret.wav").write_bytes(b"not yours")
    player = page(client, sid_page).one("audio", id="recording")
    assert player["src"] == f"{sid_page}/recording.wav"
    served = client.get(player["src"], headers=BEARER)
    assert served.status_code == 200 and served.headers["content-type"] == "audio/wav"
    assert served.content == b"RIFF----WAVEfmt "
    for sneaky in ("..%2Fsecret", "..%2F..%2Fsecret", "CArec.wav%00", "%2E%2E"):
        url = f"/dashboard/calls/{sneaky}/recording.wav"
        assert client.get(url, headers=BEARER).status_code == 404, sneaky


# --- the queues ------------------------------------------------------------------------------


async def test_the_tickets_queue_shows_each_ticket_with_its_state(client):
    from integrations.worker import Worker, deliverers_from

    store = client.app.state.store
    record_call(store, "CAt1", caller=TOM)
    record_call(store, "CAt2", caller=JAMES)
    for sid, subject, order in (("CAt1", "Lost parcel", "1007"), ("CAt2", "Damaged", "1003")):
        events = CallEvents(store, sid)
        ticket = await OutboxHelpdesk(events).create_ticket(
            f"{subject}: order {order}",
            "details",
            requester_phone=None,
            requester_email=None,
            tags=[],
            priority="high" if order == "1007" else "normal",
            idempotency_key=f"{sid}:ticket",
        )
        await events.record("ticket.created", order=order, ticket_id=ticket.id, reason="r")
    # The first one reaches the (demo) helpdesk; the second still waits.
    providers = client.app.state.runtime.providers
    first = store.outbox.items(kind="ticket")[-1]
    worker = Worker(store.outbox, {"ticket": deliverers_from(providers)["ticket"]}, batch=1)
    assert await worker.run_once() == 1
    assert store.outbox.get(first.id).status == "delivered"

    doc = page(client, "/dashboard/tickets")
    rows = doc.one("table", id="tickets").find_all("tr", data_ticket=True)
    assert [r["data-state"] for r in rows] == ["queued", "delivered"]  # newest first
    assert "Damaged: order 1003" in rows[0].text and "1003" in rows[0].text
    assert rows[1].find("a", href="/dashboard/calls/CAt1")
    assert "helpdesk" in rows[1].text and "high" in rows[1].text

    only = page(client, "/dashboard/tickets?state=delivered")
    found = only.one("table", id="tickets").find_all("tr", data_ticket=True)
    assert [r["data-state"] for r in found] == ["delivered"]


async def test_the_returns_queue_shows_rmas_with_their_status_and_label(client):
    shop = client.app.state.runtime
    store = client.app.state.store
    record_call(store, "CAret", caller=JAMES)
    events = CallEvents(store, "CAret")
    services = shop.services(events)
    ra = await services.returns.create(
        "1003", ["1003-1"], "defective", "refund", idempotency_key="CAret:return"
    )
    await events.record(
        "return.created",
        order="1003",
        rma=ra.rma,
        reason_code="defective",
        resolution="refund",
        line_id="1003-1",
    )
    await events.record("return.denied", order="1004", reason="final_sale", line_id="1004-1")

    doc = page(client, "/dashboard/returns")
    table = doc.one("table", id="returns")
    row = table.one("tr", data_rma=ra.rma)
    assert "1003-1" in row.text and "defective" in row.text and "refund" in row.text
    assert "authorized" in row.text  # the demo shop's status of the new RMA
    assert "not sent" in row.text  # no label was queued for it
    assert row.find("a", href="/dashboard/calls/CAret")
    refused = table.one("tr", data_refused=True)
    assert "1004" in refused.text and "final sale" in refused.text and "refused" in refused.text
