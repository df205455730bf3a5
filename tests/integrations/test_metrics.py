"""The service's figures from the call record, on SQLite and on PostgreSQL.

A small known set of calls, written through the Store API the way the call machinery writes
them, and the figures a merchant would read off the metrics page and Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from integrations import metrics, metrics_prometheus, metrics_totals
from integrations.delivery import OutboxLeases
from integrations.outbox import OutboxItem
from integrations.store import Store, make_engine

NOW = datetime.now(UTC)  # events are stamped with the real clock; windows count back from it
STARTED = NOW - timedelta(hours=1)


@pytest.fixture
def store(db_url) -> Iterator[Store]:
    engine = make_engine(db_url)
    store = Store(engine)
    store.migrate()
    yield store
    engine.dispose()


def call(
    store: Store,
    sid: str,
    direction: str = "inbound",
    *,
    started: bool = True,
    ended: bool = True,
    created_at: datetime | None = None,
    **fields,
) -> None:
    store.upsert_call(sid, from_number="+14155550101", to_number="+18005550100",
                      direction=direction, status="in-progress")  # fmt: skip
    if created_at is not None:
        store.upsert_call(sid, created_at=created_at)
    if started:
        store.upsert_call(sid, started_at=(created_at or STARTED))
    if ended:
        store.upsert_call(
            sid, status="completed", ended_at=(created_at or STARTED) + timedelta(minutes=3)
        )
    if fields:
        store.upsert_call(sid, **fields)


def reply(store: Store, sid: str, seq: int, latency_ms: int) -> None:
    store.add_turn(sid, seq, "caller", "hello", start_ms=seq * 1000)
    store.add_turn(sid, seq + 1, "agent", "hi", timing={"latency_ms": latency_ms, "stt_ms": 90})


def label_text(store: Store, sid: str, at_ms: int):
    """The return label's text, queued through the outbox as the dialog does."""
    decision = store.record_decision(
        sid,
        "sms.sent",
        "1005",
        {"to": "+14155550103", "purpose": "return_label"},
        [OutboxItem("sms", f"sms:{sid}:return_label", {"to": "+14155550103", "body": "label"})],
        at_ms=at_ms,
    )
    return decision.entries[0]


@pytest.fixture
def shop_day(store: Store) -> Store:
    """Nine calls: four answered, ended inbound calls (one handed off), and the rest."""
    # CA1: where is my order, answered by the agent alone.
    call(store, "CA1")
    store.add_event("CA1", "intent", "1001", {"name": "order_status", "score": 0.9}, 1500)
    store.add_event("CA1", "sms.sent", "1001", {"to": "+1415", "purpose": "tracking"}, 9000)
    reply(store, "CA1", 1, 400)
    reply(store, "CA1", 3, 600)
    # CA2: where is my order, upset, handed to a person with a ticket.
    call(store, "CA2", transfer_to="+18005550199", end_reason="transfer")
    store.add_event("CA2", "intent", "1007", {"name": "order_status", "score": 0.8}, 1200)
    store.add_event("CA2", "escalation", "1007", {"reason": "upset"}, 5000)
    store.add_event("CA2", "ticket.created", "1007", {"ticket_id": "PV-1", "reason": "upset"}, 6000)
    store.add_event("CA2", "handoff", "1007", {"reason": "upset", "ticket_id": "PV-1"}, 7000)
    reply(store, "CA2", 1, 500)
    # CA3: an exchange; the label text is delivered a minute after the request.
    call(store, "CA3")
    store.add_event("CA3", "intent", "1005", {"name": "exchange_request", "score": 0.9}, 2000)
    store.add_event(
        "CA3", "return.created", "1005",
        {"rma": "RMA1", "reason_code": "wrong_size", "resolution": "exchange"}, 20000,
    )  # fmt: skip
    entry = label_text(store, "CA3", 21000)
    delivered_at = STARTED + timedelta(seconds=62)
    OutboxLeases(store.engine).complete(entry.id, {"message_id": "SM1"}, now=delivered_at)
    reply(store, "CA3", 1, 800)
    reply(store, "CA3", 3, 1000)
    # CA4: upset but carried on with the agent; a return whose label text is still queued.
    call(store, "CA4")
    store.add_event("CA4", "escalation", "1003", {"reason": "upset"}, 3000)
    store.add_event("CA4", "intent", "1003", {"name": "return_request", "score": 0.9}, 4000)
    store.add_event(
        "CA4", "return.created", "1003",
        {"rma": "RMA2", "reason_code": "damaged", "resolution": "refund"}, 30000,
    )  # fmt: skip
    label_text(store, "CA4", 31000)
    # CA5: hung up while ringing: never reached the agent.
    call(store, "CA5", started=False, status="canceled")
    # CA6, CA7: delivery confirmations with a score.
    call(store, "CA6", "outbound")
    store.add_event("CA6", "csat.recorded", "1009", {"score": 4}, 30000)
    call(store, "CA7", "outbound")
    store.add_event("CA7", "csat.recorded", "1010", {"score": 2}, 30000)
    # CA8: on the line right now.
    call(store, "CA8", ended=False, started_at=NOW - timedelta(minutes=2))
    # CA9: ten days ago, handed off because the order system was down.
    call(store, "CA9", created_at=NOW - timedelta(days=10))
    store.add_event("CA9", "escalation", None, {"reason": "system_error"}, 1000)
    store.add_event("CA9", "handoff", None, {"reason": "system_error"}, 1100)
    return store


