"""The metrics page, the Prometheus `/metrics` endpoint, and the flows page.

Both metric views compute from the store on every request (`integrations.metrics`): the page
over the window the merchant picks, `/metrics` over the last 24 hours plus counters since the
first call. The flows page reads the configured flows directory afresh each time, so a
merchant editing a flow sees its graph and its mistakes before restarting the server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from dialog.graph import FlowsOverview, read_flows
from integrations import metrics
from integrations.dashboard_queries import CHANNELS
from integrations.metrics_figures import WINDOWS, Distribution, Ratio, Report
from integrations.metrics_prometheus import CONTENT_TYPE, Family, exposition
from integrations.metrics_totals import totals
from voice.dashboard.flowsvg import STYLE, render_svg
from voice.dashboard.web import Dashboard, render

__all__ = ["router"]

DEFAULT_WINDOW = "7d"

NODE_KINDS = (
    ("say", "says something"),
    ("collect", "asks and waits for an answer"),
    ("action", "looks up or does something"),
    ("branch", "goes one way or another"),
    ("set", "notes a value"),
    ("call", "runs another flow"),
    ("handoff", "hands over to a person"),
    ("end", "ends the flow or the call"),
)
"""The legend of the flows page: each kind of step and what it does."""


@dataclass(frozen=True)
class Stat:
    """One figure at the top of the metrics page."""

    key: str  # data-metric
    label: str
    shown: str
    note: str
    value: float | None = None


def _percent(ratio: Ratio) -> str:
    value = ratio.value
    if value is None:
        return "—"
    shown = f"{value * 100:.1f}".removesuffix(".0")
    return f"{shown}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min".replace(".0 min", " min")
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} days".replace(".0 days", " days")


def _of(ratio: Ratio, what: str, verb: str) -> str:
    return f"{ratio.part} of {ratio.whole} {what} {verb}" if ratio.whole else f"no {what} yet"


def _stats(report: Report) -> list[Stat]:
    r = report
    latency = r.latency
    return [
        Stat(
            "calls",
            "Calls",
            str(r.calls),
            f"{r.inbound} inbound, {r.outbound} outbound, {r.unanswered} unanswered",
            r.calls,
        ),
        Stat(
            "deflection_rate",
            "Deflection rate",
            _percent(r.deflection),
            _of(r.deflection, "ended inbound calls", "needed no person"),
            r.deflection.value,
        ),
        Stat(
            "wismo_automation_rate",
            "WISMO automation",
            _percent(r.wismo),
            _of(r.wismo, "where-is-my-order calls", "answered without a person"),
            r.wismo.value,
        ),
        Stat(
            "escalation_rate",
            "Escalation rate",
            _percent(r.escalation),
            _of(r.escalation, "ended calls", "escalated or handed off"),
            r.escalation.value,
        ),
        Stat(
            "return_initiation_p50",
            "Return initiation (median)",
            _duration(r.returns.seconds.p50),
            f"{r.returns.seconds.count} of {r.returns.created} returns have their label; "
            f"p95 {_duration(r.returns.seconds.p95)}",
            r.returns.seconds.p50,
        ),
        Stat(
            "csat_average",
            "CSAT",
            "—" if r.csat.average is None else f"{r.csat.average:.2f}",
            f"average of {r.csat.count} scores (1-5)" if r.csat.count else "no scores yet",
            r.csat.average,
        ),
        Stat(
            "reply_latency_p50",
            "Reply latency p50",
            _ms(latency.p50),
            f"{latency.count} replies",
            latency.p50,
        ),
        Stat(
            "reply_latency_p95",
            "Reply latency p95",
            _ms(latency.p95),
            "end of caller's speech to first agent audio",
            latency.p95,
        ),
        Stat("reply_latency_p99", "Reply latency p99", _ms(latency.p99), "", latency.p99),
    ]


def _charts(report: Report) -> list[dict[str, Any]]:
    """The specs `static/pvchart.js` draws, one per chart."""
    days = [d.day.isoformat() for d in report.days]
    pct = [
        None if d.deflection.value is None else round(d.deflection.value * 100, 1)
        for d in report.days
    ]
    escalations = report.escalation_reasons
    return [
        {
            "key": "calls_per_day",
            "title": "Calls per day",
            "spec": {
                "type": "bar",
                "integer": True,
                "stacked": True,
                "labels": days,
                "unit": "",
                "series": [
                    {"name": "inbound", "values": [d.inbound for d in report.days]},
                    {"name": "outbound", "values": [d.outbound for d in report.days]},
                ],
                "empty": "No calls in this window yet.",
            },
        },
        {
            "key": "deflection_per_day",
            "title": "Deflection rate per day",
            "spec": {
                "type": "line",
                "labels": days,
                "unit": "%",
                "min": 0,
                "max": 100,
                "series": [{"name": "deflection", "values": pct}],
                "empty": "No ended inbound calls in this window yet.",
            },
        },
        {
            "key": "latency_per_day",
            "title": "Reply latency per day",
            "spec": {
                "type": "line",
                "labels": days,
                "unit": "ms",
                "min": 0,
                "series": [
                    {"name": "p50", "values": [d.latency_p50 for d in report.days]},
                    {"name": "p95", "values": [d.latency_p95 for d in report.days]},
                ],
                "empty": "No agent replies timed in this window yet.",
            },
        },
        {
            "key": "latency_histogram",
            "title": "Reply latency distribution",
            "spec": {
                "type": "histogram",
                "unit": "ms",
                "bins": [
                    {"from": b.low, "to": b.high, "count": b.count} for b in report.latency_bins
                ],
                "empty": "No agent replies timed in this window yet.",
            },
        },
        {
            "key": "return_reasons",
            "title": "Return reasons",
            "spec": {
                "type": "bar",
                "integer": True,
                "horizontal": True,
                "labels": [c.name for c in report.return_reasons],
                "series": [{"name": "returns", "values": [c.count for c in report.return_reasons]}],
                "empty": "No returns in this window yet.",
            },
        },
        {
            "key": "escalation_reasons",
            "title": "Escalation and handoff reasons",
            "spec": {
                "type": "bar",
                "integer": True,
                "horizontal": True,
                "labels": [f"{c.kind}: {c.name}" for c in escalations],
                "series": [{"name": "events", "values": [c.count for c in escalations]}],
                "empty": "No escalations in this window.",
            },
        },
        {
            "key": "csat_scores",
            "title": "CSAT scores",
            "spec": {
                "type": "bar",
                "integer": True,
                "labels": [str(s) for s in report.csat.scores],
                "series": [{"name": "callers", "values": list(report.csat.scores.values())}],
                "empty": "No scores recorded yet.",
            },
        },
    ]


def _csat_flows(dash: Dashboard) -> list[str] | None:
    """The loaded flows that ask for a score (None when the running flows are unknown)."""
    flows = getattr(dash.shop, "flows", None)
    if flows is None or not hasattr(flows, "flows"):
        return None
    return sorted(
        name
        for name, flow in flows.flows.items()
        if any(getattr(step, "action", None) == "record_csat" for step in flow.steps)
    )


# What the call limiter of this process reports (voice.capacity), as Prometheus families.
_CAPACITY = (
    ("active_calls", "postvoice_active_calls", "gauge", "Calls this instance has on the line now."),
    (
        "callers_on_the_line",
        "postvoice_callers_on_the_line",
        "gauge",
        "Different caller numbers this instance has on the line now.",
    ),
    (
        "max_calls",
        "postvoice_max_calls",
        "gauge",
        "Calls this instance takes at once (POSTVOICE_MAX_CALLS).",
    ),
    (
        "max_calls_per_caller",
        "postvoice_max_calls_per_caller",
        "gauge",
        "Calls this instance takes at once from one caller number.",
    ),
    (
        "calls_turned_away",
        "postvoice_calls_turned_away_total",
        "counter",
        "Calls this instance turned away at a cap since it started.",
    ),
)


def _capacity(dash: Dashboard) -> list[Family]:
    limiter = getattr(dash.deps, "limiter", None)
    if limiter is None:
        return []
    snapshot = limiter.snapshot()
    families = []
    for key, name, kind, words in _CAPACITY:
        if key in snapshot:
            family = Family(name, kind, words)
            family.add(snapshot[key])
            families.append(family)
    return families


def _prometheus_text(dash: Dashboard) -> str:
    engine = dash.store.engine
    now = datetime.now(UTC)
    recent = metrics.report(engine, "24h", now=now)
    since_start = totals(engine, now=now, max_call_s=dash.settings.max_call_s)
    return exposition(recent, since_start, _capacity(dash))


def _drawn(overview: FlowsOverview) -> list[dict[str, Any]]:
    """Each flow file with its SVG (None when it cannot be drawn)."""
    out = []
    for source in overview.flows:
        svg = Markup(render_svg(source.graph)) if source.graph is not None else None
        out.append({"source": source, "svg": svg})
    return out


def router(dash: Dashboard) -> APIRouter:
    """The metrics page, /api/metrics, /metrics (Prometheus) and the flows page."""
    api = APIRouter()

    @api.get("/dashboard/metrics", response_class=HTMLResponse, dependencies=[dash.page()])
    async def metrics_page(
        request: Request, window: str = DEFAULT_WINDOW, channel: str = "", typed: str = "include"
    ) -> Response:
        """Deflection, WISMO automation, returns, escalations, CSAT and latency, with charts;
        `channel` counts only the conversations of one channel (voice, typed, sms,
        whatsapp), and `typed=exclude`, as before, only the spoken calls."""
        if window not in WINDOWS:
            window = DEFAULT_WINDOW
        chosen = _channel(channel, typed)
        report = await asyncio.to_thread(metrics.report, dash.store.engine, window, channel=chosen)
        return render(
            dash,
            request,
            "metrics.html",
            active="metrics",
            report=report,
            stats=_stats(report),
            charts=_charts(report),
            windows=WINDOWS,
            csat_flows=_csat_flows(dash),
            duration=_duration,
            channel=chosen or "",
            channels=CHANNELS,
        )

    @api.get("/api/metrics", dependencies=[dash.api()])
    async def metrics_json(
        window: str = DEFAULT_WINDOW, channel: str = "", typed: str = "include"
    ) -> dict[str, Any]:
        """The metrics page's figures as JSON; `channel` one of voice, typed, sms, whatsapp
        (`typed=exclude`: spoken calls only)."""
        if window not in WINDOWS:
            raise HTTPException(status_code=422, detail=f"window is one of {', '.join(WINDOWS)}")
        if typed not in ("include", "exclude"):
            raise HTTPException(status_code=422, detail="typed is include or exclude")
        if channel and channel not in CHANNELS:
            raise HTTPException(status_code=422, detail=f"channel is one of {', '.join(CHANNELS)}")
        chosen = _channel(channel, typed)
        report = await asyncio.to_thread(metrics.report, dash.store.engine, window, channel=chosen)
        return {**_as_json(report), "channel": chosen}

    @api.get("/metrics", dependencies=[dash.api()], include_in_schema=False)
    async def prometheus() -> Response:
        """Prometheus text exposition (scrape with the admin token as a bearer token)."""
        text = await asyncio.to_thread(_prometheus_text, dash)
        return Response(text, media_type=CONTENT_TYPE)

    @api.get("/dashboard/flows", response_class=HTMLResponse, dependencies=[dash.page()])
    async def flows_page(request: Request) -> Response:
        """Every SOP drawn from its YAML, valid or with each mistake at file:line."""
        overview = await asyncio.to_thread(read_flows, dash.settings.flows_dir)
        flows = await asyncio.to_thread(_drawn, overview)
        return render(
            dash,
            request,
            "flows.html",
            active="flows",
            overview=overview,
            flows=flows,
            kinds=[(kind, words, STYLE[kind]) for kind, words in NODE_KINDS],
        )

    return api


def _channel(channel: str, typed: str) -> str | None:
    """The one channel the figures count, or None for all: `channel` when it names one, else
    spoken calls only for the older `typed=exclude`."""
    if channel in CHANNELS:
        return channel
    return "voice" if typed == "exclude" else None


def _as_json(report: Report) -> dict[str, Any]:
    def ratio(r: Ratio) -> dict[str, Any]:
        return {"part": r.part, "whole": r.whole, "value": r.value}

    def dist(d: Distribution) -> dict[str, Any]:
        return {"count": d.count, "p50": d.p50, "p95": d.p95, "p99": d.p99}

    return {
        "window": report.window,
        "since": report.since.isoformat() if report.since else None,
        "calls": report.calls,
        "inbound": report.inbound,
        "outbound": report.outbound,
        "unanswered": report.unanswered,
        "deflection": ratio(report.deflection),
        "wismo_automation": ratio(report.wismo),
        "escalation": ratio(report.escalation),
        "escalation_reasons": [
            {"kind": c.kind, "reason": c.name, "count": c.count} for c in report.escalation_reasons
        ],
        "return_initiation_s": {
            **dist(report.returns.seconds),
            "returns": report.returns.created,
            "waiting_for_label": report.returns.waiting,
            "not_texted": report.returns.not_texted,
        },
        "return_reasons": {c.name: c.count for c in report.return_reasons},
        "return_resolutions": {c.name: c.count for c in report.return_resolutions},
        "csat": {
            "count": report.csat.count,
            "average": report.csat.average,
            "scores": {str(k): v for k, v in report.csat.scores.items()},
        },
        "reply_latency_ms": dist(report.latency),
        "days": [
            {
                "day": d.day.isoformat(),
                "inbound": d.inbound,
                "outbound": d.outbound,
                "deflection": ratio(d.deflection),
                "latency_p50_ms": d.latency_p50,
                "latency_p95_ms": d.latency_p95,
            }
            for d in report.days
        ],
    }
