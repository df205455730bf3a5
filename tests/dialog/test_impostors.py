"""Impostors: a second factor that is nearly right never verifies, one that is right does.

Every order of the demo shop (integrations/demo/data.py) is attacked with near misses of its own
customer's ZIP code, email address and phone number: one digit off in every position, two
adjacent digits swapped, a digit short or over, another customer's value, an email with a
letter changed, dropped or doubled or at another domain. Each goes through the real path, the
`second_factor` slot's parsing (spoken and keypad) and the `verify_factor` action against the
demo shop, and none may verify. The genuine values, said the many ways callers say them, must.
Whole calls then check what the caller hears after a miss: the same words whatever was said,
never the right value or a hint of it, and nothing changed before a person takes over.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dialog.actions.orders import _matches, verify_factor
from dialog.actions.registry import ActionContext
from dialog.agent import Agent
from dialog.events import CallInfo, EndCall, Event, Say, Transfer
from dialog.policy import Policy, VerificationPolicy, load_policy
from dialog.slots import SLOT_TYPES, SlotContext, hear
from dialog.slots.contact import Factor
from harness.conversations import TODAY, demo_services
from integrations.demo import DemoShop
from integrations.models import Address, Customer, Order

NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 15, 0, tzinfo=UTC)
STRANGER = "+14155550999"
SHOP_LINE = "+18005550100"
ORDER_NUMBERS = [str(n) for n in range(1001, 1013)]  # every demo order
FACTOR = SLOT_TYPES["second_factor"]
SLOT_CTX = SlotContext(today=TODAY)
POLICY = load_policy()

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

MISMATCH = (
    "Sorry, that doesn't match what we have on the order. You can say it again, or type the "
    "ZIP code on your keypad and press pound. The email address or the phone number on the "
    "order works too."
)
FAILED = (
    "I'm sorry, I can't confirm it's you, so I can't make changes to this order. "
    "A person can help you with that."
)
# Words that would tell an impostor how close they came.
HINTS = ("close", "almost", "nearly", "ends in", "ending in", "starts with", "begins with",
         "digit", "off by", "typo", "did you mean", "instead")  # fmt: skip


def spoken(digits: str, *, oh: bool = False) -> str:
    """ "94110" → "nine four one one zero" ("… oh" with `oh`)."""
    return " ".join("oh" if oh and d == "0" else WORDS[int(d)] for d in digits)


def spoken_email(email: str) -> str:
    """ "maria.lopez@example.com" → "maria dot lopez at example dot com"."""
    for symbol, word in ((".", " dot "), ("@", " at "), ("_", " underscore "), ("-", " dash ")):
        email = email.replace(symbol, word)
    return re.sub(r"\s+", " ", email).strip()


def national(e164: str) -> str:
    """ "+14155550101" → "4155550101"."""
    assert e164.startswith("+1") and len(e164) == 12
    return e164[2:]


# --- the demo shop --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One demo order an impostor wants to change, and the values that would pass for it."""

    order: Order
    owner: Customer
    others: tuple[Customer, ...]  # every other demo customer

    @property
    def zips(self) -> set[str]:
        assert self.order.shipping_address is not None
        return {self.owner.zip, self.order.shipping_address.postal_code[:5]}

    @property
    def genuine(self) -> set[str]:
        return self.zips | {self.owner.email, self.owner.phone}


def new_shop() -> DemoShop:
    return DemoShop.in_memory(today=TODAY, clock=lambda: NOW)


async def targets(shop: DemoShop) -> list[Target]:
    orders = [await shop.orders.order(n) for n in ORDER_NUMBERS]
    assert all(orders)
    owners = {o.customer_id: await shop.orders.customer(o.customer_id) for o in orders if o}
    assert len(owners) == 6 and all(owners.values())
    return [
        Target(o, owners[o.customer_id], tuple(c for c in owners.values() if c.id != o.customer_id))
        for o in orders
        if o is not None
    ]


# --- near misses ----------------------------------------------------------------------------


