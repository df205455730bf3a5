"""`postvoice soak`: many calls with faults injected, then a check that nothing was lost or left.

The real app runs in this process (on a free loopback port, a freshly seeded demo shop in a
temporary SQLite database, never a real provider) and callers play the inbound fixture
scenarios over real WebSockets, `concurrency` at a time, as fast as the server answers (not in
real time). Each call may carry one fault, chosen at random from `seed`; the first calls carry
one of each kind, so a run of at least six calls injects every kind:

- `stt_error` — speech to text raises on one of the call's utterances.
- `tts_error` — text to speech raises on one of the call's sentences.
- `carrier_timeout` — the carrier's tracking API hangs past the tracking deadline (behind the
  same `CachedTracking` a real carrier gets) and then times out.
- `helpdesk_down` — the helpdesk refuses the call's tickets for one to three delivery attempts
  (the outbox worker must retry); it is back for good before the final drain.
- `socket_drop` — the caller's line is cut (no `stop`, no closing handshake) while the agent's
  reply is streaming.
- `malformed` — garbage between turns: invalid JSON, an unknown event, bad base64, an
  oversized frame, a binary frame.

Faults are injected from outside the app: the speech engines and the tracking and helpdesk
providers are wrapped, and an ASGI wrapper tags each media socket with its CallSid (read from
the `start` message) in a context variable the wrapped engines read. The app itself is
unchanged.

When the calls are over the soak checks, and prints, that every call that started ended, no
session is still running, the caller side of every call completed, every ticket the agent
decided on is in the outbox and survived the helpdesk outage, every ticket is delivered once
the helpdesk is back, no asyncio task outlived the calls, each STT or TTS fault was followed by
a spoken apology, each carrier timeout by a spoken answer, and each malformed frame was counted
and ignored. It exits 1 when a check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from dialog.events import Hints
from harness.fake_twilio import FakeTwilio
from harness.replay import call_scenario, take_turn
from harness.scenario import Scenario, load_scenarios
from harness.target import in_process_server
from integrations.redact import RedactingFilter, redact_card_numbers
from voice.audio import SAMPLE_RATE
from voice.stt import Transcriber, Transcript
from voice.tts import Synthesizer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from integrations.demo import DemoShop
    from integrations.provider_set import Providers
    from integrations.providers import BuildProviders, ProviderConfig
    from voice.settings import Settings

__all__ = [
    "CURRENT_CALL",
    "DEFAULT_SCENARIOS",
    "FAULTS",
    "CallOutcome",
    "CallPlan",
    "CallTag",
    "Check",
    "FaultBook",
    "FaultyHelpdesk",
    "FaultySynthesizer",
    "FaultyTracking",
    "FaultyTranscriber",
    "Injected",
    "SoakOptions",
    "SoakSummary",
    "TagCalls",
    "apology_check",
    "carrier_check",
    "inbound_scenarios",
    "malformed_check",
    "plan_calls",
    "run_soak",
    "soak",
    "tickets_queued_check",
]

log = logging.getLogger(__name__)

FAULTS = ("stt_error", "tts_error", "carrier_timeout", "helpdesk_down", "socket_drop", "malformed")
GARBAGE: dict[str, str | bytes] = {
    "invalid_json": "{oops",
    "unknown_event": '{"event": "warp"}',
    "bad_base64": '{"event": "media", "media": {"payload": "%%%"}}',
    "oversized": "y" * 100_000,
    "binary_frame": b"\x00\xff binary",
}
APOLOGY = re.compile(r"\b(sorry|apologi[sz]e)", re.IGNORECASE)
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
CARRIER_HANG_S = 5.0  # past CachedTracking's longest wait (4 s) with nothing cached
CALL_TIMEOUT_S = 300.0
SETTLE_S = 15.0  # for calls, tasks and deliveries to finish after the last caller hung up
DRAIN_S = 120.0
SHUTDOWN_S = 60.0
GRACEFUL_S = 4.0  # below the in-process server's graceful-shutdown timeout
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIOS = ROOT / "audio_fixtures" / "scenarios"


# --- which call gets which fault --------------------------------------------------------------


@dataclass
class CallPlan:
    """One soak call: its scenario and the fault it carries."""

    index: int
    scenario: Scenario
    fault: str | None = None
    nth: int = 1  # stt_error / tts_error: which transcription or synthesis of the call fails
    helpdesk_failures: int = 0  # helpdesk_down: failed delivery attempts per ticket
    drop_at: int = 0  # socket_drop: cut during the reply to input i (0: the greeting)
    garbage: dict[int, list[str]] = field(default_factory=dict)  # malformed: before turn i
    call_sid: str = ""


def _audio_turns(scenario: Scenario) -> int:
    return sum(1 for t in scenario.turns if t.say is not None or t.barge_in is not None)


def _suits(scenario: Scenario, fault: str | None) -> bool:
    expect = scenario.expect
    if fault == "stt_error":
        return _audio_turns(scenario) > 0
    if fault == "carrier_timeout":
        return "tracking.looked_up" in expect.actions or "order_status" in expect.intents
    if fault == "helpdesk_down":
        return "ticket.created" in expect.actions or expect.handoff is True
    if fault == "malformed":
        return bool(scenario.turns)
    return True


def plan_calls(
    scenarios: Sequence[Scenario], calls: int, seed: int, fault_rate: float = 0.5
) -> list[CallPlan]:
    """A fault plan for `calls` calls: the first carry one of each kind (in an order drawn from
    `seed`), the rest a random kind with probability `fault_rate`. A fault goes to a scenario
    where it can happen (an STT fault to a call with speech, a helpdesk outage to one that
    makes a ticket…), when the scenarios have one."""
    if not scenarios:
        raise ValueError("no scenarios to plan calls from")
    rng = random.Random(seed)
    forced = list(FAULTS)
    rng.shuffle(forced)
    plans = []
    for index in range(calls):
        if index < len(forced):
            fault: str | None = forced[index]
        else:
            fault = rng.choice(FAULTS) if rng.random() < fault_rate else None
        scenario = rng.choice([s for s in scenarios if _suits(s, fault)] or list(scenarios))
        plan = CallPlan(index, scenario, fault)
        turns = len(scenario.turns)
        if fault == "stt_error":
            plan.nth = rng.randint(1, max(1, _audio_turns(scenario)))
        elif fault == "tts_error":
            plan.nth = rng.randint(1, 3)
        elif fault == "helpdesk_down":
            plan.helpdesk_failures = rng.randint(1, 3)
        elif fault == "socket_drop":
            plan.drop_at = rng.randint(0, turns)
        elif fault == "malformed":
            for at in sorted(rng.sample(range(turns), k=min(turns, 2))):
                plan.garbage[at] = rng.sample(sorted(GARBAGE), k=rng.randint(2, len(GARBAGE)))
        plans.append(plan)
    return plans


# --- injecting faults from outside the app ----------------------------------------------------


class CallTag:
    """The CallSid of the media socket the current task serves (None until its `start`)."""

    call_sid: str | None = None


CURRENT_CALL: contextvars.ContextVar[CallTag | None] = contextvars.ContextVar(
    "postvoice_soak_call", default=None
)


class TagCalls:
    """ASGI wrapper: every task a media socket starts sees its `CallTag`, filled in from the
    `start` message. Tasks copy the context they are created in, so the session's brain and
    speaker tasks, and the work they spawn, all share the socket's tag."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Serve one connection; websocket connections get a tag."""
        if scope.get("type") != "websocket":
            await self.app(scope, receive, send)
            return
        tag = CallTag()
        token = CURRENT_CALL.set(tag)

        async def tagged_receive() -> dict:
            message = await receive()
            text = message.get("text")
            if tag.call_sid is None and isinstance(text, str) and '"start"' in text[:200]:
                with contextlib.suppress(ValueError, AttributeError, TypeError):
                    tag.call_sid = json.loads(text)["start"]["callSid"]
            return message

        try:
            await self.app(scope, tagged_receive, send)
        finally:
            CURRENT_CALL.reset(token)


