"""Bringing in people: tickets, the transfer, escalations, and the caller's score."""

from __future__ import annotations

from dialog.actions.registry import ACTIONS, ActionContext, ServiceUnavailable
from dialog.actions.texts import text_customer
from integrations.models import Customer

__all__: list[str] = []

_URGENT = {"upset", "lost", "refund_approval", "damaged"}
_MAX_WORDS = 12  # the caller's last utterances quoted on a ticket


@ACTIONS.action("create_ticket", sets={"ticket_id": "reference"})
async def create_ticket(ctx: ActionContext) -> None:
    """A ticket with the call's summary and the caller's own words (`ticket_reason`, else the
    handoff reason)."""
    helpdesk = ctx.services.helpdesk
    reason = str(ctx.slots.get("ticket_reason") or ctx.slots.get("handoff_reason") or "handoff")
    if helpdesk is None:
        ctx.slots["ticket_id"] = None
        return
    if ctx.memo.get("ticket"):  # one ticket per call: the person picks up the whole story
        ctx.slots["ticket_id"] = ctx.memo["ticket"]
        return
    words = "\n".join(f'- "{w}"' for w in ctx.caller_words[-_MAX_WORDS:]) or "- (nothing said)"
    body = f"{ctx.summary()}\n\nThe caller's own words:\n{words}\n"
    customer = ctx.slots.get("customer")
    order = ctx.order_number()
    subject = f"Call {ctx.call.call_sid}: {reason.replace('_', ' ')}"
    if order:
        subject += f" (order {order})"
    try:
        ticket = await ctx.fetch(
            helpdesk.create_ticket(
                subject,
                body,
                requester_phone=(
                    ctx.call.caller_number if ctx.call.caller_number.startswith("+") else None
                ),
                requester_email=customer.email if isinstance(customer, Customer) else None,
                tags=["phone", reason],
                priority="high" if reason in _URGENT or ctx.slots.get("upset") else "normal",
                idempotency_key=ctx.key("ticket", reason),
            )
        )
    except ServiceUnavailable:
        if reason == "system_error":  # the helpdesk may be what is down; the person still answers
            ctx.slots["ticket_id"] = None
            return
        raise
    ctx.slots["ticket_id"] = ticket.id
    ctx.memo["ticket"] = ticket.id
    await ctx.record("ticket.created", ticket_id=ticket.id, reason=reason)


@ACTIONS.action("text_ticket_number", sets={"ticket_texted": "bool"})
async def text_ticket_number(ctx: ActionContext) -> None:
    """Text the ticket number, so the caller never has to explain twice (once per ticket)."""
    ticket = ctx.slots.get("ticket_id")
    ctx.slots["ticket_texted"] = False
    texted = ctx.memo.setdefault("texted_tickets", set())
    if not ticket or ticket in texted or ctx.call.on_screen:  # on screen the reply says it
        return
    try:
        sent = await text_customer(
            ctx, "ticket", purpose=f"ticket:{ticket}", order=ctx.order_number() or "", ticket=ticket
        )
    except ServiceUnavailable:
        sent = None  # the person taking the call can read the number out
    if sent:
        texted.add(ticket)
    ctx.slots["ticket_texted"] = bool(sent)


@ACTIONS.action("transfer")
async def transfer(ctx: ActionContext) -> None:
    """Hand the caller to a person, with the call's summary."""
    reason = str(ctx.slots.get("handoff_reason") or "caller_request")
    await ctx.record("handoff", reason=reason, ticket_id=ctx.slots.get("ticket_id"))
    await ctx.transfer()


@ACTIONS.action("note_escalation")
async def note_escalation(ctx: ActionContext) -> None:
    """Record why the call was escalated (`escalation_reason`)."""
    reason = str(ctx.slots.get("escalation_reason") or "upset")
    await ctx.record("escalation", reason=reason)


@ACTIONS.action("record_csat")
async def record_csat(ctx: ActionContext) -> None:
    """Record the caller's 1–5 score of their order."""
    score = ctx.slots.get("rating")
    if isinstance(score, int):
        await ctx.record("csat.recorded", score=score)
