"""Black box: the real `postvoice serve` process, driven over its socket like Twilio would."""

import asyncio
import json
import os
import subprocess
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from harness.bench_server import postvoice_command
from harness.target import free_port
from voice import twilio
from voice.audio import read_wav, write_wav

ROOT = Path(__file__).parents[1]
SCENARIOS = ROOT / "audio_fixtures" / "scenarios"
CLIPS = ROOT / "audio_fixtures" / "clips"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {
        **os.environ,
        "POSTVOICE_TWILIO_AUTH_TOKEN": "blackbox-auth-token",
        "POSTVOICE_ADMIN_TOKEN": "blackbox-admin",
        "POSTVOICE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "POSTVOICE_DATABASE_URL": f"sqlite:///{tmp}/calls.db",
        "POSTVOICE_ALLOW_INJECTION": "true",
    }
    subprocess.run([*postvoice_command(), "seed"], env=env, check=True, capture_output=True)
    log = open(tmp / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [*postvoice_command(), "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((tmp / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    yield {"base": base, "ws": f"ws://127.0.0.1:{port}/twilio/media", "env": env, "tmp": tmp}
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _replay(server, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*postvoice_command(), "replay", *args, "--url", server["ws"]],
        env={**server["env"], "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )


# Calls that leave the demo shop as they found it (every scenario, with a reseed between each,
# runs in-process in test_scenarios.py).
OVER_THE_SOCKET = [
    "wismo_caller_id",
    "wismo_spoken_number",
    "wismo_keypad",
    "wismo_unknown_order",
    "barge_in",
    "text_wismo",
]


def test_fixture_scenarios_pass_over_the_socket(server, tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in OVER_THE_SOCKET:
        text = (SCENARIOS / f"{name}.yaml").read_text().replace("../clips/", f"{CLIPS}/")
        (scenarios / f"{name}.yaml").write_text(text)
    result = _replay(server, str(scenarios), "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    names = OVER_THE_SOCKET
    for name in names:
        report = json.loads((tmp_path / name / "report.json").read_text())
        assert report["passed"], (name, report["failures"])
        assert report["scenario"] == name and report["call_sid"].startswith("CA")
        assert report["turns"][0]["role"] == "agent"
        assert report["latency_ms"] and all(ms > 0 for ms in report["latency_ms"])
        with wave.open(str(tmp_path / name / "call.wav")) as w:
            assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        agent = read_wav(tmp_path / name / "agent.wav")
        assert np.abs(agent).max() > 1000  # the agent really spoke
    wismo = json.loads((tmp_path / "wismo_caller_id" / "report.json").read_text())
    assert "order_status" in wismo["intents"]
    assert any(e["type"] == "sms.sent" and e["to"] == "+14155550101" for e in wismo["events"])
    caller = [t for t in wismo["turns"] if t["role"] == "caller"]
    assert caller[0]["source"] == "audio" and "order" in caller[0]["text"].lower()
    barge = json.loads((tmp_path / "barge_in" / "report.json").read_text())
    assert any(t.get("interrupted") for t in barge["turns"] if t["role"] == "agent")


def test_a_failed_expectation_exits_1_and_says_which(server, tmp_path):
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(
        "name: wrong\nfrom: '+14155550101'\nturns:\n  - text: where is my order\n"
        "expect:\n  agent_says: ['your refund was approved']\n  actions: [ticket.created]\n"
    )
    result = _replay(server, str(scenario), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "your refund was approved" in result.stdout and "ticket.created" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passed"] is False and len(report["failures"]) == 2


def test_a_plain_recording_plays_in_real_time(server, tmp_path):
    pcm = np.concatenate(
        [
            read_wav(CLIPS / "where_is_my_order.wav"),
            np.zeros(8000 * 7, dtype=np.int16),
            read_wav(CLIPS / "no_thanks.wav"),
        ]
    )
    recording = tmp_path / "caller_side.wav"
    write_wav(recording, pcm)
    started = time.monotonic()
    result = _replay(server, str(recording), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started >= len(pcm) / 8000  # played at the speed of speech
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    said = " ".join(t["text"].lower() for t in report["turns"] if t["role"] == "caller")
    assert "where is my order" in said
    assert any("linen shirt" in t["text"] for t in report["turns"] if t["role"] == "agent")


async def test_unsigned_requests_are_refused_by_the_real_server(server):
    form = {"CallSid": "CAx", "From": "+14155550101", "To": "+18005550100"}
    async with httpx.AsyncClient() as client:
        answer = await client.post(server["base"] + "/twilio/voice", data=form)
    assert answer.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(server["ws"]):
            pass
    assert refused.value.response.status_code == 403


async def test_garbage_on_the_socket_does_not_end_the_call(server):
    form = {"CallSid": "CAgarbage", "From": "+14155550101", "To": "+18005550100"}
    url = server["env"]["POSTVOICE_PUBLIC_URL"] + "/twilio/voice"
    sig = twilio.compute_signature("blackbox-auth-token", url, form)
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            server["base"] + "/twilio/voice", data=form, headers={"X-Twilio-Signature": sig}
        )
    _, params = twilio.parse_stream_twiml(answer.text)
    stream = twilio.StreamParams("CAgarbage", "MZg", "AC1", params)
    ws_url = server["env"]["POSTVOICE_PUBLIC_URL"].replace("http://", "ws://") + "/twilio/media"
    handshake = {"X-Twilio-Signature": twilio.compute_signature("blackbox-auth-token", ws_url, {})}
    async with websockets.connect(server["ws"], max_size=None, additional_headers=handshake) as ws:
        await ws.send(twilio.build_connected())
        await ws.send(twilio.build_start(stream))
        for junk in [
            b"\x00\xff binary",
            "{oops",
            "y" * 100_000,
            '{"event": "warp"}',
            '{"event": "media", "media": {"payload": "%%%"}}',
        ]:
            await ws.send(junk)
        await ws.send(twilio.build_inject("where is my order", 0))
        heard_status = False
        async with asyncio.timeout(60):
            async for raw in ws:
                msg = json.loads(raw)
                if msg["event"] == "mark":
                    await ws.send(twilio.build_mark("MZg", 1, msg["mark"]["name"]))
                    if msg["mark"]["name"].startswith("r2:"):
                        heard_status = True
                        break
        assert heard_status
        await ws.send(twilio.build_stop(stream, 2))
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            record = (
                await client.get(
                    server["base"] + "/api/calls/CAgarbage",
                    headers={"Authorization": "Bearer blackbox-admin"},
                )
            ).json()
            if record.get("ended_at"):
                break
            await asyncio.sleep(0.1)
    ended = next(e for e in record["events"] if e["type"] == "call.ended")
    assert ended["data"]["bad_messages"] == {
        "binary_frame": 1,
        "invalid_json": 1,
        "oversized": 1,
        "unknown_event": 1,
        "bad_base64": 1,
    }
    assert any("linen shirt" in t["text"] for t in record["turns"] if t["role"] == "agent")
