"""The one percentile, shared by the dashboard's reports and the measuring tools.

Nearest rank: the reported figure is always a value that was observed (a p95 of 20 calls is
the 19th slowest call), never a value between two calls that no caller had.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

__all__ = ["median", "percentile"]

N = TypeVar("N", int, float)


def percentile(values: Iterable[N], p: float) -> N | None:
    """Nearest-rank percentile: the smallest value that at least `p`% (0-100) of the values do
    not exceed. Values need not be sorted; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p * len(ordered) / 100))  # p * n first: exact for whole p
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[N]) -> N | None:
    """The 50th percentile by nearest rank: the middle value, and of an even count the lower
    of the two middle ones rather than their average, so it too is a value that was observed."""
    return percentile(values, 50)
