// Phone audio for /try, shared by the page and its AudioWorklet (an ES module, no DOM):
// G.711 µ-law as Twilio carries it, a low-pass downsampler from the microphone's rate to 8 kHz,
// and the queue that plays the agent's 8 kHz audio at the sound card's rate and says when each
// mark has really been played.

export const PHONE_RATE = 8000;
export const FRAME_SAMPLES = 160; // 20 ms at 8 kHz: one Twilio `media` message

const BIAS = 0x84;
const CLIP = 32635;

/** int16 sample → µ-law byte (the same table as voice/audio.py). */
export function mulawEncodeSample(sample) {
  let s = sample | 0;
  let sign = 0;
  if (s < 0) {
    sign = 0x80;
    s = -s;
  }
  if (s > CLIP) s = CLIP;
  s += BIAS;
  const exponent = Math.min(7, Math.max(0, 31 - Math.clz32(s) - 7));
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

const DECODE = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + BIAS) << exponent) - BIAS;
  DECODE[i] = u & 0x80 ? -magnitude : magnitude;
}

/** µ-law bytes → int16 samples. */
export function mulawDecodeInt16(bytes) {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE[bytes[i]];
  return out;
}

/** µ-law bytes → float samples in [-1, 1), for Web Audio. */
export function mulawDecode(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE[bytes[i]] / 32768;
  return out;
}

/** float sample in [-1, 1] → int16, clipped. */
export function toInt16(value) {
  const s = Math.round(value * 32768);
  return s > 32767 ? 32767 : s < -32768 ? -32768 : s;
}

/**
 * A windowed-sinc (Blackman) low-pass filter, unity gain at DC.
 * `cutoffHz` is where the response is halfway down; it reaches the stop band (about -74 dB)
 * `transitionHz` above it.
 */
export function lowPassTaps(rate, cutoffHz, transitionHz) {
  let n = Math.ceil((5.5 * rate) / transitionHz);
  if (n % 2 === 0) n += 1;
  const taps = new Float64Array(n);
  const fc = cutoffHz / rate;
  const mid = (n - 1) / 2;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const w =
      0.42 -
      0.5 * Math.cos((2 * Math.PI * i) / (n - 1)) +
      0.08 * Math.cos((4 * Math.PI * i) / (n - 1));
    taps[i] = sinc * w;
    sum += taps[i];
  }
  for (let i = 0; i < n; i++) taps[i] /= sum;
  return Float32Array.from(taps);
}

/**
 * Microphone audio at any rate ≥ 8 kHz → 8 kHz, without aliasing: every output sample is the
 * low-pass filter's output at that instant (the filter is evaluated only where an output
 * sample falls; between two input samples its outputs are interpolated, which is exact enough
 * once everything above 3.7 kHz is gone from a signal sampled at 44.1 or 48 kHz).
 */
export class Downsampler {
  constructor(inRate, outRate = PHONE_RATE, cutoffHz = 3700, transitionHz = 800) {
    if (!(inRate >= outRate)) throw new RangeError(`cannot downsample ${inRate} Hz to ${outRate} Hz`);
    this.ratio = inRate / outRate;
    this.taps = lowPassTaps(inRate, Math.min(cutoffHz, outRate * 0.4625), transitionHz);
    this.buf = new Float32Array(this.taps.length + 8192);
    this.base = 0; // absolute index of buf[0]
    this.len = 0; // valid samples in buf
    this.t = this.taps.length - 1; // absolute input position of the next output sample
    this.out = new Float32Array(64);
  }

  /** Feed input samples; returns the 8 kHz samples now complete (a view, valid until the next call). */
  push(input) {
    this._append(input);
    const end = this.base + this.len;
    const need = Math.ceil(input.length / this.ratio) + 2;
    if (this.out.length < need) this.out = new Float32Array(need * 2);
    let n = 0;
    for (;;) {
      const i = Math.floor(this.t);
      const f = this.t - i;
      if (f > 0 ? i + 1 >= end : i >= end) break;
      let y = this._fir(i);
      if (f > 0) y += (this._fir(i + 1) - y) * f;
      this.out[n++] = y;
      this.t += this.ratio;
    }
    return this.out.subarray(0, n);
  }

