"""The simulated caller's answer rules: what each agent line is taken to ask, and what the
persona answers. Each rule has an agent line only it classifies right."""

from __future__ import annotations

import random

import pytest

from harness.caller_rules import (
    DEFAULT_PHRASINGS,
    RULES,
    Caller,
    Question,
    classify,
    says_done,
    spoken,
)
from harness.persona import Persona

AGENT_LINES = {
    Question.GOODBYE: "Thanks for calling Northwind Goods. Goodbye.",
    Question.HANDOFF: "Sure, I'll connect you with a person now.",
    Question.ANYTHING_ELSE: "Done. Is there anything else I can help with?",
    Question.SAY_AGAIN: "Sorry, I didn't catch that. Could you say it again?",
    Question.STILL_THERE: "Are you still there?",
    Question.ORDER_CHOICE: "Is this about your linen shirt, or your trail running shoes?",
    Question.NEW_ZIP: "And the ZIP code?",
    Question.ZIP: "First, for your security: what's the ZIP code on the order? The email "
    "address works too.",
    Question.ORDER_NUMBER: "What's your order number? You can say it, or type it on your "
    "keypad and then press pound.",
    Question.EMAIL: "What's the email address on the order?",
    Question.PHONE: "What's the phone number on the order?",
    Question.STREET: "What's the new street address, with the house number?",
    Question.CITY: "And the city and state?",
    Question.SIZE: "Which size would you like? We have S and L.",
    Question.REASON: "What's the reason for the return?",
    Question.DAY: "Which day would suit you? FedEx can come any day up to Friday.",
    Question.COUPON: "Which code are you trying to use?",
    Question.RATING: "On a scale of one to five, how happy are you with your order?",
    Question.CHOICE: "I can give you store credit of $65 right away, or a refund of $65 to "
    "your Visa once we receive it. Which would you prefer?",
    Question.OPEN: "Hi, thanks for calling Northwind Goods. What can I do for you?",
    Question.CONFIRM: "So I'll refund $55 to your Visa for your vase. Shall I go ahead?",
    Question.OTHER: "Your linen shirt is on its way with UPS.",
}


def persona(**fields) -> Persona:
    data = {
        "name": "p",
        "calls_from": "+14155550103",
        "goals": [
            {
                "procedure": "exchange",
                "order": "1005",
                "ask": ["can I exchange my sweater?"],
                "done_when": ["return number"],
            }
        ],
        "facts": {"order_number": "1005", "zip": "60614", "size": "large", "size_is": "L"},
    }
    data.update(fields)
    return Persona.model_validate(data)


def caller(**fields) -> Caller:
    return Caller(persona(**fields), random.Random("test"))


def opened(**fields) -> Caller:
    c = caller(**fields)
    c.answer(AGENT_LINES[Question.OPEN])
    return c


def test_every_rule_has_a_line():
    assert {q for q, _ in RULES} | {Question.OTHER} == set(AGENT_LINES)


@pytest.mark.parametrize("question", list(AGENT_LINES))
def test_each_agent_line_is_classified_by_its_rule(question):
    assert classify(AGENT_LINES[question]) is question


def test_a_goodbye_after_other_sentences_ends_the_call():
    assert classify("Your ticket number is 12. Thanks for calling. Goodbye.") is Question.GOODBYE


def test_the_last_question_decides():
    text = "Thank you. What's the reason for the return?"
    assert classify(text) is Question.REASON


def test_opening_states_the_goal_and_gives_its_reason():
    answer = caller().answer(AGENT_LINES[Question.OPEN])
    assert answer.text == "can I exchange my sweater?"
    assert "opening" in answer.reason


def test_zip_is_given_spoken_digit_by_digit():
    answer = opened().answer(AGENT_LINES[Question.ZIP])
    assert "six zero six one four" in answer.text
    assert answer.reason == "asked for ZIP → gave zip 60614"


def test_numbers_can_be_said_in_pairs_or_as_numerals():
    assert spoken("order_number", "1005", "pairs") == "ten oh five"
    assert spoken("order_number", "1005", "numerals") == "1005"
    assert spoken("email", "a.b@example.com", "digits") == "a dot b at example dot com"


def test_a_keypad_user_types_when_the_keypad_is_offered():
    answer = opened(manner={"keypad": True}).answer(AGENT_LINES[Question.ORDER_NUMBER])
    assert (answer.kind, answer.text) == ("dtmf", "1005#")


