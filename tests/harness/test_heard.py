"""`postvoice nlu hear --option name=value`: each value as its `WhisperOptions` field's type."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.heard import parse_options


def test_options_take_their_fields_types():
    options = parse_options(["hypotheses=3", "second_below=0.4", "windows_s=15,30"])
    assert options == {"hypotheses": 3, "second_below": 0.4, "windows_s": (15, 30)}
    assert parse_options(["model_dir=/models/tiny"]) == {"model_dir": Path("/models/tiny")}


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("False", False)])
def test_a_yes_or_no_option_is_a_bool(value, expected):
    assert parse_options([f"digits_fallback={value}"]) == {"digits_fallback": expected}


@pytest.mark.parametrize("pair", ["digits_fallback=maybe", "digits_fallback", "nope=1"])
def test_a_mistaken_option_is_refused(pair):
    with pytest.raises(ValueError, match="--option"):
        parse_options([pair])
