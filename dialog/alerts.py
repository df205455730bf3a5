"""What we tell a customer outside a conversation: an order's exception alert, a voicemail.

`exception_of` decides whether a shipment went wrong (a failed delivery attempt, a delay, a
lost parcel); the words of the alert and of the message left on a machine are lines of the
shop's `conversation.yaml` (`alert_*`, `voicemail`, `voicemail_text`), so a shop rewords them
the way it rewords the rest of what the agent says. Nothing here knows how they are sent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dialog.schema import Conversation
from dialog.wording import screen_wording
from integrations.models import Order, Shipment, ShipmentStatus

__all__ = ["ALERT_KINDS", "alert_text", "exception_of", "voicemail", "voicemail_text"]

ALERT_KINDS = ("failed_attempt", "delayed", "lost")
"""The exceptions `exception_of` finds, each with its `alert_<kind>` line."""


def exception_of(shipment: Shipment, now: datetime, lost_after_days: int) -> tuple[str, str] | None:
    """(kind, scan) of the exception this shipment shows, or None. `scan` names the carrier
    event that showed it, so a new failed attempt is a new exception."""
    last = max(shipment.events, key=lambda e: e.at) if shipment.events else None
    scan = last.at.astimezone(UTC).isoformat(timespec="minutes") if last else "none"
    if shipment.status == ShipmentStatus.DELIVERED:
        return None
    if shipment.status == ShipmentStatus.FAILED_ATTEMPT:
        return "failed_attempt", scan
    if last is not None and now - last.at >= timedelta(days=lost_after_days):
        return "lost", scan
    if shipment.status in (ShipmentStatus.DELAYED, ShipmentStatus.EXCEPTION):
        return "delayed", scan
    today: date = now.date()
    if shipment.eta is not None and shipment.eta < today:
        return "delayed", f"eta-{shipment.eta.isoformat()}"
    return None


def alert_text(shop: str, order: Order, kind: str, lines: Conversation) -> str:
    """The text telling a customer of an exception (`kind`, one of `ALERT_KINDS`), with
    their options."""
    return _fill(screen_wording(getattr(lines, f"alert_{kind}")), shop, order.number)


def voicemail(shop: str, order_number: str, lines: Conversation) -> str:
    """What a call we placed says to an answering machine (the shipped line gives no order
    details: anyone may hear it)."""
    return _fill(lines.voicemail, shop, order_number)


def voicemail_text(shop: str, order_number: str, lines: Conversation) -> str:
    """The text sent instead of the conversation a machine answered."""
    return _fill(screen_wording(lines.voicemail_text), shop, order_number)  # read, not heard


def _fill(line: str, shop: str, order_number: str) -> str:
    """A line with its fields written as they are: no slot types here, only the shop and the
    order (`Conversation` lets these lines name nothing else)."""
    return line.format(shop=shop, order_number=order_number)
