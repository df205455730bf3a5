"""Photos of damage: what is kept of a photo, the signed link, MMS photos from Twilio, and
the photos reaching the ticket (the demo helpdesk, Zendesk, and through the outbox)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image

from integrations.demo import DemoShop
from integrations.labels import label_signature
from integrations.models import Attachment, PhotoRequest
from integrations.outbox import OutboxHelpdesk
from integrations.photos import (
    PhotoDesk,
    PhotoOptions,
    PhotoRejected,
    Reply,
    Upload,
    accept_mms,
    attachment_deliverer,
    clean_photo,
    media_items,
)
from integrations.protocols import Helpdesk, ProviderError
from integrations.provider_set import Providers
from integrations.store import CallEvents, Store, make_engine
from integrations.worker import Worker, deliverers_from
from integrations.zendesk import ZendeskHelpdesk
from tests.integrations.fakes_http import FakeZendesk

SECRET = b"photo-test-secret"
LENA = "+14155550105"
SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-token"
T0 = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)


def jpeg(size=(640, 480), colour=(200, 40, 40), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", **save)
    return out.getvalue()


def gps_jpeg(orientation: int = 1) -> bytes:
    """A phone photo: EXIF with the camera, the GPS position and an orientation, a comment."""
    image = Image.new("RGB", (40, 20), (10, 120, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15"  # Model
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (37.0, 46.0, 30.0)  # latitude
    gps[3], gps[4] = "W", (122.0, 25.0, 10.0)  # longitude
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


# --- what is kept of a photo ------------------------------------------------------------------


def test_a_phone_photo_is_kept_without_its_location_camera_or_comment():
    original = gps_jpeg()
    assert b"PhoneMaker" in original and b"taken at home" in original
    kept = clean_photo(original)
    assert kept.content_type == "image/jpeg"
    assert b"PhoneMaker" not in kept.data and b"taken at home" not in kept.data
    assert b"Exif" not in kept.data
    with Image.open(io.BytesIO(kept.data)) as image:
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert "comment" not in image.info and "icc_profile" not in image.info


def test_a_photo_taken_sideways_is_kept_upright():
    kept = clean_photo(gps_jpeg(orientation=6))  # the camera was turned a quarter
    assert (kept.width, kept.height) == (20, 40)


def test_a_big_photo_is_scaled_down_and_a_transparent_png_gets_a_white_background():
    assert max(clean_photo(jpeg((4000, 3000))).width, 0) == 2048
    out = io.BytesIO()
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(out, "PNG")
    kept = clean_photo(out.getvalue())
    with Image.open(io.BytesIO(kept.data)) as image:
        assert image.getpixel((15, 15)) >= (250, 250, 250)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"%PDF-1.4 a contract, not a photo", "not_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not_image"),
        (jpeg()[:200], "not_image"),  # cut off in transit
    ],
)
def test_what_is_not_a_photo_is_refused_whatever_it_claims_to_be(data, reason):
    with pytest.raises(PhotoRejected) as refused:
        clean_photo(data)
    assert refused.value.reason == reason


def test_a_gif_and_an_oversized_file_are_refused():
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "GIF")
    with pytest.raises(PhotoRejected, match="not a JPEG, PNG or WebP"):
        clean_photo(out.getvalue())
    with pytest.raises(PhotoRejected) as refused:
        clean_photo(jpeg(), PhotoOptions(max_bytes=1000))
    assert refused.value.reason == "too_large"


# --- the desk ---------------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Recorder:
    """A `FollowUp` that keeps what it was told and fulfils the request when told to."""

    fulfil: bool = True
    received_calls: list[tuple[str, list[Attachment], str]] = field(default_factory=list)

    async def received(self, request, files, source) -> Reply:
        self.received_calls.append((request.id, files, source))
        return Reply(f"got {len(files)}", fulfilled=self.fulfil)

    async def already(self, request) -> str:
        return f"already {request.order_number}"

    async def rejected(self, request, reasons) -> str:
        return "refused: " + ",".join(reasons)


def desk_for(tmp_path, clock: Clock | None = None, **kw) -> PhotoDesk:
    engine = make_engine(f"sqlite:///{tmp_path}/photos.db")
    Store(engine).migrate()
    return PhotoDesk(engine, SECRET, "https://shop.test/", clock=clock or Clock(), **kw)


async def open_request(desk: PhotoDesk, key: str = "CA1:photos:1009:1009-1") -> PhotoRequest:
    return await desk.request_photos(
        order_number="1009",
        line_id="1009-1",
        phone="(415) 555-0105",
        resolution="replacement",
        ticket_id="PV-ABC123",
        call_sid="CA1",
        idempotency_key=key,
    )


def link_parts(url: str) -> tuple[str, str, str]:
    path, query = url.split("?", 1)
    params = dict(p.split("=", 1) for p in query.split("&"))
    return path.rsplit("/", 1)[-1], params["expires"], params["sig"]


async def test_the_link_opens_its_request_until_it_expires_and_nothing_else(tmp_path):
    clock = Clock()
    desk = desk_for(tmp_path, clock)
    request = await open_request(desk)
    other = await open_request(desk, key="CA2:photos:1003:1003-1")
    assert request.url.startswith("https://shop.test/photos/")
    assert request.phone == LENA and request.expires_at == T0 + timedelta(hours=72)
    rid, expires, sig = link_parts(request.url)
    assert (await desk.open(rid, expires, sig)).id == request.id
    assert await desk.open(rid, expires, sig[:-2] + "xx") is None
    assert await desk.open(other.id, expires, sig) is None  # this link is for one request
    assert await desk.open(rid, str(int(expires) + 3600), sig) is None  # a longer life, forged
    # A return label's signature over the same id does not open photos (another subject).
    assert await desk.open(rid, expires, label_signature(SECRET, rid, int(expires))) is None
    clock.now = request.expires_at + timedelta(seconds=1)
    assert await desk.open(rid, expires, sig) is None
    assert await desk.waiting_for(LENA) is None


async def test_a_request_is_opened_once_per_key(tmp_path):
    desk = desk_for(tmp_path)
    first = await open_request(desk)
    assert (await open_request(desk)).id == first.id
    assert (await open_request(desk, key="CA9:photos:1009:1009-1")).id != first.id


async def test_photos_are_kept_once_each_counted_against_the_limit_and_then_followed_up(tmp_path):
    follow = Recorder(fulfil=False)
    desk = desk_for(tmp_path, options=PhotoOptions(max_photos=3), follow_up=follow)
    request = await open_request(desk)
    first = await desk.accept(
        request,
        [
            Upload(gps_jpeg(), "image/jpeg", "a.jpg"),
            Upload(b"hello", "image/jpeg", "notes.txt"),
            Upload(gps_jpeg(), "image/jpeg", "a-again.jpg"),  # the same photo twice
        ],
    )
    assert first.stored == 2 and first.rejected == [("notes.txt", "not_image")]
    assert first.reply == "got 1" and first.request.photo_count == 1
    assert first.request.status == "received"
    [(_rid, files, source)] = follow.received_calls
    assert source == "upload" and files[0].ref.startswith("photo:")
    assert files[0].data[:2] == b"\xff\xd8" and b"PhoneMaker" not in files[0].data

    too_many = await desk.accept(request, [Upload(jpeg(colour=(i, 0, 0))) for i in range(3)])
    assert too_many.stored == 0 and too_many.reply == "refused: too_many"
    assert (await desk.get(request.id)).photo_count == 1

    photo_id = int(files[0].ref.split(":")[1])
    content_type, data = desk.photo(photo_id)
    assert content_type == "image/jpeg" and data == files[0].data
    shown = desk.photos_of_tickets(["PV-ABC123", "PV-OTHER"])
    assert [p["id"] for p in shown["PV-ABC123"]] == [photo_id] and "PV-OTHER" not in shown


async def test_a_request_that_is_done_takes_no_more_photos(tmp_path):
    follow = Recorder(fulfil=True)
    desk = desk_for(tmp_path, follow_up=follow)
    request = await open_request(desk)
    assert (await desk.accept(request, [Upload(jpeg())])).request.status == "fulfilled"
    again = await desk.accept(request, [Upload(jpeg(colour=(0, 0, 9)))])
    assert again.already and again.stored == 0 and again.reply == "already 1009"
    assert len(follow.received_calls) == 1 and (await desk.get(request.id)).photo_count == 1


# --- MMS --------------------------------------------------------------------------------------


@dataclass
class FakeTwilioMedia:
    """Twilio's media URLs: authenticated, answered with a redirect to its media store."""

    photo: bytes
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.host == "api.twilio.com":
            expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return httpx.Response(401, json={"code": 20003, "message": "Authenticate"})
            media = request.url.path.rsplit("/", 1)[-1]
            return httpx.Response(307, headers={"Location": f"https://media.store.test/{media}"})
        if request.url.host == "media.store.test":
            if "Authorization" in request.headers:
                return httpx.Response(400, text="Only one auth mechanism allowed")
            return httpx.Response(200, content=self.photo, headers={"Content-Type": "image/jpeg"})
        return httpx.Response(404)


