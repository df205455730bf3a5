"""The one clock: what every module that needs the time takes, so tests can hand it another.

from integrations.clock import Clock, utc_now

class Labels:
    def __init__(self, engine, clock: Clock = utc_now): ...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]
"""A callable giving the current time, timezone-aware."""


def utc_now() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)
