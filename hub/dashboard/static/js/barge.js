// Barge push-to-talk: the microphone through a capture worklet, resampled to 16 kHz PCM16 in 20 ms
// chunks (640 bytes) for SendSupervisorAudio. Audio is only sent while the talk button is held.
// Counters are mirrored on window.voicehubStats.mic (the browser tests read them).

import { stats } from "./listen.js";

const OUT_RATE = 16000;
const CHUNK = OUT_RATE / 50;

export class Microphone {
  constructor(send) {
    this.send = send;
    this.context = null;
    this.stream = null;
    this.node = null;
    this.talking = false;
    this.resampler = null;
    this.pending = [];
    this.pendingLength = 0;
  }

  get open() {
    return this.context !== null;
  }

  async start() {
    if (this.context) return;
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    const context = new AudioContext({ latencyHint: "interactive" });
    await context.audioWorklet.addModule(new URL("./worklets/capture.js", import.meta.url));
    const source = context.createMediaStreamSource(this.stream);
    const node = new AudioWorkletNode(context, "voicehub-capture", { numberOfOutputs: 0 });
    node.port.onmessage = (event) => this.onSamples(event.data);
    source.connect(node);
    await context.resume();
    this.context = context;
    this.node = node;
    this.resampler = new Downsampler(context.sampleRate, OUT_RATE);
    stats().mic = { chunksSent: 0, errors: 0, peak: 0, talking: false, inputRate: context.sampleRate };
  }

  setTalking(on) {
    this.talking = on && this.open;
    if (!this.talking) {
      this.pending = [];
      this.pendingLength = 0;
    }
    if (stats().mic) stats().mic.talking = this.talking;
  }

  onSamples(batch) {
    if (!this.talking) return;
    const pcm = this.resampler.process(batch);
    this.pending.push(pcm);
    this.pendingLength += pcm.length;
    while (this.pendingLength >= CHUNK) this.flushChunk();
  }

  flushChunk() {
    const joined = new Int16Array(this.pendingLength);
    let at = 0;
    for (const part of this.pending) {
      joined.set(part, at);
      at += part.length;
    }
    const chunk = joined.slice(0, CHUNK);
    const rest = joined.slice(CHUNK);
    this.pending = rest.length ? [rest] : [];
    this.pendingLength = rest.length;
    let peak = 0;
    for (const s of chunk) peak = Math.max(peak, Math.abs(s) / 32768);
    const mic = stats().mic;
    mic.peak = Math.max(mic.peak, peak);
    mic.level = peak;
    this.send(new Uint8Array(chunk.buffer)).then(
      () => { mic.chunksSent++; },
      () => { mic.errors++; },
    );
  }

  async close() {
    this.setTalking(false);
    if (this.node) this.node.port.postMessage({ type: "stop" });
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    if (this.context) await this.context.close().catch(() => {});
    this.context = null;
    this.node = null;
    this.stream = null;
  }
}

/** Streaming downsampler to PCM16: a two-pole low-pass under the new Nyquist, then linear interpolation. */
class Downsampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate;
    this.pos = 0;
    this.prev = 0;
    const cutoff = Math.min(0.45 * outRate, 0.45 * inRate);
    this.a = Math.exp((-2 * Math.PI * cutoff) / inRate);
    this.z1 = 0;
    this.z2 = 0;
  }

  process(input) {
    const filtered = new Float32Array(input.length);
    const a = this.a;
    for (let i = 0; i < input.length; i++) {
      this.z1 = (1 - a) * input[i] + a * this.z1;
      this.z2 = (1 - a) * this.z1 + a * this.z2;
      filtered[i] = this.z2;
    }
    const out = [];
    let pos = this.pos;
    while (pos < filtered.length) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const x0 = i === 0 ? this.prev : filtered[i - 1];
      const x1 = filtered[i];
      // pos indexes the previous batch's last sample as -1 .. the current batch
      const v = x0 + (x1 - x0) * frac;
      out.push(Math.max(-1, Math.min(1, v)));
      pos += this.step;
    }
    this.pos = pos - filtered.length;
    this.prev = filtered[filtered.length - 1];
    const pcm = new Int16Array(out.length);
    for (let i = 0; i < out.length; i++) pcm[i] = Math.round(out[i] * 32767);
    return pcm;
  }
}
