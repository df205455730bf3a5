"""Text conversations kept in SQL: inbound messages once each, conversations, and opt-outs.

`text_messages` holds every inbound SMS or WhatsApp message by Twilio's `MessageSid`, so a
webhook Twilio retries is seen as the same message (and answered at most once: the reply's
outbox key is derived from the SID). `text_conversations` says which conversation a number is
in, so a reply the next morning resumes it and one after the quiet timeout starts another.
`text_opt_outs` is the carriers' list: a number on it is never texted again (`TwilioSms`
checks it before every send) until it texts START; an opt-out also puts the number on the
outbound do-not-call list (`integrations.outbound`), and START takes off only what it put.

The keywords (`keyword_of`) follow the US carriers' rules: STOP, STOPALL, UNSUBSCRIBE, CANCEL,
END, QUIT opt out; START, UNSTOP opt back in; HELP, INFO ask who we are. A keyword counts only
as the whole message, in any case, with any punctuation around it.

The tables live on their own `metadata`, created by `create_all` (the route and `TwilioSms`
both call it), like the SMS ledger's. Everything here is synchronous and short; async callers
use a thread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from integrations.clock import Clock, aware, utc_now
from integrations.outbound import OutboundStore, outbound_alerts
from integrations.outbox import outbox
from integrations.redact import redact_card_numbers

__all__ = [
    "OPT_OUT_REASON",
    "WHATSAPP_SESSION",
    "Address",
    "Inbound",
    "MessagingLines",
    "MessagingStore",
    "create_all",
    "keyword_of",
    "metadata",
    "parse_address",
    "text_conversations",
    "text_messages",
    "text_opt_outs",
]

WHATSAPP_SESSION = timedelta(hours=24)
"""WhatsApp's customer-service window: free-form messages only this long after the
customer's last message; outside it, only an approved template."""

OPT_OUT_REASON = "text opt-out"
"""The reason an opt-out by text writes on the do-not-call list (START removes only these)."""

_STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
_START = frozenset({"START", "UNSTOP"})
_HELP = frozenset({"HELP", "INFO"})
_WORDS = re.compile(r"[A-Za-z0-9]+")
_E164 = re.compile(r"\+[1-9]\d{7,14}")

metadata = MetaData()
"""The messaging tables, apart from the store's."""

text_messages = Table(
    "text_messages",
    metadata,
    Column("message_sid", String(64), primary_key=True),
    Column("phone", String(32), nullable=False, index=True),  # E.164, without whatsapp:
    Column("channel", String(8), nullable=False),  # sms | whatsapp
    Column("body", Text, nullable=False),  # card numbers removed
    Column("num_media", Integer, nullable=False),
    # received (not yet answered) | answered | unanswered (nothing to say) | rate_limited |
    # rate_noticed (the one polite reply) | opted_out (not answered: the number opted out) |
    # expired (left unanswered by a crash and found too late to answer)
    Column("status", String(16), nullable=False),
    Column("conversation", String(64), index=True),
    Column("reply_segments", Integer),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("answered_at", DateTime(timezone=True)),
)

text_conversations = Table(
    "text_conversations",
    metadata,
    Column("call_sid", String(64), primary_key=True),  # the conversation's call in the store
    Column("phone", String(32), nullable=False, index=True),
    Column("channel", String(8), nullable=False),
    Column("order_ref", String(32)),  # the alert it answers, if any
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(32)),
)

text_opt_outs = Table(
    "text_opt_outs",
    metadata,
    Column("phone", String(32), primary_key=True),
    Column("keyword", String(16), nullable=False),  # STOP, …, or twilio_21610
    # The one text still allowed after the opt-out: its confirmation.
    Column("confirmation_key", String(200)),
    Column("opted_out_at", DateTime(timezone=True), nullable=False),
)


