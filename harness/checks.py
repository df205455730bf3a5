"""A scripted caller who answers the agent's checks, as a person on the phone would.

A scenario's turns are what the caller came to say. Between them the agent may check what it
heard: it reads a number back ("I heard ten oh three. Is that right?") or asks about a request
its words only hinted at ("Is this about where your order is?"). A caller who is only a list
of clips answers such a check with their next clip ("No, thanks."), which no person would; a
person says yes when the check is right and no when it is wrong. `Checks` does that: after each
reply, it reads the agent's words from the live call record and, at a check, says "Yes." or
"No." in the caller's voice, decided by what the caller meant, never by the agent:

- a read-back is right when the value read back is the one in the text of the caller's last
  clip (the same parser reads both: an order number, a ZIP code, a phone number, an email);
- a hinted request is right when its topic is that of a request the scenario expects
  (`expect.intents`, the flows' `topics`);
- of the caller's orders offered ("Is this about the clearance rain jacket or the wireless
  earbuds?"), the caller names the one whose words are in what they said so far ("The wireless
  earbuds."), when exactly one is.

A check with nothing to decide it by (no clip said yet, no intents expected, no order or
several named) is left to the script. At most `MAX_ANSWERS` checks are answered between two
scripted turns.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np

from harness.fake_twilio import FakeTwilio
from harness.simulate import RecordEars
from harness.target import ReplayTarget

__all__ = ["MAX_ANSWERS", "Checks", "check_answer"]

MAX_ANSWERS = 2

_READ_BACK = re.compile(r"\bI heard (?P<value>.+?)\. Is that right\?", re.IGNORECASE)
_ABOUT = re.compile(r"\bIs this about (?P<topic>.+?)\?", re.IGNORECASE)
_LITTLE = {"the", "a", "an", "and", "or", "of", "with", "set", "pair", "your", "my"}


def _values(text: str) -> list[str]:
    """Every value a read-back can carry, as each parser reads it."""
    from dialog.understanding import parse_email, parse_order_number, parse_phone, parse_zip

    parsers: Sequence[Callable[[str], str | None]] = (
        parse_order_number,
        parse_zip,
        parse_phone,
        parse_email,
    )
    return [f"{i}:{v}" for i, parse in enumerate(parsers) if (v := parse(text)) is not None]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in _LITTLE and len(w) > 2}


def _option_meant(options: str, said_so_far: str) -> str | None:
    """Of "the clearance rain jacket or the wireless earbuds", the one whose words the caller
    said, if exactly one."""
    choices = [c.strip() for c in re.split(r",\s*(?:or\s+)?|\s+or\s+", options) if c.strip()]
    joined = re.sub(r"[^a-z]", "", said_so_far.lower())  # "ear buds" says "earbuds"
    named = [c for c in choices if any(w in joined for w in _words(c))]
    if len(choices) < 2 or len(named) != 1:
        return None
    return re.sub(r"^(?:the|your)\s+", "", named[0], flags=re.IGNORECASE)


def check_answer(
    agent: str, said: str | None, topics: Sequence[str], said_so_far: str = ""
) -> str | None:
    """What the caller says to the check in the agent's words `agent`: "Yes.", "No.", the
    order they mean ("The wireless earbuds."), or None (no check there, or nothing to decide
    it by). `said` is the text of the caller's last clip, `said_so_far` of every clip so far;
    `topics`, how the agent names the requests the caller came with."""
    read_back = _READ_BACK.search(agent)
    if read_back is not None:
        if said is None:
            return None
        heard = _values(read_back.group("value"))
        meant = _values(said)
        if not heard or not meant:
            return None
        return "Yes." if set(heard) & set(meant) else "No."
    about = _ABOUT.search(agent)
    if about is None:
        return None
    topic = about.group("topic").strip()
    known = {t.lower() for t in topics}
    if topics and topic.lower() in known:
        return "Yes."
    option = _option_meant(topic, said_so_far)
    if option is not None:
        return f"The {option}."
    if topics and " or " not in topic:
        return "No."  # a request hinted at that the caller did not come with
    return None


@dataclass
class Checks:
    """Answers the agent's checks on one call (see the module's doc).

    Args:
        target: the server, whose call record says what the agent said.
        speak: the caller's words in their voice, through the phone line.
        texts: what each clip the scenario plays says, by its path.
        topics: how the agent names the requests the caller came with.
    """

    target: ReplayTarget
    speak: Callable[[str], np.ndarray]
    texts: dict[str, str]
    topics: list[str]
    said: str | None = None  # the text of the last clip the caller played
    said_so_far: list[str] = field(default_factory=list)
    answered: int = 0
    _ears: RecordEars | None = None  # the agent's turns from the live call record
    _spoken: dict[str, np.ndarray] = field(default_factory=dict)

    def played(self, clip: str | None) -> None:
        """The script played `clip` (None: a turn that is not a clip)."""
        self.said = self.texts.get(str(clip)) if clip is not None else None
        if self.said:
            self.said_so_far.append(self.said)

    async def _say(self, words: str) -> np.ndarray:
        if words not in self._spoken:
            self._spoken[words] = await asyncio.to_thread(self.speak, words)
        return self._spoken[words]

    async def answer(self, call: FakeTwilio, client: httpx.AsyncClient) -> int:
        """After a reply was heard to its end: answer the checks in it, each reply to an
        answer waited for. Returns the call time of the last answer (-1: none given)."""
        if self._ears is None:
            self._ears = RecordEars(client, self.target)
        last = -1
        for _ in range(MAX_ANSWERS):
            words = await self._ears.hear(call)
            reply = check_answer(words, self.said, self.topics, " ".join(self.said_so_far))
            if reply is None or call.closed.is_set():
                return last
            self.answered += 1
            last = await call.play(await self._say(reply))
            if not await call.wait_reply(last):
                return last
        return last
