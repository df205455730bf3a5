"""Text normalisation shared by every parser: what a transcript looks like once cleaned."""

from __future__ import annotations

import re

__all__ = ["normalize", "tokens"]


def normalize(text: str) -> str:
    """Lower-case `text`, drop apostrophes and punctuation, and split letters from digits."""
    text = text.lower()
    text = re.sub(r"['’‘`]", "", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # "1,001"
    # "one thousand and six" comes out as "1,06": a thousands group short of digits
    text = re.sub(r"\b(\d{1,3}),(\d{1,2})\b", lambda m: str(int(m[1]) * 1000 + int(m[2])), text)
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


def tokens(text: str) -> list[str]:
    """The words of `normalize(text)`."""
    return normalize(text).split()
