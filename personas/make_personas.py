"""Write the shipped persona set: a hand-written base set of callers of the demo shop, each
in several manners of talking.

    python personas/make_personas.py        # rewrites personas/*.yaml

Every procedure and every demo order (docs/DESIGN.md, "The demo shop") has a base caller:
who calls, what they want and how they put it, what they know, and the outcome the call
must reach. Each base is then written in the manners of `MANNERS` that fit it (plain; hesitant
and wordy, ordering in pairs; a keypad user; one who slips and corrects a number; upset; a
withheld number) with the same expected outcome: how a caller talks must not change what
they get. The outcomes come from the shop's rules, not from runs of the agent.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

MARIA = {"calls_from": "+14155550101", "zip": "94110", "email": "maria.lopez@example.com"}
JAMES = {"calls_from": "+14155550102", "zip": "10001", "email": "james.chen@example.com"}
AISHA = {"calls_from": "+14155550103", "zip": "60614", "email": "aisha.patel@example.com"}
TOM = {"calls_from": "+14155550104", "zip": "73301", "email": "tom.becker@example.com"}
LENA = {"calls_from": "+14155550105", "zip": "02139", "email": "lena.novak@example.com"}
OMAR = {"calls_from": "+14155550106", "zip": "98101", "email": "omar.haddad@example.com"}

OFF_SCRIPT = [
    "before that, what's the weather going to be like tomorrow?",
    "quick question first, can I pay with bitcoin?",
    "do you know if my neighbour ordered from you too?",
]


def base(
    name: str,
    who: dict[str, str],
    procedure: str,
    order: str,
    asks: list[str],
    done_when: list[str],
    expect: dict[str, Any],
    *,
    manners: tuple[str, ...] = ("plain", "hesitant", "keypad", "slip"),
    extra_goals: list[dict[str, Any]] | None = None,
    **facts: Any,
) -> dict[str, Any]:
    """One base caller; `manners` are the ways of talking it is written in."""
    goals = [{"procedure": procedure, "order": order, "ask": asks, "done_when": done_when}]
    return {
        "name": name,
        "calls_from": who["calls_from"],
        "goals": goals + (extra_goals or []),
        "together": bool(extra_goals),
        "facts": {"order_number": order, "zip": who["zip"], "email": who["email"], **facts},
        "expect": expect,
        "manners": manners,
    }


BASES = [
    # --- where is my order --------------------------------------------------------------------
    base("maria-wismo-shirt", MARIA, "where_is_my_order", "1001",
         ["hi, where is my linen shirt?", "I'm calling to check on my order",
          "has my shirt shipped yet?"],
         ["tomorrow"], {"agent_says": ["tomorrow"]},
         manners=("plain", "hesitant", "withheld", "off_script")),
    base("tom-wismo-grinder", TOM, "where_is_my_order", "1008",
         ["where's my coffee grinder?", "my grinder still hasn't come, what's going on?"],
         ["delayed", "customs"], {"agent_says": ["delayed"]},
         manners=("plain", "hesitant", "withheld", "slip", "off_script")),
    base("omar-wismo-stranger", {**OMAR, "calls_from": "+14155550999"}, "where_is_my_order",
         "1001", ["I'm calling for my sister, where is her order?", "can you track an order?"],
         ["tomorrow"], {"agent_says": ["tomorrow"], "agent_never_says": ["linen", "94110"]},
         manners=("plain", "keypad", "slip"), zip=None, email=None),
    # --- returns ------------------------------------------------------------------------------
    base("james-return-earbuds-refund", JAMES, "return", "1003",
         ["I want to return my wireless earbuds", "can I send back the earbuds?"],
         ["return number"],
         {"events": [{"type": "return.created", "order": "1003", "resolution": "refund"}]},
         manners=("plain", "hesitant", "keypad", "slip", "withheld", "off_script"),
         reason="one of them stopped charging", resolution="refund"),
    base("james-return-earbuds-credit", JAMES, "return", "1003",
         ["I'd like to return the earbuds please"], ["return number"],
         {"events": [{"type": "return.created", "order": "1003",
                      "resolution": "store_credit"}]},
         manners=("plain", "hesitant"), reason="I changed my mind",
         resolution="store credit"),
    base("maria-return-shoes-late", MARIA, "return", "1002",
         ["I'd like to send back the trail running shoes", "can I return my running shoes?"],
         ["return window", "can't be returned"],
         {"events": [{"type": "return.denied", "reason": "window", "order": "1002"}],
          "not_events": [{"type": "return.created"}]},
         manners=("plain", "hesitant", "upset"), reason="they don't fit"),
    base("james-return-jacket-final-sale", JAMES, "return", "1004",
         ["can I return the clearance rain jacket?", "I want to return my rain jacket"],
         ["final sale"],
         {"events": [{"type": "return.denied", "reason": "final_sale", "order": "1004"}],
          "not_events": [{"type": "return.created"}]},
         manners=("plain", "hesitant", "upset"), reason="it's the wrong colour"),
    base("lena-return-yoga-mat-not-delivered", LENA, "return", "1010",
         ["I want to return my yoga mat"], ["hasn't been delivered", "nothing to return"],
         {"not_events": [{"type": "return.created"}]}, manners=("plain", "hesitant")),
    # --- exchanges ----------------------------------------------------------------------------
    base("aisha-exchange-large", AISHA, "exchange", "1005",
         ["could I exchange my wool sweater for a large?", "I need the sweater in a large"],
         ["return number"],
         {"events": [{"type": "exchange.created", "order": "1005", "variant": "L"}]},
         manners=("plain", "hesitant", "keypad", "slip", "off_script"), size="large", size_is="L"),
    base("aisha-exchange-size-up", AISHA, "exchange", "1005",
         ["my wool sweater is too small, can I swap it for one size up?",
          "the sweater's too tight, can I get it a size bigger?"],
         ["return number"],
         {"events": [{"type": "exchange.created", "order": "1005", "variant": "L"}]},
         manners=("plain", "hesitant", "keypad"), size="one size up", size_is="L"),
    base("aisha-exchange-size-down", AISHA, "exchange", "1005",
         ["the sweater is too big, can I exchange it for one size down?"], ["return number"],
         {"events": [{"type": "exchange.created", "order": "1005", "variant": "S"}]},
         manners=("plain", "hesitant"), size="one size down", size_is="S"),
    base("aisha-exchange-xl-sold-out", AISHA, "exchange", "1005",
         ["can I exchange my sweater for an extra large?"], ["don't have"],
         {"not_events": [{"type": "exchange.created", "variant": "XL"}]},
         manners=("plain", "hesitant"), size="extra large", size_is="XL",
         resolution="store credit"),
    # --- refunds ------------------------------------------------------------------------------
    base("omar-refund-laptop-stand", OMAR, "refund", "1011",
         ["has the refund for my laptop stand gone through?", "where's my refund?"],
         ["refunded"], {"agent_says": ["refunded"]},
         manners=("plain", "hesitant", "withheld", "off_script")),
    base("omar-refund-headphones-on-receipt", OMAR, "refund", "1012",
         ["I sent back the studio headphones, when do I get my money?"],
         ["on its way back", "as soon as the warehouse"], {"agent_says": ["on its way back"]},
         manners=("plain", "hesitant", "upset")),
    # --- coupons ------------------------------------------------------------------------------
    base("maria-coupon-summer-expired", MARIA, "coupon", "1001",
         ["I tried the code summer fifteen and it didn't work", "my coupon isn't working"],
         ["expired"],
         {"events": [{"type": "coupon.checked", "code": "SUMMER15"}],
          "agent_says": ["expired"]},
         manners=("plain", "hesitant", "upset", "off_script"), coupon="SUMMER15"),
    base("maria-coupon-welcome-first-order", MARIA, "coupon", "1001",
         ["why can't I use the welcome ten code?"], ["first order"],
         {"events": [{"type": "coupon.checked", "code": "WELCOME10"}]},
         manners=("plain", "hesitant"), coupon="WELCOME10"),
    base("tom-coupon-vip-used", TOM, "coupon", "1008",
         ["the VIP fifty code isn't working for me"], ["already"],
         {"events": [{"type": "coupon.checked", "code": "VIP50"}]},
         manners=("plain", "upset"), coupon="VIP50"),
    base("aisha-coupon-freeship", AISHA, "coupon", "1006",
         ["does the free ship code work on my lamp order?", "can I use a coupon code?"],
         ["valid", "free shipping"],
         {"events": [{"type": "coupon.checked", "code": "FREESHIP"}]},
         manners=("plain", "hesitant"), coupon="FREESHIP"),
    base("james-coupon-unknown", JAMES, "coupon", "1003",
         ["I have a promo code, banana seven, does it work?"], ["can't find", "spelling"],
         {"events": [{"type": "coupon.checked"}]}, manners=("plain", "hesitant"),
         coupon="BANANA7"),
    # --- delivery problems --------------------------------------------------------------------
    base("aisha-reschedule-lamp", AISHA, "reschedule", "1006",
         ["FedEx missed me, can they bring the desk lamp on Monday?",
          "my lamp delivery failed, can I pick another day?"],
         ["will bring"], {"events": [{"type": "delivery.rescheduled", "order": "1006"}]},
         manners=("plain", "hesitant", "keypad", "slip", "off_script"), day="Monday"),
    base("tom-lost-espresso", TOM, "lost", "1007",
         ["my espresso machine has been stuck for over a week, I think it's lost",
          "my espresso machine never arrived and the tracking hasn't moved"],
         ["opened a claim"],
         {"events": [{"type": "claim.opened", "order": "1007"}, {"type": "ticket.created"}]},
         manners=("plain", "hesitant", "upset", "slip", "withheld", "off_script")),
    base("lena-not-received-vase", LENA, "not_received", "1009",
         ["it says my vase was delivered but there's nothing here",
          "the tracking says delivered but I never got the vase"],
         ["ticket"], {"events": [{"type": "ticket.created"}]},
         manners=("plain", "hesitant", "upset", "keypad", "off_script")),
    base("lena-damaged-vase-replacement", LENA, "damaged", "1009",
         ["the ceramic vase I got yesterday is chipped", "my vase arrived broken"],
         ["replacement is on its way"],
         {"events": [{"type": "replacement.created", "order": "1009"}]},
         manners=("plain", "hesitant", "upset", "slip", "off_script"), resolution="replacement"),
    base("lena-damaged-vase-refund", LENA, "damaged", "1009",
         ["my vase came cracked, I just want my money back"], ["refunded"],
         {"events": [{"type": "refund.created", "order": "1009"}]},
         manners=("plain", "hesitant"), resolution="refund"),
    # --- address changes ----------------------------------------------------------------------
    base("lena-address-yoga-mat", LENA, "address_change", "1010",
         ["I moved, can I update the address for my yoga mat?",
          "I need to change the delivery address on my order"],
         ["new address"],
         {"events": [{"type": "address.changed", "order": "1010", "postal_code": "02138"}]},
         manners=("plain", "hesitant", "keypad", "slip", "off_script"), street="14 Brattle Street",
         city="Cambridge, Massachusetts", new_zip="02138"),
    base("maria-address-shirt-shipped", MARIA, "address_change", "1001",
         ["can I change where my linen shirt is going?"], ["redirect"],
         {"events": [{"type": "redirect.requested", "order": "1001"}]},
         manners=("plain", "hesitant"), street="200 Valencia Street",
         city="San Francisco, California", new_zip="94103"),
    # --- a person, questions ------------------------------------------------------------------
    base("maria-wants-a-person", MARIA, "person", "1001",
         ["can I just talk to a human please", "I want to speak to a real person"], [],
         {"handoff": True}, manners=("plain", "upset", "withheld")),
    base("james-question-gift-cards", JAMES, "question", "1003",
         ["do you sell gift cards?"], ["don't sell gift cards"],
         {"events": [{"type": "faq.answered", "faq": "gift_cards"}]},
         manners=("plain", "hesitant")),
    base("omar-question-return-policy", OMAR, "question", "1011",
         ["what's your return policy?", "how many days do I have to return something?"],
         ["thirty days"], {"events": [{"type": "faq.answered", "faq": "return_policy"}]},
         manners=("plain", "hesitant", "withheld")),
    # --- two requests at once -----------------------------------------------------------------
    base("maria-two-shirt-and-shoes", MARIA, "where_is_my_order", "1001",
         ["where's my linen shirt"], ["tomorrow"],
         {"agent_says": ["tomorrow"],
          "events": [{"type": "return.denied", "reason": "window", "order": "1002"}]},
         manners=("plain", "hesitant"),
         extra_goals=[{"procedure": "return", "order": "1002",
                       "ask": ["can I return the running shoes?"],
                       "done_when": ["return window"]}]),
    base("aisha-two-lamp-and-sweater", AISHA, "reschedule", "1006",
         ["my lamp delivery failed"], ["will bring"],
         {"events": [{"type": "delivery.rescheduled", "order": "1006"},
                     {"type": "exchange.created", "order": "1005", "variant": "L"}]},
         manners=("plain", "hesitant"), day="Monday", size="large", size_is="L",
         extra_goals=[{"procedure": "exchange", "order": "1005",
                       "ask": ["I'd like to exchange the sweater for a large"],
                       "done_when": ["return number"]}]),
]  # fmt: skip

OUTBOUND = [
    {
        "name": "lena-delivery-confirmation-happy",
        "calls_from": "+14155550105",
        "outbound": {"order": "1009"},
        "goals": [{"procedure": "delivery_confirmation", "order": "1009",
                   "ask": ["hello?"], "done_when": ["great to hear"]}],
        "facts": {"order_number": "1009", "zip": "02139", "rating": 5,
                  "answers": {"good condition": "yes, it's perfect",
                              "arrive": "yes, it came yesterday"}},
        "expect": {"events": [{"type": "csat.recorded", "order": "1009"}]},
    },
    {
        "name": "lena-delivery-confirmation-chipped",
        "calls_from": "+14155550105",
        "outbound": {"order": "1009"},
        "goals": [{"procedure": "delivery_confirmation", "order": "1009",
                   "ask": ["hello?"], "done_when": ["replacement is on its way"]}],
        "facts": {"order_number": "1009", "zip": "02139", "resolution": "replacement",
                  "answers": {"good condition": "no, it's chipped",
                              "arrive": "yes, it came yesterday"}},
        "expect": {"events": [{"type": "replacement.created", "order": "1009"}]},
    },
]  # fmt: skip


def _wrong(value: str) -> str:
    """The same number with its last digit off by one: the slip a caller makes."""
    last = int(value[-1])
    return value[:-1] + str((last + 1) % 10 if last != 9 else 7)


def in_manner(spec: dict[str, Any], manner: str, index: int) -> dict[str, Any]:
    """The base caller talking in `manner`."""
    persona = copy.deepcopy({k: v for k, v in spec.items() if k != "manners"})
    persona["name"] = f"{spec['name']}-{manner.replace('_', '-')}"
    facts, talk = persona["facts"], {}
    persona["facts"] = {k: v for k, v in facts.items() if v is not None}
    if manner == "hesitant":
        talk = {"disfluency": 0.6, "verbosity": 0.3, "numbers": "pairs", "pause_s": 0.5}
    elif manner == "keypad":
        talk = {"keypad": True, "numbers": "numerals"}
    elif manner == "slip":
        slip_of = "order_number" if spec["calls_from"].endswith("999") else "zip"
        persona["facts"]["slips"] = {slip_of: _wrong(facts[slip_of])}
    elif manner == "upset":
        talk = {"upset": True, "patience": 2}
    elif manner == "withheld":
        persona["calls_from"] = "withheld"
    elif manner == "off_script":
        persona["manner"] = {"off_script": [OFF_SCRIPT[index % len(OFF_SCRIPT)]]}
    if talk:
        persona["manner"] = talk
    return persona


def personas() -> dict[str, list[dict[str, Any]]]:
    """The personas by file (one per procedure)."""
    files: dict[str, list[dict[str, Any]]] = {}
    for index, spec in enumerate(BASES):
        procedure = spec["goals"][0]["procedure"]
        target = "two_requests" if spec["together"] else procedure
        for manner in spec["manners"]:
            files.setdefault(target, []).append(in_manner(spec, manner, index))
    files["delivery_confirmation"] = OUTBOUND
    return files


def main() -> None:
    """Rewrite personas/*.yaml."""
    for old in HERE.glob("*.yaml"):
        old.unlink()
    total = 0
    for name, items in personas().items():
        header = "# Written by personas/make_personas.py: edit that, not this file.\n"
        text = yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=100)
        (HERE / f"{name}.yaml").write_text(header + text, encoding="utf-8")
        total += len(items)
    print(f"{total} personas")


if __name__ == "__main__":
    main()
