"""How a simulated caller answers back: what the agent just asked, and what this persona says.

The caller knows only what a person on the phone knows: the words the agent said (as heard)
and its own persona. `classify` names the question of the agent's last sentence that asks
something, by keyword rules (`RULES`, first match wins) that hold up when speech-to-text gets a
word or two wrong; `Caller.answer` picks the fact it asks for and one of the persona's ways
of saying it (seeded, so a call is the same for a seed), corrects a wrong read-back, says "I
don't know" to what it cannot answer, and hangs up when its goals are met, the agent said
goodbye, or its patience ran out. Every answer carries its reason, for the report:

    caller = Caller(persona, random.Random("7:0"))
    answer = caller.answer("What's the ZIP code on the order?")
    answer.reason   # "asked for ZIP → gave zip 94110"
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from dialog.nlu.numbers import digit_runs
from dialog.nlu.text import normalize
from dialog.speech import say_code, say_digits, say_order_number
from harness.persona import Goal, Persona

__all__ = [
    "DEFAULT_PHRASINGS",
    "RULES",
    "Answer",
    "Caller",
    "Question",
    "classify",
    "says_done",
    "spoken",
]


class Question(StrEnum):
    """What the agent's turn asks of the caller."""

    GOODBYE = "goodbye"
    HANDOFF = "handoff"
    ANYTHING_ELSE = "anything else"
    SAY_AGAIN = "say again"
    STILL_THERE = "still there"
    ORDER_CHOICE = "which order"
    NEW_ZIP = "new ZIP"
    ZIP = "ZIP"
    ORDER_NUMBER = "order number"
    EMAIL = "email"
    PHONE = "phone"
    STREET = "street"
    CITY = "city"
    SIZE = "size"
    REASON = "reason"
    DAY = "day"
    COUPON = "coupon"
    RATING = "rating"
    CHOICE = "a choice"
    CONFIRM = "yes or no"
    OPEN = "what they want"
    OTHER = "nothing"


RULES: tuple[tuple[Question, re.Pattern[str]], ...] = tuple(
    (question, re.compile(pattern))
    for question, pattern in (
        (Question.GOODBYE, r"\bgood ?bye\b|\bbye\b|have a (lovely|nice|great) day"),
        (Question.HANDOFF, r"(i'll|i will|let me) (connect|put|transfer) you"),
        (Question.ANYTHING_ELSE, r"anything else"),
        (Question.SAY_AGAIN, r"didn't (catch|get|understand)|say (it|that) again\?|pardon"),
        (Question.STILL_THERE, r"still there"),
        (Question.ORDER_CHOICE, r"is this about|which order"),
        (Question.NEW_ZIP, r"^(and )?(the |what's the )?(new )?zip code\?"
                           r"|zip code (for|of) the new"),
        (Question.ZIP, r"zip|postcode|postal code"),
        (Question.ORDER_NUMBER, r"order number|type it on (the|your) keypad"),
        (Question.EMAIL, r"e-?mail"),
        (Question.PHONE, r"phone number"),
        (Question.STREET, r"street|house number|new address"),
        (Question.CITY, r"city|town"),
        (Question.SIZE, r"which size|what size"),
        (Question.REASON, r"reason|why are you (sending|returning)"),
        (Question.DAY, r"which day|what day|day would"),
        (Question.COUPON, r"\bcode\b"),
        (Question.RATING, r"one to five|scale of|how happy"),
        (Question.CHOICE, r"which would you prefer"
                          r"|\bor\b (a |store )?(refund|credit|replacement)\b"),
        (Question.OPEN, r"what can i (do|help)|how can i help|what would you like|help you with"),
        (Question.CONFIRM, r"shall i|is that right|would you like|do you want|did (it|your|you)"
                           r"|can i|should i|is that (ok|okay)|correct\?"),
    )
)  # fmt: skip
"""Each kind of question and the words that give it away, tried in order on the question."""

_SENTENCE = re.compile(r"[^.?!]+[.?!]?")


def _question_of(text: str) -> str:
    """The sentence that asks: the last one ending in a question mark; with none, the whole
    turn ("You can say it again, or type the ZIP code… The email works too." asks for both)."""
    asking = [s.strip() for s in _SENTENCE.findall(text) if s.strip().endswith("?")]
    return (asking[-1] if asking else text).lower()


