"""Which intents an utterance carries, scored from weighted phrase patterns.

Each intent has patterns with weights; an intent's score in a stretch of text is the sum of
the weights of its patterns found there, at most 1, and it counts from `MIN_SCORE`. Generic
words ("order", "where", "delivery") weigh little and a telling phrase ("says delivered but",
"reschedule", "return label") a lot, so the specific intent beats the generic one. A sentence
with several requests ("where is my order and also I want to return the shoes") is split at
its connectives and each part scored alone. Patterns run on `normalize`d text after
`canonical` has undone speech-to-text's usual slips ("re fund", "air buds").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialog.nlu.answers import leading_yes_no, parse_yes_no
from dialog.nlu.numbers import digit_runs, parse_order_number
from dialog.nlu.sounds_like import respell
from dialog.nlu.text import normalize

__all__ = [
    "HINT_SCORE",
    "INTENTS",
    "MIN_SCORE",
    "TASKS",
    "IntentScores",
    "canonical",
    "hinted_task",
    "score_intents",
]

TASKS = (
    "order_status",
    "return_request",
    "exchange_request",
    "refund_status",
    "refund_request",
    "coupon_question",
    "reschedule_delivery",
    "lost_package",
    "damaged_item",
    "not_received",
    "wrong_address",
    "change_address",
)
"""Intents that start a procedure."""

INTENTS = (*TASKS, "human", "goodbye", "yes", "no", "unknown")
"""Every intent `classify` can return."""

MIN_SCORE = 0.5
HINT_SCORE = 0.25
"""A task scored this much, below `MIN_SCORE`, is hinted at ("my order" alone): asked about."""

# On equal scores the earlier wins: a person first; then the specific complaint over the
# generic one (a return over the damage that motivates it, "says delivered" over "where").
_PRIORITY = (
    "human",
    "not_received",
    "lost_package",
    "exchange_request",
    "return_request",
    "damaged_item",
    "refund_status",
    "refund_request",
    "coupon_question",
    "reschedule_delivery",
    "wrong_address",
    "change_address",
    "order_status",
    "goodbye",
    "yes",
    "no",
)

# Speech-to-text slips that split or bend our key words; undone before matching.
_SLIPS = [
    (r"\bre ?funds?\b|\brefun\b|\brefunding\b", "refund"),
    (r"\bre turn\b|\bwe turn\b", "return"),
    (r"\bex change\b|\bx change\b", "exchange"),
    (r"\bre schedule\b", "reschedule"),
    (r"\bq ?pon\b|\bcoo pon\b|\bcupon\b|\bcoupan\b", "coupon"),
    (r"\bpack age\b", "package"),
    (r"\bde liver\b", "deliver"),
    (r"\b(zip|sip|lip|zips) code\b|\bpostal code\b|\bpost code\b|\bzipcode\b", "zipcode"),
    (r"\barea code\b", "zipcode"),
    (r"\be mail\b", "email"),
]
_SLIPS_COMPILED = [(re.compile(p), r) for p, r in _SLIPS]


def canonical(text: str) -> str:
    """`normalize(text)` with the common speech-to-text splits of our key words joined."""
    clean = normalize(text)
    for pattern, replacement in _SLIPS_COMPILED:
        clean = pattern.sub(replacement, clean)
    return clean


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_OBJECT = r"(order|orders|package|packages|parcel|parcels|delivery|shipment|stuff|box|item|items)"
_REFUND = r"(refund|refunds|refunded|money back|reimburs\w*)"
_DELIVERED_CLAIM = (
    r"\b((says|said|shows|showed|showing|show|marked|listed|status is|supposedly|apparently"
    r"|claims|claimed|tracking|app|website|email|text|notification|confirmation) (\w+ ){0,4}"
    r"delivered|(says|said|shows|showed|show|showing) deliver"  # "the tracking show deliver"
    r"|delivered (\w+ ){0,3}(but|and|yet|though)|got a delivery (notification|notice"
    r"|email|text|confirmation)|dropped (it )?off|left it at)\b"
)
_NOT_THERE = (
    r"\b(not here|isnt here|wasnt there|not there|never (got|came|received|arrived|showed)"
    r"|didnt (get|receive|come|arrive|see)|dont have (it|them|anything|the)|nothing (here|there"
    r"|on|at|was)|no (package|box|parcel|sign of it)|checked everywhere|cant find it|someone"
    r" stole|stolen|wrong house|neighbou?rs?)\b"
)
_DAMAGE = (
    r"\b(damaged|damage|broken|broke|cracked|crack|cracks|chip|chips|shattered|smashed|crushed"
    r"|dented|dent|scratched"
    r"|scratch|torn|ripped|a hole|holes|in pieces|stained|leaking|chipped|busted|defective"
    r"|faulty|stopped working|stop working|stops working|doesnt work|does not work|not working"
    r"|dont work|do not work|arent working|isnt working"
    r"|wont (turn|switch|power|charge|connect|work)|dead on arrival|malfunction\w*)\b"
)
_WEEKDAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|tomorrow)"

_PATTERNS: dict[str, list[tuple[re.Pattern[str], float]]] = {
    "order_status": [
        (_p(r"\bwhere(s| is| are| s)?\b"), 0.6),
        (_p(r"\bwhere(s| is| are| s)? (it|they|my|the|our|this|that)\b"), 0.3),
        (_p(rf"\b{_OBJECT}\b"), 0.3),
        (_p(r"\btrack(ing|ed)?\b"), 0.7),
        (_p(r"(?<!free )\b(shipped|ship|shipping|dispatched|sent out)\b"), 0.4),
        (_p(r"\b(on its way|on the way|on their way|in the mail)\b"), 0.6),
        (
            _p(
                r"\b(is|are|will) (my|the|it|they|this|that)( \w+){0,3} (still )?(coming|arriving"
                r"|going to (arrive|come)|gonna (arrive|come)|be delivered)\b"
            ),
            0.7,
        ),
        (_p(r"\b(has|did|have|is) (it|my|the|they|order) (\w+ ){0,3}(ship|shipped|sent)\b"), 0.4),
        (
            _p(
                r"\b(when|how long|how much longer)\b.*\b(arrive|arriving|get here|gets here"
                r"|come|coming|be here|deliver|delivered|get it|receive|ship|shipped|here)\b"
            ),
            0.8,
        ),
        (_p(r"\bstatus\b|\beta\b|\bestimated delivery\b|\bupdate on\b"), 0.6),
        (
            _p(
                r"\b(havent|have not|hasnt|has not|didnt|did not|never|not yet|still not"
                r"|still hasnt|still havent)\b (\w+ ){0,4}(receive|received|get|got|gotten"
                r"|arrive|arrived|come|came|show up|shown up|showed up|turned up|here)\b"
            ),
            0.7,
        ),
        (_p(r"\b(its not here yet|not here yet|still waiting|still not here)\b"), 0.7),
        (
            _p(
                r"\b((?<!too )late|delayed|delay|taking (so|too|forever)|so long|forever|stuck"
                r"|customs"
                r"|out for delivery|ages ago)\b"
            ),
            0.5,
        ),
        (_p(r"\b(check|checking) (on|up on|about) (my|the|an|order)\b"), 0.5),
        (_p(r"\b(whats|what is) (going on|happening|up) with\b"), 0.6),
        (
            _p(
                r"\b(did|has|have|were|was|is) (my|the|it|they|this|that)( \w+){0,3} (get|been"
                r"|got|gotten)? ?delivered\b"
            ),
            0.7,
        ),
        (
            _p(
                r"\b(has|have|did|is) (that|it|they|this|that one|it all) (arrive|arrived|come"
                r"|came|shipped|ship|been delivered|here)\b"
            ),
            0.7,
        ),
    ],
    "return_request": [
        (_p(r"\breturn(s|ing)?\b"), 0.9),
        (_p(r"\breturn (label|policy|window|shipping)\b"), 0.5),
        (
            _p(
                r"\b(send|ship|mail|take|bring)(ing)? (it|them|this|these|that|those"
                r"|\w+ \w+) back\b"
            ),
            0.9,
        ),
        (_p(r"\b(send|ship|mail) back\b"), 0.9),
        (_p(r"\bstart a return\b|\breturn (something|an item|it|them|this)\b"), 0.3),
    ],
    "exchange_request": [
        (_p(r"\bexchang\w*\b"), 1.0),
        (_p(r"\bswap\w*\b"), 0.9),
        (_p(r"\btrade\w*\b"), 0.7),
        (_p(r"\bswitch\w* (it|this|them|my|to|the)\b"), 0.6),
        (
            _p(
                r"\b(different|another|bigger|smaller|larger|other|right|correct) (size|color"
                r"|colour)\b"
            ),
            0.6,
        ),
        (
            _p(
                r"\b(in|for|get|have|want) (a|an|the)? ?(size )?(small|medium|large|xl|extra large"
                r"|bigger one|smaller one|larger one|bigger|smaller)\b"
            ),
            0.6,
        ),
        (_p(r"\breplace (it|them|this) with\b"), 0.4),
        # "could I change it for the next size": a swap; "change the delivery for Friday" is not
        (
            _p(
                r"\b(change|changed|changing) (it|them|this|that|these|those|(the|my) (?!delivery"
                r"|address|date|day|time|shipping)\w+) for\b(?! (next|this|tomorrow|today|later"
                r"|the (weekend|morning|afternoon|evening))\b| \w+day\b)"
            ),
            0.6,
        ),
        (_p(r"\binstead\b"), 0.1),
        (
            _p(
                r"\b(same|it|one)( \w+)? in (another|a different|black|white|grey|gray|blue|navy"
                r"|red|green"
                r"|pink|brown|beige)\b"
            ),
            0.5,
        ),
        (
            _p(
                r"\b(need|needs|like|want|get) (a|an|the)? ?(small|medium|large|xl|extra large"
                r"|bigger|smaller)\b|\bsizes? (bigger|smaller|up|down)\b"
            ),
            0.6,
        ),
    ],
    # A fit complaint alone asks for another size; said with "return", it is the return's
    # reason (`score_intents` reads it only when nothing else was asked).
    "size_complaint": [
        (
            _p(
                r"\b(too (small|big|large|tight|loose|short|long|snug|baggy)|(doesnt|dont|does not"
                r"|do not|didnt) fit|a size (up|down)|one size (up|down)|size (up|down))\b"
            ),
            0.5,
        ),
    ],
    "refund_status": [
        (_p(rf"\b(where|wheres|status|how long|when|did|has)\b (\w+ ){{0,6}}{_REFUND}"), 1.0),
        (_p(rf"\b{_REFUND} (\w+ ){{0,2}}(go|went|gone|been|be) (through|processed|issued)\b"), 1.0),
        # "did my return go through": the return sent is asked after, not a new one started
        (_p(r"\b(my|the|that) returns? (\w+ )?(go|went|gone|been|be) (through|processed)\b"), 1.0),
        (
            _p(
                rf"\b(havent|hasnt|have not|has not|not|still no|never|no sign of|nothing)"
                rf" (\w+ ){{0,3}}{_REFUND}"
            ),
            0.9,
        ),
        (
            _p(
                rf"\b{_REFUND} (\w+ )?(isnt|is not|hasnt|has not|didnt|did not|doesnt|not"
                rf"|still not|never) (\w+ )?(showing|show|shown|there|posted|appeared|come|came"
                rf"|arrived)\b"
            ),
            1.0,
        ),
        (_p(rf"\b(check|checking|ask|asking|calling)\w* (\w+ ){{0,4}}{_REFUND}"), 0.9),
        (
            _p(
                rf"\b(update|updates|news|word|progress) (on|about|for|of"
                rf"|with) (\w+ ){{0,2}}{_REFUND}"
            ),
            1.0,
        ),
        (_p(rf"\b(said|promised|told me) (\w+ ){{0,5}}{_REFUND}"), 0.6),
        (_p(r"\bnothing(s)? (has )?(happened|happening)\b"), 0.4),
        (_p(r"\b(returned|sent (it|them|\w+ \w+) back|sent back|send back)\b"), 0.5),
        (_p(r"\b(when|how long|how soon)\b.*\b(my money|the money|money back|reimbursed)\b"), 0.6),
        (_p(r"\b(got|received|receive|get|processed|process) (my|the) return\b"), 1.0),
        (_p(r"\b(my|the) return (been |was |is )?(processed|received)\b"), 1.0),
    ],
    "refund_request": [
        (_p(rf"\b{_REFUND}\b"), 0.6),
        (
            _p(
                rf"\b(want|like|need|get|give|have|request|issue|process"
                rf"|rather)\b (\w+ ){{0,4}}{_REFUND}"
            ),
            0.3,
        ),
        (_p(r"\bcharged (twice|two times|double)\b|\bdouble charged\b"), 0.5),
    ],
    "coupon_question": [
        (
            _p(r"\b(coupon|coupons|promo|promos|promotion|voucher|vouchers|discount|discounts)\b"),
            1.0,
        ),
        (_p(r"\bcodes?\b"), 0.5),
        # "the code SAVE20 doesn't work" is about the code, not a broken product.
        (
            _p(
                r"\b(code|coupon|promo|discount|voucher)\b (\w+ ){0,4}(doesnt|didnt|isnt|wont"
                r"|not|does not|did not|is not) (\w+ )?(work|working|apply|applied|go through)\b"
            ),
            1.0,
        ),
        (_p(r"\bfree ?ship\b|\bfree shipping\b"), 0.7),
        (
            _p(
                r"\b(use|used|using|apply|applied|enter|entered|try|tried|redeem\w*|put in)"
                r" (the |my |a |code )*\w+ ?(\d+|ten|fifteen|twenty|twenty five|thirty|forty"
                r"|fifty)\b"
            ),
            0.6,
        ),
        (
            _p(r"\b(didnt|doesnt|wont|wouldnt|not|isnt) (\w+ )?(work|apply|applied|accept|take)\b"),
            0.2,
        ),
        (_p(r"\bcheckout\b|\binvalid\b"), 0.2),
        (
            _p(
                r"\b[a-z]{3,} ?\d{1,3}\b (\w+ ){0,5}(work|working|apply|applied|valid|accepted)\b"
                r"|\b(wont|doesnt|didnt|isnt|cant|not) [a-z]{3,} ?\d{1,3} (work|apply)\b"
            ),
            0.9,
        ),
        (
            _p(
                r"\b(is|does|will|can i use|could i use) (the )?(code )?[a-z]+ \d{1,3} (still )?"
                r"(good|valid|work|working|active|ok|okay)\b"
            ),
            0.9,
        ),
    ],
    "reschedule_delivery": [
        (_p(r"\breschedul\w*|\bredeliver\w*|\bre deliver\w*|\bre ?book\w*|\bre ?arrange\w*"), 1.0),
        (
            _p(
                r"\b(came|come|stopped by|showed up|turned up) while i was (out|away|at work|gone"
                r"|not home)\b"
            ),
            0.9,
        ),
        (_p(r"\b(missed|miss) (the |my |a )?(delivery|driver|package|them|me|courier)\b"), 0.9),
        (_p(r"\bthey missed me\b"), 0.9),
        (_p(r"\b(tried|attempted|try) to deliver\b|\bdelivery attempt\b"), 0.9),
        (
            _p(
                r"\b(wasnt|was not|wont be|will not be|not be|not going to be|wasnt at) (home"
                r"|there|in)\b|\bout of town\b"
            ),
            0.5,
        ),
        (_p(r"\b(different|another|new|other|later) (delivery )?(day|date|time)\b"), 0.7),
        (_p(r"\bdelivery (day|date|time|window)\b"), 0.5),
        (
            _p(
                rf"\b(deliver|bring|drop|send|come)\w* (it |them |back )?(off )?(on |next "
                rf"|this )?{_WEEKDAY}\b"
            ),
            0.7,
        ),
        (_p(r"\b(left|leave) a (note|slip|notice)\b"), 0.7),
        (
            _p(
                r"\b(change|move|moved|push|hold|delay|postpone)\w* (the |my )?(delivery|it|them)\b"
            ),
            0.5,
        ),
        (_p(r"\bcome back\b"), 0.5),
        (
            _p(
                r"\b(delivery|it|package|them) (be |get |to be )?(moved|changed|pushed"
                r"|rescheduled|delayed|postponed|held)\b"
            ),
            0.7,
        ),
        (_p(rf"\b(to|until|on|for) (next |this )?{_WEEKDAY}\b"), 0.3),
        (_p(r"\bschedule (a |the )?(new )?delivery\b"), 0.9),
        (
            _p(
                r"\b(bring|deliver|drop|come|redeliver)\w* (\w+ ){0,4}(tomorrow|day after"
                r"|next week|this week|on \w+day|\w+day)\b"
            ),
            0.6,
        ),
        (_p(r"\b(try again|try it again|come again|another attempt|deliver it again)\b"), 0.6),
        (
            _p(r"\bdelivery (\w+ ){0,4}(didnt|did not|never) (happen|go through|work|come)\b"),
            0.7,
        ),
        (
            _p(
                r"\b(delivery (failed|attempt failed|didnt (go through|happen|work))|failed"
                r" delivery|failed to deliver)\b"
            ),
            0.9,
        ),
    ],
    "lost_package": [
        (_p(r"\blost\b"), 0.9),
        (
            _p(r"\b(is|are|has been|got|went|gone) missing\b|\bmissing (package|parcel|order)\b"),
            0.8,
        ),
        (
            _p(
                r"\b(hasnt|has not|havent|have not|not|hasn t|didnt) (been )?(moved|move|updated"
                r"|update|changed|budged|scanned)\b"
            ),
            0.8,
        ),
        (_p(r"\bno (tracking )?(update|updates|information|info|movement|scans?)\b"), 0.7),
        (
            _p(
                r"\b(cant|cannot|can t|couldnt) find (my|the|your|our) (package|parcel|order|box"
                r"|shipment)\b"
            ),
            0.8,
        ),
        (_p(r"\b(file|open|make) a claim\b"), 0.8),
        (
            _p(
                r"\b(in ages|for days|in days|for a week|over a week|in a week|for weeks"
                r"|nine days)\b"
            ),
            0.3,
        ),
    ],
    "not_received": [
        (_p(_DELIVERED_CLAIM), 0.7),
        (_p(_NOT_THERE), 0.6),
    ],
    "damaged_item": [
        (_p(_DAMAGE), 0.9),
        (_p(r"\b(replacement|replace it|replace them|new one)\b"), 0.4),
    ],
    "wrong_address": [
        (
            _p(
                r"\bwrong (\w+ )?(address|zipcode|street|apartment|apt|unit|city|postcode"
                r"|house number|street number|door number|apartment number|state)\b"
            ),
            1.0,
        ),
        (
            _p(
                r"\b(address|zipcode|apartment number|apt number|street number|house number"
                r"|unit number|street name|postcode|city) (on (\w+ ){1,3})?(is|was|s) (wrong"
                r"|incorrect|not right|outdated|old|a mistake|missing)\b"
            ),
            1.0,
        ),
        (
            _p(
                r"\b(typo|mistake|error|misspel\w*) (in|on|with) (my|the) (\w+ )?(address"
                r"|zipcode)\b"
            ),
            1.0,
        ),
        (_p(r"\b(my|an|the) (old|previous|former) address\b"), 0.9),
        (_p(r"\b(incorrect|wrong)\b"), 0.3),
        (_p(r"\baddress\b"), 0.2),
    ],
    "change_address": [
        (
            _p(
                r"\b(change|update|updating|changing|correct|fix|edit|modify|redirect)\w* "
                r"(\w+ ){0,3}(address|where)\b"
            ),
            1.0,
        ),
        (
            _p(
                r"\b(send|ship|deliver|redirect|reroute|have)\w* (it|them|this|the \w+( \w+)?|my"
                r" (order|package|\w+))? ?(sent |shipped |delivered )?to (my|a|the|another) (new"
                r"|different|office|work|other|friends|mothers|moms|parents|neighbou?rs|sisters"
                r"|brothers)\b"
            ),
            0.9,
        ),
        (_p(r"\b(new|different|another) (address|place|apartment|house)\b"), 0.6),
        (_p(r"\baddress (\w+ )?(changed|updated|corrected|fixed|switched|moved)\b"), 1.0),
        (_p(r"\bi (just )?moved\b|\bi move\b"), 0.5),
        (_p(r"\baddress\b"), 0.3),
    ],
    "human": [
        (
            _p(
                r"\b(human|representative|operator|agent|real person|live person|actual person"
                r"|customer service|customer support|manager|supervisor|somebody real"
                r"|someone real)\b"
            ),
            0.9,
        ),
        (_p(r"\b(person|someone|somebody|staff|anyone|anybody)\b"), 0.5),
        (
            _p(
                r"\b(talk to|talk with|speak to|speak with|connect me|transfer me|put me through"
                r"|get me)\b"
            ),
            0.4,
        ),
        (_p(r"\b(robot|machine|bot|computer|recording)\b"), 0.4),
    ],
    "goodbye": [
        (_p(r"\b(good ?bye|bye|bye bye|see you|see ya)\b"), 1.0),
        (
            _p(
                r"\b(thats all|that is all|thats it|that is it|thats everything|nothing else"
                r"|nothing more|no more|im done|were done|all set|all good|that will be all"
                r"|thatll be all|that was all|that was it|have everything|that covers it"
                r"|that covers everything|thats about it|thats all i needed|that should be it"
                r"|thats all for now|thats all i need)\b"
            ),
            0.9,
        ),
        (_p(r"\bhave a (nice|good|great|lovely) (day|one|evening|night|weekend)\b"), 0.9),
        (
            _p(
                r"\b(i have to go|i gotta go|i got to go|have to run|gotta run"
                r"|cant talk (right )?now|i need to go)\b"
            ),
            0.9,
        ),
        (_p(r"\b(thanks|thank you|cheers)\b"), 0.5),
    ],
}

_NUMBER_WEIGHT = 0.5
_YES_NO_WEIGHT = 0.8
_LOOSE_YES_NO_WEIGHT = 0.7

# Where one request ends and the next begins.
_SPLIT = re.compile(
    r"\b(?:and also|also|and then|plus|as well as|another thing|and another|first|second|secondly"
    r"|and second|and|but also)\b"
)
# Across parts of one sentence, the first intent absorbs the second: a return "for a refund"
# is one return; "where is it, it says delivered but it is not here" is one missing parcel.
_ABSORBS = {
    "exchange_request": {"return_request", "refund_request", "damaged_item"},
    "return_request": {"refund_request", "damaged_item"},
    "refund_status": {"refund_request"},
    "not_received": {"order_status"},
    "lost_package": {"order_status"},
    "reschedule_delivery": {"order_status"},
    "wrong_address": {"change_address"},
}


@dataclass(frozen=True)
class IntentScores:
    """The intents found in one utterance: the best one, its score, all of them in order, and
    the requests in it: (intent, the words that ask for it), one per procedure asked for or
    per order named ("the status of ten oh three and ten oh four" is two)."""

    intent: str
    score: float
    intents: tuple[str, ...]
    requests: tuple[tuple[str, str], ...] = ()


def _scores(clean: str) -> dict[str, float]:
    return {
        intent: round(min(1.0, sum(w for p, w in patterns if p.search(clean))), 2)
        for intent, patterns in _PATTERNS.items()
    }


def _best(scores: dict[str, float]) -> tuple[str, float]:
    intent = max(_PRIORITY, key=lambda name: (scores.get(name, 0.0), -_PRIORITY.index(name)))
    score = scores.get(intent, 0.0)
    return (intent, score) if score >= MIN_SCORE else ("unknown", round(1.0 - score, 2))


def _whole(text: str, clean: str, has_number: bool) -> dict[str, float]:
    """Scores of the whole utterance, with its order number and yes/no weighed in."""
    scores = _scores(clean)
    task_found = any(scores[t] >= MIN_SCORE for t in TASKS) or scores["human"] >= MIN_SCORE
    other_task = any(
        scores[t] >= MIN_SCORE for t in (*TASKS, "size_complaint") if t != "order_status"
    )
    if has_number and not other_task and scores["human"] < MIN_SCORE:
        scores["order_status"] = round(min(1.0, scores["order_status"] + _NUMBER_WEIGHT), 2)
    lead = leading_yes_no(text)
    if lead is not None and not (lead and has_number):
        # "no, I said 1003" denies; "yeah, it's 1004" is just how an answer starts
        scores["yes" if lead else "no"] = _YES_NO_WEIGHT
    elif lead is None and not task_found and not digit_runs(clean.split()):
        # "a two, I guess" rates; only "I guess so" with no number in it answers yes
        loose = parse_yes_no(text)
        if loose is not None:
            scores["yes" if loose else "no"] = _LOOSE_YES_NO_WEIGHT
    return scores


# Sentence ends, and a comma that starts another question ("can I return the jacket, is the
# code still good, and …"); not every comma ("the code doesn't work, oh wait, sorry, …").
_SENTENCES = re.compile(
    r"[.?!;:]+|,(?=\s*(?:is|are|does|do|did|can|could|will|where|when|what|how|has|have)\b)",
    re.IGNORECASE,
)


def _parts(text: str) -> list[str]:
    """The utterance cut at sentence ends and connectives, each part normalised."""
    parts = []
    for sentence in _SENTENCES.split(text):
        clean = canonical(sentence)
        parts += [p.strip() for p in _SPLIT.split(clean) if p.strip()]
    return parts


def _merge(found: list[str]) -> list[str]:
    kept: list[str] = []
    for intent in found:
        if intent in kept:
            continue
        if any(intent in _ABSORBS.get(k, ()) for k in kept):
            continue
        kept = [k for k in kept if k not in _ABSORBS.get(intent, ())]
        kept.append(intent)
    return kept


_ANSWER_THEN_MORE = re.compile(
    r"^(?:um |uh |well )?(yes|yeah|yep|sure|ok|okay|no|nope|nah)(?: please| thanks)?"
    r" (?:and also|also|and|plus|but)\b"
)


def _requests(
    parts: list[str], tasks: list[str], default: str | None = None
) -> tuple[tuple[str, str], ...]:
    """Each request with its own words: a part carrying an intent starts one, a part naming
    only another order asks the same again for that order, other parts add to the request
    before them (an absorbed intent's words go to the one that absorbed it). `default` is the
    request of the whole where no part says one ("calling about order 1003, and order 1004":
    each order its own)."""
    found: list[list[str]] = []  # [intent, words]
    for part in parts:
        intent, _ = _best(_scores(part))
        numbered = bool(digit_runs(part.split()))
        if intent not in TASKS and default and not found and parse_order_number(part):
            intent = default
        if intent in TASKS:
            owner = next((r for r in found if intent in _ABSORBS.get(r[0], ())), None)
            if owner is not None:
                owner[1] += " " + part
                continue
            found.append([intent, part])  # the same again may be about another item
        elif numbered and found and digit_runs(found[-1][1].split()):
            found.append([found[-1][0], part])
        elif found:
            found[-1][1] += " " + part
    kept = [(i, w) for i, w in found if i in tasks]
    return tuple(kept) if len(kept) > 1 else ()


def score_intents(text: str, *, has_number: bool = False) -> IntentScores:
    """Score `text`; `has_number` says an order number was said (a bare number asks status)."""
    clean = canonical(text)
    whole = _whole(text, clean, has_number)
    whole_intent, whole_score = _best(whole)
    if whole_intent in ("unknown", "no") and whole.get("size_complaint", 0) >= MIN_SCORE:
        # "the sweater is too small": another size; "no, it's too small" is no bare no
        whole_intent, whole_score = "exchange_request", whole["size_complaint"]
    found = []
    parts = _parts(text)
    for part in parts:
        intent, _ = _best(_scores(part))
        if intent in TASKS or intent == "human":
            found.append(intent)
    tasks = _merge(found)
    default = whole_intent if whole_intent in TASKS and not tasks else None
    requests = _requests(parts, [default] if default else tasks, default)
    answer = _ANSWER_THEN_MORE.match(clean)
    if answer and tasks:
        # "yes, and also where's my refund": an answer, then a new request
        said_yes = parse_yes_no(answer.group(1))
        intents = ("yes" if said_yes else "no", *tasks)
    elif len(set(found)) >= 2:
        intents = tuple(tasks)
    elif requests:  # one procedure for two orders
        return IntentScores(whole_intent, whole_score, (whole_intent,), requests)
    else:
        return IntentScores(whole_intent, whole_score, (whole_intent,))
    best = "human" if "human" in tasks else tasks[0]
    return IntentScores(best, _scores(clean).get(best, 0.0) or whole_score, intents, requests)


def hinted_task(text: str) -> str | None:
    """The one task the words hint at without asking for it ("that is my order", "calling
    about my package"): scored at least `HINT_SCORE` and more than any other, where nothing
    reaches `MIN_SCORE`. None where a request (or a person, a yes or a no) is said outright,
    or no task, or two equally, is hinted at. Words heard as neighbours of a key word ("my
    orger") are read as it when the words as heard hint at nothing: a hint is only asked
    about, so a respelling can cost no more than the question."""
    found = _hinted(canonical(text))
    if found is None:
        respelled = respell(text)
        if respelled != canonical(text):
            found = _hinted(respelled)
    return found


def _hinted(clean: str) -> str | None:
    scores = _scores(clean)
    if any(score >= MIN_SCORE for score in scores.values()):
        return None
    hinted = sorted(((scores[t], t) for t in TASKS if scores[t] >= HINT_SCORE), reverse=True)
    if not hinted or (len(hinted) > 1 and hinted[0][0] == hinted[1][0]):
        return None
    return hinted[0][1]
