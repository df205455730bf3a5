"""Messages outside a conversation: which shipments need an alert, and the shop's wording of
the alerts and the voicemail, shipped or from its `conversation.yaml`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dialog.alerts import ALERT_KINDS, alert_text, exception_of, voicemail, voicemail_text
from dialog.loader import check_flows, load_flows
from dialog.schema import Conversation
from integrations.models import Order, Shipment, ShipmentStatus, TrackingEvent

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
ORDER = Order(number="1006", customer_id="c1", placed_at=NOW, lines=(), fulfillment="fulfilled")


def shipment(status: ShipmentStatus, *, scanned_days_ago: float | None = 1, eta=None) -> Shipment:
    events = ()
    if scanned_days_ago is not None:
        at = NOW - timedelta(days=scanned_days_ago)
        events = (TrackingEvent(at=at, status=status, description="scan"),)
    return Shipment("ups", "1Z", status, "", fetched_at=NOW, eta=eta, events=events)


def test_a_failed_attempt_is_an_exception_named_by_its_scan():
    kind, scan = exception_of(shipment(ShipmentStatus.FAILED_ATTEMPT), NOW, 7)
    assert kind == "failed_attempt" and scan == "2025-03-09T15:00+00:00"


def test_a_parcel_with_no_scan_for_lost_after_days_is_lost():
    stuck = shipment(ShipmentStatus.IN_TRANSIT, scanned_days_ago=7)
    assert exception_of(stuck, NOW, 7)[0] == "lost"
    assert exception_of(stuck, NOW, 8) is None


def test_a_delay_is_the_carriers_word_or_a_passed_eta():
    assert exception_of(shipment(ShipmentStatus.DELAYED), NOW, 7)[0] == "delayed"
    assert exception_of(shipment(ShipmentStatus.EXCEPTION), NOW, 7)[0] == "delayed"
    late = shipment(ShipmentStatus.IN_TRANSIT, eta=date(2025, 3, 9))
    assert exception_of(late, NOW, 7) == ("delayed", "eta-2025-03-09")


def test_a_delivered_parcel_is_never_an_exception():
    assert exception_of(shipment(ShipmentStatus.DELIVERED, scanned_days_ago=30), NOW, 7) is None


def test_every_alert_names_the_shop_and_the_order_and_what_to_do():
    lines = Conversation()
    for kind in ALERT_KINDS:
        text = alert_text("Northwind Goods", ORDER, kind, lines)
        assert text.startswith("Northwind Goods: ") and "1006" in text and "call us" in text
    assert "reschedule" in alert_text("Northwind Goods", ORDER, "failed_attempt", lines)


def test_the_voicemail_gives_no_order_details_and_the_text_names_the_order():
    lines = Conversation()
    said = voicemail("Northwind Goods", "1006", lines)
    assert "Northwind Goods" in said and "1006" not in said
    assert "1006" in voicemail_text("Northwind Goods", "1006", lines)


def test_a_shop_rewords_the_alerts_and_the_voicemail_in_its_conversation_file(flows_dir):
    path = flows_dir / "conversation.yaml"
    path.write_text(
        path.read_text().replace(
            "conversation:\n",
            "conversation:\n"
            '  alert_lost: "{shop} here: order {order_number} seems lost, call us."\n'
            '  voicemail: "This is {shop}. We will text you."\n',
            1,
        )
    )
    lines = load_flows(flows_dir).conversation
    assert alert_text("Acme", ORDER, "lost", lines) == "Acme here: order 1006 seems lost, call us."
    assert voicemail("Acme", "1006", lines) == "This is Acme. We will text you."
    assert alert_text("Acme", ORDER, "delayed", lines).startswith("Acme: your order 1006")


def test_these_lines_name_only_the_shop_and_the_order(flows_dir):
    path = flows_dir / "conversation.yaml"
    path.write_text(
        path.read_text().replace(
            "conversation:\n",
            'conversation:\n  alert_delayed: "Hi {first_name}, {order_number}"\n',
            1,
        )
    )
    errors = [e for e in check_flows(flows_dir) if e.startswith(str(path))]
    assert len(errors) == 1 and "{first_name} is not known outside a call" in errors[0]
    with pytest.raises(ValueError, match="not known outside a call"):
        Conversation(voicemail="Hi {customer_name}")
