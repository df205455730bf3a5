"""`postvoice doctor`: a table of what works and what to fix, for each configured provider."""

from __future__ import annotations

import httpx
import pytest

from integrations.doctor import FAIL, OK, SKIPPED, format_table, run_doctor
from integrations.providers import ProviderConfig
from tests.integrations.fakes_http import FakeEasyPost, FakeShopify, FakeTwilio, FakeZendesk
from voice.settings import Settings

PUBLIC = "https://shop.example.com"


def provider_config(**fields) -> ProviderConfig:
    """The provider settings as the entry point makes them: Settings' defaults, then `fields`."""
    return Settings(**fields).provider_config()


def stripe_fake(webhook_url: str | None = PUBLIC + "/stripe/webhook", key="sk_test_ok"):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {key}":
            return httpx.Response(
                401,
                json={
                    "error": {
                        "message": "Invalid API Key provided: sk_test_***oops",
                        "type": "invalid_request_error",
                    }
                },
            )
        if request.url.path == "/v1/balance":
            return httpx.Response(
                200,
                json={"object": "balance", "available": [{"amount": 0, "currency": "usd"}]},
            )
        if request.url.path == "/v1/webhook_endpoints":
            data = (
                [
                    {
                        "id": "we_1",
                        "object": "webhook_endpoint",
                        "url": webhook_url,
                        "status": "enabled",
                    }
                ]
                if webhook_url
                else []
            )
            return httpx.Response(200, json={"object": "list", "data": data, "has_more": False})
        return httpx.Response(404, json={"error": {"message": "Unrecognized request URL"}})

    return httpx.MockTransport(handler)


