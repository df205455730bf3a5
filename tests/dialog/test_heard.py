"""Understanding callers in voices not the agent's: the heard files, their scoring per voice,
the techniques that read past mishearings (look-alike digits, key words heard as neighbours,
hypotheses rescored by the question) and the switch that measures each one."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialog.events import Hints
from dialog.nlu.dataset import load_set
from dialog.nlu.heard import (
    DEFAULT_HEARD,
    SPOKEN_SET,
    TECHNIQUES,
    format_voices,
    load_heard,
    score_voices,
    without,
)
from dialog.nlu.numbers import repair_digits, reshaped_order_numbers
from dialog.nlu.rescore import choose, fits
from dialog.nlu.sounds_like import respell
from dialog.slots import SLOT_TYPES, SlotContext
from dialog.understanding import classify

SPOKEN = "\n".join(
    [
        '- {text: "Ten oh five.", intent: "order_status", order_number: "1005",'
        ' hints: "order_number"}',
        '- {text: "nine four one one zero", intent: "unknown", zip: "94110",'
        ' hints: "verification"}',
        '- {text: "It\'s nine, four, one, one, zero.", intent: "unknown", zip: "94110",'
        ' hints: "verification"}',
        '- {text: "I\'d like a refund, please.", intent: "refund_request"}',
    ]
)


def _heard(tmp_path: Path, voice: str, split: str, lines: list[tuple[str, str, str]]) -> None:
    rows = "\n".join(
        f'- {{said: "{said}", text: "{text}", speed: 1.0, noise: "{noise}", confidence: 0.5}}'
        for said, text, noise in lines
    )
    (tmp_path / f"{voice}.yaml").write_text(
        f'voice: {voice}\nsplit: {split}\ndescription: "a voice"\nheard:\n{rows}\n'
    )


@pytest.fixture
def heard_dir(tmp_path):
    (tmp_path / "spoken.yaml").write_text(SPOKEN)
    heard = tmp_path / "heard"
    heard.mkdir()
    _heard(
        heard,
        "voice-a",
        "test",
        [
            ("Ten oh five.", "10.05", "quiet"),
            ("nine four one one zero", "9 or 1 1 year old", "street"),
            ("It's nine, four, one, one, zero.", "It's 9, 4, 1, 1, 0.", "room"),
            ("I'd like a refund, please.", "I'd like a reason, please.", "room"),
        ],
    )
    _heard(
        heard,
        "voice-b",
        "tuning",
        [("Ten oh five.", "1005", "quiet"), ("I'd like a refund, please.", "refund", "quiet")],
    )
    return tmp_path


def test_every_voice_is_scored_on_its_own_and_tuning_voices_stay_out_of_the_totals(heard_dir):
    scores = score_voices(heard_dir / "heard", heard_dir / "spoken.yaml")
    assert [s.voice for s in scores] == ["voice-a", "voice-b"]  # test voices first
    a, b = scores
    assert (a.slots["order_number"].right, a.slots["order_number"].total) == (1, 1)  # 10.05
    assert (a.slots["zip"].right, a.slots["zip"].total) == (2, 2)  # "9 or 1 1 year" repaired
    assert a.slots["intent"].right == 4  # "a reason" heard for "a refund" read back
    assert b.missing == 2  # two spoken lines this voice never said
    text = format_voices(scores)
    assert "test voices together (1 voices)" in text
    assert "voice-b" in text and "2 spoken lines not heard" in text


def test_without_a_technique_the_same_files_score_lower(heard_dir):
    with without(["digit_repair", "sounds_like"]):
        (a, _b) = score_voices(heard_dir / "heard", heard_dir / "spoken.yaml")
    assert a.slots["zip"].right == 1
    assert a.slots["intent"].right == 3
    (a, _b) = score_voices(heard_dir / "heard", heard_dir / "spoken.yaml")
    assert a.slots["zip"].right == 2  # switched back on after the block


def test_without_digit_repair_no_question_reads_look_alikes():
    assert classify("a return label for order 10 or 3").order_number == "1003"
    with without(["digit_repair"]):
        assert classify("a return label for order 10 or 3").order_number is None


def test_a_technique_nobody_knows_is_an_error():
    with pytest.raises(ValueError, match="digit_repair"), without(["magic"]):
        pass
    assert set(TECHNIQUES) == {"digit_repair", "sounds_like", "order_shapes"}


def test_a_second_factor_said_twice_passes_when_either_try_is_heard(heard_dir):
    (a, _b) = score_voices(heard_dir / "heard", heard_dir / "spoken.yaml")
    assert (a.second_factor_calls.right, a.second_factor_calls.total) == (2, 2)


def test_a_file_that_is_not_a_heard_file_names_itself(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("heard: []\n")
    with pytest.raises(ValueError, match=r"x\.yaml"):
        load_heard(bad)


def test_the_shipped_heard_files_cover_every_spoken_line_in_every_voice():
    from harness.callers import VOICES

    said = {entry.text for entry in load_set(SPOKEN_SET)}
    files = sorted(DEFAULT_HEARD.glob("*.yaml"))
    assert {p.stem for p in files} == {v.name for v in VOICES}
    for path in files:
        heard = load_heard(path)
        assert {h.said for h in heard.heard} == said, path.name
        assert heard.split == next(v.split for v in VOICES if v.name == heard.voice)


# --- look-alike digits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heard", "repaired"),
    [
        ("9 or 1 1 year old", "9 four 1 1 zero old"),
        ("Oh, two one three eyes.", "oh two one three nine"),
        ("one near zero five", "one zero zero five"),
        ("it's big, near, big, one or", "its six zero six one four"),
        # espeak's "zero" as "near of" / "near or"; "10 or 8" is ten oh eight
        ("one near of near of three", "one zero zero three"),
        ("One near or near or near, or one", "one zero zero zero one"),
        ("It should be 10 or 8.", "it should be 10 zero 8"),
    ],
)
def test_look_alike_words_next_to_numbers_are_read_as_digits(heard, repaired):
    assert repair_digits(heard) == repaired


@pytest.mark.parametrize(
    "heard",
    ["I want it for free", "a big one", "is it near", "or maybe one", "it was a good year"],
)
def test_look_alikes_away_from_a_run_of_numbers_stay_words(heard):
    from dialog.understanding import normalize

    assert repair_digits(heard) == normalize(heard)


def test_the_digit_slots_read_look_alikes_and_still_want_the_exact_digits():
    ctx = SlotContext(today=__import__("datetime").date(2026, 12, 3))
    assert SLOT_TYPES["zip"].parse("9 or 1 1 year old", ctx) == "94110"
    assert SLOT_TYPES["second_factor"].parse("oh two one three eyes", ctx).value == "02139"
    assert SLOT_TYPES["order_number"].parse("one near zero five", ctx) == "1005"
    assert SLOT_TYPES["zip"].parse("the big one", ctx) is None
    # a clear answer is read as it was heard
    assert SLOT_TYPES["zip"].parse("94111", ctx) == "94111"


# --- order numbers written in another shape -------------------------------------------------


@pytest.mark.parametrize(
    ("heard", "numbers"),
    [
        ("I'm checking on order 101.", ["1001"]),  # ten oh one, the oh dropped
        ("Order number 103", ["1003"]),
        ("10006", ["1006"]),  # one zero zero six, a zero doubled
        ("1 0 0 0 4", ["1004"]),
        ("I'm calling about 10003 and over 10004", ["1003", "1004"]),
        ("It should be 10 or 8.", ["1008"]),
        ("order 1003", []),  # the right shape: an order number, no guess
        ("my zip is 94110", []),  # five digits without a doubled zero
        ("I've got 3 kids", []),
        ("100001", []),
        ("1,12", []),
    ],
)
def test_numbers_in_another_shape_are_guessed_as_order_numbers(heard, numbers):
    assert reshaped_order_numbers(heard) == numbers


def test_the_order_number_slot_guesses_only_where_it_hears_nothing():
    ctx = SlotContext(today=__import__("datetime").date(2026, 12, 3))
    slot = SLOT_TYPES["order_number"]
    assert slot.parse("order number 103", ctx) is None
    assert slot.guess("order number 103", ctx) == "1003"
    assert slot.guess("one near of near of near of six", ctx) == "1006"  # repaired, then shaped
    assert slot.guess("10003 or 10004", ctx) is None  # two guesses: none
    with without(["order_shapes"]):
        assert slot.guess("order number 103", ctx) is None


# --- key words heard as neighbours -----------------------------------------------------------


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("I want a reason.", "refund_request"),
        ("I want to talk to the real version.", "human"),
        ("I want to hand it back.", "return_request"),
        ("The item I received is the active.", "damaged_item"),
        ("Can you re-believe my package?", "reschedule_delivery"),
        # from the tuning voices' misses (stop 23): measured on the test voices, 2 more lines
        ("I'd like a refill, please.", "refund_request"),
        ("When will I get my mother back?", "refund_status"),
        ("I want to defend it back.", "return_request"),
        ("I made a mistake in my arrest.", "wrong_address"),
    ],
)
def test_a_key_word_heard_as_its_neighbour_is_understood(heard, intent):
    assert classify(heard).intent == intent


def test_what_was_understood_as_heard_is_never_re_read():
    # "reason" is a refund only when nothing else was understood
    assert classify("the reason is it doesn't fit, I want to return it").intent == "return_request"
    assert classify("hello").intent == "unknown"
    assert classify("what are your opening hours").intent == "unknown"
    assert respell("where is my order") == "where is my order"


def test_a_guess_from_a_respelled_word_is_less_sure_than_the_word_itself():
    assert classify("I want a reason.").score < classify("I want a refund.").score


# --- hypotheses rescored by the question -----------------------------------------------------


def test_a_runner_up_that_answers_the_question_wins_when_nearly_as_likely():
    hypotheses = [("Tend to five.", -0.41), ("1025", -0.52)]
    assert choose(hypotheses, Hints(slot="order_number")) == 1
    assert choose(hypotheses, None) == 0  # no question, the decoder's order stands
    assert choose(hypotheses, Hints(slot="yes_no")) == 0  # neither answers it


def test_a_runner_up_far_behind_never_wins():
    assert choose([("Tend to five.", -0.2), ("1025", -0.9)], Hints(slot="order_number")) == 0


def test_naming_an_expected_word_counts_less_than_the_expected_value():
    hints = Hints(slot="zip", vocabulary=("wool sweater",))
    assert fits("94110", hints) == 2
    assert fits("the wool sweater", hints) == 1
    assert fits("hello", hints) == 0
    assert choose([("the wool sweater", -0.3), ("9 4 1 1 0", -0.4)], hints) == 1


def test_a_phone_number_said_in_parts_with_words_between_is_one_number():
    from dialog.understanding import parse_phone

    said = "Area code four one five, then five five five, zero one zero five."
    assert parse_phone(said) == "+14155550105"
    assert parse_phone("order 1001 and zip 94110") is None  # nine digits of two things
    assert parse_phone("my number is 415 555 0101") == "+14155550101"
