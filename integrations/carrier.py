"""Carrier tracking through an aggregator: EasyPost or AfterShip, normalized into `Shipment`.

Both clients implement `Tracking`. What each aggregator calls a status is mapped onto our
`ShipmentStatus` by one normalizer per provider; the carrier's own words stay in `detail` and in
each `TrackingEvent.description`, so nothing the carrier said is lost. Carrier names are mapped
both ways: what the shop records ("UPS", "FedEx", "usps") to the aggregator's code, and the
aggregator's code back to the name a person says.

Tracking requests are reads and are retried under the shared policy (`integrations.http`);
EasyPost's `POST /trackers` is one too: it returns the existing tracker for a code and carrier
it already has, so repeating it creates nothing.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx

from integrations.clock import Clock, utc_now
from integrations.http import DEFAULT_POLICY, DEFAULT_TIMEOUT, ProviderHttp, RetryPolicy, Sleep
from integrations.models import Shipment, ShipmentStatus, TrackingEvent
from integrations.protocols import ProviderError

__all__ = [
    "CARRIERS",
    "AfterShipTracking",
    "CarrierCode",
    "EasyPostTracking",
    "aftership_status",
    "carrier_code",
    "carrier_name",
    "easypost_status",
]


@dataclass(frozen=True)
class CarrierCode:
    """One carrier as people say it and as each aggregator spells it."""

    name: str
    easypost: str
    aftership: str


CARRIERS: tuple[CarrierCode, ...] = (
    CarrierCode("UPS", "UPS", "ups"),
    CarrierCode("FedEx", "FedEx", "fedex"),
    CarrierCode("USPS", "USPS", "usps"),
    CarrierCode("DHL", "DHLExpress", "dhl"),
    CarrierCode("Canada Post", "CanadaPost", "canada-post"),
    CarrierCode("OnTrac", "OnTrac", "ontrac"),
    CarrierCode("LaserShip", "LaserShip", "lasership"),
    CarrierCode("Royal Mail", "RoyalMail", "royal-mail"),
    CarrierCode("Purolator", "Purolator", "purolator"),
)
"""The carriers we name; any other is passed through as given (or left to auto-detection)."""


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


_BY_KEY: dict[str, CarrierCode] = {}
for _carrier in CARRIERS:
    for _spelling in (_carrier.name, _carrier.easypost, _carrier.aftership):
        _BY_KEY.setdefault(_key(_spelling), _carrier)
_BY_KEY.setdefault("dhlexpress", _BY_KEY["dhl"])
_BY_KEY.setdefault("unitedparcelservice", _BY_KEY["ups"])
_BY_KEY.setdefault("unitedstatespostalservice", _BY_KEY["usps"])


def carrier_code(carrier: str, provider: str) -> str | None:
    """The code `provider` ("easypost" or "aftership") uses for `carrier`, written any way a
    shop records it; None for an empty carrier (let the aggregator detect it)."""
    if not carrier.strip():
        return None
    known = _BY_KEY.get(_key(carrier))
    if known is None:
        return carrier.strip() if provider == "easypost" else _key(carrier)
    return known.easypost if provider == "easypost" else known.aftership


def carrier_name(code: str) -> str:
    """The name a person says for an aggregator's carrier code ("DHLExpress" -> "DHL")."""
    known = _BY_KEY.get(_key(code))
    return known.name if known else code


def _compact(tracking_number: str) -> str:
    return re.sub(r"[\s-]", "", tracking_number).upper()


# Words in a carrier's detail that say more than the aggregator's coarse status does.
_DELAY_WORDS = ("delay", "customs", "held", "weather", "hold")
_RETURN_WORDS = ("return to sender", "returned to sender", "returning to sender")
_ATTEMPT_WORDS = ("attempt", "no access", "inaccessible", "not available", "notice left")


def _refine(status: ShipmentStatus, *texts: str | None) -> ShipmentStatus:
    said = " ".join(t.lower() for t in texts if t)
    if any(w in said for w in _RETURN_WORDS):
        return ShipmentStatus.RETURN_TO_SENDER
    if status in (ShipmentStatus.IN_TRANSIT, ShipmentStatus.EXCEPTION) and any(
        w in said for w in _DELAY_WORDS
    ):
        return ShipmentStatus.DELAYED
    if status == ShipmentStatus.EXCEPTION and any(w in said for w in _ATTEMPT_WORDS):
        return ShipmentStatus.FAILED_ATTEMPT
    return status


