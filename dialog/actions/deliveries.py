"""Delivery problems: reschedule, change or redirect an address, lost and damaged parcels."""

from __future__ import annotations

from datetime import date, timedelta

from dialog.actions.registry import ACTIONS, ActionContext, ServiceUnavailable
from dialog.actions.returns import target_line
from dialog.actions.texts import text_customer
from dialog.speech import say_date, say_items
from integrations.models import Address
from integrations.protocols import ProviderError

__all__: list[str] = []


@ACTIONS.action(
    "check_reschedule",
    sets={
        "can_reschedule": "bool",
        "reschedule_first_day": "day",
        "reschedule_last_day": "day",
    },
)
async def check_reschedule(ctx: ActionContext) -> None:
    """A failed delivery attempt can be given a new day, within the policy's horizon."""
    tomorrow = ctx.today + timedelta(days=1)
    ctx.slots.update(
        can_reschedule=(
            ctx.services.deliveries is not None and ctx.slots.get("status_kind") == "failed_attempt"
        ),
        reschedule_first_day=tomorrow,
        reschedule_last_day=ctx.today + timedelta(days=ctx.policy.reschedule.max_days_ahead),
    )


def _day_problem(ctx: ActionContext, day: date) -> str | None:
    """Why policy refuses `day` for a new delivery ("too_soon", "too_late", "weekend")."""
    policy = ctx.policy.reschedule
    if day <= ctx.today:
        return "too_soon"
    if day > ctx.today + timedelta(days=policy.max_days_ahead):
        return "too_late"
    if policy.weekdays_only and day.weekday() >= 5:
        return "weekend"
    return None


@ACTIONS.action("check_delivery_day", sets={"reschedule_problem": "text"})
async def check_delivery_day(ctx: ActionContext) -> None:
    """Whether policy allows the day the caller chose, before they are asked to confirm it."""
    day = ctx.slots.get("delivery_day")
    problem = _day_problem(ctx, day) if isinstance(day, date) else "invalid_date"
    ctx.slots["reschedule_problem"] = problem
    if problem is not None:
        ctx.slots["delivery_day"] = None


@ACTIONS.action(
    "reschedule_delivery",
    sets={"rescheduled": "bool", "reschedule_problem": "text", "reschedule_texted": "bool"},
    changes_world=True,
)
async def reschedule_delivery(ctx: ActionContext) -> None:
    """Ask the carrier for the day the caller chose, if policy allows it."""
    order = ctx.order
    day = ctx.slots.get("delivery_day")
    ctx.slots.update(rescheduled=False, reschedule_problem=None, reschedule_texted=False)
    deliveries = ctx.services.deliveries
    if order is None or day is None or deliveries is None:
        ctx.slots["reschedule_problem"] = "unavailable"
        return
    problem = _day_problem(ctx, day)
    if problem is None:
        try:
            day = await ctx.fetch(
                deliveries.reschedule(
                    order.number, day, idempotency_key=ctx.key("reschedule", order.number)
                )
            )
        except ProviderError as exc:
            problem = exc.code
    if problem is not None:
        ctx.slots.update(reschedule_problem=problem, delivery_day=None)
        return
    ctx.slots.update(rescheduled=True, delivery_day=day)
    ctx.memo.get("shipments", {}).pop(order.number, None)  # tracking now tells the new day
    await ctx.record("delivery.rescheduled", day=day.isoformat())
    ctx.slots["reschedule_texted"] = bool(
        await text_customer(
            ctx,
            "rescheduled",
            purpose="rescheduled",
            order=order.number,
            item=say_items(order),
            carrier=ctx.slots.get("carrier") or "The carrier",
            day=say_date(day, ctx.today).removeprefix("on "),
        )
    )


@ACTIONS.action(
    "check_address_change",
    sets={"address_changeable": "bool", "can_redirect": "bool", "already_delivered": "bool"},
)
async def check_address_change(ctx: ActionContext) -> None:
    """Before shipping the address can change; after, only the carrier can redirect."""
    order = ctx.order
    delivered = bool(order and order.delivered_at is not None)
    ctx.slots.update(
        already_delivered=delivered,
        address_changeable=bool(order and order.fulfillment == "unfulfilled"),
        can_redirect=bool(
            order
            and order.fulfillment == "fulfilled"
            and not delivered
            and ctx.services.deliveries is not None
        ),
    )


def _address(ctx: ActionContext) -> Address | None:
    street = ctx.slots.get("new_street")
    zip_code = ctx.slots.get("new_zip")
    city = ctx.slots.get("new_city")
    if not (street and zip_code and isinstance(city, tuple)):
        return None
    return Address(line1=str(street), city=city[0], region=city[1], postal_code=str(zip_code))


