"""The operations pages: calls, one call, tickets, returns, refund approvals and the audit.

Server-rendered from `templates/`, no front-end build. Every page needs a login (a browser
without one is sent to /login), every change the right role and the form's CSRF token (or a
valid Bearer token); each decision names the person who made it and is in the audit log.
Transcripts were redacted of card numbers when written; everything else shown from events and
outbox rows passes through the redactor again here, in case a provider or a note carried one.

Also JSON for scripts: GET /api/approvals, POST /api/approvals/{id}.

No `from __future__ import annotations`: FastAPI resolves the routes' annotations at runtime.
"""

import asyncio
import logging
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from integrations.approvals import (
    Approvals,
    NotPending,
    PendingRefund,
    describe,
    money,
)
from integrations.clock import aware
from integrations.dashboard_queries import (
    CHANNELS,
    MESSAGE_CHANNELS,
    OUTCOMES,
    TICKET_STATES,
    CallFilter,
)
from integrations.outbox import OutboxEntry
from integrations.redact import redact_card_numbers
from voice.dashboard.auth import Principal
from voice.dashboard.web import Dashboard, render
from voice.outbound import parse_since

__all__ = ["PER_PAGE", "router"]

log = logging.getLogger(__name__)

PER_PAGE = 50
"""Rows per page of the calls, tickets and returns lists."""

RETURN_ORDERS_PER_PAGE = 25
"""Orders per page of the returns list (each may have several RMAs)."""

RETURNS_LOOKUP_S = 5.0
"""How long the returns page waits for the Returns provider's RMA statuses."""

# What a recording's file name may be: a call sid, nothing that could leave the folder.
_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")

_OUTCOME_BADGES = {"resolved": "ok", "handed_off": "warn", "failed": "bad"}
_CHANNEL_NAMES = {"voice": "Voice", "typed": "Typed", "sms": "SMS", "whatsapp": "WhatsApp"}
_OUTBOX_BADGES = {"delivered": "ok", "dead": "bad"}
_RESULTS = ("approved", "denied", "already_decided")
_TICKET_EVENTS = ("ticket.created",)
_RETURN_EVENTS = (
    "return.created",
    "return.received",
    "return.denied",
    "exchange.created",
    "replacement.created",
    "return.label_created",
)
_REFUND_EVENTS = (
    "refund.created",
    "refund.pending_approval",
    "refund.denied",
    "refund.held",
    "refund.approved",
    "refund.approval_denied",
)