def test_deflection_counts_answered_ended_inbound_calls_without_a_person(shop_day: Store):
    week = metrics.report(shop_day.engine, "7d", now=NOW)
    assert (week.deflection.part, week.deflection.whole) == (3, 4)
    assert week.deflection.value == 0.75
    assert (week.calls, week.inbound, week.outbound, week.unanswered) == (8, 6, 2, 1)

    month = metrics.report(shop_day.engine, "30d", now=NOW)
    assert (month.deflection.part, month.deflection.whole) == (3, 5)  # CA9 handed off
    assert metrics.report(shop_day.engine, "all", now=NOW).calls == 9


def test_wismo_and_escalation_rates_with_their_reasons(shop_day: Store):
    week = metrics.report(shop_day.engine, "7d", now=NOW)
    assert (week.wismo.part, week.wismo.whole) == (1, 2)
    assert (week.escalation.part, week.escalation.whole) == (2, 6)
    reasons = {(c.kind, c.name): c.count for c in week.escalation_reasons}
    assert reasons == {("escalation", "upset"): 2, ("handoff", "upset"): 1}

    month = metrics.report(shop_day.engine, "30d", now=NOW)
    reasons = {(c.kind, c.name): c.count for c in month.escalation_reasons}
    assert reasons[("handoff", "system_error")] == 1


def test_return_initiation_time_runs_from_the_request_to_the_delivered_label_text(
    shop_day: Store,
):
    returns = metrics.report(shop_day.engine, "7d", now=NOW).returns
    assert returns.created == 2
    assert returns.seconds.count == 1
    assert returns.seconds.p50 == pytest.approx(60.0)  # asked at 2 s, delivered at 62 s
    assert returns.waiting == 1 and returns.not_texted == 0


def test_return_reasons_csat_and_reply_latency(shop_day: Store):
    week = metrics.report(shop_day.engine, "7d", now=NOW)
    assert {c.name: c.count for c in week.return_reasons} == {"wrong_size": 1, "damaged": 1}
    assert {c.name: c.count for c in week.return_resolutions} == {"exchange": 1, "refund": 1}
    assert week.csat.count == 2 and week.csat.average == 3.0
    assert week.csat.scores == {1: 0, 2: 1, 3: 0, 4: 1, 5: 0}
    assert week.latency.count == 5
    assert week.latency.p50 == 600
    assert week.latency.p95 == 1000  # nearest rank: the slowest of five
    assert week.latency.p99 == 1000
    assert sum(b.count for b in week.latency_bins) == 5
    slowest = week.latency_bins[-1]
    assert slowest.low <= 1000 < (slowest.high or math.inf) and slowest.count == 1


def test_the_series_has_every_day_of_the_window(shop_day: Store):
    month = metrics.report(shop_day.engine, "30d", now=NOW)
    assert len(month.days) == 31
    assert [d.day for d in month.days] == sorted(d.day for d in month.days)
    today, ten_days_ago = month.days[-1], month.days[-11]
    assert today.day == NOW.date() and ten_days_ago.day == (NOW - timedelta(days=10)).date()
    assert (today.inbound, today.outbound) == (6, 2)
    assert (today.deflection.part, today.deflection.whole) == (3, 4)
    assert today.latency_p50 == 600
    assert (ten_days_ago.inbound, ten_days_ago.deflection.value) == (1, 0.0)
    assert sum(d.inbound + d.outbound for d in month.days) == 9


def test_an_empty_store_has_no_figures_rather_than_zeros(store: Store):
    week = metrics.report(store.engine, "7d", now=NOW)
    assert week.calls == 0
    assert week.deflection.value is None and week.wismo.value is None
    assert week.latency.p50 is None and week.csat.average is None
    assert week.latency_bins == [] and len(week.days) == 8
    text = metrics_prometheus.exposition(week, metrics_totals.totals(store.engine, now=NOW))
    samples = parse(text)
    assert ("postvoice_deflection_ratio", ()) not in samples  # nothing measured: no sample
    assert math.isnan(samples[("postvoice_reply_latency_ms", (("quantile", "0.5"),))])


def test_unknown_window_is_refused(store: Store):
    with pytest.raises(ValueError, match="unknown window"):
        metrics.report(store.engine, "1y")


