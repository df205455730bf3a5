"""A scripted caller answers the agent's checks by what they meant, never by the agent."""

import json
from pathlib import Path

import pytest

from harness.checks import check_answer

TOPICS = ["where your order is"]


@pytest.mark.parametrize(
    ("agent", "said", "answer"),
    [
        # a read-back: right when the value is the one in the caller's clip
        ("I heard ten oh three. Is that right?", "One, zero, zero, three.", "Yes."),
        ("I heard ten oh three. Is that right?", "It's ten oh one.", "No."),
        ("I heard nine four one one zero. Is that right?", "nine four one one zero", "Yes."),
        ("I heard nine four one one zero. Is that right?", "nine four one one two", "No."),
        ("I heard ten oh three. Is that right?", None, None),  # no clip said yet
        ("I heard ten oh three. Is that right?", "Where is my order?", None),  # no value
        # a hinted request: right when it is one the caller came with
        ("Is this about where your order is? If it's something else, tell me.", None, "Yes."),
        ("Is this about your refund? If it's something else, just tell me.", None, "No."),
        # no check
        ("Your linen shirt shipped with UPS.", "Where is my order?", None),
        ("What's your order number?", "one zero zero three", None),
    ],
)
def test_a_check_is_answered_by_what_the_caller_meant(agent, said, answer):
    assert check_answer(agent, said, TOPICS) == answer


def test_a_clip_said_with_a_pause_is_read_without_it():
    from harness.caller_clips import caller_clip_texts, parts_of

    said = " ".join(parts_of(caller_clip_texts()["pause_order_groups"])[0])
    assert check_answer("I heard ten oh three. Is that right?", said, TOPICS) == "Yes."


def test_without_the_requests_meant_a_hint_is_left_to_the_script():
    assert check_answer("Is this about where your order is?", None, []) is None


def test_of_the_orders_offered_the_caller_names_the_one_they_spoke_of():
    offered = "Is this about the clearance rain jacket or the wireless earbuds?"
    said = "I want to return my earbuds."
    assert check_answer(offered, said, TOPICS, said) == "The wireless earbuds."
    assert check_answer(offered, "It's broken.", TOPICS, "It's broken.") is None
    spaced = "I want to return my ear buds."  # the clip's words: one item in two words
    assert check_answer(offered, spaced, TOPICS, spaced) == "The wireless earbuds."
    three = "Is this about the desk lamp, the wool sweater, or the yoga mat?"
    assert check_answer(three, None, TOPICS, "the sweater is too small") == "The wool sweater."


@pytest.mark.slow
async def test_a_replayed_caller_says_yes_to_a_right_hint(tmp_path):
    from harness.checks import Checks
    from harness.replay import answering, call_scenario
    from harness.scenario import Scenario
    from harness.target import target_for
    from voice.audio import read_wav
    from voice.settings import Settings

    clips = Path(__file__).parents[2] / "audio_fixtures" / "clips"
    scenario = Scenario.model_validate(
        {
            "name": "hinted",
            "from": "+14155550101",
            "to": "+18005550100",
            "turns": [{"text": "Hi, that is my order"}, {"text": "no that's all"}],
            "expect": {"intents": ["order_status"], "agent_says": ["linen shirt"]},
        }
    )
    async with target_for(None, Settings()) as server:
        yes = read_wav(clips / "yes_please.wav")
        checks = Checks(server, lambda words: yes, {}, ["where your order is"])
        result = await call_scenario(scenario, server, drive=answering(checks, server))
    assert checks.answered == 1
    said = [t["text"] for t in result.report["turns"] if t["role"] == "agent"]
    assert any("linen shirt" in t for t in said), json.dumps(said)
    assert result.report["passed"], result.report["failures"]
