"""Slot types: how a value is heard (from speech or the keypad), said back, and hinted.

A flow names a type for every slot it collects (`order_number`, `zip`, `yes_no`, `choice`...).
The type knows how to find the value in a transcript, which `Hints` help the transcriber
hear it, and how to say it for the ear when a template uses it. Types that are never asked
for (`money`, `date`, `order`...) only know how to be said.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from dialog import understanding
from dialog.nlu.numbers import digit_runs, repair_digits
from dialog.nlu.places import state_of_zip
from dialog.speech import (
    SIZE_NAMES,
    product_name,
    say_code,
    say_date,
    say_days,
    say_digits,
    say_items,
    say_list,
    say_money,
    say_number,
    say_order_number,
    say_reference,
    say_size,
)
from integrations.models import Order

__all__ = [
    "SLOT_TYPES",
    "Factor",
    "SlotContext",
    "SlotType",
    "hear",
    "named_item",
    "resolve_size",
    "stated",
]


@dataclass(frozen=True)
class Factor:
    """A second factor the caller gave: `kind` is "zip", "email" or "phone"."""

    kind: str
    value: str


@dataclass
class SlotContext:
    """What a slot type may consult: the day, the call's slots, and the slot's options."""

    today: date
    values: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Sequence[str]] = field(default_factory=dict)
    yes: str | None = None
    no: str | None = None
    yes_when: Sequence[str] = ()
    no_when: Sequence[str] = ()

    @property
    def products(self) -> tuple[str, ...]:
        """The caller's product names, as they would say them."""
        return tuple(self.values.get("product_names") or ())

    @property
    def codes(self) -> tuple[str, ...]:
        """The shop's active coupon codes."""
        return tuple(self.values.get("active_codes") or ())


Parser = Callable[[str, SlotContext], Any]


def _plain(value: Any, ctx: SlotContext) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class SlotType:
    """How one kind of value is heard, hinted and said.

    `parse` is None for values that are only ever set by actions. `hint` is the `Hints.slot`
    name and `prompt` primes the transcriber; a prompt never holds an example value (an
    example order number makes tiny.en drop digits).
    """

    name: str
    parse: Parser | None = None
    speak: Callable[[Any, SlotContext], str] = _plain
    keypad: Parser | None = None
    hint: str | None = None
    prompt: str | None = None
    vocabulary: Callable[[SlotContext], tuple[str, ...]] | None = None
    needs_options: bool = False

    @property
    def collectable(self) -> bool:
        """Whether a flow may `collect` a slot of this type."""
        return self.parse is not None


def hear(slot_type: SlotType, text: str, ctx: SlotContext) -> Any:
    """The value of `slot_type` in what the caller said; after a correction ("Thursday, no
    wait, Friday", "94101, sorry, 94110") the value said after it."""
    if slot_type.parse is None:
        return None
    part = understanding.corrected_part(text)
    if part is not None:
        value = slot_type.parse(part, ctx)
        if value is not None:
            return value
    # "Friday, um, no, Monday's better actually": two values, the later one meant.
    said = [
        value
        for piece in _RETHINK.split(text)
        if piece and piece.strip() and (value := slot_type.parse(piece, ctx)) is not None
    ]
    if len(said) >= 2 and said[-1] != said[0]:
        return said[-1]
    return slot_type.parse(text, ctx)


_RETHINK = re.compile(r"\bno\b|\bsorry\b|\bactually\b|\bwait\b|\bor rather\b", re.I)


# --- parsers -----------------------------------------------------------------------------------


def _text(text: str, ctx: SlotContext) -> str | None:
    clean = text.strip()
    return clean or None


