"""Text conversations: whole SMS exchanges written the way people text, each with its outcome.

A file (YAML) holds one category of conversations:

    category: returns
    conversations:
      - name: return-earbuds
        from: "+14155550102"
        alert: {order: "1006", kind: failed_attempt, body: "..."}   # optional, texted first
        policy: {damaged: {photos_above: 50}}                       # optional shop policy
        xfail: "why it is known to fail"                            # optional
        messages:
          - text: "hi i wanna return my earbuds"
            expect: {says: ["ZIP"], never_says: ["refund issued"]}
        expect:
          events: [{type: return.created, order: "1003"}]
          not_events: [{type: exchange.created}]

Each conversation runs against a fresh embedded demo shop (its own database in a temporary
directory, no Twilio account: replies are recorded by the demo messenger), through the signed
`POST /twilio/sms` route of the real server, with the outbox worker run after each message.
A message's `expect` is checked on the reply (or replies) it drew alone; the conversation's on
the events of the stored conversation(s) its messages belonged to (a handoff or STOP ends one,
and the next message starts another). `policy` overrides sections of the shop's policy file.
Photos sent by MMS are not played: fetching media needs a Twilio account, which the embedded
default has not. An `xfail` conversation is reported apart: never counted
as passed, and a failure if it unexpectedly passes. The demo shop is seeded on the day the
run happens (the server's clock is not pinned), so expectations avoid dates.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from harness.conversations import TurnExpect, _turn_failures, load_categorised
from harness.scenario import event_matches

__all__ = [
    "SHIPPED",
    "TextConversation",
    "TextFile",
    "TextOutcome",
    "format_results",
    "load_texts",
    "markdown",
    "run",
    "run_text_conversation",
]

SHIPPED = Path(__file__).resolve().parents[1] / "conversations" / "by_text"
"""The shipped text conversation set (one file per category)."""

PUBLIC = "https://support.example-shop.com"
SHOP_NUMBER = "+18005550100"
ALERT_MARK = "[the shop's alert for order "
_SIGNED = re.compile(r"(expires=|sig=|/photos/)[^&?\s]+")
_TOKEN = "text-conversations-harness"  # signs the webhook forms; not a Twilio account


class MessageExpect(BaseModel):
    """What the reply to one message must (not) say."""

    model_config = ConfigDict(extra="forbid")

    says: list[str] = Field(default_factory=list)
    never_says: list[str] = Field(default_factory=list)


class TextMessage(BaseModel):
    """One message the customer types."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    expect: MessageExpect = Field(default_factory=MessageExpect)


class ConversationExpect(BaseModel):
    """What the stored conversation must (not) hold."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(default_factory=list)
    not_events: list[dict[str, Any]] = Field(default_factory=list)


class Alert(BaseModel):
    """An exception alert texted to the customer before the first message."""

    model_config = ConfigDict(extra="forbid")

    order: str
    kind: str
    body: str


class TextConversation(BaseModel):
    """One text conversation and what must come of it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    from_: str = Field(alias="from", pattern=r"^\+[1-9]\d{6,14}$")
    alert: Alert | None = None
    policy: dict[str, dict[str, Any]] = Field(default_factory=dict)
    xfail: str | None = None
    messages: list[TextMessage] = Field(min_length=1)
    expect: ConversationExpect = Field(default_factory=ConversationExpect)
    category: str = ""


class TextFile(BaseModel):
    """A file of text conversations of one category."""

    model_config = ConfigDict(extra="forbid")

    category: str
    conversations: list[TextConversation]


def load_texts(target: Path) -> list[TextConversation]:
    """Every text conversation in a file, or in the `*.yaml` files of a directory (sorted);
    names unique across what is loaded, a mistake naming its file."""
    return load_categorised(target, TextFile)


