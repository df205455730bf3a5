"""Off script: when the shop's FAQ answers before any procedure, and how the call goes on after.

`dialog.faq` finds the entries an utterance asks about; here the agent decides whether they
win over a request it recognised ("what's your return policy?" is a question about the shop,
"where is my return?" a procedure), and says the answers with what each entry says follows.
"""

from __future__ import annotations

from collections.abc import Sequence

from dialog import understanding
from dialog.engine import Engine
from dialog.events import EndCall, Event, Hints, Say
from dialog.faq import answers_over_request, match_faqs
from dialog.open_question import OpenQuestion
from dialog.requests import NOT_PROCEDURES
from dialog.schema import FaqEntry
from dialog.understanding import Understanding

__all__ = ["faq_first", "faq_reply"]


def faq_first(text: str, heard: Understanding, entries: Sequence[FaqEntry]) -> bool:
    """Whether the FAQ answers this before any procedure: a question about the shop in
    general, or nothing else understood."""
    if not match_faqs(text, entries):
        return False
    if heard.intent in NOT_PROCEDURES and heard.intent != "human":
        return True
    return (understanding.is_question(text) and answers_over_request(text)) or (
        understanding.speaks_other_language(text)
    )


def faq_reply(engine: Engine, entries: Sequence[FaqEntry], asking: OpenQuestion) -> list[Event]:
    """The shop's answers, then what the last entry says follows: the call goes on where it
    was, a person is offered (a yes or a no expected), or it ends."""
    answer = " ".join(engine.render(e.answer) for e in entries)
    then = entries[-1].then
    if then == "end_call":
        engine.finished = True
        return [Say(answer), EndCall("faq")]
    if then == "offer_person":
        return [Say(answer), Hints(slot="yes_no")]
    if engine.waiting is not None:
        return asking.repeat(answer, short=False)
    return [Say(answer), *asking.anything_else()]
