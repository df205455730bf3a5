"""Conversation repair that every flow inherits: corrections, digressions and their return.

Rasa CALM's idea, for our flows: a correction, a change of mind, a question on the side and the
return to what was under way are declared once, here and in `conversation.yaml`, not in each
procedure. `revisions` finds what a correction changes; `Interruption` keeps a procedure a
caller stepped away from, so the agent can come back to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dialog.engine import Engine, Frame
from dialog.slots import SLOT_TYPES, hear

__all__ = ["REVISABLE", "Interruption", "Revision", "revisions"]

REVISABLE = frozenset(
    {"size", "date", "day", "choice", "street", "city", "zip", "coupon_code", "return_reason"}
)
"""Slot types a correction may change in passing. Not yes/no (a "no" is an answer, not a
correction of every yes/no slot), not order numbers (they start the procedure again), not free
text."""


@dataclass(frozen=True)
class Revision:
    """A slot a correction gives a new value, in the flow that holds it."""

    frame: Frame
    slot: str
    value: Any


def _parse(engine: Engine, frame: Frame, slot: str, text: str) -> Any:
    type_name = engine.flows.slot_types.get(slot, "text")
    slot_type = SLOT_TYPES[type_name]
    if slot_type.parse is None:
        return None
    ctx = engine.slot_context(frame.flow, slot)
    if type_name == "choice":
        ctx = replace(ctx, yes=None, no=None)  # "no" alone picks no option here
    return hear(slot_type, text, ctx)


def revisions(engine: Engine, text: str, *, new_values: bool) -> list[Revision]:
    """What `text` changes in the procedures under way: slots already answered (or passed)
    that it gives another value, most recent answer first. With `new_values`, slots not yet
    reached that it fills count too ("actually, a small": the size for later)."""
    waiting = engine.waiting
    asked = waiting.collect if waiting is not None else None
    found: list[tuple[int, Revision]] = []
    for depth, frame in enumerate(reversed(engine.stack)):
        names = dict.fromkeys([*frame.filled_at, *frame.flow.slots])
        for slot in names:
            if slot == asked or engine.flows.slot_types.get(slot) not in REVISABLE:
                continue
            current = engine.slots.get(slot)
            reached = slot in frame.filled_at
            if not reached and not new_values:
                continue
            value = _parse(engine, frame, slot, text)
            if value is None or value == current:
                continue
            rank = frame.filled_at.get(slot, -1) - 1000 * depth
            found.append((rank, Revision(frame, slot, value)))
    return [r for _rank, r in sorted(found, key=lambda p: -p[0])]


@dataclass
class Interruption:
    """A procedure the caller stepped away from (a question on the side, another request),
    with what it was about, to come back to once the other is done."""

    stack: list[Frame]
    slots: dict[str, Any]
    topic: str

    def restore(self, engine: Engine) -> None:
        """Put the procedure back, with the order and the slots it had."""
        names = {"order", "trigger_intent", "order_filter"}
        for frame in self.stack:
            names.update(frame.flow.slots)
        for name in names:
            if name in self.slots:
                engine.slots[name] = self.slots[name]
        engine.stack[:] = self.stack
        engine.listening = False
        engine.force_sync()
        top = engine.stack[-1]
        if top.waiting:
            top.reask = True
