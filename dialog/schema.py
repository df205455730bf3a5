"""The shape of flow files, as pydantic models: the first layer of validation.

A flow file is one procedure (`flow: returns`): the intents that start it, the slots it
collects (each with a type from `dialog.slots`), and its steps. A step is exactly one of:

- `say: text` — speak; `{slot}` fields are said by the slot's type; `empathetic:` is said
  instead once the caller is upset
- `collect: slot` — ask (`ask`, `reprompt`), hear the value, retry up to `max_attempts`
  (keypad too when `keypad: true`), then `on_fail` (a step id, or `handoff`, the default).
  Skipped when the slot is already filled, unless `ask_always`. For a `choice` slot, `yes:`
  and `no:` name the option a plain yes or no means; `also:` lists slots the same answer may
  fill; `hint:` overrides the transcriber prompt (never an example value)
- `action: name` — run a registered Python action over the integrations; `say_first:` is
  said once its first service call has taken longer than `FILLER_AFTER_S` (0.3 s);
  `on_error:` is where to go if a service fails (default: apologise and hand over). An
  action that changes the world (a return, a refund, a new delivery day, an address, a claim)
  runs only after `confirm:` — one sentence saying what it
  will do, answered yes; a no goes to `on_decline` (default: "Okay, I won't do that." and the
  flow ends), a correction changes the slot and the sentence is asked again. An action
  reached straight from a confirmed one, with no question between, is covered by it.
- `branch: [{if: condition, then: step}, ..., {else: step}]`
- `set: {slot: value}`
- `call: flow` — run another flow, then carry on here
- `end: flow` (finish this flow; the agent asks "anything else?"), `end: listen` (finish
  and wait for a new request: the flow asked its own question) or `end: call` (hang up)
- `handoff: reason` — hand the caller to a person through the handoff flow

Any step may name its `id` and its `next` step (a step id, `end`, or a list of branches as
in `branch`). `conversation.yaml` holds the words of the conversation around the flows.
The graph checks (targets exist, steps are reachable, loops ask the caller) are in
`dialog.loader`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from dialog.events import FaultLines
from dialog.expressions import template_fields
from dialog.wording import Line, Worded

__all__ = [
    "STEP_KINDS",
    "ActionStep",
    "Branch",
    "BranchStep",
    "CallStep",
    "CollectStep",
    "ConversationFile",
    "EndStep",
    "FaqEntry",
    "FaqFile",
    "FlowFile",
    "HandoffStep",
    "SayStep",
    "SetStep",
    "SlotDecl",
    "Step",
]

STEP_KINDS = ("say", "collect", "action", "branch", "set", "call", "end", "handoff")
"""The keys that make a step what it is; a step has exactly one."""

END = "end"
"""The `next` target that finishes the flow."""

_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Branch(_Strict):
    """One arm of a branch: `if` a condition `then` a step, or the final `else`."""

    if_: str | None = Field(None, alias="if")
    then: str | None = None
    else_: str | None = Field(None, alias="else")
    line: int = Field(0, alias="__line__", exclude=True)

    @model_validator(mode="after")
    def _shape(self) -> Branch:
        if self.else_ is not None:
            if self.if_ is not None or self.then is not None:
                raise ValueError("an `else` arm takes no `if` or `then`")
        elif self.if_ is None or self.then is None:
            raise ValueError("a branch arm needs `if` and `then` (or is the final `else`)")
        return self

    @property
    def target(self) -> str:
        """The step this arm goes to."""
        return self.then if self.else_ is None else self.else_  # type: ignore[return-value]


Next = str | list[Branch] | None


class _Step(_Strict):
    id: str | None = Field(None, pattern=_ID)
    next: Next = None
    line: int = Field(0, alias="__line__", exclude=True)


class SayStep(_Step):
    """Speak a template; `empathetic` is said instead once the caller is upset."""

    say: Line = Field(min_length=1)
    empathetic: Line | None = None


class CollectStep(_Step):
    """Ask for a slot and wait for the caller.

    `yes`/`no` give a `choice` slot its value when the caller just says yes or no to this
    particular question ("Would you like an exchange?" → yes means "exchange"). `also` names
    slots the same answer may fill too ("yes, in a large" also gives the size).
    """

    collect: str = Field(pattern=_ID)
    ask: Line = Field(min_length=1)
    reprompt: Line | None = None
    empathetic: Line | None = None
    keypad: bool = False
    max_attempts: int = Field(2, ge=1, le=5)
    on_fail: str = "handoff"
    hint: str | None = None
    ask_always: bool = False
    yes: str | None = None
    no: str | None = None
    also: list[str] = Field(default_factory=list)


class ActionStep(_Step):
    """Run a registered action; `say_first` is spoken while it waits on a slow service; `confirm`
    is asked (yes or no) before it runs, and a no goes to `on_decline`."""

    action: str = Field(pattern=_ID)
    say_first: Line | None = None
    on_error: str | None = None
    confirm: Line | None = Field(None, min_length=1)
    on_decline: str | None = None


class BranchStep(_Step):
    """Go to the first arm whose condition holds; the last arm is `else`."""

    branch: list[Branch] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_next(self) -> BranchStep:
        if self.next is not None:
            raise ValueError("a branch step takes its targets from its arms, not `next`")
        return self


Scalar = str | int | float | bool | None


class SetStep(_Step):
    """Give slots literal values."""

    set: dict[str, Scalar] = Field(min_length=1)


class CallStep(_Step):
    """Run another flow to its end, then continue."""

    call: str = Field(pattern=_ID)


class EndStep(_Step):
    """Finish this flow (`end: flow`), finish and wait for a new request (`end: listen`), or
    hang up (`end: call`, with `reason`)."""

    end: Literal["flow", "call", "listen"] = "flow"
    reason: str = "caller_done"

    @field_validator("end", mode="before")
    @classmethod
    def _true_is_flow(cls, value: Any) -> Any:
        return "flow" if value is True else value


class HandoffStep(_Step):
    """Hand the caller to a person, with a reason for the record."""

    handoff: str = Field(min_length=1, pattern=_ID)


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kinds = [k for k in STEP_KINDS if k in value]
        return kinds[0] if len(kinds) == 1 else None
    return None


Step = Annotated[
    Annotated[SayStep, Tag("say")]
    | Annotated[CollectStep, Tag("collect")]
    | Annotated[ActionStep, Tag("action")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[SetStep, Tag("set")]
    | Annotated[CallStep, Tag("call")]
    | Annotated[EndStep, Tag("end")]
    | Annotated[HandoffStep, Tag("handoff")],
    Discriminator(
        _kind,
        custom_error_type="step_kind",
        custom_error_message=f"a step needs exactly one of: {', '.join(STEP_KINDS)}",
    ),
]


class SlotDecl(_Strict):
    """A slot a flow collects or sets: its type, options for `choice`, and where it is filled.

    A `choice` slot may also take a plain "yes" or "no" as one of its options (`yes:`, `no:`),
    for questions like "Would you like store credit, or a refund?".

    `from_utterance` fills it from the sentence that started the flow when it holds one
    ("I want to exchange it for a large"). Slots are cleared when their flow starts, unless
    `keep` is true. A yes/no slot's `yes_when` and `no_when` phrases let a statement answer
    it even when something else was asked ("it came, but it's cracked" says it arrived, and
    not in good condition).
    """

    type: str
    options: dict[str, list[str]] | None = None
    yes: str | None = None
    no: str | None = None
    from_utterance: bool = False
    keep: bool = False
    yes_when: list[str] = Field(default_factory=list)
    no_when: list[str] = Field(default_factory=list)
    line: int = Field(0, alias="__line__", exclude=True)


class FlowFile(_Strict):
    """One procedure. `unattended` flows run with no caller on the line (a parcel received at
    the warehouse), so nothing in them is asked or confirmed."""

    flow: str = Field(pattern=_ID)
    description: str = ""
    intents: list[str] = Field(default_factory=list)
    unattended: bool = False
    slots: dict[str, str | SlotDecl] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    line: int = Field(0, alias="__line__", exclude=True)

    def slot_decls(self) -> dict[str, SlotDecl]:
        """Slot declarations with the short form (`name: type`) expanded."""
        return {
            name: SlotDecl(type=decl) if isinstance(decl, str) else decl
            for name, decl in self.slots.items()
        }


class Roles(_Strict):
    """Which flow plays each part of the conversation."""

    start: str = "start"
    goodbye: str = "goodbye"
    handoff: str = "handoff"
    fallback: str = "fallback"
    escalation: str = "escalation"


_OUTSIDE_A_CALL = (
    "voicemail",
    "voicemail_text",
    "alert_failed_attempt",
    "alert_delayed",
    "alert_lost",
)
"""Conversation lines said or texted with no call's memory behind them."""


