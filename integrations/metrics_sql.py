"""The SQL that the report over a window (`integrations.metrics`) and the counts since the
first call (`integrations.metrics_totals`) are both built from.

It runs unchanged on SQLite and PostgreSQL: counts are aggregated by the database, and every
query over a window is bounded by it (calls created since its start).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, Table, and_, case, cast, func, or_, select
from sqlalchemy.engine import Connection

from integrations.metrics_figures import (
    ESCALATION_EVENTS,
    PERSON_EVENTS,
    TERMINAL_STATUSES,
    WISMO_INTENTS,
    Count,
    Csat,
)
from integrations.schema import calls, events, turns

__all__ = [
    "call_flags",
    "csat_of",
    "day_of",
    "event_counts",
    "event_type",
    "in_window",
    "intent_in",
    "reply_latency",
]


def day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC day of a timestamp column, as 'YYYY-MM-DD' text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite keeps UTC timestamps as ISO text


def event_type(since: datetime | None) -> ColumnElement[Any]:
    """`events.type` for a WHERE clause. Over a window the events are found through their
    call (`in_window`); there the type is wrapped in a cast, which keeps SQLite's planner
    (it has no statistics) from preferring the index on the type and reading every event of
    that type ever recorded, whatever the window."""
    return events.c.type if since is None else cast(events.c.type, String)


def intent_in(names: Sequence[str], since: datetime | None) -> ColumnElement[bool]:
    return and_(event_type(since) == "intent", events.c.data["name"].as_string().in_(names))


def call_flags(dialect: str, since: datetime | None, channel: str | None = None) -> Any:
    """One row per call of the window: its direction, channel, day and 0/1 flags.

    The events that set a flag are aggregated per call once and joined, rather than looked
    up per call: a correlated lookup lets SQLite pick the index on the event type and scan
    every intent of every call for each call, which grows with the square of the calls.
    """
    c, e = calls.c, events.c
    kind = event_type(since)

    def flag(condition: ColumnElement[bool]) -> Any:
        return case((condition, 1), else_=0)

    per_call = select(
        e.call_sid.label("call_sid"),
        func.max(flag(e.type.in_(PERSON_EVENTS))).label("person"),
        func.max(flag(e.type.in_(ESCALATION_EVENTS))).label("escalated"),
        func.max(flag(intent_in(WISMO_INTENTS, since))).label("wismo"),
    ).where(kind.in_((*PERSON_EVENTS, *ESCALATION_EVENTS, "intent")))
    marks = in_window(per_call, events, since, channel).group_by(e.call_sid).subquery("call_marks")
    ended = or_(c.ended_at.is_not(None), c.status.in_(TERMINAL_STATUSES))
    person = or_(marks.c.person == 1, c.transfer_to.is_not(None), c.end_reason == "transfer")
    query = select(
        c.direction.label("direction"),
        c.channel.label("channel"),
        day_of(c.created_at, dialect).label("day"),
        flag(c.started_at.is_not(None)).label("answered"),
        flag(ended).label("ended"),
        flag(person).label("person"),
        flag(marks.c.escalated == 1).label("escalated"),
        flag(marks.c.wismo == 1).label("wismo"),
    ).select_from(calls.outerjoin(marks, marks.c.call_sid == c.call_sid))
    if since is not None:
        query = query.where(c.created_at >= since)
    if channel is not None:
        query = query.where(c.channel == channel)
    return query.subquery("call_flags")


def in_window(
    query: Select[Any], table: Table, since: datetime | None, channel: str | None = None
) -> Select[Any]:
    """Only the rows of `table` (events or turns) that belong to calls created since `since`:
    the window is always the calls', so that a figure and its reasons count the same calls.
    The rows are found through their index on `call_sid` (see `event_type`).
    """
    if since is None and channel is None:
        return query.where(table.c.call_sid.is_not(None))
    window = select(calls.c.call_sid)
    if since is not None:
        window = window.where(calls.c.created_at >= since)
    if channel is not None:  # "voice" leaves typed and text-message conversations out
        window = window.where(calls.c.channel == channel)
    return query.where(table.c.call_sid.in_(window))


def reply_latency() -> ColumnElement[Any]:
    return turns.c.timing["latency_ms"].as_float()


def event_counts(
    conn: Connection,
    types: Sequence[str],
    key: str,
    since: datetime | None,
    *,
    by_type: bool = False,
    default: str,
    channel: str | None = None,
) -> list[Count]:
    """How many events of `types` there are per value of `data[key]`, most frequent first."""
    value = events.c.data[key].as_string().label("value")
    columns = [events.c.type, value] if by_type else [value]
    query = select(*columns, func.count()).where(event_type(since).in_(types))
    rows = conn.execute(in_window(query, events, since, channel).group_by(*columns)).all()
    merged: Counter[tuple[str, str]] = Counter()
    for row in rows:
        kind, name, n = (row[0], row[1], row[2]) if by_type else ("", row[0], row[1])
        merged[(kind, name or default)] += n
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return [Count(name=name, count=n, kind=kind) for (kind, name), n in ordered]


def csat_of(conn: Connection, since: datetime | None, channel: str | None = None) -> Csat:
    score = events.c.data["score"].as_integer().label("score")
    query = select(score, func.count()).where(event_type(since) == "csat.recorded")
    rows = conn.execute(in_window(query, events, since, channel).group_by(score)).all()
    scores = {s: 0 for s in range(1, 6)}
    for value, n in rows:
        if value is not None and 1 <= int(value) <= 5:  # a score outside 1-5 is not a CSAT
            scores[int(value)] += n
    count = sum(scores.values())
    average = sum(s * n for s, n in scores.items()) / count if count else None
    return Csat(count=count, average=average, scores=scores)
