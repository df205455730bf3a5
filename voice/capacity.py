"""How many calls one process takes at once: in all, and from any one caller number.

One `CallLimiter` is shared by every session of the process (it lives on `CallDeps`). A
session asks for a place when Twilio's `start` message arrives and gives it back however the
session ends; above either cap the caller hears a polite busy message instead of an agent
that would starve the others of CPU.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Admission", "CallLimiter", "caller_key"]

# What Twilio puts in From when the caller withheld their number: the words spelled on a
# keypad (ANONYMOUS, RESTRICTED, UNAVAILABLE, BLOCKED, UNKNOWN). All such callers would share
# one "number" and shut each other out, so they count only toward the global cap.
_WITHHELD = {"+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696"}
_PHONE = re.compile(r"^\+?\d{6,15}$")


def caller_key(number: str) -> str | None:
    """The number a per-caller cap counts against, or None when it names nobody."""
    cleaned = re.sub(r"[\s().-]", "", number or "")
    if not _PHONE.match(cleaned) or cleaned in _WITHHELD:
        return None
    return cleaned


@dataclass
class Admission:
    """The answer to one call asking for a place: granted (then `release` it) or refused.

    `reason` says which cap refused it: `max_calls` or `max_calls_per_caller`.
    """

    granted: bool
    reason: str | None = None
    _limiter: CallLimiter | None = field(default=None, repr=False)
    _key: str | None = field(default=None, repr=False)
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """Give the place back. Safe to call more than once, and on a refusal."""
        if self.granted and not self._released and self._limiter is not None:
            self._released = True
            self._limiter._release(self._key)


class CallLimiter:
    """A global and a per-caller cap on concurrent calls (thread-safe)."""

    def __init__(self, max_calls: int, max_per_caller: int) -> None:
        if max_calls < 1 or max_per_caller < 1:
            raise ValueError("call caps must be at least 1")
        self.max_calls = max_calls
        self.max_per_caller = max_per_caller
        self._lock = threading.Lock()
        self._active = 0
        self._by_caller: Counter[str] = Counter()
        self.turned_away = 0
        """Calls refused since start-up (for /metrics)."""

    @property
    def active(self) -> int:
        """Calls holding a place right now."""
        return self._active

    def active_for(self, number: str) -> int:
        """Calls from `number` holding a place right now."""
        key = caller_key(number)
        return self._by_caller[key] if key else 0

    def admit(self, number: str) -> Admission:
        """A place for a call from `number` (the customer's number), or a refusal."""
        key = caller_key(number)
        with self._lock:
            if self._active >= self.max_calls:
                self.turned_away += 1
                return Admission(False, "max_calls")
            if key is not None and self._by_caller[key] >= self.max_per_caller:
                self.turned_away += 1
                return Admission(False, "max_calls_per_caller")
            self._active += 1
            if key is not None:
                self._by_caller[key] += 1
        return Admission(True, None, self, key)

    def _release(self, key: str | None) -> None:
        with self._lock:
            self._active -= 1
            if key is not None:
                self._by_caller[key] -= 1
                if self._by_caller[key] <= 0:
                    del self._by_caller[key]  # the map holds only callers on the line now

    def snapshot(self) -> dict[str, int]:
        """The figures /metrics shows."""
        with self._lock:
            return {
                "active_calls": self._active,
                "max_calls": self.max_calls,
                "max_calls_per_caller": self.max_per_caller,
                "calls_turned_away": self.turned_away,
                "callers_on_the_line": len(self._by_caller),
            }
