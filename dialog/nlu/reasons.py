"""Why a caller sends something back, as the reason codes returns are filed under."""

from __future__ import annotations

import re

from dialog.nlu.text import normalize

__all__ = ["RETURN_REASONS", "parse_return_reason"]

RETURN_REASONS = (
    "wrong_size",
    "damaged",
    "defective",
    "not_as_described",
    "wrong_item",
    "arrived_late",
    "changed_mind",
    "other",
)
"""Every code `parse_return_reason` returns."""

# Checked in this order: the more specific complaint wins ("the wrong size" is wrong_size,
# not wrong_item; "stopped working after it arrived broken" is damaged).
_REASONS: list[tuple[str, re.Pattern[str]]] = [
    (
        "wrong_size",
        re.compile(
            r"\b((?<!took )(?<!taking )(?<!takes )too (small|big|large|tight|loose|short|long"
            r"|narrow|wide|snug|baggy)|(a bit|a little|way|kind of|bit) (tight|loose|small|big"
            r"|snug|baggy)"
            r"|(doesnt|dont|does not|do not|didnt|did not|wont|will not) fit"
            r"|(keep|keeps|kept) falling out|fall out of my|falls out of my"
            r"|(wrong|different|another|bigger|smaller|the right|a larger|a smaller|other) size"
            r"|size (up|down|bigger|smaller)|runs (small|big|large)|fits (weird|badly|poorly)"
            r"|(doesnt|dont) fit( me)? right)\b"
        ),
    ),
    (
        "damaged",
        re.compile(
            r"\b(damaged|damage|broken|broke|cracked|crack|chip|chips|shattered|smashed|crushed|dented"
            r"|scratched|scratch|torn|ripped|a hole|holes|in pieces|stained|leaking|leaked"
            r"|bent|chipped|busted)\b"
        ),
    ),
    (
        "defective",
        re.compile(
            r"\b(defective|faulty|stopped working|stop working|doesnt work|does not work"
            r"|dont work|do not work|not working|isnt working|wont (turn|switch|power|charge"
            r"|connect|work)|doesnt (turn|switch|power|charge|connect)|dead on arrival"
            r"|malfunction\w*|keeps (crashing|disconnecting|turning off)|no sound|wont pair"
            r"|doesnt pair|stopped (charging|turning on|connecting|pairing|holding a charge)"
            r"|wont stay (on|charged)|battery (died|dies|is dead))\b"
        ),
    ),
    (
        "wrong_item",
        re.compile(
            r"\b(wrong (item|thing|product|one|color|colour|model|order|package)"
            r"|not what i ordered|isnt what i ordered|didnt order (this|that|these)"
            r"|sent me (the wrong|a different|someone elses)|different (item|product) than"
            r"|never ordered (this|that|these))\b"
        ),
    ),
    (
        "not_as_described",
        re.compile(
            r"\b(nothing like|not like the (picture|photo|description)"
            r"|doesnt look like|does not look like|didnt look like|not as described"
            r"|not what (i expected|it said|was described|was advertised)|different from the"
            r"|quality is (bad|poor|terrible|awful|not good)"
            r"|(sound|sounds|audio) (is |are )?(kind of |a bit |really |very |pretty )?(bad"
            r"|terrible|awful|tinny|poor|muffled|quiet)"
            r"|(cheap|poor|bad|low) quality|misleading|looks (cheap|different)"
            r"|not as (pictured|advertised|shown))\b"
        ),
    ),
    (
        "arrived_late",
        re.compile(
            r"\b((came|arrived|got here|showed up|delivered) (way |much |far )?too late"
            r"|took too long|missed the (event|date|birthday|party|occasion)"
            r"|(came|arrived) (after|late)|too late for)\b"
        ),
    ),
    (
        "changed_mind",
        re.compile(
            r"\b(chang(e|ed|ing) (my|our) minds?|changed mind|change of heart"
            r"|dont (need|want|like) (it|them|this|these)"
            r"|do not (need|want) (it|them)|no longer (need|want)|dont need it anymore"
            r"|(found|saw) (it|them|one|this|these) cheaper|cheaper (elsewhere|somewhere)"
            r"|ordered (it )?by (mistake|accident)|not (really )?my style|not for me"
            r"|(didnt|did not|dont) like (it|them|the))\b"
        ),
    ),
    ("other", re.compile(r"\b(other reason|another reason|personal reasons|just because)\b")),
]


def parse_return_reason(text: str) -> str | None:
    """The reason code a complaint maps to ("too small" → "wrong_size"), or None if unsaid."""
    clean = normalize(text)
    for code, pattern in _REASONS:
        if pattern.search(clean):
            return code
    return None
