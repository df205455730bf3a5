// /try: a phone call to the agent from this page. The microphone is streamed as Twilio would
// stream a caller (Media Streams: `connected`, `start`, 20 ms µ-law `media`, `dtmf`, `mark`
// echoes, `stop`) to /try/media, and the agent's audio is played back as a phone would.
// The transcript beside it is the call's record, read from /api/calls/{sid} while it runs.

import { mulawDecode } from "./try-audio.js";

const POLL_MS = 700;
const FINAL_POLLS = 30; // after the socket closes, until the server has recorded the end
const KEYS = "123456789*0#";

const $ = (id) => document.getElementById(id);
const ui = {
  caller: $("caller"),
  other: $("caller-other"),
  start: $("start"),
  stop: $("stop"),
  status: $("status"),
  transcript: $("transcript"),
  actions: $("actions"),
  level: $("level"),
  keypad: $("keypad"),
  keys: $("keys"),
  halfDuplex: $("half-duplex"),
  link: $("call-link"),
};
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

const REASONS = {
  caller_hangup: "you hung up",
  caller_done: "the agent said goodbye and hung up",
  socket_closed: "the connection was lost",
  transfer: "the agent handed the call to a person",
  silence: "nobody spoke for a while",
  error: "the agent hit an error",
};

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function base64Encode(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}