def _digit_misses(digits: str) -> dict[str, list[str]]:
    return {
        "one digit off": [  # one up and one down, in every position
            digits[:i] + str((int(digits[i]) + step) % 10) + digits[i + 1 :]
            for i in range(len(digits))
            for step in (1, -1)
        ],
        "adjacent digits swapped": [
            digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
            for i in range(len(digits) - 1)
            if digits[i] != digits[i + 1]
        ],
        "a digit short": sorted({digits[:i] + digits[i + 1 :] for i in range(len(digits))}),
        "a digit over": sorted(
            {digits + d for d in "019"}
            | {digits[:i] + digits[i] + digits[i:] for i in range(len(digits))}
        ),
    }


def zip_misses(t: Target) -> dict[str, list[str]]:
    misses = _digit_misses(t.owner.zip)
    misses["another customer's ZIP"] = [c.zip for c in t.others]
    misses["ZIP+4 with the wrong first five"] = [
        f"{z}-1234" for z in misses["one digit off"][::2]
    ]  # one per position
    return {kind: [z for z in zips if z[:5] not in t.zips or len(z) not in (5, 10)]
            for kind, zips in misses.items()}  # fmt: skip


def email_misses(t: Target) -> dict[str, list[str]]:
    local, domain = t.owner.email.split("@")
    letters = [i for i, ch in enumerate(local) if ch.isalpha()]

    def other(ch: str) -> str:
        return "a" if ch == "z" else chr(ord(ch) + 1)

    misses = {
        "a letter changed": [local[:i] + other(local[i]) + local[i + 1 :] for i in letters],
        "a letter dropped": [local[:i] + local[i + 1 :] for i in letters],
        "a letter doubled": [local[:i] + local[i] + local[i:] for i in letters],
        "the dot dropped": [local.replace(".", "")],
    }
    found = {kind: [f"{lp}@{domain}" for lp in parts] for kind, parts in misses.items()}
    found["another domain"] = [
        f"{local}@{d}" for d in ("example.org", "example.net", "exampel.com", "gmail.com")
    ]
    found["another customer's email"] = [c.email for c in t.others]
    return {kind: [e for e in emails if e not in t.genuine] for kind, emails in found.items()}


def phone_misses(t: Target) -> dict[str, list[str]]:
    misses = _digit_misses(national(t.owner.phone))
    del misses["a digit over"]  # eleven digits is the genuine number with its leading 1
    misses["another customer's phone"] = [national(c.phone) for c in t.others]
    return {k: [p for p in ps if f"+1{p}" not in t.genuine] for k, ps in misses.items()}


def said_zips(zip_code: str) -> list[tuple[str, str]]:
    """A ZIP (or ZIP+4) as a caller would give it: (how, what)."""
    digits = zip_code.replace("-", "")
    return [
        ("spoken", f"my zip code is {spoken(digits)}"),
        ("spoken with oh", spoken(digits, oh=True)),
        ("typed", f"it's {zip_code}"),
        ("keypad", f"#{digits}"),
    ]


def said_emails(email: str) -> list[tuple[str, str]]:
    return [
        ("spoken", f"my email is {spoken_email(email)}"),
        ("typed", email),
    ]


def said_phones(digits: str) -> list[tuple[str, str]]:
    """A 10-digit national number (or a mangled one) as a caller would give it."""
    out = [
        ("spoken", f"my phone number is {spoken(digits)}"),
        ("keypad", f"#{digits}"),
    ]
    if len(digits) == 10:
        out += [
            ("typed", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"),
            ("keypad with the 1", f"#1{digits}"),
        ]
    return out


# --- the real path: the slot's parsing, then verify_factor against the demo shop -------------


@dataclass
class Tally:
    """What the attempts came to."""

    attempts: Counter[str] = field(default_factory=Counter)  # by kind of near miss
    forms: Counter[str] = field(default_factory=Counter)  # spoken, typed, keypad...
    checked: int = 0  # reached verify_factor (the rest were not heard as a factor at all)
    accepted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.attempts.values())


