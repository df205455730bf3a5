"""Texting the customer: every SMS goes through here, worded by `conversation.yaml`."""

from __future__ import annotations

from typing import Any

from dialog.actions.registry import ActionContext
from dialog.events import CallInfo
from dialog.policy import Policy

__all__ = [
    "IN_REPLY",
    "SAID_IN_REPLY",
    "caller_can_text",
    "label_recipient",
    "text_customer",
    "written_money",
]


def written_money(cents: int) -> str:
    """Money as written in a text: "$48.00"."""
    return f"${cents / 100:,.2f}"


IN_REPLY = "in_reply"
"""The message id of a text that went out as part of the reply (`text_customer` on screen)."""

SAID_IN_REPLY = frozenset(
    {"rescheduled", "address_changed", "replacement", "refund_created", "ticket"}
)
"""Texts that only confirm what the reply itself says (the new day, the new address, the
replacement and its reference, the refund made, the ticket number): in a conversation held by
text messages they are not sent at all."""


def caller_can_text(ctx: ActionContext) -> bool:
    """Whether the number on the line can receive a text (withheld numbers cannot); in a
    conversation held by text messages, the reply itself can always carry one."""
    return ctx.call.on_screen or ctx.call.caller_number.startswith("+")


def label_recipient(call: CallInfo, policy: Policy) -> str | None:
    """The number a return label bought later (through the outbox) is texted to, or None.

    The number on the line when it can take a text and the shop texts its labels; in a
    conversation held on WhatsApp, its WhatsApp address (`whatsapp:+1…`), so the label follows
    the conversation. The services hand it to the outbox and the return flow says the label is
    on its way only when there is one, so both ask here and what the caller is told is what
    the worker does.
    """
    number = call.caller_number
    if not (policy.returns.label_by_sms and number.startswith("+")):
        return None
    return f"whatsapp:{number}" if call.channel == "whatsapp" else number


async def text_customer(
    ctx: ActionContext,
    template: str,
    *,
    purpose: str,
    to: str | None = None,
    **fields: Any,
) -> str | None:
    """Send the SMS `template` to `to` (the number on the line by default); its message id.

    None when there is nobody to text or the shop has no wording for it. The idempotency key
    names the call, the purpose and the order, so a retried turn never texts twice.

    In a conversation held by text messages (`CallInfo.on_screen`), a text to the customer
    themselves is not sent beside it: the message goes in the reply, where the link is the
    message (`ActionContext.in_reply`), and its id is `IN_REPLY`; one that only confirms
    what the reply says (`SAID_IN_REPLY`) is left out (None).
    """
    own = to is None or to == ctx.call.caller_number
    to = to or (ctx.call.caller_number if caller_can_text(ctx) else None)
    if not to:
        return None
    body = ctx.sms(template, **fields)
    if not body:
        return None
    if ctx.call.on_screen and own:
        if template in SAID_IN_REPLY:
            return None
        ctx.in_reply(body)
        await ctx.record("sms.sent", to=to, message_id=None, purpose=purpose, in_reply=True)
        return IN_REPLY
    key = ctx.key("sms", purpose, ctx.order_number() or "-")
    message_id = await ctx.fetch(
        ctx.services.messenger.send_sms(to, body, idempotency_key=key), announce=False
    )
    await ctx.record("sms.sent", to=to, message_id=message_id, purpose=purpose)
    return message_id