def classify(text: str) -> Question:
    """What `text` (an agent turn, as heard) asks of the caller. A goodbye or a handover
    anywhere in it ends the call whatever else was said."""
    whole = text.lower()
    for question, pattern in RULES:
        if question in (Question.GOODBYE, Question.HANDOFF) and pattern.search(whole):
            return question
    asked = _question_of(text)
    for question, pattern in RULES:
        if pattern.search(asked):
            return question
    return Question.OTHER


DEFAULT_PHRASINGS: dict[str, list[str]] = {
    "order_number": ["it's {value}", "{value}", "the order number is {value}", "order {value}"],
    "zip": ["{value}", "it's {value}", "the zip is {value}"],
    "email": ["it's {value}", "{value}"],
    "phone": ["it's {value}", "{value}"],
    "yes": ["yes", "yes please", "yeah, go ahead", "that's right", "yes, thank you"],
    "no": ["no", "no thanks", "no, thank you"],
    "size": ["{value}", "a {value} please", "I'd like a {value}"],
    "reason": ["{value}"],
    "day": ["{value}", "{value} please", "can you do {value}?"],
    "coupon": ["{value}", "the code is {value}", "it's {value}"],
    "street": ["{value}", "it's {value}"],
    "city": ["{value}"],
    "new_zip": ["{value}", "it's {value}"],
    "rating": ["{value}", "I'd say {value}"],
    "dont_know": ["I don't know", "sorry, I don't know that", "no idea, sorry"],
    "repeat": ["I said, {value}", "{value}", "like I said, {value}"],
    "correction": ["no, it's {value}", "no no, {value}", "that's wrong, it's {value}"],
    "done": ["no, that's all, thanks", "no, that's everything", "nope, that's it, bye"],
    "give_up": ["forget it, I'll call back later", "this isn't working, bye", "never mind"],
    "filler": ["um,", "uh,", "let me see,", "hmm, okay,"],
}
"""How any caller words each kind of answer, where the persona does not say otherwise."""

_AFTERTHOUGHTS = ("sorry, it's been a long day", "I'm in a bit of a hurry", "thanks")
_COMPLAINTS = ("I'm really not happy about this.", "This is so frustrating.", "Honestly,")
_SIZES = {"xs": "XS", "s": "S", "m": "M", "l": "L", "xl": "XL", "small": "S", "medium": "M",
          "large": "L", "extra large": "XL", "extra small": "XS"}  # fmt: skip
_READ_BACK = re.compile(r"\border\b|so i'll|is that right|shall i go ahead")
_DIGIT_FACTS = ("order_number", "zip", "new_zip", "phone")
_READ_BACK_FACTS = ("order_number", "new_zip")  # the agent never reads back a second factor
_ASKS_FOR_FACT = {
    Question.ORDER_NUMBER: "order_number",
    Question.ZIP: "zip",
    Question.EMAIL: "email",
    Question.PHONE: "phone",
    Question.STREET: "street",
    Question.CITY: "city",
    Question.NEW_ZIP: "new_zip",
    Question.SIZE: "size",
    Question.REASON: "reason",
    Question.DAY: "day",
    Question.COUPON: "coupon",
    Question.RATING: "rating",
}


@dataclass(frozen=True)
class Answer:
    """One caller turn: words said, keys pressed, or hanging up (after `text`, if any)."""

    kind: Literal["say", "dtmf", "hangup"]
    text: str
    reason: str
    repair: bool = False  # a correction, or the same thing said again
    pause_s: float = 0.0


def spoken(fact: str, value: str, numbers: str) -> str:
    """A fact the way the caller says it: digits one by one, in pairs, or as numerals; an
    email with "at" and "dot"; a coupon code as people read one."""
    if fact == "email":
        return value.replace("@", " at ").replace(".", " dot ")
    if fact == "coupon":
        return value if numbers == "numerals" else say_code(value)
    digits = re.sub(r"\D", "", value)
    if fact not in _DIGIT_FACTS or not digits or numbers == "numerals":
        return value
    if fact == "phone" and len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if numbers == "pairs" and fact == "order_number":
        return say_order_number(digits)
    return say_digits(digits)