def stated(text: str, ctx: SlotContext) -> bool | None:
    """What a statement says of a yes/no slot, by its declared phrases ("it came, but it's
    cracked": arrived, not in good condition); the last phrase said wins, a longer one over a
    shorter one inside it ("no damage" over "damage"). None when none is said."""
    clean = f" {understanding.normalize(text)} "
    found: list[tuple[int, int, bool]] = []
    for value, phrases in ((True, ctx.yes_when), (False, ctx.no_when)):
        for phrase in phrases:
            words = understanding.normalize(phrase)
            for m in re.finditer(rf"(?<= ){re.escape(words)}(?= )", clean):
                found.append((m.start(), m.end(), value))
    kept = [f for f in found if not any(o != f and o[0] <= f[0] and f[1] <= o[1] for o in found)]
    return max(kept)[2] if kept else None


def _yes_no(text: str, ctx: SlotContext) -> bool | None:
    said = stated(text, ctx)
    return said if said is not None else understanding.parse_yes_no(text)


def _yes_no_keys(digits: str, ctx: SlotContext) -> bool | None:
    return {"1": True, "2": False}.get(digits.strip())


def _order_number(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_order_number(text)


def _order_number_keys(digits: str, ctx: SlotContext) -> str | None:
    digits = "".join(c for c in digits if c.isdigit())
    return digits or None


def named_item(text: str, names: Sequence[str], *, positions: bool = True) -> int | None:
    """Which of `names` the caller named, also when speech-to-text split or joined a word
    ("ear buds" for "earbuds"); None when unclear. `positions` lets "the first one" count."""
    found = understanding.match_item(text, names, positions=positions)
    if found is not None:
        return found
    said = re.sub(r"[^a-z]", "", text.lower())
    hits = [
        i
        for i, name in enumerate(names)
        if any(w.rstrip("s") in said for w in re.findall(r"[a-z]{4,}", name.lower()))
    ]
    if not hits:
        hits = [i for i, name in enumerate(names) if _sounds_like(text, name)]
    return hits[0] if len(hits) == 1 else None


def _sounds_like(text: str, name: str) -> bool:
    """A product word heard slightly wrong ("ear bug" for "earbuds"): a word, or two said
    together, close to one of the name's longer words."""
    words = re.findall(r"[a-z]+", text.lower())
    heard = words + [a + b for a, b in itertools.pairwise(words)]
    for target in re.findall(r"[a-z]{5,}", name.lower()):
        target = target.rstrip("s")
        for word in heard:
            if abs(len(word) - len(target)) <= 2 and (
                difflib.SequenceMatcher(None, word, target).ratio() >= 0.8
            ):
                return True
    return False


def _choices(ctx: SlotContext) -> list[Order]:
    return list(ctx.values.get("order_choices") or [])


def _order_choice(text: str, ctx: SlotContext) -> Order | None:
    choices = _choices(ctx)
    number = understanding.parse_order_number(text)
    if number is not None:
        return next((o for o in choices if o.number == number), None)
    index = named_item(text, [o.lines[0].name if o.lines else "" for o in choices])
    return None if index is None else choices[index]


def _order_choice_keys(digits: str, ctx: SlotContext) -> Order | None:
    choices = _choices(ctx)
    digits = digits.strip()
    if digits.isdigit() and 1 <= int(digits) <= len(choices) and len(digits) == 1:
        return choices[int(digits) - 1]
    return next((o for o in choices if o.number == digits), None)


def _say_order_choices(value: Any, ctx: SlotContext) -> str:
    orders = value if isinstance(value, list) else [value]
    return say_list([f"the {say_items(o)}" for o in orders if isinstance(o, Order)], "or")


def _product_vocabulary(ctx: SlotContext) -> tuple[str, ...]:
    return ctx.products


def _choice_vocabulary(ctx: SlotContext) -> tuple[str, ...]:
    return tuple(product_name(o.lines[0].name) for o in _choices(ctx) if o.lines)


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


def _return_reason(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_return_reason(text)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


_NEGATORS = {"not", "no", "dont", "without", "instead"}


_ARTICLES = {"a", "an", "the", "my", "for", "any"}


def _negated(tokens: list[str], i: int) -> bool:
    """Whether the word at `i` is turned down ("not a refund", "no exchange")."""
    before = tokens[i - 1] if i >= 1 else ""
    if before in _ARTICLES:
        before = tokens[i - 2] if i >= 2 else ""
    return before in _NEGATORS


def _choice(text: str, ctx: SlotContext) -> str | None:
    """The option whose words were said last, skipping ones the caller turned down."""
    tokens = _tokens(text)
    best: tuple[int, str] | None = None
    for option, synonyms in ctx.options.items():
        for phrase in (option.replace("_", " "), *synonyms):
            words = _tokens(phrase)
            n = len(words)
            for i in range(len(tokens) - n + 1):
                if tokens[i : i + n] != words:
                    continue
                if _negated(tokens, i):
                    continue
                if best is None or i >= best[0]:
                    best = (i, option)
    if best is not None:
        return best[1]
    answer = understanding.parse_yes_no(text)
    if answer is None:
        return None
    return ctx.yes if answer else ctx.no


def _options_vocabulary(ctx: SlotContext) -> tuple[str, ...]:
    """How each option is usually said; as hotwords they keep tiny.en on the answer."""
    return tuple(
        words[0] if words else option.replace("_", " ") for option, words in ctx.options.items()
    )


def _choice_keys(digits: str, ctx: SlotContext) -> str | None:
    options = list(ctx.options)
    digits = digits.strip()
    if digits.isdigit() and 1 <= int(digits) <= len(options):
        return options[int(digits) - 1]
    return None


def _choice_speak(value: Any, ctx: SlotContext) -> str:
    return str(value).replace("_", " ") if value else ""


_SIZE_WORDS = sorted(((v, k) for k, v in SIZE_NAMES.items()), key=lambda p: -len(p[0]))
SIZE_NAMES_BY_WORDS = {v: k for k, v in SIZE_NAMES.items()}
_OWN_SIZE = re.compile(
    r"\b(my|instead of|from|than|current|currently|its a|its an|is a)( a| an| the)? $"
)
_LETTER_NAMES = {"ex": "X", "x": "X", "s": "S", "m": "M", "l": "L"}


def _absolute_size(text: str) -> str | None:
    """A size named outright ("large", "an L", "size 9"), not "too small" or "a bigger one"."""
    clean = understanding.relative_phrases_removed(text)
    said: list[tuple[int, str]] = []  # (where, size), the longest name at each place
    for words, _code in _SIZE_WORDS:
        for m in re.finditer(rf"\b{words}\b", clean):
            if not any(at <= m.start() < at + len(w) for at, w in said):
                said.append((m.start(), words))
    found = [(at, SIZE_NAMES_BY_WORDS[w]) for at, w in sorted(said)]
    if not found:
        for m in re.finditer(r"\b[a-z]+\b", clean):
            token = m.group()
            upper = _LETTER_NAMES.get(token, token).upper()
            if upper in SIZE_NAMES and (len(token) > 1 or token in ("s", "m", "l")):
                found.append((m.start(), upper))
    # "a large instead of my medium": the size they have is not the one they want.
    wanted = [code for at, code in found if not _OWN_SIZE.search(clean[max(0, at - 16) : at])]
    if wanted or found:
        return (wanted or found)[-1]
    if m := re.search(r"\bsize (\d{1,2})\b", clean):
        return m.group(1)
    return None


def resolve_size(steps: int, current: str | None, in_stock: Sequence[str]) -> str | None:
    """The size `steps` away from `current` that is in stock: one step means the nearest size
    that way, two exactly two sizes along. None when there is none (or no current size)."""
    if not current or current.upper() not in SIZE_NAMES:
        return None
    ladder = list(SIZE_NAMES)
    here = ladder.index(current.upper())
    stocked = {s.upper() for s in in_stock}
    if abs(steps) >= 2:
        target = here + steps
        return ladder[target] if 0 <= target < len(ladder) and ladder[target] in stocked else None
    way = range(here + 1, len(ladder)) if steps > 0 else range(here - 1, -1, -1)
    return next((ladder[i] for i in way if ladder[i] in stocked), None)


def _size(text: str, ctx: SlotContext) -> str | None:
    """A size ("large", "an L", "extra large", "size 9"), or one relative to the item's own
    ("too small" → the next size up in stock); only those on offer when known. Before the
    item's size is known a relative answer is kept as "+1"/"-1", for the return to resolve."""
    found = _absolute_size(text)
    offered = ctx.values.get("size_options")
    if found is None:
        steps = understanding.relative_size(text)
        if steps is None:
            return None
        current = ctx.values.get("current_size")
        if current is None or offered is None:
            return f"{steps:+d}"
        return resolve_size(steps, str(current), [*offered, str(current)])
    if offered and found not in offered:
        return None
    return found


def _sizes_speak(value: Any, ctx: SlotContext) -> str:
    sizes = value if isinstance(value, list | tuple) else [value]
    return say_list([say_size(str(s)) for s in sizes])


_COLOURS = re.compile(
    r"\b(black|white|grey|gray|blue|navy|red|green|yellow|orange|pink|purple|brown|beige"
    r"|cream|ivory|tan|olive|teal|maroon|burgundy|silver|gold|charcoal)\b"
)


def _colour(text: str, ctx: SlotContext) -> str | None:
    """A colour the caller asks for ("the same in blue")."""
    m = _COLOURS.search(understanding.normalize(text))
    return m.group(1) if m else None


def _rating(text: str, ctx: SlotContext) -> int | None:
    return understanding.parse_rating(text)


def _rating_keys(digits: str, ctx: SlotContext) -> int | None:
    digits = digits.strip()
    return int(digits) if digits in {"1", "2", "3", "4", "5"} else None


_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_NOT_CODE = {
    "the", "a", "its", "it", "is", "code", "coupon", "promo", "discount", "my", "i", "tried",
    "use", "using", "used", "called", "was", "um", "uh", "er", "with", "of", "for", "on",
    "and", "order", "number", "this", "that", "one", "says", "say", "said", "please",
}  # fmt: skip


def _code_shape(text: str) -> str | None:
    """Something said like a code, word then number ("summer fifteen" → SUMMER15), for codes
    the shop no longer advertises (an expired code is not among the active ones)."""
    words = [w for w in understanding.normalize(text).split() if w not in _NOT_CODE]
    out: list[str] = []
    number: int | None = None
    for word in words:
        value = int(word) if word.isdigit() else _NUMBER_WORDS.get(word)
        if value is None:
            if number is not None:
                break
            out.append(word.upper())
        elif number is not None and number % 10 == 0 and number >= 20 and value < 10:
            number += value
        elif number is None:
            number = value
        else:
            break
    if not out or number is None:
        return None
    return "".join(out[-1:]) + str(number)


def _coupon(text: str, ctx: SlotContext) -> str | None:
    return understanding.parse_coupon_code(text, ctx.codes) or _code_shape(text)


def _day(text: str, ctx: SlotContext) -> date | None:
    return understanding.parse_date(text, ctx.today)


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
    return _plain(value, ctx)


def _zip_speak(value: Any, ctx: SlotContext) -> str:
    return say_digits(str(value)) if value else ""


def _order_speak(value: Any, ctx: SlotContext) -> str:
    if isinstance(value, Order):
        return say_order_number(value.number)
    return say_order_number(str(value)) if value else ""


def _items_speak(value: Any, ctx: SlotContext) -> str:
    return say_items(value) if isinstance(value, Order) else _plain(value, ctx)


def _date_speak(value: Any, ctx: SlotContext) -> str:
    return say_date(value, ctx.today) if isinstance(value, date) else _plain(value, ctx)


def _day_speak(value: Any, ctx: SlotContext) -> str:
    """A day after "by", "until", "up to": "tomorrow", "Friday the 20th" (no "on")."""
    return _date_speak(value, ctx).removeprefix("on ")


def _money_speak(value: Any, ctx: SlotContext) -> str:
    return say_money(int(value)) if value is not None else ""


def _days_speak(value: Any, ctx: SlotContext) -> str:
    return say_days(int(value)) if value is not None else ""


def _number_speak(value: Any, ctx: SlotContext) -> str:
    return say_number(int(value)) if value is not None else ""


def _bool_speak(value: Any, ctx: SlotContext) -> str:
    return "yes" if value else "no"


def _code_speak(value: Any, ctx: SlotContext) -> str:
    return say_code(str(value)) if value else ""


def _payment_speak(value: Any, ctx: SlotContext) -> str:
    """ "your Visa ending in 4242" → "your Visa ending in four two four two"."""
    return re.sub(r"\d+", lambda m: say_digits(m.group()), str(value)) if value else ""


def _reference_speak(value: Any, ctx: SlotContext) -> str:
    return say_reference(str(value)) if value else ""


SLOT_TYPES: dict[str, SlotType] = {
    t.name: t
    for t in (
        SlotType("text", _text),
        SlotType("yes_no", _yes_no, _bool_speak, _yes_no_keys, hint="yes_no"),
        SlotType(
            "order_number",
            _order_number,
            _order_speak,
            _order_number_keys,
            hint="order_number",
            prompt="Order number:",
        ),
        SlotType(
            "order_choice",
            _order_choice,
            _say_order_choices,
            _order_choice_keys,
            hint="order_choice",
            vocabulary=_choice_vocabulary,
        ),
        SlotType("zip", _zip, _zip_speak, _zip_keys, hint="zip", prompt="ZIP code:"),
        SlotType("email", _email, hint="email", prompt="Email address:"),
        SlotType("phone", _phone, keypad=_phone_keys, hint="phone", prompt="Phone number:"),
        SlotType("second_factor", _factor, keypad=_factor_keys, hint="verification"),
        SlotType(
            "return_reason",
            _return_reason,
            _choice_speak,
            hint="return_reason",
            vocabulary=_product_vocabulary,
        ),
        SlotType(
            "choice",
            _choice,
            _choice_speak,
            _choice_keys,
            hint="choice",
            vocabulary=_options_vocabulary,
            needs_options=True,
        ),
        SlotType("size", _size, _sizes_speak, hint="size"),
        SlotType("colour", _colour),
        SlotType("rating", _rating, _number_speak, _rating_keys, hint="rating"),
        SlotType(
            "coupon_code",
            _coupon,
            _code_speak,
            hint="coupon_code",
            prompt="Coupon code:",
            vocabulary=lambda ctx: ctx.codes,
        ),
        SlotType("date", _day, _date_speak, hint="date"),
        SlotType("day", _day, _day_speak, hint="date"),
        SlotType("street", _street, hint="street", prompt="Street address:"),
        SlotType("city", _city, _city_speak, hint="city", prompt="City and state:"),
        # Set by actions only, and said in templates.
        SlotType("order", speak=_order_speak),
        SlotType("items", speak=_items_speak),
        SlotType("orders", speak=_say_order_choices),
        SlotType("sizes", speak=_sizes_speak),
        SlotType("money", speak=_money_speak),
        SlotType("days", speak=_days_speak),
        SlotType("number", speak=_number_speak),
        SlotType("bool", speak=_bool_speak),
        SlotType("code", speak=_code_speak),
        SlotType("reference", speak=_reference_speak),
        SlotType("payment", speak=_payment_speak),
        SlotType("value"),
    )
}
"""Every slot type a flow may name."""


def _digits_repaired(parse: Parser) -> Parser:
    """`parse`, and when it finds nothing, `parse` again with look-alike words read as the
    digits they stand for ("nine four one one year" → 94110): for questions that want digits.
    The value must still match what is on file exactly; this only reads what was said."""

    def parse_repaired(text: str, ctx: SlotContext) -> Any:
        value = parse(text, ctx)
        if value is None and (fixed := repair_digits(text)) != understanding.normalize(text):
            value = parse(fixed, ctx)
        return value

    return parse_repaired


for _name in ("order_number", "zip", "phone", "second_factor"):
    _type = SLOT_TYPES[_name]
    SLOT_TYPES[_name] = replace(_type, parse=_digits_repaired(_type.parse))  # type: ignore[arg-type]