def create_all(engine: Engine) -> None:
    """Create the messaging tables (and the do-not-call list they share) if missing."""
    from integrations.outbound import metadata as outbound_metadata

    outbound_metadata.create_all(engine)
    metadata.create_all(engine)


# --- what a message is ------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    """Who a message is from: the E.164 number and the channel it came by."""

    phone: str
    channel: str  # "sms" or "whatsapp"

    @property
    def twilio(self) -> str:
        """The address Twilio sends to: `whatsapp:+1…` on WhatsApp, the number by SMS."""
        return f"whatsapp:{self.phone}" if self.channel == "whatsapp" else self.phone


def parse_address(raw: str) -> Address | None:
    """`+14155550101` or `whatsapp:+14155550101` as an `Address`; None for anything else."""
    text = raw.strip()
    channel = "sms"
    if text.lower().startswith("whatsapp:"):
        channel, text = "whatsapp", text[len("whatsapp:") :].strip()
    return Address(text, channel) if _E164.fullmatch(text) else None


def keyword_of(body: str) -> str | None:
    """ "stop", "start" or "help" when the whole message is one of the carriers' keywords (any
    case, any punctuation: "Stop.", " stop!! "); None otherwise ("stop sending me ads" is a
    sentence, left to the dialog)."""
    words = _WORDS.findall(body)
    if len(words) != 1:
        return None
    word = words[0].upper()
    if word in _STOP:
        return "stop"
    if word in _START:
        return "start"
    if word in _HELP:
        return "help"
    return None


@dataclass(frozen=True)
class Inbound:
    """One inbound message as recorded."""

    message_sid: str
    phone: str
    channel: str
    body: str
    num_media: int
    status: str
    conversation: str | None
    received_at: datetime


@dataclass(frozen=True)
class MessagingLines:
    """What the shop texts outside the dialog: the carriers' keyword replies, the one reply to
    a flood, the note that a conversation started over, the answer to a photo nobody asked
    for, the one to photos a crash lost, and the one to a message after a handoff. `{shop}` and
    `{human}` are filled in (and `{ticket}`, where there is one)."""

    stop: str = (
        "{shop}: you're unsubscribed and won't get any more texts from us. Reply START to "
        "resubscribe."
    )
    start: str = "{shop}: you're subscribed to texts again. Reply HELP for help, STOP to opt out."
    help: str = (
        "{shop} order support: text us your question, or call {human} to talk to a person. "
        "Msg&data rates may apply. Reply STOP to opt out."
    )
    rate_limited: str = (
        "{shop}: we've had a lot of messages from you at once, so we'll pause replies for a "
        "minute. Please send your question in one message, or call {human}."
    )
    restarted: str = "Sorry, we lost track of our earlier messages, so let's start again."
    unasked_photo: str = (
        "{shop}: thanks for the picture. If something arrived damaged, tell us your order "
        "number and what happened, and we'll take it from there."
    )

    handed_over: str = (
        "{shop}: thanks, we've added that to your case{ticket}; a person from our team will "
        "get back to you. To ask about something else, just say what you need, or call {human}."
    )
    lost_photos: str = (
        "{shop}: sorry, the photo you sent us earlier didn't reach us. Please send it again, "
        "or call {human}."
    )

    def fill(self, line: str, shop: str, human: str, ticket: str = "") -> str:
        """One line with the shop, the number of a person and the ticket filled in."""
        return line.format(shop=shop, human=human, ticket=f" ({ticket})" if ticket else "")


# --- the store --------------------------------------------------------------------------------


def _inbound(row: Any) -> Inbound:
    """A `text_messages` row as an `Inbound`."""
    return Inbound(
        message_sid=row["message_sid"],
        phone=row["phone"],
        channel=row["channel"],
        body=row["body"],
        num_media=row["num_media"],
        status=row["status"],
        conversation=row["conversation"],
        received_at=aware(row["received_at"]),
    )


