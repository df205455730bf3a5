"""What `postvoice bench --personas` keeps of each simulated call: the report `postvoice
simulate` writes, so a call that missed its outcome can be read turn by turn afterwards.

Bench measures latency, but its persona calls are conversations that branch on what the agent
says, and a figure of "5 of 8 calls short of their outcome" says nothing of why: the agent
misheard a coupon code, or the simulator did something no caller would. Each call's report
goes to `DIR/<n>-<persona>/report.json` (n the call's number in the run: bench cycles through
the personas, so one persona may call several times) and `DIR/summary.json` holds the figures
of `harness.simulate_summary`, failures with the caller turn where each went wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.simulate import CallPlan, SimulatedCall, call_report
from harness.simulate_run import broken_report
from harness.simulate_summary import summarize

__all__ = ["PersonaReports"]


class PersonaReports:
    """The reports of one measured run of simulated callers, written to `out`."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.reports: dict[int, dict[str, Any]] = {}

    def keep(self, index: int, plan: CallPlan, call: SimulatedCall) -> None:
        """Call `index` of the run was made: its report."""
        self._put(index, plan, call_report(plan, call, heard_from="record"))

    def broken(self, index: int, plan: CallPlan, error: BaseException) -> None:
        """Call `index` could not be made or did not finish."""
        self._put(index, plan, broken_report(plan, error))

    def _put(self, index: int, plan: CallPlan, report: dict[str, Any]) -> None:
        report["scenario"] = f"{index + 1:03d}-{plan.persona.name}"
        self.reports[index] = report

    def write(self) -> dict[str, Any]:
        """Write every report and `summary.json`; the summary."""
        reports = [self.reports[i] for i in sorted(self.reports)]
        self.out.mkdir(parents=True, exist_ok=True)
        for report in reports:
            folder = self.out / report["scenario"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "report.json").write_text(json.dumps(report, indent=2, default=str))
        summary = summarize(reports)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return summary
