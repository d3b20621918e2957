// Listen-in: AudioFrame PCM16 from the hub -> Float32 -> the playback worklet's jitter buffer.
// The AudioContext runs at the rate asked of the hub (48 or 16 kHz), so the browser never resamples here.
// Health and counters are mirrored on window.voicehubStats.playback (the browser tests read them).

export const JITTER_TARGET_MS = 120;
const MAX_BUFFER_MS = 400;
const MAX_FILL_FRAMES = 25; // a frame-counter jump up to 500 ms is filled with silence to keep timing

export class Player {
  constructor(onStats) {
    this.onStats = onStats;
    this.context = null;
    this.node = null;
    this.lastFrame = null;
    this.frames = 0;
    this.missingFrames = 0;
    this.queue = Promise.resolve();
  }

  get active() {
    return this.node !== null;
  }

  /** start/stop run one at a time, in call order: a switch never leaves a second context playing. */
  serial(fn) {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  start(sampleRate) {
    return this.serial(() => this.startNow(sampleRate));
  }

  stop() {
    return this.serial(() => this.stopNow());
  }

  async startNow(sampleRate) {
    await this.stopNow();
    const context = new AudioContext({ sampleRate, latencyHint: "interactive" });
    await context.audioWorklet.addModule(new URL("./worklets/playback.js", import.meta.url));
    const node = new AudioWorkletNode(context, "voicehub-playback", {
      numberOfInputs: 0, outputChannelCount: [1],
      processorOptions: { targetMs: JITTER_TARGET_MS, maxMs: MAX_BUFFER_MS },
    });
    node.port.onmessage = (event) => { if (this.node === node) this.report(event.data); }; // late reports of a stopped node are ignored
    node.connect(context.destination);
    await context.resume();
    this.context = context;
    this.node = node;
    this.lastFrame = null;
    this.frames = 0;
    this.missingFrames = 0;
    stats().playback = { state: "buffering", sampleRate, frames: 0, receivedSamples: 0, playedSamples: 0, nonSilentSamples: 0, peak: 0 };
  }

  report(data) {
    const merged = { ...stats().playback, ...data, frames: this.frames, missingFrames: this.missingFrames };
    stats().playback = merged;
    this.onStats(merged);
  }

  /** One AudioFrame payload; frames of another rate (in flight while switching) are skipped. */
  push(frame) {
    if (!this.node || frame.sampleRate !== this.context.sampleRate || frame.encoding !== "pcm_s16le") return;
    if (this.lastFrame !== null && frame.frame <= this.lastFrame) {
      // A repeat or a late frame is dropped; a counter far behind means the hub's track started again
      // (a new node after a restart, a new subscription): follow it.
      if (this.lastFrame - frame.frame <= MAX_FILL_FRAMES) return;
      this.lastFrame = null;
    }
    if (this.lastFrame !== null && frame.frame > this.lastFrame + 1) {
      const missing = frame.frame - this.lastFrame - 1;
      this.missingFrames += missing;
      if (missing <= MAX_FILL_FRAMES) this.node.port.postMessage({ type: "silence", samples: (missing * frame.sampleRate) / 50 });
    }
    this.lastFrame = frame.frame;
    this.frames++;
    const samples = pcm16ToFloat(frame.data);
    this.node.port.postMessage({ type: "pcm", samples }, [samples.buffer]);
  }

  async stopNow() {
    const { node, context } = this;
    this.node = null;
    this.context = null;
    if (node) {
      node.port.postMessage({ type: "stop" });
      node.disconnect();
    }
    if (context) await context.close().catch(() => {});
    if (stats().playback) stats().playback = { ...stats().playback, state: "stopped" };
  }
}

export function stats() {
  if (!window.voicehubStats) window.voicehubStats = { playback: null, mic: null };
  return window.voicehubStats;
}

function pcm16ToFloat(data) {
  const bytes = typeof data === "string" ? Uint8Array.from(atob(data), (c) => c.charCodeAt(0)) : data;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >> 1);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}
