"""Texts through the real Twilio SDK against a fake Twilio: once per key, never twice."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from integrations.protocols import Messenger, ProviderError
from integrations.twilio_sms import TwilioSms, record_sms_status, twilio_sms_status
from tests.integrations.fakes_http import FakeTwilio, Flaky

SHOP = "+18005550100"
MARIA = "+14155550101"
BODY = "Your Northwind Goods order 1001: track it at https://www.ups.com/track?tracknum=1Z999"


async def _no_sleep(_seconds: float) -> None:
    return None


def engine():
    return create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )


def sms(fake: FakeTwilio, handler=None, db=None) -> TwilioSms:
    client = TwilioSms(
        fake.account_sid,
        fake.auth_token,
        SHOP,
        db or engine(),
        status_callback_url="https://shop.example.com/twilio/sms-status",
        transport=httpx.MockTransport(handler or fake),
        sleep=_no_sleep,
        clock=lambda: datetime(2025, 3, 3, 10, 0, tzinfo=UTC),
    )
    client.create_all()
    return client


class LostAnswer:
    """Twilio gets the first POST and queues the text, but its answer never arrives."""

    def __init__(self, twilio: FakeTwilio) -> None:
        self.twilio = twilio
        self.lose_next = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self.twilio(request)
        if request.method == "POST" and self.lose_next:
            self.lose_next = False
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.fixture
def twilio() -> FakeTwilio:
    return FakeTwilio()


async def test_a_text_is_sent_with_a_status_callback(twilio: FakeTwilio):
    messenger = sms(twilio)
    assert isinstance(messenger, Messenger)
    sid = await messenger.send_sms(MARIA, BODY, idempotency_key="call-1:sms:tracking")
    assert sid.startswith("SM")
    (sent,) = twilio.messages
    assert (sent["to"], sent["from"], sent["body"]) == (MARIA, SHOP, BODY)
    assert sent["status_callback"] == "https://shop.example.com/twilio/sms-status"
    await messenger.aclose()


async def test_the_same_key_never_texts_twice(twilio: FakeTwilio):
    messenger = sms(twilio)
    first = await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    again = await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    assert again == first
    assert twilio.posts == 1
    other = await messenger.send_sms(MARIA, BODY, idempotency_key="k-2")
    assert other != first
    await messenger.aclose()


async def test_a_send_that_never_left_is_retried_at_once(twilio: FakeTwilio):
    flaky = Flaky(twilio, failures=1, error=httpx.ConnectError)
    messenger = sms(twilio, flaky)
    sid = await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    assert sid.startswith("SM")
    assert twilio.posts == 1
    await messenger.aclose()


async def test_a_send_whose_answer_was_lost_is_not_repeated_blindly(twilio: FakeTwilio):
    db = engine()
    messenger = sms(twilio, LostAnswer(twilio), db)
    with pytest.raises(ProviderError) as raised:
        await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    assert raised.value.code == "timeout"
    assert raised.value.retryable
    assert twilio.posts == 1  # not retried within the call

    # The outbox tries again with the same key: the text already sent is found, not resent.
    sid = await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    assert sid == twilio.messages[0]["sid"]
    assert twilio.posts == 1
    await messenger.aclose()


async def test_an_attempt_that_provably_failed_is_sent_on_retry(twilio: FakeTwilio):
    flaky = Flaky(twilio, failures=10, error=httpx.ConnectError)
    db = engine()
    messenger = sms(twilio, flaky, db)
    with pytest.raises(ProviderError) as raised:
        await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    assert raised.value.retryable
    await messenger.aclose()
    recovered = sms(twilio, db=db)
    sid = await recovered.send_sms(MARIA, BODY, idempotency_key="k-1")
    assert sid == twilio.messages[0]["sid"]
    assert twilio.posts == 1
    await recovered.aclose()


async def test_twilios_refusal_is_final_and_remembered(twilio: FakeTwilio):
    twilio.refuse_with = (400, 21610, "Attempt to send to unsubscribed recipient")
    messenger = sms(twilio)
    for _ in range(2):
        with pytest.raises(ProviderError) as raised:
            await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
        assert raised.value.code == "twilio_21610"
        assert not raised.value.retryable
    assert twilio.posts == 1
    await messenger.aclose()


async def test_rate_limiting_is_retried_then_reported_retryable(twilio: FakeTwilio):
    flaky = Flaky(twilio, failures=1, error=429)
    messenger = sms(twilio, flaky)
    assert (await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")).startswith("SM")
    await messenger.aclose()


async def test_bad_input_never_reaches_twilio(twilio: FakeTwilio):
    messenger = sms(twilio)
    for to, body, key in [
        ("415-555-0101", BODY, "k"),
        (MARIA, "   ", "k"),
        (MARIA, "x" * 1601, "k"),
        (MARIA, BODY, ""),
    ]:
        with pytest.raises(ValueError):
            await messenger.send_sms(to, body, idempotency_key=key)
    assert twilio.posts == 0
    await messenger.aclose()


async def test_status_callbacks_are_recorded_and_move_the_text_on(twilio: FakeTwilio):
    db = engine()
    messenger = sms(twilio, db=db)
    sid = await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": twilio.account_sid,
        "From": SHOP,
        "To": MARIA,
        "MessageStatus": "undelivered",
        "SmsStatus": "undelivered",
        "ErrorCode": "30003",
        "ApiVersion": "2010-04-01",
    }
    status = await messenger.record_status(form)
    assert (status.message_sid, status.status, status.error_code) == (sid, "undelivered", "30003")
    assert record_sms_status(db, {"Foo": "bar"}) is None
    with db.connect() as conn:
        rows = conn.execute(select(twilio_sms_status)).mappings().all()
    assert [r["status"] for r in rows] == ["undelivered"]
    assert rows[0]["payload"]["To"] == MARIA
    await messenger.aclose()


async def test_the_request_is_what_twilio_documents(twilio: FakeTwilio):
    seen: list[httpx.Request] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return twilio(request)

    messenger = sms(twilio, spy)
    await messenger.send_sms(MARIA, BODY, idempotency_key="k-1")
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    form = parse_qs(request.content.decode())
    assert form["To"] == [MARIA]
    assert form["From"] == [SHOP]
    await messenger.aclose()


# --- WhatsApp ---------------------------------------------------------------------------------

WA_SHOP = "+18005550177"
WA_MARIA = "whatsapp:" + MARIA
TEMPLATE = "HX" + "7" * 32
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def whatsapp(fake: FakeTwilio, handler=None, db=None, template: str = "") -> TwilioSms:
    client = TwilioSms(
        fake.account_sid,
        fake.auth_token,
        SHOP,
        db or engine(),
        whatsapp_from=WA_SHOP,
        whatsapp_template=template,
        transport=httpx.MockTransport(handler or fake),
        sleep=_no_sleep,
        clock=lambda: NOW,
    )
    client.create_all()
    return client


def maria_wrote(messenger: TwilioSms, hours_ago: float, sid: str = "SMin1") -> None:
    """Maria's last WhatsApp message to the shop, `hours_ago` before now (the window's start)."""
    from datetime import timedelta

    from integrations.messaging import Address, MessagingStore

    store = MessagingStore(messenger.engine, lambda: NOW - timedelta(hours=hours_ago))
    store.receive(sid, Address(MARIA, "whatsapp"), "hi", 0)


async def test_within_the_window_a_whatsapp_text_goes_from_the_whatsapp_sender(twilio):
    twilio.whatsapp_open.add(MARIA)
    messenger = whatsapp(twilio)
    maria_wrote(messenger, hours_ago=23)
    await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
    (sent,) = twilio.messages
    assert (sent["to"], sent["from"], sent["body"]) == (WA_MARIA, "whatsapp:" + WA_SHOP, BODY)
    await messenger.aclose()


async def test_outside_the_window_the_approved_template_carries_the_message(twilio):
    twilio.templates[TEMPLATE] = "An update from Northwind Goods: {{1}}"
    messenger = whatsapp(twilio, template=TEMPLATE)
    maria_wrote(messenger, hours_ago=25)
    await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
    (sent,) = twilio.messages  # free-form would have been refused (63016) by Twilio
    assert sent["to"] == WA_MARIA and sent["body"] == "An update from Northwind Goods: " + BODY
    await messenger.aclose()


async def test_outside_the_window_without_a_template_it_goes_by_sms_and_stays_there(twilio):
    db = engine()
    messenger = whatsapp(twilio, LostAnswer(twilio), db)  # Maria never wrote on WhatsApp
    with pytest.raises(ProviderError):
        await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
    (sent,) = twilio.messages
    assert (sent["to"], sent["from"]) == (MARIA, SHOP)
    # Maria writes on WhatsApp meanwhile; the retry finds the SMS instead of sending on WhatsApp.
    twilio.whatsapp_open.add(MARIA)
    maria_wrote(messenger, hours_ago=0)
    assert await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1") == sent["sid"]
    assert twilio.posts == 1
    await messenger.aclose()


async def test_when_twilio_says_the_window_closed_the_fallback_is_taken_at_once(twilio):
    twilio.templates[TEMPLATE] = "Northwind Goods: {{1}}"
    messenger = whatsapp(twilio, template=TEMPLATE)
    maria_wrote(messenger, hours_ago=1)  # we saw her message; Twilio's window disagrees
    await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
    (sent,) = twilio.messages
    assert twilio.posts == 2 and sent["body"] == "Northwind Goods: " + BODY
    await messenger.aclose()


async def test_a_template_text_whose_answer_was_lost_is_found_by_the_message_it_carries(twilio):
    twilio.templates[TEMPLATE] = "Northwind Goods: {{1}}"
    messenger = whatsapp(twilio, LostAnswer(twilio), template=TEMPLATE)
    with pytest.raises(ProviderError):
        await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
    assert (
        await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
        == (twilio.messages[0]["sid"])
    )
    assert twilio.posts == 1
    await messenger.aclose()


async def test_whatsapp_without_a_sender_or_to_an_opted_out_number_sends_nothing(twilio):
    from integrations.messaging import MessagingStore

    plain = sms(twilio)
    with pytest.raises(ProviderError) as raised:
        await plain.send_sms(WA_MARIA, BODY, idempotency_key="k-1")
    assert raised.value.code == "whatsapp_off" and not raised.value.retryable
    messenger = whatsapp(twilio)
    maria_wrote(messenger, hours_ago=1)
    MessagingStore(messenger.engine).opt_out(MARIA, "STOP")  # she replied STOP by SMS
    with pytest.raises(ProviderError) as raised:
        await messenger.send_sms(WA_MARIA, BODY, idempotency_key="k-2")
    assert raised.value.code == "opted_out"
    for bad in ("whatsapp:415-555-0101", "WhatsApp:" + MARIA, "whatsapp: " + MARIA):
        with pytest.raises(ValueError):
            await messenger.send_sms(bad, BODY, idempotency_key="k-3")
    assert twilio.posts == 0
    await plain.aclose()
    await messenger.aclose()
