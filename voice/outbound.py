"""Calls we place: delivery confirmations and exception alerts, with the dialing policy.

`TwilioCalls` places a call with the twilio SDK (`calls.create` with our TwiML URL, a status
callback, and asynchronous answering-machine detection) and replaces a live call's TwiML.
`Dialer` decides whether and when an attempt may ring: never a number on the do-not-call list,
at most `per_customer_max` orders per customer in `per_customer_days`, never in the customer's
quiet hours (their time zone from the ZIP code); no-answer, busy and failed are tried again
after a backoff up to `max_attempts`; a machine gets a short message and a text instead.
`Scheduler` is the periodic job `postvoice worker` runs: it books a confirmation call for each
order delivered `delay_days` ago, places what is due, and alerts customers of exceptions once.

Without Twilio credentials nothing pretends: the attempt is recorded as `not_placed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx
from twilio.base.exceptions import TwilioRestException

from dialog.alerts import alert_text, exception_of, voicemail, voicemail_text
from dialog.schema import Conversation
from integrations.clock import Clock, utc_now
from integrations.models import Order
from integrations.outbound import Attempt, OutboundStore
from integrations.outbox import OutboxMessenger
from integrations.protocols import OrderFeed, OrderSource, ProviderError, Tracking
from integrations.store import CallEvents, Store
from integrations.twilio_sms import twilio_client

__all__ = [
    "AMD_MACHINE",
    "Dialer",
    "DialingPolicy",
    "Scheduler",
    "TwilioCalls",
    "dialer_for",
    "parse_quiet_hours",
    "parse_since",
    "policy_from",
    "run_scheduler",
    "scheduler_for",
    "zone_for_zip",
]

log = logging.getLogger(__name__)


DELIVERY_CONFIRMATION = "delivery_confirmation"
DELIVERY_EXCEPTION = "delivery_exception"
AMD_MACHINE = (
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
)
"""AnsweredBy values that mean nobody is there to talk to."""
RETRY_STATUSES = ("no-answer", "busy", "failed")


# --- time zones and quiet hours ----------------------------------------------------------------

# By the first digit of a US ZIP code; close enough to keep calls out of people's nights.
_ZONE_BY_ZIP_DIGIT = {
    "0": "America/New_York",
    "1": "America/New_York",
    "2": "America/New_York",
    "3": "America/New_York",
    "4": "America/New_York",
    "5": "America/Chicago",
    "6": "America/Chicago",
    "7": "America/Chicago",
    "8": "America/Denver",
    "9": "America/Los_Angeles",
}
# Prefixes that differ from their first digit's zone.
_ZONE_BY_ZIP_PREFIX = {
    "967": "Pacific/Honolulu",
    "968": "Pacific/Honolulu",
    "995": "America/Anchorage",
    "996": "America/Anchorage",
    "997": "America/Anchorage",
    "998": "America/Anchorage",
    "999": "America/Anchorage",
    "850": "America/Phoenix",
    "851": "America/Phoenix",
    "852": "America/Phoenix",
    "853": "America/Phoenix",
    "855": "America/Phoenix",
    "856": "America/Phoenix",
    "857": "America/Phoenix",
    "859": "America/Phoenix",
    "860": "America/Phoenix",
    "863": "America/Phoenix",
}


def zone_for_zip(zip_code: str, default: str = "America/New_York") -> ZoneInfo:
    """The customer's time zone from a US ZIP code (e.g. 94110 → Los Angeles, 73301 →
    Chicago); the `default` for anything else."""
    digits = "".join(c for c in zip_code if c.isdigit())
    if len(digits) < 5:
        return ZoneInfo(default)
    name = _ZONE_BY_ZIP_PREFIX.get(digits[:3]) or _ZONE_BY_ZIP_DIGIT.get(digits[0], default)
    return ZoneInfo(name)


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """ "20:00-09:00" → (20:00, 09:00): no calls from the first time until the second."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-", 1))
    except ValueError as exc:
        raise ValueError(f"quiet hours must look like 20:00-09:00, got {text!r}") from exc
    return start, end


