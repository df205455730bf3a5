"""The HTTP side: Twilio webhook signatures, TwiML, status callbacks, health, start-up checks."""

import pytest
from fastapi.testclient import TestClient

from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice import twilio
from voice.server import Engines, create_app
from voice.settings import Settings

PUBLIC = "https://support.example-shop.com"
FORM = {
    "CallSid": "CA123",
    "AccountSid": "AC1",
    "From": "+14155550101",
    "To": "+18005550100",
    "Direction": "inbound",
    "CallStatus": "ringing",
}


@pytest.fixture
def client(tmp_path):
    settings = Settings(
        twilio_auth_token="secret-token",
        public_url=PUBLIC,
        database_url=f"sqlite:///{tmp_path}/s.db",
        admin_token="admin",
    )
    app = create_app(settings, Engines(FakeTranscriber(), FakeSynthesizer()))
    with TestClient(app) as c:
        yield c


def signed(path: str, form: dict) -> dict:
    return {"X-Twilio-Signature": twilio.compute_signature("secret-token", PUBLIC + path, form)}


def test_unsigned_or_badly_signed_webhooks_get_403_and_record_nothing(client):
    assert client.post("/twilio/voice", data=FORM).status_code == 403
    bad = {"X-Twilio-Signature": "AAAA"}
    assert client.post("/twilio/voice", data=FORM, headers=bad).status_code == 403
    # Signed for the URL a proxy shows us rather than the configured public URL: refused.
    local = twilio.compute_signature("secret-token", "http://testserver/twilio/voice", FORM)
    headers = {"X-Twilio-Signature": local}
    assert client.post("/twilio/voice", data=FORM, headers=headers).status_code == 403
    assert client.post("/twilio/status", data=FORM).status_code == 403
    assert client.app.state.store.call("CA123") is None


def test_signed_voice_webhook_connects_a_stream_with_a_token(client):
    response = client.post("/twilio/voice", data=FORM, headers=signed("/twilio/voice", FORM))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    url, params = twilio.parse_stream_twiml(response.text)
    assert url == "wss://support.example-shop.com/twilio/media"
    assert params["from"] == "+14155550101" and params["direction"] == "inbound"
    secret = client.app.state.settings.secret()
    assert twilio.verify_stream_token(secret, "CA123", params)
    assert 'action="https://support.example-shop.com/twilio/after-stream"' in response.text
    assert client.app.state.store.call("CA123")["status"] == "ringing"


def test_status_callbacks_are_recorded(client):
    form = {**FORM, "CallStatus": "completed", "CallDuration": "42"}
    response = client.post("/twilio/status", data=form, headers=signed("/twilio/status", form))
    assert response.status_code == 200
    store = client.app.state.store
    assert [u["status"] for u in store.status_updates("CA123")] == ["completed"]
    assert store.call("CA123")["duration_s"] == 42


def test_after_stream_dials_a_person_only_after_a_handoff(client):
    form = {"CallSid": "CA123"}
    store = client.app.state.store
    store.upsert_call("CA123", status="in-progress")
    hdrs = signed("/twilio/after-stream", form)
    assert "<Hangup" in client.post("/twilio/after-stream", data=form, headers=hdrs).text
    store.upsert_call("CA123", transfer_to="+18005550199")
    answer = client.post("/twilio/after-stream", data=form, headers=hdrs).text
    assert "<Dial>+18005550199</Dial>" in answer


def test_health_and_the_call_api_needs_the_admin_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    client.app.state.store.upsert_call("CA9")
    assert client.get("/api/calls/CA9").status_code == 401
    ok = client.get("/api/calls/CA9", headers={"Authorization": "Bearer admin"})
    assert ok.status_code == 200 and ok.json()["call_sid"] == "CA9"


