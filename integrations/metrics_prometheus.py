"""The Prometheus text exposition (format 0.0.4) of the service's figures: the counters
since the first call (`integrations.metrics_totals`) and the ratios, averages and quantiles
of the last window's report (`integrations.metrics`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from integrations.metrics_figures import OUTCOMES, Distribution, Report
from integrations.metrics_totals import Totals

__all__ = ["CONTENT_TYPE", "Family", "exposition"]

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
