// The audio thread of /try: the microphone becomes 20 ms frames of 8 kHz µ-law, and the agent's
// 8 kHz audio is played gaplessly, with a message back when each of its marks has been played.

import {
  Downsampler,
  FRAME_SAMPLES,
  PlaybackQueue,
  mulawEncodeSample,
  toInt16,
} from "./try-audio.js";

const SILENCE = mulawEncodeSample(0);

/** Microphone → {type: "frame", payload: Uint8Array(160) µ-law, level: RMS in [0, 1]}. */
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.down = new Downsampler(sampleRate);
    this.frame = new Uint8Array(FRAME_SAMPLES);
    this.fill = 0;
    this.energy = 0;
    this.muted = false;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "mute") this.muted = Boolean(event.data.muted);
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no microphone connected yet
    const samples = this.down.push(channels[0]);
    for (let i = 0; i < samples.length; i++) {
      const s = toInt16(samples[i]);
      this.energy += s * s;
      this.frame[this.fill++] = this.muted ? SILENCE : mulawEncodeSample(s);
      if (this.fill === FRAME_SAMPLES) {
        const level = Math.sqrt(this.energy / FRAME_SAMPLES) / 32768;
        this.port.postMessage({ type: "frame", payload: this.frame, level }, [this.frame.buffer]);
        this.frame = new Uint8Array(FRAME_SAMPLES);
        this.fill = 0;
        this.energy = 0;
      }
    }
    return true;
  }
}

/**
 * The agent's voice. Takes {type: "audio", samples: Float32Array at 8 kHz}, {type: "mark", name}
 * and {type: "clear"}; sends {type: "mark", name} once the audio before it has been played (or
 * dropped by a clear) and {type: "playing", playing} when the agent starts or stops being heard.
 */
class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = new PlaybackQueue(sampleRate);
    this.wasPlaying = false;
    this.port.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "audio") this.queue.push(msg.samples);
      else if (msg.type === "mark") this.queue.mark(msg.name);
      else if (msg.type === "clear") this.reached(this.queue.clear());
    };
  }

  reached(names) {
    for (const name of names) this.port.postMessage({ type: "mark", name });
  }

  process(_inputs, outputs) {
    const channels = outputs[0];
    this.reached(this.queue.render(channels[0]));
    for (let c = 1; c < channels.length; c++) channels[c].set(channels[0]);
    const playing = this.queue.playing;
    if (playing !== this.wasPlaying) {
      this.wasPlaying = playing;
      this.port.postMessage({ type: "playing", playing });
    }
    return true;
  }
}

registerProcessor("pv-capture", CaptureProcessor);
registerProcessor("pv-player", PlayerProcessor);