def heard(said: str) -> Factor | None:
    """What the `second_factor` slot makes of an utterance, or of keys ("#94110")."""
    if said.startswith("#"):
        assert FACTOR.keypad is not None
        return FACTOR.keypad(said[1:], SLOT_CTX)
    return hear(FACTOR, said, SLOT_CTX)


async def _ignore(event: Event) -> None:
    return None


async def verifies(shop: DemoShop, order: Order, factor: Factor, policy: Policy = POLICY) -> bool:
    """Whether `verify_factor` lets this factor in for this order."""
    slots: dict[str, Any] = {"order": order, "factor": factor}
    ctx = ActionContext(
        services=demo_services(shop, _Events()),
        policy=policy,
        slots=slots,
        call=CallInfo("CA-impostor", STRANGER, SHOP_LINE),
        now=NOW,
        tz=UTC,
        emit=_ignore,
    )
    await verify_factor(ctx)
    return slots.get("verified_customer") is not None


async def attempt(shop: DemoShop, t: Target, said: str, tally: Tally, kind: str, form: str):
    tally.attempts[kind] += 1
    tally.forms[form] += 1
    factor = heard(said)
    if factor is None:
        return
    tally.checked += 1
    if await verifies(shop, t.order, factor):
        tally.accepted.append(f"order {t.order.number}: {kind} {said!r} heard as {factor}")


async def test_no_near_miss_ever_verifies():
    shop = new_shop()
    tally = Tally()
    for t in await targets(shop):
        for kind, zips in zip_misses(t).items():
            for zip_code in zips:
                for form, said in said_zips(zip_code):
                    await attempt(shop, t, said, tally, f"ZIP: {kind}", form)
        for kind, emails in email_misses(t).items():
            for email in emails:
                for form, said in said_emails(email):
                    await attempt(shop, t, said, tally, f"email: {kind}", form)
        for kind, phones in phone_misses(t).items():
            for phone in phones:
                for form, said in said_phones(phone):
                    await attempt(shop, t, said, tally, f"phone: {kind}", form)
    assert tally.accepted == [], f"{len(tally.accepted)} false accepts of {tally.total}"
    assert tally.total >= 200
    assert tally.checked >= 200  # most reach the comparison, not only the parser
    for kind in ("ZIP: one digit off", "ZIP: adjacent digits swapped", "ZIP: a digit short",
                 "ZIP: a digit over", "ZIP: another customer's ZIP", "email: a letter changed",
                 "email: a letter dropped", "email: a letter doubled", "email: another domain",
                 "email: another customer's email", "phone: one digit off",
                 "phone: adjacent digits swapped", "phone: another customer's phone"):  # fmt: skip
        assert tally.attempts[kind] >= 12, kind  # at least one per order
    assert {"spoken", "keypad", "typed"} <= set(tally.forms)


async def test_another_customers_factor_never_verifies_even_their_own_other_factors():
    """A caller who knows everything about one customer gets nowhere on another's order."""
    shop = new_shop()
    tally = Tally()
    for t in await targets(shop):
        for other in t.others:
            for form, said in [
                *said_zips(other.zip),
                *said_emails(other.email),
                *said_phones(national(other.phone)),
            ]:
                await attempt(shop, t, said, tally, "another customer's factor", form)
    assert tally.accepted == []
    assert tally.total >= 12 * 5 * 8


# --- genuine values, every way a caller gives them ------------------------------------------


def genuine_zips(zip_code: str) -> list[str]:
    return [
        zip_code,
        spoken(zip_code),
        spoken(zip_code, oh=True),
        f"my zip code is {spoken(zip_code)}",
        f"it's {zip_code}",
        f"{zip_code}-4321",
        f"{spoken(zip_code)} dash four three two one",
        f"{spoken(zip_code, oh=True)} four three two one",
        f"#{zip_code}",
        f"#{zip_code}4321",
    ]