def test_a_slip_is_said_first_then_corrected_when_asked_again():
    c = opened(facts={"order_number": "1005", "slips": {"order_number": "1006"}})
    first = c.answer(AGENT_LINES[Question.ORDER_NUMBER])
    assert "one zero zero six" in first.text
    again = c.answer("I couldn't find order 1006. What's your order number?")
    assert "one zero zero five" in again.text
    assert again.repair


def test_a_wrong_size_read_back_is_corrected():
    c = opened()
    answer = c.answer("So I'll exchange your sweater, size M, for size S. Shall I go ahead?")
    assert answer.repair and "size L" in answer.text
    assert "read back size S" in answer.reason


def test_a_right_read_back_is_confirmed():
    c = opened()
    answer = c.answer("So I'll exchange your sweater, size M, for size L. Shall I go ahead?")
    assert answer.text in ("yes", "yes please", "yeah, go ahead", "that's right", "yes, thank you")


def test_what_it_does_not_know_it_says_so():
    answer = opened().answer(AGENT_LINES[Question.COUPON])
    assert answer.text in DEFAULT_PHRASINGS["dont_know"]
    assert "doesn't know" in answer.reason


def test_a_choice_is_made_from_the_facts():
    c = opened(facts={"order_number": "1005", "resolution": "store credit"})
    assert c.answer(AGENT_LINES[Question.CHOICE]).text == "store credit, please"


def test_goal_met_then_anything_else_is_no_then_goodbye_hangs_up():
    c = opened()
    done = c.answer(
        "Done. Your return number is R M A, five. Is there anything else I can help with?"
    )
    assert c.satisfied and "that's all" in done.reason
    assert c.answer(AGENT_LINES[Question.GOODBYE]).kind == "hangup"


REFUND = [{"procedure": "damaged", "order": "1009", "ask": ["my vase"], "done_when": ["refunded"]}]


def test_a_refusal_that_names_the_outcome_does_not_meet_the_goal():
    c = opened(goals=REFUND)
    turn = c.answer(
        "This item has already been refunded, so I can't refund it again. Anything else?"
    )
    assert not c.satisfied and turn.repair  # it asks again, as a caller whose vase is broken
    c.answer("Done. I've refunded $55 to your Visa. It usually shows up within five days.")
    assert c.satisfied


@pytest.mark.parametrize(
    ("said", "phrases", "done"),
    [
        ("This item has already been refunded.", ["refunded"], False),
        ("It was not refunded.", ["refunded"], False),
        ("I can’t refund it, it's never been refunded before.", ["refunded"], False),
        ("Your vase hasn't been delivered yet.", ["delivered yet"], False),
        ("We refunded $55 to your Visa on May 3.", ["refunded"], True),
        ("No problem. Your return number is R M A 5.", ["return number"], True),
        ("That code has already been used.", ["already"], True),  # the denial is the outcome
        ("We don't sell gift cards at the moment.", ["don't sell gift cards"], True),
        ("We don't sell gift cards at the moment.", ["gift cards"], False),
        ("It's delivered, and I can't say more. The return window is over.", ["delivered"], True),
    ],
)
def test_a_done_phrase_counts_unless_denied_just_before_it(said, phrases, done):
    assert says_done(said, phrases) is done


def test_patience_runs_out_on_the_same_question():
    c = opened(manner={"patience": 2})
    for _ in range(2):
        assert c.answer(AGENT_LINES[Question.SIZE]).kind == "say"
    assert c.answer(AGENT_LINES[Question.SIZE]).kind == "hangup"


def test_an_unserved_goal_is_asked_again_until_patience_runs_out():
    c = opened(manner={"patience": 1})
    again = c.answer(AGENT_LINES[Question.ANYTHING_ELSE])
    assert again.repair and again.text == "can I exchange my sweater?"
    assert c.answer(AGENT_LINES[Question.ANYTHING_ELSE]).kind == "hangup"


def test_two_goals_at_once_are_said_together():
    goals = [
        {"procedure": "reschedule", "order": "1006", "ask": ["my lamp delivery failed"]},
        {"procedure": "exchange", "order": "1005", "ask": ["I'd like a large sweater"]},
    ]
    answer = caller(goals=goals, together=True).answer(AGENT_LINES[Question.OPEN])
    assert "lamp" in answer.text and "sweater" in answer.text


def test_the_same_seed_gives_the_same_answers():
    p = persona(manner={"disfluency": 0.5, "verbosity": 0.5})
    lines = [AGENT_LINES[q] for q in (Question.OPEN, Question.ZIP, Question.SIZE)]
    runs = []
    for _ in range(2):
        c = Caller(p, random.Random(7))
        runs.append([c.answer(line).text for line in lines])
    assert runs[0] == runs[1]
