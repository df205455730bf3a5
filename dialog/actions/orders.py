"""Who is calling, which order they mean, whether it is really them, and where it is."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from dialog import understanding
from dialog.actions.registry import ACTIONS, ActionContext, ServiceUnavailable
from dialog.actions.texts import caller_can_text, text_customer
from dialog.slots.choices import named_item
from dialog.slots.contact import Factor
from dialog.speech import (
    StatusKind,
    describe_order,
    describe_stage,
    product_name,
    say_age,
    say_items,
)
from integrations.models import Customer, Order, Shipment, ShipmentStatus
from integrations.phones import normalize_phone

__all__ = ["customer_orders", "fits", "track"]

_MAX_CHOICES = 3  # more than this is easier as "what's the order number?"


async def customer_orders(ctx: ActionContext) -> list[Order]:
    """The identified caller's orders, newest first (fetched once per call)."""
    customer = ctx.slots.get("customer")
    if not isinstance(customer, Customer):
        return []
    cached = ctx.memo.get("customer_orders")
    if cached is None:
        cached = await ctx.fetch(ctx.services.orders.orders_of(customer.id))
        cached = sorted(cached, key=lambda o: o.placed_at, reverse=True)
        ctx.memo["customer_orders"] = cached
    return list(cached)


async def _has_returns(ctx: ActionContext, order: Order) -> bool:
    if order.fulfillment in ("refunded", "returned"):
        return True
    if ctx.services.returns is None:
        return False
    try:
        found = await ctx.fetch(ctx.services.returns.returns_of(order.number), announce=False)
    except ServiceUnavailable:
        return False
    return bool(found)


async def fits(ctx: ActionContext, order: Order, kind: str) -> bool:
    """Whether `order` is one a procedure can be about (one kind of `order_filter`)."""
    delivered = order.delivered_at is not None
    live = order.fulfillment in ("unfulfilled", "fulfilled")
    match kind:
        case "open" | "not_delivered":
            return live and not delivered
        case "in_transit":
            return order.fulfillment == "fulfilled" and not delivered
        case "unshipped":
            return order.fulfillment == "unfulfilled"
        case "delivered":
            return order.fulfillment == "fulfilled" and delivered
        case "refund":
            return await _has_returns(ctx, order)
        case "claimed":
            return order.number in ctx.memo.get("claimed", ())
        case _:
            return True


async def _looked_up(ctx: ActionContext, order: Order, via: str) -> None:
    ctx.slots["order"] = order
    ctx.memo["order_turn"] = ctx.memo.get("turn")
    ctx.slots["lookup_misses"] = 0
    await ctx.record("order.looked_up", order=order.number, found=True, via=via)


@ACTIONS.action(
    "identify_caller",
    sets={
        "customer": "value",
        "customer_name": "text",
        "first_name": "text",
        "known_caller": "bool",
        "direction": "text",
        "purpose": "text",
        "channel": "text",
        "on_screen": "bool",
        "shop": "text",
        "product_names": "value",
        "active_codes": "value",
    },
)
async def identify_caller(ctx: ActionContext) -> None:
    """Caller ID proposes the customer; their product names and the active codes feed hints."""
    ctx.slots.update(
        shop=ctx.services.shop_name,
        direction=ctx.call.direction,
        purpose=ctx.call.purpose or "",
        channel=ctx.call.channel,
        on_screen=ctx.call.on_screen,  # read, not heard: a flow may branch on it
        known_caller=False,
    )
    number = ctx.call.caller_number
    customer = None
    if number.startswith("+"):  # withheld or anonymous numbers name nobody
        try:
            customer = await ctx.fetch(
                ctx.services.orders.customer_by_phone(number), announce=False
            )
        except ServiceUnavailable:
            customer = None
    if customer is not None:
        ctx.slots.update(
            customer=customer,
            customer_name=customer.name,
            first_name=customer.first_name,
            known_caller=True,
        )
        await ctx.record("caller.identified", customer_id=customer.id)
        try:
            orders = await customer_orders(ctx)
        except ServiceUnavailable:
            orders = []
        names = [product_name(line.name) for o in orders for line in o.lines]
        ctx.slots["product_names"] = list(dict.fromkeys(names))
    if ctx.services.coupons is not None:
        try:
            codes = await ctx.fetch(ctx.services.coupons.active_codes(), announce=False)
        except ServiceUnavailable:
            codes = []
        ctx.slots["active_codes"] = list(codes)


