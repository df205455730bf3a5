"""The Prometheus text exposition (format 0.0.4) of the service's figures: the counters
since the first call (`integrations.metrics_totals`) and the ratios, averages and quantiles
of the last window's report (`integrations.metrics`).

The text is `prometheus_client`'s: the figures become its metric families, collected from a
registry of their own (not the library's global one, which would also carry whatever else
the process registered there) and written by its `generate_latest`, which owns the escaping
and the number formatting.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from integrations.dashboard_queries import CHANNELS
from integrations.metrics_figures import OUTCOMES, Distribution, Report
from integrations.metrics_totals import Totals

__all__ = ["CONTENT_TYPE", "Family", "exposition"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The media type of `exposition`'s output."""

_KINDS = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}

Valued = CounterMetricFamily | GaugeMetricFamily


@dataclass
class Family:
    """A counter or gauge that the caller knows and the store does not (e.g. this process's
    calls on the line): its name (a counter's ends in `_total`), type, help and samples."""

    name: str
    type: str  # counter or gauge
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | None, labels: Mapping[str, str] | None = None) -> None:
        """Add a sample; one without a value (nothing to measure yet) is left out."""
        labels = dict(labels or {})
        if self.samples and labels.keys() != self.samples[0][0].keys():
            raise ValueError(f"{self.name}: every sample needs the same label names")
        if value is not None:
            self.samples.append((labels, value))

    def metric(self) -> Metric:
        """The family as `prometheus_client` writes it."""
        names = list(self.samples[0][0]) if self.samples else []
        family = _KINDS[self.type](self.name, self.help, labels=names)
        for labels, value in self.samples:
            family.add_metric([labels[name] for name in names], value)
        return family


def exposition(recent: Report, since_start: Totals, extra: Sequence[Family] = ()) -> str:
    """The Prometheus text exposition (format 0.0.4) of `since_start`'s counters, of the
    ratios, averages and quantiles of the `recent` report's window (label `window`), and of
    the `extra` families (what this process alone knows, e.g. its calls on the line)."""
    registry = CollectorRegistry()
    registry.register(_Figures(recent, since_start, extra))
    return generate_latest(registry).decode()