def test_media_socket_handshake_must_be_signed(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/twilio/media"):
        pass
    assert refused.value.code == 1008


def test_media_socket_closes_without_a_valid_token(client):
    params = twilio.StreamParams("CA123", "MZ1", "AC1", {"token": "nope"})
    ws_url = PUBLIC.replace("https://", "wss://") + "/twilio/media"
    sig = {"X-Twilio-Signature": twilio.compute_signature("secret-token", ws_url, {})}
    with client.websocket_connect("/twilio/media", headers=sig) as ws:
        ws.send_text(twilio.build_connected())
        ws.send_text(twilio.build_start(params))
        message = ws.receive()
    assert message["type"] == "websocket.close" and message["code"] == 1008


def test_server_refuses_to_start_without_an_auth_token_unless_dev():
    with pytest.raises(SystemExit, match="POSTVOICE_TWILIO_AUTH_TOKEN"):
        Settings(twilio_auth_token=None, dev=False).check_startable()
    Settings(twilio_auth_token=None, dev=True).check_startable()


def test_dev_mode_skips_signatures(tmp_path):
    settings = Settings(dev=True, database_url=f"sqlite:///{tmp_path}/d.db")
    app = create_app(settings, Engines(FakeTranscriber(), FakeSynthesizer()))
    with TestClient(app) as c:
        assert c.post("/twilio/voice", data=FORM).status_code == 200


async def test_return_labels_are_served_only_at_their_signed_link(client):
    from urllib.parse import urlsplit

    from integrations.demo import seed

    shop = client.app.state.shop
    seed(shop.engine)
    rma = await shop.returns.create(
        "1003", ["1003-1"], "defective", "refund", idempotency_key="test:rma"
    )
    label = await shop.returns.label(rma.rma, idempotency_key="test:label")
    link = urlsplit(label.url)
    assert link.scheme + "://" + link.netloc == PUBLIC  # customers get the public address
    path = f"{link.path}?{link.query}"
    answer = client.get(path)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF")
    assert client.get(path.replace("sig=", "sig=0")).status_code == 403
    assert client.get(link.path).status_code == 403


@pytest.fixture
def stripe_client(tmp_path):
    settings = Settings(
        twilio_auth_token="secret-token",
        public_url=PUBLIC,
        database_url=f"sqlite:///{tmp_path}/w.db",
        stripe_webhook_secret="whsec_test",
    )
    app = create_app(settings, Engines(FakeTranscriber(), FakeSynthesizer()))
    with TestClient(app) as c:
        yield c


def test_stripe_webhook_checks_the_signature_and_handles_each_event_once(stripe_client):
    import json
    import time

    from integrations.stripe_webhooks import sign_stripe_payload

    body = json.dumps({"id": "evt_1", "type": "refund.updated", "data": {"object": {}}}).encode()
    now = int(time.time())
    good = {"Stripe-Signature": sign_stripe_payload(body, "whsec_test", now)}
    assert stripe_client.post("/stripe/webhook", content=body).status_code == 400
    forged = {"Stripe-Signature": sign_stripe_payload(body, "whsec_other", now)}
    assert stripe_client.post("/stripe/webhook", content=body, headers=forged).status_code == 400
    stale = {"Stripe-Signature": sign_stripe_payload(body, "whsec_test", now - 600)}
    assert stripe_client.post("/stripe/webhook", content=body, headers=stale).status_code == 400
    assert stripe_client.post("/stripe/webhook", content=body, headers=good).status_code == 200
    # Stripe retries deliveries: the same event id is acknowledged and not handled again.
    assert stripe_client.post("/stripe/webhook", content=body, headers=good).status_code == 200
    with stripe_client.app.state.store.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("select count(*) from stripe_webhook_events")).scalar() == 1


def test_sms_status_callbacks_are_signed_and_recorded(client):
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": "AC1"}
    assert client.post("/twilio/sms-status", data=form).status_code == 403
    answer = client.post(
        "/twilio/sms-status", data=form, headers=signed("/twilio/sms-status", form)
    )
    assert answer.status_code == 204
    with client.app.state.store.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("select message_sid, status from twilio_sms_status")).all()
    assert [tuple(r) for r in rows] == [("SM1", "delivered")]


# --- stream tokens and replayed webhooks ------------------------------------------------------


def _media_headers() -> dict:
    ws_url = PUBLIC.replace("https://", "wss://") + "/twilio/media"
    return {"X-Twilio-Signature": twilio.compute_signature("secret-token", ws_url, {})}


def _answered(client) -> twilio.StreamParams:
    response = client.post("/twilio/voice", data=FORM, headers=signed("/twilio/voice", FORM))
    _url, params = twilio.parse_stream_twiml(response.text)
    return twilio.StreamParams("CA123", "MZ1", "AC1", params)


def _greeted(ws) -> None:
    """Read until the agent's greeting audio arrives."""
    import json

    while json.loads(ws.receive_text())["event"] != "media":
        pass


