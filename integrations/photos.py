"""Photos of damage: the signed, expiring upload link, the photos kept, and MMS photos.

When the damaged-item flow needs evidence (`dialog.policy`: an item above the photo line), the
dialog opens a `PhotoRequest` through `PhotoDesk.request_photos` and texts its link,
`{public_url}/photos/{id}?expires=…&sig=…`. The link is signed like a return label's
(`integrations.labels.label_signature`, over `photos:{id}`), so it opens that one request and
no other, and stops working when it expires. The customer's photos, from the upload page
(`PhotoDesk.accept`) or an MMS reply (`accept_mms`), are checked (JPEG, PNG or WebP, at most
`PhotoOptions.max_bytes` each, at most `max_photos` per request) and re-encoded as plain JPEG
(`clean_photo`), which drops every byte of metadata (EXIF with its GPS position, XMP,
comments). They are kept in the `photos` table, readable only through the dashboard; what
happens next (attach them to the ticket, send the replacement, the words for the customer) is
the `FollowUp`'s, which the dialog provides, since nothing here knows orders or wording.

The `attachment` outbox rows that carry photos to the helpdesk name them by ref ("photo:12")
rather than holding their bytes; `attachment_deliverer` reads them back and waits for the
ticket to reach the helpdesk first.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from integrations.clock import Clock, aware, utc_now
from integrations.http import DEFAULT_TIMEOUT
from integrations.labels import label_signature, verify_label_url
from integrations.models import Attachment, PhotoRequest
from integrations.outbox import outbox
from integrations.phones import normalize_phone
from integrations.protocols import Helpdesk, ProviderError

__all__ = [
    "MAX_PHOTOS",
    "TWILIO_MEDIA_BASE",
    "Acceptance",
    "CleanPhoto",
    "FollowUp",
    "PhotoDesk",
    "PhotoOptions",
    "PhotoRejected",
    "Reply",
    "Upload",
    "accept_mms",
    "attachment_deliverer",
    "clean_photo",
    "kept_files",
    "media_items",
    "metadata",
    "photo_requests",
    "photos",
]

log = logging.getLogger(__name__)

MAX_PHOTOS = 5
"""The most photos one request takes."""

TWILIO_MEDIA_BASE = "https://api.twilio.com/"
"""Where Twilio keeps MMS media: the only place an MMS photo is fetched from."""

_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# --------------------------------------------------------------------------------------------
# Schema (migrated with the call store: integrations/migrations, 0006_photos)
# --------------------------------------------------------------------------------------------

metadata = MetaData()
"""The photo tables, migrated with the call store's."""

_UtcDateTime = DateTime(timezone=True)