@dataclass
class Injected:
    """One fault as it happened."""

    kind: str
    call_sid: str
    seq: int = 0  # the call's last turn when it happened: what the agent says next is later
    at: float = 0.0  # time.monotonic() (the callers run in this process, on the same clock)


class FaultBook:
    """The soak's plan, and what was injected where."""

    def __init__(self) -> None:
        self.plans: dict[str, CallPlan] = {}
        self.injected: list[Injected] = []
        self.store: Any = None
        self.shop: Any = None
        self.helpdesk_back = False
        self.helpdesk_failed: Counter[str] = Counter()  # ticket key -> refused attempts
        self.helpdesk_received: set[str] = set()  # ticket keys the helpdesk has
        self._counts: Counter[tuple[str, str]] = Counter()
        self._scripts: dict[str, list[str]] = {}
        self._registered = asyncio.Event()

    def register(self, plan: CallPlan, call_sid: str) -> None:
        """The call of `plan` has this CallSid."""
        plan.call_sid = call_sid
        self.plans[call_sid] = plan
        self._registered.set()

    async def current(self) -> CallPlan | None:
        """The plan of the call whose task is running (waiting briefly for its caller to have
        registered it: the server may hear `start` first)."""
        tag = CURRENT_CALL.get()
        if tag is None or tag.call_sid is None:
            return None
        deadline = time.monotonic() + 2.0
        while tag.call_sid not in self.plans and time.monotonic() < deadline:
            self._registered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._registered.wait(), timeout=0.05)
        return self.plans.get(tag.call_sid)

    def count(self, plan: CallPlan, what: str) -> int:
        """How many times `what` has now happened on the call (this one included)."""
        self._counts[(plan.call_sid, what)] += 1
        return self._counts[(plan.call_sid, what)]

    async def inject(self, kind: str, call_sid: str) -> None:
        """Note a fault, with the call's last turn at that moment."""
        seq = 0
        if self.store is not None:
            record = await asyncio.to_thread(self.store.call, call_sid)
            seq = max([t["seq"] for t in (record or {}).get("turns", [])] + [0])
        self.injected.append(Injected(kind, call_sid, seq, time.monotonic()))
        log.info("soak: injected %s into %s", kind, call_sid)

    def push_script(self, call_sid: str, text: str) -> None:
        """What the caller is about to say (for the scripted transcriber)."""
        self._scripts.setdefault(call_sid, []).append(text)

    def pop_script(self, call_sid: str | None) -> str:
        """What the caller said next, or "" when nothing was scripted."""
        queue = self._scripts.get(call_sid or "")
        return queue.pop(0) if queue else ""


