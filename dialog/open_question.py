"""The question between procedures: "What can I do for you?", or once something was done,
"Is there anything else I can help with?"; and any question asked again.

Which one the caller heard matters for what their answer means: a "no" to "anything else?"
is a goodbye, a "yes" asks what else. `OpenQuestion` keeps track and asks.
"""

from __future__ import annotations

from dialog.engine import Engine
from dialog.events import Event, Hints, Say
from dialog.slots import SlotContext

__all__ = ["OpenQuestion"]


class OpenQuestion:
    """Whether the caller has been served yet (`served`) and was last asked "anything
    else?" (`anything_else_asked`), and the questions themselves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.served = False
        self.anything_else_asked = False

    def ask(self) -> list[Event]:
        """No procedure runs any more: wait for a request when a flow asked its own question,
        else ask the open question, or "anything else?" once the caller was served."""
        engine = self.engine
        if engine.listening:
            self.anything_else_asked = False
            return self._hinted([])
        engine.listening = True
        if not self.served:  # nothing done yet (an apology, say): the open question
            self.anything_else_asked = False
            return self._hinted([Say(engine.render(engine.flows.conversation.open))])
        return self.anything_else()

    def anything_else(self) -> list[Event]:
        """ "Is there anything else I can help with?", a yes or a no expected."""
        self.anything_else_asked = True
        said = self.engine.render(self.engine.flows.conversation.anything_else)
        return [Say(said), Hints(slot="yes_no")]

    def hints(self) -> Hints | None:
        """At an open question: the caller's product names.

        Not the coupon codes: as hotwords at an open question they made tiny.en hear codes
        in ordinary sentences ("where is my package" came out as "WELCOME10"); they are hinted
        when a code is asked for.
        """
        ctx = SlotContext(today=self.engine.clock().date(), values=self.engine.slots)
        return Hints(vocabulary=ctx.products) if ctx.products else None

    def repeat(self, lead: str, *, short: bool = True) -> list[Event]:
        """Say `lead` and the question the caller is answering again."""
        engine = self.engine
        question = engine.question(short=short)
        if question:
            first = question[0]
            assert isinstance(first, Say)
            return [Say(f"{lead} {first.text}"), *question[1:]]
        conv = engine.flows.conversation
        again = conv.anything_else if self.anything_else_asked else conv.open
        return [Say(engine.render(f"{lead} {again}"))]

    def _hinted(self, events: list[Event]) -> list[Event]:
        hints = self.hints()
        return events if hints is None else [*events, hints]
