"""The one clock: what every module that needs the time takes, so tests can hand it another.

from integrations.clock import Clock, utc_now

class Labels:
    def __init__(self, engine, clock: Clock = utc_now): ...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import overload

__all__ = ["Clock", "aware", "utc_now"]

Clock = Callable[[], datetime]
"""A callable giving the current time, timezone-aware."""


def utc_now() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
@overload
def aware(value: datetime | None) -> datetime | None: ...
def aware(value: datetime | None) -> datetime | None:
    """`value` with its zone, a naive one taken as UTC: SQLite hands datetimes back naive, and
    every datetime we write (or a provider sends without a zone) is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