class FaultyTranscriber(Transcriber):
    """Speech to text that raises on the planned utterance of a call."""

    def __init__(self, inner: Transcriber, book: FaultBook) -> None:
        self.inner = inner
        self.book = book

    def warm(self) -> None:
        """Warm the real engine."""
        self.inner.warm()

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """Transcribe, unless this is the utterance the plan says fails."""
        plan = await self.book.current()
        if plan is not None and plan.fault == "stt_error" and self._fails(plan):
            self.book.pop_script(plan.call_sid)  # the scripted words were lost with it
            await self.book.inject("stt_error", plan.call_sid)
            raise RuntimeError("speech to text failed (injected by the soak)")
        return await self.inner.transcribe(pcm, hints)

    def _fails(self, plan: CallPlan) -> bool:
        return self.book.count(plan, "stt") == plan.nth


class FaultySynthesizer(Synthesizer):
    """Text to speech that raises on the planned sentence of a call."""

    def __init__(self, inner: Synthesizer, book: FaultBook) -> None:
        self.inner = inner
        self.book = book

    def warm(self) -> None:
        """Warm the real engine."""
        self.inner.warm()

    async def synthesize(self, text: str) -> np.ndarray:
        """Speak, unless this is the sentence the plan says fails."""
        plan = await self.book.current()
        if plan is not None and plan.fault == "tts_error" and self._fails(plan):
            await self.book.inject("tts_error", plan.call_sid)
            raise RuntimeError("text to speech failed (injected by the soak)")
        return await self.inner.synthesize(text)

    def _fails(self, plan: CallPlan) -> bool:
        return self.book.count(plan, "tts") == plan.nth


class FaultyTracking:
    """A carrier API that, for planned calls, hangs past every deadline and then times out."""

    def __init__(self, inner: Any, book: FaultBook) -> None:
        self.inner = inner
        self.book = book

    async def track(self, carrier: str, tracking_number: str) -> Any:
        """The carrier's answer, or a hang then a timeout."""
        plan = await self.book.current()
        if plan is not None and plan.fault == "carrier_timeout":
            await self.book.inject("carrier_timeout", plan.call_sid)
            await asyncio.sleep(CARRIER_HANG_S)
            raise TimeoutError("the carrier did not answer (injected by the soak)")
        return await self.inner.track(carrier, tracking_number)


class OwnLookup:
    """In front of the cache: a call planned for a carrier timeout does not join a refresh of
    the same shipment that another call started (its answer would come from that call's
    carrier), so the faulty carrier behind the cache sees the planned call's own lookup."""

    def __init__(self, cached: Any, book: FaultBook) -> None:
        self.cached = cached
        self.book = book

    async def track(self, carrier: str, tracking_number: str) -> Any:
        """The cache's answer, once no other call's refresh of this shipment is running."""
        plan = await self.book.current()
        if plan is not None and plan.fault == "carrier_timeout":
            while self.cached.busy(carrier, tracking_number):
                await asyncio.sleep(0.02)
        return await self.cached.track(carrier, tracking_number)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cached, name)


class FaultyHelpdesk:
    """A helpdesk that refuses a planned call's tickets for a few attempts, while it is down."""

    def __init__(self, inner: Any, book: FaultBook) -> None:
        self.inner = inner
        self.book = book

    async def create_ticket(self, subject: str, body: str, **kwargs: Any) -> Any:
        """Open the ticket, unless the helpdesk is down for it."""
        key = str(kwargs.get("idempotency_key", ""))
        found = CALL_SID.search(key) or CALL_SID.search(subject)
        plan = self.book.plans.get(found.group(0)) if found else None
        if (
            plan is not None
            and plan.fault == "helpdesk_down"
            and not self.book.helpdesk_back
            and self.book.helpdesk_failed[key] < plan.helpdesk_failures
        ):
            self.book.helpdesk_failed[key] += 1
            if self.book.helpdesk_failed[key] == 1:
                await self.book.inject("helpdesk_down", plan.call_sid)
            raise ConnectionError("the helpdesk is unreachable (injected by the soak)")
        ticket = await self.inner.create_ticket(subject, body, **kwargs)
        self.book.helpdesk_received.add(key)
        return ticket

    async def attach(self, ticket_id: str, files: list[Any], **kwargs: Any) -> list[str]:
        """Add files to a ticket (the soak plans no fault for these)."""
        return await self.inner.attach(ticket_id, files, **kwargs)


# --- fast stand-ins for the speech engines (--fake-engines) -----------------------------------


class ScriptedTranscriber(Transcriber):
    """Hears what the soak's caller said it would say (the clip's transcript), instantly.

    One script per utterance: a transcription started at a pause and the turn's own are of
    the same utterance (the same opening audio) and hear the same words, however often the
    turn taker asks."""

    def __init__(self, book: FaultBook) -> None:
        self.book = book
        self._last: dict[str, tuple[bytes, str]] = {}  # call → (opening audio, its words)

    async def transcribe(self, pcm: np.ndarray, hints: Hints | None = None) -> Transcript:
        """The scripted words of the utterance this audio opens."""
        tag = CURRENT_CALL.get()
        sid = tag.call_sid if tag else ""
        opening = pcm[:800].tobytes()
        last = self._last.get(sid)
        if last is not None and last[0] == opening:
            text = last[1]
        else:
            text = self.book.pop_script(sid or None)
            self._last[sid] = (opening, text)
        audio_ms = len(pcm) * 1000 // SAMPLE_RATE
        return Transcript(text, 0.9 if text else 0.0, audio_ms, 1)


