"""Opt-outs by text: shared with the do-not-call list, and enforced on every text Twilio sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from integrations.messaging import (
    OPT_OUT_REASON,
    MessagingStore,
    create_all,
    keyword_of,
    parse_address,
)
from integrations.outbound import OutboundStore
from integrations.protocols import ProviderError
from integrations.twilio_sms import TwilioSms
from tests.integrations.fakes_http import FakeTwilio
from tests.integrations.test_twilio_sms import SHOP, _no_sleep, engine

MARIA = "+14155550101"
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def sms(fake: FakeTwilio, db) -> TwilioSms:
    client = TwilioSms(
        fake.account_sid,
        fake.auth_token,
        SHOP,
        db,
        transport=httpx.MockTransport(fake),
        sleep=_no_sleep,
        clock=lambda: NOW,
    )
    client.create_all()
    return client


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", "stop"),
        (" stop. ", "stop"),
        ("Unsubscribe!!", "stop"),
        ("quit", "stop"),
        ("StopAll", "stop"),
        ("start", "start"),
        ("UNSTOP", "start"),
        ("help?", "help"),
        ("Info", "help"),
        ("stop sending me these", None),
        ("can I cancel my order", None),
        ("yes", None),
    ],
)
def test_a_keyword_counts_only_as_the_whole_message(body, keyword):
    assert keyword_of(body) == keyword


def test_addresses_are_numbers_or_whatsapp_numbers():
    assert parse_address("+14155550101").twilio == MARIA
    wa = parse_address("whatsapp:+14155550101")
    assert (wa.phone, wa.channel, wa.twilio) == (MARIA, "whatsapp", "whatsapp:" + MARIA)
    assert parse_address("not a number") is None


def test_an_opt_out_is_on_the_do_not_call_list_and_start_removes_only_its_own_entry():
    db = engine()
    create_all(db)
    store, dnc = MessagingStore(db, lambda: NOW), OutboundStore(db, lambda: NOW)
    assert store.opt_out(MARIA, "STOP", confirmation_key="reply:SM1")
    assert store.opted_out(MARIA) and dnc.dnc_contains(MARIA)
    assert dnc.dnc_reason(MARIA) == OPT_OUT_REASON
    assert store.opt_in(MARIA)
    assert not store.opted_out(MARIA) and not dnc.dnc_contains(MARIA)

    # A number the shop keeps off its calls for another reason stays off after START.
    dnc.dnc_add(MARIA, "asked on a call not to be called")
    store.opt_out(MARIA, "STOP")
    store.opt_in(MARIA)
    assert not store.opted_out(MARIA) and dnc.dnc_contains(MARIA)


async def test_nothing_is_texted_to_a_number_that_opted_out_but_its_confirmation():
    twilio, db = FakeTwilio(), engine()
    messenger = sms(twilio, db)
    MessagingStore(db, lambda: NOW).opt_out(MARIA, "STOP", confirmation_key="reply:SM1")
    await messenger.send_sms(MARIA, "You're unsubscribed.", idempotency_key="sms:reply:SM1")
    with pytest.raises(ProviderError) as raised:
        await messenger.send_sms(
            MARIA, "Northwind Goods: your order 1006 missed its delivery.", idempotency_key="a:1"
        )
    assert raised.value.code == "opted_out" and not raised.value.retryable
    assert [m["body"] for m in twilio.messages] == ["You're unsubscribed."]
    await messenger.aclose()


async def test_twilio_error_21610_is_an_opt_out():
    twilio, db = FakeTwilio(), engine()
    twilio.refuse_with = (400, 21610, "Attempt to send to unsubscribed recipient")
    messenger = sms(twilio, db)
    with pytest.raises(ProviderError):
        await messenger.send_sms(MARIA, "Your label: https://x", idempotency_key="k-1")
    assert MessagingStore(db).opted_out(MARIA)
    assert OutboundStore(db).dnc_contains(MARIA)
    twilio.refuse_with = None
    with pytest.raises(ProviderError) as raised:
        await messenger.send_sms(MARIA, "Tracking: https://y", idempotency_key="k-2")
    assert raised.value.code == "opted_out"
    assert twilio.posts == 1
    await messenger.aclose()


def test_a_retried_webhook_is_the_same_message():
    db = engine()
    create_all(db)
    store = MessagingStore(db, lambda: NOW)
    first, fresh = store.receive("SM1", parse_address(MARIA), "where is it now?", 0)
    assert fresh and first.status == "received"
    store.settle("SM1", "answered", conversation="TX1", reply_segments=1)
    again, fresh = store.receive("SM1", parse_address(MARIA), "where is it now?", 0)
    assert not fresh and again.status == "answered"
    assert store.received_since(MARIA, NOW - timedelta(seconds=60)) == 1


def test_the_whatsapp_session_is_24_hours_from_the_last_inbound_message():
    db = engine()
    create_all(db)
    store = MessagingStore(db, lambda: NOW)
    assert not store.session_open(MARIA)
    store.receive("SM1", parse_address("whatsapp:" + MARIA), "hi", 0)
    assert store.session_open(MARIA, NOW + timedelta(hours=23))
    assert not store.session_open(MARIA, NOW + timedelta(hours=25))
