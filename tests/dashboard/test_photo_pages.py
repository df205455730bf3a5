"""The photo upload page behind its signed link, and the photos on the dashboard's tickets."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.dashboard.callmaker import BEARER, running
from tests.dashboard.dom import parse
from tests.photo_requests import open_photo_request


@pytest.fixture
def client(tmp_path):
    with running(tmp_path) as c:
        yield c


def jpeg(colour=(180, 20, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    return out.getvalue()


def open_request(client):
    """A photo request for Lena's vase, on a ticket queued the way the flow queues it."""
    return open_photo_request(client)


def path_of(url: str) -> str:
    return url.removeprefix("https://support.example-shop.com")


def test_the_link_shows_the_upload_form_and_a_forged_or_bare_link_shows_nothing(client):
    request = open_request(client)
    answer = client.get(path_of(request.url))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "private, no-store"
    form = parse(answer.text).one("form", id="upload")
    field = form.find("input", type="file")
    assert field["name"] == "photos" and "multiple" in field.attrs
    assert "image/jpeg" in field["accept"]
    forged = path_of(request.url)[:-3] + "abc"
    for path in (forged, f"/photos/{request.id}"):
        refused = client.get(path)
        assert refused.status_code == 403 and "not valid or has expired" in refused.text
        posted = client.post(path, files=[("photos", ("a.jpg", jpeg(), "image/jpeg"))])
        assert posted.status_code == 403
    assert client.app.state.photos.photos_of_tickets([request.ticket_id]) == {}


def test_photos_sent_from_the_page_arrange_the_replacement_and_show_on_the_ticket(client):
    request = open_request(client)
    link = path_of(request.url)
    not_a_photo = client.post(link, files=[("photos", ("notes.txt", b"hello", "text/plain"))])
    assert not_a_photo.status_code == 400
    assert "that wasn't a photo" in parse(not_a_photo.text).one(id="error").text

    sent = client.post(
        link,
        files=[
            ("photos", ("vase.jpg", jpeg(), "image/jpeg")),
            ("photos", ("box.jpg", jpeg((20, 20, 180)), "image/jpeg")),
        ],
    )
    assert sent.status_code == 200, sent.text[:400]
    reply = parse(sent.text).one(id="reply").text
    assert reply.startswith("Thanks, we've got your photos — a replacement for your ceramic vase")
    record = client.get("/api/outbox", headers=BEARER).json()["items"]
    assert any(i["kind"] == "attachment" for i in record)
    again = client.post(link, files=[("photos", ("more.jpg", jpeg((0, 90, 0)), "image/jpeg"))])
    assert again.status_code == 409 and "We already have your photos" in again.text

    tickets = parse(client.get("/dashboard/tickets", headers=BEARER).text)
    row = tickets.one("tr", data_ticket=request.ticket_id)
    images = row.find_all("img")
    assert len(images) == 2
    src = images[0]["src"]
    assert client.get(src, follow_redirects=False).status_code == 303  # not logged in
    shown = client.get(src, headers=BEARER)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert shown.content[:2] == b"\xff\xd8"
    assert client.get("/dashboard/photos/999", headers=BEARER).status_code == 404


def test_an_upload_sent_without_its_length_is_refused_once_it_streams_past_the_limit(tmp_path):
    with running(tmp_path, photo_max_mb=1, photo_max_count=1) as client:
        request = open_request(client)
        sent: list[int] = []
        boundary = "postvoice-test"

        def body():  # chunked: no Content-Length for the route to check first
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
                f'filename="huge.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            for _ in range(64):  # 4 MB, over the 3 MB one photo of 1 MB may bring
                sent.append(1)
                yield b"\xff" * (64 * 1024)
            yield f"\r\n--{boundary}--\r\n".encode()

        refused = client.post(
            path_of(request.url),
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert refused.status_code == 413
        assert "too much at once" in parse(refused.text).one(id="error").text
        assert client.app.state.photos.photos_of_tickets([request.ticket_id]) == {}