# EasyPost Tracker.status and TrackingDetail.status.
_EASYPOST = {
    "pre_transit": ShipmentStatus.PRE_TRANSIT,
    "in_transit": ShipmentStatus.IN_TRANSIT,
    "out_for_delivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "delivered": ShipmentStatus.DELIVERED,
    # Waiting at a pickup point: for the caller, like a missed delivery (go and fetch it).
    "available_for_pickup": ShipmentStatus.FAILED_ATTEMPT,
    "return_to_sender": ShipmentStatus.RETURN_TO_SENDER,
    "failure": ShipmentStatus.EXCEPTION,
    "cancelled": ShipmentStatus.EXCEPTION,
    "error": ShipmentStatus.UNKNOWN,
    "unknown": ShipmentStatus.UNKNOWN,
}
# EasyPost status_detail values that change what a caller should hear.
_EASYPOST_DETAIL = {
    "weather_delay": ShipmentStatus.DELAYED,
    "delayed": ShipmentStatus.DELAYED,
    "held": ShipmentStatus.DELAYED,
    "transit_exception": ShipmentStatus.DELAYED,
    "delivery_exception": ShipmentStatus.FAILED_ATTEMPT,
    "location_inaccessible": ShipmentStatus.FAILED_ATTEMPT,
    "return": ShipmentStatus.RETURN_TO_SENDER,
    "return_to_sender": ShipmentStatus.RETURN_TO_SENDER,
    "lost": ShipmentStatus.EXCEPTION,
    "damaged": ShipmentStatus.EXCEPTION,
}


def easypost_status(
    status: str | None, status_detail: str | None = None, message: str | None = None
) -> ShipmentStatus:
    """Our status for an EasyPost status, refined by its `status_detail` and the carrier's
    message (a "weather_delay" in transit is DELAYED)."""
    base = _EASYPOST.get((status or "unknown").lower(), ShipmentStatus.UNKNOWN)
    if base not in (ShipmentStatus.DELIVERED, ShipmentStatus.OUT_FOR_DELIVERY):
        refined = _EASYPOST_DETAIL.get((status_detail or "").lower())
        if refined is not None:
            return refined
    return _refine(base, message)


# AfterShip tags (the same in v4 and the dated 2024+ APIs).
_AFTERSHIP = {
    "pending": ShipmentStatus.PRE_TRANSIT,
    "inforeceived": ShipmentStatus.PRE_TRANSIT,
    "intransit": ShipmentStatus.IN_TRANSIT,
    "outfordelivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "attemptfail": ShipmentStatus.FAILED_ATTEMPT,
    "delivered": ShipmentStatus.DELIVERED,
    "availableforpickup": ShipmentStatus.FAILED_ATTEMPT,
    "exception": ShipmentStatus.EXCEPTION,
    "expired": ShipmentStatus.UNKNOWN,
}


def aftership_status(tag: str | None, message: str | None = None) -> ShipmentStatus:
    """Our status for an AfterShip tag, refined by the subtag message or checkpoint text."""
    base = _AFTERSHIP.get(_key(tag or ""), ShipmentStatus.UNKNOWN)
    if base in (ShipmentStatus.DELIVERED, ShipmentStatus.OUT_FOR_DELIVERY):
        return base
    return _refine(base, message)


def _parse_datetime(raw: Any) -> datetime | None:
    if not raw or not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A scan without a zone is the carrier's local time; UTC is the least wrong reading of it.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_date(raw: Any) -> date | None:
    if not raw or not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _location(parts: Iterable[Any]) -> str:
    return ", ".join(str(p) for p in parts if p)


def _shipment(
    carrier: str,
    number: str,
    status: ShipmentStatus,
    detail: str,
    events: list[TrackingEvent],
    eta: date | None,
    url: str,
    fetched_at: datetime,
) -> Shipment:
    events.sort(key=lambda e: e.at)
    return Shipment(
        carrier=carrier,
        tracking_number=number,
        status=status,
        detail=detail,
        fetched_at=fetched_at,
        eta=eta if status != ShipmentStatus.DELIVERED else None,
        events=tuple(events),
        tracking_url=url,
    )


