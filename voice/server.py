"""The FastAPI app: Twilio's webhooks, the media WebSocket, health and the call API.

No `from __future__ import annotations` here: FastAPI resolves the dependency aliases
defined inside `create_app` from real annotations.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect

from dialog.loader import load_flows
from dialog.schema import Conversation
from integrations.accounts import Accounts
from integrations.providers import BuildProviders, build_providers
from integrations.stripe_refunds import StripeRefunds
from integrations.stripe_webhooks import SqlSeenEvents, handle_stripe_event
from integrations.twilio_sms import record_sms_status
from voice import dashboard, twilio
from voice.call import CallDeps, CallSession
from voice.dashboard import Gate, Principal
from voice.outbound import dialer_for, parse_since
from voice.photo_routes import install_photo_routes
from voice.services import build_shop
from voice.settings import Settings
from voice.sms_routes import install_sms_routes
from voice.stt import Transcriber, WhisperTranscriber
from voice.tts import PiperSynthesizer, Synthesizer, speech_chunks

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "Engines",
    "SecretQueryFilter",
    "bounded_body",
    "create_app",
    "default_engines",
]

log = logging.getLogger(__name__)


@dataclass
class Engines:
    """The speech engines a server uses (real ones by default, fakes in some tests)."""

    transcriber: Transcriber
    synthesizer: Synthesizer


# The fields of flow steps and of conversation.yaml that the agent says aloud.
_SPOKEN_FIELDS = frozenset(
    {
        "say",
        "ask",
        "reprompt",
        "empathetic",
        "say_first",
        "confirm",
        "answer",
        *Conversation.model_fields,
    }
)


def _fixed_phrases(settings: Settings) -> tuple[str, ...]:
    """The first part (sentence, or clause of a long one: `speech_chunks`) of every line the
    shop's flows say word for word (`{shop}` filled in): what the synthesizer renders ahead of
    the first caller. That part is what a caller waits for; the rest is synthesized while it
    plays."""
    try:
        flows = load_flows(settings.flows_dir)
    except Exception as exc:  # the agent reports bad flows itself; this is only a cache
        log.warning("no fixed phrases to render ahead: %s", str(exc)[:200])
        return ()
    lines: list[str] = []

    def collect(value: Any, key: str | None = None) -> None:
        if isinstance(value, str) and key in _SPOKEN_FIELDS:
            lines.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                collect(v, k)
        elif isinstance(value, list):
            for v in value:
                collect(v, key)

    for flow in flows.flows.values():
        collect([step.model_dump() for step in flow.steps])
    collect(flows.conversation.model_dump())
    collect([entry.model_dump() for entry in flows.faq])
    phrases = []
    for line in lines:
        sentences = speech_chunks(line.replace("{shop}", settings.shop_name))
        if sentences and "{" not in sentences[0]:
            phrases.append(sentences[0])
    return tuple(dict.fromkeys(phrases))


def default_engines(settings: Settings) -> Engines:
    """faster-whisper and piper, configured from settings."""
    return Engines(
        transcriber=WhisperTranscriber(settings.whisper_options()),
        synthesizer=PiperSynthesizer(settings.piper_options(_fixed_phrases(settings))),
    )


class SecretQueryFilter(logging.Filter):
    """Keeps signed links out of the access log: a return label's `?expires=…&sig=…` is a
    30-day key to the customer's name and address, so the query of such a path is dropped."""

    _SECRET = re.compile(r"(?i)(?:^|[?&])(?:sig|signature|token|code|state)=")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's path arguments without their secret query."""
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        return True

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str) and "?" in value and self._SECRET.search(value):
            return value.split("?", 1)[0] + "?[redacted]"
        return value


_ACCESS_FILTER = SecretQueryFilter()


