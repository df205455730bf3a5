"""The metrics page's report: every figure of `integrations.metrics_figures` over one
time window, computed from the store's tables (calls, turns, events, outbox) when asked.

Only the figures that need percentiles (reply latencies, return initiation times) come
back from the database as rows; the rest it counts (`integrations.metrics_sql`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, or_, select
from sqlalchemy.engine import Connection

from integrations.clock import aware
from integrations.metrics_figures import (
    ESCALATION_EVENTS,
    RETURN_INTENTS,
    Bin,
    Day,
    Distribution,
    Ratio,
    Report,
    Returns,
    window_start,
)
from integrations.metrics_sql import (
    call_flags,
    csat_of,
    day_of,
    event_counts,
    event_type,
    in_window,
    intent_in,
    reply_latency,
)
from integrations.outbox import outbox
from integrations.schema import calls, events, turns
from integrations.stats import percentile

__all__ = ["report"]

LATENCY_BIN_MS = 250
LATENCY_BINS = 16  # 0-4 s in quarter seconds; slower replies share the last bin


@dataclass
class _DayTally:
    inbound: int = 0
    outbound: int = 0
    done: int = 0
    automated: int = 0
    latencies: list[float] = field(default_factory=list)


def report(
    engine: Engine, window: str = "7d", *, now: datetime | None = None, channel: str | None = None
) -> Report:
    """Every figure of the metrics page over `window` (a key of `WINDOWS`), ending `now`; of
    every call, typed, spoken or by text message, or only those of `channel` (one of
    `integrations.dashboard_queries.CHANNELS`: "voice", "typed", "sms", "whatsapp")."""
    now = now or datetime.now(UTC)
    since = window_start(window, now)
    with engine.connect() as conn:
        dialect = conn.dialect.name
        f = call_flags(dialect, since, channel)
        done = and_(f.c.ended == 1, f.c.answered == 1)

        def total(condition: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        rows = conn.execute(
            select(
                f.c.day,
                f.c.direction,
                func.count().label("calls"),
                total(done).label("done"),
                total(and_(done, f.c.person == 0)).label("automated"),
                total(and_(done, f.c.escalated == 1)).label("escalated"),
                total(and_(done, f.c.wismo == 1)).label("wismo"),
                total(and_(done, f.c.wismo == 1, f.c.person == 0)).label("wismo_automated"),
                total(and_(f.c.ended == 1, f.c.answered == 0)).label("unanswered"),
            ).group_by(f.c.day, f.c.direction)
        ).all()
        latency_rows = conn.execute(
            in_window(
                select(day_of(calls.c.created_at, dialect), reply_latency())
                .select_from(turns.join(calls, turns.c.call_sid == calls.c.call_sid))
                .where(turns.c.role == "agent", reply_latency().is_not(None)),
                turns,
                since,
                channel,
            )
        ).all()
        escalation_reasons = event_counts(
            conn,
            ESCALATION_EVENTS,
            "reason",
            since,
            by_type=True,
            default="unspecified",
            channel=channel,
        )
        return_reasons = event_counts(
            conn, ("return.created",), "reason_code", since, default="other", channel=channel
        )
        resolutions = event_counts(
            conn, ("return.created",), "resolution", since, default="refund", channel=channel
        )
        csat = csat_of(conn, since, channel)
        returns = _returns(conn, since, channel)

    tallies: dict[date, _DayTally] = defaultdict(_DayTally)
    sums: Counter[str] = Counter()
    for row in rows:
        day = date.fromisoformat(str(row.day))
        tally = tallies[day]
        inbound = row.direction == "inbound"
        if inbound:
            tally.inbound += row.calls
            tally.done += row.done
            tally.automated += row.automated
            sums.update(inbound=row.calls, inbound_done=row.done, deflected=row.automated)
        else:
            tally.outbound += row.calls
            sums.update(outbound=row.calls)
        sums.update(
            calls=row.calls,
            done=row.done,
            escalated=row.escalated,
            wismo=row.wismo,
            wismo_automated=row.wismo_automated,
            unanswered=row.unanswered,
        )
    latencies: list[float] = []
    for day_text, latency in latency_rows:
        value = float(latency)
        latencies.append(value)
        tallies[date.fromisoformat(str(day_text))].latencies.append(value)

    return Report(
        window=window,
        since=since,
        now=now,
        calls=sums["calls"],
        inbound=sums["inbound"],
        outbound=sums["outbound"],
        unanswered=sums["unanswered"],
        deflection=Ratio(sums["deflected"], sums["inbound_done"]),
        wismo=Ratio(sums["wismo_automated"], sums["wismo"]),
        escalation=Ratio(sums["escalated"], sums["done"]),
        escalation_reasons=escalation_reasons,
        returns=returns,
        return_reasons=return_reasons,
        return_resolutions=resolutions,
        csat=csat,
        latency=Distribution.of(latencies),
        latency_bins=_bins(latencies),
        days=_series(tallies, since, now),
    )


_OUTBOX_REF = re.compile(r"^outbox:(\d+)$")


def _returns(conn: Connection, since: datetime | None, channel: str | None = None) -> Returns:
    """Return initiation times of the calls in the window that created a return."""
    kind = event_type(since)
    label_sms = and_(kind == "sms.sent", events.c.data["purpose"].as_string() == "return_label")
    query = (
        select(
            events.c.call_sid,
            events.c.type,
            events.c.data["outbox"].label("refs"),
            events.c.at_ms,
            events.c.created_at,
            calls.c.started_at,
            calls.c.created_at.label("call_created_at"),
        )
        .select_from(events.join(calls, events.c.call_sid == calls.c.call_sid))
        .where(
            or_(
                kind.in_(("return.created", "return.label_created")),
                intent_in(RETURN_INTENTS, since),
                label_sms,
            )
        )
        .order_by(events.c.id)
    )
    rows = conn.execute(in_window(query, events, since, channel)).all()
    per_call: dict[str, dict[str, Any]] = {}
    refs: set[int] = set()
    for row in rows:
        call = per_call.setdefault(
            row.call_sid,
            {"created": False, "asked": None, "labels": [], "start": _call_start(row)},
        )
        at = _event_time(row)
        if row.type == "return.created":
            call["created"] = True
        elif row.type == "intent":
            call["asked"] = call["asked"] or at
        else:
            ids = [int(m.group(1)) for m in map(_OUTBOX_REF.match, _refs(row.refs)) if m]
            call["labels"].append((at, ids))
            refs.update(ids)
    delivered = _delivered(conn, refs)
    seconds: list[float] = []
    waiting = not_texted = created = 0
    for call in per_call.values():
        if not call["created"]:
            continue
        created += 1
        if not call["labels"]:
            not_texted += 1
            continue
        sent_at = [_label_sent(at, ids, delivered) for at, ids in call["labels"]]
        times = [t for t in sent_at if t is not None]
        if not times:
            waiting += 1
            continue
        start = call["asked"] or call["start"]
        seconds.append(max(0.0, (min(times) - start).total_seconds()))
    return Returns(
        created=created,
        seconds=Distribution.of(seconds),
        waiting=waiting,
        not_texted=not_texted,
    )


def _refs(refs: Any) -> list[str]:
    return [r for r in refs if isinstance(r, str)] if isinstance(refs, list) else []


def _call_start(row: Any) -> datetime:
    return aware(row.started_at) or aware(row.call_created_at)  # type: ignore[return-value]


def _event_time(row: Any) -> datetime:
    """When an event happened: the call's start plus its call-clock time, else when written."""
    started = aware(row.started_at)
    if started is not None and row.at_ms is not None:
        return started + timedelta(milliseconds=row.at_ms)
    return aware(row.created_at)  # type: ignore[return-value]