@dataclass
class TextOutcome:
    """One conversation's result and the exchange as it went."""

    name: str
    category: str
    xfail: str | None = None
    failures: list[str] = field(default_factory=list)
    exchange: list[tuple[str, list[str]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No expectation failed (and none was expected to)."""
        return not self.failures and self.xfail is None

    @property
    def status(self) -> str:
        """passed, failed, xfail (failed as known) or xpass (a known failure that passed)."""
        if self.xfail is not None:
            return "xfail" if self.failures else "xpass"
        return "failed" if self.failures else "passed"

    @property
    def ok(self) -> bool:
        """Whether this outcome lets the run succeed."""
        return self.status in ("passed", "xfail")

    def transcript(self) -> str:
        """The exchange, typed → reply."""
        lines = []
        for typed, replies in self.exchange:
            lines.append(f"  typed: {typed}")
            lines.extend(f"  reply: {r}" for r in replies or ["(no reply)"])
        return "\n".join(lines)


def _flat(event: dict[str, Any]) -> dict[str, Any]:
    item = {"type": event["type"], **(event.get("data") or {})}
    if event.get("order_ref") is not None:
        item["order"] = event["order_ref"]
    return item


class _Shop:
    """The real server over a fresh embedded demo shop, and what it texted."""

    def __init__(self, directory: Path, policy: dict[str, dict[str, Any]]) -> None:
        from fastapi.testclient import TestClient

        from dialog.policy import DEFAULT_POLICY, load_policy
        from integrations.demo import seed
        from voice.server import Engines, create_app
        from voice.settings import Settings

        policy_file = None
        if policy:
            shop_policy = yaml.safe_load(DEFAULT_POLICY.read_text())
            for section, values in policy.items():
                shop_policy.setdefault(section, {}).update(values)
            policy_file = directory / "policy.yaml"
            policy_file.write_text(yaml.safe_dump(shop_policy))
            load_policy(policy_file)  # a mistake in the override fails here, by name
        settings = Settings(
            policy_file=policy_file,
            twilio_auth_token=_TOKEN,
            twilio_from_number=SHOP_NUMBER,
            public_url=PUBLIC,
            database_url=f"sqlite:///{directory / 'shop.db'}",
            admin_token="harness",
            worker_in_process=False,
        )
        self.app = create_app(settings, Engines(*_no_speech()))
        seed(self.app.state.runtime.engine)
        self.client = TestClient(self.app)

    def __enter__(self) -> _Shop:
        self.client.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.__exit__(*exc)

    def text(self, sender: str, body: str, sid: str) -> int:
        from voice import twilio

        form = {"MessageSid": sid, "From": sender, "To": SHOP_NUMBER, "Body": body}
        signature = twilio.compute_signature(_TOKEN, PUBLIC + "/twilio/sms", form)
        response = self.client.post(
            "/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}
        )
        return response.status_code

    def deliver(self) -> None:
        from integrations.worker import Worker, deliverers_from

        shop = self.app.state.runtime
        worker = Worker(shop.store.outbox, deliverers_from(shop.providers, shop.engine))
        while self.client.portal.call(worker.run_once):
            pass

    def sent(self, to: str) -> list[str]:
        from integrations.demo.messenger import DemoMessenger

        return [m["body"] for m in DemoMessenger(self.app.state.runtime.engine).sent(to)]

    def alert(self, to: str, alert: Alert) -> None:
        from integrations.outbound import OutboundStore
        from integrations.outbox import OutboxMessenger
        from integrations.store import CallEvents

        key = f"{alert.order}:{alert.kind}:harness"
        OutboundStore(self.app.state.runtime.engine).alert_once(key, alert.order, alert.kind, "sms")
        messenger = OutboxMessenger(CallEvents(self.app.state.store, None))
        self.client.portal.call(lambda: messenger.send_sms(to, alert.body, idempotency_key=key))


def _no_speech() -> tuple[Any, Any]:
    """Speech engines that are never used: text conversations neither hear nor speak audio."""
    import numpy as np

    from voice.stt import Transcriber, Transcript
    from voice.tts import Synthesizer

    class Deaf(Transcriber):
        async def transcribe(self, pcm: Any, hints: Any = None) -> Transcript:
            return Transcript("", 0.0, 0, 1)

    class Mute(Synthesizer):
        async def synthesize(self, text: str) -> Any:
            return np.zeros(0, dtype=np.int16)

    return Deaf(), Mute()


def run_text_conversation(conv: TextConversation, directory: Path) -> TextOutcome:
    """Play one conversation against a fresh demo shop in `directory`; check what it must
    come to."""
    outcome = TextOutcome(conv.name, conv.category, xfail=conv.xfail)
    with _Shop(directory, conv.policy) as shop:
        if conv.alert is not None:
            shop.alert(conv.from_, conv.alert)
            shop.deliver()
            outcome.exchange.append((f"{ALERT_MARK}{conv.alert.order}]", shop.sent(conv.from_)))
        first_sid = None
        for n, message in enumerate(conv.messages, 1):
            sid = f"SM{conv.name}-{n}"
            first_sid = first_sid or sid
            before = len(shop.sent(conv.from_))
            status = shop.text(conv.from_, message.text, sid)
            shop.deliver()
            replies = shop.sent(conv.from_)[before:]
            outcome.exchange.append((message.text, replies))
            if status != 200:
                outcome.failures.append(f"message {n}: the route answered {status}")
            expect = TurnExpect(says=message.expect.says, never_says=message.expect.never_says)
            outcome.failures.extend(
                f.replace("turn", "message", 1) for f in _turn_failures(expect, replies, [], n)
            )
        events: list[dict[str, Any]] = []
        seen_conversations: list[str] = []
        for n in range(1, len(conv.messages) + 1):
            stored = shop.app.state.texts.message(f"SM{conv.name}-{n}")
            if stored is None or not stored.conversation:
                continue
            if stored.conversation not in seen_conversations:
                seen_conversations.append(stored.conversation)
                call = shop.app.state.store.call(stored.conversation) or {"events": []}
                events.extend(_flat(e) for e in call["events"])
    outcome.events = events
    for wanted in conv.expect.events:
        if not any(event_matches(e, wanted) for e in events):
            outcome.failures.append(f"events: no event matching {wanted}")
    for unwanted in conv.expect.not_events:
        if any(event_matches(e, unwanted) for e in events):
            outcome.failures.append(f"not_events: an event matching {unwanted} happened")
    return outcome


def run_text_conversations(convs: list[TextConversation]) -> list[TextOutcome]:
    """Run every conversation, one after the other, each on its own shop."""
    outcomes = []
    for conv in convs:
        with tempfile.TemporaryDirectory(prefix="texts-") as directory:
            outcomes.append(run_text_conversation(conv, Path(directory)))
    return outcomes


def format_results(outcomes: list[TextOutcome], *, verbose: bool = False) -> str:
    """A table per category, the total, and each failure (its transcript when verbose)."""
    by_category: dict[str, list[TextOutcome]] = {}
    for o in outcomes:
        by_category.setdefault(o.category, []).append(o)
    width = max([len(c) for c in by_category] + [len("category")])
    lines = [f"{'category':<{width}}  passed  xfail  total  rate"]

    def row(name: str, group: list[TextOutcome]) -> str:
        passed = sum(o.passed for o in group)
        xfail = sum(o.xfail is not None for o in group)
        counted = len(group) - xfail
        rate = passed / counted if counted else 1.0
        return f"{name:<{width}}  {passed:>6}  {xfail:>5}  {len(group):>5}  {rate:6.1%}"

    for category, group in sorted(by_category.items()):
        lines.append(row(category, group))
    lines.append(row("all", outcomes))
    for o in outcomes:
        if o.status == "passed" or (o.status == "xfail" and not verbose):
            if o.status == "xfail":
                lines.append(f"\nXFAIL {o.category}/{o.name}: {o.xfail}")
            continue
        lines.append("")
        label = {"failed": "FAILED", "xfail": "XFAIL", "xpass": "XPASS (remove xfail)"}[o.status]
        lines.append(f"{label} {o.category}/{o.name}" + (f": {o.xfail}" if o.xfail else ""))
        lines.extend(f"  - {f}" for f in o.failures)
        if verbose:
            lines.append(o.transcript())
    return "\n".join(lines)


def markdown(outcomes: list[TextOutcome]) -> str:
    """What the customer typed and what came back, per conversation."""
    lines = [
        "# Text conversations",
        "",
        "Generated by `postvoice texts --markdown docs/text_conversations.md` from",
        "`conversations/by_text/`; do not edit by hand, regenerate it. Each conversation ran",
        "against a fresh embedded demo shop through the signed `POST /twilio/sms` route, with",
        "the outbox worker run after each message; replies are what the demo messenger recorded.",
        "The demo shop is seeded on the day of the run, so the dates differ from one run to the",
        "next; signed links are shown without their token, expiry and signature.",
        "",
    ]
    for o in outcomes:
        lines.append(f"## {o.category} / {o.name} ({o.status})")
        lines.append("")
        if o.xfail:
            lines.append(f"Known failure: {o.xfail}")
            lines.append("")
        for typed, replies in o.exchange:
            if typed.startswith(ALERT_MARK):
                order = typed[len(ALERT_MARK) : -1]
                lines.append(f"> **the shop texted first** (an alert for order {order})")
            else:
                lines.append(f"> **typed:** {typed}")
            lines.append("")
            for reply in replies or ["_(no reply)_"]:
                lines.append("- " + _SIGNED.sub(r"\1…", reply).replace("\n", " "))
            lines.append("")
        if o.failures:
            lines.append("Failures:")
            lines.extend(f"- {f}" for f in o.failures)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run(target: Path | None = None) -> list[TextOutcome]:
    """Load and run (the CLI's entry): the outcomes, in file order."""
    return run_text_conversations(load_texts(target or SHIPPED))