@dataclass(frozen=True)
class DialingPolicy:
    """When we may call, and how often. Defaults match the settings' defaults."""

    delay_days: int = 1
    quiet_start: time = time(20, 0)
    quiet_end: time = time(9, 0)
    max_attempts: int = 3
    backoff: tuple[timedelta, ...] = (timedelta(minutes=30), timedelta(hours=2))
    per_customer_days: int = 7
    per_customer_max: int = 1
    lost_after_days: int = 7
    alert_channel: str = "sms"  # or "call"

    def quiet(self, local: datetime) -> bool:
        """Whether this local time is inside the quiet hours."""
        t = local.time()
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= t < self.quiet_end
        return t >= self.quiet_start or t < self.quiet_end

    def next_allowed(self, now: datetime, zone: ZoneInfo) -> datetime:
        """`now`, or the end of the quiet hours it falls in (in `zone`), in UTC."""
        local = now.astimezone(zone)
        if not self.quiet(local):
            return now
        end = datetime.combine(local.date(), self.quiet_end, tzinfo=zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tzinfo=zone)
        return end.astimezone(UTC)

    def retry_delay(self, attempt: int) -> timedelta:
        """How long after failed attempt `attempt` (1-based) to try again."""
        if not self.backoff:
            return timedelta(minutes=30)
        return self.backoff[min(attempt, len(self.backoff)) - 1]


# --- Twilio ------------------------------------------------------------------------------------


class TwilioCalls:
    """Twilio's Calls resource through the SDK, on an httpx transport (a MockTransport in tests)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = twilio_client(account_sid, auth_token, transport=transport)

    async def create(
        self, *, to: str, from_: str, url: str, status_callback: str, amd_callback: str
    ) -> str:
        """Place a call; its TwiML comes from `url` once answered. Returns the CallSid."""
        try:
            call = await self.client.calls.create_async(
                to=to,
                from_=from_,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                status_callback_method="POST",
                machine_detection="DetectMessageEnd",
                async_amd="true",
                async_amd_status_callback=amd_callback,
                async_amd_status_callback_method="POST",
            )
        except TwilioRestException as exc:
            raise _refusal(exc) from exc
        return str(call.sid)

    async def play_and_hang_up(self, call_sid: str, message: str) -> None:
        """Replace a live call's TwiML: say `message`, then hang up."""
        twiml = f"<Response><Say>{escape(message)}</Say><Hangup/></Response>"
        try:
            await self.client.calls(call_sid).update_async(twiml=twiml)
        except TwilioRestException as exc:
            raise _refusal(exc) from exc

    async def aclose(self) -> None:
        """Close the HTTP client."""
        http = self.client.http_client
        closer = getattr(http, "close", None)
        if closer is not None:
            await closer()


def _refusal(exc: TwilioRestException) -> ProviderError:
    retryable = exc.status == 429 or exc.status >= 500
    return ProviderError(
        f"Twilio refused the call: {exc.msg}", code=f"twilio_{exc.code}", retryable=retryable
    )


# --- the dialer --------------------------------------------------------------------------------