def _delivered(conn: Connection, ids: set[int]) -> dict[int, datetime | None]:
    """Outbox row id → when it was delivered (None while it is not)."""
    found: dict[int, datetime | None] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):  # keep IN lists short
        rows = conn.execute(
            select(outbox.c.id, outbox.c.status, outbox.c.delivered_at).where(
                outbox.c.id.in_(ordered[i : i + 500])
            )
        ).all()
        for row in rows:
            found[row.id] = aware(row.delivered_at) if row.status == "delivered" else None
    return found


def _label_sent(
    at: datetime, ids: list[int], delivered: Mapping[int, datetime | None]
) -> datetime | None:
    """When a label text reached the provider: its outbox row's delivery, or (sent directly,
    without the outbox) the event itself; None while it waits."""
    if not ids:
        return at
    times = [delivered.get(i) for i in ids]
    done = [t for t in times if t is not None]
    return min(done) if done else None


def _bins(latencies: Sequence[float]) -> list[Bin]:
    if not latencies:
        return []
    counts = [0] * LATENCY_BINS
    for value in latencies:
        counts[min(int(value // LATENCY_BIN_MS), LATENCY_BINS - 1)] += 1
    last = max(i for i, n in enumerate(counts) if n)  # no empty bins after the slowest
    return [
        Bin(
            low=i * LATENCY_BIN_MS,
            high=None if i == LATENCY_BINS - 1 else (i + 1) * LATENCY_BIN_MS,
            count=counts[i],
        )
        for i in range(last + 1)
    ]


def _series(tallies: Mapping[date, _DayTally], since: datetime | None, now: datetime) -> list[Day]:
    """One `Day` for every day of the window, days without calls included."""
    today = now.astimezone(UTC).date()
    if since is not None:
        first = since.astimezone(UTC).date()
    elif tallies:
        first = min(tallies)
    else:
        return []
    last = max([today, *tallies])
    out = []
    day = first
    while day <= last:
        tally = tallies.get(day, _DayTally())
        out.append(
            Day(
                day=day,
                inbound=tally.inbound,
                outbound=tally.outbound,
                deflection=Ratio(tally.automated, tally.done),
                latency_p50=percentile(tally.latencies, 50),
                latency_p95=percentile(tally.latencies, 95),
            )
        )
        day += timedelta(days=1)
    return out
