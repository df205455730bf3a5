"""From settings to a working shop: the store, the providers, the flows and the agent.

The server, `postvoice chat` and `postvoice receive` all build their world here, so a typed
conversation and a warehouse receipt behave exactly like a phone call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from dialog.actions.texts import label_recipient
from dialog.events import CallInfo
from integrations.demo import DemoShop, ensure_schema
from integrations.demo import metadata as shop_metadata
from integrations.labels import EmbeddedLabels
from integrations.messaging import metadata as messaging_metadata
from integrations.outbound import metadata as outbound_metadata
from integrations.outbox import OutboxHelpdesk, OutboxMessenger, OutboxRefunds, OutboxReturns
from integrations.photos import PhotoDesk
from integrations.protocols import EventSink, OrderFeed, Services
from integrations.provider_set import Providers, close_providers
from integrations.providers import BuildProviders, build_label_maker, build_providers
from integrations.shipping_labels import metadata as label_ledger_metadata
from integrations.store import CallEvents, Store, make_engine
from integrations.stripe_refunds import metadata as refund_ledger_metadata
from integrations.stripe_webhooks import metadata as stripe_webhook_metadata
from integrations.tracking_cache import metadata as tracking_cache_metadata
from integrations.twilio_sms import metadata as twilio_sms_metadata
from integrations.worker import RetryPolicy, WorkerHandle, deliverers_from, start_in_process
from voice.settings import Settings

__all__ = ["Shop", "build_shop", "choose_providers"]

log = logging.getLogger(__name__)


@dataclass
class Shop:
    """Everything a conversation needs, built once per process."""

    settings: Settings
    engine: Engine
    store: Store
    demo: DemoShop
    labels: EmbeddedLabels
    providers: Providers
    flows: Any
    policy: Any
    photos: PhotoDesk | None = field(default=None)
    worker: WorkerHandle | None = field(default=None)

    def wake_worker(self) -> None:
        """Deliver newly queued side effects now rather than at the next poll."""
        if self.worker is not None:
            self.worker.wake()

    def services(self, events: EventSink, info: CallInfo | None = None) -> Services:
        """Reads go straight to the providers; texts, tickets, refunds and return labels go
        through the outbox, committed with the decision that caused them. A label is texted
        to the caller of `info` once bought (`label_recipient`); without a call, to nobody."""
        p = self.providers
        return Services(
            orders=p.orders,
            tracking=p.tracking,
            messenger=OutboxMessenger(events, wake=self.wake_worker),
            events=events,
            shop_name=self.settings.shop_name,
            coupons=p.coupons,
            returns=OutboxReturns(
                events,
                p.returns,
                notify_phone=label_recipient(info, self.policy) if info else None,
                shop_name=self.settings.shop_name,
                wake=self.wake_worker,
            ),
            refunds=OutboxRefunds(events, p.refunds, wake=self.wake_worker),
            helpdesk=OutboxHelpdesk(events, wake=self.wake_worker),
            deliveries=p.deliveries,
            photos=self.photos,
            human_number=self.settings.human_number,
        )

    def request_services(self, request: Any) -> Services:
        """The services that carry on after a call: the decisions recorded on the call that
        asked for the photos of `request` (an `integrations.models.PhotoRequest`)."""
        return self.services(CallEvents(self.store, request.call_sid))

    def agent(self, info: CallInfo, events: EventSink) -> Any:
        """The dialog for one call."""
        from dialog.agent import Agent

        return Agent(
            self.flows,
            self.services(events, info),
            info,
            policy=self.policy,
            human_number=self.settings.human_number,
            filler_after=self.settings.filler_after_ms / 1000,
            answer_first=self.settings.answer_first,
        )

    def order_feed(self) -> OrderFeed | None:
        """Which orders were delivered or are in flight, for the outbound scheduler — or None
        (scheduling off). It always comes from the same shop as the order source
        (`build_providers`), so the demo's customers are never called about a real shop."""
        return self.providers.order_feed

    def start_worker(self) -> None:
        """Deliver the outbox from this process (call inside the running event loop)."""
        if self.worker is None:
            deliverers = deliverers_from(self.providers, self.engine)
            self.worker = start_in_process(
                self.store.outbox,
                deliverers,
                poll_s=self.settings.worker_poll_s,
                policy=RetryPolicy(
                    max_attempts=self.settings.outbox_max_attempts,
                    cap_s=self.settings.outbox_backoff_cap_s,
                ),
            )

    async def close(self) -> None:
        """Stop the worker, close provider clients, release the database."""
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        await close_providers(self.providers)
        self.engine.dispose()


def choose_providers(
    settings: Settings, engine: Engine, make_providers: BuildProviders = build_providers
) -> tuple[EmbeddedLabels, DemoShop, Providers]:
    """Each capability's implementation: the configured provider, else the demo shop's.

    Returns the embedded label maker (its links are served by the app), the demo shop, and
    `make_providers`' choice (`integrations.providers.build_providers`'s unless a caller wraps
    it). The server and `postvoice worker` both use this, so they always deliver through the
    same providers.
    """
    config = settings.provider_config()
    labels = EmbeddedLabels(
        settings.label_secret(), settings.public_url, shop_name=settings.shop_name
    )
    demo = DemoShop(engine, labels=build_label_maker(config, engine) or labels)
    return labels, demo, make_providers(config, engine, demo)


def build_shop(settings: Settings, make_providers: BuildProviders = build_providers) -> Shop:
    """Migrate the database, choose each provider (real where configured, demo otherwise, as
    `make_providers` builds them), and load the flows and the policy (a mistake in either stops
    start-up, naming file and line)."""
    from dialog.loader import load_flows
    from dialog.policy import load_policy

    engine = make_engine(settings.database_url)
    store = Store(engine)
    # Every table outside the migrations is created under the migration's lock, so servers
    # starting together on one PostgreSQL database do not race to create it.
    store.migrate(
        also=[
            shop_metadata,
            twilio_sms_metadata,
            stripe_webhook_metadata,
            outbound_metadata,
            messaging_metadata,
            tracking_cache_metadata,
            label_ledger_metadata,
            refund_ledger_metadata,
        ]
    )
    ensure_schema(engine)
    labels, demo, providers = choose_providers(settings, engine, make_providers)
    shop = Shop(
        settings=settings,
        engine=engine,
        store=store,
        demo=demo,
        labels=labels,
        providers=providers,
        flows=load_flows(settings.flows_dir),
        policy=load_policy(settings.policy_file),
    )
    shop.photos = build_photo_desk(settings, shop)
    return shop


def build_photo_desk(settings: Settings, shop: Shop, **options: Any) -> PhotoDesk:
    """The photo desk of `shop`: links signed with the label key, MMS photos fetched with
    the Twilio account's credentials, and what follows photos (`dialog.evidence`) on the
    shop's own services. `options` go to `PhotoDesk` (a test's `media_transport`)."""
    from dialog.evidence import DamageEvidence

    sid = settings.twilio_account_sid or ""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    return PhotoDesk(
        shop.engine,
        settings.label_secret(),
        settings.public_url,
        settings.photo_options(),
        follow_up=DamageEvidence(shop.request_services, shop.policy, shop.flows.sms),
        media_auth=(sid, token) if sid and token else None,
        **options,
    )
