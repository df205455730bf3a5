"""Replies read on a screen: one text message per reply, and how many SMS segments it costs.

A conversation held by text messages (`CallInfo.on_screen`) answers each inbound message with
one message: everything the agent says in that turn (`message`), without the fillers that only
fill a wait on a call. An SMS is billed and split in segments: 160 characters in the GSM 7-bit
alphabet (153 each once it is split), or 70 (67 each) as soon as one character is outside it
(an emoji, a curly quote) and the whole message goes as UCS-2 (`sms_segments`).
"""

from __future__ import annotations

from collections.abc import Iterable

from dialog.events import Event, Say

__all__ = ["GSM_7", "message", "sms_segments"]

_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENDED = "^{}\\[~]|€\f"  # each takes two septets (an escape, then the character)

GSM_7 = frozenset(_BASIC) | frozenset(_EXTENDED)
"""The characters of the GSM 03.38 default alphabet and its extension table."""


def _units(text: str) -> tuple[int, int, int]:
    """(length in the encoding's units, single-message limit, per-segment limit)."""
    if all(c in GSM_7 for c in text):
        return sum(2 if c in _EXTENDED else 1 for c in text), 160, 153
    # UCS-2 counts UTF-16 code units: a character beyond the BMP (most emoji) takes two.
    return len(text.encode("utf-16-le")) // 2, 70, 67


def sms_segments(text: str) -> int:
    """How many SMS segments `text` is sent in: 1 up to 160 GSM-7 characters (70 in UCS-2),
    then one per 153 (67); 0 for an empty text."""
    length, single, part = _units(text)
    if length == 0:
        return 0
    if length <= single:
        return 1
    return -(-length // part)


def message(events: Iterable[Event]) -> str:
    """The one text message a reply is sent as: what the agent says, fillers left out."""
    return " ".join(e.text.strip() for e in events if isinstance(e, Say) and not e.filler).strip()
