"""`POST /twilio/sms`: text messages (SMS and WhatsApp) to the shop's number.

Signed like every Twilio webhook (the server's check: unsigned or badly signed gets 403).
Each message is recorded once by its `MessageSid` (`integrations.messaging`), so Twilio's
retry of a webhook gets the same empty answer and no second reply. The carriers' keywords are
answered here, one confirmation each, through the outbox with a key derived from the message's
SID (a crash between receiving and replying neither loses nor doubles it): STOP and its
synonyms opt the number out (and onto the do-not-call list), START opts it back in, HELP says
who we are. A number that opted out gets no reply to anything else.

Any other message goes to the dialog, in the number's conversation (kept in memory, stored as
a call of channel "sms" or "whatsapp"); its lines, fillers left out, are one reply. After a
restart the conversation starts over and says so, as it does after `text_quiet_hours` of
quiet. A new conversation that answers an exception alert texted to the number within that
window ("yes, Friday works" to "your delivery failed… reply to reschedule") continues the
alert's topic: when the message names no request and no order itself, the dialog hears it as
about that order and that topic (`ALERT_TOPICS`); the transcript keeps what was typed. A STOP
ends the open conversation. A flood from one number gets one polite reply; the
rest are recorded. An MMS with photos goes to the photo desk (`integrations.photos.accept_mms`)
when a damaged-item request is waiting for them, and its answer is the reply; a photo nobody
asked for gets a line saying how to go on. A message from `whatsapp:+1…` is answered on
WhatsApp (`integrations.twilio_sms`: the shop's WhatsApp sender, the 24-hour window). At
start-up, `recover` answers what a crash left recorded and unanswered.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response

from dialog.events import CallInfo, EndCall, Say, Transfer
from dialog.nlu.intents import TASKS
from dialog.screen import sms_segments as segments
from dialog.understanding import classify
from integrations.messaging import (
    Address,
    Inbound,
    MessagingLines,
    MessagingStore,
    keyword_of,
    parse_address,
)
from integrations.messaging import create_all as create_messaging_tables
from integrations.outbox import OutboxMessenger
from integrations.photos import accept_mms
from integrations.redact import redact_card_numbers
from integrations.store import CallEvents

__all__ = ["ALERT_TOPICS", "about_alert", "install_sms_routes"]


class _Live:
    """A conversation held in memory: its call in the store and its agent."""

    def __init__(self, call_sid: str, agent: Any) -> None:
        self.call_sid = call_sid
        self.agent = agent
        self.seq = 0

    def turn(self, store: Any, role: str, text: str) -> None:
        """One message of the transcript (the store redacts card numbers)."""
        self.seq += 1
        store.add_turn(self.call_sid, self.seq, role, text, start_ms=0, end_ms=0, source="text")


async def _said(events: Any) -> tuple[list[str], str | None]:
    """What the agent says (fillers left out), and why the conversation ended, if it did."""
    said: list[str] = []
    ended = None
    async for event in events:
        if isinstance(event, Say) and not event.filler:
            said.append(event.text)
        elif isinstance(event, Transfer):
            ended = "transfer"
        elif isinstance(event, EndCall):
            ended = event.reason
    return said, ended


log = logging.getLogger(__name__)

ALERT_TOPICS = {
    "failed_attempt": "I'd like to reschedule the delivery.",
    "delayed": "Where is my order?",
    "lost": "My package hasn't arrived.",
}
"""What a reply to each kind of exception alert is about, said as a customer would."""


def about_alert(text: str, order: str, kind: str) -> str:
    """`text` as the dialog should hear it when it answers an alert about `order` of `kind`:
    unchanged when it asks for something or names an order itself ("where's my refund for
    1003?"), else with the alert's order and topic before it ("yes, Friday works")."""
    understood = classify(text)
    if understood.order_number or set(understood.intents) & set(TASKS):
        return text
    if understood.intent not in ("yes", "unknown"):
        return text  # a "no", a goodbye, asking for a person: as written
    topic = ALERT_TOPICS.get(kind, "")
    return f"About order {order}. {topic} {text}".replace("  ", " ")


_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def install_sms_routes(app: FastAPI, shop: Any, twilio_form: Callable[..., Any]) -> None:
    """Add `POST /twilio/sms` to `app`; `twilio_form` is the server's signature-checking
    form dependency."""
    settings = shop.settings
    create_messaging_tables(shop.engine)
    texts = MessagingStore(shop.engine)
    lines = MessagingLines()
    app.state.texts = texts
    locks: dict[str, asyncio.Lock] = {}
    TwilioForm = Annotated[dict[str, str], Depends(twilio_form)]

    live: dict[str, _Live] = {}

    async def talk(address: Address, body: str, message_sid: str) -> str:
        """The dialog's answer to one message, in the number's conversation (a new one when
        there is none, or after a restart: what was in memory is gone, and it says so)."""
        prefix: list[str] = []
        current = live.get(address.phone)
        stored = await asyncio.to_thread(texts.open_conversation, address.phone)
        quiet = timedelta(hours=settings.text_quiet_hours)
        if stored is not None and texts.clock() - stored["last_at"] >= quiet:
            if current is not None:  # gone quiet: it is over, and this message starts anew
                live.pop(address.phone, None)
                await finish(current, "quiet", address)
            else:
                await asyncio.to_thread(texts.end_conversation, stored["call_sid"], "quiet")
            current, stored = None, None
        if current is None and stored is not None:
            await asyncio.to_thread(texts.end_conversation, stored["call_sid"], "restarted")
            await asyncio.to_thread(
                shop.store.upsert_call, stored["call_sid"], status="completed",
                ended_at=datetime.now(UTC), end_reason="restarted",
            )  # fmt: skip
            prefix.append(lines.restarted)
        heard = None
        if current is None and not prefix:
            handed = await to_person(address, body)
            if handed is not None:
                return handed
        if current is None:
            since = texts.clock() - quiet
            alert = await asyncio.to_thread(texts.recent_alert, address.phone, since)
            if alert is not None:
                heard = about_alert(redact_card_numbers(body.strip()), *alert)
            call_sid = f"TX{uuid.uuid4().hex[:30]}"
            info = CallInfo(
                call_sid, address.phone, settings.support_number, "inbound",
                channel=address.channel,  # type: ignore[arg-type]
            )  # fmt: skip
            await asyncio.to_thread(texts.begin_conversation, call_sid, address)
            await asyncio.to_thread(
                shop.store.upsert_call, call_sid, from_number=address.phone,
                to_number=settings.support_number, direction="inbound", status="in-progress",
                started_at=datetime.now(UTC), channel=address.channel,
            )  # fmt: skip
            events = CallEvents(shop.store, call_sid)
            current = _Live(call_sid, shop.agent(info, events))
            await asyncio.to_thread(
                shop.store.add_event, call_sid, "call.started", None,
                {"direction": "inbound", "channel": address.channel}, 0,
            )  # fmt: skip
            await _said(current.agent.start())  # the greeting: the answer below is the reply
            live[address.phone] = current
        await asyncio.to_thread(texts.settle, message_sid, "received",
                                conversation=current.call_sid)  # fmt: skip
        text = redact_card_numbers(body.strip())
        current.turn(shop.store, "caller", text)
        if heard is not None and heard != text:
            order, kind = alert  # type: ignore[misc]
            await asyncio.to_thread(
                shop.store.add_event, current.call_sid, "text.alert_reply", order,
                {"kind": kind}, 0,
            )  # fmt: skip
        said, ended = await _said(current.agent.hear(heard or text, 1.0))
        answer = " ".join(prefix + said)
        if answer:
            current.turn(shop.store, "agent", answer)
        await asyncio.to_thread(texts.touch, current.call_sid)
        if ended is not None:
            live.pop(address.phone, None)
            await finish(current, ended, address)
        return answer

    async def to_person(address: Address, body: str) -> str | None:
        """After a conversation was handed to a person (within the quiet window), a message
        that asks for nothing new ("94110", "new pair pls", "ok thanks") goes with that case:
        recorded in it (event `text.after_handoff`) and answered so, instead of a fresh
        dialog opening a second case. None when there is no such case or the message asks
        for something the dialog does (a new request starts a new conversation)."""
        since = texts.clock() - timedelta(hours=settings.text_quiet_hours)
        sid = await asyncio.to_thread(texts.handed_over, address.phone, since)
        if sid is None:
            return None
        text = redact_card_numbers(body.strip())
        understood = classify(text)
        if set(understood.intents) & set(TASKS) and understood.score >= 0.5:
            return None
        call = await asyncio.to_thread(shop.store.call, sid) or {}
        tickets = [e for e in call.get("events", []) if e["type"] == "ticket.created"]
        ticket = str((tickets[-1].get("data") or {}).get("ticket_id") or "") if tickets else ""
        line = lines.fill(lines.handed_over, settings.shop_name, settings.human_number, ticket)
        case = _Live(sid, agent=None)  # the handed-over conversation, its transcript going on
        case.seq = len(call.get("turns", []))
        await asyncio.to_thread(case.turn, shop.store, "caller", text)
        await asyncio.to_thread(case.turn, shop.store, "agent", line)
        await asyncio.to_thread(shop.store.add_event, sid, "text.after_handoff", None,
                                {"ticket_id": ticket or None}, 0)  # fmt: skip
        return line

    async def finish(current: _Live, reason: str, address: Address) -> None:
        """End a conversation: the agent's summary, `call.ended`, the stored call."""
        summary = await current.agent.end(reason)
        await asyncio.to_thread(texts.end_conversation, current.call_sid, reason)
        await asyncio.to_thread(
            shop.store.add_event, current.call_sid, "call.ended", None,
            {"reason": reason, "channel": address.channel}, 0,
        )  # fmt: skip
        await asyncio.to_thread(
            shop.store.upsert_call, current.call_sid, status="completed",
            ended_at=datetime.now(UTC), end_reason=reason, summary=str(summary),
        )  # fmt: skip

    async def flooded(phone: str) -> bool:
        """More messages from `phone` in the flood window than the shop answers."""
        since = texts.clock() - timedelta(seconds=settings.text_flood_seconds)
        count = await asyncio.to_thread(texts.received_since, phone, since)
        return count > settings.text_flood_count

    async def reply(message_sid: str, to: str, body: str, current: Any = None) -> None:
        sid = current.call_sid if current is not None else None
        messenger = OutboxMessenger(CallEvents(shop.store, sid), wake=shop.wake_worker)
        await messenger.send_sms(to, body, idempotency_key=f"reply:{message_sid}")

    async def photo_reply(address: Address, form: dict[str, str]) -> str | None:
        """The photo desk's answer to an MMS with photos, or None when no request of this
        number waits for photos (then it is an ordinary message)."""
        desk = getattr(shop, "photos", None)
        if desk is None:
            return None
        return await accept_mms(desk, address.phone, form)

    async def respond(inbound: Inbound, form: dict[str, str], *, recovered: bool = False) -> None:
        """Answer one recorded message (under its number's lock) and settle it. A message
        whose reply is already in the outbox (a crash after queueing it) is only settled."""
        address = Address(inbound.phone, inbound.channel)
        message_sid, body, photos = inbound.message_sid, form.get("Body", ""), inbound.num_media
        if await asyncio.to_thread(shop.store.outbox.by_key, f"sms:reply:{message_sid}"):
            await asyncio.to_thread(texts.settle, message_sid, "answered")
            return
        keyword = keyword_of(body)
        shop_name, human = settings.shop_name, settings.human_number
        if keyword == "stop":
            current = live.pop(address.phone, None)
            if current is not None:  # nothing more is said in it
                await finish(current, "opted_out", address)
            await asyncio.to_thread(
                texts.opt_out, address.phone, body.strip().upper()[:16],
                f"reply:{message_sid}",
            )  # fmt: skip
            await reply(message_sid, address.twilio, lines.fill(lines.stop, shop_name, human))
            await asyncio.to_thread(texts.settle, message_sid, "answered", reply_segments=1)
        elif keyword == "start":
            await asyncio.to_thread(texts.opt_in, address.phone)
            await reply(message_sid, address.twilio, lines.fill(lines.start, shop_name, human))
            await asyncio.to_thread(texts.settle, message_sid, "answered", reply_segments=1)
        elif await asyncio.to_thread(texts.opted_out, address.phone):
            await asyncio.to_thread(texts.settle, message_sid, "opted_out")
        elif not recovered and await flooded(address.phone):
            since = texts.clock() - timedelta(seconds=settings.text_flood_seconds)
            if await asyncio.to_thread(texts.noticed_since, address.phone, since):
                await asyncio.to_thread(texts.settle, message_sid, "rate_limited")
            else:
                line = lines.fill(lines.rate_limited, shop_name, human)
                await reply(message_sid, address.twilio, line, live.get(address.phone))
                await asyncio.to_thread(texts.settle, message_sid, "rate_noticed",
                                        reply_segments=segments(line))  # fmt: skip
        elif keyword == "help":
            await reply(message_sid, address.twilio, lines.fill(lines.help, shop_name, human))
            await asyncio.to_thread(texts.settle, message_sid, "answered", reply_segments=1)
        elif photos and not recovered and (answer := await photo_reply(address, form)) is not None:
            await reply(message_sid, address.twilio, answer, live.get(address.phone))
            await asyncio.to_thread(texts.settle, message_sid, "answered",
                                    reply_segments=segments(answer))  # fmt: skip
        elif photos and (recovered or not body.strip()):
            # Photos nobody asked for, or ones a crash lost track of (their links are gone).
            line = lines.fill(lines.lost_photos if recovered else lines.unasked_photo,
                              shop_name, human)  # fmt: skip
            await reply(message_sid, address.twilio, line, live.get(address.phone))
            await asyncio.to_thread(texts.settle, message_sid, "answered",
                                    reply_segments=segments(line))  # fmt: skip
        else:
            said = await talk(address, body, message_sid)
            if said:
                await reply(message_sid, address.twilio, said, live.get(address.phone))
                await asyncio.to_thread(
                    texts.settle, message_sid, "answered",
                    conversation=inbound.conversation, reply_segments=segments(said),
                )  # fmt: skip
            else:
                await asyncio.to_thread(texts.settle, message_sid, "unanswered")

    async def recover() -> int:
        """Answer what a crash left unanswered: every message still "received" when the
        server starts (none is in flight yet), oldest first, as Twilio's retry would be; one
        older than the quiet window is settled "expired" instead. How many were answered."""
        since = texts.clock() - timedelta(hours=settings.text_quiet_hours)
        answered = 0
        try:
            waiting = await asyncio.to_thread(texts.unanswered)
        except Exception:  # the server serves on; the next start tries again
            log.exception("unanswered text messages not looked up")
            return 0
        for inbound in waiting:
            if inbound.received_at < since:
                await asyncio.to_thread(texts.settle, inbound.message_sid, "expired")
                continue
            form = {"Body": inbound.body}
            try:
                async with locks.setdefault(inbound.phone, asyncio.Lock()):
                    await respond(inbound, form, recovered=True)
            except Exception:  # one message's failure must not stop the others
                log.exception("text %s not recovered", inbound.message_sid)
                continue
            answered += 1
        if answered:
            log.info("answered %d text message(s) a restart had left unanswered", answered)
        return answered

    app.state.recover_texts = recover

    @app.post("/twilio/sms")
    async def inbound_message(form: TwilioForm) -> Response:
        """A text message (SMS or WhatsApp) to the shop."""
        message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
        address = parse_address(form.get("From", ""))
        if not message_sid or address is None:
            raise HTTPException(status_code=400, detail="MessageSid and a From number needed")
        media = form.get("NumMedia", "0")
        async with locks.setdefault(address.phone, asyncio.Lock()):
            # one number's messages one at a time, in order
            found, _fresh = await asyncio.to_thread(
                texts.receive, message_sid, address, form.get("Body", ""),
                int(media) if media.isdigit() else 0,
            )  # fmt: skip
            if found.status == "received":  # not a retry of one already answered
                await respond(found, form)
        return Response(_EMPTY, media_type="application/xml")
