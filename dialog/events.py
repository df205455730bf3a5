"""What the agent tells the voice layer, and what the voice layer tells the agent about the call.

These dataclasses are the whole contract between `voice/` and `dialog/` (see docs/DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CallInfo", "EndCall", "Event", "Hints", "Say", "Transfer"]


@dataclass(frozen=True)
class CallInfo:
    """Who is on the line and why: Twilio's From/To, direction and, on outbound calls, purpose."""

    call_sid: str
    from_number: str
    to_number: str
    direction: Literal["inbound", "outbound"] = "inbound"
    purpose: str | None = None
    order_ref: str | None = None

    @property
    def caller_number(self) -> str:
        """The customer's number: From on inbound calls, To on outbound ones."""
        return self.from_number if self.direction == "inbound" else self.to_number


@dataclass(frozen=True)
class Say:
    """Speak this text. `barge_in=False` means the caller cannot interrupt it."""

    text: str
    barge_in: bool = True


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
