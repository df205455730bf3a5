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


def test_calls_that_pass_the_second_factor_and_then_decline_change_nothing(tmp_path):
    # The calls bench plays to time the reply after a ZIP code (harness.bench --scenarios).
    directory = SCENARIOS.parent / "scenarios_second_factor"
    code = run_target(directory, url=None, out=tmp_path, realtime=False, settings=Settings())
    reports = [json.loads(p.read_text()) for p in tmp_path.glob("*/report.json")]
    assert len(reports) == len(list(directory.glob("*.yaml"))) == 2
    assert [r["failures"] for r in reports if not r["passed"]] == []
    assert code == 0
