"""The typed conversation set (`conversations/`, `postvoice conversations`): every call written
the way callers talk reaches its expected outcome, through the same agent a phone call uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice.conversations import SHIPPED, load_conversations, run_conversation

HELD_OUT = SHIPPED / "heldout"
CONVERSATIONS = load_conversations(SHIPPED) + (
    load_conversations(HELD_OUT) if HELD_OUT.is_dir() else []
)


def test_the_set_covers_every_category_and_is_large_enough():
    categories = {c.category for c in CONVERSATIONS}
    assert {
        "corrections", "thread", "multi_request", "relative", "confirm", "truthful", "faq",
        "privacy", "outbound", "procedures",
    } <= categories  # fmt: skip
    assert len(CONVERSATIONS) >= 100


@pytest.mark.parametrize(
    "conv", CONVERSATIONS, ids=[f"{c.category}/{c.name}" for c in CONVERSATIONS]
)
async def test_conversation_reaches_its_outcome(conv):
    outcome = await run_conversation(conv)
    assert outcome.passed, "\n".join([*outcome.failures, outcome.transcript()])


def test_a_mistake_in_a_conversation_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "category: x\nconversations:\n"
        "  - name: a\n    from: '+1'\n    turns: [{text: hi, dtmf: '1'}]\n"
    )
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        load_conversations(tmp_path)


async def test_a_failed_expectation_is_reported_with_the_turn():
    (conv,) = [c for c in load_conversations(SHIPPED) if c.name == "gift-cards"]
    conv = conv.model_copy(deep=True)
    conv.turns[0].expect.says = ["we sell gift cards"]
    outcome = await run_conversation(conv)
    assert outcome.failures and outcome.failures[0].startswith("turn 1: the reply does not contain")
