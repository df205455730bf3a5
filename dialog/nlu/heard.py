"""The labelled lines as callers in other voices were heard, and how well they were understood.

`spoken.yaml` holds what callers say, with labels; `heard/<voice>.yaml` what tiny.en heard when
one caller voice said each line (made by `postvoice nlu hear`, format below). Scoring joins the
two: the labels are the truth of what was said, the understanding sees only what was heard.
Answers are understood as the agent understands them at that question: an order number by
the order-number slot, a ZIP, email or phone number by the second-factor slot.

    voice: flite-awb
    split: test
    description: flite Scottish male
    heard:
    - {said: "Ten oh five.", text: "10.05", speed: 1.0, noise: "room", confidence: 0.61}

Every figure is given per voice; the summary lines add up the test voices alone, because the
tuning voices were looked at while the understanding was adjusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from dialog.nlu.dataset import Entry, load_set
from dialog.understanding import Understanding, classify

__all__ = [
    "DEFAULT_HEARD",
    "HEADER",
    "SPOKEN_SET",
    "TARGETS",
    "TECHNIQUES",
    "Heard",
    "HeardSet",
    "VoiceScore",
    "format_voices",
    "load_heard",
    "score_voices",
    "without",
]

SPOKEN_SET = Path(__file__).with_name("spoken.yaml")
"""What callers say, labelled: every caller voice says each line."""

DEFAULT_HEARD = Path(__file__).with_name("heard")
"""One file per caller voice: what tiny.en heard of each spoken line."""

HEADER = (
    "# What tiny.en heard when this caller voice said the lines of dialog/nlu/spoken.yaml\n"
    "# (made by `postvoice nlu hear`; scored by `postvoice nlu eval --voices`).\n"
)

TARGETS = {"intent": 0.92, "order_number": 0.95, "zip": 0.90, "email": 0.80}
"""What understanding must reach on the test voices, per utterance."""

SCORED = ("intent", "order_number", "zip", "email", "phone")


def _switch_off(name: str) -> tuple[object, str, object]:
    """(module, attribute, stand-in) that turns technique `name` off."""
    from dialog import understanding

    if name == "digit_repair":  # neither the slot parsers nor `classify` re-read anything
        return understanding, "repair_digits", understanding.normalize
    if name == "sounds_like":  # misheard key words stay as heard
        return understanding, "respell", understanding.canonical
    if name == "order_shapes":  # "101" for "ten oh one" is no order number
        return understanding, "reshaped_order_numbers", lambda text, **_: []
    raise ValueError(f"no technique {name!r}; known: {', '.join(TECHNIQUES)}")


TECHNIQUES = ("digit_repair", "sounds_like", "order_shapes")
"""Understanding techniques `without` can turn off, to measure what each one brings."""


@contextlib.contextmanager
def without(names: Sequence[str]) -> Iterator[None]:
    """Score as if the techniques `names` were not there (for measuring, never serving)."""
    patches = [_switch_off(name) for name in names]
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
    try:
        for module, attr, stand_in in patches:
            setattr(module, attr, stand_in)
        yield
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)


@dataclass(frozen=True)
class Heard:
    """One spoken line as heard: what was said, the transcript, how it was spoken."""

    said: str
    text: str
    speed: float
    noise: str
    confidence: float = 0.0


@dataclass
class HeardSet:
    """One voice's file."""

    voice: str
    split: str
    description: str
    heard: list[Heard]


def load_heard(path: str | Path) -> HeardSet:
    """Read one voice's file; ValueError naming the file when it does not fit."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return HeardSet(
            voice=str(raw["voice"]),
            split=str(raw["split"]),
            description=str(raw.get("description", "")),
            heard=[Heard(**item) for item in raw.get("heard") or []],
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a heard file ({exc})") from exc


@dataclass
class Tally:
    """Right out of scored."""

    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.right += ok
        self.total += 1

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.share:6.1%} ({self.right}/{self.total})" if self.total else "     -"


@dataclass
class VoiceScore:
    """One voice's figures: per slot, intent per noise level, the misses."""

    voice: str
    split: str
    description: str
    slots: dict[str, Tally] = field(default_factory=lambda: {s: Tally() for s in SCORED})
    intent_by_noise: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    false_numbers: int = 0
    second_factor_calls: Tally = field(default_factory=Tally)
    misses: list[tuple[str, str, str, object, object]] = field(default_factory=list)
    missing: int = 0


def _understood(entry: Entry, text: str) -> Understanding:
    """What the agent makes of `text` at the question `entry` answers."""
    from dialog.slots import SLOT_TYPES, SlotContext

    understood = classify(text)
    ctx = SlotContext(today=date.today())
    if entry.hints == "order_number":
        slot = SLOT_TYPES["order_number"]
        number = slot.parse(text, ctx)
        if number is None and slot.guess is not None:
            number = slot.guess(text, ctx)  # read back for a yes or no, as in a call
        understood = dataclasses.replace(understood, order_number=number)
    if entry.hints == "verification":
        factor = SLOT_TYPES["second_factor"].parse(text, ctx)
        kind, value = (factor.kind, factor.value) if factor else (None, None)
        understood = dataclasses.replace(
            understood,
            zip=value if kind == "zip" else None,
            email=value if kind == "email" else None,
            phone=value if kind == "phone" else None,
        )
    return understood