class Fmt:
    """Formatting the templates use, in one place."""

    @staticmethod
    def when(value: datetime | None) -> str:
        """A moment, in UTC, to the minute."""
        if value is None:
            return "—"
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    @staticmethod
    def ms(value: Any) -> str:
        """A duration in milliseconds: "612 ms"; a dash when unknown."""
        return f"{int(value):,} ms" if isinstance(value, int | float) else "—"

    @staticmethod
    def clock(value: Any) -> str:
        """A point in the call: "1:02.4"."""
        if not isinstance(value, int | float):
            return "—"
        minutes, rest = divmod(int(value), 60_000)
        return f"{minutes}:{rest / 1000:04.1f}"

    @staticmethod
    def seconds(value: int | None) -> str:
        """A call's length: "2:05"."""
        if value is None:
            return "—"
        minutes, rest = divmod(int(value), 60)
        return f"{minutes}:{rest:02d}"

    money = staticmethod(money)

    @staticmethod
    def text(value: Any) -> str:
        """Free text, card numbers removed."""
        return redact_card_numbers("" if value is None else str(value))

    @staticmethod
    def data(data: dict[str, Any] | None, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """An event's data as (key, value) pairs to show, card numbers removed."""
        pairs = []
        for key, value in (data or {}).items():
            if key in skip or value in (None, "", [], {}):
                continue
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            pairs.append((key, redact_card_numbers(shown)))
        return pairs

    @staticmethod
    def channel(value: str | None) -> str:
        """A channel as people write it: "SMS", "WhatsApp"."""
        return _CHANNEL_NAMES.get(value or "voice", value or "")

    @staticmethod
    def outcome_badge(outcome: str) -> str:
        """The badge class of a call's outcome."""
        return _OUTCOME_BADGES.get(outcome, "")

    @staticmethod
    def outbox_badge(status: str | None) -> str:
        """The badge class of an outbox row's (or a ticket's) state."""
        return _OUTBOX_BADGES.get(status or "", "warn" if status else "")

    @staticmethod
    def outbox_state(entry: OutboxEntry | None) -> str:
        """An outbox row's state as people say it: queued, delivered, dead."""
        if entry is None:
            return ""
        return "queued" if entry.status in ("pending", "delivering") else entry.status


def _approvals(dash: Dashboard) -> Approvals:
    """The approvals desk over the running shop's order source and refunds provider."""
    shop = dash.shop
    providers = shop.providers if shop is not None else None
    policy = getattr(shop, "policy", None)
    days = tuple(policy.refunds.timing_business_days) if policy is not None else (5, 10)
    return Approvals(
        dash.store,
        orders=providers.orders if providers is not None else None,
        refunds=providers.refunds if providers is not None else None,
        shop_name=dash.settings.shop_name,
        refund_days=days,  # type: ignore[arg-type]
        wake=shop.wake_worker if shop is not None else None,
    )


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else 1


def _links(path: str, params: dict[str, str], page: int, pages: int) -> dict[str, str | None]:
    """The previous and next page's URLs, keeping the filters."""
    kept = {k: v for k, v in params.items() if v}

    def at(n: int) -> str:
        query = urlencode({**kept, "page": n} if n > 1 else kept)
        return f"{path}?{query}" if query else path

    return {
        "prev": at(page - 1) if page > 1 else None,
        "next": at(page + 1) if page < pages else None,
    }


def _entries_by_ref(outbox: list[dict[str, Any]]) -> dict[str, OutboxEntry]:
    return {f"outbox:{row['id']}": OutboxEntry(**row) for row in outbox}


def _related(call: dict[str, Any], approvals: list[PendingRefund]) -> dict[str, list[Any]]:
    """What the call caused, by kind, each event with its outbox rows."""
    rows = _entries_by_ref(call["outbox"])

    def with_rows(types: tuple[str, ...]) -> list[dict[str, Any]]:
        found = []
        for event in call["events"]:
            if event["type"] not in types:
                continue
            data = event["data"] or {}
            refs = [str(r) for r in data.get("outbox") or []]
            found.append({**event, "data": data, "rows": [rows[r] for r in refs if r in rows]})
        return found

    by_id = {a.id: a for a in approvals}
    refunds = with_rows(_REFUND_EVENTS)
    for event in refunds:
        event["approval"] = by_id.get(event["id"])
    return {
        "tickets": with_rows(_TICKET_EVENTS),
        "returns": with_rows(_RETURN_EVENTS),
        "refunds": refunds,
        "sms": [e for e in rows.values() if e.kind == "sms"],
    }


def _thread(call: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversation by text messages as its thread: each message (a turn) with its time and
    side, and the events recorded with it, up to the next message. Events recorded before the
    first message go with the first."""
    started = aware(call["started_at"] or call["created_at"])
    items: list[dict[str, Any]] = []
    for turn in call["turns"]:
        ms = turn["start_ms"]
        at = started + timedelta(milliseconds=ms) if started and ms is not None else None
        items.append({"turn": turn, "at": at, "ms": ms, "events": []})
    for event in call["events"]:
        if not items:
            break
        ms = event["at_ms"]
        when = aware(event["created_at"])
        home = items[0]
        for item in items[1:]:
            if ms is not None and item["ms"] is not None:
                reached = item["ms"] <= ms
            else:
                reached = item["at"] is not None and when is not None and item["at"] <= when
            if reached:
                home = item
        home["events"].append(event)
    return items


def _recording(dash: Dashboard, sid: str) -> Any:
    """The call's recording file, when the sid is a plain id and the file exists."""
    if not _SID.match(sid):
        return None
    folder = dash.settings.recordings_dir
    path = folder / f"{sid}.wav"
    try:
        if path.resolve().parent != folder.resolve() or not path.is_file():
            return None
    except OSError:
        return None
    return path


async def _returns_of(dash: Dashboard, orders: set[str]) -> dict[str, list[Any]]:
    """Order → the Returns provider's RMAs of it (`ReturnAuthorization`s), for the page's
    orders; an order the provider could not answer for is left out."""
    if dash.shop is None or not orders:
        return {}
    returns = dash.shop.providers.returns

    async def of(order: str) -> tuple[str, list[Any] | None]:
        try:
            return order, await returns.returns_of(order)
        except Exception as exc:  # the page still shows what the store knows
            log.warning("returns page: RMAs of order %s unknown: %s", order, exc)
            return order, None

    try:
        async with asyncio.timeout(RETURNS_LOOKUP_S):
            found = await asyncio.gather(*(of(o) for o in sorted(orders)))
    except TimeoutError:
        log.warning("returns page: the returns provider did not answer in time")
        return {}
    return {order: ras for order, ras in found if ras is not None}


def _lines(data: dict[str, Any]) -> list[str]:
    return [str(data["line_id"])] if data.get("line_id") else []


def _return_rows(group: dict[str, Any], ras: list[Any] | None) -> list[dict[str, Any]]:
    """One order's rows on the returns page: each RMA (the provider's, or as the agent
    recorded it when the provider did not answer), and each return the agent refused."""
    order, found = group["order_ref"], group["events"]
    by_rma: dict[str, list[dict[str, Any]]] = {}
    for event in found:
        if event["data"].get("rma"):
            by_rma.setdefault(str(event["data"]["rma"]), []).append(event)
    called = [e["call_sid"] for e in found if e["call_sid"]]
    known = {ra.rma: ra for ra in ras or []}
    rows = []
    for rma in [*known, *(r for r in by_rma if r not in known)]:
        ra, mine = known.get(rma), by_rma.get(rma, [])
        created = next((e for e in mine if e["type"] == "return.created"), None)
        exchange = next((e for e in mine if e["type"] == "exchange.created"), None)
        data = created["data"] if created else {}
        rows.append(
            {
                "rma": rma,
                "order_ref": order,
                "refused": False,
                "lines": list(ra.line_ids) if ra else _lines(data),
                "reason": ra.reason_code if ra else data.get("reason_code"),
                "resolution": ra.resolution if ra else data.get("resolution"),
                "variant": (ra.exchange_variant if ra else None)
                or (exchange["data"].get("variant") if exchange else None),
                "replacement": any(e["type"] == "replacement.created" for e in mine),
                "status": ra.status if ra else None,
                "label": group["labels"].get(rma),
                "label_made": bool(ra is not None and ra.label is not None),
                "call_sid": (created["call_sid"] if created else None)
                or (called[-1] if called else None),
                "created_at": ra.created_at if ra else (created or {}).get("created_at"),
                "details": [],
            }
        )
    for event in found:
        if event["type"] != "return.denied":
            continue
        data = event["data"]
        rows.append(
            {
                "rma": None,
                "order_ref": order,
                "refused": True,
                "lines": _lines(data),
                "reason": data.get("reason"),
                "status": "refused",
                "call_sid": event["call_sid"],
                "created_at": event["created_at"],
                "details": Fmt.data(data, ("reason", "line_id")),
            }
        )
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(rows, key=lambda r: r["created_at"] or oldest, reverse=True)


def _approval_json(approval: PendingRefund) -> dict[str, Any]:
    data = asdict(approval)
    data["refund_key"] = approval.refund_key
    return jsonable_encoder(data)


class DecisionIn(BaseModel):
    """A person's decision on a pending refund, as JSON."""

    decision: Literal["approve", "deny"]
    note: str = Field(default="", max_length=2000)


def router(dash: Dashboard) -> APIRouter:
    """The calls, call, tickets, returns and approvals pages, and the approvals API."""
    api = APIRouter()
    store = dash.store
    desk = _approvals(dash)
    fmt = Fmt()

    @api.get("/dashboard/calls", dependencies=[dash.page()])
    async def calls_list(
        request: Request,
        q: str = "",
        direction: str = "",
        channel: str = "",
        outcome: str = "",
        intent: str = "",
        handoff: str = "",
        since: str = "",
        page: str = "1",
    ) -> Response:
        """Every call, newest first, narrowed by the filters and the search."""
        error = None
        since_at = None
        if since.strip():
            try:
                since_at = parse_since(since, datetime.now(UTC))
            except ValueError:
                error = f"“Since” takes a date (2025-03-01) or a span (24h, 7d), not {since!r}."
        filters = CallFilter(
            q=q.strip()[:200],
            direction=direction if direction in ("inbound", "outbound") else None,
            channel=channel if channel in CHANNELS else None,
            outcome=outcome if outcome in OUTCOMES else None,
            intent=intent.strip() or None,
            handoff={"yes": True, "no": False}.get(handoff),
            since=since_at,
        )
        found, intents = await asyncio.gather(
            asyncio.to_thread(
                store.calls_page, filters, page=_page_number(page), per_page=PER_PAGE
            ),
            asyncio.to_thread(store.intent_names),
        )
        params = {
            "q": q,
            "direction": direction,
            "channel": channel if channel in CHANNELS else "",
            "outcome": outcome,
            "intent": intent,
            "handoff": handoff,
            "since": since,
        }
        return render(
            dash,
            request,
            "calls.html",
            active="calls",
            calls=found,
            params=params,
            outcomes=OUTCOMES,
            channels=CHANNELS,
            intents=intents,
            error=error,
            links=_links("/dashboard/calls", params, found.page, found.pages),
            fmt=fmt,
        )

    @api.get("/dashboard/calls/{call_sid}", dependencies=[dash.page()])
    async def call_page(request: Request, call_sid: str) -> Response:
        """One call: its transcript with timings, its events, what it caused, its recording;
        a conversation by text messages as its thread, each message with its events."""
        call = await asyncio.to_thread(store.call, call_sid)
        if call is None:
            return render(
                dash, request, "call.html", active="calls", call=None, sid=call_sid, status=404
            )
        pending_ids = [e["id"] for e in call["events"] if e["type"] == "refund.pending_approval"]
        found, *approvals = await asyncio.gather(
            asyncio.to_thread(store.calls_page, CallFilter(call_sid=call_sid), per_page=1),
            *(asyncio.to_thread(desk.get, i) for i in pending_ids),
        )
        photo_desk = getattr(dash.shop, "photos", None)
        refs = [
            str((e["data"] or {}).get("reference") or "")
            for e in call["events"]
            if e["type"] == "ticket.created"
        ]
        photos = {}
        if photo_desk is not None and any(refs):
            photos = await asyncio.to_thread(photo_desk.photos_of_tickets, refs)
        return render(
            dash,
            request,
            "call.html",
            active="calls",
            call=call,
            sid=call_sid,
            summary=found.items[0] if found.items else None,
            related=_related(call, [a for a in approvals if a is not None]),
            recording=_recording(dash, call_sid) is not None,
            thread=_thread(call) if call.get("channel") in MESSAGE_CHANNELS else None,
            photos=photos,
            fmt=fmt,
        )

    # What was said, card numbers included: not for every viewer.
    @api.get("/dashboard/calls/{call_sid}/recording.wav", dependencies=[dash.api("agent")])
    async def recording(call_sid: str) -> Response:
        """The call's stereo recording (caller left, agent right), when there is one."""
        path = _recording(dash, call_sid)
        if path is None:
            raise HTTPException(status_code=404, detail="no recording of this call")
        return FileResponse(
            path,
            media_type="audio/wav",
            headers={"Cache-Control": "private, no-store"},
        )

    @api.get("/dashboard/tickets", dependencies=[dash.page()])
    async def tickets(request: Request, state: str = "", page: str = "1") -> Response:
        """Tickets for people, newest first: queued, delivered to the helpdesk, or dead."""
        state = state if state in TICKET_STATES else ""
        found = await asyncio.to_thread(
            store.tickets_page, state or None, page=_page_number(page), per_page=PER_PAGE
        )
        desk = getattr(dash.shop, "photos", None)
        photos = {}
        if desk is not None:
            refs = [t["reference"] for t in found.items]
            photos = await asyncio.to_thread(desk.photos_of_tickets, refs)
        return render(
            dash,
            request,
            "tickets.html",
            active="tickets",
            tickets=found,
            photos=photos,
            state=state,
            states=list(TICKET_STATES),
            links=_links("/dashboard/tickets", {"state": state}, found.page, found.pages),
            fmt=fmt,
        )

    @api.get("/dashboard/returns", dependencies=[dash.page()])
    async def returns(request: Request, page: str = "1") -> Response:
        """Returns, by order with the latest activity first: each RMA with its status from the
        Returns provider and its label, and each return the agent refused."""
        found = await asyncio.to_thread(
            store.returns_page, page=_page_number(page), per_page=RETURN_ORDERS_PER_PAGE
        )
        ras = await _returns_of(dash, {g["order_ref"] for g in found.items})
        rows = [row for g in found.items for row in _return_rows(g, ras.get(g["order_ref"]))]
        return render(
            dash,
            request,
            "returns.html",
            active="returns",
            orders=found,
            rows=rows,
            links=_links("/dashboard/returns", {}, found.page, found.pages),
            fmt=fmt,
        )

    @api.get("/dashboard/approvals", dependencies=[dash.page()])
    async def approvals_page(request: Request, decided: str = "", result: str = "") -> Response:
        """Refunds above the approval line waiting for a person, and those decided."""
        flash = None
        if decided.isdigit() and result in _RESULTS:
            approval = await asyncio.to_thread(desk.get, int(decided))
            if approval is not None:
                flash = describe(approval, result)
        return await _approvals_view(request, flash=flash)

    async def _approvals_view(
        request: Request, *, flash: str | None = None, error: str | None = None, status: int = 200
    ) -> Response:
        pending, decided = await asyncio.gather(
            asyncio.to_thread(desk.pending), asyncio.to_thread(desk.decided)
        )
        return render(
            dash,
            request,
            "approvals.html",
            active="approvals",
            pending=pending,
            decided=decided,
            flash=flash,
            error=error,
            status=status,
            fmt=fmt,
        )

    async def decided(who: Principal, event_id: int, decision: str, note: str) -> Any:
        """Decide as `who` (the approval names them) and put the decision in the audit log."""
        done = await desk.decide(event_id, decision, decided_by=who.name, note=note)
        if done.status != "already_decided":
            approval = done.approval
            await dash.audit(
                who,
                f"refund.{decision}",
                event_id,
                order=approval.order_ref,
                line=approval.line_id,
                amount_cents=approval.amount_cents,
                outcome=done.status,
                note=note or None,
            )
        return done

    @api.post("/dashboard/approvals/{event_id}")
    async def decide_form(
        request: Request,
        event_id: int,
        who: Annotated[Principal, dash.api("approver")],
        decision: str = Form(""),
        note: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        """A person's click on Approve or Deny; back to the list, which says what happened."""
        dash.gate.check_csrf(request, csrf)
        try:
            done = await decided(who, event_id, decision, note)
        except NotPending as exc:
            return await _approvals_view(request, error=str(exc), status=404)
        except ValueError as exc:
            return await _approvals_view(request, error=str(exc), status=422)
        query = urlencode({"decided": event_id, "result": done.status})
        return RedirectResponse(f"/dashboard/approvals?{query}", status_code=303)

    @api.get("/api/approvals", dependencies=[dash.api()])
    async def approvals_json() -> dict[str, Any]:
        """Refunds waiting for a decision, and the latest decided."""
        pending, decided = await asyncio.gather(
            asyncio.to_thread(desk.pending), asyncio.to_thread(desk.decided)
        )
        return {
            "pending": [_approval_json(a) for a in pending],
            "decided": [_approval_json(a) for a in decided],
        }

    @api.post("/api/approvals/{event_id}")
    async def decide_json(
        request: Request,
        event_id: int,
        body: DecisionIn,
        who: Annotated[Principal, dash.api("approver")],
    ) -> Response:
        """`{"decision": "approve"|"deny", "note": "…"}`: 200 when decided now, 409 when it
        was decided before (nothing more is done), 404 for an unknown id."""
        dash.gate.check_csrf(request, request.headers.get("X-CSRF-Token"))
        try:
            done = await decided(who, event_id, body.decision, body.note)
        except NotPending as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        content = {
            "status": done.status,
            "message": done.message,
            "approval": _approval_json(done.approval),
        }
        return JSONResponse(content, status_code=409 if done.status == "already_decided" else 200)

    @api.get("/dashboard/audit", dependencies=[dash.page()])
    async def audit_page(request: Request, page: str = "1") -> Response:
        """Every decision a person made, newest first, with who made it."""
        number = _page_number(page)
        entries, total = await asyncio.to_thread(
            dash.gate.accounts.audit_entries, page=number, per_page=PER_PAGE
        )
        pages = max(1, -(-total // PER_PAGE))
        return render(
            dash,
            request,
            "audit.html",
            active="audit",
            entries=entries,
            total=total,
            page=number,
            pages=pages,
            links=_links("/dashboard/audit", {}, number, pages),
            fmt=fmt,
        )

    @api.get("/api/audit", dependencies=[dash.api()])
    async def audit_json(page: str = "1") -> dict[str, Any]:
        """The audit log as JSON, 50 a page, newest first."""
        entries, total = await asyncio.to_thread(
            dash.gate.accounts.audit_entries, page=_page_number(page), per_page=PER_PAGE
        )
        return {"total": total, "entries": jsonable_encoder([asdict(e) for e in entries])}

    return api
