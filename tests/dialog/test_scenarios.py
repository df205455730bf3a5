"""Every text-only scenario in `audio_fixtures/scenarios/`, run against the agent in-process.

The same expectations `postvoice replay` checks, on the embedded demo shop, without audio or a
server: fast and deterministic, so each flow's scenario is part of the unit suite. Scenarios
with audio turns are left to replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dialog.agent import Agent
from dialog.events import CallInfo, EndCall, Say, Transfer
from harness.conversations import demo_services
from harness.scenario import Scenario, check_expectations, load_scenario
from integrations.demo import DemoShop

SCENARIOS = Path(__file__).resolve().parents[2] / "audio_fixtures" / "scenarios"
SILENCE_REPROMPT_S = 5.0  # the server's default: a shorter silence draws no reply
_TEXT_KINDS = {"text", "dtmf", "silence", "hangup"}


def _text_only(path: Path) -> bool:
    return all(turn.kind in _TEXT_KINDS for turn in load_scenario(path).turns)


TEXT_SCENARIOS = [p for p in sorted(SCENARIOS.glob("*.yaml")) if _text_only(p)]


class Events:
    """An event sink keeping what the agent records, as replay's report lists it."""

    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        self.recorded.append({"type": type, "order": order, **data})


async def play(scenario: Scenario, shop: DemoShop) -> dict[str, Any]:
    """Run the scenario's turns against a fresh agent; return replay's report fields."""
    events = Events()
    services = demo_services(shop, events)
    info = CallInfo(
        f"CA-{scenario.name}",
        scenario.from_,
        scenario.to,
        scenario.direction,
        scenario.purpose,
        scenario.order,
    )
    agent = Agent(None, services, info)
    turns: list[dict[str, str]] = []
    ended = False

    async def drain(stream) -> None:
        nonlocal ended
        async for event in stream:
            if isinstance(event, Say):
                turns.append({"role": "agent", "text": event.text})
            elif isinstance(event, EndCall | Transfer):
                ended = True

    await drain(agent.start())
    for turn in scenario.turns:
        if ended or turn.kind == "hangup":
            break
        if turn.kind == "text":
            turns.append({"role": "caller", "text": turn.text or ""})
            await drain(agent.hear(turn.text or "", 1.0))
        elif turn.kind == "dtmf":
            digits = (turn.dtmf or "").rstrip("#")
            turns.append({"role": "caller", "text": digits})
            await drain(agent.keypad(digits))
        elif turn.kind == "silence" and (turn.silence or 0) >= SILENCE_REPROMPT_S:
            await drain(agent.silence(turn.silence or 0))
    await agent.end("scenario_over")
    intents = []
    for event in events.recorded:
        if event["type"] == "intent" and event["name"] not in intents:
            intents.append(event["name"])
    return {
        "turns": turns,
        "events": events.recorded,
        "intents": intents,
        "handoff": agent.handoff,
        "latency_ms": [],
    }


def test_every_demo_order_has_a_scenario():
    names = " ".join(p.stem for p in SCENARIOS.glob("*.yaml"))
    for number in range(1001, 1013):
        assert f"order_{number}" in names


@pytest.mark.parametrize("path", TEXT_SCENARIOS, ids=[p.stem for p in TEXT_SCENARIOS])
async def test_text_scenario_reaches_its_outcome(path: Path):
    scenario = load_scenario(path)
    report = await play(scenario, DemoShop.in_memory())
    transcript = "\n".join(f"{t['role']}: {t['text']}" for t in report["turns"])
    assert check_expectations(scenario, report) == [], transcript
