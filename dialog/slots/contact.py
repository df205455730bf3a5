"""Slot types for who the caller is and where: ZIP code, email address, phone number, the
second factor that proves who they are, and a street and city to deliver to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dialog import understanding
from dialog.nlu.numbers import digit_runs
from dialog.nlu.places import state_of_zip
from dialog.slots.base import SlotContext, SlotType, plain
from dialog.speech import say_digits

__all__ = ["TYPES", "Factor"]


@dataclass(frozen=True)
class Factor:
    """A second factor the caller gave: `kind` is "zip", "email" or "phone"."""

    kind: str
    value: str


def _zip(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_zip(text)


def _zip_keys(digits: str, ctx: SlotContext) -> str | None:
    digits = "".join(c for c in digits if c.isdigit())
    return digits if len(digits) == 5 else None


def _email(text: str, ctx: SlotContext) -> str | None:
    """An email address; a part said again replaces what it corrects ("… example dot org, no
    sorry, dot com" is example.com)."""
    part = understanding.corrected_part(text)
    if part is not None and understanding.parse_email(part) is None:
        head = text.lower()[: text.lower().rfind(part.split()[0])] if part.split() else ""
        first = part.split()[0] if part.split() else ""
        cut = head.rstrip(" ,.").lower()
        at = cut.rfind(first) if first in ("dot", "at") else -1
        if at > 0:
            fixed = understanding.parse_email(f"{cut[:at]} {part}")
            if fixed:
                return fixed
    return understanding.parse_email(text)


def _phone(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_phone(text)


def _phone_keys(digits: str, ctx: SlotContext) -> str | None:
    digits = "".join(c for c in digits if c.isdigit())
    if len(digits) == 10:
        return f"+1{digits}"
    return f"+{digits}" if len(digits) == 11 and digits.startswith("1") else None


def _factor(text: str, ctx: SlotContext) -> Factor | None:
    """The ZIP code, email address or phone number the caller gave to prove who they are:
    exactly as heard (never corrected toward anything), or None."""
    if "@" in text or re.search(r"\bat\b.*\bdot\b", text.lower()):
        email = _email(text, ctx)
        if email:
            return Factor("email", email)
    phone = understanding.parse_phone(text)
    if phone:
        return Factor("phone", phone)
    zip_code = understanding.parse_zip(text)
    if zip_code:
        return Factor("zip", zip_code)
    for run in digit_runs(understanding.normalize(text).split()):
        if len(run.digits) == 9:  # a ZIP+4 without its dash: "nine four one one zero one two…"
            return Factor("zip", f"{run.digits[:5]}-{run.digits[5:]}")
    email = understanding.parse_email(text)
    return Factor("email", email) if email else None


def _factor_keys(digits: str, ctx: SlotContext) -> Factor | None:
    """Typed while verifying: five digits are a ZIP code, nine a ZIP+4, ten or eleven (with
    the leading 1) the phone number on the order; anything else is not understood."""
    if (zip_code := _zip_keys(digits, ctx)) is not None:
        return Factor("zip", zip_code)
    typed = "".join(c for c in digits if c.isdigit())
    if len(typed) == 9:
        return Factor("zip", f"{typed[:5]}-{typed[5:]}")
    phone = _phone_keys(digits, ctx)
    return Factor("phone", phone) if phone else None


_STREET = re.compile(
    r"\b(\d+[A-Za-z]?(?: [A-Za-z][A-Za-z.']*){1,5}?(?: (?:street|st|avenue|ave|road|rd|lane|ln"
    r"|drive|dr|boulevard|blvd|way|court|ct|place|pl|terrace|circle|parkway|highway|square"
    r"|row|close))\b\.?(?: (?:apt|apartment|unit|suite|number|#) ?\w+)?)",
    re.IGNORECASE,
)


def _street(text: str, ctx: SlotContext) -> str | None:
    """A street line: a house number and a street name ("25 Elm Street"). After a correction
    ("no, it's 52 Elm Street") the street said last."""
    found = _STREET.findall(text)
    if found:
        street = found[-1].strip().rstrip(".")
        return street.title() if street.islower() else street
    clean = text.strip().rstrip(".")
    clean = re.sub(
        r"^(no,? )?(it'?s|its|the address is|my address is|new address is)\s+",
        "",
        clean,
        flags=re.I,
    )
    if re.search(r"\d", clean) and re.search(r"[A-Za-z]{2,}", clean):
        return clean
    return None


_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA",
    "kansas": "KS", "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS",
    "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
    "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI",
    "wyoming": "WY", "district of columbia": "DC",
}  # fmt: skip
_STATE_NAMES = {v: k for k, v in _STATES.items()}
# How callers shorten state names ("Cambridge, Mass").
_STATES.update({
    "mass": "MA", "calif": "CA", "cali": "CA", "penn": "PA", "fla": "FL", "minn": "MN",
    "mich": "MI", "wisc": "WI", "ariz": "AZ", "colo": "CO", "conn": "CT", "tenn": "TN",
    "okla": "OK", "ore": "OR", "nev": "NV", "ill": "IL", "wash": "WA", "jersey": "NJ",
})  # fmt: skip


def _city(text: str, ctx: SlotContext) -> tuple[str, str] | None:
    """A city and state ("Cambridge, Massachusetts", "Austin TX"), as (city, state code)."""
    street = _STREET.search(text)
    if street is not None:  # "12 Oak Avenue, Cambridge, MA 02140": what follows the street
        text = text[street.end() :]
    clean = re.sub(r"[^A-Za-z ,]+", " ", text).strip().strip(",")
    clean = re.sub(r"^(?:(?:it'?s|its|in|the city is|city is|and)\s+)+", "", clean, flags=re.I)
    lower = clean.lower()
    for name in sorted(_STATES, key=len, reverse=True):
        m = re.search(rf"\b{name}\b", lower)
        if m:
            before = [p for p in clean[: m.start()].split(",") if p.strip()]
            city = before[-1].strip() if before else ""
            return (city.title(), _STATES[name]) if city else None
    m = re.search(r"^(.*?)[ ,]+([A-Za-z]{2})$", clean)
    if m and m.group(2).upper() in _STATE_NAMES:
        return m.group(1).strip(" ,").title(), m.group(2).upper()
    # "Boston, 02116": no state said, the ZIP code (said now, or asked before) tells it.
    zip_code = understanding.parse_zip(text) or str(ctx.values.get("new_zip") or "")
    state = state_of_zip(zip_code) if zip_code else None
    words = [w for w in re.findall(r"[A-Za-z]+", clean.split(",")[0]) if w]
    if state and 1 <= len(words) <= 3 and not _NOT_A_CITY & {w.lower() for w in words}:
        return " ".join(words).title(), state
    return None


_NOT_A_CITY = {
    "yes", "yeah", "no", "nope", "okay", "ok", "sure", "right", "correct", "thanks", "please",
    "sorry", "um", "uh", "what", "hello", "street", "avenue", "road", "zip", "code", "the",
}  # fmt: skip


def _city_speak(value: Any, ctx: SlotContext) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]}, {_STATE_NAMES.get(value[1], value[1]).title()}"
    return plain(value, ctx)


def _zip_speak(value: Any, ctx: SlotContext) -> str:
    return say_digits(str(value)) if value else ""


TYPES: tuple[SlotType, ...] = (
    SlotType("zip", _zip, _zip_speak, _zip_keys, hint="zip", prompt="ZIP code:"),
    SlotType("email", _email, hint="email", prompt="Email address:"),
    SlotType("phone", _phone, keypad=_phone_keys, hint="phone", prompt="Phone number:"),
    SlotType("second_factor", _factor, keypad=_factor_keys, hint="verification"),
    SlotType("street", _street, hint="street", prompt="Street address:"),
    SlotType("city", _city, _city_speak, hint="city", prompt="City and state:"),
)
"""How to reach the caller and where they are: ZIP code, email, phone, address."""