class Caller:
    """One persona on one call: what it has said and what it still wants."""

    def __init__(self, persona: Persona, rng: random.Random) -> None:
        self.persona = persona
        self.rng = rng
        self.met: set[int] = set()  # goals the agent has served
        self.stated = 0  # goals the caller has put to the agent so far
        self.opened = False
        self.done = False  # said it needs nothing more
        self.turns = 0
        self.last_question: Question | None = None
        self.same_question = 0
        self.goal_asked_again = 0  # times a goal was put again because the agent missed it
        self.slipped: set[str] = set()  # facts already said wrong once
        self.last_said = ""
        self.off_script = list(persona.manner.off_script)

    # --- the one entry point -------------------------------------------------------------------

    def answer(self, agent_text: str) -> Answer:
        """The caller's next turn after hearing `agent_text`."""
        self._note_served(agent_text)
        question = classify(agent_text)
        self.same_question = self.same_question + 1 if question == self.last_question else 1
        self.last_question = question
        if question is Question.GOODBYE:
            return Answer("hangup", "", "agent said goodbye → hung up")
        if question is Question.HANDOFF:
            return Answer("hangup", "", "agent handed over to a person → hung up to wait")
        self.turns += 1
        if self.turns > self.persona.manner.max_turns:
            return self._give_up(f"{self.persona.manner.max_turns} turns and still not done")
        if question not in (Question.OTHER, Question.STILL_THERE) and (
            self.same_question > self.persona.manner.patience
        ):
            return self._give_up(f"asked for {question} {self.same_question} times")
        correction = self._correction(agent_text)
        if correction is not None:
            return correction
        return self._reply(question, agent_text)

    # --- what the agent has done ---------------------------------------------------------------

    def _note_served(self, agent_text: str) -> None:
        for index, goal in enumerate(self.persona.goals[: max(self.stated, 1)]):
            if says_done(agent_text, goal.done_when):
                self.met.add(index)

    @property
    def satisfied(self) -> bool:
        """Every goal served."""
        return len(self.met) == len(self.persona.goals)

    def _current(self) -> tuple[int, Goal] | None:
        for index, goal in enumerate(self.persona.goals[: self.stated]):
            if index not in self.met:
                return index, goal
        return None

    # --- replies -------------------------------------------------------------------------------

    def _reply(self, question: Question, agent_text: str) -> Answer:
        for phrase, words in self.persona.facts.answers.items():
            if phrase.lower() in agent_text.lower():
                return self._say(words, f"asked {phrase!r} → answered {words!r}")
        if question is Question.OPEN or question is Question.OTHER:
            return self._state_goal(question)
        if question is Question.ANYTHING_ELSE:
            return self._anything_else()
        if question is Question.SAY_AGAIN:
            if not self.last_said:
                return self._state_goal(question)
            said = self._phrase("repeat", self.last_said)
            return self._say(
                said, "asked to say it again → repeated", repair=True, raw=True, remember=False
            )
        if question is Question.STILL_THERE:
            return self._say("yes, I'm here", "asked if still there → said yes")
        if question is Question.ORDER_CHOICE:
            return self._choose_order(agent_text)
        if question is Question.CHOICE:
            return self._choose(agent_text)
        if question is Question.CONFIRM:
            return self._yes_or_no(agent_text)
        return self._give_fact(question, _ASKS_FOR_FACT[question], agent_text)

    def _state_goal(self, question: Question) -> Answer:
        """The opening, the next goal, or (the agent did not take it up) the same goal again."""
        if not self.opened:
            self.opened = True
            if self.off_script:
                return self._say(self.off_script.pop(0), "opening → asked an off-script question")
            return self._opening()
        if self.off_script:
            return self._say(self.off_script.pop(0), f"{question} → asked an off-script question")
        if self.stated < len(self.persona.goals):
            return self._next_goal(f"{question} → asked for goal {self.stated + 1}")
        current = self._current()
        if current is None:
            return self._finish(f"{question}, goals met")
        return self._ask_again(current, f"{question}, goal {current[0] + 1} not met")

    def _opening(self) -> Answer:
        goals = self.persona.goals
        if self.persona.together:
            self.stated = len(goals)
            asks = [self.rng.choice(g.ask) for g in goals]
            text = asks[0] + ", and also " + ", and ".join(asks[1:]) if len(asks) > 1 else asks[0]
            reason = f"opening → asked for {len(goals)} things at once"
        else:
            self.stated = 1
            text = self.rng.choice(goals[0].ask)
            reason = f"opening → asked for {goals[0].procedure}"
        if self.persona.manner.upset:
            text = f"{self.rng.choice(_COMPLAINTS)} {text}"
            reason += ", upset"
        return self._say(text, reason)

    def _next_goal(self, reason: str) -> Answer:
        goal = self.persona.goals[self.stated]
        self.stated += 1
        return self._say(self.rng.choice(goal.ask), f"{reason} ({goal.procedure})")

    def _anything_else(self) -> Answer:
        if self.off_script:
            return self._say(self.off_script.pop(0), "anything else? → off-script question")
        current = self._current()
        if current is not None:
            return self._ask_again(current, f"anything else? but goal {current[0] + 1} not met")
        if self.stated < len(self.persona.goals):
            return self._next_goal("anything else? → next goal")
        return self._finish("anything else? goals met")

    def _ask_again(self, current: tuple[int, Goal], why: str) -> Answer:
        """A goal the agent has not served, put again, until patience runs out."""
        self.goal_asked_again += 1
        if self.goal_asked_again > self.persona.manner.patience:
            return self._give_up(f"{why}, asked {self.goal_asked_again} times")
        return self._say(self.rng.choice(current[1].ask), f"{why} → asked again", repair=True)

    def _finish(self, reason: str) -> Answer:
        self.done = True
        return self._say(self._phrase("done"), f"{reason} → said that's all", raw=True)

    def _give_up(self, why: str) -> Answer:
        return Answer("hangup", self._phrase("give_up"), f"{why} → gave up", pause_s=0.0)

    def _give_fact(self, question: Question, fact: str, agent_text: str) -> Answer:
        facts = self.persona.facts
        value = getattr(facts, fact)
        repeat = self.same_question > 1
        if fact == "zip" and value is None:  # the agent takes the email or phone instead
            for other in ("email", "phone"):
                if getattr(facts, other) is not None:
                    fact, value = other, getattr(facts, other)
                    break
        if value is None:
            return self._say(self._phrase("dont_know"), f"asked for {question} → doesn't know")
        value = str(value)
        correcting = False
        if fact in facts.slips and fact not in self.slipped:
            self.slipped.add(fact)
            value = facts.slips[fact]
            why = f"asked for {question} → slipped, gave {fact} {value}"
        elif fact in facts.slips:
            correcting = repeat
            why = f"asked for {question} again → gave the right {fact} {value}"
        else:
            why = f"asked for {question}" + (" again" if repeat else "") + f" → gave {fact} {value}"
        keypad = "keypad" in agent_text.lower() or "press" in agent_text.lower()
        if self.persona.manner.keypad and keypad and fact in _DIGIT_FACTS:
            digits = re.sub(r"\D", "", value)
            return Answer(
                "dtmf", digits + "#", why + " on the keypad", repeat, self.persona.manner.pause_s
            )
        kind = "zip" if fact == "zip" else fact
        return self._say(
            self._phrase(kind, spoken(fact, value, self.persona.manner.numbers)),
            why,
            repair=repeat or correcting,
            raw=True,
        )

    def _choose_order(self, agent_text: str) -> Answer:
        item = self.persona.facts.item
        if item and item.lower() in agent_text.lower():
            return self._say(f"the {item}", f"asked which order → chose the {item}")
        number = self.persona.facts.order_number
        if number:
            said = spoken("order_number", number, self.persona.manner.numbers)
            return self._say(f"order {said}", f"asked which order → gave order {number}")
        return self._say(self._phrase("dont_know"), "asked which order → doesn't know")

    def _choose(self, agent_text: str) -> Answer:
        wanted = self.persona.facts.resolution
        said = agent_text.lower()
        if wanted and wanted in said:
            return self._say(f"{wanted}, please", f"offered a choice → chose {wanted}")
        return self._say(
            "whichever is quicker", f"offered a choice without {wanted or 'a preference'}"
        )

    def _yes_or_no(self, agent_text: str) -> Answer:
        """A confirmation is a yes (a wrong read-back was corrected before this); an offer is
        taken when it serves a goal or the facts ("Would you like that?" is about the
        sentences before it)."""
        asked, said = _question_of(agent_text), agent_text.lower()
        facts = self.persona.facts
        goals = {g.procedure for g in self.persona.goals}
        if "shall i go ahead" in asked or "is that right" in asked:
            yes = True
        elif "person" in said:
            yes = "person" in goals
            if not yes and "carry on" in said:
                return self._say("let's carry on", "offered a person or carrying on → carry on")
        elif "exchange" in said or "another size" in said:
            yes = facts.resolution == "exchange" or "exchange" in goals or facts.size is not None
        elif "replacement" in said:
            yes = facts.resolution == "replacement"
        elif "start a return" in said:
            yes = bool(goals & {"return", "exchange"})
        elif "new delivery day" in said:
            yes = "reschedule" in goals
        else:
            yes = self.persona.manner.accepts_offers
        kind = "yes" if yes else "no"
        return self._say(self._phrase(kind), f"asked yes or no ({asked[:48]!r}) → {kind}", raw=True)

    # --- read-backs ----------------------------------------------------------------------------

    def _correction(self, agent_text: str) -> Answer | None:
        """A wrong number or size read back ("I couldn't find order 1008", "…for size M. Shall
        I go ahead?"): the right one, said as a correction."""
        facts = self.persona.facts
        for sentence in (s.lower() for s in _SENTENCE.findall(agent_text)):
            if not _READ_BACK.search(sentence):
                continue
            heard = [run.digits for run in digit_runs(normalize(sentence).split())]
            for fact in _READ_BACK_FACTS:
                digits = re.sub(r"\D", "", getattr(facts, fact) or "")
                if not digits:
                    continue
                wrong = [h for h in heard if len(h) == len(digits) and h != digits]
                if wrong and digits not in heard and _close(wrong[0], digits):
                    self.slipped.add(fact)
                    said = spoken(fact, digits, self.persona.manner.numbers)
                    return self._say(
                        self._phrase("correction", said),
                        f"read back {fact} {wrong[0]} → corrected to {digits}",
                        repair=True,
                        raw=True,
                    )
            size = _size_in(sentence)
            if facts.size_is and size and size != facts.size_is.upper() and "size" in sentence:
                return self._say(
                    self._phrase("correction", f"size {facts.size_is}"),
                    f"read back size {size} → corrected to {facts.size_is}",
                    repair=True,
                    raw=True,
                )
        return None

    # --- words ---------------------------------------------------------------------------------

    def _phrase(self, kind: str, value: str = "") -> str:
        options = self.persona.manner.phrasings.get(kind) or DEFAULT_PHRASINGS[kind]  # type: ignore[call-overload]
        return self.rng.choice(options).replace("{value}", value)

    def _say(
        self,
        text: str,
        reason: str,
        *,
        repair: bool = False,
        raw: bool = False,
        remember: bool = True,
    ) -> Answer:
        """`text` with the persona's fillers, afterthoughts and pause; `raw` texts are
        phrasings already (no filler before them when they are a repair, which people say
        straight out). `remember`: what a "say it again" repeats."""
        manner = self.persona.manner
        words = text
        if not (raw and repair) and manner.disfluency and self.rng.random() < manner.disfluency:
            words = f"{self._phrase('filler')} {words}"
        if manner.verbosity and self.rng.random() < manner.verbosity:
            words = f"{words}, {self.rng.choice(_AFTERTHOUGHTS)}"
        if remember:
            self.last_said = text
        return Answer("say", words, reason, repair, manner.pause_s)


