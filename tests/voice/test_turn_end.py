"""The end-of-turn predictor's decisions, on what callers really say and how they pause.

Silences are what webrtcvad counts after the caller's last voiced frame; the transcript is
the speculative one of what was said so far (None while it is being made)."""

from __future__ import annotations

import pytest

from dialog.events import Hints
from tests.voice.test_call import until
from tests.voice.test_turns import OFF, AskingAgent, Call, Ears, speech
from voice.turn_end import EndOfTurn, Pace, PredictorOptions, TurnOptions, reading

ORDER = Hints(slot="order_number", prompt="Order number:", expect_dtmf=True)
ZIP = Hints(slot="zip")
YES_NO = Hints(slot="yes_no")
OPEN = None  # "What can I do for you?": nothing in particular expected
COUPON = Hints(slot="coupon_code", vocabulary=("SAVE20", "WELCOME10"))


def predictor(**techniques) -> EndOfTurn:
    """Today's waits (600 ms, 800 for long answers, 1.5 s held) and every technique on (the
    caller's pace too, which is off by default)."""
    return EndOfTurn(TurnOptions(), PredictorOptions(**{"pace": True, **techniques}))


def first_over(end: EndOfTurn, hints: Hints | None, text: str | None, pending=False) -> int:
    """The silence (ms, 20 ms frames) at which the turn is judged over."""
    for silent in range(20, 3000, 20):
        if end.over(silent, hints, text, pending):
            return silent
    raise AssertionError("never over")


@pytest.mark.parametrize(
    ("text", "hints", "expected"),
    [
        ("one zero zero three", ORDER, "complete"),
        ("It's 1 0 0 3", ORDER, "complete"),
        ("It's one zero", ORDER, "partial"),  # the second group is coming
        ("Order 1, 0.", ORDER, "partial"),
        ("nine four one", ZIP, "partial"),
        ("94110", ZIP, "complete"),
        ("yes", YES_NO, "complete"),
        ("No, thanks.", YES_NO, "complete"),
        ("yeah, but", YES_NO, "unfinished"),
        ("maybe", YES_NO, "finished"),
        ("where is my order", OPEN, "request"),
        ("I want to return my earbuds.", OPEN, "request"),
        ("I need to talk to a person", OPEN, "request"),
        ("My order number is", OPEN, "unfinished"),
        ("Where is my order, and also", OPEN, "unfinished"),
        ("um", OPEN, "unfinished"),
        ("I'm calling about order 1 0 0 3.", OPEN, "finished"),  # "…, and order 1004"
        ("Regarding order one zero zero three.", OPEN, "finished"),
        ("I'm calling to return order 1 0 0 3.", OPEN, "request"),
        ("I ordered a lamp.", OPEN, "finished"),  # a story's first sentence: more may follow
        ("okay", OPEN, "finished"),  # a listener's word: not a start
        ("Hi.", OPEN, "opening"),
        ("Some.", OPEN, "opening"),  # tiny.en's "Um," at a pause
        ("...", OPEN, "nothing"),
        ("Wait, hold on.", OPEN, "finished"),  # said whole, not trailing off on "on"
        ("Can you put me on", OPEN, "unfinished"),
        ("It's summer 15th", COUPON, "complete"),  # said like a code, though not advertised
        ("save twenty", COUPON, "complete"),  # one of the shop's codes
        ("vip fifty", COUPON, "finished"),  # not the shop's: "… five" may follow
        ("It's summer", COUPON, "finished"),  # the number is coming
        ("the code is", COUPON, "unfinished"),
    ],
)
def test_what_the_transcript_so_far_says_about_the_turn(text, hints, expected):
    assert reading(text, hints) == expected


def test_a_whole_order_number_is_answered_after_a_short_silence():
    assert first_over(predictor(), ORDER, "one zero zero three") == 300
    assert first_over(predictor(complete_end_of_turn_ms=0), ORDER, "one zero zero three") == 800


def test_an_order_number_read_in_groups_is_not_cut_after_the_first_group():
    """ "one zero … zero three": the caller breathes between the groups."""
    assert first_over(predictor(), ORDER, "It's one zero") == 1500
    assert first_over(predictor(hold_partial_digits=False), ORDER, "It's one zero") == 800


def test_a_zip_code_read_in_groups_waits_for_the_rest():
    assert first_over(predictor(), ZIP, "nine four") == 1500
    assert first_over(predictor(), ZIP, "nine four one one zero") == 300


def test_a_plain_yes_is_answered_at_once_and_a_yes_but_waits():
    assert first_over(predictor(), YES_NO, "Yes.") == 300
    assert first_over(predictor(), YES_NO, "Yeah, but") == 1500


def test_a_whole_coupon_code_is_answered_without_the_long_wait():
    end = predictor()
    assert first_over(end, COUPON, "It's summer 15th") == 300
    assert first_over(end, COUPON, "It's summer") == 800  # the long-answer wait
    assert first_over(predictor(complete_end_of_turn_ms=0), COUPON, "save twenty") == 800


def test_a_whole_request_ends_sooner_than_the_fixed_wait():
    assert first_over(predictor(), OPEN, "Where is my order?") == 300
    assert first_over(predictor(request_end_of_turn_ms=0), OPEN, "Where is my order?") == 600


