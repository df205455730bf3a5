"""How well understanding does on the labelled set: intent and slot accuracy, and the misses.

    report = evaluate()            # the shipped set, or evaluate("my_set.yaml")
    print(format_report(report, verbose=True))

`postvoice nlu eval [--set PATH] [--verbose]` prints this.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dialog.nlu.dataset import Entry, load_set
from dialog.understanding import INTENTS, Understanding, classify

__all__ = ["SLOTS", "TARGETS", "Miss", "Report", "SlotScore", "evaluate", "format_report"]

SLOTS = ("order_number", "email", "phone", "zip", "return_reason", "rating", "yes_no", "correction")
"""Slots scored, each over the utterances where it is labelled or predicted."""

TARGETS = {"intent": 0.95, "order_number": 0.98}
"""What the understanding must reach on the shipped set."""


@dataclass
class SlotScore:
    """Right out of scored, for one slot."""

    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        """Share right; 1.0 when there was nothing to score."""
        return self.correct / self.total if self.total else 1.0


@dataclass(frozen=True)
class Miss:
    """One utterance where something was wrong: what, expected and got."""

    text: str
    source: str
    what: str
    expected: object
    got: object


@dataclass
class Report:
    """Everything `evaluate` measured."""

    path: str
    total: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    intent: SlotScore = field(default_factory=SlotScore)
    intent_by_source: dict[str, SlotScore] = field(default_factory=dict)
    intents: SlotScore = field(default_factory=SlotScore)
    slots: dict[str, SlotScore] = field(default_factory=dict)
    order_number_by_source: dict[str, SlotScore] = field(default_factory=dict)
    true_positive: Counter[str] = field(default_factory=Counter)
    false_positive: Counter[str] = field(default_factory=Counter)
    false_negative: Counter[str] = field(default_factory=Counter)
    misses: list[Miss] = field(default_factory=list)

    def precision(self, intent: str) -> float:
        """Of the utterances given `intent`, the share that had it."""
        found = self.true_positive[intent] + self.false_positive[intent]
        return self.true_positive[intent] / found if found else 1.0

    def recall(self, intent: str) -> float:
        """Of the utterances that had `intent`, the share given it."""
        had = self.true_positive[intent] + self.false_negative[intent]
        return self.true_positive[intent] / had if had else 1.0

    @property
    def meets_targets(self) -> bool:
        """Intent and order-number accuracy at or above `TARGETS`."""
        return (
            self.intent.accuracy >= TARGETS["intent"]
            and self.slots["order_number"].accuracy >= TARGETS["order_number"]
        )


def _expected(entry: Entry, slot: str) -> object:
    value = getattr(entry, slot)
    return bool(value) if slot == "correction" else value


def _got(understood: Understanding, slot: str) -> object:
    return getattr(understood, slot)


def _score_slot(report: Report, entry: Entry, understood: Understanding, slot: str) -> None:
    expected, got = _expected(entry, slot), _got(understood, slot)
    # correction is a flag: score it where either side raised it
    if slot == "correction":
        expected, got = expected or None, got or None
    # Order numbers count on every utterance: a number where there is none is a mistake too.
    scored = slot == "order_number" or expected is not None or got is not None
    if not scored:
        return
    score = report.slots.setdefault(slot, SlotScore())
    score.total += 1
    right = expected == got
    score.correct += right
    if slot == "order_number":
        by_source = report.order_number_by_source.setdefault(entry.source, SlotScore())
        by_source.total += 1
        by_source.correct += right
    if not right:
        report.misses.append(Miss(entry.text, entry.source, slot, expected, got))


def evaluate(path: str | Path | None = None) -> Report:
    """Classify every utterance of the set at `path` (default: the shipped one) and score it."""
    entries = load_set(path)
    report = Report(path=str(path) if path else "shipped set")
    for slot in SLOTS:
        report.slots[slot] = SlotScore()
    for entry in entries:
        understood = classify(entry.text)
        report.total += 1
        report.by_source[entry.source] += 1
        right = understood.intent == entry.intent
        report.intent.total += 1
        report.intent.correct += right
        by_source = report.intent_by_source.setdefault(entry.source, SlotScore())
        by_source.total += 1
        by_source.correct += right
        if right:
            report.true_positive[entry.intent] += 1
        else:
            report.false_positive[understood.intent] += 1
            report.false_negative[entry.intent] += 1
            report.misses.append(
                Miss(entry.text, entry.source, "intent", entry.intent, understood.intent)
            )
        report.intents.total += 1
        if list(understood.intents) == entry.expected_intents:
            report.intents.correct += 1
        else:
            report.misses.append(
                Miss(
                    entry.text,
                    entry.source,
                    "intents",
                    entry.expected_intents,
                    list(understood.intents),
                )
            )
        for slot in SLOTS:
            _score_slot(report, entry, understood, slot)
    return report


def _line(name: str, score: SlotScore, target: float | None = None) -> str:
    mark = ""
    if target is not None:
        mark = f"   target {target:.0%}: " + ("met" if score.accuracy >= target else "MISSED")
    return f"  {name:<22} {score.accuracy:7.1%}  ({score.correct}/{score.total}){mark}"


def format_report(report: Report, *, verbose: bool = False) -> str:
    """The report as text: accuracies with counts, per-intent precision/recall, the misses."""
    sources = ", ".join(f"{n} {s}" for s, n in sorted(report.by_source.items()))
    lines = [f"NLU eval on {report.path}: {report.total} utterances ({sources})", ""]
    lines.append(_line("intent", report.intent, TARGETS["intent"]))
    for source, score in sorted(report.intent_by_source.items()):
        lines.append(_line(f"  {source}", score))
    lines.append(_line("all intents, in order", report.intents))
    lines.append(_line("order number", report.slots["order_number"], TARGETS["order_number"]))
    for source, score in sorted(report.order_number_by_source.items()):
        lines.append(_line(f"  {source}", score))
    for slot in SLOTS[1:]:
        lines.append(_line(slot.replace("_", " "), report.slots[slot]))
    lines += ["", f"  {'intent':<22} {'precision':>9} {'recall':>7}  support"]
    for intent in INTENTS:
        support = report.true_positive[intent] + report.false_negative[intent]
        if not support and not report.false_positive[intent]:
            continue
        lines.append(
            f"  {intent:<22} {report.precision(intent):9.1%} {report.recall(intent):7.1%}"
            f"  {support:>7}"
        )
    shown = [m for m in report.misses if verbose or m.what in ("intent", "order_number")]
    if shown:
        title = "misses" if verbose else "misses (intent and order number; --verbose for all)"
        lines += ["", f"{title}: {len(shown)}"]
        for miss in shown:
            lines.append(
                f"  [{miss.what}] {miss.text!r} ({miss.source}): "
                f"expected {miss.expected!r}, got {miss.got!r}"
            )
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - a convenience until the CLI is wired
    """Print the report of the shipped set with every miss."""
    print(format_report(evaluate(), verbose=True))


if __name__ == "__main__":  # pragma: no cover
    main()
