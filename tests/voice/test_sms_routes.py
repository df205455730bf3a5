"""`POST /twilio/sms`: signed, each message once, and the carriers' keywords, against a fake
Twilio REST API behind the real outbox worker."""

import httpx
import pytest
from fastapi.testclient import TestClient

from integrations.demo import seed
from integrations.messaging import OPT_OUT_REASON
from integrations.outbound import OutboundStore
from integrations.providers import build_providers
from tests.fakes import FakeSynthesizer, FakeTranscriber
from tests.integrations.fakes_http import FakeTwilio
from tests.photo_requests import LENA, open_photo_request
from voice import twilio
from voice.server import Engines, create_app
from voice.settings import Settings

PUBLIC = "https://support.example-shop.com"
AISHA = "+14155550103"


@pytest.fixture
def fake() -> FakeTwilio:
    return FakeTwilio()


def server(fake: FakeTwilio, database: str, **overrides) -> TestClient:
    """The server over the seeded demo shop, texting through the fake Twilio (not started)."""
    settings = Settings(
        twilio_auth_token=fake.auth_token,
        twilio_account_sid=fake.account_sid,
        twilio_from_number="+18005550100",
        public_url=PUBLIC,
        database_url=f"sqlite:///{database}",
        admin_token="admin",
        worker_in_process=False,
        **overrides,
    )

    def providers(config, engine, demo):
        return build_providers(
            config, engine, demo, transports={"twilio": httpx.MockTransport(fake)}
        )

    app = create_app(
        settings, Engines(FakeTranscriber(), FakeSynthesizer()), make_providers=providers
    )
    seed(app.state.runtime.engine)
    return TestClient(app)


@pytest.fixture
def client(tmp_path, fake):
    with server(fake, tmp_path / "s.db") as c:
        yield c


def text(client, body: str, sid: str, sender: str = AISHA, signed: bool = True):
    to = "whatsapp:+18005550100" if sender.startswith("whatsapp:") else "+18005550100"
    form = {"MessageSid": sid, "From": sender, "To": to, "Body": body}
    headers = {}
    if signed:
        headers["X-Twilio-Signature"] = twilio.compute_signature(
            client.app.state.settings.twilio_auth_token.get_secret_value(),
            PUBLIC + "/twilio/sms",
            form,
        )
    return client.post("/twilio/sms", data=form, headers=headers)


def deliver(client) -> None:
    """Run the outbox worker once over what is due (the real deliverers, the fake Twilio)."""
    import asyncio

    from integrations.worker import Worker, deliverers_from

    shop = client.app.state.runtime
    worker = Worker(shop.store.outbox, deliverers_from(shop.providers, shop.engine))
    while asyncio.run(worker.run_once()):
        pass


def test_an_unsigned_or_badly_signed_message_gets_403_and_is_not_recorded(client):
    assert text(client, "STOP", "SM1", signed=False).status_code == 403
    form = {"MessageSid": "SM1", "From": AISHA, "Body": "STOP"}
    bad = client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": "AAAA"})
    assert bad.status_code == 403
    assert client.app.state.texts.message("SM1") is None


def test_stop_then_nothing_more_is_texted_help_and_start(client, fake):
    # A retried webhook is the same message: one confirmation.
    assert text(client, "Stop.", "SM1").status_code == 200
    assert text(client, "Stop.", "SM1").status_code == 200
    deliver(client)
    assert len(fake.messages) == 1 and "unsubscribed" in fake.messages[0]["body"]
    outbound = OutboundStore(client.app.state.runtime.engine)
    assert outbound.dnc_reason(AISHA) == OPT_OUT_REASON

    # Opted out: HELP and questions get nothing, and nor does an alert.
    text(client, "help", "SM2")
    from integrations.outbox import OutboxMessenger
    from integrations.store import CallEvents

    shop = client.app.state.runtime
    alert = OutboxMessenger(CallEvents(shop.store, None))
    import asyncio

    asyncio.run(
        alert.send_sms(AISHA, "Northwind Goods: your order 1006 missed delivery.",
                       idempotency_key="1006:failed_attempt:x")
    )  # fmt: skip
    deliver(client)
    assert len(fake.messages) == 1
    dead = shop.store.outbox.by_key("sms:1006:failed_attempt:x")
    assert dead.status == "dead" and dead.error_code == "opted_out"

    text(client, "START", "SM3")
    deliver(client)
    assert "subscribed to texts again" in fake.messages[-1]["body"]
    assert not outbound.dnc_contains(AISHA)
    text(client, "HELP", "SM4")
    deliver(client)
    help_text = fake.messages[-1]["body"]
    assert "Northwind Goods" in help_text and "Reply STOP to opt out" in help_text
    assert len(fake.messages) == 3


