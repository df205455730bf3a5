"""What the call record says about the service: deflection, WISMO automation, return initiation
time, escalations, CSAT, reply latency, return reasons — for the dashboard and for Prometheus.

Everything is computed from the store's tables (calls, turns, events, outbox) when asked, in
SQL that runs unchanged on SQLite and PostgreSQL: counts are aggregated by the database, only
the figures that need percentiles (reply latencies, return initiation times) come back as rows,
and every query is bounded by the time window asked for (calls created since its start).

Definitions (also written on the dashboard's metrics page):

- A call is *answered* when the agent's media stream started (`started_at` is set), and *ended*
  when the agent recorded its end or Twilio reported a final status. Calls that ended without
  ever reaching the agent (busy, no answer, hung up while ringing) are *unanswered* and count in
  no rate below.
- A call *needed a person* when it was handed off (a `handoff` event, a transfer) or left a
  ticket for a person (`ticket.created`: a refund to approve, a lost parcel to investigate).
  An `escalation` on its own does not count: an upset caller who chose to carry on with the
  agent and was helped was still helped without a person.
- *Deflection rate*: of the answered, ended inbound calls, the share that needed no person.
- *WISMO automation rate*: of the answered, ended calls where the caller asked where their order
  is (an `intent` event named in `WISMO_INTENTS`), the share that needed no person.
- *Escalation rate*: of the answered, ended calls (both directions), the share with an
  `escalation` or a `handoff` event; the reasons are those events' `reason`.
- *Return initiation time*: for each call that created a return (`return.created`), from the
  caller's request (the first `intent` event in `RETURN_INTENTS`; the call's start if the
  return came up another way) to the moment the text carrying the return label was delivered
  (the outbox row of the `sms.sent` event with purpose `return_label`, or of a
  `return.label_created` event). Returns whose label text is still queued, or that were never
  texted a label, are counted apart, not as times.
- *CSAT*: the 1-5 scores of `csat.recorded` events (asked at the end of the outbound delivery
  confirmation call): their average and distribution.
- *Reply latency*: `latency_ms` of the agent turns' timing — from the end of the caller's speech
  to the first audio of the reply, as `voice.call` measures it.
- *Return reasons*: the `reason_code` of `return.created` events (exchanges and replacements
  are returns too, with their resolution).

Days are UTC days.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from integrations.outbox import outbox
from integrations.schema import calls, events, turns

__all__ = [
    "CONTENT_TYPE",
    "ESCALATION_EVENTS",
    "OUTCOMES",
    "PERSON_EVENTS",
    "RETURN_INTENTS",
    "TERMINAL_STATUSES",
    "WINDOWS",
    "WISMO_INTENTS",
    "Bin",
    "Count",
    "Csat",
    "Day",
    "Distribution",
    "Family",
    "Ratio",
    "Report",
    "Returns",
    "Totals",
    "exposition",
    "percentile",
    "report",
    "totals",
    "window_start",
]

WINDOWS: dict[str, tuple[str, timedelta | None]] = {
    "24h": ("last 24 hours", timedelta(hours=24)),
    "7d": ("last 7 days", timedelta(days=7)),
    "30d": ("last 30 days", timedelta(days=30)),
    "all": ("all time", None),
}
"""The time windows a report can cover: key → (words, length; None for everything)."""

WISMO_INTENTS = ("order_status",)
"""Intents that mean "where is my order?" (they start the `order_status` flow)."""

RETURN_INTENTS = ("return_request", "exchange_request")
"""Intents that ask for a return or an exchange (they start the `returns` flow)."""

PERSON_EVENTS = ("handoff", "ticket.created")
"""Events that mean a person had to act on the call."""

ESCALATION_EVENTS = ("escalation", "handoff")
"""Events that count as an escalation, each with its `reason`."""

TERMINAL_STATUSES = ("completed", "transferred", "busy", "no-answer", "failed", "canceled")
"""Call statuses after which nothing more happens on the line (ours and Twilio's)."""

OUTCOMES = ("automated", "handed_off", "unanswered", "in_progress")
"""How a call stands: ended without a person, ended with one, never reached the agent, open."""

LATENCY_BIN_MS = 250
LATENCY_BINS = 16  # 0-4 s in quarter seconds; slower replies share the last bin


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """`part` of `whole` (e.g. 3 deflected of 4 calls); `value` is None when `whole` is 0."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        """The share, 0-1; None when there is nothing to divide by."""
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class Distribution:
    """Percentiles of some measurements (linear interpolation between the nearest ranks)."""

    count: int = 0
    total: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        """The distribution of `values`."""
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(
            count=len(ordered),
            total=float(sum(ordered)),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
        )

    @property
    def mean(self) -> float | None:
        """The average, None without measurements."""
        return self.total / self.count if self.count else None


@dataclass(frozen=True)
class Count:
    """How often a reason (or score, or resolution) occurred; `kind` says of what, when mixed."""

    name: str
    count: int
    kind: str = ""


@dataclass(frozen=True)
class Bin:
    """One bar of a histogram: measurements from `low` up to (not including) `high`."""

    low: float
    high: float | None  # None: the open last bin
    count: int


@dataclass(frozen=True)
class Day:
    """One UTC day of the series the charts draw."""

    day: date
    inbound: int = 0
    outbound: int = 0
    deflection: Ratio = Ratio(0, 0)
    latency_p50: float | None = None
    latency_p95: float | None = None


@dataclass(frozen=True)
class Csat:
    """Caller scores from 1 to 5."""

    count: int = 0
    average: float | None = None
    scores: dict[int, int] = field(default_factory=lambda: {s: 0 for s in range(1, 6)})


@dataclass(frozen=True)
class Returns:
    """Return initiation: times from request to label text, and the returns still without one."""

    created: int = 0
    seconds: Distribution = Distribution()
    waiting: int = 0  # the label text is queued (or failed) and not delivered yet
    not_texted: int = 0  # no label text at all (a withheld number, or the policy says no)


@dataclass(frozen=True)
class Report:
    """Every figure of the metrics page for one window."""

    window: str
    since: datetime | None
    now: datetime
    calls: int
    inbound: int
    outbound: int
    unanswered: int
    deflection: Ratio
    wismo: Ratio
    escalation: Ratio
    escalation_reasons: list[Count]
    returns: Returns
    return_reasons: list[Count]
    return_resolutions: list[Count]
    csat: Csat
    latency: Distribution
    latency_bins: list[Bin]
    days: list[Day]

    @property
    def window_words(self) -> str:
        """The window in words ("last 7 days")."""
        return WINDOWS[self.window][0]


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The `q`th percentile (0-100) of sorted values, interpolated; None for no values."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def window_start(window: str, now: datetime) -> datetime | None:
    """When `window` (a key of `WINDOWS`) starts, counting back from `now`; None for "all"."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r} (use {', '.join(WINDOWS)})")
    length = WINDOWS[window][1]
    return None if length is None else now - length


