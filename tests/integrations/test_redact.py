"""Card numbers never reach a log or a transcript; other numbers callers say are kept."""

import logging

import pytest

from integrations.redact import CARD_PLACEHOLDER, RedactingFilter, luhn_valid, redact_card_numbers


@pytest.mark.parametrize(
    "said",
    [
        "my card is 4242 4242 4242 4242",
        "it's 4242-4242-4242-4242 expiring soon",
        "5555555555554444",
        "378282246310005",  # American Express, 15 digits
        "four two four two four two four two four two four two four two four two",
        "Four, two, four, two, four, two, four, two, four, two, four, two, four, two, four, two.",
    ],
)
def test_card_numbers_are_removed(said):
    cleaned = redact_card_numbers(said)
    assert CARD_PLACEHOLDER in cleaned
    assert "4242" not in cleaned and "4444" not in cleaned and "0005" not in cleaned
    assert "two four two four" not in cleaned.lower()


@pytest.mark.parametrize(
    "said",
    [
        "order 1001 please",
        "my number is 415 555 0101 and my zip is 94110",
        "1234 5678 9012 3456",  # fails Luhn: not a card
        "one zero zero one",
        "tracking 1Z999AA10123456784",
    ],
)
def test_other_numbers_stay(said):
    assert redact_card_numbers(said) == said


def test_luhn():
    assert luhn_valid("4242424242424242") and not luhn_valid("4242424242424241")


def test_log_records_are_redacted(caplog):
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("caller said %s", "4242 4242 4242 4242")
    assert "4242" not in caplog.text and CARD_PLACEHOLDER in caplog.text