photo_requests = Table(
    "photo_requests",
    metadata,
    Column("id", String(32), primary_key=True),  # random: the link names it, nothing guesses it
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("call_sid", String(64), index=True),
    Column("order_ref", String(32), nullable=False, index=True),
    Column("line_id", String(48), nullable=False),
    Column("phone", String(32), nullable=False, index=True),
    Column("resolution", String(32), nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", _UtcDateTime, nullable=False),
    Column("expires_at", _UtcDateTime, nullable=False),
    Column("received_at", _UtcDateTime),
    Column("fulfilled_at", _UtcDateTime),
    CheckConstraint(
        "status IN ('pending', 'received', 'fulfilled')", name="ck_photo_requests_status"
    ),
)

photos = Table(
    "photos",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", ForeignKey("photo_requests.id"), nullable=False, index=True),
    Column("source", String(8), nullable=False),  # "upload" or "mms"
    Column("content_type", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", _UtcDateTime, nullable=False),
    # The same photo sent twice (a double tap, Twilio retrying an MMS) is kept once.
    UniqueConstraint("request_id", "sha256", name="uq_photos_request_sha256"),
)

# --------------------------------------------------------------------------------------------
# Checking and cleaning one photo
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoOptions:
    """What a request accepts: at most `max_photos` photos of at most `max_bytes` each, none
    above `max_pixels`; kept at most `max_side` pixels on the long side; links valid `ttl`."""

    max_photos: int = MAX_PHOTOS
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 2048
    ttl: timedelta = timedelta(hours=72)

    def __post_init__(self) -> None:
        if not 1 <= self.max_photos <= MAX_PHOTOS:
            raise ValueError(f"max_photos must be 1 to {MAX_PHOTOS}")
        if self.max_bytes <= 0 or self.ttl <= timedelta(0):
            raise ValueError("max_bytes and ttl must be positive")


class PhotoRejected(ValueError):
    """A file that is not a photo we take; `reason` is "empty", "not_image" or "too_large"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CleanPhoto:
    """A photo re-encoded as a plain JPEG, with nothing of the original's metadata."""

    data: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"

    @property
    def sha256(self) -> str:
        """The hash that tells the same photo sent twice."""
        return hashlib.sha256(self.data).hexdigest()


def clean_photo(data: bytes, options: PhotoOptions = PhotoOptions()) -> CleanPhoto:
    """`data` as a JPEG with no metadata, turned upright and at most `max_side` pixels long.

    The type is what the bytes are (Pillow's reading of them), never what the sender claimed;
    anything but JPEG, PNG or WebP, or too many bytes or pixels, raises `PhotoRejected`.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise PhotoRejected("empty", "the file is empty")
    if len(data) > options.max_bytes:
        raise PhotoRejected("too_large", f"larger than {options.max_bytes // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in _FORMATS:
                raise PhotoRejected("not_image", "not a JPEG, PNG or WebP photo")
            width, height = image.size
            if width * height > options.max_pixels:
                raise PhotoRejected("too_large", "too many pixels")
            upright = ImageOps.exif_transpose(image)
            if upright.mode in ("RGBA", "LA", "P"):
                rgba = upright.convert("RGBA")
                rgb = Image.new("RGB", rgba.size, (255, 255, 255))
                rgb.paste(rgba, mask=rgba.getchannel("A"))
            else:
                rgb = upright.convert("RGB")
            rgb.thumbnail((options.max_side, options.max_side))
            # A new image carries no `info` (EXIF, XMP, ICC, comments): only the pixels go on.
            plain = Image.new("RGB", rgb.size)
            plain.paste(rgb)
    except PhotoRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise PhotoRejected("not_image", "not a photo we can read") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        raise PhotoRejected("not_image", "a damaged image file") from exc
    out = io.BytesIO()
    plain.save(out, "JPEG", quality=85, optimize=True)
    return CleanPhoto(out.getvalue(), plain.width, plain.height)


# --------------------------------------------------------------------------------------------
# What happens after photos arrive: the dialog's
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One file as it came in: its bytes, the type the sender claimed, its name."""

    data: bytes
    content_type: str = ""
    filename: str = ""


@dataclass(frozen=True)
class Reply:
    """The follow-up's answer: the words for the customer, and whether the request is done."""

    text: str
    fulfilled: bool = False


class FollowUp(Protocol):
    """What happens once photos are kept, and what the customer is told (the dialog's)."""

    async def received(self, request: PhotoRequest, files: list[Attachment], source: str) -> Reply:
        """New photos of `request` are kept (`files`, each with its bytes and its `ref`,
        "photo:12"), from `source` ("upload" or "mms"): carry on with it."""
        ...

    async def already(self, request: PhotoRequest) -> str:
        """The customer sent photos to a request already done."""
        ...

    async def rejected(self, request: PhotoRequest, reasons: list[str]) -> str:
        """None of the files sent could be kept (`reasons`: PhotoRejected reasons, or
        "too_many")."""
        ...


@dataclass
class Acceptance:
    """What an upload did: photos kept (`stored`), files refused with why, the reply."""

    request: PhotoRequest
    stored: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    reply: str = ""
    already: bool = False


# --------------------------------------------------------------------------------------------
# The desk
# --------------------------------------------------------------------------------------------


class PhotoDesk:
    """Photo requests, their signed links, and the photos customers send to them.

    Implements `integrations.protocols.PhotoRequests` for the dialog. `follow_up` is set by
    whoever wires the app (the dialog's `dialog.evidence`); without one photos are kept and
    nothing follows. `media_auth` (Twilio's account SID and token) and `media_transport`
    fetch MMS photos.
    """

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        public_url: str,
        options: PhotoOptions = PhotoOptions(),
        *,
        clock: Clock = utc_now,
        follow_up: FollowUp | None = None,
        media_auth: tuple[str, str] | None = None,
        media_transport: httpx.AsyncBaseTransport | None = None,
        media_base: str = TWILIO_MEDIA_BASE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not secret:
            raise ValueError("photo links need a non-empty secret")
        self.engine = engine
        self.options = options
        self.follow_up = follow_up
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._clock = clock
        self._media_auth = media_auth
        self._media_transport = media_transport
        self._media_base = media_base
        self._timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}

    def create_all(self) -> None:
        """Create the photo tables (tests; the server migrates them)."""
        metadata.create_all(self.engine)

    # -- links ------------------------------------------------------------------------------

    def url(self, request_id: str, expires_at: datetime) -> str:
        """The signed upload link of `request_id`, valid until `expires_at`."""
        expires = int(expires_at.timestamp())
        sig = label_signature(self._secret, f"photos:{request_id}", expires)
        return f"{self._public_url}/photos/{quote(request_id, safe='')}?expires={expires}&sig={sig}"

    def verify(self, request_id: str, expires: int | str, sig: str) -> bool:
        """Whether a link was signed here for `request_id` and has not expired."""
        return verify_label_url(
            self._secret, f"photos:{request_id}", expires, sig or "", self._clock()
        )

    # -- requests ---------------------------------------------------------------------------

    async def request_photos(
        self,
        *,
        order_number: str,
        line_id: str,
        phone: str,
        resolution: str,
        ticket_id: str,
        call_sid: str | None,
        idempotency_key: str,
    ) -> PhotoRequest:
        """Open a request (the one made before under the same key, if any)."""
        if not idempotency_key:
            raise ValueError("a photo request needs an idempotency_key")
        number = normalize_phone(phone) or phone.strip()
        if not number:
            raise ValueError("a photo request needs the customer's number")
        now = self._clock().replace(microsecond=0)
        values = {
            "id": secrets.token_urlsafe(16),
            "idempotency_key": idempotency_key,
            "call_sid": call_sid,
            "order_ref": order_number,
            "line_id": line_id,
            "phone": number,
            "resolution": resolution,
            "ticket_id": ticket_id,
            "status": "pending",
            "created_at": now,
            "expires_at": now + self.options.ttl,
        }
        return await asyncio.to_thread(self._open, values)

    def _open(self, values: dict[str, Any]) -> PhotoRequest:
        key = values["idempotency_key"]
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(photo_requests).values(**values))
        except IntegrityError:
            pass  # made before under this key (or a racing twin): that one stands
        found = self._find(photo_requests.c.idempotency_key == key)
        if found is None:
            raise RuntimeError(f"photo request {key!r} was neither written nor found")
        return found

    def _find(self, *where: Any) -> PhotoRequest | None:
        count = (
            select(func.count())
            .select_from(photos)
            .where(photos.c.request_id == photo_requests.c.id)
            .scalar_subquery()
        )
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(photo_requests, count.label("photo_count"))
                    .where(*where)
                    .order_by(photo_requests.c.created_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return self._request(row) if row else None

    def _request(self, row: Mapping[str, Any]) -> PhotoRequest:
        expires_at = aware(row["expires_at"])
        return PhotoRequest(
            id=row["id"],
            order_number=row["order_ref"],
            line_id=row["line_id"],
            phone=row["phone"],
            resolution=row["resolution"],
            url=self.url(row["id"], expires_at),
            expires_at=expires_at,
            status=row["status"],
            ticket_id=row["ticket_id"],
            call_sid=row["call_sid"],
            photo_count=int(row.get("photo_count") or 0),
            max_photos=self.options.max_photos,
            max_bytes=self.options.max_bytes,
        )

    async def get(self, request_id: str) -> PhotoRequest | None:
        """The request `request_id`, whatever its state."""
        return await asyncio.to_thread(self._find, photo_requests.c.id == request_id)

    async def open(self, request_id: str, expires: str, sig: str) -> PhotoRequest | None:
        """The request a link names, or None when the link is not valid (forged, expired)."""
        if not self.verify(request_id, expires, sig):
            return None
        return await self.get(request_id)

    async def waiting_for(self, phone: str) -> PhotoRequest | None:
        """The newest unexpired request of `phone` that is not done yet, or None."""
        number = normalize_phone(phone) or phone.strip()
        return await asyncio.to_thread(
            self._find,
            photo_requests.c.phone == number,
            photo_requests.c.status.in_(["pending", "received"]),
            photo_requests.c.expires_at > self._clock(),
        )

    async def latest_done(self, phone: str) -> PhotoRequest | None:
        """The newest unexpired request of `phone` that is done, or None."""
        number = normalize_phone(phone) or phone.strip()
        return await asyncio.to_thread(
            self._find,
            photo_requests.c.phone == number,
            photo_requests.c.status == "fulfilled",
            photo_requests.c.expires_at > self._clock(),
        )

    # -- photos -----------------------------------------------------------------------------

    async def accept(
        self, request: PhotoRequest, files: Sequence[Upload], *, source: str = "upload"
    ) -> Acceptance:
        """Keep the photos among `files` for `request` and carry on (`FollowUp.received`).

        A request that is done takes no more (`already`); a batch that would take it past
        `max_photos` is refused whole, so the customer chooses again; files that are not
        photos are refused one by one, the others kept. One upload per request at a time.
        """
        lock = self._locks.setdefault(request.id, asyncio.Lock())
        async with lock:
            current = await self.get(request.id) or request
            if current.status == "fulfilled":
                text = await self.follow_up.already(current) if self.follow_up else ""
                return Acceptance(current, reply=text, already=True)
            room = self.options.max_photos - current.photo_count
            if not files:
                return Acceptance(current)
            if len(files) > room:
                rejected = [(f.filename, "too_many") for f in files]
                return await self._refused(current, rejected)
            cleaned: list[CleanPhoto] = []
            rejected = []
            for upload in files:
                try:
                    cleaned.append(await asyncio.to_thread(clean_photo, upload.data, self.options))
                except PhotoRejected as exc:
                    rejected.append((upload.filename, exc.reason))
            if not cleaned:
                return await self._refused(current, rejected)
            refs = await asyncio.to_thread(self._keep, current.id, cleaned, source)
            current = await self.get(current.id) or current
            acceptance = Acceptance(current, stored=len(cleaned), rejected=rejected)
            if self.follow_up is None:
                return acceptance
            kept = await asyncio.to_thread(kept_files, self.engine, refs)
            reply = await self.follow_up.received(current, kept, source)
            if reply.fulfilled:
                await asyncio.to_thread(self._fulfilled, current.id)
                current = await self.get(current.id) or current
            acceptance.request, acceptance.reply = current, reply.text
            return acceptance

    async def _refused(self, request: PhotoRequest, rejected: list[tuple[str, str]]) -> Acceptance:
        reasons = list(dict.fromkeys(reason for _name, reason in rejected))
        text = await self.follow_up.rejected(request, reasons) if self.follow_up else ""
        return Acceptance(request, rejected=rejected, reply=text)

    def _keep(self, request_id: str, cleaned: list[CleanPhoto], source: str) -> list[str]:
        """Store the photos (each once); the refs of all of them, new or kept before."""
        now = self._clock()
        refs = []
        for photo in cleaned:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(photos).values(
                            request_id=request_id,
                            source=source,
                            content_type=photo.content_type,
                            width=photo.width,
                            height=photo.height,
                            size_bytes=len(photo.data),
                            sha256=photo.sha256,
                            data=photo.data,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                pass  # this very photo is kept already
            with self.engine.connect() as conn:
                photo_id = conn.execute(
                    select(photos.c.id).where(
                        photos.c.request_id == request_id, photos.c.sha256 == photo.sha256
                    )
                ).scalar_one()
            refs.append(f"photo:{photo_id}")
        with self.engine.begin() as conn:
            conn.execute(
                update(photo_requests)
                .where(photo_requests.c.id == request_id, photo_requests.c.status == "pending")
                .values(status="received", received_at=now)
            )
        return list(dict.fromkeys(refs))

    def _fulfilled(self, request_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(photo_requests)
                .where(photo_requests.c.id == request_id)
                .values(status="fulfilled", fulfilled_at=self._clock())
            )

    def photo(self, photo_id: int) -> tuple[str, bytes] | None:
        """One kept photo's media type and bytes (for the dashboard, behind its login)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(photos.c.content_type, photos.c.data).where(photos.c.id == photo_id)
            ).first()
        return (row.content_type, bytes(row.data)) if row else None

    def files(self, refs: Sequence[str]) -> list[Attachment]:
        """The kept photos `refs` names ("photo:12"), bytes and all; unknown refs raise."""
        return kept_files(self.engine, refs)

    def photos_of_tickets(self, ticket_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The photos kept for each of `ticket_ids` (without their bytes), oldest first."""
        wanted = [t for t in ticket_ids if t]
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    photo_requests.c.ticket_id,
                    photos.c.id,
                    photos.c.width,
                    photos.c.height,
                    photos.c.source,
                    photos.c.created_at,
                )
                .join(photos, photos.c.request_id == photo_requests.c.id)
                .where(photo_requests.c.ticket_id.in_(wanted))
                .order_by(photos.c.id)
            ).all()
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault(row.ticket_id, []).append(
                {
                    "id": row.id,
                    "width": row.width,
                    "height": row.height,
                    "source": row.source,
                    "created_at": aware(row.created_at),
                }
            )
        return found

    # -- MMS --------------------------------------------------------------------------------

    async def fetch_media(self, url: str, declared_type: str) -> Upload:
        """One MMS photo from Twilio (authenticated; the redirect to its store is not).

        Raises `PhotoRejected` for what is not an image or too large, `ProviderError` when
        Twilio cannot be reached."""
        if not url.startswith(self._media_base):
            raise PhotoRejected("not_image", "media not from Twilio")
        if declared_type and not declared_type.lower().startswith("image/"):
            raise PhotoRejected("not_image", f"{declared_type} is not a photo")
        async with httpx.AsyncClient(
            auth=self._media_auth, timeout=self._timeout, transport=self._media_transport
        ) as authed:
            response = await self._get(authed, url)
            if response.is_redirect and response.headers.get("location"):
                async with httpx.AsyncClient(
                    timeout=self._timeout, transport=self._media_transport
                ) as plain:
                    response = await self._get(plain, response.headers["location"])
        if response.status_code in (401, 403):
            raise ProviderError("Twilio refused the account SID and token", code="auth")
        if response.status_code >= 400:
            retryable = response.status_code >= 500 or response.status_code == 429
            raise ProviderError(
                f"Twilio media answered HTTP {response.status_code}",
                code=f"http_{response.status_code}",
                retryable=retryable,
            )
        content_type = response.headers.get("content-type", declared_type).split(";")[0]
        return Upload(response.content, content_type, url.rsplit("/", 1)[-1])

    async def _get(self, client: httpx.AsyncClient, url: str) -> httpx.Response:
        try:
            async with client.stream("GET", url) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.options.max_bytes:
                    raise PhotoRejected("too_large", "larger than the photo limit")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.options.max_bytes:
                        raise PhotoRejected("too_large", "larger than the photo limit")
                return httpx.Response(
                    response.status_code, headers=response.headers, content=bytes(body)
                )
        except httpx.TransportError as exc:
            raise ProviderError(
                f"Twilio media could not be fetched ({type(exc).__name__})",
                code="unavailable",
                retryable=True,
            ) from exc