# --------------------------------------------------------------------------------------------
# SQL building blocks
# --------------------------------------------------------------------------------------------


def _aware(value: Any) -> datetime | None:
    """SQLite hands datetimes back naive (and sometimes as text); every stored one is UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC day of a timestamp column, as 'YYYY-MM-DD' text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite keeps UTC timestamps as ISO text


def _event_type(since: datetime | None) -> ColumnElement[Any]:
    """`events.type` for a WHERE clause. Over a window the events are found through their
    call (`_in_window`); there the type is wrapped in a cast, which keeps SQLite's planner
    (it has no statistics) from preferring the index on the type and reading every event of
    that type ever recorded, whatever the window."""
    return events.c.type if since is None else cast(events.c.type, String)


def _intent_in(names: Sequence[str], since: datetime | None) -> ColumnElement[bool]:
    return and_(_event_type(since) == "intent", events.c.data["name"].as_string().in_(names))


def _flags(dialect: str, since: datetime | None, channel: str | None = None) -> Any:
    """One row per call of the window: its direction, day and 0/1 flags.

    The events that set a flag are aggregated per call once and joined, rather than looked
    up per call: a correlated lookup lets SQLite pick the index on the event type and scan
    every intent of every call for each call, which grows with the square of the calls.
    """
    c, e = calls.c, events.c
    kind = _event_type(since)

    def flag(condition: ColumnElement[bool]) -> Any:
        return case((condition, 1), else_=0)

    per_call = select(
        e.call_sid.label("call_sid"),
        func.max(flag(e.type.in_(PERSON_EVENTS))).label("person"),
        func.max(flag(e.type.in_(ESCALATION_EVENTS))).label("escalated"),
        func.max(flag(_intent_in(WISMO_INTENTS, since))).label("wismo"),
    ).where(kind.in_((*PERSON_EVENTS, *ESCALATION_EVENTS, "intent")))
    marks = _in_window(per_call, events, since, channel).group_by(e.call_sid).subquery("call_marks")
    ended = or_(c.ended_at.is_not(None), c.status.in_(TERMINAL_STATUSES))
    person = or_(marks.c.person == 1, c.transfer_to.is_not(None), c.end_reason == "transfer")
    query = select(
        c.direction.label("direction"),
        _day(c.created_at, dialect).label("day"),
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


def _in_window(
    query: Select[Any], table: Table, since: datetime | None, channel: str | None = None
) -> Select[Any]:
    """Only the rows of `table` (events or turns) that belong to calls created since `since`:
    the window is always the calls', so that a figure and its reasons count the same calls.
    The rows are found through their index on `call_sid` (see `_event_type`).
    """
    if since is None and channel is None:
        return query.where(table.c.call_sid.is_not(None))
    window = select(calls.c.call_sid)
    if since is not None:
        window = window.where(calls.c.created_at >= since)
    if channel is not None:  # "voice" leaves typed calls (`postvoice chat`) out
        window = window.where(calls.c.channel == channel)
    return query.where(table.c.call_sid.in_(window))


def _latency() -> ColumnElement[Any]:
    return turns.c.timing["latency_ms"].as_float()


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


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
    every call, typed or spoken, or only those of `channel` ("voice" or "typed")."""
    now = now or datetime.now(UTC)
    since = window_start(window, now)
    with engine.connect() as conn:
        dialect = conn.dialect.name
        f = _flags(dialect, since, channel)
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
            _in_window(
                select(_day(calls.c.created_at, dialect), _latency())
                .select_from(turns.join(calls, turns.c.call_sid == calls.c.call_sid))
                .where(turns.c.role == "agent", _latency().is_not(None)),
                turns,
                since,
                channel,
            )
        ).all()
        escalation_reasons = _counts(
            conn,
            ESCALATION_EVENTS,
            "reason",
            since,
            by_type=True,
            default="unspecified",
            channel=channel,
        )
        return_reasons = _counts(
            conn, ("return.created",), "reason_code", since, default="other", channel=channel
        )
        resolutions = _counts(
            conn, ("return.created",), "resolution", since, default="refund", channel=channel
        )
        csat = _csat(conn, since, channel)
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


