"""Coupons: why a code does not apply and what does; the courtesy code, offered at most once."""

from __future__ import annotations

import re

from dialog import understanding
from dialog.actions.orders import customer_orders
from dialog.actions.registry import ACTIONS, ActionContext, ServiceUnavailable
from dialog.slots.choices import named_item
from dialog.speech import say_code, say_list, say_money, say_number, writing
from dialog.wording import screen_wording
from integrations.models import Coupon, Customer, Order

__all__ = ["describe_coupon"]


def describe_coupon(coupon: Coupon) -> str:
    """What a code gives, for the ear: "twenty percent off orders over fifty dollars"
    (written: "20% off orders over $50")."""
    if coupon.kind == "percent" and writing():
        benefit = f"{coupon.value}% off"
    elif coupon.kind == "percent":
        benefit = f"{say_number(coupon.value)} percent off"
    elif coupon.kind == "amount":
        benefit = f"{say_money(coupon.value)} off"
    else:
        benefit = "free shipping"
    if coupon.min_subtotal_cents:
        on = " on" if coupon.kind == "free_shipping" else ""
        benefit += f"{on} orders over {say_money(coupon.min_subtotal_cents)}"
    elif coupon.kind != "free_shipping":
        benefit += " your order"
    if coupon.first_order_only:
        benefit += ", on a first order only"
    return benefit


async def _order_said(ctx: ActionContext) -> Order | None:
    """The order the code is for: a number said, one of the caller's items named ("on my
    lamp order"), or the order being discussed when they point at it ("does it work on it?")."""
    number = ctx.slots.get("order_number")
    if not number:
        try:
            mine = await customer_orders(ctx)
        except ServiceUnavailable:
            mine = []
        names = [o.lines[0].name if o.lines else "" for o in mine]
        named = named_item(ctx.heard, names) if ctx.heard and mine else None
        if named is not None:
            ctx.slots["order"] = mine[named]
            return mine[named]
        if ctx.heard and understanding.refers_back(ctx.heard):
            return ctx.order
        return None
    order = await ctx.fetch(ctx.services.orders.order(str(number)))
    if order is not None:
        ctx.slots["order"] = order
    return order


# Numbers the ear (and speech to text) confuses: "fifteen" and "fifty", "thirteen" and "thirty".
_TEEN_TY = {str(n): str((n - 10) * 10) for n in range(13, 20)}
_TEEN_TY |= {ty: teen for teen, ty in _TEEN_TY.items()}


def sound_alike(code: str) -> str | None:
    """The code with its final number's teen/ty twin: SUMMER50 → SUMMER15, SAVE13 → SAVE30."""
    match = re.fullmatch(r"(.*?)(\d+)", code)
    if match is None or match.group(2) not in _TEEN_TY:
        return None
    return match.group(1) + _TEEN_TY[match.group(2)]


@ACTIONS.action(
    "check_coupon",
    sets={
        "coupon_valid": "bool",
        "coupon_reason": "text",
        "coupon_min_spend": "money",
        "coupon_expired_on": "date",
        "coupon_benefit": "text",
    },
)
async def check_coupon(ctx: ActionContext) -> None:
    """Ask the shop whether the code applies to this caller (and the order they named)."""
    coupons = ctx.services.coupons
    if coupons is None:
        raise ServiceUnavailable("no coupons service")
    code = str(ctx.slots.get("coupon_code") or "").upper()
    order = await _order_said(ctx)
    customer = ctx.slots.get("customer")
    customer_id = customer.id if isinstance(customer, Customer) else None
    check = await ctx.fetch(coupons.check(code, customer_id, order))
    heard = code
    twin = sound_alike(code) if check.reason == "unknown" else None
    if twin is not None:
        other = await ctx.fetch(coupons.check(twin, customer_id, order), announce=False)
        if other.reason != "unknown":  # the shop has the code that sounds like what we heard
            code, check = twin, other
            ctx.slots["coupon_code"] = twin
    coupon = check.coupon
    ctx.slots.update(
        coupon_valid=check.valid,
        coupon_reason=check.reason,
        coupon_benefit=describe_coupon(coupon) if coupon else None,
        coupon_min_spend=coupon.min_subtotal_cents if coupon else None,
        coupon_expired_on=(
            coupon.expires_at.astimezone(ctx.tz).date() if coupon and coupon.expires_at else None
        ),
    )
    await ctx.record(
        "coupon.checked",
        order=order.number if order else None,
        code=code,
        valid=check.valid,
        reason=check.reason,
        **({"heard": heard} if heard != code else {}),
    )


@ACTIONS.action("suggest_coupons", sets={"coupon_suggestion": "text"})
async def suggest_coupons(ctx: ActionContext) -> None:
    """The active codes that would work for this caller instead, said with what they give."""
    coupons = ctx.services.coupons
    ctx.slots["coupon_suggestion"] = None
    if coupons is None:
        return
    asked = str(ctx.slots.get("coupon_code") or "").upper()
    customer = ctx.slots.get("customer")
    customer_id = customer.id if isinstance(customer, Customer) else None
    try:
        codes = await ctx.fetch(coupons.active_codes(), announce=False)
    except ServiceUnavailable:
        return
    said = []
    for code in codes:
        if code.upper() == asked or code.upper() == ctx.policy.courtesy_coupon.code.upper():
            continue
        check = await ctx.fetch(coupons.check(code, customer_id, None), announce=False)
        if check.valid and check.coupon is not None:
            said.append(f"{say_code(code)}, for {describe_coupon(check.coupon)}")
    ctx.slots["coupon_suggestion"] = say_list(said[:2]) if said else None


def _worded(ctx: ActionContext, line: str) -> str:
    """A policy line in the wording of the conversation's channel."""
    return screen_wording(line) if ctx.call.on_screen else str(line)


@ACTIONS.action(
    "offer_courtesy_coupon",
    sets={
        "courtesy_available": "bool",
        "courtesy_code": "code",
        "courtesy_description": "text",
    },
)
async def offer_courtesy_coupon(ctx: ActionContext) -> None:
    """Whether the configured courtesy code may be offered now: by policy, once per call."""
    courtesy = ctx.policy.courtesy_coupon
    reason = str(ctx.slots.get("courtesy_reason") or "")
    offered = int(ctx.memo.get("courtesy_offered", 0))
    available = courtesy.enabled and reason in courtesy.offer_on and offered < 1
    ctx.slots.update(
        courtesy_available=available,
        courtesy_code=courtesy.code if available else None,
        courtesy_description=_worded(ctx, courtesy.description) if available else None,
    )


@ACTIONS.action("send_courtesy_coupon", sets={"courtesy_sent": "bool"})
async def send_courtesy_coupon(ctx: ActionContext) -> None:
    """Text the courtesy code; never more than once in a call, whatever the flows ask."""
    from dialog.actions.texts import text_customer

    courtesy = ctx.policy.courtesy_coupon
    ctx.slots["courtesy_sent"] = False
    if not courtesy.enabled or ctx.memo.get("courtesy_offered"):
        return
    ctx.memo["courtesy_offered"] = 1
    sent = await text_customer(
        ctx,
        "courtesy",
        purpose="courtesy_coupon",
        code=courtesy.code,
        description=_worded(ctx, courtesy.description),
    )
    reason = str(ctx.slots.get("courtesy_reason") or "")
    await ctx.record("coupon.offered", code=courtesy.code, reason=reason, texted=bool(sent))
    ctx.slots["courtesy_sent"] = bool(sent)
