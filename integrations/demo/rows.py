"""What every capability of the demo shop writes with: datetimes to and from the database,
addresses as columns, ids, and the idempotent write-once helper.

Every method that changes something takes an `idempotency_key` and records it in the same
transaction as the change, under a UNIQUE constraint: the same key twice does the thing once and
returns the first result, even when the two calls race (`write_once`). Refusals are
`ProviderError`s whose `code` says why ("not_found", "already_shipped", …).

Datetimes are UTC and timezone-aware on the way in and out, whatever the database returns.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

from sqlalchemy import Column, Connection, Engine, Row, select
from sqlalchemy.exc import IntegrityError

from integrations.models import Address
from integrations.protocols import ProviderError

_T = TypeVar("_T")


def to_db(value: datetime) -> datetime:
    """UTC for storage: SQLite keeps no offset, so everything written must already be UTC."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: demo shop datetimes must be timezone-aware")
    return value.astimezone(UTC)


def from_db(value: datetime) -> datetime:
    """Aware UTC from storage: SQLite hands back naive values, PostgreSQL the session's zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def from_db_or_none(value: datetime | None) -> datetime | None:
    """`from_db` of a nullable column."""
    return None if value is None else from_db(value)


_US_ZIP = re.compile(r"[0-9]{5}(-[0-9]{4})?")


def checked_address(address: Address) -> Address:
    """The address with its fields trimmed, or ProviderError("invalid_address")."""
    clean = Address(
        line1=address.line1.strip(),
        line2=address.line2.strip(),
        city=address.city.strip(),
        region=address.region.strip().upper(),
        postal_code=address.postal_code.strip(),
        country=(address.country.strip() or "US").upper(),
    )
    missing = [name for name in ("line1", "city", "postal_code") if not getattr(clean, name)]
    if missing:
        raise ProviderError(f"address lacks {', '.join(missing)}", code="invalid_address")
    if clean.country == "US" and not _US_ZIP.fullmatch(clean.postal_code):
        raise ProviderError(f"not a US ZIP code: {clean.postal_code!r}", code="invalid_address")
    return clean


def address_json(address: Address) -> str:
    """An address as stored in a JSON column."""
    return json.dumps(
        {
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "region": address.region,
            "postal_code": address.postal_code,
            "country": address.country,
        }
    )


def address_columns(address: Address) -> dict[str, str]:
    """An address as the `ship_*` columns of `shop_orders`."""
    return {
        "ship_line1": address.line1,
        "ship_line2": address.line2,
        "ship_city": address.city,
        "ship_region": address.region,
        "ship_postal_code": address.postal_code,
        "ship_country": address.country,
    }


def address_of(row: Row[Any]) -> Address | None:
    """The shipping address of a `shop_orders` row, or None when it has none."""
    if row.ship_line1 is None:
        return None
    return Address(
        line1=row.ship_line1,
        line2=row.ship_line2 or "",
        city=row.ship_city or "",
        region=row.ship_region or "",
        postal_code=row.ship_postal_code or "",
        country=row.ship_country or "US",
    )


def require_key(idempotency_key: str) -> None:
    """Refuses a change without an idempotency key (a programming error, not a refusal)."""
    if not idempotency_key:
        raise ValueError("a change needs an idempotency_key")


_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def provider_id(prefix: str, seed_text: str | None = None, length: int = 24) -> str:
    """An id shaped like a payment provider's ("pi_…", "re_…"): from `seed_text` when given,
    so seeded data is the same every time, else random."""
    digest = hashlib.sha256((seed_text if seed_text is not None else uuid4().hex).encode())
    number = int.from_bytes(digest.digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[digit])
    return prefix + "".join(chars)


def next_id(conn: Connection, column: Column[Any], prefix: str, first: int) -> str:
    """The next sequential id after the largest one of the form `{prefix}{number}`.

    Two writers may pick the same id; the primary key refuses the second and `write_once`
    tries it again, so numbers stay short enough to read out on the phone.
    """
    taken = conn.execute(select(column).where(column.like(f"{prefix}%"))).scalars()
    numbers = [int(rest) for rest in (t[len(prefix) :] for t in taken) if rest.isdigit()]
    return f"{prefix}{max(numbers, default=first - 1) + 1}"


_WRITE_ATTEMPTS = 8


def write_once(
    engine: Engine,
    find: Callable[[Connection], _T | None],
    write: Callable[[Connection], _T],
) -> _T:
    """The result already recorded under an idempotency key (`find`), or `write` it.

    `write` runs in one transaction and may raise ProviderError to refuse. When a concurrent
    writer wins a race for the same key, id or order line, the database's UNIQUE constraints
    refuse ours, and looking again finds theirs (or the refusal that now applies).
    """
    for _ in range(_WRITE_ATTEMPTS):
        with engine.connect() as conn:
            found = find(conn)
        if found is not None:
            return found
        try:
            with engine.begin() as conn:
                return write(conn)
        except IntegrityError:
            continue
        except ProviderError:
            # The refusal may be of what a concurrent call with this very key just did
            # ("already refunded" by ourselves): then that result is ours too.
            with engine.connect() as conn:
                found = find(conn)
            if found is None:
                raise
            return found
    raise ProviderError("too many concurrent writers; try again", code="conflict", retryable=True)


def key_reused(what: str) -> ProviderError:
    """The refusal of an idempotency key already used for something else."""
    return ProviderError(
        f"this idempotency key was already used for {what}", code="idempotency_key_reused"
    )


def clean_order_number(raw: str) -> str:
    """An order number as stored: "#1001 " → "1001"."""
    return raw.strip().lstrip("#").strip()