def _counts(
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
    query = select(*columns, func.count()).where(_event_type(since).in_(types))
    rows = conn.execute(_in_window(query, events, since, channel).group_by(*columns)).all()
    merged: Counter[tuple[str, str]] = Counter()
    for row in rows:
        kind, name, n = (row[0], row[1], row[2]) if by_type else ("", row[0], row[1])
        merged[(kind, name or default)] += n
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return [Count(name=name, count=n, kind=kind) for (kind, name), n in ordered]


def _csat(conn: Connection, since: datetime | None, channel: str | None = None) -> Csat:
    score = events.c.data["score"].as_integer().label("score")
    query = select(score, func.count()).where(_event_type(since) == "csat.recorded")
    rows = conn.execute(_in_window(query, events, since, channel).group_by(score)).all()
    scores = {s: 0 for s in range(1, 6)}
    for value, n in rows:
        if value is not None and 1 <= int(value) <= 5:  # a score outside 1-5 is not a CSAT
            scores[int(value)] += n
    count = sum(scores.values())
    average = sum(s * n for s, n in scores.items()) / count if count else None
    return Csat(count=count, average=average, scores=scores)


_OUTBOX_REF = re.compile(r"^outbox:(\d+)$")


def _returns(conn: Connection, since: datetime | None, channel: str | None = None) -> Returns:
    """Return initiation times of the calls in the window that created a return."""
    kind = _event_type(since)
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
                _intent_in(RETURN_INTENTS, since),
                label_sms,
            )
        )
        .order_by(events.c.id)
    )
    rows = conn.execute(_in_window(query, events, since, channel)).all()
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
    return _aware(row.started_at) or _aware(row.call_created_at)  # type: ignore[return-value]