def kept_files(engine: Engine, refs: Sequence[str]) -> list[Attachment]:
    """The kept photos `refs` names ("photo:12"), bytes and all; unknown refs raise KeyError."""
    ids = [_photo_id(ref) for ref in refs]
    with engine.connect() as conn:
        rows = {
            row.id: row
            for row in conn.execute(
                select(
                    photos.c.id, photos.c.content_type, photos.c.data, photos.c.request_id
                ).where(photos.c.id.in_(ids))
            )
        }
    missing = [i for i in ids if i not in rows]
    if missing:
        raise KeyError(f"no kept photo {missing}")
    return [
        Attachment(
            filename=f"damage-{rows[i].request_id[:8]}-{i}.jpg",
            content_type=rows[i].content_type,
            data=bytes(rows[i].data),
            ref=f"photo:{i}",
        )
        for i in ids
    ]


def _photo_id(ref: str) -> int:
    kind, _, number = ref.partition(":")
    if kind != "photo" or not number.isdigit():
        raise ValueError(f"not a photo ref: {ref!r}")
    return int(number)


_MEDIA_FIELD = re.compile(r"^MediaUrl(\d+)$")


def media_items(form: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (MediaUrlN, MediaContentTypeN) pairs of a Twilio message webhook, in order."""
    found = []
    for name, url in form.items():
        match = _MEDIA_FIELD.match(name)
        if match and url:
            index = int(match.group(1))
            found.append((index, url, form.get(f"MediaContentType{index}", "")))
    return [(url, kind) for _i, url, kind in sorted(found)]


async def accept_mms(desk: PhotoDesk, sender: str, form: Mapping[str, str]) -> str | None:
    """Photos sent by MMS in reply to the link's text: the reply to send back, or None when
    `sender` has no request waiting for photos (the message is an ordinary one then).

    `form` is the inbound message webhook's form (MediaUrlN, MediaContentTypeN). Each photo
    is fetched from Twilio and then checked, cleaned and kept exactly like an upload.
    """
    items = media_items(form)
    if not items:
        return None
    request = await desk.waiting_for(sender)
    if request is None:
        done = await desk.latest_done(sender)
        if done is not None and desk.follow_up is not None:
            return await desk.follow_up.already(done)
        return None
    files: list[Upload] = []
    reasons: list[str] = []
    for url, declared in items:
        try:
            files.append(await desk.fetch_media(url, declared))
        except PhotoRejected as exc:
            reasons.append(exc.reason)
        except ProviderError as exc:
            log.warning("MMS photo for request %s not fetched: %s", request.id, exc)
            reasons.append("unavailable")
    if not files:
        return await desk.follow_up.rejected(request, reasons) if desk.follow_up else None
    acceptance = await desk.accept(request, files, source="mms")
    return acceptance.reply or None


# --------------------------------------------------------------------------------------------
# Delivery of an `attachment` outbox row
# --------------------------------------------------------------------------------------------


def attachment_deliverer(helpdesk: Helpdesk, engine: Engine):
    """Delivers `attachment` rows (`OutboxHelpdesk.attach`): the kept photos they name, to the
    ticket, once the ticket itself is in the helpdesk (until then the row waits: retryable)."""

    async def deliver(payload: dict[str, Any], key: str) -> dict[str, Any]:
        ticket_id = await asyncio.to_thread(_helpdesk_ticket_id, engine, payload["ticket_id"])
        refs = [str(f["ref"]) for f in payload["files"]]
        files = await asyncio.to_thread(kept_files, engine, refs)
        ids = await helpdesk.attach(
            ticket_id, files, note=str(payload.get("note", "")), idempotency_key=key
        )
        return {"ticket_id": ticket_id, "attachment_ids": list(ids)}

    return deliver


def _helpdesk_ticket_id(engine: Engine, ticket_id: str) -> str:
    """The helpdesk's id of a ticket the dialog knows by `ticket_id`: a queued ticket's
    reference becomes the helpdesk's id once delivered; any other id is the helpdesk's own."""
    reference = outbox.c.payload["reference"].as_string()
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox.c.status, outbox.c.result, outbox.c.last_error).where(
                outbox.c.kind == "ticket", reference == ticket_id
            )
        ).first()
    if row is None:
        return ticket_id
    if row.status == "delivered" and row.result and row.result.get("id"):
        return str(row.result["id"])
    if row.status == "dead":
        raise ProviderError(
            f"ticket {ticket_id} never reached the helpdesk: {row.last_error}",
            code="ticket_dead",
            retryable=False,
        )
    raise ProviderError(
        f"ticket {ticket_id} is not in the helpdesk yet", code="ticket_pending", retryable=True
    )