MAX_WEBHOOK_BYTES = 1024 * 1024
"""The largest webhook body read: Stripe's events are a few kilobytes."""


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than `limit` (by its
    Content-Length, or while it streams in), so nothing reads a huge body into memory."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared[:20]) > limit:
        raise HTTPException(status_code=413, detail="request body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail="request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


class StarletteSocket:
    """Adapts Starlette's WebSocket to the session's `Socket`."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.closed = False

    async def receive(self) -> str | bytes | None:
        """Next frame, or None when the peer has gone."""
        if self.closed:
            return None
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            self.closed = True
            return None
        if message["type"] == "websocket.disconnect":
            self.closed = True
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes", b"")

    async def send(self, text: str) -> None:
        """Send a text frame."""
        await self.ws.send_text(text)

    async def close(self, code: int = 1000) -> None:
        """Close once; later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        with suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.close(code)


def create_app(
    settings: Settings,
    engines: Engines | None = None,
    *,
    calls: Any = None,
    oidc_transport: Any = None,
    make_providers: BuildProviders = build_providers,
) -> FastAPI:
    """Build the app. Models are loaded and warmed at start-up, not on the first call.
    `calls` replaces the Twilio Calls client outbound calls are placed with, and
    `oidc_transport` the HTTP transport of OpenID Connect sign-in (tests); `make_providers`
    chooses the shop's providers (the soak wraps some in fault injectors)."""
    access_log = logging.getLogger("uvicorn.access")
    if _ACCESS_FILTER not in access_log.filters:
        access_log.addFilter(_ACCESS_FILTER)
    shop = build_shop(settings, make_providers)
    dialer = dialer_for(shop, calls=calls)
    store, engine, providers, labels = shop.store, shop.engine, shop.providers, shop.labels
    engines = engines or default_engines(settings)
    deps = CallDeps(
        settings=settings,
        store=store,
        transcriber=engines.transcriber,
        synthesizer=engines.synthesizer,
        make_agent=shop.agent,
        lines=shop.flows.conversation.fault_lines(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.dev:
            log.warning(
                "DEVELOPMENT MODE: Twilio signatures are NOT checked. "
                "Never expose this server to the internet."
            )
        await asyncio.gather(
            asyncio.to_thread(engines.transcriber.warm),
            asyncio.to_thread(engines.synthesizer.warm),
        )
        await deps.prepare()  # the busy message and the apology, playable without synthesis
        if settings.worker_in_process:
            shop.start_worker()
        log.info("postvoice ready: webhooks at %s/twilio/voice", settings.public_url.rstrip("/"))
        log.info("try the agent in a browser: %s/try", settings.public_url.rstrip("/"))
        # Text messages a crash left unanswered, answered beside new ones (`voice.sms_routes`).
        recovering = asyncio.create_task(_app.state.recover_texts())
        yield
        recovering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovering
        if dialer.calls is not None:
            await dialer.calls.aclose()
        await shop.close()

    # No /docs, /redoc or /openapi.json: the API is documented in the README, and its map is
    # not for strangers.
    app = FastAPI(
        title="postvoice", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    app.state.store = store
    app.state.shop = shop.demo
    app.state.runtime = shop
    app.state.deps = deps
    app.state.dialer = dialer
    feed = shop.order_feed()

    async def twilio_form(request: Request) -> dict[str, str]:
        """The webhook's form, after checking X-Twilio-Signature on the configured public URL."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not settings.signatures_required:
            return form
        url = settings.public_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        signature = request.headers.get("X-Twilio-Signature")
        if not token or not twilio.valid_signature(token, url, form, signature):
            log.warning("refused unsigned or badly signed request to %s", request.url.path)
            raise HTTPException(status_code=403, detail="invalid Twilio signature")
        return form

    TwilioForm = Annotated[dict[str, str], Depends(twilio_form)]

    gate = Gate(settings, Accounts(store.engine))
    board = dashboard.Dashboard(
        settings=settings,
        store=store,
        gate=gate,
        shop=shop,
        deps=deps,
        extra={"oidc_transport": oidc_transport},
    )
    dashboard.mount(app, board)
    install_photo_routes(app, shop.photos, gate)
    install_sms_routes(app, shop, twilio_form)
    Viewer = Annotated[Principal, Depends(gate.require("viewer"))]
    Agent = Annotated[Principal, Depends(gate.require("agent"))]
    Approver = Annotated[Principal, Depends(gate.require("approver"))]

    @app.post("/twilio/voice")
    async def voice_webhook(form: TwilioForm, request: Request) -> Response:
        """A call came in (or an outbound call was answered): connect it to our media socket."""
        call_sid = form.get("CallSid", "")
        if not call_sid:
            raise HTTPException(status_code=400, detail="CallSid missing")
        if await asyncio.to_thread(store.call_ended, call_sid):
            # A replayed webhook for a finished call: no new stream, no status change.
            log.warning("voice webhook for finished call %s: answered with a hang-up", call_sid)
            return Response(content=twilio.hangup_twiml(), media_type="application/xml")
        direction = form.get("Direction", "inbound")
        params = {
            "from": form.get("From", ""),
            "to": form.get("To", ""),
            "direction": "outbound" if direction.startswith("outbound") else "inbound",
            "purpose": request.query_params.get("purpose", ""),
            "order": request.query_params.get("order", ""),
        }
        params["token"] = twilio.make_stream_token(
            settings.secret(), call_sid, params, ttl_s=settings.stream_token_ttl_s
        )
        await asyncio.to_thread(
            store.upsert_call,
            call_sid,
            from_number=params["from"],
            to_number=params["to"],
            direction=params["direction"],
            purpose=params["purpose"] or None,
            order_ref=params["order"] or None,
            status=form.get("CallStatus", "ringing"),
        )
        base = settings.public_url.rstrip("/")
        twiml = twilio.connect_twiml(
            settings.public_ws_url + "/twilio/media", params, base + "/twilio/after-stream"
        )
        return Response(content=twiml, media_type="application/xml")

    @app.post("/twilio/after-stream")
    async def after_stream(form: TwilioForm) -> Response:
        """The media stream closed: dial a person if the agent handed off, else hang up."""
        call = await asyncio.to_thread(store.call, form.get("CallSid", ""))
        if call and call.get("transfer_to"):
            return Response(twilio.dial_twiml(call["transfer_to"]), media_type="application/xml")
        return Response(twilio.hangup_twiml(), media_type="application/xml")

    @app.post("/twilio/status")
    async def status_callback(form: TwilioForm) -> dict[str, str]:
        """Twilio's call status callback."""
        call_sid = form.get("CallSid", "")
        status = form.get("CallStatus", "unknown")
        if call_sid:
            await asyncio.to_thread(store.record_status, call_sid, status, form)
            await dialer.on_status(call_sid, status)
        return {"status": "recorded"}

    @app.post("/twilio/amd")
    async def amd_callback(form: TwilioForm) -> dict[str, str]:
        """Twilio's asynchronous answering-machine verdict on a call we placed."""
        call_sid, answered_by = form.get("CallSid", ""), form.get("AnsweredBy", "unknown")
        attempt = await dialer.on_amd(call_sid, answered_by) if call_sid else None
        return {"status": attempt.status if attempt else "unknown call"}

    @app.post("/calls/outbound")
    async def place_outbound(request: Request, who: Agent) -> dict[str, Any]:
        """Place delivery-confirmation calls: `{"order": "1009"}` or
        `{"delivered_since": "2d"}`; each attempt says whether it rang, and if not, why.
        With the login cookie, the `X-CSRF-Token` header is needed too."""
        gate.check_csrf(request, request.headers.get("X-CSRF-Token"))
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not (body.get("order") or body.get("delivered_since")):
            raise HTTPException(
                status_code=422, detail='send {"order": "1009"} or {"delivered_since": "2d"}'
            )
        purpose = str(body.get("purpose") or "delivery_confirmation")
        if body.get("order"):
            numbers = [str(body["order"])]
        else:
            if feed is None:
                raise HTTPException(
                    status_code=422,
                    detail="delivered_since needs a feed of delivered orders, which the "
                    "configured order source lacks; give an order",
                )
            try:
                since = parse_since(str(body["delivered_since"]), dialer.clock())
            except ValueError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from exc
            numbers = await feed.delivered_between(since, dialer.clock() + timedelta(seconds=1))
        attempts = []
        for number in numbers:
            try:
                attempt = (await dialer.request(number, purpose)).as_dict()
            except ValueError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from exc
            attempts.append(attempt)
            await board.audit(
                who, "call.outbound", number, purpose=purpose, status=attempt.get("status")
            )
        return {"attempts": attempts}

    def handshake_signed(ws: WebSocket) -> bool:
        """Twilio signs the socket's opening request too (URL as configured, no parameters)."""
        if not (settings.signatures_required and settings.stream_signature_required):
            return True
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        signature = ws.headers.get("X-Twilio-Signature")
        urls = (settings.public_ws_url, settings.public_url.rstrip("/"))
        return bool(token) and any(
            twilio.valid_signature(token, base + "/twilio/media", {}, signature) for base in urls
        )

    @app.websocket("/twilio/media")
    async def media_socket(ws: WebSocket) -> None:
        """Twilio's bidirectional Media Stream."""
        if not handshake_signed(ws):
            log.warning("refused media socket: unsigned or badly signed handshake")
            await ws.close(code=1008)  # before accept: the client gets HTTP 403
            return
        await ws.accept()
        await CallSession(StarletteSocket(ws), deps).run()

    @app.get("/labels/{rma}.pdf")
    async def label_pdf(rma: str, expires: str = "", sig: str = "") -> Response:
        """A return label, at the signed, expiring link we texted the customer."""
        if not labels.verify(rma, expires, sig):
            raise HTTPException(status_code=403, detail="this label link is invalid or expired")
        pdf = await shop.demo.returns.label_pdf(rma)
        if pdf is None:
            raise HTTPException(status_code=404, detail="no label for this return")
        return Response(
            pdf, media_type="application/pdf", headers={"Cache-Control": "private, no-store"}
        )

    @app.post("/twilio/sms-status")
    async def sms_status(form: TwilioForm) -> Response:
        """Twilio's delivery report for a text we sent."""
        await asyncio.to_thread(record_sms_status, engine, form)
        return Response(status_code=204)

    @app.post("/stripe/webhook")
    async def stripe_webhook(request: Request) -> Response:
        """Stripe events (refund updates), checked against Stripe-Signature, each handled once."""
        secret = settings.stripe_webhook_secret
        if secret is None:
            raise HTTPException(status_code=404, detail="Stripe webhooks are not configured")
        refunds = providers.refunds
        outcome = await handle_stripe_event(
            await bounded_body(request, MAX_WEBHOOK_BYTES),
            request.headers.get("Stripe-Signature", ""),
            secret.get_secret_value(),
            SqlSeenEvents(engine),
            on_event=refunds.apply_event if isinstance(refunds, StripeRefunds) else None,
        )
        return Response(status_code=outcome.http_status)

    @app.get("/api/outbox", dependencies=[Depends(gate.require("viewer"))])
    async def outbox_items(status: str | None = None) -> dict[str, Any]:
        """What waits to leave the machine, what was delivered, and what is dead."""
        items = await asyncio.to_thread(store.outbox_items, status)
        counts = await asyncio.to_thread(store.outbox.counts)
        return {"counts": counts, "items": items}

    @app.post("/api/outbox/{item_id}/retry")
    async def outbox_retry(request: Request, item_id: int, who: Approver) -> dict[str, Any]:
        """Put a dead item back in the queue (after fixing what killed it): it may send a
        refund again, so it needs an approver. With the login cookie, `X-CSRF-Token` too."""
        gate.check_csrf(request, request.headers.get("X-CSRF-Token"))
        if not await asyncio.to_thread(store.outbox.retry_dead, item_id):
            raise HTTPException(status_code=404, detail="no dead outbox item with that id")
        await board.audit(who, "outbox.retry", item_id)
        shop.wake_worker()
        return {"status": "requeued", "id": item_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness, with a database round trip."""
        await asyncio.to_thread(store.call, "__healthz__")
        return {"status": "ok"}

    @app.get("/api/calls/{call_sid}")
    async def call_record(call_sid: str, _who: Viewer) -> dict[str, Any]:
        """One call with its transcript and events (used by replay and the dashboard)."""
        call = await asyncio.to_thread(store.call, call_sid)
        if call is None:
            raise HTTPException(status_code=404, detail="no such call")
        return call

    return app