_NEGATED = re.compile(
    r"(\b(already|never|not|no longer|cannot|unable to)|n't)(\s+[\w'$,-]+){0,2}\s*$"
)
"""The end of the words before a phrase that deny it: "has already been refunded", "can't be
refunded", "not refunded": a cue, then at most two words."""


def says_done(agent_text: str, phrases: list[str]) -> bool:
    """Whether the agent said one of `phrases` (case-insensitive) as done, not denied: some
    sentence holds the phrase with no denial just before it ("This item has already been
    refunded" does not say "refunded"; "I've refunded $55" does). A denial that is the
    outcome is written into the phrase ("don't sell gift cards")."""
    for sentence in _SENTENCE.findall(agent_text.lower().replace("\u2019", "'")):
        for phrase in phrases:
            for found in re.finditer(re.escape(phrase.lower()), sentence):
                if not _NEGATED.search(sentence[: found.start()]):
                    return True
    return False


def _close(heard: str, meant: str) -> bool:
    """Whether a read-back number is the caller's own misheard or mis-said (at most two digits
    differ), not some other number the agent mentioned."""
    return sum(a != b for a, b in zip(heard, meant, strict=True)) <= 2


def _size_in(sentence: str) -> str | None:
    """The last size a sentence names: "your sweater, size M, for size L" is about L."""
    found = re.findall(r"size (extra large|extra small|small|medium|large|xs|xl|s|m|l)\b", sentence)
    return _SIZES[found[-1]] if found else None