@ACTIONS.action(
    "change_address",
    sets={"address_changed": "bool", "address_problem": "text", "address_texted": "bool"},
    changes_world=True,
)
async def change_address(ctx: ActionContext) -> None:
    """Change where an unshipped order goes, or ask the carrier to redirect a shipped one."""
    order = ctx.order
    address = _address(ctx)
    ctx.slots.update(address_changed=False, address_problem=None, address_texted=False)
    if order is None or address is None:
        ctx.slots["address_problem"] = "incomplete"
        return
    key = ctx.key("address", order.number)
    try:
        if order.fulfillment == "unfulfilled":
            await ctx.fetch(
                ctx.services.orders.update_shipping_address(
                    order.number, address, idempotency_key=key
                )
            )
            event, data = "address.changed", {}
        else:
            if ctx.services.deliveries is None:
                raise ServiceUnavailable("no deliveries service")
            request = await ctx.fetch(
                ctx.services.deliveries.redirect(order.number, address, idempotency_key=key)
            )
            event, data = "redirect.requested", {"request_id": request}
    except ProviderError as exc:
        ctx.slots["address_problem"] = exc.code
        return
    ctx.slots["address_changed"] = True
    await ctx.record(event, postal_code=address.postal_code, city=address.city, **data)
    ctx.slots["address_texted"] = bool(
        await text_customer(
            ctx,
            "address_changed",
            purpose="address_changed",
            order=order.number,
            item=say_items(order),
            address=f"{address.line1}, {address.city}, {address.region} {address.postal_code}",
        )
    )


@ACTIONS.action("open_claim", sets={"claim_id": "reference"}, changes_world=True)
async def open_claim(ctx: ActionContext) -> None:
    """Open a carrier claim (`claim_kind`: lost or damaged) when the policy says to."""
    order = ctx.order
    kind = str(ctx.slots.get("claim_kind") or "lost")
    wanted = (
        ctx.policy.lost.open_carrier_claim
        if kind == "lost"
        else ctx.policy.damaged.open_carrier_claim
    )
    ctx.slots["claim_id"] = None
    if order is None or not wanted or ctx.services.deliveries is None:
        return
    try:
        claim = await ctx.fetch(
            ctx.services.deliveries.open_claim(
                order.number, kind, idempotency_key=f"claim:{order.number}:{kind}"
            )
        )
    except ProviderError as exc:
        await ctx.record("claim.refused", kind=kind, reason=exc.code)
        return
    ctx.slots["claim_id"] = claim
    ctx.memo.setdefault("claimed", set()).add(order.number)
    await ctx.record("claim.opened", claim_id=claim, kind=kind)


@ACTIONS.action(
    "check_damage_window",
    sets={
        "damage_in_window": "bool",
        "days_since_delivery": "days",
        "damage_days": "days",
        "delivered": "bool",
        "damage_replacement": "bool",
        "damage_refund": "bool",
    },
)
async def check_damage_window(ctx: ActionContext) -> None:
    """Damage reported within the policy's days of delivery gets a replacement or a refund
    (whichever of the two the policy offers)."""
    order = ctx.order
    policy = ctx.policy.damaged
    limit = policy.report_within_days
    ctx.slots.update(
        damage_days=limit,
        damage_in_window=False,
        delivered=False,
        damage_replacement="replacement" in policy.resolutions,
        damage_refund="refund" in policy.resolutions,
    )
    if order is None or order.delivered_at is None:
        return
    days = (ctx.today - order.delivered_at.astimezone(ctx.tz).date()).days
    ctx.slots.update(delivered=True, days_since_delivery=days, damage_in_window=days <= limit)
    if days > limit:
        await ctx.record("replacement.denied", reason="window", days_since_delivery=days)


@ACTIONS.action(
    "create_replacement",
    sets={"replacement_created": "bool", "rma": "reference", "replacement_texted": "bool"},
    changes_world=True,
)
async def create_replacement(ctx: ActionContext) -> None:
    """Send the same item again for a damaged one (recorded as an exchange for the same size)."""
    order = ctx.order
    line = target_line(ctx, order) if order else None
    ctx.slots.update(replacement_created=False, replacement_texted=False)
    if order is None or line is None or ctx.services.returns is None:
        raise ServiceUnavailable("no returns service")
    reason = str(ctx.slots.get("claim_kind") or "damaged")
    try:
        ra = await ctx.fetch(
            ctx.services.returns.create(
                order.number,
                [line.line_id],
                reason,
                "exchange",
                idempotency_key=f"return:{order.number}:{line.line_id}",
                exchange_variant=line.variant,
            )
        )
    except ProviderError as exc:
        await ctx.record("replacement.denied", reason=exc.code, line_id=line.line_id)
        return
    ctx.slots.update(replacement_created=True, rma=ra.rma)
    await ctx.record("replacement.created", rma=ra.rma, line_id=line.line_id, reason=reason)
    ctx.slots["replacement_texted"] = bool(
        await text_customer(
            ctx,
            "replacement",
            purpose="replacement",
            order=order.number,
            item=say_items(order),
            rma=ra.rma,
        )
    )


@ACTIONS.action("hold_refund", sets={"refund_hold_until": "day"})
async def hold_refund(ctx: ActionContext) -> None:
    """A parcel marked delivered that never reached the caller: no refund yet, a wait first."""
    order = ctx.order
    until = ctx.today + timedelta(days=ctx.policy.not_received.wait_days)
    ctx.slots["refund_hold_until"] = until
    if order is not None:
        await ctx.record("refund.held", until=until.isoformat(), reason="delivered_not_received")
