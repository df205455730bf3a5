"""The scenario format of docs/DESIGN.md: one call, seen from the caller's side, and the check of
a report against its expectations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CallHeader",
    "Expect",
    "Scenario",
    "Turn",
    "check_expectations",
    "event_matches",
    "load_scenario",
    "load_scenarios",
    "scenario_files",
]


class Turn(BaseModel):
    """One caller turn; exactly one field is set."""

    model_config = ConfigDict(extra="forbid")

    say: Path | None = None
    text: str | None = None
    dtmf: str | None = None
    silence: float | None = Field(default=None, ge=0)
    barge_in: Path | None = None
    hangup: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Turn:
        set_fields = [k for k, v in self.model_dump().items() if v is not None]
        if len(set_fields) != 1:
            raise ValueError(
                f"a turn needs exactly one of say/text/dtmf/silence/barge_in/hangup, "
                f"got {set_fields or 'none'}"
            )
        if self.dtmf is not None and not all(c in "0123456789*#" for c in self.dtmf):
            raise ValueError(f"dtmf {self.dtmf!r} has characters a keypad does not have")
        return self

    @property
    def kind(self) -> str:
        """Which of the turn kinds this is."""
        return next(k for k, v in self.model_dump().items() if v is not None)


class Expect(BaseModel):
    """What must be true of the call; all optional."""

    model_config = ConfigDict(extra="forbid")

    intents: list[str] = Field(default_factory=list)
    agent_says: list[str] = Field(default_factory=list)
    agent_never_says: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    not_actions: list[str] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    not_events: list[dict[str, Any]] = Field(default_factory=list)
    handoff: bool | None = None
    max_latency_ms: int | None = None


def event_matches(event: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a reported event has every field of `wanted` (`type`, `order`, any data field),
    compared as text so YAML's `order: 1003` matches "1003"."""
    return all(k in event and str(event[k]) == str(v) for k, v in wanted.items())


class CallHeader(BaseModel):
    """Which call a test call is: its name, the numbers, the direction and, on an outbound
    call, its purpose and order. Shared by scenarios and typed conversations."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    from_: str = Field(alias="from")
    to: str = "+18005550100"
    direction: Literal["inbound", "outbound"] = "inbound"
    purpose: str | None = None
    order: str | None = None


class Scenario(CallHeader):
    """One call. Audio paths are relative to the scenario file (resolved by `load_scenario`)."""

    turns: list[Turn] = Field(default_factory=list)
    expect: Expect = Field(default_factory=Expect)
    realtime: bool = False  # always played at the speed of speech (its point is timing)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario; audio paths become absolute and must exist."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a YAML mapping")
    for key in ("from", "to"):
        if isinstance(data.get(key), int):
            data[key] = f"+{data[key]}"
    scenario = Scenario.model_validate(data)
    for turn in scenario.turns:
        for attr in ("say", "barge_in"):
            clip = getattr(turn, attr)
            if clip is not None:
                resolved = (path.parent / clip).resolve()
                if not resolved.exists():
                    raise ValueError(f"{path}: audio file {clip} not found")
                setattr(turn, attr, resolved)
    return scenario


def scenario_files(directory: Path) -> list[Path]:
    """The scenario files of a directory, by file name (`*.yaml`, then `*.yml`)."""
    return sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))


def load_scenarios(directory: Path) -> list[Scenario]:
    """Every scenario of a directory, by file name."""
    return [load_scenario(p) for p in scenario_files(directory)]


def check_expectations(scenario: Scenario, report: dict[str, Any]) -> list[str]:
    """Each failed expectation, in words."""
    expect = scenario.expect
    failures: list[str] = []
    agent_text = [t["text"].lower() for t in report["turns"] if t["role"] == "agent"]
    types = {e["type"] for e in report["events"]}
    for intent in expect.intents:
        if intent not in report["intents"]:
            failures.append(f"intents: {intent!r} was never recognised (got {report['intents']})")
    for phrase in expect.agent_says:
        if not any(phrase.lower() in t for t in agent_text):
            failures.append(f"agent_says: no agent turn contains {phrase!r}")
    for phrase in expect.agent_never_says:
        if any(phrase.lower() in t for t in agent_text):
            failures.append(f"agent_never_says: an agent turn contains {phrase!r}")
    for action in expect.actions:
        if action not in types:
            failures.append(f"actions: no {action!r} event")
    for action in expect.not_actions:
        if action in types:
            failures.append(f"not_actions: a {action!r} event happened")
    for wanted in expect.events:
        if not any(event_matches(e, wanted) for e in report["events"]):
            failures.append(f"events: no event matching {wanted}")
    for unwanted in expect.not_events:
        if any(event_matches(e, unwanted) for e in report["events"]):
            failures.append(f"not_events: an event matching {unwanted} happened")
    if expect.handoff is not None and report["handoff"] != expect.handoff:
        failures.append(f"handoff: expected {expect.handoff}, got {report['handoff']}")
    if expect.max_latency_ms is not None:
        slow = [ms for ms in report["latency_ms"] if ms > expect.max_latency_ms]
        if slow:
            failures.append(
                f"max_latency_ms: replies took {slow} ms (limit {expect.max_latency_ms})"
            )
    return failures