MARIA = "+14155550101"


def test_a_conversation_by_text_is_answered_stored_and_resumed(client, fake):
    text(client, "hi, um, where's my order?", "SM10", sender=MARIA)
    text(client, "hi, um, where's my order?", "SM10", sender=MARIA)  # Twilio's retry
    deliver(client)
    (first,) = fake.messages
    assert first["to"] == MARIA and "linen shirt" in first["body"]
    conversation = client.app.state.texts.message("SM10").conversation
    text(client, "yes please", "SM11", sender=MARIA)
    deliver(client)
    bodies = [m["body"] for m in fake.messages]
    # On a screen the tracking link is in the reply itself, not texted beside it.
    assert len(bodies) == 2 and "ups.com/track" in bodies[1].lower()
    assert client.app.state.texts.message("SM11").conversation == conversation
    call = client.app.state.store.call(conversation)
    assert call["channel"] == "sms"
    assert [t["role"] for t in call["turns"]] == ["caller", "agent", "caller", "agent"]
    types = [e["type"] for e in call["events"]]
    assert "call.started" in types and "order.looked_up" in types and "sms.sent" in types
    assert any(e["type"] == "sms.sent" and e["data"].get("in_reply") for e in call["events"])


def test_after_the_quiet_timeout_the_next_message_starts_a_new_conversation(client, fake):
    from datetime import timedelta

    texts = client.app.state.texts
    text(client, "where's my order?", "SM20", sender=MARIA)
    first = texts.message("SM20").conversation
    text(client, "hmm ok", "SM21", sender=MARIA)
    assert texts.message("SM21").conversation == first
    later = texts.clock() + timedelta(hours=25)
    texts.clock = lambda: later
    text(client, "where's my order now?", "SM22", sender=MARIA)
    second = texts.message("SM22").conversation
    assert second != first
    assert client.app.state.store.call(first)["end_reason"] == "quiet"


def test_after_a_restart_the_conversation_starts_over_and_says_so(tmp_path, fake):
    with server(fake, tmp_path / "r.db") as before:
        text(before, "where's my order?", "SM30", sender=MARIA)
        first = before.app.state.texts.message("SM30").conversation
    with server(fake, tmp_path / "r.db") as after:
        text(after, "yes please", "SM31", sender=MARIA)
        deliver(after)
        assert after.app.state.texts.message("SM31").conversation != first
        assert sum("start again" in m["body"] for m in fake.messages) == 1
        assert after.app.state.store.call(first)["end_reason"] == "restarted"


def test_a_flood_from_one_number_gets_one_polite_reply(client, fake):
    texts = client.app.state.texts
    for n in range(14):
        text(client, f"hello?? {n}", f"SM4{n:02d}", sender=MARIA)
    deliver(client)
    statuses = [texts.message(f"SM4{n:02d}").status for n in range(14)]
    assert statuses[10] == "rate_noticed"
    assert statuses[11:] == ["rate_limited"] * 3
    notices = [m for m in fake.messages if "pause replies" in m["body"]]
    assert len(notices) == 1
    assert len(fake.messages) == 11  # ten answers, one notice
    text(client, "STOP", "SM499", sender=MARIA)  # an opt-out is honoured even in a flood
    assert texts.opted_out(MARIA)