def _ended(store, call_sid: str) -> dict:
    """The call's record once its session has written the end (it finishes after the socket)."""
    import time

    deadline = time.monotonic() + 5
    while (record := store.call(call_sid))["ended_at"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return record


def _one_call(client, stream: twilio.StreamParams) -> dict:
    with client.websocket_connect("/twilio/media", headers=_media_headers()) as ws:
        ws.send_text(twilio.build_connected())
        ws.send_text(twilio.build_start(stream))
        _greeted(ws)
        ws.send_text(twilio.build_stop(stream, 9))
        while ws.receive()["type"] != "websocket.close":  # the session closes once recorded
            pass
    return _ended(client.app.state.store, stream.call_sid)


def test_a_stream_token_opens_one_session_only(client):
    stream = _answered(client)
    _one_call(client, stream)
    # The same start again, after the call ended: refused, no second session.
    with client.websocket_connect("/twilio/media", headers=_media_headers()) as ws:
        ws.send_text(twilio.build_connected())
        ws.send_text(twilio.build_start(stream))
        message = ws.receive()
    assert message["type"] == "websocket.close" and message["code"] == 1008
    record = client.app.state.store.call("CA123")
    assert [e["type"] for e in record["events"]].count("call.started") == 1
    assert record["status"] == "completed"


def test_a_second_socket_for_a_live_call_is_refused(client):
    stream = _answered(client)
    with client.websocket_connect("/twilio/media", headers=_media_headers()) as first:
        first.send_text(twilio.build_connected())
        first.send_text(twilio.build_start(stream))
        _greeted(first)
        with client.websocket_connect("/twilio/media", headers=_media_headers()) as second:
            second.send_text(twilio.build_connected())
            second.send_text(twilio.build_start(stream))
            message = second.receive()
        assert message["type"] == "websocket.close" and message["code"] == 1008
        first.send_text(twilio.build_stop(stream, 9))
    record = client.app.state.store.call("CA123")
    assert [e["type"] for e in record["events"]].count("call.started") == 1


def test_an_expired_stream_token_is_refused():
    secret, params = b"s3cret", {"from": "+14155550101", "direction": "inbound"}
    token = twilio.make_stream_token(secret, "CA1", params, now=1000.0, ttl_s=60)
    assert twilio.verify_stream_token(secret, "CA1", {**params, "token": token}, now=1059.0)
    assert not twilio.verify_stream_token(secret, "CA1", {**params, "token": token}, now=1061.0)
    # The expiry is signed: moving it on breaks the token.
    expires, mac = token.split(".")
    moved = f"{int(expires) + 3600}.{mac}"
    assert not twilio.verify_stream_token(secret, "CA1", {**params, "token": moved}, now=1061.0)
    for junk in ("", ".", "x.y", "²³.abc", "9" * 5000 + ".abc"):
        assert not twilio.verify_stream_token(secret, "CA1", {**params, "token": junk})


def test_replayed_webhooks_never_move_a_finished_call_back(client):
    _one_call(client, _answered(client))
    store = client.app.state.store
    done = {**FORM, "CallStatus": "completed", "CallDuration": "12"}
    client.post("/twilio/status", data=done, headers=signed("/twilio/status", done))
    assert store.call("CA123")["status"] == "completed"

    # A captured, validly signed voice webhook and status callback, played again.
    replayed = client.post("/twilio/voice", data=FORM, headers=signed("/twilio/voice", FORM))
    assert replayed.status_code == 200 and "<Stream" not in replayed.text
    assert "<Hangup" in replayed.text
    live = {**FORM, "CallStatus": "in-progress"}
    client.post("/twilio/status", data=live, headers=signed("/twilio/status", live))
    assert store.call("CA123")["status"] == "completed"
    assert store.call("CA123")["duration_s"] == 12


def test_status_moves_only_forward():
    from integrations.store import Store, make_engine

    store = Store(make_engine("sqlite://"))
    store.migrate()
    for status in ("ringing", "in-progress", "ringing", "completed", "in-progress", "queued"):
        store.record_status("CA5", status, {"CallStatus": status})
    assert store.call("CA5")["status"] == "completed"
    assert len(store.status_updates("CA5")) == 6  # every callback is still kept as it came


def test_a_huge_stripe_webhook_is_refused_before_it_is_read(stripe_client):
    """A 300 MB body was once read whole (+550 MB of memory) before any check."""
    from voice.server import MAX_WEBHOOK_BYTES

    declared = stripe_client.post(
        "/stripe/webhook",
        content=b"{}",
        headers={"Content-Length": str(300 * 1024 * 1024), "Stripe-Signature": "t=1,v1=x"},
    )
    assert declared.status_code == 413
    sent: list[int] = []

    def body():  # chunked, no length given: refused once it passes the limit
        for _ in range(64):
            sent.append(1)
            yield b"x" * (64 * 1024)

    streamed = stripe_client.post(
        "/stripe/webhook", content=body(), headers={"Stripe-Signature": "t=1,v1=x"}
    )
    assert streamed.status_code == 413
    assert MAX_WEBHOOK_BYTES < 64 * 64 * 1024


def test_signed_label_links_never_reach_the_access_log(client, caplog):
    import logging

    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        path = "/labels/RMA-50012.pdf?expires=1767225600&sig=deadbeefcafe"
        access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.9:5000", "GET", path, "1.1", 200)
        access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.9:5000", "GET", "/healthz", "1.1", 200)
    assert "deadbeefcafe" not in caplog.text and "expires=" not in caplog.text
    assert "/labels/RMA-50012.pdf?[redacted]" in caplog.text and "/healthz" in caplog.text