@ACTIONS.action("find_order", sets={"order": "order", "order_choices": "orders"})
async def find_order(ctx: ActionContext) -> None:
    """The order the caller means: a number they said, an item they named, the one being
    discussed, or the caller's orders that fit `order_filter` (several become choices)."""
    kinds = [k.strip() for k in str(ctx.slots.get("order_filter") or "any").split(",")]
    ctx.slots["order_choices"] = None
    number = ctx.slots.get("order_number")
    if number and not (ctx.order is not None and ctx.order.number == number):
        await _lookup_number(ctx, str(number))
        return
    try:
        mine = await customer_orders(ctx)
    except ServiceUnavailable:
        mine = []
    current = ctx.order
    heard = ctx.heard
    if current is not None and ctx.memo.get("order_turn") == ctx.memo.get("turn"):
        return  # found for these very words a moment ago (a flow called by another)
    if mine and heard:
        # "10003" for "one zero zero three": a number in another shape that is one of the
        # caller's own orders is that order ("10003 and 10004": one now, the other after).
        reshaped = understanding.reshaped_order_numbers(heard)
        shaped = sorted(
            (o for o in mine if o.number in reshaped), key=lambda o: reshaped.index(o.number)
        )
        if shaped and current not in shaped:
            if len(shaped) > 1:
                ctx.memo["more_orders"] = [o.number for o in shaped[1:]]
            await _looked_up(ctx, shaped[0], "reshaped")
            return
        # An item the caller names is the order they mean, whatever state it is in: the
        # procedure then says what can be done with it ("it hasn't been delivered yet").
        named = named_item(heard, [o.lines[0].name if o.lines else "" for o in mine])
        chosen = mine[named] if named is not None else None
        if chosen is not None and chosen != current:
            await _looked_up(ctx, chosen, "item")
            return
        if current is not None and understanding.refers_to_other(heard):
            others = [o for o in mine if o.number != current.number]
            if others:
                await _looked_up(ctx, others[0], "reference")
                return
    if current is not None and (
        await _fits_any(ctx, current, kinds) or (heard and understanding.refers_back(heard))
    ):
        return  # "can I return it?": the order being discussed
    ctx.slots["order"] = None
    for kind in kinds:
        fitting = [o for o in mine if await fits(ctx, o, kind)]
        if len(fitting) == 1:
            await _looked_up(ctx, fitting[0], "caller_id")
            return
        if len(fitting) > 1 and heard and understanding.wants_both(heard):
            # "where are both my orders?": one now, the others after it, one by one.
            ctx.memo["more_orders"] = [o.number for o in fitting[1:]]
            await _looked_up(ctx, fitting[0], "caller_id")
            return
        if len(fitting) > 1:
            if len(fitting) <= _MAX_CHOICES:
                ctx.slots["order_choices"] = fitting
            return
    if mine and kinds[-1] in ("open", "any"):
        if len(mine) > 1 and heard and understanding.unheard_order_number(heard):
            # "order one zero zero zero four": a number said that did not come through is
            # asked about, never answered with the latest order instead.
            if len(mine) <= _MAX_CHOICES:
                ctx.slots["order_choices"] = mine
            return
        await _looked_up(ctx, mine[0], "caller_id")  # nothing on its way: the latest order


async def _fits_any(ctx: ActionContext, order: Order, kinds: list[str]) -> bool:
    for kind in kinds:
        if await fits(ctx, order, kind):
            return True
    return False


async def _lookup_number(ctx: ActionContext, number: str) -> None:
    via = str(ctx.memo.get("input") or "speech")
    order = await ctx.fetch(ctx.services.orders.order(number))
    await ctx.record("order.looked_up", order=number, found=order is not None, via=via)
    if order is not None:
        ctx.slots["order"] = order
        ctx.slots["lookup_misses"] = 0
        ctx.slots["missing_number"] = None
        return
    ctx.slots["order"] = None
    ctx.slots["missing_number"] = number
    ctx.slots["order_number"] = None
    ctx.slots["lookup_misses"] = int(ctx.slots.get("lookup_misses") or 0) + 1
    ctx.memo.setdefault("not_found", []).append(number)