def test_a_stop_in_the_middle_of_a_conversation_ends_it(client, fake):
    text(client, "where's my order?", "SM40", sender=MARIA)
    conversation = client.app.state.texts.message("SM40").conversation
    text(client, "Stop.", "SM41", sender=MARIA)
    call = client.app.state.store.call(conversation)
    assert call["end_reason"] == "opted_out" and call["status"] == "completed"
    text(client, "hello?", "SM42", sender=MARIA)  # opted out: not answered, not a new talk
    assert client.app.state.texts.message("SM42").status == "opted_out"


def mms(client, sid: str, sender: str, media: list[tuple[str, str]], body: str = ""):
    form = {"MessageSid": sid, "From": sender, "To": "+18005550100", "Body": body}
    form["NumMedia"] = str(len(media))
    for i, (url, kind) in enumerate(media):
        form[f"MediaUrl{i}"], form[f"MediaContentType{i}"] = url, kind
    token = client.app.state.settings.twilio_auth_token.get_secret_value()
    signature = twilio.compute_signature(token, PUBLIC + "/twilio/sms", form)
    return client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})


def photo_jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), (180, 20, 20)).save(out, "JPEG")
    return out.getvalue()


def test_photos_sent_by_mms_to_a_waiting_request_arrange_the_replacement(client, fake):
    app = client.app
    request = open_photo_request(client)
    fetched: list[str] = []

    def media(request: httpx.Request) -> httpx.Response:  # Twilio's media URL, authenticated
        fetched.append(request.url.host)
        if "Authorization" not in request.headers:
            return httpx.Response(401)
        return httpx.Response(200, content=photo_jpeg(), headers={"Content-Type": "image/jpeg"})

    app.state.photos._media_transport = httpx.MockTransport(media)
    url = f"https://api.twilio.com/2010-04-01/Accounts/{fake.account_sid}/Messages/MM1/Media/ME1"
    assert mms(client, "MM1", LENA, [(url, "image/jpeg")]).status_code == 200
    mms(client, "MM1", LENA, [(url, "image/jpeg")])  # Twilio's retry: nothing twice
    deliver(client)
    assert fetched == ["api.twilio.com"]
    replies = [m["body"] for m in fake.messages if m["to"] == LENA]
    assert len(replies) == 1
    assert replies[0].startswith("Thanks, we've got your photos")
    assert app.state.photos.photos_of_tickets([request.ticket_id])  # kept, for the ticket


def test_a_photo_nobody_asked_for_is_answered_with_how_to_go_on(client, fake):
    url = f"https://api.twilio.com/2010-04-01/Accounts/{fake.account_sid}/Messages/MM2/Media/ME2"
    assert mms(client, "MM2", MARIA, [(url, "image/jpeg")]).status_code == 200
    deliver(client)
    [answer] = [m["body"] for m in fake.messages if m["to"] == MARIA]
    assert "tell us your order number and what happened" in answer


def alert_aisha(client) -> None:
    """The failed-delivery alert for Aisha's order 1006, texted as `voice.outbound` texts it."""
    from integrations.outbox import OutboxMessenger
    from integrations.store import CallEvents

    app = client.app
    key = "1006:failed_attempt:scan-1"
    assert OutboundStore(app.state.runtime.engine).alert_once(key, "1006", "failed_attempt", "sms")
    body = "Northwind Goods: we couldn't deliver order 1006. Reply or call us to reschedule."
    messenger = OutboxMessenger(CallEvents(app.state.store, None))
    client.portal.call(lambda: messenger.send_sms(AISHA, body, idempotency_key=key))


def replies_to(fake, phone: str) -> list[str]:
    return [m["body"] for m in fake.messages if m["to"] == phone]