def full_config(**changes) -> ProviderConfig:
    config = provider_config(
        public_url=PUBLIC,
        shopify_shop_domain="northwind-goods",
        shopify_access_token="shpat_test",
        stripe_api_key="sk_test_ok",
        stripe_webhook_secret="whsec_x",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="twilio-token",
        twilio_voice_number="+18005550100",
        zendesk_subdomain="northwind",
        zendesk_email="agent@northwind.example",
        zendesk_api_token="zd-token",
        carrier_provider="easypost",
        carrier_api_key="EZTK_test",
        label_provider="easypost",
        return_street1="1200 Commerce Way",
        return_city="Reno",
        return_state="NV",
        return_zip="89502",
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def our_server(request: httpx.Request) -> httpx.Response:
    """Our own server, answering its health check."""
    if request.url.path == "/healthz":
        return httpx.Response(200, json={"status": "ok"})
    return httpx.Response(404)


def transports(twilio: FakeTwilio | None = None, stripe=None) -> dict:
    easypost = httpx.MockTransport(FakeEasyPost())
    return {
        "server": httpx.MockTransport(our_server),
        "shopify": httpx.MockTransport(FakeShopify.with_demo_data()),
        "stripe": stripe or stripe_fake(),
        "twilio": httpx.MockTransport(twilio or FakeTwilio()),
        "zendesk": httpx.MockTransport(FakeZendesk()),
        "carrier": easypost,
        "labels": easypost,
    }


def status_of(checks, provider: str, what: str) -> str:
    (found,) = [c for c in checks if c.provider == provider and c.check == what]
    return found.status


@pytest.fixture
def machine(tmp_path):
    model = tmp_path / "tiny.en"
    model.mkdir()
    (model / "model.bin").write_bytes(b"\0")
    voice = tmp_path / "en_US-joe-medium.onnx"
    voice.write_bytes(b"\0")
    (tmp_path / "en_US-joe-medium.onnx.json").write_text("{}")
    return {
        "database_url": f"sqlite:///{tmp_path / 'postvoice.db'}",
        "stt_model_dir": model,
        "tts_model": voice,
    }


async def test_everything_configured_and_working(machine):
    checks = await run_doctor(full_config(), transports=transports(), **machine)
    failed = [c for c in checks if c.status == FAIL]
    assert failed == []
    assert status_of(checks, "Shopify", "reachable") == OK
    assert status_of(checks, "Stripe", "webhook endpoint") == OK
    assert status_of(checks, "Twilio", "voice webhook") == OK
    assert status_of(checks, "Zendesk", "reachable") == OK
    assert status_of(checks, "EasyPost", "reachable") == OK
    assert status_of(checks, "EasyPost labels", "reachable") == OK
    table = format_table(checks)
    assert "everything configured works" in table
    assert "shpat_test" not in table and "sk_test_ok" not in table


async def test_nothing_configured_is_the_demo_shop(machine):
    checks = await run_doctor(
        provider_config(public_url="http://localhost:8080"),
        transports={"server": httpx.MockTransport(our_server)},
        **machine,
    )
    assert [c for c in checks if c.status == FAIL] == []
    assert status_of(checks, "Shopify", "configured") == SKIPPED
    assert status_of(checks, "carrier", "configured") == SKIPPED
    assert status_of(checks, "database", "reachable") == OK


async def test_what_to_fix_is_named(machine):
    twilio = FakeTwilio(voice_url="https://old-host.example.com/voice")
    config = full_config(
        shopify_access_token="",
        zendesk_api_token="wrong",
        stripe_webhook_secret="",
        return_zip="",
    )
    checks = await run_doctor(
        config, transports=transports(twilio, stripe_fake(webhook_url=None)), **machine
    )
    fixes = {(c.provider, c.check): c.fix for c in checks if c.status == FAIL}
    assert "POSTVOICE_SHOPIFY_ACCESS_TOKEN" in fixes[("Shopify", "credentials")]
    assert "credentials refused" in fixes[("Zendesk", "reachable")]
    assert "POSTVOICE_STRIPE_WEBHOOK_SECRET" in fixes[("Stripe", "webhook secret")]
    assert f"{PUBLIC}/stripe/webhook" in fixes[("Stripe", "webhook endpoint")]
    assert f"Webhook POST {PUBLIC}/twilio/voice" in fixes[("Twilio", "voice webhook")]
    assert "POSTVOICE_RETURN_ZIP" in fixes[("EasyPost labels", "return address")]
    assert f"{len(fixes)} to fix" in format_table(checks)


async def test_an_unreachable_provider_is_reported_not_raised(machine):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    dead = httpx.MockTransport(down)
    checks = await run_doctor(
        full_config(),
        transports={
            k: dead for k in ("shopify", "stripe", "twilio", "zendesk", "carrier", "labels")
        },
        **machine,
    )
    for provider in ("Shopify", "Stripe", "Twilio", "Zendesk", "EasyPost"):
        assert status_of(checks, provider, "reachable") == FAIL


async def test_the_machine_checks(tmp_path):
    checks = await run_doctor(
        provider_config(public_url=PUBLIC),
        database_url="postgresql://nobody@127.0.0.1:1/none",
        stt_model_dir=tmp_path / "missing",
        tts_model=tmp_path / "voice.onnx",
    )
    assert status_of(checks, "speech-to-text", "model") == FAIL
    assert status_of(checks, "text-to-speech", "voice") == FAIL
    assert status_of(checks, "database", "reachable") == FAIL


@pytest.mark.parametrize(
    ("setting", "found", "status"),
    [
        ("auto", None, FAIL),  # the default, never assembled
        ("auto", "assembled", OK),
        ("", None, SKIPPED),  # turned off
        ("/models/base", "empty", FAIL),  # named, but no model.bin in it
    ],
)
async def test_the_digits_model_is_checked(tmp_path, setting, found, status):
    model_dir = None
    if found is not None:
        model_dir = tmp_path / "base"
        model_dir.mkdir()
        if found == "assembled":
            (model_dir / "model.bin").write_bytes(b"x")
    checks = await run_doctor(provider_config(), digits_model=(setting, model_dir))
    assert status_of(checks, "speech-to-text", "second model (digits)") == status


async def test_twilio_needs_a_public_https_url(machine):
    config = full_config(public_url="http://localhost:8080")
    checks = await run_doctor(config, transports=transports(), **machine)
    assert status_of(checks, "server", "public URL") == FAIL


async def test_providers_are_real_where_configured_and_the_demo_shops_elsewhere():
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from integrations.demo import DemoShop
    from integrations.provider_set import close_providers
    from integrations.providers import build_providers
    from integrations.shopify import ShopifyOrders
    from integrations.stripe_refunds import StripeRefunds
    from integrations.tracking_cache import CachedTracking
    from integrations.twilio_sms import TwilioSms
    from integrations.zendesk import ZendeskHelpdesk

    demo = DemoShop.in_memory()
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    plain = build_providers(provider_config(), engine, demo)
    assert plain.orders is demo.orders
    assert plain.tracking is demo.tracking
    assert plain.messenger is demo.messenger

    real = build_providers(full_config(), engine, demo, transports=transports())
    assert isinstance(real.orders, ShopifyOrders)
    assert isinstance(real.tracking, CachedTracking)
    assert isinstance(real.refunds, StripeRefunds)
    assert real.refunds.orders is real.orders  # refunds look orders up in Shopify
    assert isinstance(real.messenger, TwilioSms)
    assert isinstance(real.helpdesk, ZendeskHelpdesk)
    assert real.coupons is demo.coupons
    maria = await real.orders.customer_by_phone("+14155550101")
    assert maria.name == "Maria Lopez"
    await close_providers(real)
    assert "sk_test_ok" not in repr(full_config())


async def test_a_public_url_where_nothing_listens_is_not_ok(machine):
    """`doctor` once said "public URL ok" while no server listened there."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    checks = await run_doctor(
        provider_config(public_url="http://localhost:8080"),
        transports={"server": httpx.MockTransport(refused)},
        **machine,
    )
    (answers,) = [c for c in checks if c.provider == "server" and c.check == "answers"]
    assert (
        answers.status == FAIL and "nothing answers at http://localhost:8080/healthz" in answers.fix
    )
    wrong = await run_doctor(
        provider_config(public_url="http://localhost:8080"),
        transports={"server": httpx.MockTransport(lambda r: httpx.Response(404))},
        **machine,
    )
    assert status_of(wrong, "server", "answers") == FAIL
