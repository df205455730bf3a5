"""The call's summary: a few lines for the person taking over, or for the call record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialog.engine import Engine
from dialog.events import CallInfo
from integrations.models import Customer
from integrations.protocols import ACTION_EVENTS

__all__ = ["DECISIONS", "summarize"]

DECISIONS = ACTION_EVENTS | {"escalation"}
"""Events a person taking over needs to know were done."""


def summarize(
    engine: Engine,
    call: CallInfo,
    intents: Sequence[str],
    recorded: Sequence[tuple[str, str | None, dict[str, Any]]],
    outcome: str | None,
) -> str:
    """Who called, what they asked, what was done, and how it ended."""
    slots = engine.slots
    customer = slots.get("customer")
    who = (
        f"{customer.name} (customer {customer.id})"
        if isinstance(customer, Customer)
        else "not identified"
    )
    if slots.get("verified_customer"):
        who += f", verified by {slots.get('verified_by') or 'second factor'}"
    parts = [f"Caller {call.caller_number or 'unknown'}: {who}"]
    if call.direction == "outbound":
        parts.append(f"Outbound call ({call.purpose or 'no purpose'})")
    if intents:
        parts.append("Intents: " + ", ".join(intents))
    reports = engine.memo.get("reports", {})
    if reports:
        parts.append("Orders: " + "; ".join(_order_line(n, r) for n, r in reports.items()))
    not_found = engine.memo.get("not_found", [])
    if not_found:
        parts.append("Not found: " + ", ".join(not_found))
    decisions = [_decision(t, o, d) for t, o, d in recorded if t in DECISIONS]
    if decisions:
        parts.append("Done: " + "; ".join(decisions))
    parts.append(f"Outcome: {outcome or 'in progress'}")
    return ". ".join(parts) + "."


def _decision(type: str, order: str | None, data: dict[str, Any]) -> str:
    detail = ", ".join(
        f"{k}={v}" for k, v in data.items() if k in ("reason", "rma", "purpose", "score", "code")
    )
    where = f" {order}" if order else ""
    return f"{type}{where}" + (f" ({detail})" if detail else "")


def _order_line(number: str, report: Any) -> str:
    line = f"{number} {report.kind.value.replace('_', ' ')}"
    if report.days_without_scan is not None:
        line += f", no carrier scan for {report.days_without_scan} days"
    return line