@dataclass
class Dialer:
    """Places outbound calls by the dialing policy and follows them to an outcome."""

    outbound: OutboundStore
    store: Store
    orders: OrderSource
    calls: TwilioCalls | None
    public_url: str
    from_number: str
    shop_name: str
    policy: DialingPolicy = field(default_factory=DialingPolicy)
    clock: Clock = utc_now
    wake: Callable[[], None] | None = None
    lines: Conversation = field(default_factory=Conversation)
    """The shop's wording of the voicemail and the alerts (its flows' conversation)."""

    async def request(
        self, order_ref: str, purpose: str = DELIVERY_CONFIRMATION, *, place_now: bool = True
    ) -> Attempt:
        """Book a call about `order_ref` (its first attempt, or the existing one) and, with
        `place_now`, place it if the policy allows it now."""
        order = await self.orders.order(order_ref)
        if order is None:
            raise ValueError(f"no order {order_ref}")
        existing = await asyncio.to_thread(self.outbound.attempts_for, order.number, purpose)
        if existing:
            attempt = existing[-1]
            if attempt.status in ("not_placed", "skipped"):  # asked again: check again
                attempt = (
                    await asyncio.to_thread(
                        self.outbound.update, attempt.id, status="scheduled", due_at=self.clock()
                    )
                    or attempt
                )
        else:
            customer = await self.orders.customer(order.customer_id)
            attempt = (
                await asyncio.to_thread(
                    self.outbound.schedule,
                    order.number,
                    purpose,
                    1,
                    self.clock(),
                    customer_id=order.customer_id,
                    to_number=customer.phone if customer else "",
                )
                or (await asyncio.to_thread(self.outbound.attempts_for, order.number, purpose))[-1]
            )
        if place_now and attempt.status == "scheduled" and attempt.due_at <= self.clock():
            return await self.place(attempt)
        return attempt

    async def place_due(self) -> list[Attempt]:
        """Place every attempt whose time has come."""
        due = await asyncio.to_thread(self.outbound.due, self.clock())
        return [await self.place(a) for a in due]

    async def place(self, attempt: Attempt) -> Attempt:
        """Ring the customer unless the policy says not now (or never)."""
        if not await asyncio.to_thread(self.outbound.claim, attempt.id):
            return await asyncio.to_thread(self.outbound.get, attempt.id) or attempt
        now = self.clock()
        settle = self._settle(attempt)
        if not attempt.to_number:
            return await settle("skipped", "the customer has no phone number")
        if await asyncio.to_thread(self.outbound.dnc_contains, attempt.to_number):
            return await settle("skipped", "on the do-not-call list")
        if attempt.customer_id:
            since = now - timedelta(days=self.policy.per_customer_days)
            recent = await asyncio.to_thread(
                self.outbound.placed_to_customer_since,
                attempt.customer_id,
                since,
                other_than=attempt.order_ref,
            )
            if recent >= self.policy.per_customer_max:
                return await settle(
                    "skipped", f"already called in the last {self.policy.per_customer_days} days"
                )
        zone = await self._zone(attempt)
        allowed = self.policy.next_allowed(now, zone)
        if allowed > now:
            local = allowed.astimezone(zone).strftime("%H:%M %Z")
            return await settle("scheduled", f"quiet hours: moved to {local}", due_at=allowed)
        if self.calls is None:
            return await settle("not_placed", "twilio not configured")
        base = self.public_url.rstrip("/")
        query = urlencode({"purpose": attempt.purpose, "order": attempt.order_ref})
        try:
            sid = await self.calls.create(
                to=attempt.to_number,
                from_=self.from_number,
                url=f"{base}/twilio/voice?{query}",
                status_callback=f"{base}/twilio/status",
                amd_callback=f"{base}/twilio/amd",
            )
        except ProviderError as exc:
            if exc.retryable:
                return await settle("scheduled", str(exc), due_at=now + self.policy.retry_delay(1))
            return await settle("failed", str(exc))
        log.info("outbound call %s placed: order %s, %s", sid, attempt.order_ref, attempt.purpose)
        # The call's row exists from now on, so its events (a voicemail's text) can hang on it.
        await asyncio.to_thread(
            self.store.upsert_call,
            sid,
            from_number=self.from_number,
            to_number=attempt.to_number,
            direction="outbound",
            purpose=attempt.purpose,
            order_ref=attempt.order_ref,
            status="queued",
        )
        return await settle("placed", "", call_sid=sid)

    def _settle(self, attempt: Attempt):
        async def settle(status: str, detail: str, **fields: Any) -> Attempt:
            if status != "placed":
                log.info("outbound order %s: %s (%s)", attempt.order_ref, status, detail)
            updated = await asyncio.to_thread(
                self.outbound.update, attempt.id, status=status, detail=detail, **fields
            )
            return updated or attempt

        return settle

    async def _zone(self, attempt: Attempt) -> ZoneInfo:
        customer = await self.orders.customer(attempt.customer_id) if attempt.customer_id else None
        return zone_for_zip(customer.zip if customer else "")

    async def on_status(self, call_sid: str, status: str) -> Attempt | None:
        """Twilio's status callback for a call we placed: record it; retry when nobody
        answered (no-answer, busy, failed) until `max_attempts`."""
        attempt = await asyncio.to_thread(self.outbound.by_call_sid, call_sid)
        if attempt is None:
            return None
        if status in RETRY_STATUSES:
            updated = await asyncio.to_thread(
                self.outbound.update, attempt.id, status=status.replace("-", "_")
            )
            await self._retry(attempt)
            return updated
        if status == "in-progress" and attempt.status == "placed":
            return await asyncio.to_thread(self.outbound.update, attempt.id, status="answered")
        if status == "completed" and attempt.status != "voicemail":
            result = await asyncio.to_thread(self._result_of, call_sid)
            return await asyncio.to_thread(
                self.outbound.update, attempt.id, status="completed", result=result
            )
        if status == "canceled":
            return await asyncio.to_thread(self.outbound.update, attempt.id, status="canceled")
        return attempt

    def _result_of(self, call_sid: str) -> dict[str, Any]:
        """What the answered call established, from its events: the score, a damage claim."""
        call = self.store.call(call_sid) or {}
        result: dict[str, Any] = {}
        for event in call.get("events", []):
            data = event.get("data") or {}
            if event["type"] == "csat.recorded":
                result["rating"] = data.get("score", data.get("rating"))
            elif event["type"] in ("replacement.created", "refund.created", "claim.opened"):
                result.setdefault("actions", []).append(event["type"])
        if call.get("end_reason"):
            result["end_reason"] = call["end_reason"]
        return result

    async def _retry(self, attempt: Attempt) -> Attempt | None:
        if attempt.attempt >= self.policy.max_attempts:
            log.info("outbound order %s: no more attempts", attempt.order_ref)
            return None
        due = self.clock() + self.policy.retry_delay(attempt.attempt)
        return await asyncio.to_thread(
            self.outbound.schedule,
            attempt.order_ref,
            attempt.purpose,
            attempt.attempt + 1,
            due,
            customer_id=attempt.customer_id,
            to_number=attempt.to_number,
            detail=f"retry after {attempt.status if attempt.status != 'placed' else 'no answer'}",
        )

    async def on_amd(self, call_sid: str, answered_by: str) -> Attempt | None:
        """Twilio's answering-machine verdict. A machine gets a short message (no order
        details) and the customer a text instead; a person stays with the agent."""
        attempt = await asyncio.to_thread(self.outbound.by_call_sid, call_sid)
        if attempt is None:
            return None
        if answered_by not in AMD_MACHINE:
            return await asyncio.to_thread(
                self.outbound.update, attempt.id, answered_by=answered_by
            )
        updated = await asyncio.to_thread(
            self.outbound.update, attempt.id, status="voicemail", answered_by=answered_by
        )
        message = voicemail(self.shop_name, attempt.order_ref, self.lines)
        if self.calls is not None:
            try:
                await self.calls.play_and_hang_up(call_sid, message)
            except ProviderError as exc:  # the text below still reaches them
                log.warning("could not leave a message on %s: %s", call_sid, exc)
        await self._text_instead(attempt, call_sid)
        return updated

    async def _text_instead(self, attempt: Attempt, call_sid: str) -> None:
        body = voicemail_text(self.shop_name, attempt.order_ref, self.lines)
        messenger = OutboxMessenger(CallEvents(self.store, call_sid), wake=self.wake)
        await messenger.send_sms(
            attempt.to_number,
            body,
            idempotency_key=f"outbound-voicemail:{attempt.order_ref}:{attempt.purpose}",
        )


