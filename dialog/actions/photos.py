"""Photos of damage: whether policy wants them before a replacement, and the link to send them.

The link is texted, never read aloud. What happens when the photos arrive (the replacement,
the claim, the words for the customer) is `dialog.evidence`'s, after the call.
"""

from __future__ import annotations

import math

from dialog.actions.registry import ACTIONS, ActionContext, ServiceUnavailable
from dialog.actions.returns import line_amount, target_line
from dialog.actions.texts import caller_can_text, text_customer
from dialog.speech import say_items
from integrations.models import Customer

__all__: list[str] = []


@ACTIONS.action("check_evidence", sets={"photos_needed": "bool", "photos_possible": "bool"})
async def check_evidence(ctx: ActionContext) -> None:
    """Whether policy wants photos of the damage before this replacement (items above the
    policy's photo line), and whether we can ask for them (a number to text, a photo desk)."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    ctx.slots["photos_needed"] = bool(
        line is not None and ctx.policy.damaged.needs_photos(line_amount(line))
    )
    ctx.slots["photos_possible"] = bool(
        caller_can_text(ctx)
        and ctx.services.photos is not None
        and ctx.services.helpdesk is not None
    )


@ACTIONS.action(
    "request_photos",
    sets={"photos_requested": "bool", "photos_in": "bool", "photo_link_days": "days"},
    changes_world=True,
)
async def request_photos(ctx: ActionContext) -> None:
    """Open a ticket for the damage, a photo request on it, and text its upload link.

    `photos_requested` only when the link was texted: a caller whose number cannot take a
    text, or a shop without a photo desk, is handed to a person instead. `photos_in` when the
    photos of this request are in already (the replacement may go ahead)."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    desk, helpdesk = ctx.services.photos, ctx.services.helpdesk
    ctx.slots.update(photos_requested=False, photos_in=False, photo_link_days=None)
    if order is None or line is None or desk is None or helpdesk is None:
        return
    if not caller_can_text(ctx):
        return
    customer = ctx.slots.get("customer")
    item = say_items(order)
    try:
        ticket = await ctx.fetch(
            helpdesk.create_ticket(
                f"Photos of damage: order {order.number} ({item})",
                f"{ctx.summary()}\n\nThe customer was texted a link for photos of the damage. "
                "The replacement goes out when they arrive; they are attached to this ticket.",
                requester_phone=ctx.call.caller_number,
                requester_email=customer.email if isinstance(customer, Customer) else None,
                tags=["damaged", "photos"],
                priority="normal",
                idempotency_key=ctx.key("ticket", "photos", order.number),
            )
        )
        request = await ctx.fetch(
            desk.request_photos(
                order_number=order.number,
                line_id=line.line_id,
                phone=ctx.call.caller_number,
                resolution="replacement",
                ticket_id=ticket.id,
                call_sid=ctx.call.call_sid,
                idempotency_key=ctx.key("photos", order.number, line.line_id),
            )
        )
    except ServiceUnavailable:
        return
    if request.status == "fulfilled":
        ctx.slots["photos_in"] = True
        return
    await ctx.record(
        "ticket.created", ticket_id=ticket.id, reason="damaged_photos", line_id=line.line_id
    )
    days = max(1, math.ceil((request.expires_at - ctx.now).total_seconds() / 86400))
    sent = await text_customer(
        ctx,
        "photo_link",
        purpose="photo_link",
        order=order.number,
        item=item,
        url=request.url,
        max_photos=request.max_photos,
        days=f"{days} day{'s' if days != 1 else ''}",
    )
    if not sent:
        return
    ctx.slots.update(photos_requested=True, photo_link_days=days)
    await ctx.record(
        "photos.requested", request_id=request.id, ticket_id=ticket.id, line_id=line.line_id
    )
