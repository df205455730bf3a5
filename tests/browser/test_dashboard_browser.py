"""The dashboard in a real browser: log in, find a replayed call and read it, approve a refund
that waits for a person, and look at the metrics and the flows."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from dialog.loader import load_flows
from tests.browser.conftest import ROOT, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCENARIOS = ROOT / "audio_fixtures" / "scenarios"
JAMES = "+14155550102"
OMAR = "+14155550106"
RETURN_1012 = "RMA-50012"  # Omar's studio headphones ($250), on their way back (docs/DESIGN.md)
DELIVERY_TIMEOUT_S = 30


def _watch_errors(page) -> list[str]:
    """Collect the page's script errors and console errors as they happen."""
    errors: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text}")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    return errors


def _search(page, text: str) -> None:
    """Type into the calls filter's search box and submit the form, as a person would."""
    search = page.locator("form.filters input[name=q]")
    search.fill(text)
    search.press("Enter")
    page.wait_for_url(f"**/dashboard/calls?*q=*{text.lstrip('+')}*")
    expect(page.locator("table#calls")).to_be_attached()


def test_logging_in_through_the_form(page, live_server, screenshot):
    page.goto("/dashboard/calls")
    page.wait_for_url("**/login?next=*")

    page.fill("input[name=token]", "not-the-token")
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("not the admin token")
    assert "/login" in page.url
    screenshot(page, "login")

    page.fill("input[name=token]", live_server.admin_token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/dashboard/calls")
    expect(page.locator("table#calls")).to_be_visible()
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Calls")


def test_a_replayed_call_shows_its_transcript_events_and_return(
    admin_page, live_server, screenshot, tmp_path
):
    replay = live_server.run(
        "replay",
        str(SCENARIOS / "order_1003_return.yaml"),
        "--url",
        live_server.ws_url,
        "--out",
        str(tmp_path / "replay"),
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    report = json.loads((tmp_path / "replay" / "report.json").read_text())
    sid = report["call_sid"]
    page = admin_page

    # Another caller's number does not find James's call; his does.
    _search(page, OMAR)
    expect(page.locator(f"#calls tr[data-call-sid='{sid}']")).to_have_count(0)
    _search(page, JAMES)
    row = page.locator(f"#calls tr[data-call-sid='{sid}']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(JAMES)
    screenshot(page, "calls")

    row.locator(f"a[href='/dashboard/calls/{sid}']").first.click()
    page.wait_for_url(f"**/dashboard/calls/{sid}")

    transcript = page.locator("section#transcript")
    agent = transcript.locator(".turn.agent")
    caller = transcript.locator(".turn.caller")
    expect(agent.first).to_be_visible()
    said = " ".join(agent.all_inner_texts()).lower()
    for words in (
        "zip code",
        "store credit of eighty-nine dollars",
        "sending you the prepaid return label by text",  # the outbox worker texts it
    ):
        assert words in said, (words, said)
    heard = [t.lower() for t in caller.all_inner_texts()]
    assert len(heard) == 6 and "i want to return my ear buds" in heard[0], heard
    assert transcript.locator(".turn .meta").count() == agent.count() + caller.count()

    events = page.locator("table#events")
    expect(events.locator("tr[data-type='intent']").first).to_contain_text("return_request")
    expect(events.locator("tr[data-type='caller.verified']")).to_have_count(1)
    expect(events.locator("tr[data-type='return.created']")).to_have_count(1)
    expect(events.locator("tr[data-type='return.label_created']")).to_have_count(1)
    expect(events.locator("tr[data-type='refund.created']")).to_have_count(0)
    expect(events.locator("tr[data-type='call.ended']")).to_have_count(1)
    expect(page.locator("section#related")).to_contain_text("1003")
    expect(page.locator("audio#recording")).to_have_count(0)  # recording is off
    rma = next(e["rma"] for e in report["events"] if e["type"] == "return.created")
    screenshot(page, "call")

    # The return the call authorized is on the returns page, linked back to the call.
    page.goto("/dashboard/returns")
    authorized = page.locator(f"table#returns tr[data-rma='{rma}']")
    expect(authorized).to_have_count(1)
    expect(authorized).to_contain_text("1003")
    expect(authorized.locator(f"a[href='/dashboard/calls/{sid}']")).to_have_count(1)
    screenshot(page, "returns")


def _outbox(live_server) -> list[dict]:
    return live_server.api("/api/outbox")["items"]


def test_approving_a_pending_refund(admin_page, live_server, screenshot):
    # The warehouse receives Omar's $250 headphones: above the line, so a person must approve.
    received = live_server.run("receive", RETURN_1012, timeout=120)
    assert received.returncode == 0, received.stdout + received.stderr
    assert "pending_approval" in received.stdout, received.stdout
    ticket = re.search(r"ticket (\S+)", received.stdout)
    assert ticket, received.stdout
    before = {item["id"] for item in _outbox(live_server)}
    page = admin_page

    page.goto("/dashboard/tickets")
    filed = page.locator(f"table#tickets tr[data-ticket='{ticket[1]}']")
    expect(filed).to_contain_text("1012")
    screenshot(page, "tickets")

    page.goto("/dashboard/approvals")
    pending = page.locator("table#approvals tr[data-approval]").filter(has_text="1012")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("$250.00")
    approval = pending.get_attribute("data-approval")
    screenshot(page, "approvals_before")

    pending.locator("button[name=decision][value=approve]").click()
    page.wait_for_url("**/dashboard/approvals?*")
    expect(page.locator("p#flash")).to_be_visible()
    expect(page.locator(f"table#approvals tr[data-approval='{approval}']")).to_have_count(0)
    decided = page.locator(f"table#decided tr[data-approval='{approval}']")
    expect(decided).to_have_count(1)
    expect(decided).to_contain_text("1012")
    screenshot(page, "approvals_after")

    # The refund and the customer's text leave through the outbox, and the worker delivers them.
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        new = [item for item in _outbox(live_server) if item["id"] not in before]
        refunds = [i for i in new if i["kind"] == "refund" and i["order_ref"] == "1012"]
        texts = [i for i in new if i["kind"] == "sms" and i["payload"].get("to") == OMAR]
        delivered = all(i["status"] == "delivered" for i in refunds + texts)
        if refunds and texts and delivered:
            break
        assert time.monotonic() < deadline, f"not delivered in {DELIVERY_TIMEOUT_S} s: {new}"
        time.sleep(0.3)
    assert len(refunds) == 1 and len(texts) == 1  # approved once: one refund, one text

    # Decided for good: a fresh visit lists it as decided, its refund delivered, not pending.
    page.goto("/dashboard/approvals")
    expect(page.locator(f"table#approvals tr[data-approval='{approval}']")).to_have_count(0)
    expect(decided.locator("[data-refund='delivered']")).to_have_count(1)


def test_metrics_and_flows_draw_their_charts(admin_page, screenshot):
    page = admin_page
    errors = _watch_errors(page)

    page.goto("/dashboard/metrics")
    section = page.locator("section#metrics")
    expect(section.locator(".stat[data-metric='deflection_rate']")).to_be_visible()
    charts = section.locator(".chart[data-chart]")
    expect(charts.first).to_be_attached()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart[data-chart]')]"
        ".every(c => c.querySelector('svg'))"
    )
    assert charts.count() >= 1
    screenshot(page, "metrics")

    page.goto("/dashboard/flows")
    flows = page.locator("section.flow[data-flow]")
    expect(flows.first).to_be_visible()
    shown = [flows.nth(i).get_attribute("data-flow") for i in range(flows.count())]
    assert sorted(shown) == sorted(load_flows().flows), shown
    for i in range(flows.count()):
        flow = flows.nth(i)
        name = shown[i]
        assert flow.locator("svg text").count() > 0, f"flow {name} has no graph"
        # The badge is the .validation element itself or sits inside it.
        valid = flow.locator(".validation.badge.ok, .validation .badge.ok")
        assert valid.count() == 1, f"flow {name} is not shown as valid"
        assert flow.locator(".badge.bad").count() == 0, f"flow {name} is shown with errors"
    screenshot(page, "flows")
    assert errors == []


def test_logging_out_closes_the_dashboard(admin_page, live_server):
    page = admin_page
    page.click("header form[action='/logout'] button")
    page.wait_for_url("**/login")
    page.goto("/dashboard/approvals")
    page.wait_for_url("**/login?next=*")
    log_in(page, live_server.admin_token, "/dashboard/approvals")
    page.wait_for_url("**/dashboard/approvals")
