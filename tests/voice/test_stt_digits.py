"""The digits-only decode's pieces: which tokens tiny.en may still write, and when it runs."""

from __future__ import annotations

import re

import pytest

from dialog.events import Hints
from voice.stt_digits import digits_only_suppression, expects_digits, wants_digits
from voice.stt_models import default_model_dir


@pytest.fixture(scope="module")
def tokenizer():
    """tiny.en's own tokenizer, as the transcriber builds it (without loading the model)."""
    import tokenizers
    from faster_whisper.tokenizer import Tokenizer

    model = default_model_dir()
    return Tokenizer(tokenizers.Tokenizer.from_file(str(model / "tokenizer.json")), False)


@pytest.fixture(scope="module")
def suppressed(tokenizer) -> set[int]:
    return set(digits_only_suppression(tokenizer))


def test_every_token_of_the_model_but_digits_commas_hyphens_and_the_end_is_suppressed(
    tokenizer, suppressed
):
    vocabulary = (default_model_dir() / "vocabulary.txt").read_text().splitlines()
    kept = set(range(len(vocabulary))) - suppressed
    assert max(suppressed) == len(vocabulary) - 1  # the timestamps too, and nothing beyond
    assert tokenizer.eot in kept
    for token in kept - {tokenizer.eot}:
        assert re.fullmatch(r"[ ]?[0-9]+|[ ]?[,\-]", tokenizer.decode([token])), token
    assert 1000 < len(kept) < 2000  # tiny.en has 1,694 such tokens


@pytest.mark.parametrize("text", ["1", " 1", " 100", "000", ",", " ,", "-", " -"])
def test_digits_and_separators_may_be_written(tokenizer, suppressed, text):
    (token,) = tokenizer.encode(text)
    assert token not in suppressed


@pytest.mark.parametrize("text", [" free", " high", " nero", " one", " oh", ".", "?", " I"])
def test_words_and_other_punctuation_may_not(tokenizer, suppressed, text):
    assert set(tokenizer.encode(text)) <= suppressed


def test_the_prompt_and_timestamp_tokens_may_not(tokenizer, suppressed):
    specials = (tokenizer.sot, tokenizer.no_timestamps, tokenizer.timestamp_begin)
    assert set(specials) <= suppressed


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        ("order_number", True),
        ("zip", True),
        ("phone", True),
        ("verification", True),
        ("yes_no", False),
        ("email", False),
        ("rating", False),
        (None, False),
    ],
)
def test_the_questions_answered_in_digits(slot, expected):
    assert expects_digits(Hints(slot=slot)) is expected
    assert wants_digits("Tend to five.", Hints(slot=slot)) is expected


def test_a_transcript_with_the_value_already_is_not_decoded_again():
    order = Hints(slot="order_number")
    assert not wants_digits("It's 10, 0, 5.", order)
    assert not wants_digits("Ten oh five.", order)  # the dialog reads it as 1005
    assert not wants_digits("Tend to five.", None)
