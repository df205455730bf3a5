"""After the call: photos of damage have arrived, and the damaged-item flow carries on.

`DamageEvidence` is the `integrations.photos.FollowUp` the app hands its photo desk. When a
customer's photos are kept it attaches them to the request's ticket (through the helpdesk,
so through the outbox), then does what the customer agreed to on the call, with the same
actions the flow runs (`create_replacement`, then `open_claim`), under the call's own
idempotency keys: a replacement arranged on the call and again here is one replacement. The
customer is told a replacement is on its way only once it has been created; otherwise that
their photos are in and a person follows up on the ticket. Every wording is
`conversation.yaml`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from dialog.actions import ACTIONS
from dialog.actions.registry import ActionContext, ServiceUnavailable
from dialog.events import CallInfo, Event
from dialog.policy import Policy
from dialog.speech import say_items
from integrations.clock import Clock, utc_now
from integrations.models import Attachment, PhotoRequest
from integrations.photos import Reply
from integrations.protocols import ProviderError, Services

__all__ = ["DamageEvidence"]

_log = logging.getLogger(__name__)

_PROBLEMS = {
    "too_many": "that's more photos than we can take",
    "too_large": "a file was too large",
    "not_image": "that wasn't a photo",
    "empty": "a file was empty",
    "unavailable": "we couldn't download your photos",
}


async def _quiet(_event: Event) -> None:
    """Nobody is on the line after the call: an action's words go nowhere."""


class DamageEvidence:
    """What follows photos of damage (an `integrations.photos.FollowUp`).

    `services_for(request)` gives the services of the request's conversation (its events
    recorded on the call that asked for the photos); `sms` are the conversation file's
    templates.
    """

    def __init__(
        self,
        services_for: Callable[[PhotoRequest], Services],
        policy: Policy,
        sms: Mapping[str, str],
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.services_for = services_for
        self.policy = policy
        self.sms = dict(sms)
        self.clock = clock

    def _context(self, services: Services, request: PhotoRequest, now: datetime) -> ActionContext:
        # The number is left off the call: the reply carries the news (an MMS is answered, an
        # upload is texted below), so the actions' own texts would say it twice.
        call = CallInfo(
            call_sid=request.call_sid or f"photos-{request.id}",
            from_number="",
            to_number="",
            order_ref=request.order_number,
        )
        return ActionContext(
            services=services,
            policy=self.policy,
            slots={"claim_kind": "damaged"},
            call=call,
            now=now,
            tz=services.timezone,
            emit=_quiet,
            sms_templates=self.sms,
            memo={"line_id": request.line_id},
        )

    def _text(self, name: str, services: Services, **fields: Any) -> str:
        template = self.sms.get(name, "")
        return template.format_map({"shop": services.shop_name, **fields}).strip()

    async def received(self, request: PhotoRequest, files: list[Attachment], source: str) -> Reply:
        """Attach the new photos to the ticket, arrange the replacement, and say so."""
        services = self.services_for(request)
        ctx = self._context(services, request, self.clock())
        order = await services.orders.order(request.order_number)
        item = say_items(order) if order else "item"
        await self._attach(services, ctx, request, files)
        await ctx.record(
            "photos.received",
            order=request.order_number,
            request_id=request.id,
            photos=len(files),
            source=source,
            ticket_id=request.ticket_id,
        )
        rma = None
        if order is not None and request.resolution == "replacement":
            ctx.slots["order"] = order
            rma = await self._replace(ctx)
        if rma is None:
            text = self._text(
                "photos_kept",
                services,
                order=request.order_number,
                item=item,
                ticket=request.ticket_id,
            )
            return Reply(text, fulfilled=False)
        text = self._text(
            "photos_received", services, order=request.order_number, item=item, rma=rma
        )
        if source != "mms":  # an MMS is answered with the reply itself; an upload is texted
            await self._send(services, ctx, request, text)
        return Reply(text, fulfilled=True)

    async def _attach(
        self, services: Services, ctx: ActionContext, request: PhotoRequest, files: list[Attachment]
    ) -> None:
        if services.helpdesk is None or not request.ticket_id or not files:
            return
        note = f"Photos of the damage from the customer, order {request.order_number}."
        key = f"photos:{request.id}:{'+'.join(f.ref.split(':')[-1] for f in files)}"
        try:
            await ctx.fetch(
                services.helpdesk.attach(request.ticket_id, files, note=note, idempotency_key=key),
                announce=False,
            )
        except (ServiceUnavailable, ProviderError, ValueError):
            # The photos are kept here and shown on the dashboard's ticket all the same.
            _log.exception("photos of request %s not attached to %s", request.id, request.ticket_id)

    async def _replace(self, ctx: ActionContext) -> str | None:
        """The replacement's RMA once created (and the carrier claim opened), else None."""
        try:
            await ACTIONS["create_replacement"].run(ctx)
        except (ServiceUnavailable, ProviderError):
            _log.exception("replacement after photos failed on %s", ctx.call.call_sid)
            return None
        if not ctx.slots.get("replacement_created"):
            return None
        try:
            await ACTIONS["open_claim"].run(ctx)
        except (ServiceUnavailable, ProviderError):
            _log.exception("carrier claim after photos failed on %s", ctx.call.call_sid)
        return str(ctx.slots.get("rma") or "")

    async def _send(
        self, services: Services, ctx: ActionContext, request: PhotoRequest, text: str
    ) -> None:
        try:
            message_id = await ctx.fetch(
                services.messenger.send_sms(
                    request.phone,
                    text,
                    idempotency_key=ctx.key("sms", "photos_received", request.order_number),
                ),
                announce=False,
            )
        except (ServiceUnavailable, ProviderError, ValueError):
            _log.exception("could not text %s that the photos are in", request.id)
            return
        await ctx.record(
            "sms.sent",
            order=request.order_number,
            to=request.phone,
            message_id=message_id,
            purpose="photos_received",
        )

    async def already(self, request: PhotoRequest) -> str:
        """The photos of this request are in and it is done."""
        services = self.services_for(request)
        order = await services.orders.order(request.order_number)
        return self._text(
            "photos_already",
            services,
            order=request.order_number,
            item=say_items(order) if order else "item",
        )

    async def rejected(self, request: PhotoRequest, reasons: list[str]) -> str:
        """Nothing sent could be kept: why, and what to send instead."""
        problem = " and ".join(_PROBLEMS.get(r, r.replace("_", " ")) for r in reasons)
        return self._text(
            "photos_refused",
            self.services_for(request),
            order=request.order_number,
            problem=problem or "nothing arrived",
            max_photos=request.max_photos,
            max_mb=request.max_bytes // (1024 * 1024),
        )
