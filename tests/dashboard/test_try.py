"""/try: a call from the browser, behind the dashboard login, over Twilio's own message format."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from starlette.websockets import WebSocketDisconnect

from integrations.demo import seed, shop_customers
from tests.fakes import FakeSynthesizer, FakeTranscriber
from voice import twilio
from voice.audio import FRAME_MS, SAMPLE_RATE, mulaw_encode, read_wav
from voice.server import Engines, create_app
from voice.settings import Settings

CLIPS = Path(__file__).parents[2] / "audio_fixtures" / "clips"
ADMIN = "admin-token"
MARIA = "+14155550101"
FRAME = SAMPLE_RATE * FRAME_MS // 1000
RECEIVE_TIMEOUT_S = 20


@pytest.fixture
def transcriber():
    return FakeTranscriber(["where is my order"])


@pytest.fixture
def client(tmp_path, transcriber):
    settings = Settings(
        twilio_auth_token="secret-token",
        database_url=f"sqlite:///{tmp_path}/try.db",
        admin_token=ADMIN,
        public_url="http://testserver",
    )
    app = create_app(settings, Engines(transcriber, FakeSynthesizer()))
    with TestClient(app) as c:
        seed(c.app.state.shop.engine)
        yield c


def log_in(client: TestClient) -> str:
    """Log in through the form; returns the CSRF token the /try page carries."""
    answer = client.post("/login", data={"token": ADMIN, "next": "/try"})
    assert answer.status_code == 200 and answer.url.path == "/try"
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', answer.text).group(1)


def new_call(client: TestClient, caller: str = MARIA) -> dict:
    csrf = log_in(client)
    answer = client.post("/try/session", json={"caller": caller}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    return answer.json()


def ended_record(client: TestClient, call_sid: str) -> dict:
    """The call's record once the server has written its end (just after the socket closes)."""
    for _ in range(100):
        record = client.get(f"/api/calls/{call_sid}").json()  # the login cookie opens the API
        if record.get("ended_at"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"the end of {call_sid} was never recorded: {record}")


class Browser:
    """What /static/try.js does on the socket, with a timeout on every wait."""

    def __init__(self, ws, session: dict) -> None:
        self.ws = ws
        self.session = session
        self.stream_sid = session["stream_sid"]
        self.agent_audio = b""
        self.marks: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._chunk = 0

    def start(self) -> None:
        s = self.session
        params = twilio.StreamParams(s["call_sid"], self.stream_sid, "ACtry", s["params"])
        self.ws.send_text(twilio.build_connected())
        self.ws.send_text(twilio.build_start(params))

    def receive(self) -> dict:
        return json.loads(self._pool.submit(self.ws.receive_text).result(RECEIVE_TIMEOUT_S))

    def play_until_reply(self, number: int) -> None:
        """Play the agent's audio and echo its marks, until reply `number` has been heard."""
        while True:
            msg = self.receive()
            if msg["event"] == "media":
                self.agent_audio += twilio.parse_message(json.dumps(msg)).payload
            elif msg["event"] == "mark":
                name = msg["mark"]["name"]
                self.marks.append(name)
                self.ws.send_text(twilio.build_mark(self.stream_sid, 1, name))
                if name.startswith(f"r{number}:"):
                    return

    def speak(self, pcm: np.ndarray, trailing_silence_s: float = 1.0) -> None:
        """Caller audio in 20 ms µ-law frames, then silence so the turn ends."""
        pcm = np.concatenate([pcm, np.zeros(int(SAMPLE_RATE * trailing_silence_s), np.int16)])
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            self._chunk += 1
            ts = (self._chunk - 1) * FRAME_MS
            frame = mulaw_encode(pcm[i : i + FRAME])
            self.ws.send_text(
                twilio.build_media(self.stream_sid, self._chunk, self._chunk, ts, frame)
            )

    def hang_up(self) -> int:
        """Send `stop`, then wait for the server to close the socket; returns the close code."""
        s = self.session
        self.ws.send_text(
            twilio.build_stop(twilio.StreamParams(s["call_sid"], self.stream_sid, ""), 9)
        )
        while True:
            try:
                self.receive()
            except WebSocketDisconnect as closed:
                return closed.code

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def test_the_page_needs_the_dashboard_login(client):
    answer = client.get("/try", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Ftry"
    log_in(client)
    page = client.get("/try")
    assert page.status_code == 200
    for hook in ('id="caller"', 'id="start"', 'id="stop"', 'id="transcript"', 'id="status"'):
        assert hook in page.text


def test_the_picker_lists_the_shops_customers_and_an_unknown_number(client):
    with client.app.state.shop.engine.begin() as conn:
        conn.execute(
            insert(shop_customers).values(
                id="cust_900",
                name="Zoe Newcomer",
                phone="+14155550190",
                email="zoe@example.com",
                zip="94110",
            )
        )
    log_in(client)
    page = client.get("/try").text
    select = page[page.index('<select id="caller"') : page.index("</select>")]
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)
    values = [value for value, _ in options]
    assert values[:7] == [
        "+14155550101",
        "+14155550102",
        "+14155550103",
        "+14155550104",
        "+14155550105",
        "+14155550106",
        "+14155550190",
    ]
    labels = dict(options)
    assert labels[MARIA].startswith("Maria Lopez · +14155550101 · orders 1001, 1002")
    assert labels["+14155550190"] == "Zoe Newcomer · +14155550190"  # no orders yet
    assert "anonymous" in values and "other" in values


