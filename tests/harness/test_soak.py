"""The soak: its fault plan, its fault injectors, its checks, and a short run of it."""

import asyncio
import json

import pytest

from harness.soak import (
    CURRENT_CALL,
    DEFAULT_SCENARIOS,
    FAULTS,
    CallOutcome,
    FaultBook,
    FaultyHelpdesk,
    Injected,
    SoakOptions,
    TagCalls,
    apology_check,
    carrier_check,
    inbound_scenarios,
    malformed_check,
    plan_calls,
    soak,
    tickets_queued_check,
)
from voice.settings import Settings

SID = "CA" + "1" * 32
OTHER = "CA" + "2" * 32


# --- the plan ---------------------------------------------------------------------------------


def test_the_first_six_calls_carry_one_fault_of_each_kind_where_it_can_happen():
    scenarios = inbound_scenarios(DEFAULT_SCENARIOS)
    plans = plan_calls(scenarios, 40, seed=7)
    assert sorted(p.fault for p in plans[:6]) == sorted(FAULTS)
    for plan in plans:
        kinds = {t.kind for t in plan.scenario.turns}
        if plan.fault == "stt_error":
            assert kinds & {"say", "barge_in"}
            assert 1 <= plan.nth <= len(plan.scenario.turns)
        if plan.fault == "helpdesk_down":
            expect = plan.scenario.expect
            assert "ticket.created" in expect.actions or expect.handoff
            assert 1 <= plan.helpdesk_failures <= 3
        if plan.fault == "malformed":
            assert plan.garbage and all(plan.garbage.values())
    again = plan_calls(scenarios, 40, seed=7)
    assert [(p.scenario.name, p.fault) for p in again] == [
        (p.scenario.name, p.fault) for p in plans
    ]
    assert [p.fault for p in plan_calls(scenarios, 40, seed=8)] != [p.fault for p in plans]


# --- the injectors ----------------------------------------------------------------------------


async def test_every_task_a_media_socket_starts_knows_its_call():
    seen = []

    async def app(scope, receive, send):
        await receive()  # connect
        await receive()  # start
        child = asyncio.create_task(asyncio.sleep(0, result=None))
        await child
        seen.append(CURRENT_CALL.get().call_sid)

        async def later():
            seen.append(CURRENT_CALL.get().call_sid)

        await asyncio.create_task(later())

    messages = [
        {"type": "websocket.connect"},
        {
            "type": "websocket.receive",
            "text": json.dumps({"event": "start", "start": {"callSid": SID}}),
        },
    ]

    async def receive():
        return messages.pop(0)

    await TagCalls(app)({"type": "websocket"}, receive, None)
    assert seen == [SID, SID]
    assert CURRENT_CALL.get() is None  # nothing leaks out of the connection


class Desk:
    def __init__(self):
        self.tickets = []

    async def create_ticket(self, subject, body, **kwargs):
        self.tickets.append(kwargs["idempotency_key"])
        return {"id": len(self.tickets)}


async def test_a_helpdesk_outage_refuses_a_planned_calls_tickets_then_lets_them_through():
    scenarios = inbound_scenarios(DEFAULT_SCENARIOS)
    plan = next(p for p in plan_calls(scenarios, 6, seed=1) if p.fault == "helpdesk_down")
    plan.helpdesk_failures = 2
    book = FaultBook()
    book.register(plan, SID)
    desk = Desk()
    helpdesk = FaultyHelpdesk(desk, book)
    key = f"ticket:{SID}:ticket:handoff"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await helpdesk.create_ticket(f"Call {SID}", "body", idempotency_key=key)
    await helpdesk.create_ticket(f"Call {SID}", "body", idempotency_key=key)
    other = f"ticket:{OTHER}:ticket:handoff"
    await helpdesk.create_ticket(f"Call {OTHER}", "body", idempotency_key=other)
    assert desk.tickets == [key, other]
    assert book.helpdesk_received == {key, other}
    assert [i.kind for i in book.injected] == ["helpdesk_down"]


# --- the checks can fail ----------------------------------------------------------------------


def agent(seq, text, **extra):
    return {"seq": seq, "role": "agent", "text": text, **extra}


