"""The service's figures — deflection, WISMO automation, return initiation time,
escalations, CSAT, reply latency, return reasons — what each one means, and the types that
carry them to the dashboard and to Prometheus. The report over a window is
`integrations.metrics`, the counts since the first call `integrations.metrics_totals`.

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

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from integrations.stats import percentile

__all__ = [
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
    "Ratio",
    "Report",
    "Returns",
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
    """Percentiles of some measurements, by nearest rank (`integrations.stats`): each one is
    a measurement that was made."""

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


def window_start(window: str, now: datetime) -> datetime | None:
    """When `window` (a key of `WINDOWS`) starts, counting back from `now`; None for "all"."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r} (use {', '.join(WINDOWS)})")
    length = WINDOWS[window][1]
    return None if length is None else now - length
