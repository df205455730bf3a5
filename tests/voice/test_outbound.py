"""Outbound calls: placing them through the twilio SDK against a fake Twilio, the dialing
policy (quiet hours, do-not-call, per-customer limit, retries), voicemail, exception alerts
once, and the callee speaking first on the media stream."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from integrations.demo import seed
from tests.fakes import EchoAgent, FakeSocket, FakeSynthesizer, FakeTranscriber
from tests.voice.test_call import until
from voice import twilio
from voice.call import CallDeps, CallSession
from voice.outbound import (
    TwilioCalls,
    dialer_for,
    parse_quiet_hours,
    scheduler_for,
    zone_for_zip,
)
from voice.services import build_shop
from voice.settings import Settings

SEEDED = date(2025, 3, 3)
AFTERNOON = datetime(2025, 3, 3, 18, 0, tzinfo=UTC)  # 13:00 in Boston, 10:00 in San Francisco
LENA = "+14155550105"
ACCOUNT = "AC" + "1" * 32


class FakeTwilioCalls:
    """Twilio's Calls resource as documented: create (POST Calls.json) and update a live call."""

    def __init__(self) -> None:
        self.created: list[dict[str, str]] = []
        self.updated: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert path.startswith(f"/2010-04-01/Accounts/{ACCOUNT}/Calls")
        if path.endswith("/Calls.json"):
            sid = f"CA{len(self.created) + 1:032d}"
            self.created.append(form)
            return httpx.Response(201, json=self._call(sid, form["To"], "queued"))
        sid = path.rsplit("/", 1)[1].removesuffix(".json")
        self.updated.append((sid, form))
        return httpx.Response(200, json=self._call(sid, LENA, "in-progress"))

    @staticmethod
    def _call(sid: str, to: str, status: str) -> dict:
        return {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": to,
            "from": "+18005550100",
            "status": status,
            "direction": "outbound-api",
            "uri": f"/Calls/{sid}.json",
        }


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/shop.db", public_url="https://shop.example.com"
    )
    shop = build_shop(settings)
    seed(shop.engine, SEEDED)
    fake = FakeTwilioCalls()
    clock = Clock(AFTERNOON)
    calls = TwilioCalls(ACCOUNT, "secret", transport=httpx.MockTransport(fake))
    dialer = dialer_for(shop, calls=calls, clock=clock)
    yield shop, dialer, fake, clock
    shop.engine.dispose()


def sms_to(shop, number: str) -> list[dict]:
    return [
        i["payload"]
        for i in shop.store.outbox_items(None)
        if i["kind"] == "sms" and i["payload"]["to"] == number
    ]


async def test_a_call_is_placed_with_our_twiml_url_status_callback_and_async_amd(world):
    _shop, dialer, fake, _ = world
    attempt = await dialer.request("1009")
    assert attempt.status == "placed" and attempt.call_sid
    (sent,) = fake.created
    assert sent["To"] == LENA and sent["From"] == "+18005550100"
    url = urlsplit(sent["Url"])
    assert url.path == "/twilio/voice"
    assert parse_qs(url.query) == {"purpose": ["delivery_confirmation"], "order": ["1009"]}
    assert sent["StatusCallback"] == "https://shop.example.com/twilio/status"
    assert sent["MachineDetection"] == "DetectMessageEnd" and sent["AsyncAmd"] == "true"
    assert sent["AsyncAmdStatusCallback"] == "https://shop.example.com/twilio/amd"


async def test_an_answered_call_is_recorded_with_its_score(world):
    shop, dialer, _, _ = world
    attempt = await dialer.request("1009")
    shop.store.upsert_call(attempt.call_sid, direction="outbound", order_ref="1009")
    shop.store.add_event(attempt.call_sid, "csat.recorded", "1009", {"score": 5}, 0)
    await dialer.on_amd(attempt.call_sid, "human")
    await dialer.on_status(attempt.call_sid, "in-progress")
    done = await dialer.on_status(attempt.call_sid, "completed")
    assert done.status == "completed" and done.answered_by == "human"
    assert done.result["rating"] == 5
    assert sms_to(shop, LENA) == []


async def test_a_voicemail_gets_a_short_message_and_a_text_instead(world):
    shop, dialer, fake, _ = world
    attempt = await dialer.request("1009")
    after = await dialer.on_amd(attempt.call_sid, "machine_end_beep")
    assert after.status == "voicemail"
    ((sid, form),) = fake.updated
    assert sid == attempt.call_sid
    assert "<Say>" in form["Twiml"] and form["Twiml"].endswith("<Hangup/></Response>")
    assert "Northwind Goods" in form["Twiml"] and "vase" not in form["Twiml"].lower()
    (text,) = sms_to(shop, LENA)
    assert "1009" in text["body"]
    await dialer.on_status(attempt.call_sid, "completed")  # the machine hangs up later
    assert dialer.outbound.get(attempt.id).status == "voicemail"