def test_a_reply_to_an_alert_reschedules_that_order_behind_the_second_factor(client, fake):
    alert_aisha(client)
    deliver(client)
    assert len(replies_to(fake, AISHA)) == 1
    said = []
    for n, body in enumerate(["yes, Friday works", "60614", "yes please", "no thanks"]):
        text(client, body, f"SM5{n}")
        deliver(client)
        said.append(replies_to(fake, AISHA)[-1])
    assert "desk lamp" in said[0] and "ZIP code" in said[0]  # that order, the second factor first
    assert "Fri 11 Dec" in said[1] and said[1].endswith("Shall I go ahead?")  # asked, not done
    assert said[2].startswith("Done.")
    conversation = client.app.state.texts.message("SM50").conversation
    call = client.app.state.store.call(conversation)
    types = [e["type"] for e in call["events"]]
    assert "text.alert_reply" in types
    assert call["turns"][0]["text"] == "yes, Friday works"  # what was typed, not the topic
    assert "delivery.rescheduled" in types


def test_only_a_reply_that_asks_for_nothing_else_is_read_as_about_the_alert():
    from voice.sms_routes import about_alert

    heard = about_alert("yes, Friday works", "1006", "failed_attempt")
    assert heard == "About order 1006. I'd like to reschedule the delivery. yes, Friday works"
    assert about_alert("1", "1006", "delayed").startswith("About order 1006. Where is my order?")
    for own in ("where's my refund for order 1003?", "I want to return the lamp", "no thanks"):
        assert about_alert(own, "1006", "failed_attempt") == own


def test_a_conversation_on_whatsapp_is_answered_on_whatsapp_from_the_shops_sender(tmp_path, fake):
    wa_maria = "whatsapp:" + MARIA
    fake.whatsapp_open.add(MARIA)  # she just wrote: Twilio's window is open
    with server(fake, tmp_path / "w.db", twilio_whatsapp_number="+18005550177") as client:
        text(client, "hi where's my order", "SMW1", sender=wa_maria)
        deliver(client)
        (reply,) = fake.messages
        assert (reply["to"], reply["from"]) == (wa_maria, "whatsapp:+18005550177")
        assert "linen shirt" in reply["body"]
        text(client, "STOP", "SMW2", sender=wa_maria)  # opts the number out, on any channel
        deliver(client)
        text(client, "hello?", "SMW3", sender=MARIA)
        deliver(client)
        conversation = client.app.state.texts.message("SMW1").conversation
        call = client.app.state.store.call(conversation)
    assert call["channel"] == "whatsapp" and call["from_number"] == MARIA
    assert [m["to"] for m in fake.messages] == [wa_maria, wa_maria]  # nothing after STOP


def test_without_a_whatsapp_sender_the_reply_is_dead_lettered_with_the_reason(client, fake):
    text(client, "where's my order", "SMW9", sender="whatsapp:" + MARIA)
    deliver(client)
    assert fake.messages == []  # Twilio would refuse a WhatsApp text from no sender
    (row,) = client.app.state.store.outbox.items(kind="sms")
    assert row.status == "dead" and row.error_code == "whatsapp_off"  # on the dashboard
    assert client.app.state.texts.message("SMW9").status == "answered"