class Conversation(_Strict):
    """The words around the flows: asking again, silence, the keypad, slow lookups; and the
    messages outside a conversation (a voicemail, an exception alert)."""

    open: Line = "What can I do for you?"
    anything_else: Line = "Is there anything else I can help with?"
    anything_else_yes: Line = "Sure. What can I help you with?"
    didnt_catch: Line = Worded("Sorry, I didn't catch that.", "Sorry, I didn't understand that.")
    still_there: Line = "Are you still there?"
    silence_goodbye: Line = Worded(
        "I haven't heard anything, so I'll end the call now. Goodbye.",
        "I haven't heard back, so I'll close this conversation now. Goodbye.",
    )
    keypad_unexpected: Line = "Sorry, I wasn't expecting the keypad there."
    keypad_empty: Line = "I didn't get any digits."
    filler: Line = "Let me look that up."
    declined: Line = "Okay, I won't do that. Nothing has been changed."
    confirm_reprompt: Line = Worded(
        "Shall I go ahead? Please say yes or no.", "Shall I go ahead? Please reply yes or no."
    )
    cancelled: Line = "Okay, I've stopped that. Nothing has been changed."
    several: Line = "I can help with both."
    several_more: Line = "I can help with all of those."
    next_request: Line = "Now, {next_topic}."
    resume: Line = "Now, back to {resume_topic}."
    cannot_handle: Line = (
        "I'm sorry, I can't help with that here, but I can help with your orders, returns, "
        "refunds, coupons and deliveries."
    )
    changed: Line = "Okay."
    # At the open question, words that only hint at one request ("that is my order"): asked
    # about before anything is done (`dialog.nlu.intents.hinted_task`).
    guess_request: Line = (
        "Is this about {guess_topic}? If it's something else, just tell me what you need."
    )
    # A number only a second, digits-alone decode found (`guessed`): read back before use.
    read_back: Line = "I heard {heard_value}. Is that right?"
    read_back_wrong: Line = "Sorry about that."
    too_late_to_change: Line = (
        "That's already been done, so I can't change it myself. I'll pass it to our team."
    )
    unavailable: Line = "No problem, sorry to have caught you at a bad time. Goodbye."
    offer_declined: Line = "Okay."
    reintroduce: Line = "Hi, this is {shop}, calling about your order {order_number}."
    # When the voice layer fails or the call runs too long: not procedures, so they work
    # whatever flows a shop writes (these defaults), and a shop may reword them.
    hearing_trouble: Line = (
        "Sorry, I'm having trouble hearing you right now. "
        "Would you like me to connect you with a person?"
    )
    offer_taken: Line = "Okay, I'll connect you with a person now."
    cannot_hear: Line = (
        "I'm sorry, I still can't hear you properly, so I'll connect you with a person."
    )
    fault: Line = Worded(
        "I'm sorry, I'm having a technical problem, so I'll connect you with a person.",
        "I'm sorry, I'm having a technical problem, so I'm passing you to a person on our team.",
    )
    # Said by the voice layer on its own (`fault_lines`): the apology after a turn that failed,
    # and the request to say again what was heard as speech but recognised as nothing.
    apology: Line = "Sorry, something went wrong on my side."
    say_again: Line = Worded(
        "Sorry, I didn't catch that. Could you say it again?",
        "Sorry, I didn't understand that. Could you write it again?",
    )
    wrap_up: Line = Worded(
        "We've been talking for quite a while, so I need to end this call now.",
        "We've been at this for quite a while, so I need to close this conversation now.",
    )
    wrap_up_ticket: Line = (
        "I've passed everything we discussed to our team, and a person will follow up with you."
    )
    wrap_up_texted: Line = "I've texted you the ticket number."
    wrap_up_goodbye: Line = Worded(
        "Thank you for calling. Goodbye.", "Thanks for getting in touch. Goodbye."
    )
    hello_back: Line = "Hello, yes, I'm here."
    # "Wait, hold on", "one second, let me find it": the question stands, not counted a miss.
    hold_on: Line = "Sure, take your time."
    # "Uh-huh" at the open question: said again, not counted a miss.
    listening: Line = "I'm listening."
    system_down: Line = (
        "I'm sorry, I can't reach our order system right now, so I'll connect you with a person."
    )
    # Outside any conversation (`dialog.alerts`): the message left when a machine answers a
    # call we placed, the text sent instead, and the texts alerting of an order's exception.
    voicemail: Line = (
        "Hi, this is {shop}, calling about your recent order. "
        "We'll send you a text message. Thank you, goodbye."
    )
    voicemail_text: Line = (
        "{shop}: we called about your order {order_number}. "
        "We hope it arrived safely! Reply or call us if anything is wrong with it."
    )
    alert_failed_attempt: Line = (
        "{shop}: the carrier tried to deliver your order {order_number} but couldn't. "
        "Reply or call us to reschedule the delivery or change the address."
    )
    alert_delayed: Line = (
        "{shop}: your order {order_number} is running late. Reply or call us if you'd like to "
        "know more, change the delivery, or cancel."
    )
    alert_lost: Line = (
        "{shop}: your order {order_number} hasn't moved in a while and may be lost. Reply or "
        "call us and we'll send a replacement or a refund."
    )
    max_silences: int = Field(2, ge=1)
    roles: Roles = Field(default_factory=Roles)
    line: int = Field(0, alias="__line__", exclude=True)

    def fault_lines(self) -> FaultLines:
        """The lines the voice layer says without asking the agent (see `FaultLines`)."""
        return FaultLines(
            technical_problem=self.fault, apology=self.apology, say_again=self.say_again
        )

    @field_validator(*_OUTSIDE_A_CALL)
    @classmethod
    def _shop_and_order_only(cls, text: str) -> str:
        """No call's memory fills these lines, so they name nothing but the shop and the order."""
        wordings = [text.voice, text.text] if isinstance(text, Worded) else [text]
        used = {name for wording in wordings for name in template_fields(wording)}
        unknown = sorted(used - {"shop", "order_number"})
        if unknown:
            raise ValueError(
                f"{{{unknown[0]}}} is not known outside a call: use {{shop}} or {{order_number}}"
            )
        return text


class ConversationFile(_Strict):
    """`conversation.yaml`."""

    conversation: Conversation
    topics: dict[str, str] = Field(default_factory=dict)
    line: int = Field(0, alias="__line__", exclude=True)


class FaqEntry(_Strict):
    """One question the shop answers off-script.

    `when` lists phrases; the entry answers an utterance holding every word of one of them
    (in any order; a word ending in `*` matches any ending). `then` is what follows the
    answer: the call goes on (`continue`), a person is offered (`offer_person`, a yes hands
    over), or the call ends (`end_call`).
    """

    id: str = Field(pattern=_ID)
    when: list[str] = Field(min_length=1)
    answer: Line = Field(min_length=1)
    then: Literal["continue", "offer_person", "end_call"] = "continue"
    line: int = Field(0, alias="__line__", exclude=True)


class FaqFile(_Strict):
    """`faq.yaml`: the shop's answers to questions no procedure covers."""

    faq: list[FaqEntry] = Field(default_factory=list)
    line: int = Field(0, alias="__line__", exclude=True)
