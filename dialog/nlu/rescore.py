"""Which of the decoder's hypotheses to keep, given what the dialog expects next.

The decoder's best guess is kept unless a runner-up that is nearly as likely fits the question
the caller is answering and the best does not: asked for an order number, "ten oh five" beats
"ten oh five." only by a hair, but "10.05" (no number) loses to "1005" (a number). Nothing is
made up: the choice is always one of the decoder's own hypotheses.

    index = choose([("Tend to five.", -0.41), ("1025", -0.52)], Hints(slot="order_number"))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from dialog.events import Hints
from dialog.understanding import (
    parse_email,
    parse_order_number,
    parse_phone,
    parse_yes_no,
    parse_zip,
)

__all__ = ["MARGIN", "choose", "fits"]

MARGIN = 0.35
"""How much less likely (mean log-probability per token) a runner-up may be and still win by
fitting the question; further behind, the decoder's own ranking stands."""


def _factor(text: str) -> bool:
    return bool(parse_zip(text) or parse_email(text) or parse_phone(text))


_FITS: dict[str, Callable[[str], bool]] = {
    "order_number": lambda t: parse_order_number(t) is not None,
    "zip": lambda t: parse_zip(t) is not None,
    "email": lambda t: parse_email(t) is not None,
    "phone": lambda t: parse_phone(t) is not None,
    "verification": _factor,
    "yes_no": lambda t: parse_yes_no(t) is not None,
}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def fits(text: str, hints: Hints | None) -> int:
    """How well `text` answers the question behind `hints`: 2 for the expected kind of value,
    1 for naming one of the expected words, 0 for neither."""
    if hints is None or not text.strip():
        return 0
    check = _FITS.get(hints.slot or "")
    if check is not None and check(text):
        return 2
    said = _words(text)
    if any(_words(word) and _words(word) <= said for word in hints.vocabulary):
        return 1
    return 0


def choose(hypotheses: Sequence[tuple[str, float]], hints: Hints | None) -> int:
    """Index of the hypothesis to keep; `hypotheses` are (text, mean log-probability per token),
    best first, as the decoder ranks them."""
    if len(hypotheses) < 2 or hints is None:
        return 0
    best_text, best_score = hypotheses[0]
    best_fit = fits(best_text, hints)
    chosen = 0
    for index, (text, score) in enumerate(hypotheses[1:], start=1):
        if best_score - score > MARGIN:
            break
        fit = fits(text, hints)
        if fit > best_fit:
            chosen, best_fit = index, fit
    return chosen
