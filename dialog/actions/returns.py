"""Returns and exchanges: eligibility by policy, what to offer before a refund, the RMA."""

from __future__ import annotations

from dialog.actions.registry import ACTIONS, ActionContext
from dialog.actions.texts import label_recipient, text_customer, written_money
from dialog.slots.sizes import resolve_size
from dialog.speech import say_items, say_number, say_size, size_order
from integrations.models import Order, OrderLine
from integrations.protocols import ProviderError

__all__ = ["line_amount", "target_line"]


def target_line(ctx: ActionContext, order: Order) -> OrderLine | None:
    """The order line the conversation is about: one named earlier, else the first."""
    wanted = ctx.memo.get("line_id")
    for line in order.lines:
        if line.line_id and line.line_id == wanted:
            return line
    return order.lines[0] if order.lines else None


def line_amount(line: OrderLine) -> int:
    """What the line cost, in cents."""
    return line.price_cents * line.quantity


async def _already_returned(ctx: ActionContext, order: Order, line: OrderLine) -> bool:
    if order.fulfillment in ("returned", "refunded"):
        return True
    if ctx.services.returns is None:
        return False
    existing = await ctx.fetch(ctx.services.returns.returns_of(order.number))
    return any(line.line_id in ra.line_ids for ra in existing)


@ACTIONS.action(
    "check_return_eligibility",
    sets={
        "return_eligible": "bool",
        "denial_reason": "text",
        "window_days": "days",
        "days_since_delivery": "days",
        "return_deadline": "day",
        "category": "text",
    },
)
async def check_return_eligibility(ctx: ActionContext) -> None:
    """Apply the return policy exactly: already returned, final sale, not delivered, window."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    ctx.slots.update(return_eligible=False, denial_reason=None)
    if order is None or line is None:
        ctx.slots["denial_reason"] = "no_order"
        return
    policy = ctx.policy.returns
    window = policy.window_for(line.category)
    ctx.slots.update(window_days=window, category=line.category.lower())
    reason: str | None = None
    details: dict[str, object] = {"line_id": line.line_id, "category": line.category}
    if await _already_returned(ctx, order, line):
        reason = "already_returned"
    elif line.final_sale and not policy.final_sale_returnable:
        reason = "final_sale"
    elif order.delivered_at is None:
        reason = "not_delivered"
    else:
        delivered = order.delivered_at.astimezone(ctx.tz).date()
        days = (ctx.today - delivered).days
        from datetime import timedelta

        ctx.slots["days_since_delivery"] = days
        ctx.slots["return_deadline"] = delivered + timedelta(days=window)
        details.update(days_since_delivery=days, window_days=window)
        if days > window:
            reason = "window"
    if reason is not None:
        ctx.slots["denial_reason"] = reason
        await ctx.record("return.denied", reason=reason, **details)
        return
    ctx.memo["line_id"] = line.line_id
    ctx.slots["return_eligible"] = True


@ACTIONS.action(
    "plan_return_offer",
    sets={
        "offer_exchange": "bool",
        "offer_replacement": "bool",
        "offer_store_credit": "bool",
        "size_options": "sizes",
        "current_size": "sizes",
        "store_credit_amount": "money",
        "refund_amount": "money",
        "needs_approval": "bool",
        "refund_timing": "text",
        "missing_size": "text",
    },
)
async def plan_return_offer(ctx: ActionContext) -> None:
    """What to offer before a refund, by policy: another size in stock, a replacement for a
    faulty item, store credit; and the refund's amount and timing."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    if order is None or line is None:
        return
    policy = ctx.policy
    offers = policy.returns.offer_before_refund
    reason = ctx.slots.get("return_reason")
    amount = line_amount(line)
    stock: dict[str, int] = {}
    if "exchange" in offers and reason in ("wrong_size", "damaged", "defective", "wrong_item"):
        stock = await ctx.fetch(ctx.services.orders.stock(line.sku))
    sizes = sorted((v for v, n in stock.items() if n > 0 and v != line.variant), key=size_order)
    offer_exchange = reason == "wrong_size" and bool(line.variant) and bool(sizes)
    same_in_stock = stock.get(line.variant or "", 0) > 0 if stock else True
    low, high = policy.refunds.timing_business_days
    ctx.slots.update(
        offer_exchange=offer_exchange,
        size_options=sizes if offer_exchange else None,
        current_size=line.variant,
        offer_replacement="exchange" in offers
        and reason in ("damaged", "defective", "wrong_item")
        and same_in_stock,
        offer_store_credit="store_credit" in offers,
        store_credit_amount=amount * (100 + policy.returns.store_credit_bonus_percent) // 100,
        refund_amount=amount,
        needs_approval=amount > policy.refunds.approval_line_cents,
        refund_timing=f"{say_number(low)} to {say_number(high)} business days",
        missing_size=None,
    )
    _settle_size(ctx, line.variant, sizes if offer_exchange else [])