async def test_no_answer_is_retried_after_a_backoff_up_to_the_limit(world):
    _, dialer, fake, clock = world
    attempt = await dialer.request("1009")
    await dialer.on_status(attempt.call_sid, "no-answer")
    clock.now += timedelta(minutes=10)
    assert await dialer.place_due() == []  # the backoff (30 min) has not passed
    clock.now += timedelta(minutes=25)
    (second,) = await dialer.place_due()
    assert second.attempt == 2 and second.status == "placed"
    await dialer.on_status(second.call_sid, "busy")
    clock.now += timedelta(hours=2, minutes=1)
    (third,) = await dialer.place_due()
    await dialer.on_status(third.call_sid, "no-answer")
    clock.now += timedelta(days=1)
    assert await dialer.place_due() == []
    assert len(fake.created) == 3
    statuses = [a.status for a in dialer.outbound.attempts_for("1009")]
    assert statuses == ["no_answer", "busy", "no_answer"]


async def test_quiet_hours_in_the_customers_time_zone_move_the_call(world):
    _, dialer, fake, clock = world
    clock.now = datetime(2025, 3, 4, 3, 0, tzinfo=UTC)  # 22:00 in Boston (Lena, 02139)
    attempt = await dialer.request("1009")
    assert attempt.status == "scheduled" and "quiet hours" in attempt.detail
    assert attempt.due_at == datetime(2025, 3, 4, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert fake.created == []
    clock.now = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)
    (placed,) = await dialer.place_due()
    assert placed.status == "placed" and len(fake.created) == 1


async def test_a_number_on_the_do_not_call_list_is_never_called(world):
    _, dialer, fake, _ = world
    dialer.outbound.dnc_add(LENA, "asked not to be called")
    attempt = await dialer.request("1009")
    assert attempt.status == "skipped" and "do-not-call" in attempt.detail
    assert fake.created == []


async def test_a_customer_is_called_about_one_order_per_week_at_most(world):
    _, dialer, fake, clock = world
    first = await dialer.request("1005")  # Aisha's sweater
    assert first.status == "placed"
    second = await dialer.request("1006")  # Aisha's lamp, the same afternoon
    assert second.status == "skipped" and "7 days" in second.detail
    clock.now += timedelta(days=8)
    again = await dialer.request("1006")
    assert again.status == "placed" and len(fake.created) == 2


async def test_without_twilio_nothing_pretends_to_call(world):
    shop, _, _, clock = world
    dialer = dialer_for(shop, clock=clock)
    attempt = await dialer.request("1009")
    assert attempt.status == "not_placed" and attempt.detail == "twilio not configured"


async def test_the_scheduler_books_orders_delivered_a_day_ago(world):
    shop, dialer, fake, _ = world
    done = await scheduler_for(shop, dialer).run_once()
    assert done["booked"] == 1 and done["placed"] == 1
    assert [c["To"] for c in fake.created] == [LENA]  # 1009, delivered yesterday
    again = await scheduler_for(shop, dialer).run_once()
    assert again["booked"] == 0 and len(fake.created) == 1


async def test_an_exception_alert_is_sent_once_per_exception(world):
    shop, dialer, _, _ = world
    scheduler = scheduler_for(shop, dialer)
    first = await scheduler.check_exceptions()
    assert sorted(k.split(":")[:2] for k in first) == [
        ["1006", "failed_attempt"],
        ["1007", "lost"],
        ["1008", "delayed"],
    ]
    assert await scheduler.check_exceptions() == []
    (aisha,) = sms_to(shop, "+14155550103")
    assert "1006" in aisha["body"] and "reschedule" in aisha["body"]
    assert len(sms_to(shop, "+14155550104")) == 2  # Tom: the lost machine and the held grinder


def test_time_zones_and_quiet_hours_are_read_from_plain_settings():
    assert zone_for_zip("94110").key == "America/Los_Angeles"
    assert zone_for_zip("73301").key == "America/Chicago"
    assert zone_for_zip("02139").key == "America/New_York"
    assert zone_for_zip("98101").key == "America/Los_Angeles"
    start, end = parse_quiet_hours("20:00-09:00")
    assert (start.hour, end.hour) == (20, 9)
    with pytest.raises(ValueError):
        parse_quiet_hours("evenings")


def test_the_outbound_route_needs_the_admin_token_and_says_why_nothing_rang(tmp_path):
    from tests.fakes import FakeSynthesizer as Synth
    from voice.server import Engines, create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        admin_token="adm",
        twilio_auth_token="tok",
        quiet_hours="00:00-00:00",  # none: what happens must not depend on the time of day
    )
    app = create_app(settings, Engines(FakeTranscriber(), Synth()))
    seed(app.state.runtime.engine)
    with TestClient(app) as client:
        assert client.post("/calls/outbound", json={"order": "1009"}).status_code == 401
        ok = client.post(
            "/calls/outbound", json={"order": "1009"}, headers={"Authorization": "Bearer adm"}
        )
        assert ok.status_code == 200
        (attempt,) = ok.json()["attempts"]
        assert attempt["status"] == "not_placed" and attempt["detail"] == "twilio not configured"
        bad = client.post("/calls/outbound", json={}, headers={"Authorization": "Bearer adm"})
        assert bad.status_code == 422
        # Everyone delivered in the last four days: 1005 (three days ago) and 1009 (yesterday).
        recent = client.post(
            "/calls/outbound",
            json={"delivered_since": "4d"},
            headers={"Authorization": "Bearer adm"},
        )
        assert recent.status_code == 200
        assert sorted(a["order_ref"] for a in recent.json()["attempts"]) == ["1005", "1009"]