def genuine_emails(email: str) -> list[str]:
    local, domain = email.split("@")
    return [
        spoken_email(email),
        f"my email is {spoken_email(email)}",
        f"it's {spoken_email(email)}",
        email.upper(),
        f"  {email.title()}. ",
        f"{local} at {domain}",
        f"sure, it's {email}",
    ]


def genuine_phones(e164: str) -> list[str]:
    d = national(e164)
    return [
        f"({d[:3]}) {d[3:6]}-{d[6:]}",
        f"{d[:3]} {d[3:6]} {d[6:]}",
        f"{d[:3]}-{d[3:6]}-{d[6:]}",
        f"+1 {d[:3]} {d[3:6]} {d[6:]}",
        f"1-{d[:3]}-{d[3:6]}-{d[6:]}",
        spoken(d),
        f"my number is {spoken(d[:3])}, {spoken(d[3:6])}, {spoken(d[6:], oh=True)}",
        f"area code {spoken(d[:3])}, {spoken(d[3:6])}, {spoken(d[6:])}",
        f"one {spoken(d)}",
        f"#{d}",
        f"#1{d}",
    ]


async def test_genuine_values_in_every_spelling_verify():
    shop = new_shop()
    passed: Counter[str] = Counter()
    refused = []
    for t in await targets(shop):
        for kind, values in (
            ("zip", genuine_zips(t.owner.zip)),
            ("email", genuine_emails(t.owner.email)),
            ("phone", genuine_phones(t.owner.phone)),
        ):
            for said in values:
                factor = heard(said)
                if (
                    factor is not None
                    and factor.kind == kind
                    and await verifies(shop, t.order, factor)
                ):
                    passed[kind] += 1
                else:
                    refused.append(f"order {t.order.number}: {said!r} heard as {factor}")
    assert refused == []
    assert passed == {"zip": 12 * 10, "email": 12 * 7, "phone": 12 * 11}


async def test_the_shipping_zip_verifies_as_well_as_the_customers():
    shop = new_shop()
    (t, *_) = await targets(shop)
    assert t.order.shipping_address is not None
    moved = Address("1 Elm St", "Oakland", "CA", "94607")
    order = replace(t.order, shipping_address=moved)
    for said in ("nine four six oh seven", t.owner.zip, "#94607"):
        factor = heard(said)
        assert factor is not None and await verifies(shop, order, factor), said
    for said in ("nine four six oh eight", "94606", "#946070"):
        factor = heard(said)
        assert factor is None or not await verifies(shop, order, factor), said


# --- the comparison itself: the weaknesses of the old one ----------------------------------


MARIA = Customer("c1", "Maria Lopez", "+14155550101", "maria.lopez@example.com", "94110")


def _order(postal_code: str | None) -> Order:
    address = Address("742 Valencia St", "San Francisco", "CA", postal_code or "")
    return Order(
        number="1001",
        customer_id="c1",
        placed_at=NOW,
        lines=(),
        fulfillment="fulfilled",
        shipping_address=address if postal_code is not None else None,
    )


@pytest.mark.parametrize(
    "factor",
    [
        Factor("zip", "941105"),  # the old `[:5]` let a six-digit ZIP through
        Factor("zip", "94110123"),
        Factor("zip", "94110-12"),
        Factor("zip", "9411"),
        Factor("zip", "94111"),
        Factor("zip", ""),
        Factor("zip", " "),
        Factor("email", "maria.lopez@example.co"),
        Factor("email", "maria.lopez@example.com.au"),
        Factor("email", "maria.lopez"),
        Factor("email", ""),
        Factor("phone", "+14155550102"),
        Factor("phone", "4155550"),
        Factor("phone", ""),
        Factor("name", "Maria Lopez"),
    ],
)
def test_a_near_or_empty_value_never_matches(factor: Factor):
    assert not _matches(factor, MARIA, _order("94110"))