# --- the scheduler -----------------------------------------------------------------------------


@dataclass
class Scheduler:
    """The periodic outbound job: book confirmation calls, place what is due, send alerts."""

    dialer: Dialer
    feed: OrderFeed
    tracking: Tracking
    policy: DialingPolicy = field(default_factory=DialingPolicy)

    @property
    def clock(self) -> Clock:
        """The dialer's clock."""
        return self.dialer.clock

    async def run_once(self) -> dict[str, int]:
        """One pass; counts of what it did."""
        booked = await self.book_confirmations()
        placed = await self.dialer.place_due()
        alerts = await self.check_exceptions()
        return {"booked": len(booked), "placed": len(placed), "alerts": len(alerts)}

    async def book_confirmations(self) -> list[Attempt]:
        """A first attempt for each order delivered `delay_days` ago (on that UTC day)."""
        today = self.clock().astimezone(UTC).date()
        day = today - timedelta(days=self.policy.delay_days)
        start = datetime.combine(day, time(0), tzinfo=UTC)
        numbers = await self.feed.delivered_between(start, start + timedelta(days=1))
        booked = []
        for number in numbers:
            existing = await asyncio.to_thread(
                self.dialer.outbound.attempts_for, number, DELIVERY_CONFIRMATION
            )
            if not existing:
                booked.append(
                    await self.dialer.request(number, DELIVERY_CONFIRMATION, place_now=False)
                )
        return booked

    async def check_exceptions(self) -> list[str]:
        """Alert customers of a failed attempt, a delay past the ETA, or a lost parcel: once
        per (order, kind, scan). Returns the alert keys sent in this pass."""
        sent = []
        for number in await self.feed.in_flight():
            order = await self.dialer.orders.order(number)
            if order is None or not order.carrier or not order.tracking_number:
                continue
            try:
                shipment = await self.tracking.track(order.carrier, order.tracking_number)
            except ProviderError as exc:
                log.warning("tracking %s failed: %s", number, exc)
                continue
            if shipment is None:
                continue
            found = exception_of(shipment, self.clock(), self.policy.lost_after_days)
            if found is None:
                continue
            kind, scan = found
            key = f"{order.number}:{kind}:{scan}"
            channel = self.policy.alert_channel
            fresh = await asyncio.to_thread(
                self.dialer.outbound.alert_once, key, order.number, kind, channel
            )
            if fresh:
                await self._alert(order, kind, key, channel)
                sent.append(key)
        return sent

    async def _alert(self, order: Order, kind: str, key: str, channel: str) -> None:
        customer = await self.dialer.orders.customer(order.customer_id)
        if customer is None:
            return
        if channel == "call":
            await self.dialer.request(order.number, DELIVERY_EXCEPTION, place_now=False)
            return
        messenger = OutboxMessenger(CallEvents(self.dialer.store, None), wake=self.dialer.wake)
        body = alert_text(self.dialer.shop_name, order, kind, self.dialer.lines)
        await messenger.send_sms(customer.phone, body, idempotency_key=key)