def mms_form(*media: tuple[str, str]) -> dict[str, str]:
    form = {"From": LENA, "Body": "", "NumMedia": str(len(media)), "MessageSid": "MM1"}
    for i, (url, kind) in enumerate(media):
        form[f"MediaUrl{i}"], form[f"MediaContentType{i}"] = url, kind
    return form


MEDIA = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1"


async def test_mms_photos_are_fetched_from_twilio_and_kept_like_uploads(tmp_path):
    twilio = FakeTwilioMedia(gps_jpeg())
    follow = Recorder()
    desk = desk_for(
        tmp_path,
        follow_up=follow,
        media_auth=(SID, TOKEN),
        media_transport=httpx.MockTransport(twilio),
    )
    await open_request(desk)
    form = mms_form(
        (MEDIA, "image/jpeg"),
        (MEDIA.replace("ME1", "ME2"), "text/vcard"),  # a contact card: never fetched
        ("https://evil.test/photo.jpg", "image/jpeg"),  # not Twilio's: never fetched
    )
    assert media_items(form)[0] == (MEDIA, "image/jpeg")
    reply = await accept_mms(desk, LENA, form)
    assert reply == "got 1"
    assert [r.url.host for r in twilio.seen] == ["api.twilio.com", "media.store.test"]
    [(_rid, files, source)] = follow.received_calls
    assert source == "mms" and b"PhoneMaker" not in files[0].data

    # Sent again to a request that is done: said so, nothing fetched.
    assert await accept_mms(desk, LENA, form) == "already 1009"
    assert len(twilio.seen) == 2


