"""When an upset caller gets the escalation flow, on top of whatever runs.

`dialog.mood` says whether an utterance sounds upset; the policy sets how upset, and adds the
shop's phrases. The call's slots remember that the caller was upset (the flows' empathetic
wording reads it); the escalation flow itself is offered at most `MAX_ESCALATIONS` times,
then the caller keeps the empathetic wording and can still ask for a person.
"""

from __future__ import annotations

from dialog.engine import Engine
from dialog.mood import read_mood

__all__ = ["MAX_ESCALATIONS", "Escalation"]

MAX_ESCALATIONS = 2
"""How many times one call opens the escalation flow."""


class Escalation:
    """Whether the escalation flow opens when the flows next run (`pending`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pending = False
        self._count = 0

    def notice(self, text: str, *, phrases_only: bool = False) -> None:
        """Read the caller's mood in `text` (`phrases_only`: only the shop's escalation
        phrases count, not a sad-sounding sentence) and decide on the escalation flow."""
        self.pending = self._opens(text, phrases_only)

    def _opens(self, text: str, phrases_only: bool) -> bool:
        esc = self.engine.policy.escalation
        threshold = -1.01 if phrases_only else esc.sentiment_below
        mood = read_mood(text, threshold=threshold, phrases=esc.phrases)
        if not mood.upset:
            return False
        self.engine.slots["upset"] = True
        self.engine.slots["escalation_reason"] = mood.reason
        if self._count >= MAX_ESCALATIONS:
            return False
        self._count += 1
        return True

    def begin_if_pending(self) -> None:
        """Put the escalation flow on top of whatever runs, once, unless the call is ending
        or being handed over anyway."""
        if not self.pending:
            return
        self.pending = False
        engine = self.engine
        roles = engine.flows.conversation.roles
        if engine.finished or (
            engine.stack and engine.stack[0].flow.name in (roles.handoff, roles.goodbye)
        ):
            return
        engine.begin(engine.flows[roles.escalation], replace=False)