@ACTIONS.action(
    "lookup_order",
    sets={"order": "order", "missing_number": "order_number", "lookup_misses": "number"},
)
async def lookup_order(ctx: ActionContext) -> None:
    """Look up the order the caller chose from a list, or the number they gave."""
    chosen = ctx.slots.pop("chosen_order", None)
    if isinstance(chosen, Order):
        await _looked_up(ctx, chosen, "choice")
        return
    number = ctx.slots.get("order_number")
    if not number:
        ctx.slots["order"] = None
        return
    await _lookup_number(ctx, str(number))


@ACTIONS.action("load_call_order", sets={"order": "order"})
async def load_call_order(ctx: ActionContext) -> None:
    """On a call we placed, the order it is about."""
    ref = ctx.call.order_ref
    if not ref:
        ctx.slots["order"] = None
        return
    order = await ctx.fetch(ctx.services.orders.order(ref), announce=False)
    await ctx.record("order.looked_up", order=ref, found=order is not None, via="outbound")
    ctx.slots["order"] = order
    if order is not None and ctx.call.direction == "outbound":
        # We dialled the number on this order about this order: the call itself identifies
        # the callee for it, so the damaged path asks for no ZIP code.
        ctx.slots.update(verified_customer=order.customer_id, verified_by="outbound_call")


_ZIP = re.compile(r"(\d{5})(?:[-\s]?\d{4})?", re.ASCII)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _zip5(value: str | None) -> str | None:
    """The five-digit ZIP of a ZIP or ZIP+4 ("94110", "94110-1234", "941101234"), else None:
    never the first five digits of something longer or shorter ("941105", "9411")."""
    found = _ZIP.fullmatch((value or "").strip())
    return found.group(1) if found else None


def _email_key(value: str | None) -> str | None:
    """An email address as compared: no case, no surrounding spaces, no trailing dot."""
    email = (value or "").strip().lower().rstrip(".").strip()
    return email if _EMAIL.fullmatch(email) else None


def _matches(factor: Factor, customer: Customer, order: Order | None) -> bool:
    """Whether the factor is exactly the customer's (or, for a ZIP, the order's shipping
    address's): both sides normalised the same way, nothing fuzzy, and an empty or malformed
    value on either side never matches."""
    if factor.kind == "email":
        said = _email_key(factor.value)
        return said is not None and said == _email_key(customer.email)
    if factor.kind == "phone":
        said = normalize_phone(factor.value or "")
        return said is not None and said == normalize_phone(customer.phone or "")
    if factor.kind != "zip":
        return False
    said = _zip5(factor.value)
    zips = {_zip5(customer.zip)}
    if order is not None and order.shipping_address is not None:
        zips.add(_zip5(order.shipping_address.postal_code))
    zips.discard(None)
    return said is not None and said in zips


@ACTIONS.action(
    "verify_factor",
    sets={
        "verified_customer": "value",
        "verify_attempts": "number",
        "verify_exhausted": "bool",
        "verified_by": "text",
    },
)
async def verify_factor(ctx: ActionContext) -> None:
    """Check the second factor (ZIP, email or phone on the order) against the order's owner."""
    factor = ctx.slots.get("factor")
    order = ctx.order
    owner_id = order.customer_id if order else getattr(ctx.slots.get("customer"), "id", None)
    if not isinstance(factor, Factor) or owner_id is None:
        ctx.slots["verify_exhausted"] = True
        return
    owner = await ctx.fetch(ctx.services.orders.customer(owner_id))
    allowed = factor.kind in ctx.policy.verification.factors
    if owner is not None and allowed and _matches(factor, owner, order):
        ctx.slots.update(verified_customer=owner.id, verify_attempts=0, verified_by=factor.kind)
        await ctx.record("caller.verified", method=factor.kind, customer_id=owner.id)
        return
    attempts = int(ctx.slots.get("verify_attempts") or 0) + 1
    ctx.slots["verify_attempts"] = attempts
    ctx.slots["verify_exhausted"] = attempts >= ctx.policy.verification.max_attempts
    ctx.slots["factor"] = None
    await ctx.record("caller.verification_failed", method=factor.kind, attempt=attempts)


