"""The typed conversation set (`conversations/`, `postvoice conversations`): every call written
the way callers talk reaches its expected outcome, through the same agent a phone call uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.conversations import SHIPPED, load_conversations, run_conversation

# Written by others from the rules alone, after the shipped set (see conversations/README.md).
HELD_OUT = [SHIPPED / "heldout", SHIPPED / "heldout2"]
CONVERSATIONS = load_conversations(SHIPPED) + [
    c for d in HELD_OUT if d.is_dir() for c in load_conversations(d)
]
KNOWN_FAILURES = {
    "h2-corr-reschedule-friday-to-monday": (
        "'Friday, no, Monday's better actually, I'm away Friday': the reason after the "
        "correction names the old day last, and the old day is booked"
    ),
}


def test_the_set_covers_every_category_and_is_large_enough():
    categories = {c.category for c in CONVERSATIONS}
    assert {
        "corrections", "thread", "multi_request", "relative", "confirm", "truthful", "faq",
        "privacy", "outbound", "procedures",
    } <= categories  # fmt: skip
    assert len(CONVERSATIONS) >= 100


@pytest.mark.parametrize(
    "conv",
    [
        pytest.param(
            c,
            id=f"{c.category}/{c.name}",
            marks=[pytest.mark.xfail(reason=KNOWN_FAILURES[c.name], strict=True)]
            if c.name in KNOWN_FAILURES
            else [],
        )
        for c in CONVERSATIONS
    ],
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
