"""Which implementation of each capability to use: the real provider where one is configured,
the embedded demo shop's otherwise.

`ProviderConfig` is a plain dataclass of every provider setting (the entry point fills it from
the `POSTVOICE_…` settings); `build_providers` turns it into the protocol implementations the
dialog gets. Nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from integrations.carrier import AfterShipTracking, EasyPostTracking
from integrations.demo import DemoShop
from integrations.http import make_timeout
from integrations.models import Address
from integrations.outbound import DemoShipmentFeed
from integrations.protocols import Tracking
from integrations.provider_set import Providers
from integrations.shipping_labels import EasyPostLabels, Parcel, ReturnAddress
from integrations.shopify import ShopifyOrderFeed, ShopifyOrders
from integrations.stripe_refunds import StripeRefunds
from integrations.stripe_webhooks import SqlSeenEvents
from integrations.tracking_cache import CachedTracking, SqlTrackingCache
from integrations.twilio_sms import TwilioSms
from integrations.zendesk import ZendeskHelpdesk

__all__ = [
    "CARRIER_PROVIDERS",
    "LABEL_PROVIDERS",
    "BuildProviders",
    "ProviderConfig",
    "build_label_maker",
    "build_providers",
    "build_tracking",
]

CARRIER_PROVIDERS = ("easypost", "aftership")
LABEL_PROVIDERS = ("easypost",)


@dataclass(kw_only=True)
class ProviderConfig:
    """Every provider setting. Empty means "not configured": the demo shop stands in.

    The entry point fills it from `voice.settings.Settings` (`provider_config`), which holds
    every default; so no field has one here. Secrets are left out of `repr` so a logged config
    leaks none.
    """

    public_url: str
    http_connect_timeout_s: float
    http_read_timeout_s: float
    tracking_deadline_s: float

    shopify_shop_domain: str
    shopify_access_token: str = field(repr=False)
    shopify_api_version: str

    stripe_api_key: str = field(repr=False)
    stripe_webhook_secret: str = field(repr=False)
    stripe_api_base: str

    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    twilio_voice_number: str
    twilio_from_number: str
    twilio_whatsapp_number: str
    twilio_whatsapp_template_sid: str

    zendesk_subdomain: str
    zendesk_email: str
    zendesk_api_token: str = field(repr=False)

    carrier_provider: str
    carrier_api_key: str = field(repr=False)
    aftership_api_version: str

    label_provider: str
    label_api_key: str = field(repr=False)
    label_carrier: str
    label_service: str
    return_name: str
    return_company: str
    return_street1: str
    return_street2: str
    return_city: str
    return_state: str
    return_zip: str
    return_country: str
    return_phone: str

    @property
    def timeout(self) -> httpx.Timeout:
        """The connect and read timeouts every provider call gets."""
        return make_timeout(self.http_connect_timeout_s, self.http_read_timeout_s)

    @property
    def shopify_configured(self) -> bool:
        """Both the shop's domain and an access token are set."""
        return bool(self.shopify_shop_domain and self.shopify_access_token)

    @property
    def stripe_configured(self) -> bool:
        """A Stripe secret key is set."""
        return bool(self.stripe_api_key)

    @property
    def twilio_sms_configured(self) -> bool:
        """Account SID, auth token and a number to send texts from are set."""
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.sms_sender)

    @property
    def sms_sender(self) -> str:
        """The number texts come from: the SMS sender, else the voice number."""
        return self.twilio_from_number or self.twilio_voice_number

    @property
    def zendesk_configured(self) -> bool:
        """Subdomain, agent email and API token are set."""
        return bool(self.zendesk_subdomain and self.zendesk_email and self.zendesk_api_token)

    @property
    def carrier_configured(self) -> bool:
        """A known tracking aggregator and its API key are set."""
        return self.carrier_provider.lower() in CARRIER_PROVIDERS and bool(self.carrier_api_key)

    @property
    def label_key(self) -> str:
        """The label provider's key; EasyPost labels may share the EasyPost tracking key."""
        if self.label_api_key:
            return self.label_api_key
        if self.label_provider.lower() == self.carrier_provider.lower() == "easypost":
            return self.carrier_api_key
        return ""

    @property
    def labels_configured(self) -> bool:
        """A known label provider, its key and the return address are set."""
        return (
            self.label_provider.lower() in LABEL_PROVIDERS
            and bool(self.label_key)
            and bool(self.return_street1 and self.return_city and self.return_zip)
        )

    @property
    def return_address(self) -> ReturnAddress:
        """Where return labels send parcels."""
        return ReturnAddress(
            name=self.return_name or "Returns",
            company=self.return_company,
            phone=self.return_phone,
            address=Address(
                line1=self.return_street1,
                line2=self.return_street2,
                city=self.return_city,
                region=self.return_state,
                postal_code=self.return_zip,
                country=self.return_country or "US",
            ),
        )

    def url(self, path: str) -> str:
        """`path` under the public URL (e.g. "/twilio/voice")."""
        return self.public_url.rstrip("/") + path