  _fir(i) {
    const h = this.taps;
    const x = this.buf;
    const k = i - this.base;
    let acc = 0;
    for (let j = 0; j < h.length; j++) acc += h[j] * x[k - j];
    return acc;
  }

  _append(input) {
    if (this.len + input.length > this.buf.length) {
      // Drop what the filter no longer needs; grow if that is not enough.
      const drop = Math.max(0, Math.min(this.len, Math.floor(this.t) - (this.taps.length - 1) - this.base));
      const live = this.len - drop;
      if (live + input.length > this.buf.length) {
        const bigger = new Float32Array((live + input.length) * 2);
        bigger.set(this.buf.subarray(drop, this.len));
        this.buf = bigger;
      } else {
        this.buf.copyWithin(0, drop, this.len);
      }
      this.base += drop;
      this.len = live;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
  }
}

const NO_MARKS = Object.freeze([]);

/**
 * The agent's 8 kHz audio, played back to back at the sound card's rate, with Twilio's marks:
 * a mark is reached once everything queued before it has been rendered.
 */
export class PlaybackQueue {
  constructor(outRate, inRate = PHONE_RATE) {
    this.inRate = inRate;
    this.step = inRate / outRate;
    this.buf = new Float32Array(inRate * 30);
    this.base = 0; // absolute index of buf[0]
    this.len = 0;
    this.t = 0; // absolute read position, in input samples
    this.marks = []; // {name, at}: reached when t >= at
  }

  get end() {
    return this.base + this.len;
  }

  /** Agent audio is still to be heard. */
  get playing() {
    return this.t < this.end;
  }

  /** Seconds of agent audio still queued. */
  get queuedSeconds() {
    return Math.max(0, this.end - this.t) / this.inRate;
  }

  push(samples) {
    if (this.t > this.end) this.t = this.end;
    if (this.len + samples.length > this.buf.length) {
      const drop = Math.max(0, Math.min(this.len, Math.floor(this.t) - this.base));
      const live = this.len - drop;
      if (live + samples.length > this.buf.length) {
        const bigger = new Float32Array((live + samples.length) * 2);
        bigger.set(this.buf.subarray(drop, this.len));
        this.buf = bigger;
      } else {
        this.buf.copyWithin(0, drop, this.len);
      }
      this.base += drop;
      this.len = live;
    }
    this.buf.set(samples, this.len);
    this.len += samples.length;
  }

  /** A mark after everything queued so far. */
  mark(name) {
    this.marks.push({ name, at: this.end });
  }

  /** Drop the queued audio (barge-in); returns the marks it held, which count as reached. */
  clear() {
    this.t = this.end;
    const names = this.marks.map((m) => m.name);
    this.marks = [];
    return names;
  }

  /** Fill `out` (one render quantum); returns the names of the marks reached. */
  render(out) {
    const end = this.end;
    const x = this.buf;
    for (let j = 0; j < out.length; j++) {
      if (this.t >= end) {
        out[j] = 0;
        continue;
      }
      const i = Math.floor(this.t);
      const f = this.t - i;
      const a = x[i - this.base];
      const b = i + 1 < end ? x[i + 1 - this.base] : 0;
      out[j] = a + (b - a) * f;
      this.t += this.step;
    }
    if (this.t > end) this.t = end; // idle time is not audio: new audio starts at once
    if (!this.marks.length || this.marks[0].at > this.t) return NO_MARKS;
    const reached = [];
    while (this.marks.length && this.marks[0].at <= this.t) reached.push(this.marks.shift().name);
    return reached;
  }
}