# --- the media stream of an outbound call: the callee speaks first ---------------------------


class Outbound:
    def __init__(self, tmp_path, transcripts=None):
        self.settings = Settings(
            database_url=f"sqlite:///{tmp_path}/t.db", twilio_auth_token="tok", allow_injection=True
        )
        from integrations.store import Store, make_engine

        self.store = Store(make_engine(self.settings.database_url))
        self.store.create_all()
        self.agent, self.stt, self.tts = (
            EchoAgent(),
            FakeTranscriber(transcripts),
            FakeSynthesizer(),
        )
        self.socket = FakeSocket()
        deps = CallDeps(self.settings, self.store, self.stt, self.tts, lambda i, e: self.agent)
        self.session = CallSession(self.socket, deps)
        params = {
            "from": "+18005550100",
            "to": LENA,
            "direction": "outbound",
            "purpose": "delivery_confirmation",
            "order": "1009",
        }
        params["token"] = twilio.make_stream_token(self.settings.secret(), "CA1", params)
        self.stream = twilio.StreamParams("CA1", "MZ1", "AC1", params)
        self.ts = 0
        self.socket.incoming.put_nowait(twilio.build_connected())
        self.socket.incoming.put_nowait(twilio.build_start(self.stream))
        self.task = asyncio.create_task(self.session.run())

    def audio(self, pcm: np.ndarray) -> None:
        for i in range(len(pcm) // 160):
            frame = twilio.build_media(
                "MZ1", i + 2, i, self.ts, _mulaw(pcm[i * 160 : (i + 1) * 160])
            )
            self.socket.incoming.put_nowait(frame)
            self.ts += 20

    async def finish(self) -> None:
        self.socket.incoming.put_nowait(twilio.build_stop(self.stream, 999))
        await asyncio.wait_for(self.task, 5)


def _mulaw(pcm):
    from voice.audio import mulaw_encode

    return mulaw_encode(pcm)


def _speech(seconds: float) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) * 8000).astype(np.int16)


async def test_the_agent_greets_after_the_callees_hello_and_does_not_hear_it(tmp_path):
    from pathlib import Path

    from voice.audio import read_wav

    call = Outbound(tmp_path, transcripts=["hello"])
    await asyncio.sleep(0.05)
    assert call.tts.spoken == []  # nobody greets into a phone that has not said anything yet
    clip = read_wav(Path(__file__).parents[2] / "audio_fixtures/clips/wait_hold_on.wav")
    call.audio(np.concatenate([np.zeros(1600, np.int16), clip, np.zeros(8000, np.int16)]))
    await until(lambda: call.tts.spoken)
    assert call.tts.spoken[0] == "Hello."  # the greeting's first sentence
    await call.finish()
    assert call.agent.heard == []
    turns = call.store.call("CA1")["turns"]
    assert [t["role"] for t in turns] == ["agent"]  # "wait, hold on" was no answer to anything


async def test_a_silent_callee_is_greeted_after_a_moment(tmp_path):
    call = Outbound(tmp_path)
    call.audio(np.zeros(8000, np.int16))  # 1 s: not yet
    await asyncio.sleep(0.1)
    assert call.tts.spoken == []
    call.audio(np.zeros(8000, np.int16))  # 2 s of silence in all
    await until(lambda: call.tts.spoken)
    await call.finish()
    assert call.agent.heard == []


async def test_the_demo_orders_are_never_scheduled_when_the_merchant_has_its_own(tmp_path):
    """With Shopify configured the scheduler reads the merchant's orders, never the demo
    shop's; with no feed at all it is off."""
    from integrations.outbound import DemoShipmentFeed
    from integrations.protocols import OrderFeed
    from integrations.provider_set import close_providers
    from integrations.providers import build_providers
    from integrations.shopify import ShopifyOrderFeed

    shop = build_shop(Settings(database_url=f"sqlite:///{tmp_path}/feed.db"))
    try:
        assert isinstance(shop.order_feed(), DemoShipmentFeed)  # the demo is the shop here
        shopify = replace(
            shop.settings.provider_config(),
            shopify_shop_domain="northwind-goods",
            shopify_access_token="shpat_test",
        )
        never_called = httpx.MockTransport(lambda request: httpx.Response(500))
        shop.providers = build_providers(
            shopify, shop.engine, shop.demo, transports={"shopify": never_called}
        )
        feed = shop.order_feed()
        assert isinstance(feed, ShopifyOrderFeed) and isinstance(feed, OrderFeed)
        assert feed.orders is shop.providers.orders
        scheduler = scheduler_for(shop, dialer_for(shop))
        assert scheduler is not None and scheduler.feed is feed

        shop.providers.order_feed = None
        assert scheduler_for(shop, dialer_for(shop)) is None
    finally:
        await close_providers(shop.providers)
        shop.engine.dispose()