def test_a_caller_naming_what_they_call_about_is_given_the_usual_wait_to_go_on():
    """ "I'm calling about order one zero zero three, … (0.5 s) and order one zero zero four"
    was cut at the request wait."""
    assert first_over(predictor(), OPEN, "I'm calling about order 1 0 0 3.") == 600
    assert first_over(predictor(), OPEN, "Where is order 1 0 0 3?") == 300


@pytest.mark.parametrize("text", ["My order number is", "I'm calling about, um", "and also"])
def test_a_caller_trailing_off_is_given_time_to_go_on(text):
    assert first_over(predictor(), OPEN, text) == 1500


def test_a_caller_who_starts_with_a_word_and_thinks_is_waited_for():
    """ "Um, … where is my order?": an open question answered with a word that asks for
    nothing is how a caller starts."""
    assert first_over(predictor(), OPEN, "Some.") == 1500
    assert first_over(predictor(request_end_of_turn_ms=0), OPEN, "Some.") == 600


def test_a_sentence_that_may_go_on_gets_the_usual_wait():
    assert first_over(predictor(), OPEN, "I ordered a lamp.") == 600
    assert first_over(predictor(), OPEN, "okay") == 600


def test_while_the_transcript_is_being_made_the_turn_waits_for_it():
    end = predictor()
    assert not end.over(1200, OPEN, None, pending=True)
    assert end.over(1500, OPEN, None, pending=True)
    assert first_over(end, OPEN, None, pending=False) == 600  # no transcription at all


def test_a_caller_who_pauses_a_second_mid_sentence_is_given_that_second():
    """Earlier in this call they stopped 900 ms and went on: a sentence the transcript cannot
    judge waits 900 + 200 ms; a whole request or order number needs no more."""
    end = predictor()
    end.pace.paused(900)
    assert first_over(end, OPEN, "I ordered a lamp.") == 1100
    assert first_over(end, OPEN, "Where is my order?") == 300
    assert first_over(end, ORDER, "one zero zero three") == 300
    assert first_over(predictor(pace=False), OPEN, "I ordered a lamp.") == 600


def test_a_quick_caller_keeps_the_usual_waits_and_short_gaps_are_no_pause():
    end = predictor()
    end.pace.paused(120)  # between two words: not a pause
    assert end.pace.pauses == 0
    end.pace.paused(300)
    assert first_over(end, OPEN, "I ordered a lamp.") == 600  # 300 + 200 is under 600


def test_pace_never_waits_longer_than_a_held_turn():
    pace = Pace()
    pace.paused(1500)
    end = predictor()
    end.pace = pace
    assert first_over(end, OPEN, "I ordered a lamp.") == 1500


def test_with_every_technique_off_the_waits_are_as_before():
    end = EndOfTurn(TurnOptions(), PredictorOptions.off())
    end.pace.paused(1000)
    assert first_over(end, ORDER, "one zero zero three") == 800
    assert first_over(end, ORDER, "It's one zero") == 800
    assert first_over(end, OPEN, "Where is my order?") == 600
    assert first_over(end, OPEN, "My order number is") == 1500
    assert first_over(end, YES_NO, "Yes.") == 480  # the quick short answer, as before


# --- inside a call ------------------------------------------------------------------------------


async def test_in_a_call_a_whole_order_number_is_heard_without_the_long_wait(tmp_path):
    ears, agent = Ears("one zero zero three"), AskingAgent(ORDER)
    call = Call(tmp_path, ears, agent)
    await call.start()
    await call.audio(speech("order_1003_spoken"))
    await call.silence(500)  # transcribed at the 240 ms pause, over at 300 ms: not 800
    await until(lambda: agent.heard)
    assert agent.heard == ["one zero zero three"]
    await call.finish()


async def test_in_a_call_a_caller_cut_off_once_is_waited_for_after_that(tmp_path):
    """They thought for a second mid-sentence and the turn ended under them; from then on
    this caller's turns wait for that second (and 200 ms) before the agent answers."""
    ears, agent = Ears("I ordered a lamp."), AskingAgent()
    call = Call(tmp_path, ears, agent, turn_pace=True)
    await call.start()
    await call.audio(speech())
    await call.silence(1000)  # ended at 600 ms: the caller was not done ...
    await until(lambda: len(agent.heard) == 1)
    await call.audio(speech())  # ... and goes on
    assert call.session.turns.taker.end.pace.longest_ms >= 900
    await call.silence(900)  # more than the usual 600 ms, less than this caller's pause
    assert len(agent.heard) == 1
    await call.silence(600)
    await until(lambda: len(agent.heard) == 2)
    await call.finish()


async def test_in_a_call_with_the_techniques_off_the_turn_ends_at_the_usual_wait(tmp_path):
    ears, agent = Ears("I ordered a lamp."), AskingAgent()
    call = Call(tmp_path, ears, agent, **OFF)
    await call.start()
    await call.audio(speech())
    await call.silence(1000)
    await until(lambda: len(agent.heard) == 1)
    await call.audio(speech())
    await call.silence(900)
    await until(lambda: len(agent.heard) == 2)  # no more patient than before
    await call.finish()