function base64Decode(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function randomHex(n) {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function clock(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

class CallError extends Error {
  constructor(state, message) {
    super(message);
    this.state = state;
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`;
}

/** The call's record, shown as it grows: turns in #transcript, events in #actions. */
class Transcript {
  constructor() {
    this.sid = null;
    this.timer = null;
    this.record = null;
    this.onLoggedOut = null;
  }

  follow(sid) {
    this.stop();
    this.sid = sid;
    this.record = null;
    ui.transcript.replaceChildren();
    ui.actions.replaceChildren();
    const tick = async () => {
      await this.poll();
      if (this.sid === sid && this.timer !== null) this.timer = setTimeout(tick, POLL_MS);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Read the record once more; true when the server has recorded the end of the call. */
  async poll() {
    if (!this.sid) return false;
    let response;
    try {
      response = await fetch(`/api/calls/${encodeURIComponent(this.sid)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
    } catch {
      return false; // a blip: the next poll tries again
    }
    if (response.status === 401 || response.status === 403) {
      this.stop();
      if (this.onLoggedOut) this.onLoggedOut();
      return false;
    }
    if (!response.ok) return false;
    this.record = await response.json();
    this.render(this.record);
    return Boolean(this.record.ended_at);
  }

  render(record) {
    const box = ui.transcript;
    const seen = new Set();
    for (const turn of record.turns ?? []) {
      const key = String(turn.seq);
      seen.add(key);
      let el = box.querySelector(`:scope > [data-seq="${key}"]`);
      if (!el) {
        el = document.createElement("div");
        el.dataset.seq = key;
        el.append(document.createElement("div"), document.createElement("div"));
        el.firstChild.className = "text";
        el.lastChild.className = "meta";
        box.append(el);
        box.scrollTop = box.scrollHeight;
      }
      el.className = `turn ${turn.role === "agent" ? "agent" : "caller"}`;
      if (turn.interrupted) el.classList.add("interrupted");
      if (el.firstChild.textContent !== turn.text) el.firstChild.textContent = turn.text;
      const meta = this.meta(turn);
      if (el.lastChild.textContent !== meta) el.lastChild.textContent = meta;
    }
    for (const el of box.querySelectorAll(":scope > [data-seq]")) {
      if (!seen.has(el.dataset.seq)) el.remove();
    }
    const items = (record.events ?? []).filter((e) => !e.type.startsWith("call."));
    if (ui.actions.childElementCount !== items.length) {
      ui.actions.replaceChildren(
        ...items.map((e) => {
          const li = document.createElement("li");
          li.dataset.type = e.type;
          const data = e.data ?? {};
          const detail = [data.name, data.reason, e.order_ref ? `order ${e.order_ref}` : null]
            .filter(Boolean)
            .join(" · ");
          li.textContent = detail ? `${e.type} — ${detail}` : e.type;
          return li;
        }),
      );
    }
  }

  meta(turn) {
    const parts = [turn.role === "agent" ? "Agent" : "You", clock(turn.start_ms)];
    if (turn.role === "caller" && turn.source === "dtmf") parts.push("keypad");
    const timing = turn.timing ?? {};
    if (turn.role === "agent" && timing.latency_ms !== undefined)
      parts.push(`answered in ${timing.latency_ms} ms`);
    if (turn.interrupted) parts.push("interrupted");
    return parts.filter(Boolean).join(" · ");
  }
}

/** One call: the microphone, the socket, and the agent's voice. */
class BrowserCall {
  constructor(caller, transcript, onEnded) {
    this.caller = caller;
    this.transcript = transcript;
    this.onEnded = onEnded;
    this.seq = 0;
    this.chunk = 0;
    this.streaming = false;
    this.ended = false;
    this.hungUp = false;
    this.agentPlaying = false;
    this.session = null;
  }

  async open() {
    setStatus("mic", "Asking for the microphone…");
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      const port = location.port ? `:${location.port}` : "";
      throw new CallError(
        "insecure",
        `Browsers only give the microphone to secure pages: open http://localhost${port}/try ` +
          "on this machine, or serve the dashboard over https.",
      );
    }
    try {
      // Echo cancellation keeps the agent from hearing itself through the speakers. Noise
      // suppression stays off: its artefacts cost the recogniser more than the noise does
      // (measured: it turned "where is my order" into "I wear it with my order").
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: true,
          noiseSuppression: false,
          autoGainControl: true,
          channelCount: 1,
        },
      });
    } catch (err) {
      if (err.name === "NotAllowedError" || err.name === "SecurityError")
        throw new CallError(
          "refused",
          "The microphone was refused. Allow it for this site (the icon in the address bar) " +
            "and press Start again.",
        );
      if (err.name === "NotFoundError" || err.name === "OverconstrainedError")
        throw new CallError("refused", "No microphone was found. Plug one in and try again.");
      throw new CallError("refused", `The microphone could not be opened: ${err.message}`);
    }
    if (this.ended) return this.release(); // hung up while the browser asked
    await this.openAudio();
    if (this.ended) return this.release();
    setStatus("connecting", "Connecting…");
    const response = await fetch("/try/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify({ caller: this.caller }),
    });
    if (!response.ok) {
      const why = await errorText(response);
      throw new CallError("error", `The call could not be placed: ${why}`);
    }
    this.session = await response.json();
    if (this.ended) return this.release();
    this.streamSid = this.session.stream_sid;
    ui.link.href = `/dashboard/calls/${encodeURIComponent(this.session.call_sid)}`;
    ui.link.hidden = false;
    const url = new URL(this.session.ws_url, location.href);
    if (location.protocol === "https:") url.protocol = "wss:";
    this.ws = new WebSocket(url);
    this.ws.onopen = () => this.onOpen();
    this.ws.onmessage = (event) => this.onMessage(event.data);
    this.ws.onclose = (event) => this.onClose(event);
  }

  async openAudio() {
    const ctx = new AudioContext({ latencyHint: "interactive" });
    this.ctx = ctx;
    await ctx.audioWorklet.addModule("/static/try-worklet.js");
    // One channel in (a stereo microphone is mixed down); the output only keeps it pulled.
    this.capture = new AudioWorkletNode(ctx, "pv-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
    });
    const mute = new GainNode(ctx, { gain: 0 });
    ctx.createMediaStreamSource(this.mic).connect(this.capture);
    this.capture.connect(mute).connect(ctx.destination);
    this.capture.port.onmessage = (event) => this.onFrame(event.data);

    // The agent's 8 kHz voice, interpolated up to the card's rate; a 4th-order low-pass
    // removes the images interpolation leaves above the phone band.
    this.player = new AudioWorkletNode(ctx, "pv-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    const edge = Math.min(3700, ctx.sampleRate * 0.45);
    const low1 = new BiquadFilterNode(ctx, { type: "lowpass", frequency: edge, Q: 0.541 });
    const low2 = new BiquadFilterNode(ctx, { type: "lowpass", frequency: edge, Q: 1.307 });
    this.player.connect(low1).connect(low2).connect(ctx.destination);
    this.player.port.onmessage = (event) => this.onPlayer(event.data);
    if (ctx.state === "suspended") await ctx.resume();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  onOpen() {
    this.send({ event: "connected", protocol: "Call", version: "1.0.0" });
    this.send({
      event: "start",
      sequenceNumber: String(++this.seq),
      streamSid: this.streamSid,
      start: {
        accountSid: "ACtry",
        streamSid: this.streamSid,
        callSid: this.session.call_sid,
        tracks: ["inbound"],
        customParameters: this.session.params,
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      },
    });
    this.streaming = true;
    setStatus("listening", "Connected. The agent answers…");
    this.transcript.follow(this.session.call_sid);
  }

  onFrame(message) {
    if (message.type !== "frame") return;
    ui.level.style.width = `${Math.min(100, Math.round(Math.sqrt(message.level) * 180))}%`;
    if (!this.streaming || this.ended) return;
    this.chunk += 1;
    this.send({
      event: "media",
      sequenceNumber: String(++this.seq),
      streamSid: this.streamSid,
      media: {
        track: "inbound",
        chunk: String(this.chunk),
        timestamp: String((this.chunk - 1) * 20),
        payload: base64Encode(message.payload),
      },
    });
  }

  onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.event === "media" && message.media?.payload) {
      const samples = mulawDecode(base64Decode(message.media.payload));
      this.player.port.postMessage({ type: "audio", samples }, [samples.buffer]);
    } else if (message.event === "mark" && message.mark?.name) {
      this.player.port.postMessage({ type: "mark", name: message.mark.name });
    } else if (message.event === "clear") {
      this.player.port.postMessage({ type: "clear" });
    }
  }

  onPlayer(message) {
    if (message.type === "mark") {
      this.send({
        event: "mark",
        sequenceNumber: String(++this.seq),
        streamSid: this.streamSid,
        mark: { name: message.name },
      });
    } else if (message.type === "playing") {
      this.agentPlaying = message.playing;
      this.updateMute();
      if (this.streaming && !this.ended)
        setStatus(
          message.playing ? "speaking" : "listening",
          message.playing ? "Agent speaking…" : "Listening: speak now.",
        );
    }
  }

  updateMute() {
    const muted = ui.halfDuplex.checked && this.agentPlaying;
    this.capture?.port.postMessage({ type: "mute", muted });
  }

  dtmf(digit) {
    if (!this.streaming || this.ended) return;
    this.send({
      event: "dtmf",
      sequenceNumber: String(++this.seq),
      streamSid: this.streamSid,
      dtmf: { track: "inbound_track", digit },
    });
  }

  hangUp() {
    if (this.ended) return;
    this.hungUp = true;
    if (this.streaming && this.session) {
      this.send({
        event: "stop",
        sequenceNumber: String(++this.seq),
        streamSid: this.streamSid,
        stop: { accountSid: "ACtry", callSid: this.session.call_sid },
      });
    }
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "hung up");
    else this.finish("ended", "Call ended.");
  }

  onClose(event) {
    if (this.ended) return;
    const wasStreaming = this.streaming;
    if (!wasStreaming && !this.hungUp) {
      this.finish(
        "error",
        "The server refused the call's connection. Is your dashboard login still valid? " +
          "Reload the page and try again.",
      );
      return;
    }
    if (event.code === 1008) {
      this.finish("error", "The server refused the call (its stream token was not accepted).");
      return;
    }
    this.finish("ended", this.hungUp ? "Call ended: you hung up." : "Call ended.");
    if (wasStreaming) this.explainEnd();
  }

  /** Once the server has recorded why the call ended, say it. */
  async explainEnd() {
    this.transcript.stop();
    for (let i = 0; i < FINAL_POLLS; i++) {
      if (await this.transcript.poll()) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const record = this.transcript.record;
    if (!record || !record.end_reason) return;
    let why = REASONS[record.end_reason] ?? record.end_reason.replaceAll("_", " ");
    if (record.end_reason === "transfer" && record.transfer_to)
      why += ` (${record.transfer_to}; on a phone, Twilio would dial them now)`;
    else if (!this.hungUp && !REASONS[record.end_reason]) why = `the agent hung up (${why})`;
    setStatus("ended", `Call ended: ${why}.`);
  }

  finish(state, text) {
    if (this.ended) return;
    this.ended = true;
    this.streaming = false;
    setStatus(state, text);
    ui.level.style.width = "0%";
    if (state !== "ended") this.transcript.stop();
    // Let the last words play out before the sound card is released.
    if (this.agentPlaying) setTimeout(() => this.release(), 3000);
    else this.release();
    this.onEnded(this);
  }

  /** Give back the microphone and the sound card (again and again: it does nothing twice). */
  release() {
    for (const track of this.mic?.getTracks() ?? []) track.stop();
    if (this.ctx && this.ctx.state !== "closed") this.ctx.close().catch(() => {});
  }
}

