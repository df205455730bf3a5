"""Refunds: their status, and the one path by which money ever goes back.

`refund_line` is the only action that calls `Refunds.refund`. It refunds one order line, once,
to the original payment method; above the policy's approval line it files a ticket for a person
and records `refund.pending_approval` instead. Nothing a caller says reaches it except through
a flow's procedure, so "refund everything" changes nothing.
"""

from __future__ import annotations

from dialog.actions.registry import ACTIONS, ActionContext, ServiceUnavailable
from dialog.actions.returns import line_amount, target_line
from dialog.actions.texts import text_customer, written_money
from dialog.speech import say_carrier, say_items, say_number
from integrations.models import Order, ReturnAuthorization
from integrations.protocols import ProviderError

__all__: list[str] = []


def _timing(ctx: ActionContext) -> str:
    low, high = ctx.policy.refunds.timing_business_days
    return f"{say_number(low)} to {say_number(high)} business days"


@ACTIONS.action(
    "check_refund_status",
    sets={
        "refund_state": "text",
        "refund_amount": "money",
        "refund_date": "date",
        "return_last_scan": "date",
        "return_carrier": "text",
        "needs_approval": "bool",
        "refund_timing": "text",
        "approval_line": "money",
    },
)
async def check_refund_status(ctx: ActionContext) -> None:
    """Where the money is: refunded (when, how much, to what), on its way back, or nothing."""
    order = ctx.order
    ctx.slots.update(
        refund_state="none",
        refund_timing=_timing(ctx),
        approval_line=ctx.policy.refunds.approval_line_cents,
    )
    if order is None:
        return
    refunds = []
    if ctx.services.refunds is not None:
        refunds = await ctx.fetch(ctx.services.refunds.refunds_of(order.number))
    done = [r for r in refunds if r.status == "succeeded"]
    if done:
        latest = max(done, key=lambda r: r.created_at)
        ctx.slots.update(
            refund_state="refunded",
            refund_amount=sum(r.amount_cents for r in done),
            refund_date=latest.created_at.astimezone(ctx.tz).date(),
        )
        return
    if any(r.status == "pending" for r in refunds):
        ctx.slots.update(
            refund_state="processing", refund_amount=sum(r.amount_cents for r in refunds)
        )
        return
    returns: list[ReturnAuthorization] = []
    if ctx.services.returns is not None:
        returns = await ctx.fetch(ctx.services.returns.returns_of(order.number))
    if not returns:
        return
    ra = max(returns, key=lambda r: r.created_at)
    amount = sum(line_amount(x) for x in order.lines if x.line_id in ra.line_ids)
    amount = amount or order.total_cents
    ctx.memo["rma"] = ra.rma
    ctx.slots.update(
        refund_amount=amount, needs_approval=amount > ctx.policy.refunds.approval_line_cents
    )
    if ra.resolution != "refund":
        ctx.slots["refund_state"] = f"resolved_{ra.resolution}"
        return
    if ra.status == "received":
        ctx.slots["refund_state"] = "received"
        return
    ctx.slots["refund_state"] = "returning" if ra.status == "in_transit" else "awaiting_parcel"
    if ra.label is not None and ra.label.tracking_number:
        try:
            back = await ctx.fetch(
                ctx.services.tracking.track(ra.label.carrier, ra.label.tracking_number)
            )
        except ServiceUnavailable:
            back = None
        await ctx.record(
            "tracking.looked_up",
            status=back.status.value if back else "unavailable",
            direction="return",
        )
        if back is not None and back.last_scan is not None:
            ctx.slots["return_last_scan"] = back.last_scan.at.astimezone(ctx.tz).date()
            ctx.slots["return_carrier"] = say_carrier(back.carrier)


async def _approval_ticket(ctx: ActionContext, order: Order, amount: int, reason: str) -> str:
    helpdesk = ctx.services.helpdesk
    if helpdesk is None:
        raise ServiceUnavailable("no helpdesk to ask for approval")
    body = (
        f"Refund of {written_money(amount)} on order {order.number} needs approval "
        f"(above the approval line of {written_money(ctx.policy.refunds.approval_line_cents)}). "
        f"Reason: {reason}. Refund to the original payment method only."
    )
    customer = ctx.slots.get("customer")
    ticket = await ctx.fetch(
        helpdesk.create_ticket(
            f"Refund approval: order {order.number}",
            body,
            requester_phone=getattr(customer, "phone", None),
            requester_email=getattr(customer, "email", None),
            tags=["refund_approval", reason],
            priority="high",
            idempotency_key=f"refund-approval:{order.number}",
        )
    )
    await ctx.record("ticket.created", ticket_id=ticket.id, reason="refund_approval")
    return ticket.id


