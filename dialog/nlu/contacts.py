"""Contact details as callers say them: email addresses, phone numbers, ZIP codes.

Speech-to-text writes these in every form between spoken and typed: "maria dot lopez at
example dot com", "Maria.Lopez at example.com", "m a r i a dot lopez", "four one five, five
five five, zero one zero one", "(415) 555-0101", "nine four one one oh".
"""

from __future__ import annotations

import re

from dialog.nlu.numbers import digit_runs
from dialog.nlu.text import normalize
from integrations.phones import normalize_phone

__all__ = ["parse_email", "parse_phone", "parse_zip"]

# --- email -----------------------------------------------------------------------------------

_TYPED_EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+\-]*@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}")
_SPOKEN_SYMBOLS = {
    "dot": ".",
    "period": ".",
    "point": ".",
    "underscore": "_",
    "dash": "-",
    "hyphen": "-",
    "minus": "-",
    "plus": "+",
    "at": "@",
}
_TLDS = {"com", "net", "org", "edu", "gov", "io", "co", "us", "uk", "ca", "de", "info", "me", "biz"}
# Words that end the local part when reading backwards from "at": the caller's lead-in.
_LEAD_IN = {
    "my", "email", "emails", "mail", "address", "is", "its", "it", "thats", "that", "the",
    "sure", "yes", "yeah", "yep", "ok", "okay", "so", "um", "uh", "er", "and", "on", "file",
    "use", "try", "under", "me", "reach", "im", "this", "was", "should", "be", "account",
    "registered", "with", "send", "to", "please", "hi", "well", "oh",
}  # fmt: skip
_LETTER_RUN = re.compile(r"\b(?:[a-z]-)+[a-z]\b")  # "M-A-R-I-A" as Whisper writes a spelling


def _email_tokens(text: str) -> list[str]:
    """Words and the symbols an email can hold, with spellings and spoken symbols resolved."""
    text = re.sub(r"['’]", "", text.lower())
    text = _LETTER_RUN.sub(lambda m: m.group(0).replace("-", " "), text)
    text = re.sub(r"\bat sign\b|\bat symbol\b", " @ ", text)
    text = re.sub(r"([@])", r" \1 ", text)
    raw = re.findall(r"[a-z0-9][a-z0-9._%+\-]*|[@._\-]", text)
    out: list[str] = []
    for token in raw:
        token = token.strip(".-")
        if not token:
            continue
        if token in _SPOKEN_SYMBOLS:
            out.append(_SPOKEN_SYMBOLS[token])
        elif "." in token and not token.replace(".", "").isdigit():
            # "example.com" or "maria.lopez": keep the dots as separate symbols
            for i, part in enumerate(token.split(".")):
                if i:
                    out.append(".")
                if part:
                    out.append(part)
        else:
            out.append(token)
    return out


def _domain_at(tokens: list[str], i: int) -> tuple[str, int] | None:
    """A domain starting at `i` ("example . com"), ending in a known top-level domain."""
    labels: list[str] = []
    j = i
    while j < len(tokens) and re.fullmatch(r"[a-z0-9\-]+", tokens[j]):
        labels.append(tokens[j])
        if j + 1 < len(tokens) and tokens[j + 1] == ".":
            j += 2
            continue
        j += 1
        break
    if len(labels) < 2 or labels[-1] not in _TLDS:
        return None
    return ".".join(labels), j


def _local_part(tokens: list[str], at: int) -> str:
    """The part before "at", read backwards until the caller's lead-in words."""
    parts: list[str] = []
    i = at - 1
    while i >= 0:
        token = tokens[i]
        spelled = len(token) == 1 and token.isalpha()
        if spelled and token in "ai" and parts and len(parts[-1]) > 1 and parts[-1].isalnum():
            break  # "it's a maria..." or "I maria...": a word, not a spelled letter
        if not spelled and token in _LEAD_IN:
            break
        parts.append(token)
        i -= 1
    parts.reverse()
    while parts and parts[0] in "._-+":
        parts.pop(0)
    return "".join(_spelled(parts))


def _spelled(parts: list[str]) -> list[str]:
    """Resolve "double l" and number words ("eighty four" → "84") inside a local part."""
    out: list[str] = []
    for part in parts:
        if out and out[-1] == "double" and len(part) == 1:
            out[-1] = part * 2
        else:
            out.append(part)
    runs = digit_runs(out)
    for run in reversed(runs):
        out[run.start : run.end] = [run.digits]
    return out


def parse_email(text: str) -> str | None:
    """An email address typed, spoken or spelled ("maria dot lopez at example dot com")."""
    typed = _TYPED_EMAIL.search(re.sub(r"\s*([@])\s*", r"\1", text.lower()))
    if typed:
        return typed.group(0).rstrip(".")
    tokens = _email_tokens(text)
    for at in range(len(tokens) - 1, 0, -1):
        if tokens[at] != "@":
            continue
        domain = _domain_at(tokens, at + 1)
        if domain is None:
            continue
        local = _local_part(tokens, at)
        if local and re.fullmatch(r"[a-z0-9][a-z0-9._%+\-]*", local):
            return f"{local}@{domain[0]}"
    return None


# --- phone -----------------------------------------------------------------------------------


def parse_phone(text: str, default_region: str = "US") -> str | None:
    """A phone number in E.164 ("+14155550101"), typed or spoken digit by digit."""
    plus = "+" if re.search(r"\+\s*\d|\bplus\b", text.lower()) else ""
    runs = [run.digits for run in digit_runs(normalize(text).split())]
    # "area code four one five, then five five five, zero one zero five": one number in parts
    together = "".join(runs)
    if len(runs) > 1 and len(together) in (10, 11):
        runs.append(together)
    for digits in runs:
        if len(digits) < 7:
            continue
        for candidate in (plus + digits, digits):
            e164 = normalize_phone(candidate, default_region)
            if e164 is not None:
                return e164
    return None


# --- ZIP -------------------------------------------------------------------------------------


def parse_zip(text: str) -> str | None:
    """A five-digit US ZIP code ("94110", "nine four one one oh", "94110-1234" → "94110")."""
    typed = re.search(r"\b(\d{5})(?:-\d{4})?\b", text)
    if typed:
        return typed.group(1)
    for run in digit_runs(normalize(text).split()):
        if len(run.digits) == 5:
            return run.digits
    return None