const transcript = new Transcript();
let current = null;

function callerId() {
  if (ui.caller.value === "other") return ui.other.value.trim();
  return ui.caller.value;
}

function setIdle(idle) {
  ui.start.disabled = !idle;
  ui.stop.disabled = idle;
  ui.caller.disabled = !idle;
  ui.other.disabled = !idle;
  for (const button of ui.keypad.querySelectorAll("button")) button.disabled = idle;
}

async function start() {
  if (current) return;
  const caller = callerId();
  if (!caller) {
    setStatus("error", "Type the number to call from.");
    ui.other.focus();
    return;
  }
  ui.keys.textContent = "";
  ui.link.hidden = true;
  setIdle(false);
  const call = new BrowserCall(caller, transcript, (ended) => {
    if (current === ended) current = null;
    setIdle(true);
  });
  current = call;
  try {
    await call.open();
  } catch (err) {
    const state = err instanceof CallError ? err.state : "error";
    call.finish(state, err.message || String(err));
  }
}

transcript.onLoggedOut = () => {
  setStatus("error", "You have been logged out: log in again to see the transcript.");
};

ui.caller.addEventListener("change", () => {
  ui.other.hidden = ui.caller.value !== "other";
  if (!ui.other.hidden) ui.other.focus();
});
ui.start.addEventListener("click", start);
ui.stop.addEventListener("click", () => current?.hangUp());
ui.halfDuplex.addEventListener("change", () => current?.updateMute());
for (const key of KEYS) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.dataset.digit = key;
  button.textContent = key;
  button.addEventListener("click", () => {
    if (!current) return;
    current.dtmf(key);
    ui.keys.textContent += key;
  });
  ui.keypad.append(button);
}
document.addEventListener("keydown", (event) => {
  const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement;
  if (!current || typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (KEYS.includes(event.key)) {
    current.dtmf(event.key);
    ui.keys.textContent += event.key;
  }
});
window.addEventListener("pagehide", () => current?.hangUp());
setIdle(true);
setStatus("idle", "Pick who is calling and press Start call.");