# --- Prometheus ------------------------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_SAMPLE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>{_LABEL}(?:,{_LABEL})*)\}})? "
    r"(?P<value>-?[0-9.e+-]+|NaN|[+-]Inf)$"
)
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """A strict reader of the text format: every line is HELP, TYPE or a well-formed sample
    of the family last typed; returns {(name, labels): value}."""
    assert text.endswith("\n")
    samples: dict[tuple[str, tuple], float] = {}
    typed: dict[str, str] = {}
    helped: set[str] = set()
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helped, f"two HELP lines for {name}"
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped")
            assert name in helped and name not in typed
            typed[name] = kind
            current = name
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        allowed = {current} | ({f"{current}_sum", f"{current}_count"} if typed[current] ==
                               "summary" else set())  # fmt: skip
        assert name in allowed, f"{name} outside its family ({current})"
        labels = tuple((k, _unescape(v)) for k, v in _PAIR.findall(match["labels"] or ""))
        assert (name, labels) not in samples, f"duplicate sample {name}{labels}"
        samples[(name, labels)] = float(match["value"])
    return samples


def test_prometheus_exposition_parses_and_says_what_the_store_says(shop_day: Store):
    recent = metrics.report(shop_day.engine, "24h", now=NOW)
    text = metrics_prometheus.exposition(recent, metrics_totals.totals(shop_day.engine, now=NOW))
    samples = parse(text)

    def calls(direction: str, outcome: str) -> float:
        return samples[("postvoice_calls_total", (("direction", direction), ("outcome", outcome)))]

    assert calls("inbound", "automated") == 3
    assert calls("inbound", "handed_off") == 2  # CA2 and CA9: counters are since the start
    assert calls("inbound", "unanswered") == 1
    assert calls("inbound", "in_progress") == 1
    assert calls("outbound", "automated") == 2
    assert samples[("postvoice_calls_in_progress", ())] == 1
    assert samples[("postvoice_deflection_ratio", (("window", "24h"),))] == 0.75
    assert samples[("postvoice_wismo_automation_ratio", (("window", "24h"),))] == 0.5
    escalations = (("kind", "handoff"), ("reason", "system_error"))
    assert samples[("postvoice_escalations_total", escalations)] == 1
    assert samples[("postvoice_reply_latency_ms", (("quantile", "0.5"),))] == 600
    assert samples[("postvoice_reply_latency_ms_count", ())] == 5
    assert samples[("postvoice_reply_latency_ms_sum", ())] == 3300
    initiation = (("quantile", "0.5"), ("window", "24h"))
    assert samples[("postvoice_return_initiation_seconds", initiation)] == 60
    assert samples[("postvoice_returns_waiting_for_label", (("window", "24h"),))] == 1
    assert samples[("postvoice_return_reasons_total", (("reason", "wrong_size"),))] == 1
    assert samples[("postvoice_csat_responses_total", (("score", "4"),))] == 1
    assert samples[("postvoice_csat_average", (("window", "all"),))] == 3
    assert samples[("postvoice_outbox_items", (("kind", "sms"), ("status", "delivered")))] == 1
    assert samples[("postvoice_outbox_items", (("kind", "sms"), ("status", "pending")))] == 1


def test_label_values_are_escaped(store: Store):
    call(store, "CA1")
    odd = 'said "no"\\ then\nleft'
    store.add_event("CA1", "handoff", None, {"reason": odd}, 100)
    text = metrics_prometheus.exposition(
        metrics.report(store.engine, "24h", now=NOW), metrics_totals.totals(store.engine, now=NOW)
    )
    assert 'reason="said \\"no\\"\\\\ then\\nleft"' in text
    samples = parse(text)
    assert samples[("postvoice_escalations_total", (("kind", "handoff"), ("reason", odd)))] == 1


def test_extra_families_are_written_with_their_labels(store: Store):
    turned_away = metrics_prometheus.Family("postvoice_turned_away_total", "counter", "Away.")
    turned_away.add(2, {"cap": "caller"})
    turned_away.add(1, {"cap": "instance"})
    unmeasured = metrics_prometheus.Family("postvoice_queue_seconds", "gauge", "Not yet.")
    unmeasured.add(None)
    text = metrics_prometheus.exposition(
        metrics.report(store.engine, "24h", now=NOW),
        metrics_totals.totals(store.engine, now=NOW),
        [turned_away, unmeasured],
    )
    samples = parse(text)
    assert samples[("postvoice_turned_away_total", (("cap", "caller"),))] == 2
    assert samples[("postvoice_turned_away_total", (("cap", "instance"),))] == 1
    assert "# TYPE postvoice_queue_seconds gauge" in text
    assert not [key for key in samples if key[0] == "postvoice_queue_seconds"]
    with pytest.raises(ValueError, match="same label names"):
        turned_away.add(3, {"reason": "busy"})