async def test_an_mms_from_someone_with_no_request_is_an_ordinary_message(tmp_path):
    twilio = FakeTwilioMedia(jpeg())
    desk = desk_for(tmp_path, follow_up=Recorder(), media_transport=httpx.MockTransport(twilio))
    await open_request(desk)
    assert await accept_mms(desk, "+14155550101", mms_form((MEDIA, "image/jpeg"))) is None
    assert await accept_mms(desk, LENA, {"From": LENA, "Body": "hi", "NumMedia": "0"}) is None
    assert twilio.seen == []


async def test_mms_media_twilio_will_not_hand_over_is_explained(tmp_path):
    twilio = FakeTwilioMedia(jpeg())  # no credentials configured: Twilio answers 401
    desk = desk_for(tmp_path, follow_up=Recorder(), media_transport=httpx.MockTransport(twilio))
    request = await open_request(desk)
    reply = await accept_mms(desk, LENA, mms_form((MEDIA, "image/jpeg")))
    assert reply == "refused: unavailable"
    assert (await desk.get(request.id)).photo_count == 0


# --- to the ticket ----------------------------------------------------------------------------


def photo(ref: str = "photo:1") -> Attachment:
    return Attachment("damage-1.jpg", "image/jpeg", jpeg(), ref=ref)


async def test_the_demo_helpdesk_keeps_attachments_once_per_key():
    shop = DemoShop.in_memory()
    desk: Helpdesk = shop.helpdesk
    assert isinstance(desk, Helpdesk)
    ticket = await desk.create_ticket(
        "Photos of damage: order 1009",
        "waiting for photos",
        requester_phone=LENA,
        requester_email=None,
        tags=["damaged"],
        priority="normal",
        idempotency_key="CA1:ticket:photos:1009",
    )
    ids = await desk.attach(ticket.id, [photo(), photo()], note="from Lena", idempotency_key="k1")
    assert ids == ["A-10001", "A-10002"]
    assert await desk.attach(ticket.id, [photo()], note="again", idempotency_key="k1") == ids
    kept = shop.helpdesk.attachments(ticket.id)
    assert [a["id"] for a in kept] == ids and kept[0]["note"] == "from Lena"
    with pytest.raises(ProviderError) as refused:
        await desk.attach("T-99999", [photo()], note="", idempotency_key="k2")
    assert refused.value.code == "no_ticket"