def _event_time(row: Any) -> datetime:
    """When an event happened: the call's start plus its call-clock time, else when written."""
    started = _aware(row.started_at)
    if started is not None and row.at_ms is not None:
        return started + timedelta(milliseconds=row.at_ms)
    return _aware(row.created_at)  # type: ignore[return-value]


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
            found[row.id] = _aware(row.delivered_at) if row.status == "delivered" else None
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
        ordered = sorted(tally.latencies)
        out.append(
            Day(
                day=day,
                inbound=tally.inbound,
                outbound=tally.outbound,
                deflection=Ratio(tally.automated, tally.done),
                latency_p50=percentile(ordered, 50),
                latency_p95=percentile(ordered, 95),
            )
        )
        day += timedelta(days=1)
    return out


# --------------------------------------------------------------------------------------------
# Totals since the first call (Prometheus counters)
# --------------------------------------------------------------------------------------------


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


def totals(engine: Engine, *, now: datetime | None = None, max_call_s: float = 1800.0) -> Totals:
    """Counts since the first call. `in_progress` counts the calls started within
    `max_call_s` (no call lasts longer, so a call an instance never closed is not counted
    for ever) that have not ended, on every instance sharing the database."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        f = _flags(conn.dialect.name, None)
        call_rows = conn.execute(
            select(f.c.direction, f.c.answered, f.c.ended, f.c.person, func.count()).group_by(
                f.c.direction, f.c.answered, f.c.ended, f.c.person
            )
        ).all()
        latency = _latency()
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
        escalations = _counts(
            conn, ESCALATION_EVENTS, "reason", None, by_type=True, default="unspecified"
        )
        return_reasons = _counts(conn, ("return.created",), "reason_code", None, default="other")
        csat = _csat(conn, None)
    by_outcome: Counter[tuple[str, str]] = Counter()
    for direction, answered, ended, person, n in call_rows:
        by_outcome[(direction, _outcome(answered, ended, person))] += n
    return Totals(
        calls=dict(by_outcome),
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


# --------------------------------------------------------------------------------------------
# Prometheus text exposition format 0.0.4
# --------------------------------------------------------------------------------------------

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of `exposition`'s output."""

Labels = Mapping[str, str]


