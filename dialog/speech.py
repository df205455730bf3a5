"""Facts turned into words for the ear: numbers, money, dates, carriers and order status.

Everything returns text a speech synthesizer reads naturally and a caller understands on the
first hearing: "ten oh one" rather than "1001", "tomorrow" rather than a date, "FedEx"
rather than "fedex". No URL, address or personal detail is ever put into words here.

Inside `written()` the same functions write for a screen instead (a text message): "#1001",
"$24.99", "Fri 12 Dec", "SAVE20", "RMA-50013". The agent turns it on for the turns of a
conversation held by text (`CallInfo.on_screen`); a context variable, because the phrases are
made deep inside status sentences and slot types, and one conversation's turn never sees
another's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

from integrations.clock import aware
from integrations.models import Order, Shipment, ShipmentStatus, TrackingEvent

__all__ = [
    "SIZE_NAMES",
    "StatusKind",
    "StatusReport",
    "describe_order",
    "describe_stage",
    "items_are_plural",
    "product_name",
    "say_age",
    "say_carrier",
    "say_code",
    "say_date",
    "say_days",
    "say_digits",
    "say_items",
    "say_list",
    "say_money",
    "say_number",
    "say_order_number",
    "say_reference",
    "say_since",
    "say_size",
    "size_order",
    "writing",
    "written",
]

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_DIGITS = ("oh", *_ONES[1:10])
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


_WRITTEN: ContextVar[bool] = ContextVar("postvoice_written", default=False)


@contextmanager
def written(on: bool = True) -> Iterator[None]:
    """Within it, facts are written for a screen rather than said (when `on`)."""
    token = _WRITTEN.set(on)
    try:
        yield
    finally:
        _WRITTEN.reset(token)


def writing() -> bool:
    """Whether facts are written for a screen just now (see `written`)."""
    return _WRITTEN.get()


# --- numbers and money -----------------------------------------------------------------------


def say_number(n: int) -> str:
    """A whole number in words: 48 → "forty-eight", 1001 → "one thousand one"."""
    if writing():
        return str(n)
    if n < 0:
        return f"minus {say_number(-n)}"
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {say_number(rest)}" if rest else "")
    for size, word in _SCALES:
        if n >= size:
            count, rest = divmod(n, size)
            return f"{say_number(count)} {word}" + (f" {say_number(rest)}" if rest else "")
    raise AssertionError("unreachable")


def say_order_number(number: str) -> str:
    """An order number the way people say it: "1001" → "ten oh one", "1012" → "ten twelve".

    Four-digit numbers are said in pairs, like years; anything else digit by digit. Written:
    "#1001".
    """
    if writing():
        return f"#{number.lstrip('#')}"
    if len(number) == 4 and number.isdigit() and number[0] != "0":
        high, low = int(number[:2]), number[2:]
        if low == "00" and high % 10 == 0:
            return f"{_ONES[high // 10]} thousand"
        if low == "00":
            return f"{say_number(high)} hundred"
        if low[0] == "0":
            return f"{say_number(high)} oh {_ONES[int(low[1])]}"
        return f"{say_number(high)} {say_number(int(low))}"
    return " ".join(_DIGITS[int(c)] if c.isdigit() else c for c in number)


def say_money(cents: int) -> str:
    """An amount in dollars: 4800 → "forty-eight dollars", 4850 → "… and fifty cents".
    Written as the shop's texts write it: "$48.00", "$48.50"."""
    if writing():
        return f"{'-' if cents < 0 else ''}${abs(cents) / 100:,.2f}"
    sign = "minus " if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    parts = []
    if dollars or not rest:
        parts.append(f"{say_number(dollars)} dollar{'' if dollars == 1 else 's'}")
    if rest:
        parts.append(f"{say_number(rest)} cent{'' if rest == 1 else 's'}")
    return sign + " and ".join(parts)


def say_days(n: int) -> str:
    """A number of days: 9 → "nine days", 1 → "one day"."""
    return f"{say_number(n)} day{'' if n == 1 else 's'}"


