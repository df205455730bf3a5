"""What a set of simulated calls came to: `summary.json` and the table `postvoice simulate`
prints.

The outcome rate is calls whose persona's expectations all held, overall and per goal, caller
voice, noise level and packet loss level (with the share of frames each level really lost:
the seeded draws come near the level, not to it); the effort is caller turns and call seconds
until the caller's goals were met (calls that got there), and repairs (corrections and things
said again); latency is replay's, one figure per agent reply. Each failed call is listed with
the caller turn where it went wrong, so the reader starts there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from integrations.stats import percentile

__all__ = ["print_failures", "print_summary", "summarize"]

Report = dict[str, Any]


def _rate(reports: list[Report]) -> dict[str, Any]:
    passed = sum(1 for r in reports if r["passed"])
    return {
        "calls": len(reports),
        "passed": passed,
        "outcome_rate": round(passed / len(reports), 4) if reports else None,
    }


def _by(reports: list[Report], keys: Callable[[Report], Iterable[str]]) -> dict[str, Any]:
    groups: dict[str, list[Report]] = {}
    for report in reports:
        for key in keys(report):
            groups.setdefault(key, []).append(report)
    return {key: _rate(group) for key, group in sorted(groups.items())}


def _loss_level(report: Report) -> str:
    return f"{report.get('loss', 0.0):g}"


def _per_loss(reports: list[Report]) -> dict[str, Any]:
    """`_rate` per packet loss level, with the frames its calls sent and lost."""
    levels = _by(reports, lambda r: [_loss_level(r)])
    for level, figures in levels.items():
        group = [r for r in reports if _loss_level(r) == level]
        sent = sum(r.get("frames_sent", 0) for r in group)
        lost = sum(r.get("frames_lost", 0) for r in group)
        figures.update(
            frames_sent=sent, frames_lost=lost, share_lost=round(lost / sent, 4) if sent else None
        )
    return levels


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "p90": None, "max": None}
    return {
        "n": len(values),
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
        "max": max(values),
    }


def summarize(reports: list[Report]) -> dict[str, Any]:
    """The figures of `summary.json`."""
    latencies = [ms for r in reports for ms in r["latency_ms"]]
    resolved = [r for r in reports if r["turns_to_resolution"] is not None]
    return {
        **_rate(reports),
        "per_goal": _by(reports, lambda r: set(r["goals"])),
        "per_voice": _by(reports, lambda r: [r["voice"]]),
        "per_noise": _by(reports, lambda r: [r["noise"]]),
        "per_loss": _per_loss(reports),
        "goals_met_rate": round(len(resolved) / len(reports), 4) if reports else None,
        "turns_to_resolution": _spread([r["turns_to_resolution"] for r in resolved]),
        "seconds_to_resolution": _spread([r["seconds_to_resolution"] for r in resolved]),
        "repairs": {
            "total": sum(r["repairs"] for r in reports),
            "calls_with_repairs": sum(1 for r in reports if r["repairs"]),
        },
        "latency_ms": _spread(latencies),
        "failures": [
            {"call": r["scenario"], "failures": r["failures"], "went_wrong": r["went_wrong"]}
            for r in reports
            if not r["passed"]
        ],
    }


def print_summary(console: Any, summary: dict[str, Any], *, failures: bool = True) -> None:
    """Outcome rates per goal, voice, noise and loss; effort and latency; each failure's turn."""
    from rich.table import Table

    table = Table(title="simulated callers")
    for column in ("group", "calls", "passed", "outcome rate"):
        table.add_column(column)
    rows = [("all", summary)]
    for section in ("per_goal", "per_voice", "per_noise"):
        rows += [(f"{section[4:]}: {key}", value) for key, value in summary[section].items()]
    for key, value in summary["per_loss"].items():
        share = value["share_lost"]
        lost = "" if share is None else f" ({share:.1%} of frames lost)"
        rows.append((f"loss: {key}{lost}", value))
    for name, figures in rows:
        rate = figures["outcome_rate"]
        table.add_row(
            name,
            str(figures["calls"]),
            str(figures["passed"]),
            "-" if rate is None else f"{rate:.1%}",
        )
    console.print(table)
    turns, seconds = summary["turns_to_resolution"], summary["seconds_to_resolution"]
    latency, repairs = summary["latency_ms"], summary["repairs"]
    console.print(
        f"goals met in {turns['n']} calls: median {turns['median']} caller turns "
        f"(p90 {turns['p90']}), {seconds['median']} s (p90 {seconds['p90']}); "
        f"repairs {repairs['total']} in {repairs['calls_with_repairs']} calls; "
        f"latency median {latency['median']} ms, p90 {latency['p90']} ms"
    )
    if failures:
        print_failures(console, summary["failures"])


def print_failures(console: Any, failures: list[dict[str, Any]]) -> None:
    """Each failed call (`summary["failures"]`) with the caller turn where it went wrong."""
    from rich.table import Table

    if not failures:
        return
    failed = Table(title="failures, and the caller turn where each went wrong")
    for column in ("call", "failed", "turn", "agent said", "caller"):
        failed.add_column(column, overflow="fold")
    for item in failures:
        turn = item["went_wrong"] or {}
        failed.add_row(
            item["call"],
            "; ".join(item["failures"]),
            str(turn.get("turn", "-")),
            turn.get("heard", ""),
            f"{turn.get('said', '')} ({turn.get('reason', '')})",
        )
    console.print(failed)
