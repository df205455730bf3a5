"""The one percentile, shared by the dashboard's reports and the measuring tools.

Nearest rank: the reported figure is always a value that was observed (a p95 of 20 calls is
the 19th slowest call), never a value between two calls that no caller had.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["percentile"]


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value that at least `p`% (0-100) of the values do
    not exceed. Values need not be sorted; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p * len(ordered) / 100))  # p * n first: exact for whole p
    return ordered[min(rank, len(ordered)) - 1]