@pytest.mark.parametrize(
    "customer",
    [
        Customer("c1", "Maria Lopez", "", "", ""),  # fields the shop left empty
        Customer("c1", "Maria Lopez", " ", " ", " "),
    ],
)
@pytest.mark.parametrize("factor", [Factor("zip", ""), Factor("email", ""), Factor("phone", "")])
def test_an_empty_value_never_matches_an_empty_field(customer: Customer, factor: Factor):
    assert not _matches(factor, customer, _order(""))
    assert not _matches(factor, customer, _order(None))


@pytest.mark.parametrize(
    ("factor", "customer"),
    [
        (Factor("zip", "94110-1234"), MARIA),
        (Factor("zip", "941101234"), MARIA),
        (Factor("zip", "94110"), Customer("c1", "M", "", "", "94110-1234")),  # stored ZIP+4
        (Factor("email", " Maria.Lopez@Example.COM. "), MARIA),
        # The shop stores the phone as people write it; both sides become E.164.
        (Factor("phone", "+14155550101"), Customer("c1", "M", "(415) 555-0101", "", "")),
        (Factor("phone", "14155550101"), Customer("c1", "M", "415.555.0101", "", "")),
    ],
)
def test_the_same_value_written_differently_matches(factor: Factor, customer: Customer):
    assert _matches(factor, customer, _order(None))


def test_a_malformed_shipping_postal_code_adds_nothing():
    for postal_code in ("", "941", "94607XYZ", "M5V 3L9"):
        assert not _matches(Factor("zip", postal_code[:5]), MARIA, _order(postal_code))
    assert _matches(Factor("zip", "94110"), MARIA, _order("M5V 3L9"))


async def test_a_factor_the_policy_does_not_allow_never_verifies():
    shop = new_shop()
    (t, *_) = await targets(shop)
    no_phone = POLICY.model_copy(
        update={"verification": VerificationPolicy(factors=["zip", "email"], max_attempts=2)}
    )
    phone = heard(f"#{national(t.owner.phone)}")
    assert phone == Factor("phone", t.owner.phone)
    assert await verifies(shop, t.order, phone)
    assert not await verifies(shop, t.order, phone, no_phone)
    assert await verifies(shop, t.order, Factor("zip", t.owner.zip), no_phone)


def test_the_shipped_policy_allows_the_phone_number():
    assert set(POLICY.verification.factors) == {"zip", "email", "phone"}
    assert VerificationPolicy().factors == ["zip", "email", "phone"]


def test_keys_while_verifying_are_a_zip_or_a_phone_number():
    assert heard("#94110") == Factor("zip", "94110")
    assert heard("#941101234") == Factor("zip", "94110-1234")
    assert heard("#4155550101") == Factor("phone", "+14155550101")
    assert heard("#14155550101") == Factor("phone", "+14155550101")
    for keys in ("#9411", "#941105", "#41555501", "#24155550101", "#"):
        assert heard(keys) is None, keys


# --- whole calls: what the caller hears after a miss ----------------------------------------


class _Events:
    def __init__(self) -> None:
        self.recorded: list[dict[str, Any]] = []

    async def record(self, type: str, *, order: str | None = None, **data: Any) -> None:
        self.recorded.append({"type": type, "order": order, **data})


# One request per order that reaches the second factor before anything changes.
REQUESTS = {
    "1001": "I want to change the delivery address for order ten oh one",
    "1002": "I need a refund for order ten oh two",
    "1003": "I want to return order ten oh three",
    "1004": "I need a refund for order ten oh four",
    "1005": "I want to return order ten oh five",
    "1006": "I want to change the delivery address for order ten oh six",
    "1007": "I want to change the delivery address for order ten oh seven",
    "1008": "I want to change the delivery address for order ten oh eight",
    "1009": "I want to return order ten oh nine",
    "1010": "I want to change the delivery address for order ten ten",
    "1011": "I need a refund for order ten eleven",
    "1012": "I need a refund for order ten twelve",
}
# What a call may record once it asks for the second factor and gets only misses.
HARMLESS = {
    "caller.identified",
    "intent",
    "order.looked_up",
    "caller.verification_failed",
    "ticket.created",  # for the person who takes over
    "sms.sent",  # the ticket number, to the caller's phone
    "handoff",
}
_TICKET = re.compile(r" ?Your ticket number is [^.]*\.")