def _score(score: VoiceScore, entry: Entry, heard: Heard) -> dict[str, bool]:
    understood = _understood(entry, heard.text)
    results: dict[str, bool] = {}
    right = understood.intent == entry.intent
    score.slots["intent"].add(right)
    score.intent_by_noise[heard.noise].add(right)
    results["intent"] = right
    if not right:
        score.misses.append((heard.said, heard.text, "intent", entry.intent, understood.intent))
    for slot in SCORED[1:]:
        expected, got = getattr(entry, slot), getattr(understood, slot)
        if expected is None:
            if slot == "order_number" and got is not None:
                score.false_numbers += 1
                score.misses.append((heard.said, heard.text, slot, None, got))
            continue
        score.slots[slot].add(expected == got)
        results[slot] = expected == got
        if expected != got:
            score.misses.append((heard.said, heard.text, slot, expected, got))
    return results


def _second_factor_calls(score: VoiceScore, passed: dict[tuple[str, str], list[bool]]) -> None:
    """A genuine caller's two tries: every ordered pair of two different lines that give the
    same value in this voice, the second said after the first missed; passes if either does."""
    for results in passed.values():
        for i, first in enumerate(results):
            for j, second in enumerate(results):
                if i != j:
                    score.second_factor_calls.add(first or second)


def score_voices(
    heard_dir: str | Path = DEFAULT_HEARD, spoken: str | Path = SPOKEN_SET
) -> list[VoiceScore]:
    """Score every voice file in `heard_dir` against the labels of `spoken`."""
    labels = {entry.text: entry for entry in load_set(spoken)}
    scores = []
    for path in sorted(Path(heard_dir).glob("*.yaml")):
        heard_set = load_heard(path)
        score = VoiceScore(heard_set.voice, heard_set.split, heard_set.description)
        passed: dict[tuple[str, str], list[bool]] = defaultdict(list)
        seen = set()
        for heard in heard_set.heard:
            entry = labels.get(heard.said)
            if entry is None:
                continue
            seen.add(heard.said)
            results = _score(score, entry, heard)
            if entry.hints == "verification":
                for slot in ("zip", "email", "phone"):
                    if getattr(entry, slot) is not None:
                        passed[(slot, getattr(entry, slot))].append(results[slot])
        score.missing = len(set(labels) - seen)
        _second_factor_calls(score, passed)
        scores.append(score)
    order = {"test": 0, "heldout": 1}
    return sorted(scores, key=lambda s: (order.get(s.split, 2), s.voice))


def _total(tallies: Iterable[Tally]) -> Tally:
    """The tallies added up."""
    total = Tally()
    for tally in tallies:
        total.right += tally.right
        total.total += tally.total
    return total


def format_voices(scores: list[VoiceScore], *, verbose: bool = False) -> str:
    """Per voice, then the test voices together against `TARGETS`."""
    lines = [
        f"{'voice':<22} {'split':<7}"
        + "".join(f" {s.replace('_number', ''):>17}" for s in SCORED)
        + f" {'2nd factor in 2':>17}"
    ]
    for score in scores:
        cells = "".join(f" {score.slots[s]!s:>17}" for s in SCORED)
        lines.append(f"{score.voice:<22} {score.split:<7}{cells} {score.second_factor_calls!s:>17}")
    for split, name in (("test", "test voices"), ("heldout", "held-out voices")):
        group = [s for s in scores if s.split == split]
        if group:
            lines += ["", f"{name} together ({len(group)} voices):", *_together(group)]
    if any(s.missing for s in scores):
        lines.append("")
        lines += [f"  {s.voice}: {s.missing} spoken lines not heard" for s in scores if s.missing]
    if verbose:
        for score in scores:
            lines += ["", f"misses, {score.voice} ({score.split}): {len(score.misses)}"]
            for said, text, what, expected, got in score.misses:
                lines.append(f"  [{what}] {said!r} → {text!r}: expected {expected!r}, got {got!r}")
    return "\n".join(lines)


def _together(group: list[VoiceScore]) -> list[str]:
    """The voices of one split added up, against `TARGETS`."""
    lines = []
    for slot in SCORED:
        target = TARGETS.get(slot)
        total = _total(score.slots[slot] for score in group)
        mark = ""
        if target is not None:
            mark = f"   target {target:.0%}: " + ("met" if total.share >= target else "MISSED")
        lines.append(f"  {slot:<14} {total!s:>17}{mark}")
    calls = _total(score.second_factor_calls for score in group)
    lines.append(
        f"  {'2nd factor in 2':<14} {calls!s:>17}   target 97%: "
        + ("met" if calls.share >= 0.97 else "MISSED")
    )
    noises = sorted({noise for score in group for noise in score.intent_by_noise})
    by_noise = {
        n: _total(s.intent_by_noise[n] for s in group if n in s.intent_by_noise) for n in noises
    }
    lines.append(
        "  intent by noise: "
        + ", ".join(f"{noise} {tally.share:.1%}" for noise, tally in sorted(by_noise.items()))
    )
    wrong = sum(s.false_numbers for s in group)
    lines.append(f"  order numbers heard where none was said: {wrong}")
    return lines