def test_a_session_needs_the_login_and_the_form_token(client):
    assert client.post("/try/session", json={"caller": MARIA}).status_code == 401
    csrf = log_in(client)
    refused = client.post("/try/session", json={"caller": MARIA})
    assert refused.status_code == 403
    bad = client.post("/try/session", json={"caller": "call me"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422 and "not a phone number" in bad.json()["detail"]

    answer = client.post(
        "/try/session", json={"caller": "(415) 555-0101", "csrf": csrf}
    )  # the token may come in the body too
    assert answer.status_code == 200
    session = answer.json()
    assert (
        session["call_sid"].startswith("CAtry") and session["ws_url"] == "ws://testserver/try/media"
    )
    params = session["params"]
    assert params["from"] == MARIA and params["to"] == "+18005550100"
    assert params["direction"] == "inbound"
    secret = client.app.state.settings.secret()
    assert twilio.verify_stream_token(secret, session["call_sid"], params)
    call = client.app.state.store.call(session["call_sid"])
    assert (call["from_number"], call["to_number"], call["direction"], call["status"]) == (
        MARIA,
        "+18005550100",
        "inbound",
        "ringing",
    )
    other = client.post("/try/session", json={"caller": MARIA}, headers={"X-CSRF-Token": csrf})
    assert other.json()["call_sid"] != session["call_sid"]


def test_a_call_from_the_page_is_answered_and_transcribed(client, transcriber):
    session = new_call(client)
    with client.websocket_connect("/try/media") as ws:
        browser = Browser(ws, session)
        try:
            browser.start()
            browser.play_until_reply(1)  # the greeting
            greeting_audio = len(browser.agent_audio)
            assert greeting_audio > SAMPLE_RATE // 2  # the caller heard it

            browser.speak(read_wav(CLIPS / "where_is_my_order.wav"))
            browser.play_until_reply(2)
            assert len(browser.agent_audio) > greeting_audio
            assert browser.hang_up() == 1000
        finally:
            browser.close()

    record = ended_record(client, session["call_sid"])
    turns = [(t["role"], t["text"]) for t in record["turns"]]
    assert turns[0][0] == "agent"
    assert ("caller", "where is my order") in turns
    after = turns[turns.index(("caller", "where is my order")) :]
    assert any(role == "agent" and "linen shirt" in text.lower() for role, text in after)
    assert record["status"] == "completed" and record["end_reason"] == "caller_hangup"
    assert record["from_number"] == MARIA and record["direction"] == "inbound"
    assert transcriber.texts == []  # the caller's audio reached the transcriber


def test_keypad_presses_reach_the_agent(client):
    session = new_call(client, caller="anonymous")
    with client.websocket_connect("/try/media") as ws:
        browser = Browser(ws, session)
        try:
            browser.start()
            browser.play_until_reply(1)
            for digit in "1001#":
                ws.send_text(twilio.build_dtmf(browser.stream_sid, 1, digit))
            browser.play_until_reply(2)
            assert browser.hang_up() == 1000
        finally:
            browser.close()
    record = ended_record(client, session["call_sid"])
    assert record["from_number"] == "anonymous"
    assert any(t["role"] == "caller" and t["text"] == "1001" for t in record["turns"])


def test_the_socket_is_refused_without_the_login_cookie(client):
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/try/media"):
        pass
    assert refused.value.code == 1008
    # A Bearer header would do, but a browser cannot send one: only the cookie matters here.
    log_in(client)
    with (
        pytest.raises(WebSocketDisconnect) as foreign,
        client.websocket_connect("/try/media", headers={"Origin": "https://evil.example"}),
    ):
        pass
    assert foreign.value.code == 1008


def test_the_socket_closes_on_a_token_it_did_not_issue(client):
    session = new_call(client)
    forged = {**session, "params": {**session["params"], "from": "+14155550106"}}
    with client.websocket_connect("/try/media") as ws:
        browser = Browser(ws, forged)
        try:
            browser.start()
            message = ws.receive()
        finally:
            browser.close()
    assert message["type"] == "websocket.close" and message["code"] == 1008