def test_no_apology_after_a_fault_is_dead_air():
    fault = [Injected("tts_error", SID, seq=3, at=10.0)]
    heard = {SID: [(9.0, 800), (11.0, 800)]}
    silent = {SID: {"turns": [agent(4, "Your order is on its way.")]}}
    assert not apology_check("tts_error", fault, silent, heard).ok
    cut_off = {SID: {"turns": [agent(4, "I'm sorry, something went wrong.", interrupted=1)]}}
    assert not apology_check("tts_error", fault, cut_off, heard).ok
    before = {SID: {"turns": [agent(2, "Sorry, I didn't catch that.")]}}
    assert not apology_check("tts_error", fault, before, heard).ok
    said = {SID: {"turns": [agent(4, "I'm sorry, I'm having a technical problem.")]}}
    assert not apology_check("tts_error", fault, said, {SID: [(9.0, 800)]}).ok  # never heard
    assert apology_check("tts_error", fault, said, heard).ok
    assert apology_check("stt_error", fault, silent, heard).ok  # no STT fault happened


def test_a_carrier_timeout_needs_an_answer_after_the_lookup():
    fault = [Injected("carrier_timeout", SID)]
    looked = {"type": "tracking.looked_up", "at_ms": 5000, "data": {}}
    answered = {SID: {"events": [looked], "turns": [agent(3, "It's on its way.", start_ms=5200)]}}
    assert carrier_check(fault, answered).ok
    quiet = {SID: {"events": [looked], "turns": [agent(2, "One moment.", start_ms=3000)]}}
    assert not carrier_check(fault, quiet).ok
    assert not carrier_check(fault, {SID: {"events": [], "turns": []}}).ok


def test_every_ticket_needs_its_outbox_row_and_every_handoff_its_ticket():
    tickets = [{"id": 7}]
    created = {
        "type": "ticket.created",
        "data": {"outbox": ["outbox:7"], "reference": "PV-ABC", "ticket_id": "PV-ABC"},
    }
    handoff = {"type": "handoff", "data": {"ticket_id": "PV-ABC"}}
    good = {SID: {"events": [created, handoff], "transfer_to": "+18005550199"}}
    assert tickets_queued_check(good, tickets).ok
    assert not tickets_queued_check(good, []).ok  # the row vanished
    bare = {"type": "handoff", "data": {"ticket_id": None}}
    assert not tickets_queued_check({SID: {"events": [bare]}}, tickets).ok
    silent = {SID: {"events": [], "transfer_to": "+18005550199"}}
    assert not tickets_queued_check(silent, tickets).ok


def test_malformed_frames_the_server_read_must_all_be_counted():
    ended = {"type": "call.ended", "data": {"bad_messages": {"invalid_json": 1, "oversized": 1}}}
    rows = {SID: {"events": [ended]}}
    outcome = CallOutcome(0, "wismo", "malformed", SID, garbage_sent=3, garbage_answered=2)
    assert malformed_check([outcome], rows).ok
    outcome.garbage_answered = 3  # the server answered after all three but counted two
    assert not malformed_check([outcome], rows).ok
    outcome.garbage_answered, outcome.unanswered = 2, ["input 2"]
    assert not malformed_check([outcome], rows).ok


# --- a short soak -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def summary():
    options = SoakOptions(calls=12, concurrency=4, seed=3, fake_engines=True)
    return asyncio.run(soak(options, Settings()))


def test_a_short_soak_injects_every_fault_and_loses_nothing(summary):
    assert set(summary.faults_injected) == set(FAULTS)
    assert summary.calls_started == summary.calls_ended == 12
    checks = {c.name: c for c in summary.checks}
    for name in (
        "every call that started ended",
        "no call session still running",
        "every caller's call completed",
        "every ticket decided on is in the outbox",
        "tickets waited out the helpdesk outage (none dead)",
        "every ticket delivered once the helpdesk is back",
        "tickets refused by the helpdesk were retried",
        "no asyncio task outlived the calls",
        "malformed frames were counted and ignored",
        "calls whose line dropped mid-reply ended",
        "every kind of fault was injected",
    ):
        assert checks[name].ok, (name, checks[name].detail)
    after = summary.outbox_after_drain
    assert after["ticket"] == {"delivered": after["ticket"].get("delivered", 0)} != {}
    assert summary.errors_from_injected_faults >= 1


def test_a_short_soak_leaves_no_caller_in_dead_air(summary):
    failed = [(c.name, c.detail) for c in summary.checks if not c.ok]
    assert not failed
    assert summary.passed