@ACTIONS.action(
    "refund_line",
    sets={
        "refund_outcome": "text",
        "refund_amount": "money",
        "refund_denial": "text",
        "ticket_id": "reference",
        "refund_timing": "text",
    },
    changes_world=True,
)
async def refund_line(ctx: ActionContext) -> None:
    """Refund the line under discussion to the original payment method, once ever; above the
    approval line, a ticket and `refund.pending_approval` instead of a refund."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    ctx.slots.update(refund_outcome="denied", refund_denial=None, refund_timing=_timing(ctx))
    if order is None or line is None:
        ctx.slots["refund_denial"] = "no_order"
        return
    reason = str(ctx.slots.get("refund_reason") or "customer_request")
    amount = line_amount(line)
    ctx.slots["refund_amount"] = amount
    refunds = ctx.services.refunds
    earlier = await ctx.fetch(refunds.refunds_of(order.number)) if refunds else []
    if any(r.line_id == line.line_id and r.status != "failed" for r in earlier):
        ctx.slots["refund_denial"] = "already_refunded"
        await ctx.record("refund.denied", reason="already_refunded", line_id=line.line_id)
        return
    # Above the approval line, or when the shop refunds received returns by hand, a person
    # decides; the agent never moves that money itself.
    if amount > ctx.policy.refunds.approval_line_cents or ctx.memo.get("refund_by_hand"):
        ticket_id = await _approval_ticket(ctx, order, amount, reason)
        ctx.slots.update(refund_outcome="pending_approval", ticket_id=ticket_id)
        await ctx.record(
            "refund.pending_approval",
            amount_cents=amount,
            line_id=line.line_id,
            ticket_id=ticket_id,
            reason=reason,
        )
        return
    if refunds is None:
        raise ServiceUnavailable("no refunds service")
    try:
        refund = await ctx.fetch(
            refunds.refund(
                order.number,
                line.line_id,
                amount,
                idempotency_key=f"refund:{order.number}:{line.line_id}",
                reason=reason,
            )
        )
    except ProviderError as exc:
        denial = "already_refunded" if exc.code == "charge_already_refunded" else exc.code
        ctx.slots["refund_denial"] = denial
        await ctx.record("refund.denied", reason=denial, line_id=line.line_id)
        return
    if refund.status == "failed":
        ctx.slots["refund_denial"] = refund.failure_reason or "failed"
        await ctx.record("refund.denied", reason=ctx.slots["refund_denial"], line_id=line.line_id)
        return
    ctx.slots["refund_outcome"] = "created"
    await ctx.record(
        "refund.created",
        refund_id=refund.id,
        amount_cents=refund.amount_cents,
        line_id=line.line_id,
        method=refund.method,
        reason=reason,
    )


@ACTIONS.action("receive_return", sets={"order": "order", "return_received": "bool"})
async def receive_return(ctx: ActionContext) -> None:
    """The warehouse has the parcel of RMA `rma`: mark it received, and pick its line."""
    returns = ctx.services.returns
    rma = ctx.slots.get("rma")
    ctx.slots["return_received"] = False
    if returns is None or not rma:
        return
    ra = await ctx.fetch(returns.receive(str(rma)))
    order = await ctx.fetch(ctx.services.orders.order(ra.order_number))
    ctx.slots["order"] = order
    if ra.line_ids:
        ctx.memo["line_id"] = ra.line_ids[0]
    ctx.slots["refund_reason"] = f"return {ra.rma} received"
    ctx.memo["refund_by_hand"] = not ctx.policy.refunds.on_receipt
    ctx.slots["return_received"] = ra.resolution == "refund" and ra.status == "received"


@ACTIONS.action("send_refund_sms", sets={"refund_texted": "bool"})
async def send_refund_sms(ctx: ActionContext) -> None:
    """Tell the customer by text that their refund went out, or waits for approval."""
    order = ctx.order
    outcome = ctx.slots.get("refund_outcome")
    ctx.slots["refund_texted"] = False
    if order is None or outcome not in ("created", "pending_approval"):
        return
    to = None
    if ctx.call.call_sid.startswith("receipt:"):  # no caller: text the order's owner
        owner = await ctx.fetch(ctx.services.orders.customer(order.customer_id), announce=False)
        to = owner.phone if owner else None
        if not to:
            return
    line = target_line(ctx, order)
    sent = await text_customer(
        ctx,
        "refund_created" if outcome == "created" else "refund_pending",
        purpose=f"refund_{outcome}",
        to=to,
        order=order.number,
        item=say_items(order),
        amount=written_money(line_amount(line) if line else order.total_cents),
        method=order.payment_method or "your original payment method",
        ticket=ctx.slots.get("ticket_id") or "",
    )
    ctx.slots["refund_texted"] = bool(sent)
