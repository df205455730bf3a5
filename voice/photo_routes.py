"""The photo upload page a customer opens from the texted link, and the dashboard's view of
the photos kept.

`GET /photos/{id}?expires=…&sig=…` is a page for a phone: choose or take up to five photos,
send them. `POST` to the same link takes them (`integrations.photos.PhotoDesk.accept`) and
shows what the shop says next. Both answer 403 to a link that is forged, for another request,
or expired. `GET /dashboard/photos/{photo_id}` shows one kept photo to a logged-in viewer;
nothing else ever serves a photo.
"""

import asyncio

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.formparsers import MultiPartException
from starlette.types import Message, Receive

from integrations.photos import Acceptance, PhotoDesk, Upload
from voice.dashboard import Gate
from voice.dashboard.web import TEMPLATES

__all__ = ["install_photo_routes"]

_NO_STORE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}

_REASONS = {
    "too_many": "more photos than this link takes",
    "too_large": "too large",
    "not_image": "not a photo (JPEG, PNG or WebP)",
    "empty": "empty",
}


def _page(request: Request, status: int, **context: object) -> HTMLResponse:
    shop = request.app.state.settings.shop_name
    return TEMPLATES.TemplateResponse(
        request,
        "photo_upload.html",
        {"shop": shop, **context},
        status_code=status,
        headers=_NO_STORE,
    )


def install_photo_routes(app: FastAPI, desk: PhotoDesk, gate: Gate) -> None:
    """Add the upload page (signed link) and the dashboard's photo view to `app`."""
    app.state.photos = desk
    options = desk.options

    @app.get("/photos/{request_id}")
    async def photo_page(
        request: Request, request_id: str, expires: str = "", sig: str = ""
    ) -> Response:
        """The upload page of a photo request, at the signed link we texted."""
        found = await desk.open(request_id, expires, sig)
        if found is None:
            return _page(request, 403, invalid=True)
        if found.status == "fulfilled":
            text = await desk.follow_up.already(found) if desk.follow_up else ""
            return _page(request, 200, ask=found, done=True, reply=text)
        return _page(
            request,
            200,
            ask=found,
            room=options.max_photos - found.photo_count,
            max_mb=options.max_bytes // (1024 * 1024),
        )

    @app.post("/photos/{request_id}")
    async def photo_upload(
        request: Request, request_id: str, expires: str = "", sig: str = ""
    ) -> Response:
        """Photos sent from the upload page."""
        found = await desk.open(request_id, expires, sig)
        if found is None:
            return _page(request, 403, invalid=True)
        max_mb = options.max_bytes // (1024 * 1024)
        room = options.max_photos - found.photo_count
        declared = request.headers.get("content-length", "")
        limit = (options.max_photos + 2) * options.max_bytes

        def too_much() -> HTMLResponse:
            return _page(
                request,
                413,
                ask=found,
                room=room,
                max_mb=max_mb,
                error=f"That was too much at once: up to {room} photos of {max_mb} MB.",
            )

        if declared.isdigit() and int(declared[:20]) > limit:
            return too_much()
        # A body sent without its length (chunked) is counted as it streams in: the parser
        # stops at the limit instead of spooling whatever comes to disk.
        capped = Request(request.scope, _capped(request.receive, limit))
        try:
            form = await capped.form(max_files=options.max_photos * 4, max_fields=20)
        except _TooLarge:
            return too_much()
        except MultiPartException as exc:
            return _page(request, 400, ask=found, room=room, max_mb=max_mb, error=str(exc))
        files = []
        try:
            for item in form.getlist("photos"):
                if isinstance(item, str):
                    continue
                data = await item.read(options.max_bytes + 1)
                if not data and not item.filename:
                    continue  # the empty file input of a form sent with nothing chosen
                files.append(Upload(data, item.content_type or "", item.filename or "photo"))
        finally:
            await form.close()
        if not files:
            return _page(
                request,
                400,
                ask=found,
                room=room,
                max_mb=max_mb,
                error="Please choose at least one photo.",
            )
        accepted = await desk.accept(found, files, source="upload")
        return _result(request, accepted, max_mb)

    @app.get("/dashboard/photos/{photo_id}", dependencies=[Depends(gate.require_page("viewer"))])
    async def dashboard_photo(photo_id: int) -> Response:
        """One kept photo of damage, for a person logged in to the dashboard."""
        found = await asyncio.to_thread(desk.photo, photo_id)
        if found is None:
            return Response("no such photo", status_code=404, media_type="text/plain")
        content_type, data = found
        return Response(data, media_type=content_type, headers=_NO_STORE)


class _TooLarge(Exception):
    """The body streamed past its limit."""


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive` that raises `_TooLarge` once the body it has passed on exceeds `limit`."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message

    return capped


def _result(request: Request, accepted: Acceptance, max_mb: int) -> HTMLResponse:
    found = accepted.request
    rejected = [(name, _REASONS.get(reason, reason)) for name, reason in accepted.rejected]
    room = max(0, found.max_photos - found.photo_count)
    if accepted.already:
        return _page(request, 409, ask=found, done=True, reply=accepted.reply)
    if not accepted.stored:
        return _page(
            request,
            400,
            ask=found,
            room=room,
            max_mb=max_mb,
            rejected=rejected,
            error=accepted.reply or "None of those could be used.",
        )
    return _page(
        request,
        200,
        ask=found,
        sent=accepted.stored,
        rejected=rejected,
        reply=accepted.reply,
        done=found.status == "fulfilled",
        room=room,
        max_mb=max_mb,
    )