class _AggregatorTracking:
    """What both aggregator clients share: the HTTP client and its lifetime."""

    def __init__(self, http: ProviderHttp, clock: Clock) -> None:
        self.http = http
        self._clock = clock

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    def _auth_failed(self, response: httpx.Response) -> ProviderError:
        return ProviderError(
            f"{self.http.provider} refused our API key (HTTP {response.status_code})",
            code="auth",
            retryable=False,
        )

    def _unexpected(self, response: httpx.Response) -> ProviderError:
        return ProviderError(
            f"{self.http.provider} answered HTTP {response.status_code}: {response.text[:200]}",
            code=f"http_{response.status_code}",
            retryable=False,
        )


class EasyPostTracking(_AggregatorTracking):
    """`Tracking` over EasyPost Trackers (`POST /v2/trackers`, HTTP Basic with the API key)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.easypost.com/v2",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Clock = utc_now,
    ) -> None:
        http = ProviderHttp(
            "EasyPost",
            base_url,
            auth=(api_key, ""),
            timeout=timeout,
            transport=transport,
            policy=policy,
            sleep=sleep,
            rand=rand,
        )
        super().__init__(http, clock)

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        """The tracker for this number; None when EasyPost cannot track it."""
        number = _compact(tracking_number)
        if not number:
            return None
        body: dict[str, Any] = {"tracking_code": number}
        code = carrier_code(carrier, "easypost")
        if code:
            body["carrier"] = code
        # Safe to repeat: EasyPost answers a known code and carrier with the existing tracker.
        response = await self.http.request("POST", "/trackers", json={"tracker": body}, safe=True)
        if response.status_code in (401, 403):
            raise self._auth_failed(response)
        if response.status_code in (400, 404, 422):
            return None
        if response.status_code >= 300:
            raise self._unexpected(response)
        return self.normalize(response.json())

    def normalize(self, tracker: Mapping[str, Any]) -> Shipment:
        """Our `Shipment` for an EasyPost Tracker object."""
        events = []
        for scan in tracker.get("tracking_details") or []:
            at = _parse_datetime(scan.get("datetime"))
            if at is None:
                continue
            where = scan.get("tracking_location") or {}
            message = scan.get("message") or scan.get("description") or ""
            events.append(
                TrackingEvent(
                    at=at,
                    status=easypost_status(scan.get("status"), scan.get("status_detail"), message),
                    description=message,
                    location=_location(
                        (where.get("city"), where.get("state"), where.get("country"))
                    ),
                )
            )
        latest = max(events, key=lambda e: e.at) if events else None
        status = easypost_status(
            tracker.get("status"),
            tracker.get("status_detail"),
            latest.description if latest else None,
        )
        carrier_detail = tracker.get("carrier_detail") or {}
        eta = _parse_date(carrier_detail.get("est_delivery_date_local")) or _parse_date(
            tracker.get("est_delivery_date")
        )
        return _shipment(
            carrier=carrier_name(tracker.get("carrier") or ""),
            number=tracker.get("tracking_code") or "",
            status=status,
            detail=latest.description if latest else "No carrier scans yet",
            events=events,
            eta=eta,
            url=tracker.get("public_url") or "",
            fetched_at=self._clock(),
        )

    async def check(self) -> None:
        """A cheap authenticated call (list one tracker); raises ProviderError when it fails."""
        response = await self.http.request("GET", "/trackers", params={"page_size": 1}, safe=True)
        if response.status_code in (401, 403):
            raise self._auth_failed(response)
        if response.status_code >= 300:
            raise self._unexpected(response)


class AfterShipTracking(_AggregatorTracking):
    """`Tracking` over AfterShip's Tracking API (dated versions, header `as-api-key`).

    AfterShip tracks only numbers registered with it: an unknown number is registered on first
    ask (AfterShip refuses a duplicate, so that too is safe to repeat) and reported as
    information received until the carrier's first scan arrives.
    """

    def __init__(
        self,
        api_key: str,
        *,
        api_version: str = "2024-04",
        base_url: str = "https://api.aftership.com",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Clock = utc_now,
    ) -> None:
        http = ProviderHttp(
            "AfterShip",
            f"{base_url.rstrip('/')}/tracking/{api_version}",
            headers={"as-api-key": api_key, "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
            policy=policy,
            sleep=sleep,
            rand=rand,
        )
        super().__init__(http, clock)

    async def track(self, carrier: str, tracking_number: str) -> Shipment | None:
        """The tracking for this number, registering it with AfterShip when it is new."""
        number = _compact(tracking_number)
        if not number:
            return None
        slug = carrier_code(carrier, "aftership")
        params = {"tracking_numbers": number}
        if slug:
            params["slug"] = slug
        response = await self.http.request("GET", "/trackings", params=params, safe=True)
        self._raise_for(response)
        trackings = ((response.json().get("data") or {}).get("trackings")) or []
        if trackings:
            return self.normalize(trackings[0])
        return await self._register(number, slug)

    async def _register(self, number: str, slug: str | None) -> Shipment | None:
        body: dict[str, Any] = {"tracking_number": number}
        if slug:
            body["slug"] = slug
        response = await self.http.request("POST", "/trackings", json=body, safe=True)
        if response.status_code in (400, 404, 422) and _aftership_code(response) != 4003:
            return None  # AfterShip cannot detect a carrier for it: nobody can track it
        self._raise_for(response, allow=(4003,))
        tracking = (response.json().get("data") or {}).get("tracking")
        if not tracking:
            tracking = {"tracking_number": number, "slug": slug or "", "tag": "Pending"}
        return self.normalize(tracking)

    def _raise_for(self, response: httpx.Response, allow: tuple[int, ...] = ()) -> None:
        if response.status_code in (401, 403):
            raise self._auth_failed(response)
        if response.status_code >= 300 and _aftership_code(response) not in allow:
            raise self._unexpected(response)

    def normalize(self, tracking: Mapping[str, Any]) -> Shipment:
        """Our `Shipment` for an AfterShip tracking object."""
        events = []
        for checkpoint in tracking.get("checkpoints") or []:
            at = _parse_datetime(checkpoint.get("checkpoint_time"))
            if at is None:
                continue
            message = checkpoint.get("message") or checkpoint.get("subtag_message") or ""
            events.append(
                TrackingEvent(
                    at=at,
                    status=aftership_status(checkpoint.get("tag"), message),
                    description=message,
                    location=checkpoint.get("location")
                    or _location(
                        (
                            checkpoint.get("city"),
                            checkpoint.get("state"),
                            checkpoint.get("country_region") or checkpoint.get("country_iso3"),
                        )
                    ),
                )
            )
        latest = max(events, key=lambda e: e.at) if events else None
        subtag_message = tracking.get("subtag_message") or ""
        status = aftership_status(
            tracking.get("tag"),
            " ".join(filter(None, (subtag_message, latest and latest.description))),
        )
        return _shipment(
            carrier=carrier_name(tracking.get("slug") or ""),
            number=tracking.get("tracking_number") or "",
            status=status,
            detail=(latest.description if latest else subtag_message) or "No carrier scans yet",
            events=events,
            eta=_aftership_eta(tracking),
            url=tracking.get("courier_tracking_link") or "",
            fetched_at=self._clock(),
        )

    async def check(self) -> None:
        """A cheap authenticated call (list one tracking); raises ProviderError when it fails."""
        response = await self.http.request("GET", "/trackings", params={"limit": 1}, safe=True)
        self._raise_for(response)


def _aftership_code(response: httpx.Response) -> int | None:
    try:
        return int(response.json()["meta"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _aftership_eta(tracking: Mapping[str, Any]) -> date | None:
    for key in (
        "courier_estimated_delivery_date",
        "aftership_estimated_delivery_date",
        "custom_estimated_delivery_date",
    ):
        value = tracking.get(key)
        if isinstance(value, Mapping):
            found = _parse_date(value.get("estimated_delivery_date"))
            if found:
                return found
    return _parse_date(tracking.get("expected_delivery"))