@dataclass(frozen=True, eq=False)  # the registry keys its collectors by identity
class _Figures(Collector):
    """The figures of one scrape, as `prometheus_client` metric families."""

    recent: Report
    since_start: Totals
    extra: Sequence[Family]

    def collect(self) -> Iterator[Metric]:
        recent, since_start = self.recent, self.since_start
        window = recent.window
        over = f"over the {recent.window_words} (label window)"

        calls_total = CounterMetricFamily(
            "postvoice_calls_total",
            "Calls since the first, by direction and outcome (automated: ended without a person; "
            "handed_off: a handoff, transfer or ticket for a person; unanswered: never reached "
            "the agent; in_progress: not ended).",
            labels=("direction", "outcome"),
        )
        for direction in sorted({d for d, _ in since_start.calls} | {"inbound", "outbound"}):
            for outcome in OUTCOMES:
                n = since_start.calls.get((direction, outcome), 0)
                calls_total.add_metric((direction, outcome), n)
        yield calls_total
        by_channel = CounterMetricFamily(
            "postvoice_calls_by_channel_total",
            "Calls since the first, by channel (voice, typed, sms, whatsapp: a conversation by "
            "text messages counts once) and outcome, as postvoice_calls_total.",
            labels=("channel", "outcome"),
        )
        for channel in sorted({ch for ch, _ in since_start.by_channel} | set(CHANNELS)):
            for outcome in OUTCOMES:
                by_channel.add_metric(
                    (channel, outcome), since_start.by_channel.get((channel, outcome), 0)
                )
        yield by_channel
        yield GaugeMetricFamily(
            "postvoice_calls_in_progress",
            "Calls on the line now (started, not ended), on every instance sharing the database.",
            value=since_start.in_progress,
        )
        yield _windowed(
            "postvoice_deflection_ratio",
            f"Share of answered, ended inbound calls that needed no person, {over}.",
            window,
            recent.deflection.value,
        )
        yield _windowed(
            "postvoice_wismo_automation_ratio",
            "Share of answered, ended calls asking where an order is that needed no person, "
            f"{over}.",
            window,
            recent.wismo.value,
        )
        yield _windowed(
            "postvoice_escalation_ratio",
            f"Share of answered, ended calls with an escalation or handoff, {over}.",
            window,
            recent.escalation.value,
        )
        escalations = CounterMetricFamily(
            "postvoice_escalations_total",
            "Escalation and handoff events since the first call, by kind and reason.",
            labels=("kind", "reason"),
        )
        for item in since_start.escalations:
            escalations.add_metric((item.kind, item.name), item.count)
        yield escalations
        yield _summary(
            "postvoice_reply_latency_ms",
            "Reply latency in milliseconds, end of the caller's speech to the agent's first "
            f"audio: quantiles over the {recent.window_words}, sum and count since the first call.",
            recent.latency,
            since_start.latency,
        )
        # Gauges, not a summary: a count since the first call would mean pairing every return
        # ever made with its label text on every scrape.
        initiation = GaugeMetricFamily(
            "postvoice_return_initiation_seconds",
            "Seconds from a caller's return request to the delivery of the label text, as "
            f"quantiles {over}.",
            labels=("quantile", "window"),
        )
        for q, value in _quantiles(recent.returns.seconds):
            _add(initiation, value, q, window)
        yield initiation
        yield _windowed(
            "postvoice_returns_waiting_for_label",
            f"Returns whose label text is queued or failed, not delivered, {over}.",
            window,
            recent.returns.waiting,
        )
        reasons = CounterMetricFamily(
            "postvoice_return_reasons_total",
            "Returns created since the first call, by the caller's reason.",
            labels=("reason",),
        )
        for item in since_start.return_reasons:
            reasons.add_metric((item.name,), item.count)
        yield reasons
        responses = CounterMetricFamily(
            "postvoice_csat_responses_total",
            "Customer satisfaction scores (1-5) recorded since the first call, by score.",
            labels=("score",),
        )
        for score, n in since_start.csat.scores.items():
            responses.add_metric((str(score),), n)
        yield responses
        average = GaugeMetricFamily(
            "postvoice_csat_average",
            f"Average customer satisfaction score (1-5), {over} and since the first call "
            '(window="all").',
            labels=("window",),
        )
        _add(average, recent.csat.average, window)
        _add(average, since_start.csat.average, "all")
        yield average
        items = GaugeMetricFamily(
            "postvoice_outbox_items",
            "Outbox rows (texts, tickets, labels, refunds to deliver) by kind and state.",
            labels=("kind", "status"),
        )
        for (kind, status), n in sorted(since_start.outbox.items()):
            items.add_metric((kind, status), n)
        yield items
        for family in self.extra:
            yield family.metric()


def _add(family: Valued, value: float | None, *labels: str) -> None:
    """Add a sample; a gauge without a value (nothing to measure yet) is left out."""
    if value is not None:
        family.add_metric(labels, value)


def _windowed(name: str, help_: str, window: str, value: float | None) -> GaugeMetricFamily:
    """A gauge of the recent report's window, labelled with it."""
    family = GaugeMetricFamily(name, help_, labels=("window",))
    _add(family, value, window)
    return family


def _quantiles(d: Distribution) -> tuple[tuple[str, float | None], ...]:
    return (("0.5", d.p50), ("0.95", d.p95), ("0.99", d.p99))


def _summary(name: str, help_: str, recent: Distribution, overall: Distribution) -> Metric:
    """Quantiles of the recent window (NaN while there are none), sum and count since the
    first call."""
    family = SummaryMetricFamily(name, help_)
    for q, value in _quantiles(recent):
        # The library's summary families take a count and a sum only; the text format also
        # has quantile samples, so they are added as the family's plain samples.
        family.add_sample(name, {"quantile": q}, math.nan if value is None else value)
    family.add_metric([], count_value=overall.count, sum_value=overall.total)
    return family