def _settle_size(ctx: ActionContext, current: str | None, in_stock: list[str]) -> None:
    """The size asked for, against the item's own and what is in stock: "too small" becomes
    the next size up that we have; a size we do not have is dropped, and said (`missing_size`),
    so the caller is asked for one we do have."""
    wanted = ctx.slots.get("new_size")
    if not isinstance(wanted, str) or not wanted:
        return
    if wanted[:1] in "+-" and wanted[1:].isdigit():
        steps = int(wanted)
        resolved = resolve_size(steps, current, in_stock)
        ctx.slots["new_size"] = resolved
        if resolved is None:
            ctx.slots["missing_size"] = "a bigger size" if steps > 0 else "a smaller size"
        return
    if wanted not in in_stock:
        ctx.slots["new_size"] = None
        if wanted != current:
            ctx.slots["missing_size"] = f"size {say_size(wanted)}"


_RESOLUTIONS = {
    "refund": "refund",
    "store_credit": "store_credit",
    "exchange": "exchange",
    "replacement": "exchange",
}


@ACTIONS.action(
    "create_return",
    sets={"rma": "reference", "return_created": "bool", "return_problem": "text"},
    changes_world=True,
)
async def create_return(ctx: ActionContext) -> None:
    """Authorize the return with its reason code and resolution, and get its label."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    resolution = str(ctx.slots.get("resolution") or "refund")
    ctx.slots.update(return_created=False, return_problem=None)
    if order is None or line is None or ctx.services.returns is None:
        ctx.slots["return_problem"] = "unavailable"
        return
    reason = str(ctx.slots.get("return_reason") or "other")
    variant = None
    if resolution == "exchange":
        variant = ctx.slots.get("new_size")
    elif resolution == "replacement":
        variant = line.variant
    try:
        ra = await ctx.fetch(
            ctx.services.returns.create(
                order.number,
                [line.line_id],
                reason,
                _RESOLUTIONS.get(resolution, "refund"),
                idempotency_key=f"return:{order.number}:{line.line_id}",
                exchange_variant=variant,
            )
        )
    except ProviderError as exc:
        ctx.slots["return_problem"] = exc.code
        await ctx.record("return.denied", reason=exc.code, line_id=line.line_id)
        return
    # One label per authorization: a retry of this one asks for the same label, while an RMA
    # number a reseeded demo shop hands out again is a new authorization, with its own.
    key = f"label:{ra.rma}:{ra.created_at.isoformat()}"
    label = ra.label or await ctx.fetch(ctx.services.returns.label(ra.rma, idempotency_key=key))
    ctx.memo["label_url"] = label.url
    ctx.memo["rma"] = ra.rma
    ctx.slots.update(rma=ra.rma, return_created=True)
    await ctx.record(
        "return.created",
        rma=ra.rma,
        reason_code=reason,
        resolution=resolution,
        line_id=line.line_id,
    )
    if resolution == "exchange":
        await ctx.record("exchange.created", rma=ra.rma, variant=variant, line_id=line.line_id)
    elif resolution == "replacement":
        await ctx.record("replacement.created", rma=ra.rma, line_id=line.line_id)


@ACTIONS.action("send_return_sms", sets={"label_sent": "bool", "label_coming": "bool"})
async def send_return_sms(ctx: ActionContext) -> None:
    """Text the RMA and the label link (links are never read aloud).

    A label without a link is still being bought (through the outbox): the worker texts it once
    it has it, so it is not texted here too, and `label_coming` says whether a text is on its
    way (`label_recipient`, as the services told the outbox).
    """
    order = ctx.order
    rma = ctx.memo.get("rma")
    url = ctx.memo.get("label_url")
    ctx.slots.update(label_sent=False, label_coming=False)
    if order is None or not rma:
        return
    if not url:
        ctx.slots["label_coming"] = label_recipient(ctx.call, ctx.policy) is not None
        return
    if not ctx.policy.returns.label_by_sms:
        return
    resolution = str(ctx.slots.get("resolution") or "refund")
    template = {
        "exchange": "exchange_label",
        "replacement": "exchange_label",
        "store_credit": "store_credit_label",
    }.get(resolution, "return_label")
    line = target_line(ctx, order)
    amount = line_amount(line) if line else order.total_cents
    credit = ctx.slots.get("store_credit_amount") or amount
    sent = await text_customer(
        ctx,
        template,
        purpose="return_label",
        order=order.number,
        item=say_items(order),
        rma=rma,
        url=url,
        amount=written_money(int(credit if resolution == "store_credit" else amount)),
        method=order.payment_method or "your original payment method",
        size=ctx.slots.get("new_size") or (line.variant if line else "") or "",
    )
    ctx.slots["label_sent"] = bool(sent)
