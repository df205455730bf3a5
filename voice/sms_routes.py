"""`POST /twilio/sms`: text messages (SMS and WhatsApp) to the shop's number.

Signed like every Twilio webhook (the server's check: unsigned or badly signed gets 403).
Each message is recorded once by its `MessageSid` (`integrations.messaging`), so Twilio's
retry of a webhook gets the same empty answer and no second reply. The carriers' keywords are
answered here, one confirmation each, through the outbox with a key derived from the message's
SID (a crash between receiving and replying neither loses nor doubles it): STOP and its
synonyms opt the number out (and onto the do-not-call list), START opts it back in, HELP says
who we are. A number that opted out gets no reply to anything else.

Not yet here: the conversation itself (other messages are recorded, status `received`, and
not answered), WhatsApp's template rule, the flood limit and MMS photos.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response

from integrations.messaging import MessagingLines, MessagingStore, keyword_of, parse_address
from integrations.messaging import create_all as create_messaging_tables
from integrations.outbox import OutboxMessenger
from integrations.store import CallEvents

__all__ = ["install_sms_routes"]

log = logging.getLogger(__name__)

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

    async def reply(message_sid: str, to: str, body: str) -> None:
        messenger = OutboxMessenger(CallEvents(shop.store, None), wake=shop.wake_worker)
        await messenger.send_sms(to, body, idempotency_key=f"reply:{message_sid}")

    @app.post("/twilio/sms")
    async def inbound_message(form: TwilioForm) -> Response:
        """A text message (SMS or WhatsApp) to the shop."""
        message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
        address = parse_address(form.get("From", ""))
        if not message_sid or address is None:
            raise HTTPException(status_code=400, detail="MessageSid and a From number needed")
        body = form.get("Body", "")
        media = form.get("NumMedia", "0")
        lock = locks.setdefault(address.phone, asyncio.Lock())
        async with lock:  # one number's messages one at a time, in order
            found, _fresh = await asyncio.to_thread(
                texts.receive, message_sid, address, body, int(media) if media.isdigit() else 0
            )
            if found.status != "received":
                return Response(_EMPTY, media_type="application/xml")  # a retry: answered
            keyword = keyword_of(body)
            shop_name, human = settings.shop_name, settings.human_number
            if keyword == "stop":
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
            elif keyword == "help":
                await reply(message_sid, address.twilio, lines.fill(lines.help, shop_name, human))
                await asyncio.to_thread(texts.settle, message_sid, "answered", reply_segments=1)
            else:
                log.info("text message %s recorded; conversations by text are not wired yet",
                         message_sid)  # fmt: skip
        return Response(_EMPTY, media_type="application/xml")
