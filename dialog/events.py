"""What the agent tells the voice layer, and what the voice layer tells the agent about the call.

These dataclasses and the `CallAgent` protocol are the whole contract between `voice/` and
`dialog/` (see docs/DESIGN.md): every method voice calls on the agent is on `CallAgent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "FILLER_AFTER_S",
    "CallAgent",
    "CallInfo",
    "EndCall",
    "Event",
    "FaultLines",
    "Hints",
    "Say",
    "Transfer",
]


FILLER_AFTER_S = 0.3
"""How long a lookup may take before its step's "one moment" is said (seconds; 0: always say
it first). Most lookups answer in milliseconds, and a filler before them only delays the
answer by its own length; `POSTVOICE_FILLER_AFTER_MS` refers to this default."""


@dataclass(frozen=True)
class CallInfo:
    """Who is on the line and why: Twilio's From/To, direction, on outbound calls purpose, and
    the channel."""

    call_sid: str
    from_number: str
    to_number: str
    direction: Literal["inbound", "outbound"] = "inbound"
    purpose: str | None = None
    order_ref: str | None = None
    channel: Literal["voice", "typed", "sms", "whatsapp"] = "voice"
    """How the customer reaches us: a call ("voice"), `postvoice chat` ("typed"), or text
    messages ("sms", "whatsapp"); the dialog words its lines for a screen on the last two."""

    @property
    def on_screen(self) -> bool:
        """The replies are read, not heard: text messages."""
        return self.channel in ("sms", "whatsapp")

    @property
    def caller_number(self) -> str:
        """The customer's number: From on inbound calls, To on outbound ones."""
        return self.from_number if self.direction == "inbound" else self.to_number


@dataclass(frozen=True)
class Say:
    """Speak this text. `barge_in=False` means the caller cannot interrupt it; `filler` that
    it only fills a wait ("Let me look that up."): it answers nothing."""

    text: str
    barge_in: bool = True
    filler: bool = False


@dataclass(frozen=True)
class Hints:
    """What the agent expects next, so speech-to-text can be biased toward it.

    `slot` names the expected value ("order_number", "email", "zip", "yes_no", ...);
    `prompt` is text that primes the recogniser; `vocabulary` lists words likely to be said
    (product names, coupon codes); `expect_dtmf` says the keypad is a valid answer.
    """

    slot: str | None = None
    prompt: str | None = None
    expect_dtmf: bool = False
    vocabulary: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EndCall:
    """Hang up once everything said so far has been heard."""

    reason: str


@dataclass(frozen=True)
class Transfer:
    """Hand the caller to a person at `number`, with a summary for them."""

    number: str
    summary: str


Event = Say | Hints | EndCall | Transfer


@dataclass(frozen=True)
class FaultLines:
    """What the voice layer says on its own, when the agent cannot be asked: the apology
    rendered at start-up for when speech synthesis or the agent itself fails
    (`technical_problem`), the apology after one failed turn, and the request to say again
    speech that was recognised as nothing. Worded by the shop in the conversation file
    (`dialog.schema.Conversation.fault_lines`)."""

    technical_problem: str
    apology: str
    say_again: str


class CallAgent(Protocol):
    """What a call's voice layer asks of the dialog (`dialog.agent.Agent` implements it).

    Every method but `end` is an async generator of events, each yielded as soon as it is
    known; after `EndCall` or `Transfer` nothing more is said.
    """

    def start(self) -> AsyncIterator[Event]:
        """Greet the caller (on a call we placed, say why we call)."""
        ...

    def hear(self, text: str, confidence: float, *, guessed: bool = False) -> AsyncIterator[Event]:
        """React to one transcribed caller utterance; `guessed` when the number in it is the
        recogniser's guess, to be read back before it is used (`dialog.read_back`)."""
        ...

    def keypad(self, digits: str) -> AsyncIterator[Event]:
        """React to digits typed on the keypad (without the closing '#')."""
        ...

    def silence(self, seconds: float) -> AsyncIterator[Event]:
        """The caller said nothing for `seconds`: ask again, then say goodbye."""
        ...

    def offer_person(self, reason: str) -> AsyncIterator[Event]:
        """The caller could not be heard this once (`stt_failed`): apologise, offer a person."""
        ...

    def fail(self, reason: str, *, apologised: bool = False) -> AsyncIterator[Event]:
        """Voice cannot go on (`stt_failed`, `tts_failed`): apologise unless voice already
        has, and hand over to a person. Yielding no `Transfer` leaves the handover to voice."""
        ...

    def wrap_up(self, reason: str) -> AsyncIterator[Event]:
        """The call reached its maximum length (`max_duration`): say so and end it."""
        ...

    async def end(self, reason: str) -> str:
        """The call is over (hung up, ended, transferred): persist and return the summary."""
        ...
