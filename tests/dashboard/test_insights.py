"""The metrics page, Prometheus /metrics and the flows page, through the real app."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dialog.graph import read_flows
from dialog.loader import load_flows
from integrations.demo import seed
from integrations.store import Store
from integrations.worker import Worker, deliverers_from
from tests.dashboard.dom import parse
from tests.fakes import FakeSynthesizer, FakeTranscriber
from tests.integrations.test_metrics import parse as parse_prometheus
from voice.dashboard.flowsvg import render_svg
from voice.server import Engines, create_app
from voice.settings import Settings

ADMIN = "admin-token"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
NOW = datetime.now(UTC)


@pytest.fixture
def client(tmp_path: Path, flows_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        twilio_auth_token="secret-token",
        public_url="https://support.example-shop.com",
        database_url=f"sqlite:///{tmp_path}/dash.db",
        admin_token=ADMIN,
        allow_injection=True,
        worker_in_process=False,
        flows_dir=flows_dir,
        max_calls=7,
    )
    app = create_app(settings, Engines(FakeTranscriber(), FakeSynthesizer()))
    with TestClient(app, base_url="https://testserver") as c:
        seed(app.state.runtime.engine)
        yield c


def get(client: TestClient, path: str):
    answer = client.get(path, headers=BEARER)
    assert answer.status_code == 200, answer.text[:500]
    return answer


def stat(doc, metric: str):
    return doc.one("section", id="metrics").one("div", class_="stat", data_metric=metric)


def add_call(store: Store, sid: str, *, at: datetime, handoff: bool = False, latency=None):
    store.upsert_call(sid, direction="inbound", status="in-progress")
    store.upsert_call(
        sid, created_at=at, started_at=at, ended_at=at + timedelta(minutes=2), status="completed"
    )
    store.add_event(sid, "intent", "1001", {"name": "order_status", "score": 0.9}, 1000)
    if handoff:
        store.add_event(sid, "handoff", "1001", {"reason": "caller_request"}, 2000)
    if latency is not None:
        store.add_turn(sid, 1, "agent", "It's on its way.", timing={"latency_ms": latency})


# --- who may look ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard/metrics", "/dashboard/flows"])
def test_the_pages_need_a_login(client, path):
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_metrics_for_prometheus_need_the_bearer_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    answer = client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert client.get("/api/metrics").status_code == 401


# --- the metrics page --------------------------------------------------------------------------


def test_four_calls_one_handed_off_is_seventy_five_percent_deflection(client):
    store = client.app.state.store
    for i, latency in enumerate([400, 600, 800, 1000]):
        add_call(store, f"CA{i}", at=NOW - timedelta(hours=2), handoff=i == 3, latency=latency)
    add_call(store, "CA-old", at=NOW - timedelta(days=3), handoff=True)

    doc = parse(get(client, "/dashboard/metrics?window=24h").text)
    deflection = stat(doc, "deflection_rate")
    assert deflection["data-value"] == "0.75"
    assert deflection.one("div", class_="value").text == "75%"
    assert "3 of 4 ended inbound calls" in deflection.text
    assert stat(doc, "wismo_automation_rate").one("div", class_="value").text == "75%"
    assert stat(doc, "calls").one("div", class_="value").text == "4"
    assert stat(doc, "reply_latency_p50").one("div", class_="value").text == "600 ms"
    assert doc.one("select", name="window").one("option", selected=True)["value"] == "24h"
    reasons = doc.one("table", id="escalation-reasons")
    assert reasons.one("tr", data_kind="handoff", data_reason="caller_request").text.endswith("1")

    week = parse(get(client, "/dashboard/metrics?window=7d").text)
    assert stat(week, "deflection_rate")["data-value"] == "0.6"  # the older hand-off counts
    assert stat(week, "deflection_rate").one("div", class_="value").text == "60%"


def test_every_chart_carries_its_data_for_the_script(client):
    store = client.app.state.store
    midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    # Today (UTC) whatever the hour the suite runs at: an hour ago is yesterday just after midnight.
    add_call(store, "CA1", at=max(NOW - timedelta(hours=1), midnight), latency=700)
    doc = parse(get(client, "/dashboard/metrics").text)
    charts = {c["data-chart"]: json.loads(c["data-spec"]) for c in doc.find_all(class_="chart")}
    assert {"calls_per_day", "deflection_per_day", "latency_per_day", "latency_histogram",
            "return_reasons", "escalation_reasons", "csat_scores"} <= set(charts)  # fmt: skip
    per_day = charts["calls_per_day"]
    assert per_day["type"] == "bar" and len(per_day["labels"]) == 8  # seven days and today
    assert per_day["labels"][-1] == NOW.date().isoformat()
    assert per_day["series"][0] == {"name": "inbound", "values": [0] * 7 + [1]}
    assert charts["deflection_per_day"]["series"][0]["values"][-1] == 100.0
    assert charts["latency_per_day"]["series"][0]["values"][-1] == 700
    assert charts["latency_histogram"]["bins"][-1] == {"from": 500, "to": 750, "count": 1}
    assert doc.find("script", src="/static/pvchart.js") is not None
    script = client.get("/static/pvchart.js")
    assert script.status_code == 200 and "PVChart" in script.text


def test_an_empty_store_says_there_is_no_data_rather_than_zero(client):
    doc = parse(get(client, "/dashboard/metrics?window=all").text)
    deflection = stat(doc, "deflection_rate")
    assert deflection.get("data-value") is None
    assert deflection.one("div", class_="value").text == "—"
    assert "no ended inbound calls yet" in deflection.text
    assert doc.one("p", id="csat-none") is not None
    # The shipped flows ask for a score at the end of the delivery confirmation call.
    assert "delivery_confirmation" in doc.one("section", id="metrics").text
    assert get(client, "/dashboard/metrics?window=1y").status_code == 200  # falls back to 7 days
    assert client.get("/api/metrics?window=1y", headers=BEARER).status_code == 422


async def test_real_calls_show_up_in_the_figures(client):
    from tests.dashboard.callmaker import JAMES, MARIA, converse

    app = client.app
    await converse(app, "CA-wismo", MARIA, ["where is my order", "no thanks", "no that's all"])
    await converse(
        app,
        "CA-return",
        JAMES,
        ["I want to return my earbuds", "1 0 0 0 1", "they stopped working", "refund please",
         "yes", "no that's all"],
    )  # fmt: skip
    figures = client.get("/api/metrics", headers=BEARER).json()
    assert figures["deflection"] == {"part": 2, "whole": 2, "value": 1.0}
    assert figures["wismo_automation"] == {"part": 1, "whole": 1, "value": 1.0}
    assert figures["return_reasons"] == {"defective": 1}
    assert figures["return_initiation_s"]["returns"] == 1
    assert figures["return_initiation_s"]["waiting_for_label"] == 1  # the text is queued
    assert figures["reply_latency_ms"]["count"] >= 4

    store = app.state.store
    worker = Worker(store.outbox, deliverers_from(app.state.runtime.providers))
    await worker.drain(timeout_s=30)
    returns = client.get("/api/metrics", headers=BEARER).json()["return_initiation_s"]
    assert returns["waiting_for_label"] == 0 and returns["count"] == 1
    assert returns["p50"] > 0


def test_prometheus_exposition_counts_the_calls(client):
    store = client.app.state.store
    add_call(store, "CA1", at=NOW - timedelta(hours=1), latency=500)
    add_call(store, "CA2", at=NOW - timedelta(hours=1), handoff=True, latency=900)
    samples = parse_prometheus(get(client, "/metrics").text)
    inbound = (("direction", "inbound"),)
    assert samples[("postvoice_calls_total", (*inbound, ("outcome", "automated")))] == 1
    assert samples[("postvoice_calls_total", (*inbound, ("outcome", "handed_off")))] == 1
    assert samples[("postvoice_deflection_ratio", (("window", "24h"),))] == 0.5
    assert samples[("postvoice_reply_latency_ms_count", ())] == 2
    assert samples[("postvoice_reply_latency_ms", (("quantile", "0.5"),))] == 500  # nearest rank
    assert samples[("postvoice_max_calls", ())] == 7  # this instance's capacity
    assert samples[("postvoice_active_calls", ())] == 0


# --- the flows page ----------------------------------------------------------------------------


def test_every_shipped_flow_is_drawn_and_valid(client):
    doc = parse(get(client, "/dashboard/flows").text)
    sections = doc.find_all("section", class_="flow")
    assert sorted(s["data-flow"] for s in sections) == sorted(load_flows().flows)
    for section in sections:
        assert section.find("svg") is not None, section["data-flow"]
        validation = section.one(class_="validation")
        assert validation.one("span", class_="badge ok").text == "valid"
        assert validation.find(class_="bad") is None
    assert doc.one("span", id="flows-status").text == "all valid"
    returns = doc.one("section", data_flow="returns")
    assert returns.find("a", href="#flow-identify_order") is not None  # its `call` step
    assert "denial_reason == &quot;window&quot;" in get(client, "/dashboard/flows").text


def test_a_broken_flow_file_shows_its_errors_and_the_rest_still_draw(client, flows_dir):
    # The merchant edits a file while the server runs (it loaded the good ones at start-up).
    (flows_dir / "coupons.yaml").write_text(
        'flow: coupons\nintents: [coupon_question]\nsteps:\n  - say: "Hi."\n    say: "Again."\n'
    )
    (flows_dir / "late.yaml").write_text(
        'flow: late\nsteps:\n  - say: "Wait."\n    next: nowhere\n'
    )
    doc = parse(get(client, "/dashboard/flows").text)
    assert doc.one("span", id="flows-status", class_="badge bad").text == "2 problems"

    coupons = doc.one("section", data_flow="coupons").one(class_="validation")
    assert coupons.one("span", class_="badge bad") is not None
    assert [li.text for li in coupons.find_all("li")] == ["coupons.yaml:5: duplicate key 'say'"]
    assert doc.one("section", data_flow="coupons").find("svg") is None

    late = doc.one("section", data_flow="late")
    assert late.find("svg") is not None  # drawn, its mistake beside it
    assert [li.text for li in late.find_all("li")] == [
        "late.yaml:3: goes to unknown step 'nowhere'"
    ]
    assert doc.one("section", data_flow="returns").one("span", class_="badge ok").text == "valid"


def test_a_file_that_is_not_text_does_not_take_the_page_down(client, flows_dir):
    (flows_dir / "scan.yaml").write_bytes(b"\xff\xfe\x00 not text")
    doc = parse(get(client, "/dashboard/flows").text)
    scan = doc.one("section", data_flow="scan").one(class_="validation")
    assert scan.one("span", class_="badge bad") is not None
    assert scan.one("li").text.startswith("scan.yaml:0: cannot be read as UTF-8 text")


# --- the drawing -------------------------------------------------------------------------------


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _rect(el: ET.Element) -> tuple[float, ...]:
    return tuple(float(el.get(k)) for k in ("x", "y", "width", "height"))


def test_the_drawings_are_svg_where_no_box_or_label_covers_another():
    ns = {"s": "http://www.w3.org/2000/svg"}
    for source in read_flows().flows:
        assert source.graph is not None
        root = ET.fromstring(render_svg(source.graph))  # well-formed XML
        nodes = root.findall(".//s:g[@data-step]", ns)
        assert len(nodes) >= len(source.graph.nodes)  # each end marker drawn apart
        boxes = [_rect(g.find("s:rect", ns)) for g in nodes]
        labels = [_rect(r) for r in root.findall(".//s:g[@data-from]/s:rect", ns)]
        width, height = float(root.get("width")), float(root.get("height"))
        for i, box in enumerate(boxes):
            assert box[0] >= 0 and box[1] >= 0, source.name
            assert box[0] + box[2] <= width and box[1] + box[3] <= height, source.name
            for other in boxes[i + 1 :] + labels:
                assert not _overlap(box, other), (source.name, box, other)
        for i, label in enumerate(labels):
            for other in labels[i + 1 :]:
                assert not _overlap(label, other), (source.name, label, other)
        labelled = [e for e in source.graph.edges if e.label]
        assert len(labels) == len(labelled), source.name