class ToneSynthesizer(Synthesizer):
    """A quiet tone, 30 ms per character, instantly."""

    async def synthesize(self, text: str) -> np.ndarray:
        """A tone as long as the sentence would take to say."""
        n = SAMPLE_RATE * 30 * len(text) // 1000
        t = np.arange(n) / SAMPLE_RATE
        return (np.sin(2 * np.pi * 300 * t) * 3000).astype(np.int16)


def clip_transcript(clip: Path) -> str:
    """What a fixture clip says, from `transcripts.tsv` beside the clips' folder (else its
    name, in words)."""
    for tsv in (clip.parent / "transcripts.tsv", clip.parent.parent / "transcripts.tsv"):
        if tsv.exists():
            for line in tsv.read_text().splitlines()[1:]:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[0] == clip.stem:
                    return parts[2]
    return clip.stem.replace("_", " ")


# --- one call ---------------------------------------------------------------------------------


@dataclass
class CallOutcome:
    """What the caller side saw of one soak call."""

    index: int
    scenario: str
    fault: str | None
    call_sid: str = ""
    garbage_sent: int = 0
    garbage_answered: int = 0  # malformed frames the agent answered a turn after
    dropped: bool = False
    dropped_while_streaming: bool = False
    unanswered: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # agent audio received


def _driver(plan: CallPlan, book: FaultBook, outcome: CallOutcome, scripted: bool, rng):
    """Turn taking for a soak call: the scenario's turns, with the plan's fault."""

    async def drive(call: FakeTwilio, scenario: Scenario) -> None:
        book.register(plan, call.params.call_sid)  # first, before the server needs the plan
        outcome.call_sid = call.params.call_sid
        turns = scenario.turns
        answer_to, since, batch = 0, 0, 0
        for i in range(len(turns) + 1):
            turn = turns[i] if i < len(turns) else None
            if plan.fault == "socket_drop" and plan.drop_at == i:
                outcome.dropped = True
                outcome.dropped_while_streaming = await _drop_mid_reply(call, since, rng)
                return
            if (turn is None or turn.barge_in is None) and answer_to >= 0:
                if await call.wait_reply(answer_to):
                    outcome.garbage_answered += batch  # the server read past them
                elif not call.closed.is_set():
                    outcome.unanswered.append(f"input {i}")
            batch = 0
            if turn is None or call.closed.is_set():
                return
            if turn.hangup:
                await call.hangup()
                return
            batch = len(plan.garbage.get(i, []))
            for kind in plan.garbage.get(i, []):
                await call.send_raw(GARBAGE[kind])
            outcome.garbage_sent += batch
            clip = turn.say or turn.barge_in
            if scripted and clip is not None:
                book.push_script(call.params.call_sid, clip_transcript(clip))
            since = len(call.state.arrivals)
            answer_to = await take_turn(call, turn)

    return drive


async def _drop_mid_reply(call: FakeTwilio, since: int, rng: random.Random) -> bool:
    """Cut the line once the agent's next reply is arriving; True if it was."""
    deadline = time.monotonic() + 45
    streaming = False
    while time.monotonic() < deadline and not call.closed.is_set():
        if any(samples > 0 for _at, samples in call.state.arrivals[since:]):
            streaming = True
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(rng.uniform(0.0, 0.1))
    call.drop()
    return streaming


async def _one_call(
    plan: CallPlan, book: FaultBook, target: Any, scripted: bool, rng: random.Random
) -> CallOutcome:
    outcome = CallOutcome(plan.index, plan.scenario.name, plan.fault)
    try:
        result = await asyncio.wait_for(
            call_scenario(plan.scenario, target, drive=_driver(plan, book, outcome, scripted, rng)),
            CALL_TIMEOUT_S,
        )
        outcome.failures = list(result.state.failures)
        outcome.arrivals = list(result.state.arrivals)
    except TimeoutError:
        outcome.error = f"the call did not finish in {CALL_TIMEOUT_S:.0f} s"
    except Exception as exc:  # a call that breaks is a finding, not the end of the soak
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


# --- the run ----------------------------------------------------------------------------------


@dataclass
class SoakOptions:
    """What `postvoice soak` was asked to do."""

    calls: int = 200
    concurrency: int = 4
    seed: int = 1
    fake_engines: bool = False
    fault_rate: float = 0.5
    scenarios_dir: Path | None = None
    json_path: Path | None = None