@dataclass
class Family:
    """One metric family: its name, type, help, and samples `(suffix, labels, value)`."""

    name: str
    type: str  # counter, gauge, summary
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float | None, labels: Labels | None = None, suffix: str = "") -> None:
        """Add a sample; a gauge without a value (nothing to measure yet) is left out."""
        if value is None and self.type != "summary":
            return
        self.samples.append((suffix, dict(labels or {}), math.nan if value is None else value))

    def text(self) -> str:
        """The family in the text format: HELP, TYPE, then one line per sample."""
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.type}"]
        for suffix, labels, value in self.samples:
            lines.append(f"{self.name}{suffix}{_labels(labels)} {_number(value)}")
        return "\n".join(lines)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"not a Prometheus label name: {name!r}")
    inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def exposition(recent: Report, since_start: Totals, extra: Sequence[Family] = ()) -> str:
    """The Prometheus text exposition (format 0.0.4) of `since_start`'s counters, of the
    ratios, averages and quantiles of the `recent` report's window (label `window`), and of
    the `extra` families (what this process alone knows, e.g. its calls on the line)."""
    window = {"window": recent.window}
    over = f"over the {recent.window_words} (label window)"
    families: list[Family] = []

    def family(name: str, type_: str, help_: str) -> Family:
        fam = Family(name, type_, help_)
        families.append(fam)
        return fam

    calls_total = family(
        "postvoice_calls_total",
        "counter",
        "Calls since the first, by direction and outcome (automated: ended without a person; "
        "handed_off: a handoff, transfer or ticket for a person; unanswered: never reached the "
        "agent; in_progress: not ended).",
    )
    for direction in sorted({d for d, _ in since_start.calls} | {"inbound", "outbound"}):
        for outcome in OUTCOMES:
            n = since_start.calls.get((direction, outcome), 0)
            calls_total.add(n, {"direction": direction, "outcome": outcome})
    family(
        "postvoice_calls_in_progress",
        "gauge",
        "Calls on the line now (started, not ended), on every instance sharing the database.",
    ).add(since_start.in_progress)
    family(
        "postvoice_deflection_ratio",
        "gauge",
        f"Share of answered, ended inbound calls that needed no person, {over}.",
    ).add(recent.deflection.value, window)
    family(
        "postvoice_wismo_automation_ratio",
        "gauge",
        f"Share of answered, ended calls asking where an order is that needed no person, {over}.",
    ).add(recent.wismo.value, window)
    family(
        "postvoice_escalation_ratio",
        "gauge",
        f"Share of answered, ended calls with an escalation or handoff, {over}.",
    ).add(recent.escalation.value, window)
    escalations = family(
        "postvoice_escalations_total",
        "counter",
        "Escalation and handoff events since the first call, by kind and reason.",
    )
    for item in since_start.escalations:
        escalations.add(item.count, {"kind": item.kind, "reason": item.name})
    _summary(
        family(
            "postvoice_reply_latency_ms",
            "summary",
            "Reply latency in milliseconds, end of the caller's speech to the agent's first "
            f"audio: quantiles over the {recent.window_words}, sum and count since the first call.",
        ),
        recent.latency,
        since_start.latency,
    )
    # Gauges, not a summary: a count since the first call would mean pairing every return
    # ever made with its label text on every scrape.
    initiation = family(
        "postvoice_return_initiation_seconds",
        "gauge",
        "Seconds from a caller's return request to the delivery of the label text, as "
        f"quantiles {over}.",
    )
    seconds = recent.returns.seconds
    for q, value in (("0.5", seconds.p50), ("0.95", seconds.p95), ("0.99", seconds.p99)):
        initiation.add(value, {"quantile": q, **window})
    family(
        "postvoice_returns_waiting_for_label",
        "gauge",
        f"Returns whose label text is queued or failed, not delivered, {over}.",
    ).add(recent.returns.waiting, window)
    reasons = family(
        "postvoice_return_reasons_total",
        "counter",
        "Returns created since the first call, by the caller's reason.",
    )
    for item in since_start.return_reasons:
        reasons.add(item.count, {"reason": item.name})
    responses = family(
        "postvoice_csat_responses_total",
        "counter",
        "Customer satisfaction scores (1-5) recorded since the first call, by score.",
    )
    for score, n in since_start.csat.scores.items():
        responses.add(n, {"score": str(score)})
    average = family(
        "postvoice_csat_average",
        "gauge",
        f"Average customer satisfaction score (1-5), {over} and since the first call "
        '(window="all").',
    )
    average.add(recent.csat.average, window)
    average.add(since_start.csat.average, {"window": "all"})
    items = family(
        "postvoice_outbox_items",
        "gauge",
        "Outbox rows (texts, tickets, labels, refunds to deliver) by kind and state.",
    )
    for (kind, status), n in sorted(since_start.outbox.items()):
        items.add(n, {"kind": kind, "status": status})
    families.extend(extra)
    return "\n".join(f.text() for f in families) + "\n"


def _summary(fam: Family, recent: Distribution, overall: Distribution) -> None:
    for q, value in (("0.5", recent.p50), ("0.95", recent.p95), ("0.99", recent.p99)):
        fam.add(value, {"quantile": q})
    fam.add(overall.total, suffix="_sum")
    fam.add(overall.count, suffix="_count")
