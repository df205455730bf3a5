"""Phone numbers as people write them, in E.164: the one normaliser.

Built on `phonenumbers` (Google's libphonenumber metadata), so "a number" means one that
country's numbering plan allocates, not merely a plausible count of digits. Caller ID lookup
(the demo shop, Shopify), numbers the caller reads out (`dialog.nlu.contacts`) and an
order's phone all come through here, so the same number always compares equal.
"""

from __future__ import annotations

import phonenumbers

__all__ = ["normalize_phone"]


def normalize_phone(raw: str, default_region: str = "US") -> str | None:
    """The E.164 form of a phone number as people write it, or None if it cannot be one.

    A number without a country code is read in `default_region` (an ISO 3166 code: "US",
    "GB", …). "+14155550101", "4155550101", "(415) 555-0101", "1-415-555-0101" and
    "tel:+14155550101" all give "+14155550101"; numbers written with "+" or the US "011" exit
    code keep their country code.
    """
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default_region {default_region!r}: use an ISO 3166 code")
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if not text or not text.isascii():  # libphonenumber would read other scripts' digits
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