@dataclass
class Call:
    """One call to the agent on a fresh demo shop."""

    from_number: str = STRANGER
    policy: Policy | None = None
    shop: DemoShop = field(default_factory=new_shop)
    events: _Events = field(default_factory=_Events)
    ended: bool = False

    def __post_init__(self) -> None:
        info = CallInfo("CA-impostor", self.from_number, SHOP_LINE)
        services = demo_services(self.shop, self.events)
        self.agent = Agent(None, services, info, policy=self.policy, clock=lambda: NOW)

    async def _drain(self, stream) -> str:
        said = []
        async for event in stream:
            if isinstance(event, Say):
                said.append(event.text)
            elif isinstance(event, EndCall | Transfer):
                self.ended = True
        return " ".join(said)

    async def start(self) -> str:
        return await self._drain(self.agent.start())

    async def give(self, said: str) -> str:
        assert not self.ended
        if said.startswith("#"):
            return await self._drain(self.agent.keypad(said[1:]))
        return await self._drain(self.agent.hear(said, 1.0))

    def of(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events.recorded if e["type"] == type]


def leaks(reply: str, t: Target) -> list[str]:
    """Anything in `reply` that gives away or hints at the values that would pass."""
    text = _TICKET.sub("", reply).lower()  # a ticket number may share digits with a ZIP
    digits = re.sub(r"\D", "", text)
    found = [h for h in HINTS if h in text]
    for zip_code in t.zips:
        for form in (zip_code, spoken(zip_code), spoken(zip_code, oh=True)):
            if form in text:
                found.append(form)
    phone = national(t.owner.phone)
    for form in (phone, phone[-4:], spoken(phone[-4:]), spoken(phone[-4:], oh=True)):
        if form in text:
            found.append(form)
    local, domain = t.owner.email.split("@")
    for form in (local, domain, "@", " at "):
        if form in text:
            found.append(form)
    if any(z in digits for z in t.zips):
        found.append("the ZIP's digits")
    for word in {*t.owner.name.lower().split(), *re.split(r"[._]", local)}:
        if re.search(rf"\b{word}\b", text):
            found.append(word)
    return found


def _first_miss(t: Target) -> list[str]:
    """Near misses said aloud, one of each kind."""
    z, p = t.owner.zip, national(t.owner.phone)
    local, domain = t.owner.email.split("@")
    off = z[:-1] + str((int(z[-1]) + 1) % 10)
    return [
        f"my zip code is {spoken(off)}",
        spoken(z[1] + z[0] + z[2:]) if z[0] != z[1] else spoken(z[0] + z[2] + z[1] + z[3:]),
        f"it's {spoken_email(local[1:] + '@' + domain)}",
        f"{spoken_email(local + '@example.org')}",
        f"my number is {spoken(p[:-1] + str((int(p[-1]) + 5) % 10))}",
    ]


def _second_miss(t: Target, n: int) -> list[str]:
    """Near misses typed on the keypad."""
    z, p = t.owner.zip, national(t.owner.phone)
    return [
        f"#{z[: n % 5]}{(int(z[n % 5]) + 3) % 10}{z[n % 5 + 1 :]}",
        f"#{t.others[n % len(t.others)].zip}",
        f"#{p[:8]}{p[9]}{p[8]}",  # the last two swapped (they differ for every demo phone)
        f"#1{national(t.others[n % len(t.others)].phone)}",
    ]


