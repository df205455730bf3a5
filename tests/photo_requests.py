"""A photo request waiting for Lena's photos, opened the way the damaged-item flow opens it:
a ticket queued through the outbox, then the request with its signed link."""

from __future__ import annotations

from typing import Any

from integrations.outbox import OutboxHelpdesk
from integrations.store import CallEvents

LENA = "+14155550105"


def open_photo_request(client: Any, call_sid: str | None = None) -> Any:
    """A request for photos of Lena's vase (order 1009) on a running app's photo desk; on
    the call or message conversation `call_sid` when given."""
    app = client.app
    key = call_sid or "CA1"
    ticket = client.portal.call(
        lambda: OutboxHelpdesk(CallEvents(app.state.store, call_sid)).create_ticket(
            "Photos of damage: order 1009",
            "waiting for photos",
            requester_phone=LENA,
            requester_email=None,
            tags=["damaged", "photos"],
            priority="normal",
            idempotency_key=f"{key}:ticket:photos:1009",
        )
    )
    return client.portal.call(
        lambda: app.state.photos.request_photos(
            order_number="1009",
            line_id="1009-1",
            phone=LENA,
            resolution="replacement",
            ticket_id=ticket.id,
            call_sid=call_sid,
            idempotency_key=f"{key}:photos:1009:1009-1",
        )
    )