@dataclass
class Check:
    """One thing the soak verifies."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class SoakSummary:
    """Everything the soak found."""

    calls: int = 0
    concurrency: int = 0
    seed: int = 0
    engines: str = ""
    calls_started: int = 0
    calls_ended: int = 0
    faults_planned: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)
    outbox_before_drain: dict[str, dict[str, int]] = field(default_factory=dict)
    outbox_after_drain: dict[str, dict[str, int]] = field(default_factory=dict)
    tasks_baseline: int = 0
    leaked_tasks: list[str] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    errors_logged: int = 0
    errors_from_injected_faults: int = 0
    other_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = asdict(self)
        data["passed"] = self.passed
        return data


class _ErrorCounter(logging.Handler):
    """Counts ERROR records, telling those caused by injected faults from the others."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.addFilter(RedactingFilter())  # what it keeps is printed and written out
        self.injected = 0
        self.other: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record."""
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = redact_card_numbers(str(record.exc_info[1]))
            text += f" ({type(record.exc_info[1]).__name__}: {error})"
        if "injected by the soak" in text or _caused_by_injection(record):
            self.injected += 1
        else:
            self.other.append(text[:300])


def _caused_by_injection(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    seen = 0
    while exc is not None and seen < 10:
        if "injected by the soak" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def inbound_scenarios(directory: Path) -> list[Scenario]:
    """The inbound scenarios of a directory (outbound calls need a callee's pick-up first;
    scenarios about timing, played at the speed of speech, would not be "as fast as the server
    answers")."""
    return [
        s
        for s in load_scenarios(directory)
        if s.direction == "inbound" and s.turns and not s.realtime
    ]


def _engines(book: FaultBook, fake: bool, settings: Settings) -> Any:
    from voice.server import Engines, default_engines

    if fake:
        inner = Engines(transcriber=ScriptedTranscriber(book), synthesizer=ToneSynthesizer())
    else:
        inner = default_engines(settings)
    return Engines(
        transcriber=FaultyTranscriber(inner.transcriber, book),
        synthesizer=FaultySynthesizer(inner.synthesizer, book),
    )


def _faulty_providers(book: FaultBook) -> BuildProviders:
    """The app's providers, its tracking and helpdesk wrapped in fault injectors."""
    from integrations.providers import build_providers
    from integrations.tracking_cache import CachedTracking, SqlTrackingCache

    def build(config: ProviderConfig, engine: Engine, demo: DemoShop) -> Providers:
        chosen = build_providers(config, engine, demo)
        cache = SqlTrackingCache(engine)
        cache.create_all()
        # A real carrier always sits behind the cache and its deadline; so does the faulty one.
        tracking = OwnLookup(
            CachedTracking(
                FaultyTracking(chosen.tracking, book), cache, deadline_s=config.tracking_deadline_s
            ),
            book,
        )
        return replace(chosen, tracking=tracking, helpdesk=FaultyHelpdesk(chosen.helpdesk, book))

    return build


def _install(book: FaultBook):
    """Tell the book which shop runs, and tag the app's media sockets."""

    def wrap(app: Any) -> Any:
        shop = app.state.runtime
        book.shop, book.store = shop, shop.store
        return TagCalls(app)

    return wrap


# Provider settings cleared so a soak never reaches a real shop, carrier, helpdesk or phone.
_NO_PROVIDERS = {
    "shopify_shop_domain": "",
    "shopify_access_token": None,
    "stripe_api_key": None,
    "twilio_account_sid": None,
    "zendesk_subdomain": "",
    "carrier_provider": "",
    "label_provider": "",
}


async def soak(
    options: SoakOptions, settings: Settings, progress: Callable[[str], None] | None = None
) -> SoakSummary:
    """Run the soak and check what it left behind; `progress` hears how far it got. The real
    speech engines are configured from `settings`."""
    scenarios = inbound_scenarios(options.scenarios_dir or DEFAULT_SCENARIOS)
    plans = plan_calls(scenarios, options.calls, options.seed, options.fault_rate)
    book = FaultBook()
    counter = _ErrorCounter()
    logging.getLogger().addHandler(counter)
    summary = SoakSummary(
        calls=options.calls,
        concurrency=options.concurrency,
        seed=options.seed,
        engines="fake" if options.fake_engines else "real",
        faults_planned=dict(Counter(p.fault for p in plans if p.fault)),
    )
    capacity = options.concurrency + 2
    overrides = {
        **_NO_PROVIDERS,
        "outbox_backoff_cap_s": 1.0,  # retries within the soak, not minutes later
        "max_calls": capacity,
        "max_calls_per_caller": capacity,
    }
    started = time.monotonic()
    say = progress or (lambda _message: None)
    try:
        with tempfile.TemporaryDirectory(prefix="postvoice-soak-") as tmp:
            server = contextlib.AsyncExitStack()
            target = await server.enter_async_context(
                in_process_server(
                    f"sqlite:///{Path(tmp) / 'soak.db'}",
                    _engines(book, options.fake_engines, settings),
                    overrides=overrides,
                    wrap=_install(book),
                    make_providers=_faulty_providers(book),
                )
            )
            try:
                baseline = await _task_baseline()
                summary.tasks_baseline = sum(baseline.values())
                process = psutil.Process()
                summary.rss_start_mb = round(process.memory_info().rss / 1e6, 1)
                outcomes = await _run_calls(plans, book, target, options, progress)
                say("checking what the calls left behind")
                await _settle(book, baseline)
                await _check(summary, plans, outcomes, book, baseline, say)
                summary.rss_end_mb = round(process.memory_info().rss / 1e6, 1)
            finally:
                say("stopping the server")
                summary.checks.append(await _shut_down(server))
    finally:
        logging.getLogger().removeHandler(counter)
    summary.errors_from_injected_faults = counter.injected
    summary.other_errors = sorted(set(counter.other))[:20]
    summary.errors_logged = counter.injected + len(counter.other)
    summary.wall_s = round(time.monotonic() - started, 1)
    return summary


async def _run_calls(
    plans: list[CallPlan],
    book: FaultBook,
    target: Any,
    options: SoakOptions,
    progress: Callable[[str], None] | None,
) -> list[CallOutcome]:
    queue = list(plans)
    outcomes: list[CallOutcome] = []
    rng = random.Random(options.seed + 1)

    async def caller() -> None:
        while queue:
            plan = queue.pop(0)
            outcomes.append(await _one_call(plan, book, target, options.fake_engines, rng))
            if progress is not None and (len(outcomes) % 20 == 0 or len(outcomes) == len(plans)):
                progress(f"{len(outcomes)} of {len(plans)} calls done")

    await asyncio.gather(*(caller() for _ in range(min(options.concurrency, len(plans)))))
    return sorted(outcomes, key=lambda o: o.index)


def _call_rows(book: FaultBook) -> dict[str, dict[str, Any]]:
    return {sid: book.store.call(sid) or {} for sid in book.plans}


async def _shut_down(server: contextlib.AsyncExitStack) -> Check:
    """Stop the server; it must not wait on connections or tasks the calls left open."""
    began = time.monotonic()
    try:
        await asyncio.wait_for(server.aclose(), SHUTDOWN_S)
    except TimeoutError:
        return Check(
            "the server stopped cleanly", False, f"still stopping after {SHUTDOWN_S:.0f} s"
        )
    took = time.monotonic() - began
    # Uvicorn cancels connections still open after its graceful timeout (5 s).
    ok = took < GRACEFUL_S
    detail = f"{took:.1f} s" + ("" if ok else ": connections were still open and were cancelled")
    return Check("the server stopped cleanly", ok, detail)


def _role(task: asyncio.Task) -> str:
    """What a task runs (its coroutine), the same for every task doing the same job."""
    coro = task.get_coro()
    return getattr(coro, "__qualname__", type(coro).__name__)


def _tasks_by_role() -> Counter[str]:
    current = asyncio.current_task()
    return Counter(_role(t) for t in asyncio.all_tasks() if t is not current and not t.done())


async def _task_baseline() -> Counter[str]:
    """The tasks of an idle server, by role. Long-lived services come and go (the outbox
    worker's short waits), so the baseline is the most of each role seen over a second."""
    seen: Counter[str] = Counter()
    for _ in range(10):
        seen |= _tasks_by_role()
        await asyncio.sleep(0.1)
    return seen


def _extra_tasks(baseline: Counter[str]) -> Counter[str]:
    """Tasks beyond the baseline, by role."""
    return _tasks_by_role() - baseline


async def _settle(book: FaultBook, baseline: Counter[str]) -> None:
    """Give the server a moment to end calls and finish what they started."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(_call_rows, book)
        ended = all(r.get("ended_at") for r in rows.values() if r.get("started_at"))
        if ended and not _extra_tasks(baseline):
            return
        await asyncio.sleep(0.2)


async def _check(
    summary: SoakSummary,
    plans: list[CallPlan],
    outcomes: list[CallOutcome],
    book: FaultBook,
    baseline: Counter[str],
    say: Callable[[str], None],
) -> None:
    checks = summary.checks
    rows = await asyncio.to_thread(_call_rows, book)
    injected = Counter(i.kind for i in book.injected)
    injected["socket_drop"] += sum(1 for o in outcomes if o.dropped)
    injected["malformed"] += sum(1 for o in outcomes if o.garbage_sent)
    summary.faults_injected = {k: n for k, n in injected.items() if n}

    # Calls: every call that started ended; no session is still running; callers completed.
    started = [sid for sid, r in rows.items() if r.get("started_at")]
    stuck = [sid for sid in started if not rows[sid].get("ended_at")]
    summary.calls_started, summary.calls_ended = len(started), len(started) - len(stuck)
    checks.append(Check("every call that started ended", not stuck, _some(stuck)))
    current = asyncio.current_task()
    sessions = sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        # the session's own tasks are named after the call: brain-CA…, speaker-CA…, timer-CA…
        if t is not current and not t.done() and CALL_SID.search(t.get_name())
    )
    checks.append(Check("no call session still running", not sessions, _some(sessions)))
    broken = [f"#{o.index} {o.scenario}: {o.error}" for o in outcomes if o.error]
    never = [o for o in outcomes if not o.error and not o.call_sid]
    broken += [f"#{o.index} {o.scenario}: never connected" for o in never]
    checks.append(Check("every caller's call completed", not broken, _some(broken)))

    # Tickets: decided → queued → kept through the outage → delivered once it is back.
    tickets_before = await asyncio.to_thread(_ticket_rows, book)
    checks.append(tickets_queued_check(rows, tickets_before))
    summary.outbox_before_drain = await asyncio.to_thread(_outbox_counts, book)
    kept = [
        f"{r['idempotency_key']}: {r['status']}"
        for r in tickets_before
        # dead, or tried and put back with no failure recorded: neither may happen to a ticket
        if r["status"] == "dead"
        or (r["status"] == "pending" and r["attempts"] and not r["last_error"])
    ]
    checks.append(
        Check("tickets waited out the helpdesk outage (none dead)", not kept, _some(kept))
    )
    book.helpdesk_back = True
    say("the helpdesk is back: draining the outbox")
    drained = ""
    worker = getattr(book.shop, "worker", None)
    try:
        if worker is None:
            raise RuntimeError("the server runs no outbox worker")
        await worker.worker.drain(timeout_s=DRAIN_S)
    except Exception as exc:
        drained = f"the outbox did not drain: {type(exc).__name__}: {exc}"
    tickets_after = await asyncio.to_thread(_ticket_rows, book)
    summary.outbox_after_drain = await asyncio.to_thread(_outbox_counts, book)
    undelivered = [
        f"{r['idempotency_key']}: {r['status']}"
        for r in tickets_after
        if r["status"] != "delivered" or r["idempotency_key"] not in book.helpdesk_received
    ]
    if drained:
        undelivered.insert(0, drained)
    checks.append(
        Check(
            "every ticket delivered once the helpdesk is back",
            not undelivered,
            _some(undelivered) or f"{len(tickets_after)} ticket(s)",
        )
    )
    retried = [
        r["idempotency_key"]
        for r in tickets_after
        if book.helpdesk_failed[r["idempotency_key"]]
        and r["attempts"] <= book.helpdesk_failed[r["idempotency_key"]]
    ]
    checks.append(
        Check("tickets refused by the helpdesk were retried", not retried, _some(retried))
    )

    # Tasks: nothing the calls started outlives them.
    await _settle(book, baseline)
    leaked = [f"{n} × {role}" for role, n in sorted(_extra_tasks(baseline).items())]
    summary.leaked_tasks = leaked
    checks.append(Check("no asyncio task outlived the calls", not leaked, _some(leaked)))

    heard = {o.call_sid: o.arrivals for o in outcomes}
    checks.append(apology_check("stt_error", book.injected, rows, heard))
    checks.append(apology_check("tts_error", book.injected, rows, heard))
    checks.append(carrier_check(book.injected, rows))
    checks.append(malformed_check(outcomes, rows))

    # Dropped lines end their calls.
    dropped = [o for o in outcomes if o.dropped]
    open_drops = [o.call_sid for o in dropped if not rows.get(o.call_sid, {}).get("ended_at")]
    checks.append(
        Check(
            "calls whose line dropped mid-reply ended",
            not open_drops,
            _some(open_drops)
            or f"{sum(o.dropped_while_streaming for o in dropped)} of {len(dropped)} "
            "dropped while agent audio was arriving",
        )
    )

    # The soak itself: every kind of fault it promised happened at least once.
    if summary.calls >= len(FAULTS):
        missing = [k for k in FAULTS if not summary.faults_injected.get(k)]
        checks.append(Check("every kind of fault was injected", not missing, _some(missing)))


def apology_check(
    kind: str,
    injected: Sequence[Injected],
    rows: dict[str, dict[str, Any]],
    heard: dict[str, list[tuple[float, int]]],
) -> Check:
    """No dead air after an STT or TTS fault: a later agent turn says sorry and was not cut
    off, and agent audio reached the caller after the fault."""
    silent = []
    for fault in (i for i in injected if i.kind == kind):
        turns = rows.get(fault.call_sid, {}).get("turns", [])
        apologised = any(
            t["role"] == "agent"
            and t["seq"] > fault.seq
            and not t.get("interrupted")
            and APOLOGY.search(t["text"] or "")
            for t in turns
        )
        audio_after = any(
            samples > 0 and at > fault.at for at, samples in heard.get(fault.call_sid, [])
        )
        if not (apologised and audio_after):
            why = _said_after(turns, fault.seq)
            if apologised:
                why += "; no audio reached the caller after the fault"
            silent.append(f"{fault.call_sid} ({why})")
    label = "speech to text" if kind == "stt_error" else "text to speech"
    return Check(f"an apology was spoken after each {label} fault", not silent, _some(silent))


def carrier_check(injected: Sequence[Injected], rows: dict[str, dict[str, Any]]) -> Check:
    """After a carrier timeout the lookup gave up (`tracking.looked_up`) and the agent spoke
    after it."""
    unanswered = []
    for sid in sorted({i.call_sid for i in injected if i.kind == "carrier_timeout"}):
        record = rows.get(sid, {})
        looked = [e for e in record.get("events", []) if e["type"] == "tracking.looked_up"]
        after = looked[0]["at_ms"] if looked else None
        spoken = after is not None and any(
            t["role"] == "agent" and t.get("start_ms") is not None and t["start_ms"] >= after
            for t in record.get("turns", [])
        )
        if not spoken:
            unanswered.append(sid + ("" if looked else " (the lookup never ended)"))
    return Check("the agent answered after each carrier timeout", not unanswered, _some(unanswered))


def malformed_check(outcomes: Sequence[CallOutcome], rows: dict[str, dict[str, Any]]) -> Check:
    """Every malformed frame the server read was counted on `call.ended`, and the call went on
    (every turn after it was answered). Frames followed by an answered turn were certainly
    read; frames sent as the agent was hanging up may not have been."""
    garbled = []
    for o in outcomes:
        if not o.garbage_sent or not o.call_sid:
            continue
        events = rows.get(o.call_sid, {}).get("events", [])
        ended = [e for e in events if e["type"] == "call.ended"]
        counted = sum((ended[0]["data"].get("bad_messages") or {}).values()) if ended else 0
        if not o.garbage_answered <= counted <= o.garbage_sent or o.unanswered:
            garbled.append(
                f"{o.call_sid}: sent {o.garbage_sent} ({o.garbage_answered} before a reply), "
                f"counted {counted}" + (f", unanswered {o.unanswered}" if o.unanswered else "")
            )
    return Check("malformed frames were counted and ignored", not garbled, _some(garbled))


def _said_after(turns: list[dict[str, Any]], seq: int) -> str:
    said = [
        f"{t['text']!r}{' (cut off)' if t.get('interrupted') else ''}"
        for t in turns
        if t["role"] == "agent" and t["seq"] > seq
    ]
    return "then: " + "; ".join(said[:3]) if said else "nothing said after it"


def _ticket_rows(book: FaultBook) -> list[dict[str, Any]]:
    rows = []
    for sid in book.plans:
        for entry in book.store.outbox.items(kind="ticket", call_sid=sid, limit=None):
            rows.append(entry.as_dict())
    return rows


def _outbox_counts(book: FaultBook) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for sid in book.plans:
        for entry in book.store.outbox.items(call_sid=sid, limit=None):
            counts.setdefault(entry.kind, Counter())[entry.status] += 1
    return {kind: dict(c) for kind, c in sorted(counts.items())}


def tickets_queued_check(rows: dict[str, dict[str, Any]], tickets: list[dict[str, Any]]) -> Check:
    """Every `ticket.created` names an outbox row; every handoff and transfer has its ticket."""
    by_ref = {f"outbox:{t['id']}" for t in tickets}
    problems = []
    for sid, record in rows.items():
        events = record.get("events", [])
        created = [e for e in events if e["type"] == "ticket.created"]
        names = set()
        for e in created:
            refs = e["data"].get("outbox") or []
            if not refs or any(ref not in by_ref for ref in refs):
                problems.append(f"{sid}: ticket.created without its outbox row")
            names.update(
                str(e["data"].get(k)) for k in ("ticket_id", "reference") if e["data"].get(k)
            )
        handoffs = [e for e in events if e["type"] == "handoff"]
        for e in handoffs:
            if str(e["data"].get("ticket_id")) not in names:
                problems.append(f"{sid}: handoff without a ticket")
        if record.get("transfer_to") and not handoffs:
            problems.append(f"{sid}: transferred with no handoff recorded")
    return Check(
        "every ticket decided on is in the outbox",
        not problems,
        _some(problems) or f"{len(tickets)} ticket(s) queued",
    )


def _some(items: Sequence[str], n: int = 5) -> str:
    if not items:
        return ""
    shown = "; ".join(str(i) for i in items[:n])
    return shown + (f" (and {len(items) - n} more)" if len(items) > n else "")


# --- the command ------------------------------------------------------------------------------


def run_soak(options: SoakOptions, settings: Settings) -> int:
    """Run the soak, print its summary (and write it as JSON); 0 when every check passed."""
    from rich.console import Console

    console = Console()
    try:
        summary = asyncio.run(soak(options, settings, progress=console.print))
    except Exception as exc:
        console.print(f"[red]the soak could not run:[/red] {type(exc).__name__}: {exc}")
        return 2
    print_summary(console, summary)
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(summary.as_dict(), indent=2, default=str))
    return 0 if summary.passed else 1


def print_summary(console: Any, summary: SoakSummary) -> None:
    """The soak's findings, a table of checks last."""
    from rich.table import Table

    console.print(
        f"soak: {summary.calls} calls, {summary.concurrency} at a time, seed {summary.seed}, "
        f"{summary.engines} engines, {summary.wall_s} s"
    )
    console.print(f"calls started {summary.calls_started}, ended {summary.calls_ended}")
    faults = Table(title="faults")
    for column in ("kind", "planned", "injected"):
        faults.add_column(column)
    for kind in FAULTS:
        faults.add_row(
            kind,
            str(summary.faults_planned.get(kind, 0)),
            str(summary.faults_injected.get(kind, 0)),
        )
    console.print(faults)
    console.print(f"outbox before the helpdesk is back: {summary.outbox_before_drain}")
    console.print(f"outbox after draining: {summary.outbox_after_drain}")
    console.print(
        f"RSS {summary.rss_start_mb} MB at the start, {summary.rss_end_mb} MB at the end; "
        f"tasks at the start {summary.tasks_baseline}, left over {len(summary.leaked_tasks)}"
    )
    console.print(
        f"errors logged: {summary.errors_logged} "
        f"({summary.errors_from_injected_faults} from injected faults)"
    )
    for text in summary.other_errors[:5]:
        console.print(f"  [yellow]{text}[/yellow]")
    checks = Table(title="checks")
    for column in ("check", "result", "detail"):
        checks.add_column(column)
    for check in summary.checks:
        checks.add_row(
            check.name, "[green]ok[/green]" if check.ok else "[red]FAIL[/red]", check.detail
        )
    console.print(checks)
    passed = sum(c.ok for c in summary.checks)
    console.print(f"{passed} of {len(summary.checks)} checks passed")