_TEXTABLE = {
    StatusKind.PRE_TRANSIT,
    StatusKind.IN_TRANSIT,
    StatusKind.OUT_FOR_DELIVERY,
    StatusKind.FAILED_ATTEMPT,
    StatusKind.DELAYED,
}


async def track(ctx: ActionContext, order: Order) -> Shipment | None:
    """The carrier's view of a shipped order, fetched once per call; None without one."""
    if order.fulfillment != "fulfilled" or not (order.carrier and order.tracking_number):
        return None
    cache = ctx.memo.setdefault("shipments", {})
    if order.number in cache:
        return cache[order.number]
    try:
        shipment = await ctx.fetch(
            ctx.services.tracking.track(order.carrier, order.tracking_number)
        )
    except ServiceUnavailable:
        shipment, status = None, "unavailable"
    else:
        status = shipment.status.value if shipment else "not_found"
    await ctx.record("tracking.looked_up", order=order.number, status=status)
    cache[order.number] = shipment
    return shipment


# A carrier status older than this came from our cache because the carrier did not answer in
# time (see integrations.tracking_cache); the caller is told how old it is.
STALE_AFTER = timedelta(minutes=15)


def _staleness(shipment: Shipment | None, now: datetime) -> str:
    """ " That's the carrier's last update, from two hours ago…" for a status from the cache."""
    if shipment is None or now - shipment.fetched_at < STALE_AFTER:
        return ""
    return (
        f" That's the carrier's last update, from {say_age(now - shipment.fetched_at)} ago; "
        "their tracking isn't answering right now."
    )


@ACTIONS.action(
    "track_order",
    sets={
        "status_text": "text",
        "status_kind": "text",
        "can_text_tracking": "bool",
        "days_without_scan": "days",
        "eta": "date",
        "lost_check_date": "day",
    },
)
async def track_order(ctx: ActionContext) -> None:
    """Where the order is, in plain words, and what kind of situation that is."""
    order = ctx.order
    if order is None:
        ctx.slots.update(status_text="", status_kind="unknown", can_text_tracking=False)
        return
    shipment = await track(ctx, order)
    lost_after = ctx.policy.lost.days_without_scan
    report = describe_order(order, shipment, ctx.now, tz=ctx.tz, lost_after_days=lost_after)
    ctx.memo.setdefault("reports", {})[order.number] = report
    texted = ctx.memo.get("texted", set())
    identified = bool(ctx.slots.get("owns_order") or ctx.slots.get("verified"))
    said = (
        report.text + _staleness(shipment, ctx.now)
        if identified
        else describe_stage(order, report.kind, shipment, ctx.now, tz=ctx.tz)
    )
    ctx.slots.update(
        status_text=said,
        status_kind=report.kind.value,
        days_without_scan=report.days_without_scan,
        eta=shipment.eta if shipment else None,
        can_text_tracking=(
            report.kind in _TEXTABLE
            and shipment is not None
            and bool(shipment.tracking_url)
            and order.number not in texted
            and caller_can_text(ctx)
            # Someone else's tracking link never goes to this phone.
            and identified
        ),
    )
    last = shipment.last_scan if shipment else None
    if last is not None and shipment is not None and shipment.status != ShipmentStatus.DELIVERED:
        ctx.slots["lost_check_date"] = last.at.astimezone(ctx.tz).date() + timedelta(
            days=lost_after
        )


@ACTIONS.action("send_tracking_sms", sets={"tracking_sent": "bool"})
async def send_tracking_sms(ctx: ActionContext) -> None:
    """Text the tracking link of the current order to the caller (never read aloud)."""
    order = ctx.order
    shipment = ctx.memo.get("shipments", {}).get(order.number) if order else None
    if order is None or shipment is None or not shipment.tracking_url:
        ctx.slots["tracking_sent"] = False
        return
    sent = await text_customer(
        ctx,
        "tracking",
        purpose="tracking",
        order=order.number,
        item=say_items(order),
        url=shipment.tracking_url,
    )
    if sent:
        ctx.memo.setdefault("texted", set()).add(order.number)
    ctx.slots["tracking_sent"] = bool(sent)