# --- from settings -----------------------------------------------------------------------------


def policy_from(settings: Any) -> DialingPolicy:
    """The dialing policy the merchant configured (`voice.settings.Settings`)."""
    quiet_start, quiet_end = parse_quiet_hours(settings.quiet_hours)
    minutes = [float(m) for m in settings.outbound_retry_minutes.split(",") if m.strip()]
    return DialingPolicy(
        delay_days=settings.outbound_delay_days,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        max_attempts=settings.outbound_max_attempts,
        backoff=tuple(timedelta(minutes=m) for m in minutes),
        per_customer_days=settings.outbound_per_customer_days,
        alert_channel=settings.alert_channel,
    )


def dialer_for(
    shop: Any,
    *,
    calls: TwilioCalls | None = None,
    clock: Clock = utc_now,
) -> Dialer:
    """The dialer of a `voice.services.Shop`: real Twilio calls when the account SID and auth
    token are set (or `calls` is given), none otherwise."""
    settings = shop.settings
    if calls is None and settings.twilio_account_sid and settings.twilio_auth_token:
        calls = TwilioCalls(
            settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()
        )
    return Dialer(
        outbound=OutboundStore(shop.engine, clock),
        store=shop.store,
        orders=shop.providers.orders,
        calls=calls,
        public_url=settings.public_url,
        from_number=settings.voice_number,
        shop_name=settings.shop_name,
        policy=policy_from(settings),
        clock=clock,
        wake=shop.wake_worker,
        lines=shop.flows.conversation,
    )


def scheduler_for(shop: Any, dialer: Dialer) -> Scheduler | None:
    """The periodic outbound job of a `voice.services.Shop`, or None when its order source
    has no feed of delivered orders (see `Shop.order_feed`)."""
    feed = shop.order_feed()
    if feed is None:
        return None
    return Scheduler(dialer, feed, shop.providers.tracking, dialer.policy)


def parse_since(text: str, now: datetime) -> datetime:
    """ "2d", "36h" or an ISO date → the moment that long before `now` (or that date)."""
    raw = text.strip().lower()
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if raw[:-1].isdigit() and raw[-1:] in units:
        return now - timedelta(**{units[raw[-1]]: int(raw[:-1])})
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"--delivered-since takes 2d, 36h or a date, got {text!r}") from exc
    return datetime.combine(day, time(0), tzinfo=UTC)


async def run_scheduler(scheduler: Scheduler, stop: asyncio.Event, interval_s: float) -> None:
    """Run `scheduler` every `interval_s` until `stop` is set; a failed pass is logged and the
    next one runs as planned."""
    log.info("outbound scheduler running every %.0f s", interval_s)
    while not stop.is_set():
        try:
            done = await scheduler.run_once()
            if any(done.values()):
                log.info("outbound scheduler: %s", done)
        except Exception:
            log.exception("outbound scheduler pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
