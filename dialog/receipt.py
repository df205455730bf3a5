"""Refund on receipt: what the warehouse side triggers when a returned parcel arrives.

No caller is on the line: the `refund_on_receipt` flow runs on its own, through the same
actions and policy as a call. The line is refunded to the original payment method (once,
ever), or, above the approval line, a ticket asks a person to approve it
(`refund.pending_approval`); the customer gets a text either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from dialog.engine import Engine
from dialog.events import CallInfo, Say
from dialog.loader import Flows, load_flows
from dialog.policy import Policy, load_policy
from integrations.protocols import Services

__all__ = ["RECEIPT_FLOW", "ReceiptOutcome", "refund_on_receipt"]

RECEIPT_FLOW = "refund_on_receipt"
"""The flow the warehouse side runs."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiptOutcome:
    """What happened: "created", "pending_approval", "denied", or "not_refundable" (not a
    refund return, or not received), with the refund's amount and any ticket."""

    rma: str
    order: str | None
    outcome: str
    amount_cents: int | None = None
    ticket_id: str | None = None
    reason: str | None = None


async def refund_on_receipt(
    rma: str,
    services: Services,
    *,
    flows: Flows | None = None,
    policy: Policy | None = None,
    clock: Callable[[], datetime] | None = None,
    timeout: float = 15.0,
) -> ReceiptOutcome:
    """Mark RMA `rma` received and settle its refund by policy; safe to run twice."""
    flows = flows or load_flows()
    engine = Engine(
        flows=flows,
        services=services,
        policy=policy or load_policy(),
        call=CallInfo(f"receipt:{rma}", "", "", "inbound", "refund_on_receipt"),
        clock=clock or (lambda: datetime.now(UTC)),
        tz=services.timezone,
        timeout=timeout,
    )
    engine.slots["rma"] = rma
    engine.begin(flows[RECEIPT_FLOW])
    async for event in engine.run():
        if isinstance(event, Say):  # a merchant's flow may say things; nobody is listening
            _log.info("receipt %s: %s", rma, event.text)
    order = engine.slots.get("order")
    received = engine.slots.get("return_received")
    outcome = str(engine.slots.get("refund_outcome") or "") if received else "not_refundable"
    return ReceiptOutcome(
        rma=rma,
        order=getattr(order, "number", None),
        outcome=outcome or "not_refundable",
        amount_cents=engine.slots.get("refund_amount"),
        ticket_id=engine.slots.get("ticket_id"),
        reason=engine.slots.get("refund_denial"),
    )
