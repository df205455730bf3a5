"""Everything counted since the first call, and what is going on right now: the counters
of the Prometheus exposition (`integrations.metrics_prometheus`), from the store's tables.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from integrations.metrics_figures import (
    ESCALATION_EVENTS,
    TERMINAL_STATUSES,
    Count,
    Csat,
    Distribution,
)
from integrations.metrics_sql import call_flags, csat_of, event_counts, reply_latency
from integrations.outbox import outbox
from integrations.schema import calls, turns

__all__ = ["Totals", "totals"]


@dataclass(frozen=True)
class Totals:
    """Everything counted since the first call, and what is going on right now."""

    calls: dict[tuple[str, str], int]  # (direction, outcome) → calls
    escalations: list[Count]
    return_reasons: list[Count]
    csat: Csat
    latency: Distribution  # count and total only: percentiles come from a window
    outbox: dict[tuple[str, str], int]  # (kind, status) → rows
    in_progress: int  # calls on the line now, on every instance sharing the database
    by_channel: dict[tuple[str, str], int] = field(default_factory=dict)
    """(channel, outcome) → calls: phone calls, typed ones, SMS and WhatsApp conversations."""


def totals(engine: Engine, *, now: datetime | None = None, max_call_s: float = 1800.0) -> Totals:
    """Counts since the first call. `in_progress` counts the calls started within
    `max_call_s` (no call lasts longer, so a call an instance never closed is not counted
    for ever) that have not ended, on every instance sharing the database."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        f = call_flags(conn.dialect.name, None)
        call_rows = conn.execute(
            select(
                f.c.direction, f.c.channel, f.c.answered, f.c.ended, f.c.person, func.count()
            ).group_by(f.c.direction, f.c.channel, f.c.answered, f.c.ended, f.c.person)
        ).all()
        latency = reply_latency()
        count, total = conn.execute(
            select(func.count(latency), func.coalesce(func.sum(latency), 0)).where(
                turns.c.role == "agent", latency.is_not(None)
            )
        ).one()
        outbox_rows = conn.execute(
            select(outbox.c.kind, outbox.c.status, func.count()).group_by(
                outbox.c.kind, outbox.c.status
            )
        ).all()
        in_progress = conn.execute(
            select(func.count()).where(
                calls.c.started_at >= now - timedelta(seconds=max_call_s),
                calls.c.ended_at.is_(None),
                calls.c.status.not_in(TERMINAL_STATUSES),
            )
        ).scalar_one()
        escalations = event_counts(
            conn, ESCALATION_EVENTS, "reason", None, by_type=True, default="unspecified"
        )
        return_reasons = event_counts(
            conn, ("return.created",), "reason_code", None, default="other"
        )
        csat = csat_of(conn, None)
    by_outcome: Counter[tuple[str, str]] = Counter()
    by_channel: Counter[tuple[str, str]] = Counter()
    for direction, channel, answered, ended, person, n in call_rows:
        outcome = _outcome(answered, ended, person)
        by_outcome[(direction, outcome)] += n
        by_channel[(channel or "voice", outcome)] += n
    return Totals(
        calls=dict(by_outcome),
        by_channel=dict(by_channel),
        escalations=escalations,
        return_reasons=return_reasons,
        csat=csat,
        latency=Distribution(count=int(count), total=float(total)),
        outbox={(kind, status): n for kind, status, n in outbox_rows},
        in_progress=int(in_progress),
    )


def _outcome(answered: int, ended: int, person: int) -> str:
    if not ended:
        return "in_progress"
    if not answered:
        return "unanswered"
    return "handed_off" if person else "automated"
