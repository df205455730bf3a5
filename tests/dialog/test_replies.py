"""Replies made for the ear: short sentences, numbers as people say them, never a URL."""

from __future__ import annotations

import re

import pytest

from dialog.loader import load_flows
from dialog.schema import ActionStep, CollectStep, SayStep
from dialog.speech import items_are_plural, say_code, say_list, say_reference, say_size
from harness.scenario import load_scenario
from integrations.demo import DemoShop
from tests.dialog.calls import demo_shop
from tests.dialog.test_scenarios import TEXT_SCENARIOS, play

_URL = re.compile(r"https?://|www\.|\.com\b|\.org\b", re.IGNORECASE)
_MAX_WORDS = 32  # a sentence longer than this is hard to follow on the phone


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", text) if s]


@pytest.mark.parametrize("path", TEXT_SCENARIOS, ids=[p.stem for p in TEXT_SCENARIOS])
async def test_no_url_no_digits_for_money_or_orders_and_short_sentences(path):
    report = await play(load_scenario(path), DemoShop.in_memory())
    for turn in report["turns"]:
        if turn["role"] != "agent":
            continue
        text = turn["text"]
        assert not _URL.search(text), text
        assert "$" not in text and "%" not in text, text
        assert not re.search(r"\b\d{4,}\b", text), text  # order numbers, card digits, ZIPs
        for sentence in _sentences(text):
            assert len(sentence.split()) <= _MAX_WORDS, sentence


def test_every_template_is_short_enough_to_follow():
    flows = load_flows()
    for flow in flows.flows.values():
        for step in flow.steps:
            texts = []
            if isinstance(step, SayStep):
                texts = [step.say, step.empathetic or ""]
            elif isinstance(step, CollectStep):
                texts = [step.ask, step.reprompt or "", step.empathetic or ""]
            elif isinstance(step, ActionStep):
                texts = [step.confirm or "", step.say_first or ""]
            for text in texts:
                for sentence in _sentences(text):
                    assert len(sentence.split()) <= _MAX_WORDS - 8, (flow.name, sentence)
    words = [entry.answer for entry in flows.faq]
    words += [t for t in flows.conversation.model_dump().values() if isinstance(t, str)]
    for text in words:
        for sentence in _sentences(text):
            assert len(sentence.split()) <= _MAX_WORDS - 4, sentence


def test_codes_references_sizes_and_lists_for_the_ear():
    assert say_code("SAVE20") == "save twenty"
    assert say_code("VIP50") == "V I P fifty"
    assert say_code("SUMMER15") == "summer fifteen"
    assert say_reference("RMA-50013") == "R M A, five zero zero one three"
    assert say_reference("T-10001") == "T, one zero zero zero one"
    assert [say_size(s) for s in ("S", "xl", "9")] == ["small", "extra large", "nine"]
    assert say_list(["small", "large"]) == "small and large"
    assert say_list(["a", "b", "c"], "or") == "a, b, or c"


async def test_items_agree_with_their_verb():
    shop = demo_shop()
    earbuds, shirt = await shop.orders.order("1003"), await shop.orders.order("1001")
    assert earbuds is not None and shirt is not None
    assert items_are_plural(earbuds)  # earbuds were
    assert not items_are_plural(shirt)  # the shirt was
