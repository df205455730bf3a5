"""Conversation repair: the words of it, the FAQ, and what the loader demands of flows."""

from __future__ import annotations

from datetime import date

import pytest

from dialog.faq import answers_over_request, match_faq, match_faqs
from dialog.loader import load_flows
from dialog.slots import SLOT_TYPES, SlotContext, hear
from dialog.understanding import (
    asks_about,
    corrected_part,
    denies_and_continues,
    is_cancel,
    is_greeting,
    is_question,
    refers_to_other,
    relative_size,
)
from tests.dialog.test_loader import errors_for

TODAY = date(2026, 6, 17)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("it's 94101, sorry, 94110", "94110"),
        ("Thursday, no wait, Friday instead", "friday instead"),
        ("can you check ten oh eight? actually, make that ten oh seven", "ten oh seven"),
        ("where is my order", None),
        ("sorry", None),
    ],
)
def test_what_a_correction_replaces(text, part):
    assert corrected_part(text) == part


@pytest.mark.parametrize(
    ("slot", "text", "value"),
    [
        ("date", "Friday, um, no, Monday's better actually", date(2026, 6, 22)),
        ("date", "could they come Thursday, no wait, Friday instead", date(2026, 6, 19)),
        ("zip", "it's 94101, sorry, 94110", "94110"),
        ("email", "lena dot novak at example dot org, no sorry, dot com", "lena.novak@example.com"),
        ("date", "Friday please", date(2026, 6, 19)),
    ],
)
def test_the_value_said_after_a_correction_is_the_one_meant(slot, text, value):
    assert hear(SLOT_TYPES[slot], text, SlotContext(today=TODAY)) == value


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("it's too small", 1),
        ("a bigger one", 1),
        ("way too big on me", -1),
        ("one size down", -1),
        ("two sizes bigger", 2),
        ("no, I think it needs to go bigger, not smaller", 1),
        ("a large please", None),
    ],
)
def test_sizes_relative_to_the_items_own(text, steps):
    assert relative_size(text) == steps


def test_a_relative_size_resolves_against_the_item_and_the_stock():
    ctx = SlotContext(today=TODAY, values={"current_size": "M", "size_options": ["S", "L"]})
    size = SLOT_TYPES["size"]
    assert size.parse("too small", ctx) == "L"
    assert size.parse("too big", ctx) == "S"
    assert size.parse("two sizes bigger", ctx) is None  # extra large: none in stock
    assert size.parse("No, I said it's too small, I need a large", ctx) == "L"
    assert size.parse("a large instead of my medium", SlotContext(today=TODAY)) == "L"
    # Before the item is known, the direction is kept for the return to settle.
    assert size.parse("a bigger size", SlotContext(today=TODAY)) == "+1"


@pytest.mark.parametrize(
    ("text", "greeting"),
    [
        ("hello?", True),
        ("yes, hello?", True),
        ("hello? sorry, the line cut out, who is this?", True),
        ("yes it arrived", False),
        ("no, not that one", False),
    ],
)
def test_a_pick_up_or_who_is_this(text, greeting):
    assert is_greeting(text) is greeting


def test_the_kinds_of_turn():
    assert is_cancel("no, wait, don't do anything yet") and is_cancel("forget it")
    assert not is_cancel("no thanks")
    assert is_question("do you sell gift cards") and is_question("um, what time do you open")
    assert not is_question("I want to return my shoes")
    assert refers_to_other("what about the other one?")
    assert asks_about("okay, what about the other one then?") and asks_about("and the sweater?")
    assert denies_and_continues("No, I said it's too small, I need a large")
    assert not denies_and_continues("no thanks") and not denies_and_continues("no")


def test_the_faq_answers_by_its_phrases():
    faq = load_flows().faq
    assert match_faq("do you sell gift cards?", faq).id == "gift_cards"
    assert match_faq("how long does a claim take", faq).id == "claim_timeline"
    assert match_faq("where is my order", faq) is None
    both = match_faqs("do you have a store in Chicago? and can I pay with PayPal?", faq)
    assert [e.id for e in both] == ["stores", "payment_methods"]
    assert answers_over_request("how long does shipping usually take?")
    assert not answers_over_request("how long will my order take to ship?")


def test_a_world_changing_action_must_be_confirmed(flows_dir):
    errors = errors_for(
        flows_dir,
        "quick_refund.yaml",
        """
        flow: quick_refund
        steps:
          - action: refund_line
        """,
    )
    assert errors == [
        "3: action 'refund_line' changes the world: give it `confirm:` (what it will do, "
        "asked yes or no)"
    ]


def test_a_confirmed_action_covers_the_next_without_a_question_between(flows_dir):
    errors = errors_for(
        flows_dir,
        "claimed_refund.yaml",
        """
        flow: claimed_refund
        steps:
          - action: refund_line
            confirm: "I'll refund you. Shall I go ahead?"
            on_decline: no
          - action: open_claim
          - id: no
            say: "Okay."
        """,
    )
    assert errors == []


def test_declining_needs_a_confirmation_and_statements_need_a_yes_no_slot(flows_dir):
    errors = errors_for(
        flows_dir,
        "odd.yaml",
        """
        flow: odd
        slots:
          colour_ok: {type: text, yes_when: [fine]}
        steps:
          - action: track_order
            on_decline: end
        """,
    )
    assert "3: slot 'colour_ok': yes_when/no_when are for yes_no slots" in errors
    assert "5: on_decline: only a step with `confirm` can be declined" in errors


def test_faq_mistakes_name_the_file_and_line(flows_dir):
    errors = errors_for(
        flows_dir,
        "faq.yaml",
        """
        faq:
          - id: hours
            when: ["hours"]
            answer: "See {opening_times}."
          - id: hours
            when: ["open"]
            answer: "Visit www.example.com."
        """,
    )
    assert "2: faq hours: answer: unknown slot {opening_times}" in errors
    assert "5: faq 'hours' is defined twice" in errors
    assert "5: faq hours: answer: never read a URL aloud; send it by SMS" in errors
