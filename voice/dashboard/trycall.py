"""/try: a person calls the agent from a browser, with the microphone; no phone, no Twilio.

The page speaks Twilio's Media Streams protocol (8 kHz µ-law in 20 ms `media` messages, `mark`
echoes once audio has played, `clear`, `dtmf`, `stop`) over /try/media, so the call runs
through the very same `CallSession` as a phone call. Only the way in differs: the dashboard
login stands in for Twilio's handshake signature, and POST /try/session creates the call row
and the stream token that the voice webhook would.

No `from __future__ import annotations` here: FastAPI reads the routes' real annotations.
"""

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from integrations.demo import shop_customers, shop_orders
from integrations.phones import normalize_phone
from voice import twilio
from voice.call import CallSession
from voice.dashboard.auth import Principal
from voice.dashboard.web import Dashboard, render
from voice.server import StarletteSocket

__all__ = ["ANONYMOUS", "TryCustomer", "demo_customers", "router"]

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
"""The caller ID of "unknown number": withheld, so caller ID names nobody (as Twilio sends)."""

NOT_CONNECTED_S = 60.0
"""A call created for the page whose socket never started is marked canceled after this."""


@dataclass(frozen=True)
class TryCustomer:
    """One entry of the caller-ID picker."""

    name: str
    phone: str
    orders: tuple[str, ...]

    @property
    def label(self) -> str:
        """What the picker shows."""
        orders = f" · orders {', '.join(self.orders)}" if self.orders else ""
        return f"{self.name} · {self.phone}{orders}"


def demo_customers(engine: Any) -> list[TryCustomer]:
    """The embedded demo shop's customers, with their order numbers, in the shop's order."""
    with engine.connect() as conn:
        people = conn.execute(
            select(shop_customers.c.id, shop_customers.c.name, shop_customers.c.phone).order_by(
                shop_customers.c.id
            )
        ).all()
        numbers = conn.execute(
            select(shop_orders.c.customer_id, shop_orders.c.number).order_by(shop_orders.c.number)
        ).all()
    by_customer: dict[str, list[str]] = {}
    for customer_id, number in numbers:
        by_customer.setdefault(customer_id, []).append(number)
    return [
        TryCustomer(name, phone, tuple(by_customer.get(cid, ()))) for cid, name, phone in people
    ]


class TrySessionRequest(BaseModel):
    """POST /try/session: who is calling; `csrf` when authenticated by the login cookie."""

    caller: str = Field(max_length=40, description='A phone number, or "anonymous".')
    csrf: str | None = Field(default=None, max_length=200)


def _caller_id(raw: str) -> str:
    """The caller ID to present: E.164, or `anonymous`; 422 for anything else."""
    text = raw.strip()
    if text.lower() in (ANONYMOUS, "unknown", ""):
        return ANONYMOUS
    number = normalize_phone(text)
    if number is None:
        raise HTTPException(
            status_code=422,
            detail=f"{text[:40]!r} is not a phone number; write it like +14155550101",
        )
    return number


def _ws_url(request: Request, path: str) -> str:
    """The socket's address on the host and scheme the browser used to reach us."""
    base = request.base_url
    scheme = "wss" if base.scheme == "https" else "ws"
    return f"{scheme}://{base.netloc}{path}"


def _same_origin(ws: WebSocket, public_url: str) -> bool:
    """A browser's socket must come from a page of this site (another site's page could
    otherwise ride on the login cookie). Clients without an Origin header are not browsers."""
    origin = ws.headers.get("origin")
    if not origin:
        return True
    netloc = urlsplit(origin).netloc.lower()
    ours = {ws.headers.get("host", "").lower(), urlsplit(public_url).netloc.lower()}
    return netloc in ours


def router(dash: Dashboard) -> APIRouter:
    """/try (the page), POST /try/session (a new call) and WS /try/media (its audio)."""
    api = APIRouter()
    settings = dash.settings
    created: dict[str, float] = {}  # CallSid → when the page asked for it (monotonic)

    def order_source() -> tuple[bool, str]:
        """Whether the agent reads the demo shop's customers, and the order source's name."""
        shop = dash.shop
        if shop is None:
            return True, "demo shop"
        orders = shop.providers.orders
        return orders is shop.demo.orders, type(orders).__name__

    async def expire_unconnected() -> None:
        """Calls the page created but never connected are canceled, not left ringing."""
        now = time.monotonic()
        for call_sid, at in list(created.items()):
            if now - at < NOT_CONNECTED_S:
                continue
            created.pop(call_sid, None)
            call = await asyncio.to_thread(dash.store.call, call_sid)
            if call is not None and call.get("status") == "ringing":
                await asyncio.to_thread(
                    dash.store.upsert_call,
                    call_sid,
                    status="canceled",
                    end_reason="browser_not_connected",
                )

    @api.get("/try", response_class=HTMLResponse, dependencies=[dash.page("agent")])
    async def try_page(request: Request) -> HTMLResponse:
        """Talk to the agent with the microphone."""
        demo, source = order_source()
        engine = dash.shop.demo.engine if dash.shop is not None else dash.store.engine
        customers = await asyncio.to_thread(demo_customers, engine) if demo else []
        return render(
            dash,
            request,
            "try.html",
            active="try",
            customers=customers,
            demo=demo,
            order_source=source,
            support_number=settings.support_number,
            anonymous=ANONYMOUS,
        )

    @api.post("/try/session")
    async def new_session(
        request: Request,
        body: Annotated[TrySessionRequest, Body()],
        who: Annotated[Principal, dash.api("agent")],
    ) -> dict[str, Any]:
        """Create a call as the voice webhook would, and the token its socket must present."""
        dash.gate.check_csrf(request, body.csrf or request.headers.get("X-CSRF-Token"))
        caller = _caller_id(body.caller)
        await expire_unconnected()
        call_sid = "CAtry" + secrets.token_hex(14)
        params = {
            "from": caller,
            "to": settings.support_number,
            "direction": "inbound",
            "purpose": "",
            "order": "",
        }
        params["token"] = twilio.make_stream_token(
            settings.secret(), call_sid, params, ttl_s=settings.stream_token_ttl_s
        )
        await asyncio.to_thread(
            dash.store.upsert_call,
            call_sid,
            from_number=caller,
            to_number=settings.support_number,
            direction="inbound",
            purpose=None,
            order_ref=None,
            status="ringing",
        )
        created[call_sid] = time.monotonic()
        await dash.audit(who, "try.call", call_sid, caller=caller)
        log.info("try: browser call %s from %s by %s", call_sid, caller, who.name)
        return {
            "call_sid": call_sid,
            "stream_sid": "MZtry" + secrets.token_hex(14),
            "ws_url": _ws_url(request, "/try/media"),
            "params": params,
        }

    @api.websocket("/try/media")
    async def media(ws: WebSocket) -> None:
        """The browser's Media Stream: the session checks the stream token in `start`."""
        who = dash.gate.principal(ws)  # a WebSocket has the same headers and cookies
        if who is None or not who.user.may("agent"):
            log.warning("try: refused media socket without a dashboard login (agent role)")
            await ws.close(code=1008)  # before accept: the browser gets HTTP 403
            return
        if not _same_origin(ws, settings.public_url):
            log.warning("try: refused media socket from origin %s", ws.headers.get("origin"))
            await ws.close(code=1008)
            return
        await ws.accept()
        session = CallSession(StarletteSocket(ws), dash.deps)
        try:
            await session.run()
        finally:
            if session.info is not None:
                created.pop(session.info.call_sid, None)

    return api
