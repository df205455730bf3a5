"""Text messages through Twilio (`Messenger`), with the `twilio` SDK over httpx.

Twilio's Messages API has no idempotency key: a `POST …/Messages.json` repeated after its
answer was lost sends a second text. So the rule here is stricter than for idempotent calls:

- Within one `send_sms`, the POST is retried only when the failure proves it never left this
  machine (connection refused or never established, no free pooled connection) or Twilio
  refused it with 429 before doing anything. A read timeout or a 5xx is *not* retried: Twilio
  may have queued the text.
- Across calls, our `twilio_sms_ledger` table, keyed by the caller's `idempotency_key`, makes
  the send at-most-once-per-key: a row is written before the POST; the message SID is stored
  after it. The same key again returns the stored SID. If the earlier outcome is unknown, the
  account's recent messages to that number are searched for the same body sent since that
  attempt, and only if none is found is the text sent again (the outbox retries with the
  same key).
- Twilio's refusals (4xx: invalid number, unsubscribed recipient, …) are final: recorded, and
  raised as `ProviderError(code="twilio_<code>", retryable=False)`. Error 21610 (the recipient
  replied STOP to Twilio) also records the number's opt-out.
- Nothing is sent to a number that opted out of texts (`integrations.messaging`), whoever
  asks (replies, alerts, labels, tracking links): `ProviderError(code="opted_out")`, final, so
  the outbox records the row as dead with that code. The one exception is the confirmation
  of the opt-out itself, named by its key when the opt-out was recorded.

WhatsApp goes through the same Messages API: `to` is `whatsapp:+1…` and the text comes from
`whatsapp:<whatsapp_from>` (no sender configured: refused as `whatsapp_off`, final). WhatsApp
allows a free-form message only within 24 hours of the customer's last message
(`MessagingStore.session_open`); outside that window the approved template `whatsapp_template`
is sent instead, its one variable `{{1}}` the message, and without a template the text goes by
SMS to the same number. If Twilio still answers 63016 (outside the window), the same fallback
is taken at once: Twilio sent nothing. The destination chosen first (WhatsApp or the SMS
number) is kept in the ledger, so a retry never sends on the other channel as well; the
search for an earlier attempt's message matches a template's text by the message it carries.
Opt-outs are per number, whatever the channel.

Reads (GET) are retried like any safe request. Status callbacks (`MessageStatus`) are recorded
by `record_sms_status` into `twilio_sms_status` and move the ledger's status on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import IntegrityError
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from integrations.clock import Clock, aware, utc_now
from integrations.http import (
    DEFAULT_POLICY,
    DEFAULT_TIMEOUT,
    NotSentError,
    RetryPolicy,
    Sleep,
    is_never_sent,
    provider_error,
    retry_after_seconds,
    with_retries,
)
from integrations.messaging import MessagingStore, parse_address
from integrations.messaging import create_all as create_messaging_tables
from integrations.protocols import ProviderError

__all__ = [
    "HttpxTwilioClient",
    "SmsStatus",
    "TwilioSms",
    "metadata",
    "record_sms_status",
    "twilio_client",
    "twilio_sms_ledger",
    "twilio_sms_status",
]

log = logging.getLogger(__name__)

SMS_MAX_CHARS = 1600  # Twilio's limit for one message body
TEMPLATE_MAX_CHARS = 1024  # WhatsApp's limit for a template's body, variables included
_OUTSIDE_WINDOW = 63016  # Twilio: a free-form WhatsApp message outside the 24-hour window
# How far back, before our own attempt, a matching message still counts as ours (clock skew).
_RECONCILE_SLACK = timedelta(minutes=5)

metadata = MetaData()
"""The SMS tables, apart from the store's and the demo shop's."""

twilio_sms_ledger = Table(
    "twilio_sms_ledger",
    metadata,
    Column("idempotency_key", String(255), primary_key=True),
    Column("to_number", String(32), nullable=False),
    Column("body", Text, nullable=False),
    # sending (outcome unknown) | not_sent (provably not sent) | failed | a Twilio status
    Column("status", String(16), nullable=False),
    Column("message_sid", String(64), index=True),
    Column("error_code", String(16)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

twilio_sms_status = Table(
    "twilio_sms_status",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_sid", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("error_code", String(16)),
    Column("payload", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


class HttpxTwilioClient(AsyncHttpClient):
    """The Twilio SDK's async HTTP client, on httpx with explicit timeouts and our retry rule:
    GETs retry like any safe request; other methods only when the request never left."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(logger=log, is_async=True, timeout=None)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._policy = policy
        self._sleep = sleep
        self._rand = rand

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one request for the SDK; transport failures become `ProviderError`."""
        safe = method.upper() in ("GET", "HEAD")

        async def once() -> httpx.Response:
            response = await self._client.request(
                method.upper(),
                url,
                params=params,  # type: ignore[arg-type]
                data=data,  # type: ignore[arg-type]
                headers=headers,
                auth=auth,
                follow_redirects=allow_redirects,
            )
            if response.status_code == 429 or (safe and response.status_code >= 500):
                raise _Transient(response)
            return response

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, _Transient):
                return True
            return isinstance(exc, httpx.TransportError) if safe else is_never_sent(exc)

        def hint(exc: BaseException) -> float | None:
            return (
                retry_after_seconds(exc.response.headers) if isinstance(exc, _Transient) else None
            )

        try:
            response = await with_retries(
                once,
                retryable=retryable,
                policy=self._policy,
                delay_hint=hint,
                sleep=self._sleep,
                rand=self._rand,
                what=f"Twilio {method} {url}",
            )
        except _Transient as exc:
            response = exc.response  # the SDK turns it into TwilioRestException
        except httpx.TransportError as exc:
            raise provider_error("Twilio", exc) from exc
        return TwilioResponse(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


class _WindowClosed(Exception):
    """Twilio's 63016: the WhatsApp window is closed, and nothing was sent."""