async def _no_sleep(_seconds: float) -> None:
    return None


async def test_zendesk_gets_the_photos_as_uploads_in_one_private_comment_once():
    zendesk = FakeZendesk()
    desk = ZendeskHelpdesk(
        zendesk.subdomain,
        zendesk.email,
        zendesk.token,
        transport=httpx.MockTransport(zendesk),
        sleep=_no_sleep,
    )
    ticket = await desk.create_ticket(
        "Photos of damage: order 1009",
        "waiting for photos",
        requester_phone=LENA,
        requester_email=None,
        tags=["damaged"],
        priority="normal",
        idempotency_key="CA1:ticket:photos:1009",
    )
    files = [photo("photo:1"), Attachment("damage-2.jpg", "image/jpeg", jpeg((9, 9)), "photo:2")]
    ids = await desk.attach(ticket.id, files, note="Photos from the customer.", idempotency_key="k")
    [comment] = zendesk.comments[ticket.id]
    assert comment["public"] is False and comment["body"].startswith("Photos from the customer.")
    assert [a["file_name"] for a in comment["attachments"]] == ["damage-1.jpg", "damage-2.jpg"]
    assert [f["_content"] for f in comment["_files"]] == [f.data for f in files]
    assert ids == [str(a["id"]) for a in comment["attachments"]]
    uploads = zendesk.upload_posts

    # Retried (the worker lost the answer): found by its marker, nothing uploaded twice.
    assert await desk.attach(ticket.id, files, note="Photos.", idempotency_key="k") == ids
    assert zendesk.upload_posts == uploads and len(zendesk.comments[ticket.id]) == 1


async def test_photos_queued_for_a_ticket_wait_for_it_then_reach_the_helpdesk(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/shop.db")
    store = Store(engine)
    shop = DemoShop(engine)
    from integrations.demo import metadata as shop_metadata

    store.migrate(also=[shop_metadata])
    photos = PhotoDesk(engine, SECRET, "https://shop.test")
    request = await open_request(photos)
    kept = await photos.accept(request, [Upload(jpeg())])
    assert kept.stored == 1
    [file] = photos.files(["photo:1"])

    events = CallEvents(store, None)
    helpdesk = OutboxHelpdesk(events)
    ticket = await helpdesk.create_ticket(
        "Photos of damage: order 1009",
        "waiting for photos",
        requester_phone=LENA,
        requester_email=None,
        tags=["damaged"],
        priority="normal",
        idempotency_key="CA1:ticket:photos:1009",
    )
    assert ticket.status == "queued"
    with pytest.raises(ValueError, match="needs a ref"):
        await helpdesk.attach(
            ticket.id, [Attachment("x.jpg", "image/jpeg", b"x")], note="", idempotency_key="bad"
        )
    await helpdesk.attach(ticket.id, [file], note="Photos.", idempotency_key="photos:r:1")
    [row] = store.outbox.items(kind="attachment")
    assert "data" not in str(row.payload["files"])  # the row names the photo, not its bytes

    deliver = attachment_deliverer(shop.helpdesk, engine)
    with pytest.raises(ProviderError) as waiting:
        await deliver(row.payload, row.idempotency_key)
    assert waiting.value.retryable and waiting.value.code == "ticket_pending"

    await Worker(store.outbox, deliverers_from(Providers.demo(shop), engine)).drain(timeout_s=30)
    [attachment] = store.outbox.items(kind="attachment")
    assert attachment.status == "delivered"
    delivered_id = attachment.result["ticket_id"]
    assert delivered_id.startswith("T-")
    [kept_there] = shop.helpdesk.attachments(delivered_id)
    assert kept_there["data"] == file.data and kept_there["note"] == "Photos."