@pytest.mark.parametrize("number", ORDER_NUMBERS)
async def test_a_near_miss_in_a_call_hears_only_that_it_does_not_match(number: str):
    shop = new_shop()
    (t,) = [t for t in await targets(shop) if t.order.number == number]
    before = await shop.orders.order(number)
    callers = [STRANGER, t.others[0].phone]  # nobody, and a customer who is not the owner
    calls = 0
    replies: Counter[str] = Counter()
    for i, first in enumerate(_first_miss(t)):
        for j, caller in enumerate(callers):
            second = _second_miss(t, i)[(i + j) % 4]
            c = Call(caller, shop=shop)  # one shop: what a call changed would show
            await c.start()
            asked = await c.give(REQUESTS[number])
            assert asked.endswith(
                "First, for your security: what's the ZIP code on the order? "
                "The email address works too."
            ), asked
            reply = await c.give(first)
            assert reply == MISMATCH, (first, reply)
            assert not c.ended
            final = await c.give(second)
            assert final.startswith(FAILED), (second, final)
            assert c.ended and c.agent.handoff
            for said in (asked, reply, final):
                assert leaks(said, t) == [], (first, second, said)
            assert c.of("caller.verified") == []
            assert len(c.of("caller.verification_failed")) == POLICY.verification.max_attempts
            assert {e["type"] for e in c.events.recorded} <= HARMLESS
            assert await c.shop.orders.order(number) == before
            replies[reply] += 1
            calls += 1
    assert calls == 5 * 2
    assert list(replies) == [MISMATCH]  # the same words whatever was said: nothing to learn


async def test_after_a_miss_the_phone_number_on_the_keypad_verifies():
    shop = new_shop()
    for t in await targets(shop):
        c = Call(shop=shop)
        await c.start()
        await c.give(REQUESTS[t.order.number])
        assert await c.give(_first_miss(t)[0]) == MISMATCH
        reply = await c.give(f"#{national(t.owner.phone)}")
        assert reply != MISMATCH and not reply.startswith(FAILED), reply
        (verified,) = c.of("caller.verified")
        assert verified["method"] == "phone" and verified["customer_id"] == t.owner.id


async def test_genuine_values_verify_in_a_call():
    shop = new_shop()
    for t in await targets(shop):
        local = t.owner.email.split("@")[0]
        for said in (
            spoken(t.owner.zip, oh=True),
            f"#{t.owner.zip}",
            f"{t.owner.zip}-1234",
            f"{spoken_email(local)} at example dot com",
            f"my number is area code {spoken(national(t.owner.phone))}",
            f"#1{national(t.owner.phone)}",
        ):
            c = Call(shop=shop)
            await c.start()
            await c.give(REQUESTS[t.order.number])
            reply = await c.give(said)
            assert reply != MISMATCH and not reply.startswith(FAILED), (said, reply)
            assert len(c.of("caller.verified")) == 1, (t.order.number, said, reply)
            assert c.of("caller.verification_failed") == []


async def test_attempts_stop_at_the_policys_max_attempts():
    shop = new_shop()
    (t,) = [t for t in await targets(shop) if t.order.number == "1003"]
    for max_attempts in (1, 2, 3):
        policy = POLICY.model_copy(
            update={"verification": VerificationPolicy(max_attempts=max_attempts)}
        )
        c = Call(policy=policy)
        await c.start()
        await c.give(REQUESTS["1003"])
        misses = iter(_first_miss(t))
        for n in range(1, max_attempts + 1):
            reply = await c.give(next(misses))
            if n < max_attempts:
                assert reply == MISMATCH
                assert not c.ended
        assert reply.startswith(FAILED)
        assert c.ended and c.agent.handoff
        assert len(c.of("caller.verification_failed")) == max_attempts
        assert c.of("caller.verified") == []


async def test_values_not_heard_as_a_factor_are_bounded_too():
    """Keys that are no ZIP and no phone number are asked again, then a person helps."""
    c = Call()
    await c.start()
    await c.give(REQUESTS["1003"])
    reply = await c.give("#1000")
    assert "ZIP code" in reply and "keypad" in reply
    reply = await c.give("#100011")
    assert reply.startswith(FAILED)
    assert c.ended and c.agent.handoff
    assert c.of("caller.verified") == []