def test_messages_a_crash_left_unanswered_are_answered_at_the_next_start(tmp_path, fake):
    import time
    from datetime import timedelta

    from integrations.messaging import Address
    from integrations.outbox import OutboxMessenger
    from integrations.store import CallEvents

    james = "+14155550102"
    with server(fake, tmp_path / "c.db") as before:
        text(before, "where's my order?", "SM60", sender=MARIA)
        deliver(before)
        texts, app = before.app.state.texts, before.app
        # The process dies after recording each of these and before answering it:
        texts.receive("SM61", Address(MARIA, "sms"), "is it coming today?", 0)
        texts.receive("SM62", Address(AISHA, "whatsapp"), "hi", 0)  # its reply was queued
        messenger = OutboxMessenger(CallEvents(app.state.store, None))
        before.portal.call(
            lambda: messenger.send_sms("whatsapp:" + AISHA, "Hello!", idempotency_key="reply:SM62")
        )
        old = texts.clock() - timedelta(hours=30)
        texts.clock, now = (lambda: old), texts.clock
        texts.receive("SM63", Address(james, "sms"), "where is it", 0)
        texts.clock = now
    assert len(fake.messages) == 1
    with server(fake, tmp_path / "c.db", twilio_whatsapp_number="+18005550177") as after:
        texts = after.app.state.texts
        deadline = time.monotonic() + 10
        while texts.unanswered() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [texts.message(s).status for s in ("SM61", "SM62", "SM63")] == [
            "answered", "answered", "expired",
        ]  # fmt: skip
        fake.whatsapp_open.add(AISHA)
        deliver(after)
        text(after, "is it coming today?", "SM61", sender=MARIA)  # Twilio's retry, too late
        deliver(after)
    to_maria = replies_to(fake, MARIA)
    assert len(to_maria) == 2 and "start again" in to_maria[1]  # the conversation was lost
    assert replies_to(fake, "whatsapp:" + AISHA) == ["Hello!"]  # the queued reply, once
    assert replies_to(fake, james) == []  # a day and more late: not answered out of the blue


def test_a_whole_return_by_text_behind_the_second_factor_with_the_label_texted_once(client, fake):
    james = "+14155550102"  # wireless earbuds, order 1003, ZIP 10001
    said = []
    for n, body in enumerate(
        [
            "hi i want to return my wireless earbuds",
            "10001",
            "one of them doesnt charge anymore",
            "just my money back",
            "yes",
        ]
    ):
        text(client, body, f"SMR{n}", sender=james)
        deliver(client)
        said.append(replies_to(fake, james)[-1])
    assert "ZIP code" in said[0]  # nothing about the order before the second factor
    assert said[1].endswith("reason for the return?")
    assert "$89.00" in said[3] and said[3].endswith("Shall I go ahead?")  # asked, not done
    conversation = client.app.state.texts.message("SMR0").conversation
    types = [e["type"] for e in client.app.state.store.call(conversation)["events"]]
    assert "return.created" not in types[: types.index("caller.verified")]
    assert types.count("return.created") == 1 and types.count("return.label_created") == 1
    replies = replies_to(fake, james)
    after_yes = replies[replies.index(said[3]) + 1 :]  # the reply and the label, in either order
    assert len(after_yes) == 2
    assert sum(r.startswith("Done. Your return number is RMA-") for r in after_yes) == 1
    (label,) = [r for r in replies if "return label for RMA-" in r]  # one text, after the yes
    assert "/labels/RMA-" in label and label in after_yes
    text(client, "yes", "SMR4", sender=james)  # Twilio's retry of the yes: nothing again
    deliver(client)
    assert replies_to(fake, james) == replies


def test_after_a_handoff_a_message_goes_with_that_case_and_a_new_request_starts_anew(client, fake):
    text(client, "my trail shoes came with the sole ripped", "SMH1", sender=MARIA)
    deliver(client)
    handed = client.app.state.texts.message("SMH1").conversation
    call = client.app.state.store.call(handed)
    assert call["end_reason"] == "transfer"
    (ticket,) = [e["data"]["ticket_id"] for e in call["events"] if e["type"] == "ticket.created"]
    text(client, "94110", "SMH2", sender=MARIA)
    deliver(client)
    assert f"added that to your case ({ticket})" in replies_to(fake, MARIA)[-1]
    call = client.app.state.store.call(handed)
    assert [t["text"] for t in call["turns"]][-2] == "94110"  # kept with the case
    assert [e["type"] for e in call["events"]].count("ticket.created") == 1
    text(client, "where's my order?", "SMH3", sender=MARIA)  # something new: a new conversation
    deliver(client)
    assert "linen shirt" in replies_to(fake, MARIA)[-1]
    assert client.app.state.texts.message("SMH3").conversation != handed