class _Transient(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def twilio_client(
    account_sid: str,
    auth_token: str,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = asyncio.sleep,
) -> Client:
    """A Twilio REST `Client` on `HttpxTwilioClient`."""
    http = HttpxTwilioClient(timeout=timeout, transport=transport, policy=policy, sleep=sleep)
    return Client(account_sid, auth_token, http_client=http)


@dataclass(frozen=True)
class SmsStatus:
    """One status callback, as recorded."""

    message_sid: str
    status: str
    error_code: str | None


class TwilioSms:
    """`Messenger` over Twilio Programmable Messaging; call `create_all()` once."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        engine: Engine,
        *,
        whatsapp_from: str = "",
        whatsapp_template: str = "",
        status_callback_url: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
    ) -> None:
        self.from_number = from_number
        self.whatsapp_from = whatsapp_from
        self.whatsapp_template = whatsapp_template
        self.engine = engine
        self.status_callback_url = status_callback_url
        self._clock = clock
        self._texts = MessagingStore(engine, clock)  # opt-outs and WhatsApp's window
        self.client = twilio_client(
            account_sid,
            auth_token,
            timeout=timeout,
            transport=transport,
            policy=policy,
            sleep=sleep,
        )

    def create_all(self) -> None:
        """Create the SMS tables if missing."""
        metadata.create_all(self.engine)
        create_messaging_tables(self.engine)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.http_client.close()  # type: ignore[attr-defined]

    async def send_sms(self, to: str, body: str, *, idempotency_key: str) -> str:
        """Send `body` to `to` (E.164, or `whatsapp:` and E.164) once per `idempotency_key`;
        returns Twilio's SID."""
        address = parse_address(to)
        if address is None or address.twilio != to:
            raise ValueError(f"not an E.164 phone number or WhatsApp address: {to!r}")
        if address.channel == "whatsapp" and not self.whatsapp_from:
            raise ProviderError(
                "no WhatsApp sender is configured (POSTVOICE_TWILIO_WHATSAPP_NUMBER)",
                code="whatsapp_off",
            )
        if not body.strip():
            raise ValueError("empty SMS body")
        if len(body) > SMS_MAX_CHARS:
            raise ValueError(f"SMS body of {len(body)} characters; the limit is {SMS_MAX_CHARS}")
        if not idempotency_key:
            raise ValueError("an SMS needs an idempotency_key")

        row = await asyncio.to_thread(self._claim, idempotency_key, to, body)
        to = row["to_number"]  # where the first attempt went: a retry goes there too
        if row["message_sid"]:
            return row["message_sid"]
        if row["status"] == "failed":
            raise ProviderError(
                f"Twilio refused this text earlier (error {row['error_code']})",
                code=f"twilio_{row['error_code']}",
            )
        if not await asyncio.to_thread(self._texts.may_text, address.phone, idempotency_key):
            log.info("not texting …%s: the number opted out of texts", to[-4:])
            await asyncio.to_thread(self._set_status, idempotency_key, "not_sent")
            raise ProviderError("the recipient opted out of texts", code="opted_out")
        if row["status"] == "sending" and not row["fresh"]:
            found = await self._find_sent(to, body, row["created_at"])
            if found is not None:
                await asyncio.to_thread(self._finish, idempotency_key, found[1], found[0], None)
                return found[0]
        return await self._send(idempotency_key, to, body)

    def _sender(self, to: str) -> str:
        return f"whatsapp:{self.whatsapp_from}" if to.startswith("whatsapp:") else self.from_number

    async def _outside_window(self, key: str, to: str, body: str) -> tuple[str, dict[str, Any]]:
        """Where a WhatsApp text outside the 24-hour window goes, and how: the template to
        the same address, or (without one, or for a message too long for it) the SMS number,
        recorded in the ledger so that a retry goes there too."""
        if self.whatsapp_template and len(body) <= TEMPLATE_MAX_CHARS - 64:
            variables = json.dumps({"1": body})
            return to, {"content_sid": self.whatsapp_template, "content_variables": variables}
        phone = to.removeprefix("whatsapp:")
        log.info("WhatsApp window closed for …%s: texting the number instead", phone[-4:])
        await asyncio.to_thread(self._redirect, key, phone)
        return phone, {"body": body}

    async def _send(self, key: str, to: str, body: str) -> str:
        await asyncio.to_thread(self._set_status, key, "sending")
        content: dict[str, Any] = {"body": body}
        phone = to.removeprefix("whatsapp:")
        if phone != to and not await asyncio.to_thread(self._texts.session_open, phone):
            to, content = await self._outside_window(key, to, body)
        try:
            return await self._create(key, to, content)
        except _WindowClosed:
            # Twilio counts the window from what it saw and sent nothing: fall back now.
            to, content = await self._outside_window(key, to, body)
            return await self._create(key, to, content)

    async def _create(self, key: str, to: str, content: dict[str, Any]) -> str:
        """One POST to Twilio, its outcome recorded in the ledger under `key`."""
        kwargs: dict[str, Any] = {"to": to, "from_": self._sender(to), **content}
        if self.status_callback_url:
            kwargs["status_callback"] = self.status_callback_url
        try:
            message = await self.client.messages.create_async(**kwargs)
        except NotSentError:
            await asyncio.to_thread(self._set_status, key, "not_sent")
            raise
        except TwilioRestException as exc:
            if exc.code == _OUTSIDE_WINDOW and "body" in content and to.startswith("whatsapp:"):
                raise _WindowClosed from exc
            if exc.status == 429:
                await asyncio.to_thread(self._set_status, key, "not_sent")
                raise ProviderError(
                    "Twilio is rate limiting us", code="rate_limited", retryable=True
                ) from exc
            if 400 <= exc.status < 500:
                await asyncio.to_thread(self._finish, key, "failed", None, str(exc.code or ""))
                if exc.code == 21610:  # the recipient replied STOP to Twilio itself
                    await asyncio.to_thread(self._texts.opt_out, to.removeprefix("whatsapp:"),
                                            "twilio_21610")  # fmt: skip
                raise ProviderError(
                    f"Twilio refused the text: {exc.msg}",
                    code=f"twilio_{exc.code or exc.status}",
                ) from exc
            # A 5xx after the POST: Twilio may have queued it; the row stays "sending".
            raise ProviderError(
                f"Twilio answered HTTP {exc.status}", code="unavailable", retryable=True
            ) from exc
        # Any other ProviderError (a read timeout): outcome unknown, the row stays "sending".
        await asyncio.to_thread(self._finish, key, message.status or "queued", message.sid, None)
        return message.sid  # type: ignore[return-value]

    async def _find_sent(self, to: str, body: str, since: datetime) -> tuple[str, str] | None:
        """A message already sent to `to` with this body since `since`, as (sid, status)."""
        recent = await self.client.messages.list_async(to=to, from_=self._sender(to), limit=20)
        template = to.startswith("whatsapp:") and self.whatsapp_template
        for message in recent:
            created = message.date_created
            if (
                (message.body == body or (template and body in (message.body or "")))
                and message.sid
                and (created is None or aware(created) >= since - _RECONCILE_SLACK)
            ):
                log.info("text for an unknown earlier attempt found: %s", message.sid)
                return message.sid, message.status or "sent"
        return None

    async def record_status(self, form: Mapping[str, str]) -> SmsStatus | None:
        """Record one Twilio status callback (see `record_sms_status`)."""
        return await asyncio.to_thread(record_sms_status, self.engine, form, self._clock)

    # Database work, run in a thread.

    def _claim(self, key: str, to: str, body: str) -> dict[str, Any]:
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    twilio_sms_ledger.insert().values(
                        idempotency_key=key,
                        to_number=to,
                        body=body,
                        status="sending",
                        created_at=now,
                        updated_at=now,
                    )
                )
            return {
                "message_sid": None,
                "status": "sending",
                "fresh": True,
                "created_at": now,
                "to_number": to,
            }
        except IntegrityError:
            pass
        with self.engine.connect() as conn:
            row = conn.execute(
                select(twilio_sms_ledger).where(twilio_sms_ledger.c.idempotency_key == key)
            ).one()
        return {
            "message_sid": row.message_sid,
            "status": row.status,
            "error_code": row.error_code,
            "fresh": False,
            "created_at": aware(row.created_at),
            "to_number": row.to_number,
        }

    def _redirect(self, key: str, to: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                twilio_sms_ledger.update()
                .where(twilio_sms_ledger.c.idempotency_key == key)
                .values(to_number=to, updated_at=self._clock())
            )

    def _set_status(self, key: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                twilio_sms_ledger.update()
                .where(twilio_sms_ledger.c.idempotency_key == key)
                .values(status=status, updated_at=self._clock())
            )

    def _finish(self, key: str, status: str, sid: str | None, error_code: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                twilio_sms_ledger.update()
                .where(twilio_sms_ledger.c.idempotency_key == key)
                .values(
                    status=status[:16],
                    message_sid=sid,
                    error_code=error_code,
                    updated_at=self._clock(),
                )
            )


def record_sms_status(
    engine: Engine, form: Mapping[str, str], clock: Clock = utc_now
) -> SmsStatus | None:
    """Store one Twilio message status callback (form fields `MessageSid`, `MessageStatus`,
    `ErrorCode`) and move the ledger's row on. Returns None for a form without them.

    The route must check `X-Twilio-Signature` first, as for every Twilio webhook.
    """
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if not sid or not status:
        return None
    error_code = form.get("ErrorCode") or None
    now = clock()
    with engine.begin() as conn:
        conn.execute(
            twilio_sms_status.insert().values(
                message_sid=sid,
                status=status[:16],
                error_code=error_code,
                payload=dict(form),
                received_at=now,
            )
        )
        conn.execute(
            twilio_sms_ledger.update()
            .where(twilio_sms_ledger.c.message_sid == sid)
            .values(status=status[:16], error_code=error_code, updated_at=now)
        )
    return SmsStatus(sid, status, error_code)
