"""`postvoice doctor`: what is configured, what works, and what to fix.

Our own server must answer `GET /healthz` at the public URL (links and webhooks point there).
Each configured provider is checked for credentials, reachability (one cheap authenticated
read: Shopify `shop { name }`, Stripe `GET /v1/balance`, Twilio `GET /Accounts/{sid}.json`,
Zendesk `GET /users/me.json`, EasyPost or AfterShip a one-item list) and its webhooks (the
Twilio number's voice URL, Stripe's endpoint); the machine is checked for its database, speech
model and voice. Provider checks run concurrently, each bounded by the configured timeouts, so
a dead provider costs seconds, not minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from integrations.carrier import AfterShipTracking, EasyPostTracking
from integrations.http import RetryPolicy
from integrations.protocols import ProviderError
from integrations.providers import CARRIER_PROVIDERS, LABEL_PROVIDERS, ProviderConfig
from integrations.shipping_labels import EasyPostLabels
from integrations.shopify import ShopifyOrders
from integrations.stripe_refunds import StripeAccount
from integrations.twilio_sms import twilio_client
from integrations.zendesk import ZendeskHelpdesk

__all__ = ["FAIL", "OK", "SKIPPED", "Check", "format_table", "run_doctor"]

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"

# A doctor answers promptly: one retry at most.
_POLICY = RetryPolicy(attempts=2, base_s=0.2, cap_s=1.0)


@dataclass(frozen=True)
class Check:
    """One line of the report: `status` is "ok", "FAIL" or "skipped"; `fix` says what to do."""

    provider: str
    check: str
    status: str
    fix: str = ""
    detail: str = ""


Transports = Mapping[str, httpx.AsyncBaseTransport]


async def run_doctor(
    config: ProviderConfig,
    *,
    database_url: str | None = None,
    stt_model_dir: Path | None = None,
    digits_model: tuple[str, Path | None] | None = None,
    tts_model: Path | None = None,
    transports: Transports | None = None,
) -> list[Check]:
    """Every check, in a stable order: the machine first, then each provider. `digits_model`
    is the second speech-to-text model's setting and the directory it names (None where
    `auto` finds none assembled)."""
    transports = transports or {}
    checks = [
        *_database(database_url),
        *_stt(stt_model_dir),
        *_digits_model(digits_model),
        *_tts(tts_model),
        *_public_url(config),
    ]
    groups = await asyncio.gather(
        _server(config, transports.get("server")),
        _shopify(config, transports.get("shopify")),
        _stripe(config, transports.get("stripe")),
        _twilio(config, transports.get("twilio")),
        _zendesk(config, transports.get("zendesk")),
        _carrier(config, transports.get("carrier")),
        _labels(config, transports.get("labels")),
    )
    for group in groups:
        checks.extend(group)
    return checks


def format_table(checks: list[Check]) -> str:
    """The checks as an aligned text table: provider, check, status, what to fix."""
    header = ("provider", "check", "status", "what to fix / detail")
    rows = [(c.provider, c.check, c.status, c.fix or c.detail) for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(header[3]))
    failed = sum(c.status == FAIL for c in checks)
    lines.append("")
    lines.append(f"{failed} to fix" if failed else "everything configured works")
    return "\n".join(lines)


# -- the machine ----------------------------------------------------------------------------


def _database(url: str | None) -> list[Check]:
    if not url:
        return [Check("database", "reachable", SKIPPED, detail="no database URL given")]
    try:
        parsed = make_url(url)
    except Exception as exc:
        return [Check("database", "reachable", FAIL, fix=f"POSTVOICE_DATABASE_URL: {exc}")]
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.exists():
            folder = path.parent
            if folder.exists() or not folder.parent.exists():
                return [
                    Check(
                        "database",
                        "reachable",
                        OK,
                        detail=f"{path} will be created at first start",
                    )
                ]
    engine = None
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return [
            Check(
                "database",
                "reachable",
                FAIL,
                fix=f"cannot connect ({type(exc).__name__}); check POSTVOICE_DATABASE_URL",
            )
        ]
    finally:
        if engine is not None:
            engine.dispose()
    return [Check("database", "reachable", OK, detail=parsed.render_as_string(hide_password=True))]


def _digits_model(digits_model: tuple[str, Path | None] | None) -> list[Check]:
    """Whisper base, which hears again in digits alone a number tiny.en missed."""
    if digits_model is None:
        return []
    setting, model_dir = digits_model
    what = "second model (digits)"
    if not setting.strip():
        return [
            Check("speech-to-text", what, SKIPPED, detail="off: POSTVOICE_STT_SECOND_MODEL_DIR")
        ]
    if model_dir is None:
        return [
            Check(
                "speech-to-text",
                what,
                FAIL,
                fix="Whisper base is not assembled: run `make install` (or `make second-model`); "
                "until then numbers are heard by tiny.en alone",
            )
        ]
    if not (model_dir / "model.bin").is_file():
        return [Check("speech-to-text", what, FAIL, fix=f"{model_dir} has no model.bin")]
    return [Check("speech-to-text", what, OK, detail=str(model_dir))]


def _stt(model_dir: Path | None) -> list[Check]:
    if model_dir is None:
        return [Check("speech-to-text", "model", SKIPPED, detail="no model directory given")]
    if not model_dir.is_dir():
        return [
            Check(
                "speech-to-text",
                "model",
                FAIL,
                fix=f"{model_dir} is not a directory: set POSTVOICE_STT_MODEL_DIR to a "
                "faster-whisper (CTranslate2) model directory",
            )
        ]
    if not (model_dir / "model.bin").exists():
        return [
            Check(
                "speech-to-text",
                "model",
                FAIL,
                fix=f"{model_dir} has no model.bin: not a CTranslate2 model directory",
            )
        ]
    return [Check("speech-to-text", "model", OK, detail=str(model_dir))]


def _tts(model: Path | None) -> list[Check]:
    if model is None:
        return [Check("text-to-speech", "voice", SKIPPED, detail="no voice given")]
    if not model.is_file():
        return [
            Check(
                "text-to-speech",
                "voice",
                FAIL,
                fix=f"{model} does not exist: set POSTVOICE_TTS_MODEL to a piper .onnx voice",
            )
        ]
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        return [Check("text-to-speech", "voice", FAIL, fix=f"{config.name} is missing beside it")]
    return [Check("text-to-speech", "voice", OK, detail=str(model))]


def _public_url(config: ProviderConfig) -> list[Check]:
    url = config.public_url
    if not url:
        return [Check("server", "public URL", FAIL, fix="set POSTVOICE_PUBLIC_URL")]
    host = httpx.URL(url).host
    if host in ("localhost", "127.0.0.1", "::1") or not url.startswith("https://"):
        needs = config.twilio_account_sid or config.stripe_webhook_secret
        return [
            Check(
                "server",
                "public URL",
                FAIL if needs else OK,
                fix="Twilio and Stripe need an https URL they can reach: put the server behind "
                "a TLS proxy and set POSTVOICE_PUBLIC_URL to it"
                if needs
                else "",
                detail=url,
            )
        ]
    return [Check("server", "public URL", OK, detail=url)]


# -- providers ------------------------------------------------------------------------------


async def _reach(
    provider: str, call: Callable[[], Awaitable[str | None]], what: str = "reachable"
) -> Check:
    try:
        detail = await call()
    except ProviderError as exc:
        if exc.code == "auth":
            fix = f"credentials refused: {exc}"
        elif exc.retryable:
            fix = f"not reachable now ({exc.code}): {exc}"
        else:
            fix = str(exc)
        return Check(provider, what, FAIL, fix=fix)
    except Exception as exc:  # a doctor reports; it does not crash on one provider
        return Check(provider, what, FAIL, fix=f"{type(exc).__name__}: {exc}")
    return Check(provider, what, OK, detail=detail or "")


def _missing(provider: str, needed: Mapping[str, str]) -> list[Check]:
    """A FAIL naming the unset settings when some but not all are set, else nothing."""
    unset = [env for env, value in needed.items() if not value]
    if len(unset) == len(needed):
        return [Check(provider, "configured", SKIPPED, detail="not configured: demo shop used")]
    if unset:
        return [Check(provider, "credentials", FAIL, fix="set " + ", ".join(unset))]
    return []


async def _server(config: ProviderConfig, transport) -> list[Check]:
    """Whether our own server answers at the public URL: links in texts (return labels) and
    every webhook point there, so "ok" must mean something is listening."""
    if not config.public_url:
        return []
    url = config.public_url.rstrip("/") + "/healthz"
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(3.0), transport=transport) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return [
            Check(
                "server",
                "answers",
                FAIL,
                fix=f"nothing answers at {url} ({type(exc).__name__}): start `postvoice serve` "
                "there, or set POSTVOICE_PUBLIC_URL to the address it serves",
            )
        ]
    if response.status_code != 200:
        return [
            Check(
                "server",
                "answers",
                FAIL,
                fix=f"{url} answered {response.status_code}: is that postvoice?",
            )
        ]
    return [Check("server", "answers", OK, detail=url)]


async def _shopify(config: ProviderConfig, transport) -> list[Check]:
    provider = "Shopify"
    missing = _missing(
        provider,
        {
            "POSTVOICE_SHOPIFY_SHOP_DOMAIN": config.shopify_shop_domain,
            "POSTVOICE_SHOPIFY_ACCESS_TOKEN": config.shopify_access_token,
        },
    )
    if missing:
        return missing
    client = ShopifyOrders(
        config.shopify_shop_domain,
        config.shopify_access_token,
        api_version=config.shopify_api_version,
        timeout=config.timeout,
        transport=transport,
        policy=_POLICY,
    )
    try:
        return [
            Check(provider, "credentials", OK),
            await _reach(provider, client.shop_name),
        ]
    finally:
        await client.aclose()


async def _stripe(config: ProviderConfig, transport) -> list[Check]:
    provider = "Stripe"
    if not config.stripe_api_key:
        if config.stripe_webhook_secret:
            return [Check(provider, "credentials", FAIL, fix="set POSTVOICE_STRIPE_API_KEY")]
        return [Check(provider, "configured", SKIPPED, detail="not configured: demo refunds used")]
    client = StripeAccount(
        config.stripe_api_key,
        api_base=config.stripe_api_base or None,
        timeout=config.timeout,
        transport=transport,
        policy=_POLICY,
    )
    checks = [Check(provider, "credentials", OK)]
    try:

        async def balance() -> str:
            await client.check()
            return "GET /v1/balance"

        reach = await _reach(provider, balance)
        checks.append(reach)
        if not config.stripe_webhook_secret:
            checks.append(
                Check(
                    provider,
                    "webhook secret",
                    FAIL,
                    fix="set POSTVOICE_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret "
                    "(whsec_…)",
                )
            )
        else:
            checks.append(Check(provider, "webhook secret", OK))
        if reach.status == OK:
            checks.append(await _stripe_webhook(config, client))
    finally:
        await client.aclose()
    return checks


async def _stripe_webhook(config: ProviderConfig, client: StripeAccount) -> Check:
    wanted = config.url("/stripe/webhook")
    try:
        urls = await client.webhook_urls()
    except ProviderError as exc:
        return Check("Stripe", "webhook endpoint", FAIL, fix=str(exc))
    if any(u.rstrip("/") == wanted for u in urls):
        return Check("Stripe", "webhook endpoint", OK, detail=wanted)
    return Check(
        "Stripe",
        "webhook endpoint",
        FAIL,
        fix=f"add a webhook endpoint {wanted} (events refund.updated, refund.failed, "
        "charge.refund.updated) in the Stripe dashboard",
    )


async def _twilio(config: ProviderConfig, transport) -> list[Check]:
    provider = "Twilio"
    missing = _missing(
        provider,
        {
            "POSTVOICE_TWILIO_ACCOUNT_SID": config.twilio_account_sid,
            "POSTVOICE_TWILIO_AUTH_TOKEN": config.twilio_auth_token,
        },
    )
    if missing:
        return missing
    client = twilio_client(
        config.twilio_account_sid,
        config.twilio_auth_token,
        timeout=config.timeout,
        transport=transport,
        policy=_POLICY,
    )
    checks = [Check(provider, "credentials", OK)]
    try:

        async def account() -> str:
            try:
                found = await client.api.v2010.accounts(config.twilio_account_sid).fetch_async()
            except Exception as exc:
                raise _twilio_error(exc) from exc
            return f"account {found.friendly_name or found.sid} ({found.status})"

        reach = await _reach(provider, account)
        checks.append(reach)
        if reach.status == OK:
            checks.append(await _twilio_number(config, client))
        if config.sms_sender:
            checks.append(Check(provider, "SMS sender", OK, detail=config.sms_sender))
        else:
            checks.append(
                Check(provider, "SMS sender", FAIL, fix="set POSTVOICE_TWILIO_FROM_NUMBER")
            )
    finally:
        await client.http_client.close()  # type: ignore[attr-defined]
    return checks


async def _twilio_number(config: ProviderConfig, client) -> Check:
    provider, what = "Twilio", "voice webhook"
    number = config.twilio_voice_number
    if not number:
        return Check(
            provider, what, FAIL, fix="set POSTVOICE_TWILIO_VOICE_NUMBER (the support line)"
        )
    wanted = config.url("/twilio/voice")
    try:
        found = await client.incoming_phone_numbers.list_async(phone_number=number, limit=1)
    except Exception as exc:
        return Check(provider, what, FAIL, fix=str(_twilio_error(exc)))
    if not found:
        return Check(provider, what, FAIL, fix=f"{number} is not a number of this Twilio account")
    voice_url = (found[0].voice_url or "").rstrip("/")
    if voice_url != wanted:
        return Check(
            provider,
            what,
            FAIL,
            fix=f"{number} sends calls to {voice_url or 'nowhere'}: set 'A call comes in' to "
            f"Webhook POST {wanted}",
        )
    if (found[0].voice_method or "POST").upper() != "POST":
        return Check(provider, what, FAIL, fix=f"set {number}'s voice webhook method to POST")
    return Check(provider, what, OK, detail=f"{number} -> {wanted}")


def _twilio_error(exc: Exception) -> ProviderError:
    from twilio.base.exceptions import TwilioRestException

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TwilioRestException):
        code = "auth" if exc.status in (401, 403) else f"twilio_{exc.code or exc.status}"
        return ProviderError(f"Twilio: {exc.msg}", code=code)
    return ProviderError(f"Twilio: {exc}", code="error")


async def _zendesk(config: ProviderConfig, transport) -> list[Check]:
    provider = "Zendesk"
    missing = _missing(
        provider,
        {
            "POSTVOICE_ZENDESK_SUBDOMAIN": config.zendesk_subdomain,
            "POSTVOICE_ZENDESK_EMAIL": config.zendesk_email,
            "POSTVOICE_ZENDESK_API_TOKEN": config.zendesk_api_token,
        },
    )
    if missing:
        return missing
    client = ZendeskHelpdesk(
        config.zendesk_subdomain,
        config.zendesk_email,
        config.zendesk_api_token,
        timeout=config.timeout,
        transport=transport,
        policy=_POLICY,
    )
    try:
        return [Check(provider, "credentials", OK), await _reach(provider, client.check)]
    finally:
        await client.aclose()


async def _carrier(config: ProviderConfig, transport) -> list[Check]:
    kind = config.carrier_provider.lower()
    provider = {"easypost": "EasyPost", "aftership": "AfterShip"}.get(kind, "carrier")
    if not kind and not config.carrier_api_key:
        return [
            Check("carrier", "configured", SKIPPED, detail="not configured: demo tracking used")
        ]
    if kind not in CARRIER_PROVIDERS:
        return [
            Check(
                "carrier",
                "configured",
                FAIL,
                fix="set POSTVOICE_CARRIER_PROVIDER to " + " or ".join(CARRIER_PROVIDERS),
            )
        ]
    if not config.carrier_api_key:
        return [Check(provider, "credentials", FAIL, fix="set POSTVOICE_CARRIER_API_KEY")]
    client: EasyPostTracking | AfterShipTracking
    if kind == "easypost":
        client = EasyPostTracking(
            config.carrier_api_key, timeout=config.timeout, transport=transport, policy=_POLICY
        )
    else:
        client = AfterShipTracking(
            config.carrier_api_key,
            api_version=config.aftership_api_version,
            timeout=config.timeout,
            transport=transport,
            policy=_POLICY,
        )

    async def listing() -> str:
        await client.check()
        return "tracking list"

    try:
        return [Check(provider, "credentials", OK), await _reach(provider, listing)]
    finally:
        await client.aclose()


async def _labels(config: ProviderConfig, transport) -> list[Check]:
    kind = config.label_provider.lower()
    if not kind:
        return [Check("labels", "configured", SKIPPED, detail="embedded PDF return labels used")]
    if kind not in LABEL_PROVIDERS:
        return [
            Check(
                "labels",
                "configured",
                FAIL,
                fix="set POSTVOICE_LABEL_PROVIDER to " + " or ".join(LABEL_PROVIDERS),
            )
        ]
    provider = "EasyPost labels"
    checks: list[Check] = []
    if not config.label_key:
        return [Check(provider, "credentials", FAIL, fix="set POSTVOICE_LABEL_API_KEY")]
    checks.append(Check(provider, "credentials", OK))
    if not (config.return_street1 and config.return_city and config.return_zip):
        checks.append(
            Check(
                provider,
                "return address",
                FAIL,
                fix="set POSTVOICE_RETURN_STREET1, POSTVOICE_RETURN_CITY, POSTVOICE_RETURN_STATE "
                "and POSTVOICE_RETURN_ZIP",
            )
        )
    else:
        checks.append(Check(provider, "return address", OK, detail=config.return_city))
    client = EasyPostLabels(
        config.label_key,
        create_engine("sqlite://"),
        config.return_address,
        timeout=config.timeout,
        transport=transport,
        policy=_POLICY,
    )

    async def listing() -> str:
        await client.check()
        return "shipment list"

    try:
        checks.append(await _reach(provider, listing))
    finally:
        await client.aclose()
    return checks