class MessagingStore:
    """Row operations on the messaging tables; `clock` stamps rows (tests run on their own)."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self.dnc = OutboundStore(engine, clock)

    # --- inbound messages ---------------------------------------------------------------------

    def receive(
        self, message_sid: str, address: Address, body: str, num_media: int
    ) -> tuple[Inbound, bool]:
        """Record an inbound message once; `(message, fresh)`. A retried webhook finds the
        row already there (`fresh` False) and its status says whether it was answered."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(text_messages).values(
                        message_sid=message_sid,
                        phone=address.phone,
                        channel=address.channel,
                        body=redact_card_numbers(body),
                        num_media=num_media,
                        status="received",
                        received_at=self.clock(),
                    )
                )
            fresh = True
        except IntegrityError:
            fresh = False
        found = self.message(message_sid)
        assert found is not None
        return found, fresh

    def message(self, message_sid: str) -> Inbound | None:
        """One inbound message by its SID."""
        with self.engine.connect() as conn:
            query = select(text_messages).where(text_messages.c.message_sid == message_sid)
            row = conn.execute(query).mappings().first()
        return None if row is None else _inbound(row)

    def settle(
        self,
        message_sid: str,
        status: str,
        *,
        conversation: str | None = None,
        reply_segments: int | None = None,
    ) -> None:
        """Say what became of an inbound message."""
        values: dict[str, Any] = {"status": status}
        if conversation is not None:
            values["conversation"] = conversation
        if reply_segments is not None:
            values["reply_segments"] = reply_segments
            values["answered_at"] = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                update(text_messages)
                .where(text_messages.c.message_sid == message_sid)
                .values(**values)
            )

    def unanswered(self) -> list[Inbound]:
        """Messages recorded and not yet answered (status "received"), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(text_messages)
                .where(text_messages.c.status == "received")
                .order_by(text_messages.c.received_at)
            ).mappings()
            return [_inbound(row) for row in rows]

    def received_since(self, phone: str, since: datetime) -> int:
        """How many messages this number sent since `since` (the flood check)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(text_messages)
                    .where(text_messages.c.phone == phone, text_messages.c.received_at >= since)
                ).scalar_one()
            )

    def noticed_since(self, phone: str, since: datetime) -> bool:
        """Whether this number was told of the flood limit since `since`."""
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(text_messages.c.message_sid).where(
                        text_messages.c.phone == phone,
                        text_messages.c.status == "rate_noticed",
                        text_messages.c.received_at >= since,
                    )
                ).first()
                is not None
            )

    def last_inbound(self, phone: str, channel: str) -> datetime | None:
        """When this number last wrote to us on `channel` (WhatsApp's 24-hour rule)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.max(text_messages.c.received_at)).where(
                    text_messages.c.phone == phone, text_messages.c.channel == channel
                )
            ).scalar_one()
        return aware(found) if found is not None else None

    def session_open(self, phone: str, now: datetime | None = None) -> bool:
        """Whether a free-form WhatsApp message to `phone` is allowed now."""
        last = self.last_inbound(phone, "whatsapp")
        return last is not None and (now or self.clock()) - last < WHATSAPP_SESSION

    # --- conversations ------------------------------------------------------------------------

    def open_conversation(self, phone: str) -> dict[str, Any] | None:
        """The conversation this number is in (not ended), if any."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(text_conversations)
                    .where(text_conversations.c.phone == phone)
                    .where(text_conversations.c.ended_at.is_(None))
                    .order_by(text_conversations.c.started_at.desc())
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return {
            **row,
            "started_at": aware(row["started_at"]),
            "last_at": aware(row["last_at"]),
        }

    def begin_conversation(
        self, call_sid: str, address: Address, order_ref: str | None = None
    ) -> None:
        """A new conversation for this number."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(text_conversations).values(
                    call_sid=call_sid,
                    phone=address.phone,
                    channel=address.channel,
                    order_ref=order_ref,
                    started_at=now,
                    last_at=now,
                )
            )

    def touch(self, call_sid: str) -> None:
        """The conversation had a message now."""
        with self.engine.begin() as conn:
            conn.execute(
                update(text_conversations)
                .where(text_conversations.c.call_sid == call_sid)
                .values(last_at=self.clock())
            )

    def end_conversation(self, call_sid: str, reason: str) -> bool:
        """End it; False when it had already ended."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(text_conversations)
                .where(text_conversations.c.call_sid == call_sid)
                .where(text_conversations.c.ended_at.is_(None))
                .values(ended_at=self.clock(), end_reason=reason[:32])
            )
        return done.rowcount == 1

    def handed_over(self, phone: str, since: datetime) -> str | None:
        """The newest conversation of this number that ended in a handoff to a person since
        `since` (its call sid): later messages belong with that person's case."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(text_conversations.c.call_sid)
                .where(
                    text_conversations.c.phone == phone,
                    text_conversations.c.end_reason == "transfer",
                    text_conversations.c.ended_at >= since,
                )
                .order_by(text_conversations.c.ended_at.desc())
            ).scalar()

    # --- opt-out ------------------------------------------------------------------------------

    def opt_out(self, phone: str, keyword: str, confirmation_key: str | None = None) -> bool:
        """Record that `phone` asked for no more texts, and put it on the do-not-call list;
        False when it had already opted out. `confirmation_key` names the one text still
        allowed: the reply confirming it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(text_opt_outs).values(
                        phone=phone,
                        keyword=keyword[:16],
                        confirmation_key=confirmation_key,
                        opted_out_at=self.clock(),
                    )
                )
            fresh = True
        except IntegrityError:
            fresh = False
        self.dnc.dnc_add(phone, OPT_OUT_REASON)
        return fresh

    def opt_in(self, phone: str) -> bool:
        """`phone` texted START: texts allowed again, and the do-not-call entry the opt-out
        made removed (one an operator or a call made stays). False when it had not opted out."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(text_opt_outs).where(text_opt_outs.c.phone == phone))
        self.dnc.dnc_remove_if(phone, OPT_OUT_REASON)
        return done.rowcount > 0

    def opted_out(self, phone: str) -> bool:
        """Whether `phone` asked for no more texts."""
        return self._opt_out_row(phone) is not None

    def may_text(self, phone: str, idempotency_key: str) -> bool:
        """Whether a text with this key may go to `phone`: yes unless it opted out, and then
        only the confirmation of the opt-out itself."""
        row = self._opt_out_row(phone)
        return row is None or (row.confirmation_key is not None and row.confirmation_key in (
            idempotency_key, idempotency_key.removeprefix("sms:")
        ))  # fmt: skip

    def _opt_out_row(self, phone: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(text_opt_outs).where(text_opt_outs.c.phone == phone)).first()

    # --- alerts -------------------------------------------------------------------------------

    def recent_alert(self, phone: str, since: datetime) -> tuple[str, str] | None:
        """(order, kind) of the newest exception alert texted to `phone` since `since`: what a
        reply from that number most likely answers. An alert is the outbox's `sms:<alert key>`
        row (`voice.outbound`), so the number is the one it really went to."""
        with self.engine.connect() as conn:
            alerts = conn.execute(
                select(outbound_alerts.c.alert_key, outbound_alerts.c.order_ref,
                       outbound_alerts.c.kind)
                .where(and_(outbound_alerts.c.sent_at >= since,
                            outbound_alerts.c.channel == "sms"))
                .order_by(outbound_alerts.c.sent_at.desc())
            ).all()  # fmt: skip
            for key, order_ref, kind in alerts:
                row = conn.execute(
                    select(outbox.c.payload).where(outbox.c.idempotency_key == f"sms:{key}")
                ).first()
                payload = row[0] if row else None
                if isinstance(payload, str):
                    payload = json.loads(payload)
                if isinstance(payload, dict) and payload.get("to") == phone:
                    return order_ref, kind
        return None
