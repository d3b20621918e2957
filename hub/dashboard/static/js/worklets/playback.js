// Listen-in playout: a jitter buffer in front of the speakers (runs on the audio rendering thread).
//
// PCM arrives from the page in 20 ms frames at the context's rate. Playback starts once `targetMs` is
// buffered and drops back to buffering on an underrun (silence is played meanwhile, counted as an
// underrun). Past `maxMs` buffered (a burst after a stall) the oldest audio is dropped down to the target
// so latency stays bounded. Every ~100 ms the processor reports its health and what it played.

const SILENT = 1 / 32768;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.target = Math.round((sampleRate * (opts.targetMs || 120)) / 1000);
    this.max = Math.round((sampleRate * (opts.maxMs || 400)) / 1000);
    this.ring = new Float32Array(sampleRate * 2);
    this.read = 0;
    this.count = 0;
    this.playing = false;
    this.running = true;
    this.stats = { underruns: 0, droppedSamples: 0, receivedSamples: 0, playedSamples: 0, nonSilentSamples: 0, peak: 0 };
    this.sinceReport = 0;
    this.windowPeak = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "pcm") this.push(message.samples);
    else if (message.type === "silence") this.push(new Float32Array(message.samples));
    else if (message.type === "stop") this.running = false;
  }

  push(samples) {
    const ring = this.ring;
    let input = samples;
    if (input.length > ring.length) input = input.subarray(input.length - ring.length);
    this.stats.receivedSamples += input.length;
    if (this.count + input.length > this.max) {
      const drop = this.count + input.length - this.target;
      const fromBuffer = Math.min(drop, this.count);
      this.read = (this.read + fromBuffer) % ring.length;
      this.count -= fromBuffer;
      this.stats.droppedSamples += fromBuffer;
      if (drop > fromBuffer) {
        input = input.subarray(drop - fromBuffer);
        this.stats.droppedSamples += drop - fromBuffer;
      }
    }
    let write = (this.read + this.count) % ring.length;
    for (let i = 0; i < input.length; i++) {
      ring[write] = input[i];
      write = write + 1 === ring.length ? 0 : write + 1;
    }
    this.count += input.length;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return this.running;
    if (!this.playing && this.count >= this.target) this.playing = true;
    let n = 0;
    if (this.playing) {
      n = Math.min(out.length, this.count);
      const ring = this.ring;
      let peak = this.windowPeak;
      let loud = 0;
      for (let i = 0; i < n; i++) {
        const x = ring[this.read];
        out[i] = x;
        this.read = this.read + 1 === ring.length ? 0 : this.read + 1;
        const a = x < 0 ? -x : x;
        if (a > peak) peak = a;
        if (a > SILENT) loud++;
      }
      this.windowPeak = peak;
      this.count -= n;
      this.stats.playedSamples += n;
      this.stats.nonSilentSamples += loud;
      if (n < out.length) {
        this.playing = false;
        this.stats.underruns++;
      }
    }
    out.fill(0, n);
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10) this.report();
    return this.running;
  }

  report() {
    this.sinceReport = 0;
    this.stats.peak = Math.max(this.stats.peak, this.windowPeak);
    this.port.postMessage({
      ...this.stats,
      windowPeak: this.windowPeak,
      bufferedMs: (this.count * 1000) / sampleRate,
      targetMs: (this.target * 1000) / sampleRate,
      state: this.playing ? "playing" : "buffering",
    });
    this.windowPeak = 0;
  }
}

registerProcessor("voicehub-playback", PlaybackProcessor);
