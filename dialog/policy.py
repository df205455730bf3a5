"""The shop's policy as data: return windows, final sale, refund approval line, courtesy coupon.

`dialog/policy.yaml` is the default; a merchant points `load_policy` at their own file. The
agent's actions read these numbers and nothing else, so a change of policy never touches
Python.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialog.wording import Line
from dialog.yaml_lines import YamlError, line_of, load_yaml

__all__ = [
    "DEFAULT_POLICY",
    "Policy",
    "PolicyError",
    "check_policy",
    "load_policy",
]

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")
"""The policy shipped with postvoice (the demo shop's, docs/DESIGN.md)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _cents(dollars: Decimal) -> int:
    return int((dollars * 100).to_integral_value())


class ReturnsPolicy(_Strict):
    """Which items can come back, and what is offered before a refund."""

    window_days: dict[str, int] = Field(default_factory=dict)
    default_window_days: int = Field(30, ge=0)
    final_sale_returnable: bool = False
    offer_before_refund: list[Literal["exchange", "store_credit"]] = Field(
        default_factory=lambda: ["exchange", "store_credit"]
    )
    store_credit_bonus_percent: int = Field(0, ge=0, le=100)
    label_by_sms: bool = True

    @field_validator("window_days")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for category, days in value.items():
            if days < 0:
                raise ValueError(f"window for {category!r} is negative")
        return {k.lower(): v for k, v in value.items()}

    def window_for(self, category: str) -> int:
        """Days from delivery an item of `category` may be returned."""
        return self.window_days.get(category.lower(), self.default_window_days)


class RefundsPolicy(_Strict):
    """When money goes back, and when a person must approve it first."""

    approval_line: Decimal = Field(Decimal("200"), ge=0)
    timing_business_days: tuple[int, int] = (5, 10)
    on_receipt: bool = True
    max_per_line: Literal[1] = 1
    method: Literal["original_payment"] = "original_payment"

    @property
    def approval_line_cents(self) -> int:
        """Refunds above this many cents need a person's approval."""
        return _cents(self.approval_line)


class DamagedPolicy(_Strict):
    """Items that arrive damaged. Above `photos_above` dollars (None: never) a replacement
    waits for photos of the damage, uploaded through a link texted to the customer."""

    report_within_days: int = Field(7, ge=0)
    resolutions: list[Literal["replacement", "refund"]] = Field(
        default_factory=lambda: ["replacement", "refund"]
    )
    open_carrier_claim: bool = True
    photos_above: Decimal | None = Field(Decimal("100"), ge=0)

    def needs_photos(self, cents: int) -> bool:
        """Whether a replacement of an item worth `cents` waits for photos first."""
        return self.photos_above is not None and cents > _cents(self.photos_above)


class LostPolicy(_Strict):
    """Parcels the carrier stopped scanning."""

    days_without_scan: int = Field(7, ge=1)
    open_carrier_claim: bool = True


class NotReceivedPolicy(_Strict):
    """Parcels marked delivered that the customer does not have."""

    wait_days: int = Field(2, ge=0)


class ReschedulePolicy(_Strict):
    """New delivery days after a failed attempt."""

    max_days_ahead: int = Field(7, ge=1)
    weekdays_only: bool = False


class VerificationPolicy(_Strict):
    """The second factor asked before money, an address or a shipment changes."""

    factors: list[Literal["zip", "email", "phone"]] = Field(
        default_factory=lambda: ["zip", "email", "phone"], min_length=1
    )
    max_attempts: int = Field(2, ge=1)


class CourtesyCoupon(_Strict):
    """A goodwill code offered, at most `max_per_call` times, when things went wrong."""

    code: str = ""
    description: Line = ""
    """What the code gives, said and texted; `{voice: ..., text: ...}` words it for each."""
    offer_on: list[Literal["upset", "lost", "damaged", "delayed"]] = Field(default_factory=list)
    max_per_call: int = Field(1, ge=0, le=1)

    @property
    def enabled(self) -> bool:
        """Whether there is a code to offer at all."""
        return bool(self.code) and self.max_per_call > 0


class EscalationPolicy(_Strict):
    """What counts as an upset caller."""

    sentiment_below: float = Field(-0.6, ge=-1, le=1)
    phrases: list[str] = Field(default_factory=list)
    max_misunderstandings: int = Field(2, ge=1)


class Policy(_Strict):
    """The whole policy file."""

    returns: ReturnsPolicy = Field(default_factory=ReturnsPolicy)
    refunds: RefundsPolicy = Field(default_factory=RefundsPolicy)
    damaged: DamagedPolicy = Field(default_factory=DamagedPolicy)
    lost: LostPolicy = Field(default_factory=LostPolicy)
    not_received: NotReceivedPolicy = Field(default_factory=NotReceivedPolicy)
    reschedule: ReschedulePolicy = Field(default_factory=ReschedulePolicy)
    verification: VerificationPolicy = Field(default_factory=VerificationPolicy)
    courtesy_coupon: CourtesyCoupon = Field(default_factory=CourtesyCoupon)
    escalation: EscalationPolicy = Field(default_factory=EscalationPolicy)


class PolicyError(ValueError):
    """A policy file with mistakes; `errors` are "file:line: message" strings."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _read(path: Path) -> tuple[Policy | None, list[str]]:
    try:
        data = load_yaml(path)
    except YamlError as exc:
        return None, [f"{path}:{exc.line}: {exc}"]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [f"{path}:1: a policy file is a mapping of sections"]
    try:
        return Policy.model_validate(data), []
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            errors.append(f"{path}:{line_of(data, err['loc'])}: {where}: {err['msg']}")
        return None, errors


def check_policy(path: Path | None = None) -> list[str]:
    """Every mistake in a policy file, as "file:line: message"; empty when it is sound."""
    return _read(path or DEFAULT_POLICY)[1]


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped one by default); raises `PolicyError`."""
    policy, errors = _read(path or DEFAULT_POLICY)
    if errors or policy is None:
        raise PolicyError(errors)
    return policy
