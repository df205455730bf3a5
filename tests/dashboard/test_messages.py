"""Conversations by SMS and WhatsApp on the dashboard, beside the calls: the channel column and
filter, the thread with its events, metrics by channel, and photos on the ticket.

The conversations are written with the store's own functions, as the messaging route keeps
them: a call row of channel "sms" or "whatsapp", one turn per message, the agent's events.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image

from integrations import metrics
from integrations.photos import Upload
from integrations.store import Store
from tests.dashboard.callmaker import BEARER, JAMES, MARIA, T0, TOM, record_call, running
from tests.dashboard.dom import parse
from tests.photo_requests import LENA, open_photo_request


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


def thread(
    store: Store,
    sid: str,
    channel: str,
    caller: str,
    messages: list[tuple[int, str, str]],
    events: list[tuple[int, str, str | None, dict[str, Any]]] = (),  # type: ignore[assignment]
    *,
    at=T0,
    ended: bool = True,
) -> None:
    """A conversation by text messages: (seconds after the first, role, text) per message,
    (seconds, type, order, data) per event."""
    store.upsert_call(
        sid,
        from_number=caller,
        to_number="+18005550100",
        direction="inbound",
        status="in-progress",
        started_at=at,
        channel=channel,
    )
    store.upsert_call(sid, created_at=at)
    for seq, (seconds, role, text) in enumerate(messages, start=1):
        ms = seconds * 1000
        source = "sms" if role == "caller" else "text"
        store.add_turn(sid, seq, role, text, start_ms=ms, end_ms=ms, source=source)
    for seconds, type_, order, data in events:
        store.add_event(sid, type_, order, data, seconds * 1000)
    if ended:
        last = max((s for s, _r, _t in messages), default=0)
        store.upsert_call(
            sid,
            status="completed",
            ended_at=at + timedelta(seconds=last),
            end_reason="caller_done",
        )


MARIA_SMS = [
    (0, "caller", "hi where's my order?? 1001"),
    (2, "agent", "Your linen shirt shipped with UPS and should arrive tomorrow (Tue 11 Mar)."),
    (95, "caller", "ok thx, can u send the tracking link"),
    (97, "agent", "Acme: tracking for order 1001: https://www.ups.com/track?tracknum=1Z"),
]
MARIA_EVENTS = [
    (0, "call.started", None, {"channel": "sms"}),
    (1, "intent", "1001", {"name": "order_status"}),
    (1, "tracking.looked_up", "1001", {"status": "in_transit"}),
    (96, "sms.sent", "1001", {"purpose": "tracking", "in_reply": True}),
]


def _four_channels(store: Store) -> None:
    record_call(
        store,
        "CAvoice",
        caller=JAMES,
        at=T0,
        turns=[("caller", "where is 1003", None), ("agent", "Delivered last Friday.", 650)],
        events=[("intent", "1003", {"name": "order_status"})],
    )
    store.upsert_call("CAvoice", channel="voice")
    record_call(store, "CHtyped", caller=TOM, at=T0 + timedelta(minutes=1))
    store.upsert_call("CHtyped", channel="typed")
    thread(store, "SMmaria", "sms", MARIA, MARIA_SMS, MARIA_EVENTS, at=T0 + timedelta(minutes=2))
    thread(
        store,
        "WAlena",
        "whatsapp",
        LENA,
        [(0, "caller", "my vase arrived broken :("), (3, "agent", "I'm so sorry. Which order?")],
        [(1, "intent", None, {"name": "damaged_item"})],
        at=T0 + timedelta(minutes=3),
        ended=False,
    )


# --- the list --------------------------------------------------------------------------------


def test_the_list_shows_each_conversation_s_channel(client):
    _four_channels(client.app.state.store)
    doc = page(client, "/dashboard/calls")
    assert sids(doc) == ["WAlena", "SMmaria", "CHtyped", "CAvoice"]
    channel = {
        row["data-call-sid"]: row.one(data_channel=True)
        for row in doc.find_all("tr", data_call_sid=True)
    }
    assert {sid: cell["data-channel"] for sid, cell in channel.items()} == {
        "WAlena": "whatsapp",
        "SMmaria": "sms",
        "CHtyped": "typed",
        "CAvoice": "voice",
    }
    assert channel["SMmaria"].text == "SMS 4 messages"
    assert channel["WAlena"].text == "WhatsApp 2 messages"
    assert channel["CAvoice"].text == "Voice"
    voice = doc.one("tr", data_call_sid="CAvoice").text
    assert "650 ms" in voice and "1:00" in voice
    sms = doc.one("tr", data_call_sid="SMmaria").text
    assert "order status" in sms and "resolved" in sms  # intents and outcome as for calls
    assert "in progress" in doc.one("tr", data_call_sid="WAlena").text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("channel=sms", ["SMmaria"]),
        ("channel=whatsapp", ["WAlena"]),
        ("channel=voice", ["CAvoice"]),
        ("channel=typed", ["CHtyped"]),
        ("channel=sms&q=tracking+link", ["SMmaria"]),  # words typed in a message
        ("channel=whatsapp&q=1001", []),
        ("channel=carrier-pigeon", ["WAlena", "SMmaria", "CHtyped", "CAvoice"]),  # ignored
    ],
)
def test_the_channel_filter_narrows_the_list(client, query, expected):
    _four_channels(client.app.state.store)
    doc = page(client, f"/dashboard/calls?{query}")
    assert sids(doc) == expected
    chosen = doc.one("select", name="channel").find("option", selected=True)
    wanted = query.split("&")[0].removeprefix("channel=")
    if wanted in ("sms", "whatsapp", "voice", "typed"):
        assert chosen is not None and chosen["value"] == wanted
    else:
        assert chosen is None


def test_the_channel_filter_is_kept_from_page_to_page(client):
    store = client.app.state.store
    for i in range(51):
        thread(
            store, f"SM{i:03d}", "sms", MARIA, [(0, "caller", "hi")], at=T0 + timedelta(minutes=i)
        )
    record_call(store, "CAlatest", at=T0 + timedelta(hours=2))
    first = page(client, "/dashboard/calls?channel=sms&outcome=resolved")
    assert len(sids(first)) == 50 and "CAlatest" not in sids(first)
    older = first.one("a", rel="next")["href"]
    assert "channel=sms" in older and "outcome=resolved" in older and "page=2" in older
    assert sids(page(client, older)) == ["SM000"]


# --- one conversation ------------------------------------------------------------------------


def test_a_message_conversation_is_shown_as_its_thread_with_its_events(client):
    _four_channels(client.app.state.store)
    doc = page(client, "/dashboard/calls/SMmaria")
    assert doc.one("h1").text.startswith("SMS from +14155550101")
    messages = doc.one("section", id="thread").find_all(class_="turn")
    assert [m["data-side"] for m in messages] == ["customer", "agent", "customer", "agent"]
    assert [m.one(class_="text").text for m in messages] == [t for _s, _r, t in MARIA_SMS]
    times = [m.one("time").text for m in messages]
    assert times == ["2025-03-10 15:02", "2025-03-10 15:02", "2025-03-10 15:03", "2025-03-10 15:03"]
    beside = [[li["data-type"] for li in m.find_all("li")] for m in messages]
    assert beside == [
        ["call.started", "intent", "tracking.looked_up"],  # up to the reply
        [],
        ["sms.sent"],
        [],
    ]
    assert doc.one("table", id="events").find_all("tr", data_type="sms.sent")  # all of them too
    facts = doc.one("dl", class_="facts").text
    assert "Channel SMS" in facts and "Messages 4" in facts
    assert "Median reply" not in facts and "Duration" not in facts
    assert doc.find("audio") is None and doc.find("section", id="transcript") is None
    assert "end-of-turn" not in doc.text and "STT" not in doc.text


def test_a_call_s_page_is_as_it_was(client, tmp_path):
    store = client.app.state.store
    _four_channels(store)
    client.app.state.deps.settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (client.app.state.deps.settings.recordings_dir / "CAvoice.wav").write_bytes(b"RIFF")
    doc = page(client, "/dashboard/calls/CAvoice")
    assert doc.one("h1").text.startswith("Call from +14155550102")
    assert doc.find("section", id="transcript") is not None and doc.find(id="thread") is None
    assert doc.find("audio") is not None
    facts = doc.one("dl", class_="facts").text
    assert "Channel Voice" in facts and "Median reply 650 ms" in facts


def test_a_whatsapp_conversation_still_going_shows_what_there_is(client):
    _four_channels(client.app.state.store)
    doc = page(client, "/dashboard/calls/WAlena")
    assert doc.one("h1").text.startswith("WhatsApp from +14155550105")
    assert doc.one(data_outcome=True)["data-outcome"] == "in_progress"
    [first, _reply] = doc.one("section", id="thread").find_all(class_="turn")
    assert [li["data-type"] for li in first.find_all("li")] == ["intent"]


# --- metrics by channel ----------------------------------------------------------------------


def test_the_metrics_count_one_channel_or_all(client):
    store = client.app.state.store
    _four_channels(store)
    now = T0 + timedelta(hours=1)
    everything = metrics.report(store.engine, "all", now=now)
    assert everything.calls == 4
    by = {c: metrics.report(store.engine, "all", now=now, channel=c) for c in ("sms", "whatsapp")}
    assert by["sms"].calls == 1 and by["whatsapp"].calls == 1
    assert by["sms"].wismo.whole == 1 and by["sms"].wismo.part == 1  # asked, answered, no person
    assert by["sms"].latency.count == 0  # no reply latency in a thread

    api = client.get("/api/metrics?window=all&channel=sms", headers=BEARER)
    assert api.status_code == 200 and api.json()["calls"] == 1 and api.json()["channel"] == "sms"
    assert client.get("/api/metrics?window=all", headers=BEARER).json()["calls"] == 4
    spoken = client.get("/api/metrics?window=all&typed=exclude", headers=BEARER).json()
    assert spoken["calls"] == 1 and spoken["channel"] == "voice"
    bad = client.get("/api/metrics?window=all&channel=fax", headers=BEARER)
    assert bad.status_code == 422 and "sms" in bad.json()["detail"]

    doc = page(client, "/dashboard/metrics?window=all&channel=whatsapp")
    chosen = doc.one("select", name="channel").find("option", selected=True)
    assert chosen is not None and chosen["value"] == "whatsapp"
    options = [o["value"] for o in doc.one("select", name="channel").find_all("option")]
    assert options == ["", "voice", "typed", "sms", "whatsapp"]


# --- photos on the ticket --------------------------------------------------------------------


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (180, 20, 20)).save(out, "JPEG")
    return out.getvalue()


def test_photos_sent_in_a_message_conversation_show_on_its_ticket(client):
    app = client.app
    store = app.state.store
    thread(
        store,
        "SMlena",
        "sms",
        LENA,
        [(0, "caller", "my vase from 1009 came smashed"), (2, "agent", "Please send photos.")],
    )
    request = open_photo_request(client, "SMlena")
    ticket_id = request.ticket_id
    photo = Upload(_jpeg(), "image/jpeg", "vase.jpg")  # a picture replied to the text
    client.portal.call(lambda: app.state.photos.accept(request, [photo], source="mms"))

    tickets = parse(client.get("/dashboard/tickets", headers=BEARER).text)
    row = tickets.one("tr", data_ticket=ticket_id)
    [image] = row.find_all("img")
    assert "(mms)" in image["alt"]
    conversation = page(client, "/dashboard/calls/SMlena")
    [shown] = conversation.one("section", id="related").find_all("img")
    assert shown["src"] == image["src"]
    answer = client.get(shown["src"], headers=BEARER)
    assert answer.status_code == 200 and answer.content[:2] == b"\xff\xd8"


def test_prometheus_counts_the_calls_of_each_channel(client):
    _four_channels(client.app.state.store)
    text = client.get("/metrics", headers=BEARER).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("postvoice_calls_by_channel_total{")
    }
    assert samples['postvoice_calls_by_channel_total{channel="sms",outcome="automated"}'] == 1
    whatsapp = 'postvoice_calls_by_channel_total{channel="whatsapp",outcome="in_progress"}'
    assert samples[whatsapp] == 1
    assert samples['postvoice_calls_by_channel_total{channel="voice",outcome="automated"}'] == 1
    assert samples['postvoice_calls_by_channel_total{channel="typed",outcome="automated"}'] == 1
    assert sum(samples.values()) == 4