def say_age(age: timedelta) -> str:
    """How long ago, roughly, as a person says it: "twenty minutes", "an hour", "two days"."""
    minutes = int(age.total_seconds() // 60)
    if minutes < 2:
        return "a minute"
    if minutes < 60:
        rounded = minutes if minutes < 10 else 5 * round(minutes / 5)
        return f"{say_number(rounded)} minutes"
    hours = round(minutes / 60)
    if hours < 24:
        return "an hour" if hours == 1 else f"{say_number(hours)} hours"
    days = round(hours / 24)
    return "a day" if days == 1 else say_days(days)


# --- dates -----------------------------------------------------------------------------------


def _ordinal(day: int) -> str:
    """24 → "24th"; synthesizers read these as "twenty-fourth"."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _day_name(d: date, today: date) -> str:
    """ "Tuesday the 24th", with the month when the day alone would be ambiguous."""
    weekday = _WEEKDAYS[d.weekday()]
    if abs((d - today).days) <= 6 or (d.year, d.month) == (today.year, today.month):
        return f"{weekday} the {_ordinal(d.day)}"
    return f"{weekday}, {_MONTHS[d.month - 1]} {_ordinal(d.day)}"


def _written_day(d: date) -> str:
    """ "Fri 12 Dec"."""
    return f"{_WEEKDAYS[d.weekday()][:3]} {d.day} {_MONTHS[d.month - 1][:3]}"


def say_date(d: date, today: date) -> str:
    """When something happens or happened: "tomorrow", "yesterday", "on Tuesday the 24th".
    Written: "today", "tomorrow (Wed 24 Dec)", "on Tue 23 Dec"."""
    if writing():
        days = (d - today).days
        if days == 0:
            return "today"
        word = {1: "tomorrow", -1: "yesterday"}.get(days)
        return f"{word} ({_written_day(d)})" if word else f"on {_written_day(d)}"
    relative = {0: "today", 1: "tomorrow", -1: "yesterday"}.get((d - today).days)
    return relative or f"on {_day_name(d, today)}"


def say_since(d: date, today: date) -> str:
    """The start of a state, to follow "since": "yesterday", "Friday", "Friday the 12th"."""
    days_ago = (today - d).days
    if days_ago <= 0:
        return "earlier today"
    if days_ago == 1:
        return "yesterday"
    if writing():
        return _written_day(d)
    if days_ago <= 6:
        return _WEEKDAYS[d.weekday()]
    return _day_name(d, today)


# --- codes, references, sizes, lists ------------------------------------------------------

SIZE_NAMES = {
    "XXS": "extra extra small",
    "XS": "extra small",
    "S": "small",
    "M": "medium",
    "L": "large",
    "XL": "extra large",
    "XXL": "extra extra large",
}
"""Clothing sizes as they are said."""


def size_order(size: str) -> tuple[int, str]:
    """Sort key putting sizes in the order of a size chart: S before M before L."""
    order = list(SIZE_NAMES)
    upper = size.upper()
    if upper in SIZE_NAMES:
        return (order.index(upper), "")
    return (len(order) + (int(size) if size.isdigit() else 0), size)


def say_size(size: str) -> str:
    """A clothing size for the ear: "M" → "medium", "42" → "forty-two". Written: "M"."""
    if writing():
        return size.upper() if size.upper() in SIZE_NAMES else size
    if size.upper() in SIZE_NAMES:
        return SIZE_NAMES[size.upper()]
    return say_number(int(size)) if size.isdigit() else size


def say_list(items: Sequence[str], joiner: str = "and") -> str:
    """ "a", "a and b", "a, b, and c"."""
    items = [i for i in items if i]
    if len(items) <= 2:
        return f" {joiner} ".join(items)
    return ", ".join(items[:-1]) + f", {joiner} {items[-1]}"


def _spell(chunk: str) -> str:
    return " ".join(chunk.upper())


def say_code(code: str) -> str:
    """A coupon code as people say it: "SAVE20" → "save twenty", "VIP50" → "V I P fifty".
    Written as the shop spells it."""
    if writing():
        return code.upper()
    parts = re.findall(r"[A-Za-z]+|\d+", code)
    words = []
    for part in parts:
        if part.isdigit():
            words.append(say_number(int(part)) if len(part) <= 3 else say_digits(part))
        elif len(part) >= 4 and re.search(r"[aeiouyAEIOUY]", part):
            words.append(part.lower())
        else:
            words.append(_spell(part))
    return " ".join(words)


def say_digits(number: str) -> str:
    """Digits one by one, as read off a card or a ticket: "4242" → "four two four two"."""
    if writing():
        return "".join(c for c in number if c.isdigit())
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    return " ".join(names[int(c)] for c in number if c.isdigit())


def say_reference(ref: str) -> str:
    """An RMA or ticket number read out: "RMA-50013" → "R M A, five zero zero one three"."""
    if writing():
        return ref
    parts = re.findall(r"[A-Za-z]+|\d+", ref)
    said = [_spell(p) if not p.isdigit() else say_digits(p) for p in parts]
    return ", ".join(said)


# --- carriers and products -------------------------------------------------------------------

_CARRIERS = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "dhlexpress": "DHL Express",
    "ontrac": "OnTrac",
    "lasership": "LaserShip",
    "amazon": "Amazon",
    "amazonlogistics": "Amazon",
    "canadapost": "Canada Post",
    "royalmail": "Royal Mail",
    "australiapost": "Australia Post",
    "purolator": "Purolator",
    "dpd": "DPD",
    "gls": "GLS",
}


def say_carrier(carrier: str) -> str:
    """A carrier's name as people say it: "fedex" → "FedEx", "canada_post" → "Canada Post"."""
    key = "".join(c for c in carrier.lower() if c.isalnum())
    return _CARRIERS.get(key, carrier.replace("_", " ").strip())


def _word_case(word: str) -> str:
    """Lower-case an ordinary word; keep codes, sizes and brand spellings ("iPhone", "USB", "M")."""
    letters = [c for c in word if c.isalpha()]
    keep = (
        any(c.isdigit() for c in word) or len(letters) == 1 or any(c.isupper() for c in letters[1:])
    )
    return word if keep or not letters else word.lower()


def product_name(name: str) -> str:
    """An item name as said mid-sentence: "Linen shirt" → "linen shirt", "AirPods" stays."""
    return " ".join(_word_case(w) for w in name.split())


def _plural(name: str) -> str:
    """Naive English plural of a product name's last word."""
    if _looks_plural(name):
        return name
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in set("aeiou"):
        return name[:-1] + "ies"
    return name + "s"


def _looks_plural(name: str) -> bool:
    """Whether a product name is grammatically plural ("earbuds", "running shoes")."""
    last = name.split()[-1].lower() if name.split() else ""
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


@dataclass(frozen=True)
class _Items:
    """What an order holds, as a noun phrase, and whether it takes a plural verb."""

    text: str
    plural: bool


def _items(order: Order) -> _Items:
    if not order.lines:
        return _Items("order", plural=False)
    first = order.lines[0]
    name = product_name(first.name)
    if first.quantity > 1:
        text, plural = f"{say_number(first.quantity)} {_plural(name)}", True
    else:
        text, plural = name, _looks_plural(name)
    others = sum(line.quantity for line in order.lines[1:])
    if others:
        text += f" and {say_number(others)} other item{'' if others == 1 else 's'}"
        plural = True
    return _Items(text, plural)


def say_items(order: Order) -> str:
    """What an order holds: "linen shirt", "linen shirt and one other item"."""
    return _items(order).text


def items_are_plural(order: Order) -> bool:
    """Whether what an order holds takes a plural verb ("your earbuds were delivered")."""
    return _items(order).plural


# --- order status ----------------------------------------------------------------------------


class StatusKind(StrEnum):
    """The situation an order is in, as the dialog needs to tell them apart."""

    NOT_SHIPPED = "not_shipped"
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    DELAYED = "delayed"
    LOST = "lost"
    PROBLEM = "problem"
    NO_TRACKING = "no_tracking"
    RETURNED = "returned"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class StatusReport:
    """What to tell the caller about one order, and the kind of situation it describes."""

    kind: StatusKind
    text: str
    days_without_scan: int | None = None


@dataclass(frozen=True)
class _Speaker:
    """Everything the status sentences need, with verb forms agreeing with the items."""

    items: _Items
    today: date
    tz: tzinfo
    carrier: str

    @property
    def subject(self) -> str:
        return f"Your {self.items.text}"

    @property
    def object(self) -> str:
        return f"your {self.items.text}"

    def verb(self, singular: str, plural: str) -> str:
        return plural if self.items.plural else singular

    @property
    def it(self) -> str:
        return self.verb("it", "them")

    @property
    def its(self) -> str:
        return self.verb("it's", "they're")

    def day(self, at: datetime) -> date:
        return _local(at, self.tz).date()

    def when(self, at: datetime | date) -> str:
        return say_date(at if not isinstance(at, datetime) else self.day(at), self.today)


def _local(at: datetime, tz: tzinfo) -> datetime:
    return aware(at).astimezone(tz)


def _clause(detail: str) -> str:
    """A carrier's detail line made fit to sit inside a sentence ("Held at customs." → "held …")."""
    detail = detail.strip().rstrip(".")
    if detail[:1].isupper() and detail[1:2].islower():
        detail = detail[0].lower() + detail[1:]
    return detail


def _is_participle(clause: str) -> bool:
    """Whether "it has been <clause>" reads well ("held at customs", "delayed by weather")."""
    first = clause.split()[0] if clause.split() else ""
    return first.endswith("ed") or first in {"held", "stuck", "kept", "waiting", "caught"}


def _latest(shipment: Shipment, status: ShipmentStatus) -> TrackingEvent | None:
    scans = [e for e in shipment.events if e.status == status]
    return max(scans, key=lambda e: e.at) if scans else None


def _delayed_since(shipment: Shipment) -> datetime | None:
    """When the current run of "delayed" scans began."""
    since = None
    for scan in sorted(shipment.events, key=lambda e: e.at, reverse=True):
        if scan.status != ShipmentStatus.DELAYED:
            break
        since = scan.at
    return since


def _delivered(order: Order, shipment: Shipment | None, s: _Speaker) -> StatusReport | None:
    at = order.delivered_at
    if at is None and shipment is not None and shipment.status == ShipmentStatus.DELIVERED:
        scan = _latest(shipment, ShipmentStatus.DELIVERED) or shipment.last_scan
        at = scan.at if scan else None
        if at is None:
            return StatusReport(
                StatusKind.DELIVERED, f"{s.subject} {s.verb('has', 'have')} been delivered."
            )
    if at is None:
        return None
    text = f"{s.subject} {s.verb('was', 'were')} delivered {s.when(at)}."
    return StatusReport(StatusKind.DELIVERED, text)


def _lost(
    order: Order, shipment: Shipment, s: _Speaker, now: datetime, after: int
) -> StatusReport | None:
    """A shipment the carrier has not scanned for `after` days or more."""
    last = shipment.last_scan
    seen = last.at if last else order.shipped_at
    if seen is None:
        return None
    days = (aware(now) - aware(seen)).days
    if days < after:
        return None
    shipped = order.shipped_at or (min(e.at for e in shipment.events) if shipment.events else None)
    on = f" {s.when(shipped)}" if shipped else ""
    text = (
        f"{s.subject} shipped with {s.carrier}{on}, but the carrier hasn't scanned {s.it} "
        f"for {say_days(days)}. That usually means {s.its} lost."
    )
    return StatusReport(StatusKind.LOST, text, days_without_scan=days)


def _in_transit(shipment: Shipment, s: _Speaker) -> StatusReport:
    eta = shipment.eta
    if eta is not None and eta >= s.today:
        text = f"{s.subject} shipped with {s.carrier} and should arrive {say_date(eta, s.today)}."
        return StatusReport(StatusKind.IN_TRANSIT, text)
    if eta is not None:
        text = (
            f"{s.subject} shipped with {s.carrier} and {s.verb('was', 'were')} due "
            f"{say_date(eta, s.today)}, so {s.its} running late."
        )
    else:
        text = f"{s.subject} shipped with {s.carrier} and {s.verb('is', 'are')} on the way."
    last = shipment.last_scan
    if last is not None:
        where = f" in {last.location}" if last.location else ""
        text += f" {s.carrier} last scanned {s.it}{where} {s.when(last.at)}."
    return StatusReport(StatusKind.IN_TRANSIT, text)


def _failed_attempt(shipment: Shipment, s: _Speaker) -> StatusReport:
    scan = _latest(shipment, ShipmentStatus.FAILED_ATTEMPT) or shipment.last_scan
    when = f" {s.when(scan.at)}" if scan else ""
    detail = shipment.detail.lower()
    if any(k in detail for k in ("sign", "available", "nobody", "no one", "not home", "answer")):
        why = f"nobody was available to sign for {s.it}"
    else:
        why = "the delivery didn't go through"
    text = f"{s.carrier} tried to deliver {s.object}{when}, but {why}."
    if shipment.eta is not None and shipment.eta >= s.today:
        text += f" {s.carrier} will try again {say_date(shipment.eta, s.today)}."
    else:
        text += (
            f" {s.carrier} usually tries again on the next business day, and the delivery "
            "can be rescheduled."
        )
    return StatusReport(StatusKind.FAILED_ATTEMPT, text)


def _delayed(shipment: Shipment, s: _Speaker) -> StatusReport:
    detail = _clause(shipment.detail)
    since_at = _delayed_since(shipment)
    since = f" since {say_since(s.day(since_at), s.today)}" if since_at else ""
    is_ = s.verb("is", "are")
    if detail and _is_participle(detail):
        text = (
            f"{s.subject} {is_} delayed: {s.carrier} says {s.it} "
            f"{s.verb('has', 'have')} been {detail}{since}."
        )
    elif detail:
        text = f"{s.subject} {is_} delayed. {s.carrier} says: {detail}."
    else:
        text = f"{s.subject} {is_} delayed{since}."
    if shipment.eta is not None and shipment.eta >= s.today:
        text += f" {s.carrier} now expects to deliver {s.it} {say_date(shipment.eta, s.today)}."
    return StatusReport(StatusKind.DELAYED, text)


def _problem(shipment: Shipment, s: _Speaker) -> StatusReport:
    detail = _clause(shipment.detail)
    tail = f": {detail}." if detail else "."
    if shipment.status == ShipmentStatus.RETURN_TO_SENDER:
        text = f"{s.carrier} is sending {s.object} back to us{tail}"
    else:
        text = f"{s.carrier} reports a problem with {s.object}{tail}"
    return StatusReport(StatusKind.PROBLEM, text)


def _closed(order: Order, s: _Speaker) -> StatusReport | None:
    """Orders that are over: cancelled, refunded, returned."""
    if order.fulfillment == "cancelled":
        return StatusReport(StatusKind.CANCELLED, f"The order for {s.object} was cancelled.")
    if order.fulfillment == "refunded":
        return StatusReport(StatusKind.REFUNDED, f"The order for {s.object} has been refunded.")
    if order.fulfillment == "returned":
        text = f"{s.subject} {s.verb('is', 'are')} marked as returned."
        return StatusReport(StatusKind.RETURNED, text)
    return None


_MOVING = (ShipmentStatus.PRE_TRANSIT, ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY)


def _shipped(
    order: Order, shipment: Shipment | None, s: _Speaker, now: datetime, after: int
) -> StatusReport:
    """An order that left the warehouse and is not delivered yet."""
    status = shipment.status if shipment is not None else ShipmentStatus.UNKNOWN
    if shipment is None or status == ShipmentStatus.UNKNOWN:
        on = f" {s.when(order.shipped_at)}" if order.shipped_at else ""
        text = (
            f"{s.subject} shipped with {s.carrier}{on}, but I can't get the latest tracking "
            f"from {s.carrier} right now."
        )
        return StatusReport(StatusKind.NO_TRACKING, text)
    if status in _MOVING and (lost := _lost(order, shipment, s, now, after)):
        return lost
    if status == ShipmentStatus.OUT_FOR_DELIVERY:
        text = f"{s.subject} {s.verb('is', 'are')} out for delivery with {s.carrier} today."
        return StatusReport(StatusKind.OUT_FOR_DELIVERY, text)
    if status == ShipmentStatus.PRE_TRANSIT:
        text = f"{s.subject} {s.verb('is', 'are')} packed, but {s.carrier} hasn't picked "
        text += f"{s.it} up yet."
        return StatusReport(StatusKind.PRE_TRANSIT, text)
    handlers = {
        ShipmentStatus.FAILED_ATTEMPT: _failed_attempt,
        ShipmentStatus.DELAYED: _delayed,
        ShipmentStatus.EXCEPTION: _problem,
        ShipmentStatus.RETURN_TO_SENDER: _problem,
    }
    return handlers.get(status, _in_transit)(shipment, s)


_STAGES = {
    StatusKind.NOT_SHIPPED: "prepared",
    StatusKind.PRE_TRANSIT: "prepared",
    StatusKind.IN_TRANSIT: "moving",
    StatusKind.NO_TRACKING: "moving",
    StatusKind.OUT_FOR_DELIVERY: "moving",
    StatusKind.DELIVERED: "delivered",
    StatusKind.FAILED_ATTEMPT: "delayed",
    StatusKind.DELAYED: "delayed",
    StatusKind.LOST: "delayed",
    StatusKind.PROBLEM: "delayed",
}


def describe_stage(
    order: Order, kind: StatusKind, shipment: Shipment | None, now: datetime, *, tz: tzinfo = UTC
) -> str:
    """What anyone may hear of an order before they are identified: that it exists, its stage
    (being prepared, on its way, delayed, delivered) and the delivery day; never what is in it,
    who carries it or what it cost."""
    today = _local(now, tz).date()
    said = f"Order {say_order_number(order.number)}"
    eta = shipment.eta if shipment is not None and shipment.eta is not None else None
    eta = eta if eta is not None and eta >= today else None
    stage = _STAGES.get(kind)
    if stage == "prepared":
        return f"{said} is being prepared and hasn't shipped yet."
    if stage == "moving":
        if kind == StatusKind.OUT_FOR_DELIVERY:
            return f"{said} is out for delivery and should arrive today."
        return f"{said} is on its way" + (
            f" and should arrive {say_date(eta, today)}." if eta else "."
        )
    if stage == "delayed":
        return f"{said} is delayed" + (
            f", and should now arrive {say_date(eta, today)}." if eta else "."
        )
    if stage == "delivered":
        at = order.delivered_at
        if at is None and shipment is not None:
            scan = _latest(shipment, ShipmentStatus.DELIVERED)
            at = scan.at if scan else None
        return f"{said} was delivered" + (
            f" {say_date(_local(at, tz).date(), today)}." if at else "."
        )
    return f"{said} is closed."


def describe_order(
    order: Order,
    shipment: Shipment | None,
    now: datetime,
    *,
    tz: tzinfo = UTC,
    lost_after_days: int = 7,
) -> StatusReport:
    """Say where an order is, from the order and its carrier tracking, as a person would.

    `shipment` is None when there is no tracking (not shipped, or the carrier could not be
    reached). An order in transit the carrier has not scanned for `lost_after_days` is
    reported honestly as probably lost.
    """
    carrier = say_carrier((shipment.carrier if shipment else None) or order.carrier or "")
    s = _Speaker(_items(order), _local(now, tz).date(), tz, carrier or "the carrier")
    if closed := _closed(order, s):
        return closed
    if delivered := _delivered(order, shipment, s):
        return delivered
    if order.fulfillment == "unfulfilled":
        hasnt = s.verb("hasn't", "haven't")
        text = f"{s.subject} {hasnt} shipped yet. Orders usually ship within two business days."
        return StatusReport(StatusKind.NOT_SHIPPED, text)
    if not order.carrier and shipment is None:
        text = (
            f"{s.subject} {s.verb('has', 'have')} shipped, but I don't have tracking for "
            f"{s.it} yet."
        )
        return StatusReport(StatusKind.NO_TRACKING, text)
    return _shipped(order, shipment, s, now, lost_after_days)