Transports = Mapping[str, httpx.AsyncBaseTransport]


def build_tracking(
    config: ProviderConfig, engine: Engine, transports: Transports | None = None
) -> Tracking | None:
    """The configured aggregator behind the tracking cache, or None when none is configured."""
    if not config.carrier_configured:
        return None
    transport = (transports or {}).get("carrier")
    inner: Tracking
    if config.carrier_provider.lower() == "easypost":
        inner = EasyPostTracking(
            config.carrier_api_key, timeout=config.timeout, transport=transport
        )
    else:
        inner = AfterShipTracking(
            config.carrier_api_key,
            api_version=config.aftership_api_version,
            timeout=config.timeout,
            transport=transport,
        )
    cache = SqlTrackingCache(engine)
    cache.create_all()
    return CachedTracking(inner, cache, deadline_s=config.tracking_deadline_s)


def build_label_maker(
    config: ProviderConfig, engine: Engine, transports: Transports | None = None
) -> EasyPostLabels | None:
    """The real label maker when one is configured (hand it to the demo shop's returns), else
    None: the embedded PDF labels stay in use."""
    if not config.labels_configured:
        return None
    labels = EasyPostLabels(
        config.label_key,
        engine,
        config.return_address,
        parcel=Parcel(),
        carrier=config.label_carrier or None,
        service=config.label_service or None,
        timeout=config.timeout,
        transport=(transports or {}).get("labels"),
    )
    labels.create_all()
    return labels


def build_providers(
    config: ProviderConfig,
    engine: Engine,
    demo_shop: DemoShop,
    *,
    transports: Transports | None = None,
) -> Providers:
    """The implementation of each capability: the configured provider for orders (with its
    `order_feed`), tracking, refunds, messenger and helpdesk, the demo shop's otherwise and for
    coupons, returns, deliveries and labels (no real provider for those yet). Ledger tables of
    real providers are created.

    `transports` (by provider name: shopify, stripe, twilio, zendesk, carrier, labels) replace
    the network, for tests.
    """
    transports = transports or {}
    timeout = config.timeout
    chosen = Providers.demo(demo_shop)

    # The feed always comes with its order source: the demo's customers must never be called
    # about a real shop's orders.
    chosen.order_feed = DemoShipmentFeed(engine)
    if config.shopify_configured:
        shopify = ShopifyOrders(
            config.shopify_shop_domain,
            config.shopify_access_token,
            api_version=config.shopify_api_version,
            timeout=timeout,
            transport=transports.get("shopify"),
        )
        chosen.orders = shopify
        chosen.order_feed = ShopifyOrderFeed(shopify)

    tracking = build_tracking(config, engine, transports)
    if tracking is not None:
        chosen.tracking = tracking

    if config.stripe_configured:
        refunds = StripeRefunds(
            config.stripe_api_key,
            engine,
            chosen.orders,
            api_base=config.stripe_api_base or None,
            timeout=timeout,
            transport=transports.get("stripe"),
        )
        refunds.create_all()
        SqlSeenEvents(engine).create_all()  # the webhook route's dedupe table
        chosen.refunds = refunds

    if config.twilio_sms_configured:
        sms = TwilioSms(
            config.twilio_account_sid,
            config.twilio_auth_token,
            config.sms_sender,
            engine,
            whatsapp_from=config.twilio_whatsapp_number,
            whatsapp_template=config.twilio_whatsapp_template_sid,
            status_callback_url=config.url("/twilio/sms-status") if config.public_url else None,
            timeout=timeout,
            transport=transports.get("twilio"),
        )
        sms.create_all()
        chosen.messenger = sms

    if config.zendesk_configured:
        chosen.helpdesk = ZendeskHelpdesk(
            config.zendesk_subdomain,
            config.zendesk_email,
            config.zendesk_api_token,
            timeout=timeout,
            transport=transports.get("zendesk"),
        )
    return chosen


BuildProviders = Callable[[ProviderConfig, Engine, DemoShop], Providers]
"""How a shop's providers are chosen: `build_providers`, or a wrapper of it (the soak wraps
some in fault injectors)."""
