"""Carriers as the demo shop knows them: their public tracking pages and the warehouse."""

from __future__ import annotations

import re
from urllib.parse import quote

_TRACKING_URLS = {
    "ups": "https://www.ups.com/track?tracknum={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
}


def carrier_key(carrier: str) -> str:
    """A carrier's name as compared: lower-case letters only ("FedEx", "fed-ex" → "fedex")."""
    return re.sub(r"[^a-z]", "", carrier.lower())


def tracking_url(carrier: str, tracking_number: str) -> str:
    """The carrier's public tracking page for a number, or "" for a carrier we don't know."""
    pattern = _TRACKING_URLS.get(carrier_key(carrier))
    return pattern.format(quote(tracking_number, safe="")) if pattern else ""


def compact_tracking_number(raw: str) -> str:
    """Tracking numbers are read back with spaces and in any case; carriers ignore both."""
    return re.sub(r"[\s-]", "", raw).upper()


WAREHOUSE = "Reno, NV, US"
"""Where the demo shop's parcels leave from and come back to, as a carrier scan names it."""
