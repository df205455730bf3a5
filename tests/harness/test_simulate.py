"""`postvoice simulate --fast` on a few shipped personas, against the real app in this process
(the agent speaks through a fake synthesizer; the caller reads the live call record and
speaks by text)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from harness.persona import Persona, load_personas
from harness.simulate import TEXT, plan_calls
from harness.simulate_run import fresh_shop, run_calls, waves
from harness.simulate_summary import summarize
from harness.target import in_process_server
from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice.server import Engines

PERSONAS = Path(__file__).parents[2] / "personas"
CHOSEN = (
    "aisha-exchange-size-up-plain",  # a relative size, resolved to L
    "omar-wismo-stranger-keypad",  # the order number typed on the keypad
    "james-return-earbuds-refund-slip",  # a wrong ZIP first, then the right one
    "maria-two-shirt-and-shoes-plain",  # two requests in one sentence
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    personas = [p for p in load_personas(PERSONAS) if p.name in CHOSEN]
    assert len(personas) == len(CHOSEN)
    db = tmp_path_factory.mktemp("simulate") / "shop.db"

    async def run():
        engines = Engines(FakeTranscriber(), FakeSynthesizer())
        async with in_process_server(f"sqlite:///{db}", engines) as target:
            return await run_calls(plan_calls(personas, None, [], [], 3), target, transcriber=None)

    return asyncio.run(run())


def test_the_shipped_set_loads_and_covers_every_procedure():
    from harness.persona import PROCEDURES

    personas = load_personas(PERSONAS)
    assert len(personas) >= 100
    assert {g.procedure for p in personas for g in p.goals} == set(PROCEDURES)


def test_each_call_reaches_its_personas_outcome(reports):
    assert sorted(r["persona"] for r in reports) == sorted(CHOSEN)
    failed = {r["persona"]: r["failures"] for r in reports if not r["passed"]}
    assert not failed


def test_every_caller_turn_says_why(reports):
    for report in reports:
        assert report["voice"] == TEXT and report["heard_from"] == "record"
        turns = [t for t in report["caller_turns"] if "turn" in t]
        assert turns and all(t["reason"] for t in turns)
        assert turns[0]["heard"].startswith("Hi")


def test_the_keypad_user_typed_and_the_slip_was_repaired(reports):
    by_name = {r["persona"]: r for r in reports}
    keypad = by_name["omar-wismo-stranger-keypad"]["caller_turns"]
    assert any(t["kind"] == "dtmf" for t in keypad)
    slip = by_name["james-return-earbuds-refund-slip"]
    assert any("slipped, gave zip" in t.get("reason", "") for t in slip["caller_turns"])
    assert slip["repairs"] >= 1


def test_the_summary_adds_the_calls_up(reports):
    summary = summarize(reports)
    assert summary["calls"] == len(CHOSEN)
    assert summary["outcome_rate"] == summary["passed"] / summary["calls"]
    assert set(summary["per_goal"]) == {"exchange", "return", "where_is_my_order"}
    assert summary["per_voice"][TEXT]["calls"] == len(CHOSEN)
    assert summary["turns_to_resolution"]["n"] >= 1
    json.dumps(summary)  # summary.json


def test_the_same_seed_plans_the_same_calls():
    personas = load_personas(PERSONAS)[:5]
    from harness.callers import test_voices

    first = plan_calls(personas, 12, test_voices(), ["quiet", "street"], 9)
    again = plan_calls(personas, 12, test_voices(), ["quiet", "street"], 9)
    assert [(p.persona.name, p.voice, p.noise) for p in first] == [
        (p.persona.name, p.voice, p.noise) for p in again
    ]
    assert len({p.voice for p in first}) > 1


def _persona(name: str, order: str, calls_from: str = "withheld") -> Persona:
    return Persona.model_validate(
        {
            "name": name,
            "calls_from": calls_from,
            "goals": [{"procedure": "return", "order": order, "ask": ["return it"]}],
        }
    )


def test_two_calls_about_one_order_never_share_a_wave():
    same_order = [
        _persona("a", "1003", "+14155550102"),
        _persona("b", "1003", "+14155550999"),  # someone else, about the same order
        _persona("c", "1005", "+14155550103"),
    ]
    planned = waves(plan_calls(same_order, None, [], [], 0), 3)
    assert [[p.persona.name for p in wave] for wave in planned] == [["a", "c"], ["b"]]


def test_two_calls_from_one_number_never_share_a_wave():
    planned = waves(plan_calls([_persona("a", "1001"), _persona("b", "1002")], None, [], [], 0), 2)
    assert [len(wave) for wave in planned] == [1, 1]  # withheld callers share "anonymous"


def test_the_shipped_set_runs_in_waves_that_touch_nothing_in_common():
    plans = plan_calls(load_personas(PERSONAS), None, [], [], 0)
    planned = waves(plans, 4)
    assert sorted(p.index for wave in planned for p in wave) == [p.index for p in plans]
    assert max(len(wave) for wave in planned) == 4
    for wave in planned:
        touched = [t for p in wave for t in p.persona.touches()]
        assert len(touched) == len(set(touched)), [p.name for p in wave]


def test_a_later_wave_can_make_the_same_refund_again():
    """Refunds are once per order line ever, in the outbox; the reset forgets them too."""
    refund = [p for p in load_personas(PERSONAS) if p.name.startswith("lena-damaged-vase-refund")]
    assert len(refund) == 2

    async def run():
        async with fresh_shop(Engines(FakeTranscriber(), FakeSynthesizer())) as target:
            return await run_calls(plan_calls(refund, None, [], [], 0), target, transcriber=None)

    reports = asyncio.run(run())
    assert [r["failures"] for r in reports] == [[], []]
