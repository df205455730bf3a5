"""Every fixture scenario through `postvoice replay`: real server, real models, real socket."""

import json
from pathlib import Path

import pytest

from harness.replay import run_target
from voice.settings import Settings

SCENARIOS = Path(__file__).parents[1] / "audio_fixtures" / "scenarios"
pytestmark = pytest.mark.slow


def test_every_scenario_reaches_its_outcome(tmp_path):
    code = run_target(SCENARIOS, url=None, out=tmp_path, realtime=False, settings=Settings())
    reports = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/report.json")}
    failed = {name: r["failures"] for name, r in reports.items() if not r["passed"]}
    assert not failed
    assert code == 0
    assert len(reports) == len(list(SCENARIOS.glob("*.yaml")))
    # Every demo order has its scenario, and each reached the world through the protocols.
    orders = {name for name in reports if name.startswith("order_10")}
    assert len(orders) == 12
    types = {e["type"] for r in reports.values() for e in r["events"]}
    for event in (
        "return.created",
        "return.denied",
        "exchange.created",
        "delivery.rescheduled",
        "claim.opened",
        "ticket.created",
        "address.changed",
        "csat.recorded",
        "coupon.checked",
        "sms.sent",
        "handoff",
    ):
        assert event in types, event
