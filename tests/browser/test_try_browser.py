"""/try in Chromium: a WAV stands in for the microphone, the page calls the real server, and the
transcript shows the agent answering. Also the page's audio code itself, run in the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, ROOT, log_in
from voice.audio import mulaw_encode, read_wav, write_wav

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CLIPS = ROOT / "audio_fixtures" / "clips"
MARIA = "+14155550101"
MIC_RATE = 48_000
LEAD_SILENCE_S = 10.0  # the greeting (mostly) plays out before the caller speaks
TAIL_SILENCE_S = 30.0  # Chromium loops the file: the question comes back only after this
ANSWER_TIMEOUT_MS = 120_000  # real whisper and piper on a shared CPU


def _watch_errors(page: Any) -> list[str]:
    """The page's script errors and console errors (a missing favicon is not one)."""
    errors: list[str] = []

    def console(msg: Any) -> None:
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"console: {msg.text} ({msg.location.get('url')})")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", console)
    return errors


@pytest.fixture
def fake_mic(tmp_path) -> str:
    """A caller asking "where is my order?" after a pause, as 16-bit 48 kHz PCM (what
    Chromium's fake capture device reads)."""
    rate = MIC_RATE
    question = read_wav(CLIPS / "where_is_my_order.wav", rate=rate)
    pcm = np.concatenate(
        [
            np.zeros(int(rate * LEAD_SILENCE_S), np.int16),
            question,
            np.zeros(int(rate * TAIL_SILENCE_S), np.int16),
        ]
    )
    path = tmp_path / "caller.wav"
    write_wav(path, pcm, rate=rate)
    return str(path)


@pytest.fixture
def mic_page(browser, live_server, fake_mic) -> Iterator[Any]:
    """A tab in a Chromium whose microphone plays `fake_mic`, allowed without asking."""
    chromium = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic}",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    try:
        context = chromium.new_context(
            base_url=live_server.base,
            viewport={"width": 1280, "height": 900},
            permissions=["microphone"],
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        yield context.new_page()
        context.close()
    finally:
        chromium.close()


def test_a_caller_talks_to_the_agent_from_the_browser(mic_page, live_server, screenshot):
    page = mic_page
    errors = _watch_errors(page)
    log_in(page, live_server.admin_token, "/try")
    page.wait_for_url("**/try")
    expect(page.locator("#caller option[value='anonymous']")).to_have_count(1)
    page.select_option("#caller", MARIA)
    page.click("#start")

    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", re.compile("listening|speaking"))
    agent = page.locator("#transcript .turn.agent")
    expect(agent.first).to_contain_text("Maria")  # caller ID found her
    caller = page.locator("#transcript .turn.caller")
    expect(caller.first).to_contain_text(re.compile("order", re.I), timeout=ANSWER_TIMEOUT_MS)
    answer = page.locator("#transcript .turn.agent", has_text=re.compile("linen shirt", re.I))
    expect(answer.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#actions li[data-type=intent]").first).to_contain_text("order_status")
    screenshot(page, "try")

    for key in "1001#":  # the keypad sends Twilio's `dtmf` messages
        page.click(f"#keypad button[data-digit='{key}']")
    expect(page.locator("#keys")).to_have_text("1001#")
    keyed = page.locator("#transcript .turn.caller", has_text="1001")
    expect(keyed.first).to_contain_text("keypad", timeout=ANSWER_TIMEOUT_MS)

    page.click("#stop")
    expect(status).to_have_attribute("data-state", "ended")
    expect(status).to_contain_text("you hung up")
    expect(page.locator("#start")).to_be_enabled()
    href = page.locator("#call-link").get_attribute("href")
    call_sid = href.rsplit("/", 1)[1]
    assert call_sid.startswith("CAtry")

    record = live_server.api(f"/api/calls/{call_sid}")
    assert record["from_number"] == MARIA and record["end_reason"] == "caller_hangup"
    heard = [t for t in record["turns"] if t["role"] == "caller"]
    assert heard[0]["source"] == "audio"
    assert any(t["source"] == "dtmf" and t["text"] == "1001" for t in heard)
    ended = next(e for e in record["events"] if e["type"] == "call.ended")
    assert ended["data"]["bad_messages"] == {}  # the page spoke Twilio's protocol exactly
    assert not errors, errors


def test_the_page_says_when_the_microphone_is_refused(page, live_server):
    log_in(page, live_server.admin_token, "/try")
    page.wait_for_url("**/try")
    page.context.clear_permissions()  # Playwright's headless Chromium then refuses the prompt
    page.click("#start")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "refused")
    expect(status).to_contain_text("microphone")
    expect(page.locator("#start")).to_be_enabled()


def test_the_pages_phone_audio_matches_the_server(page, live_server):
    """µ-law as voice/audio.py codes it, and a downsampler that lets speech through and keeps
    what a phone line cannot carry from folding back into it."""
    page.goto("/login")  # any page of the site: the module is imported from its origin
    result = page.evaluate(
        """async () => {
        const audio = await import('/static/try-audio.js');
        const encoded = [];
        for (let x = -32768; x < 32768; x++) encoded.push(audio.mulawEncodeSample(x));
        const decoded = Array.from(audio.mulawDecodeInt16(Uint8Array.from(encoded.slice(0, 256))));
        const level = (rate, hz) => {
          const down = new audio.Downsampler(rate);
          const out = [];
          for (let i = 0; i < rate; i += 128) {
            const block = new Float32Array(128);
            for (let j = 0; j < 128; j++) {
              block[j] = 0.5 * Math.sin((2 * Math.PI * hz * (i + j)) / rate);
            }
            out.push(...down.push(block));
          }
          const tail = out.slice(1000);
          const rms = Math.sqrt(tail.reduce((s, v) => s + v * v, 0) / tail.length);
          return {n: out.length, db: 20 * Math.log10(rms / (0.5 / Math.SQRT2))};
        };
        return {encoded, decoded, levels: {
          speech48: level(48000, 1000), speech44: level(44100, 1000), edge48: level(48000, 3300),
          alias48: level(48000, 5000), alias44: level(44100, 6000)}};
      }"""
    )
    expected = np.frombuffer(mulaw_encode(np.arange(-32768, 32768)), dtype=np.uint8)
    assert np.array_equal(np.array(result["encoded"], dtype=np.uint8), expected)
    from voice.audio import mulaw_decode

    decoded = mulaw_decode(bytes(np.array(result["encoded"][:256], dtype=np.uint8)))
    assert result["decoded"] == decoded.tolist()
    levels = result["levels"]
    assert all(abs(levels[k]["n"] - 8000) < 100 for k in levels)  # 8000 samples a second
    assert abs(levels["speech48"]["db"]) < 0.5 and abs(levels["speech44"]["db"]) < 0.5
    assert levels["edge48"]["db"] > -1.0
    assert levels["alias48"]["db"] < -60 and levels["alias44"]["db"] < -60
