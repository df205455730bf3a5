"""Named Python actions the flows run, over the integrations protocols only.

Importing this package registers every shipped action in `ACTIONS`.
"""

from dialog.actions import coupons, deliveries, orders, people, photos, refunds, returns
from dialog.actions.registry import (
    ACTIONS,
    ActionContext,
    ActionRegistry,
    ActionSpec,
    ServiceUnavailable,
)

__all__ = [
    "ACTIONS",
    "ActionContext",
    "ActionRegistry",
    "ActionSpec",
    "ServiceUnavailable",
    "coupons",
    "deliveries",
    "orders",
    "people",
    "photos",
    "refunds",
    "returns",
]
